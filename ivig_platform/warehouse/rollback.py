"""Putting an earlier published warehouse back in place, the same atomic way.

`publish` keeps every published file hard-linked under `WAREHOUSE/versions/` (the last
`KEEP_VERSIONS`), named `ivig-<UTC time of publishing>.duckdb`, with the report and docs
published with it under `ivig-<stamp>.extras/`, so the file analysts open is always one
of the versions. Rolling back links the chosen version to scratch names on the same
filesystem and swaps them in with the publish's own transaction (file, report and docs
together): analysts with the file open keep reading what they had, new connections see
the rolled-back data, and the version that was current stays among the versions, so a
rollback can itself be undone with `--to`. A version published before its report and docs
were kept rolls back the file only, and says so.

On a lake warehouse (warehouse/lake.py) the versions are the last `KEEP_VERSIONS`
published snapshots, named like the files' versions (`ivig-<stamp>`, their report and
docs under `versions/ivig-<stamp>.extras/`); rolling back appends a publication row
naming the earlier snapshot, swapped in with its report and docs the same way.

A rollback never runs while a refresh holds the warehouse (`run_lock`): it refuses at
once, naming the refresh, rather than waiting behind a run that may take minutes and
then publish over it anyway.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ivig_platform.warehouse.lake import (
    Lake,
    Publication,
    lake_of,
    publications,
    published_versions,
    record_publication,
)
from ivig_platform.warehouse.publish import (
    BUILD_DIR,
    DOCS_NAME,
    EXTRAS_SUFFIX,
    KEEP_VERSIONS,
    REPORT_NAME,
    STAMP_FORMAT,
    VERSION_GLOB,
    VERSIONS_DIR,
    Bundle,
    link_tree,
    publish_lock,
    published_path,
    recover_interrupted_publish,
    swap_in,
)
from ivig_platform.warehouse.run_lock import WarehouseBusy, run_lock


class RollbackError(RuntimeError):
    """There is nothing (or nothing by that name) to roll back to."""


def versions_dir(warehouse: Path) -> Path:
    return Path(warehouse) / VERSIONS_DIR


def list_versions(warehouse: Path) -> list[Path]:
    """The kept versions of the published file, oldest first (names sort by time)."""
    folder = versions_dir(warehouse)
    return sorted(folder.glob(VERSION_GLOB)) if folder.is_dir() else []


def current_version(warehouse: Path) -> Path | None:
    """The kept version that is the published file right now (same inode), if any."""
    target = published_path(Path(warehouse))
    if not target.exists():
        return None
    return next((v for v in list_versions(warehouse) if os.path.samefile(v, target)), None)


def _named(versions: list[Path], name: str) -> Path:
    wanted = name if name.endswith(".duckdb") else f"{name}.duckdb"
    for version in versions:
        if version.name == wanted:
            return version
    available = ", ".join(v.stem for v in versions) or "none"
    raise RollbackError(f"no kept version named {name!r} (kept: {available})")


@dataclass(frozen=True)
class RolledBack:
    version: Path
    with_report_and_docs: bool


def rollback(warehouse: Path, to: str | None = None) -> Path:
    """Re-publish an earlier version of WAREHOUSE/ivig.duckdb.

    Without --to, the version published before the current one; with --to NAME, that
    kept version (NAME as listed under WAREHOUSE/versions/, with or without `.duckdb`,
    e.g. ivig-20261124T020312123456Z), which may also be newer than the current one.
    The file, its report and its docs are swapped in together (see `publish`): analysts
    with the file open are not disturbed, and the replaced version stays kept, so a
    rollback can be undone. Only the last 3
    published versions are kept (the next refresh prunes the oldest).
    """
    roll_back(warehouse, to)
    return published_path(Path(warehouse))


def roll_back(warehouse: Path, to: str | None = None) -> RolledBack:
    """`rollback`, saying which version went in and whether its report and docs did."""
    warehouse = Path(warehouse)
    try:
        with run_lock(warehouse, command="rollback"):
            recover_interrupted_publish(warehouse)
            from ivig_platform.provenance.audit import delivery_statuses
            from ivig_platform.provenance.steps import after_rollback

            lake = lake_of(warehouse)
            with publish_lock(warehouse):
                before = delivery_statuses(published_path(warehouse))
                if lake is not None:
                    done, replaced_name = _rollback_lake(warehouse, lake, to)
                else:
                    replaced = current_version(warehouse)
                    replaced_name = replaced.stem if replaced else "ivig.duckdb"
                    done = _rollback(warehouse, to)
            # the audit trail's `rolled_back` events and ard.json of the file put back
            after_rollback(warehouse, before, replaced_name, done.version)
            return done
    except WarehouseBusy as busy:
        raise RollbackError(f"{busy}: nothing rolled back; roll back once it has ended "
                            "(it may publish over a rollback anyway)") from busy


@dataclass(frozen=True)
class KeptVersion:
    """One version `rollback --to` can choose, for `rollback --list`."""

    name: str
    published_at: datetime | None
    current: bool
    detail: str  # the snapshot and run of a lake's; the file of a single-file warehouse


def kept_versions(warehouse: Path) -> list[KeptVersion]:
    """What `ivig rollback --to` may choose, oldest first, the current one marked."""
    warehouse = Path(warehouse)
    lake = lake_of(warehouse)
    if lake is not None:
        rows = publications(lake)
        live = _source(rows, rows[-1]).seq if rows else None
        return [KeptVersion(row.version, row.at, row.seq == live, row.describe())
                for row in published_versions(rows)[-KEEP_VERSIONS:]]
    here = current_version(warehouse)
    return [KeptVersion(v.stem, datetime.strptime(v.stem.removeprefix("ivig-"), STAMP_FORMAT)
                        .replace(tzinfo=UTC), v == here, str(v)) for v in list_versions(warehouse)]


def _source(rows: list[Publication], row: Publication) -> Publication:
    """The publish a rollback row points back to (a publish is its own)."""
    if row.action == "publish":
        return row
    return next(r for r in reversed(rows) if r.action == "publish" and r.version == row.version)


def _rollback_lake(warehouse: Path, lake: Lake, to: str | None) -> tuple[RolledBack, str]:
    """The rollback of a lake, and the version it replaced (for the audit trail)."""
    rows = publications(lake)
    if not rows:
        raise RollbackError(f"nothing is published in the lake {lake.catalog}: "
                            "nothing to roll back")
    kept = published_versions(rows)[-KEEP_VERSIONS:]
    now = _source(rows, rows[-1])
    if to is not None:
        wanted = to.removesuffix(".duckdb")
        chosen = next((row for row in kept if row.version == wanted), None)
        if chosen is None:
            names = ", ".join(row.version for row in kept) or "none"
            raise RollbackError(f"no kept version named {to!r} (kept: {names})")
        if chosen.seq == now.seq:
            raise RollbackError(f"{chosen.version} is already the published version")
    else:
        older = [row for row in kept if row.seq < now.seq]
        if not older:
            raise RollbackError(f"{now.version} is the oldest kept version: "
                                "nothing older to roll back to")
        chosen = older[-1]
    extras = versions_dir(warehouse) / f"{chosen.version}{EXTRAS_SUFFIX}"
    report, docs = extras / REPORT_NAME, extras / DOCS_NAME
    stage = warehouse / BUILD_DIR / f"rollback-{uuid.uuid4().hex}"
    stage.mkdir(parents=True)
    try:
        if report.exists():
            os.link(report, stage / REPORT_NAME)
        if docs.is_dir():
            link_tree(docs, stage / DOCS_NAME)
        scratch = Bundle(None, stage / REPORT_NAME if report.exists() else None,
                         stage / DOCS_NAME if docs.is_dir() else None)
        swap_in(scratch, warehouse, stage, keep_version=False, lake_version=chosen.version,
                commit=lambda: record_publication(lake, chosen.snapshot, chosen.run_id,
                                                  chosen.version, action="rollback"))
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return (RolledBack(versions_dir(warehouse) / f"{chosen.version}.duckdb",
                       scratch.report is not None), rows[-1].version)


def _rollback(warehouse: Path, to: str | None) -> RolledBack:
    target = published_path(warehouse)
    versions = list_versions(warehouse)
    if not versions:
        raise RollbackError(f"no kept versions under {versions_dir(warehouse)}: "
                            "nothing to roll back to")
    current = current_version(warehouse)
    if to is not None:
        chosen = _named(versions, to)
        if current is not None and chosen == current:
            raise RollbackError(f"{chosen.stem} is already the published version")
    else:
        older = versions[: versions.index(current)] if current is not None else versions
        if not older:
            raise RollbackError(
                f"{current.stem if current else target.name} is the oldest kept version: "
                "nothing older to roll back to"
            )
        chosen = older[-1]
    if target.exists() and current is None:
        # Published by other means (not under versions/): keep it before replacing it,
        # named by its modification time like the versions publish keeps.
        stamp = datetime.fromtimestamp(target.stat().st_mtime, UTC).strftime(STAMP_FORMAT)
        os.link(target, versions_dir(warehouse) / f"ivig-{stamp}.duckdb")
    extras = chosen.with_name(chosen.stem + EXTRAS_SUFFIX)
    report, docs = extras / REPORT_NAME, extras / DOCS_NAME
    stage = warehouse / BUILD_DIR / f"rollback-{uuid.uuid4().hex}"
    stage.mkdir(parents=True)
    try:
        os.link(chosen, stage / chosen.name)
        if report.exists():
            os.link(report, stage / REPORT_NAME)
        if docs.is_dir():
            link_tree(docs, stage / DOCS_NAME)
        scratch = Bundle(stage / chosen.name, stage / REPORT_NAME if report.exists() else None,
                         stage / DOCS_NAME if docs.is_dir() else None)
        swap_in(scratch, warehouse, stage, keep_version=False)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return RolledBack(chosen, scratch.report is not None)
