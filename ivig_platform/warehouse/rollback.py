"""Putting an earlier published warehouse back in place, the same atomic way.

`publish` keeps every published file hard-linked under `WAREHOUSE/versions/` (the last
`KEEP_VERSIONS`), named `ivig-<UTC time of publishing>.duckdb`, so the file analysts
open is always one of the versions. Rolling back links the chosen version to a scratch
name on the same filesystem and renames that over `ivig.duckdb`: analysts with the file
open keep reading what they had, new connections see the rolled-back data, and the
version that was current stays among the versions, so a rollback can itself be undone
with `--to`.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

from ivig_platform.warehouse.publish import (
    STAMP_FORMAT,
    VERSION_GLOB,
    VERSIONS_DIR,
    publish_lock,
    published_path,
)


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


def rollback(warehouse: Path, to: str | None = None) -> Path:
    """Re-publish an earlier version of WAREHOUSE/ivig.duckdb.

    Without --to, the version published before the current one; with --to NAME, that
    kept version (NAME as listed under WAREHOUSE/versions/, with or without `.duckdb`,
    e.g. ivig-20261124T020312123456Z), which may also be newer than the current one.
    The swap is one atomic rename: analysts with the file open are not disturbed, and
    the replaced version stays kept, so a rollback can be undone. Only the last 3
    published versions are kept (the next refresh prunes the oldest).
    """
    warehouse = Path(warehouse)
    with publish_lock(warehouse):
        return _rollback(warehouse, to)


def _rollback(warehouse: Path, to: str | None) -> Path:
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
    scratch = warehouse / ".build" / f"rollback-{uuid.uuid4().hex}.duckdb"
    scratch.parent.mkdir(parents=True, exist_ok=True)
    os.link(chosen, scratch)
    try:
        os.replace(scratch, target)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    return target
