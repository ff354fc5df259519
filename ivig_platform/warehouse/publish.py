"""Publishing what a run built where analysts read it: the file, the report and the docs.

`os.replace` on the same filesystem swaps a directory entry in one step: an analyst
holding the old file open keeps reading the old inode, a new connection sees the new
file, and nobody ever sees half a refresh. A run publishes three things — `ivig.duckdb`,
`report.html` and `docs/` (dbt docs and Data Docs) — and they must always belong to the
same run, so they are swapped together as one small transaction:

1. everything is built beforehand in the run's folder `.build/<run>/`;
2. a journal is written naming what comes next: the versions kept for rollback
   (`versions/ivig-<stamp>.duckdb`, its report and docs under
   `versions/ivig-<stamp>.extras/`) and hard links of the old files under
   `.build/<run>/previous/`; then these are made;
3. the three are swapped into place; if any swap fails, the journal is played back and
   what was already replaced is put back;
4. the journal is removed: the publish is done.

A run killed during step 3 leaves its journal: the next run (or rollback) plays it back
under the run lock before anything else (`recover_interrupted_publish`), so a kill can
leave the three mismatched only until the next start, and never loses the previous ones.

On a lake warehouse (warehouse/lake.py) the data is not a file: the run has already
committed its snapshot, unpublished, and the bundle holds the report and docs only. Step 3
swaps those, then appends the publication row that makes the snapshot what analysts read,
and only then removes the journal. A journal left behind is played back, unless its
publication row made it into the lake: then the publish was whole and only the journal
goes (`_finished_in_lake`).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

PUBLISHED_NAME = "ivig.duckdb"
REPORT_NAME = "report.html"
DOCS_NAME = "docs"
#: The data contract the sites receive, in the docs site (generated from the protocol).
CONTRACT_PAGE = "contract.html"
KEEP_VERSIONS = 3
VERSIONS_DIR = "versions"
VERSION_GLOB = "ivig-*.duckdb"
EXTRAS_SUFFIX = ".extras"  # versions/ivig-<stamp>.extras/{report.html,docs/}
STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"  # version names sort by the time they were published
BUILD_DIR = ".build"
JOURNAL = "publish.journal"
PREVIOUS = "previous"


def published_path(warehouse: Path) -> Path:
    return warehouse / PUBLISHED_NAME


def run_folder(warehouse: Path, run_id: str) -> Path:
    return warehouse / BUILD_DIR / run_id


def build_path(warehouse: Path, run_id: str) -> Path:
    """A per-run folder, with the same file name every run: dbt names its catalog after
    the file, and a stable name lets a refresh reuse the previous one's parse."""
    # Named as the published file: dbt-duckdb names the catalog after the file, and the dbt
    # docs then name every relation as analysts find it (ivig.marts.dim_patient).
    return run_folder(warehouse, run_id) / PUBLISHED_NAME


@contextmanager
def publish_lock(warehouse: Path) -> Iterator[None]:
    """One publisher at a time: a refresh and a rollback must not prune each other's files."""
    warehouse.mkdir(parents=True, exist_ok=True)
    with (warehouse / ".publish.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Bundle:
    """What one run publishes together; `report` and `docs` may be absent."""

    database: Path | None  # None: a lake's bundle (the data is its snapshot)
    report: Path | None = None
    docs: Path | None = None

    def items(self) -> list[tuple[Path, str]]:
        return [(path, name) for path, name in ((self.database, PUBLISHED_NAME),
                                                (self.report, REPORT_NAME),
                                                (self.docs, DOCS_NAME)) if path is not None]


def _fsync_write(path: Path, text: str) -> None:
    with path.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def link_tree(source: Path, target: Path) -> None:
    """A copy of a folder made of hard links: free in space, immune to later renames."""
    shutil.copytree(source, target, copy_function=os.link)


def _remove_created(journal: dict) -> None:
    for created in journal["created"]:
        path = Path(created)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _prepare(bundle: Bundle, warehouse: Path, stage: Path, stamp: str,
             keep_version: bool, lake_version: str | None = None) -> None:
    """Step 2: the journal first (so a kill at any later point can be played back), then
    the version links and the undo links it names. `lake_version`: the publication a lake
    publish (or rollback) appends, by which recovery knows whether it finished."""
    previous = stage / PREVIOUS
    shutil.rmtree(previous, ignore_errors=True)
    previous.mkdir(parents=True)
    versions = warehouse / VERSIONS_DIR
    version = versions / f"ivig-{stamp}.duckdb"
    extras = versions / f"ivig-{stamp}{EXTRAS_SUFFIX}"
    with_extras = keep_version and (bundle.report is not None or bundle.docs is not None)
    with_file = keep_version and bundle.database is not None
    items = [(source, name, warehouse / name) for source, name in bundle.items()]
    journal = {
        "created": [str(version)] * with_file + [str(extras)] * with_extras,
        "lake_version": lake_version,
        "items": [{"name": name, "new_ino": source.stat().st_ino,
                   "had_previous": target.exists(), "folder": source.is_dir()}
                  for source, name, target in items],
    }
    _fsync_write(stage / JOURNAL, json.dumps(journal))
    if keep_version:
        versions.mkdir(parents=True, exist_ok=True)
    if with_file:
        os.link(bundle.database, version)
    if with_extras:
        extras.mkdir()
        if bundle.report is not None:
            os.link(bundle.report, extras / REPORT_NAME)
        if bundle.docs is not None:
            link_tree(bundle.docs, extras / DOCS_NAME)
    for _, name, target in items:
        if target.exists() and not target.is_dir():
            os.link(target, previous / name)


def _swap(bundle: Bundle, warehouse: Path, stage: Path) -> None:
    """Step 3: the renames. Folders cannot be renamed over, so the old one steps aside."""
    for source, name in bundle.items():
        target = warehouse / name
        if source.is_dir():
            if target.exists():
                target.rename(stage / PREVIOUS / name)
            source.rename(target)
        else:
            if name == PUBLISHED_NAME:
                # A write-ahead log left by some writer belongs to the old file.
                wal = target.with_name(target.name + ".wal")
                if wal.exists():
                    os.replace(wal, stage / PREVIOUS / wal.name)
            os.replace(source, target)


def _play_back(warehouse: Path, stage: Path) -> None:
    """Undo a publish from its journal: put every replaced item back, drop what it made.

    Safe at any point of `_swap` (and after it): an item is restored only if the one in
    place is the run's new one (same inode as recorded), so playing back twice is harmless.
    """
    journal = json.loads((stage / JOURNAL).read_text())
    previous = stage / PREVIOUS
    for item in reversed(journal["items"]):
        target, kept = warehouse / item["name"], previous / item["name"]
        swapped = target.exists() and target.stat().st_ino == item["new_ino"]
        if item["folder"]:
            if swapped:
                shutil.rmtree(target)
            if kept.exists() and not target.exists():
                kept.rename(target)
        elif swapped:
            if kept.exists():
                os.replace(kept, target)
            elif not item["had_previous"]:
                target.unlink()
        if item["name"] == PUBLISHED_NAME:
            wal = previous / (PUBLISHED_NAME + ".wal")
            if wal.exists():
                os.replace(wal, warehouse / wal.name)
    _remove_created(journal)
    (stage / JOURNAL).unlink()


def recover_interrupted_publish(warehouse: Path) -> list[str]:
    """Play back the journal of every publish that was killed half-way; return the runs.

    Called with the run lock held, before a run touches anything.
    """
    journals = sorted((warehouse / BUILD_DIR).glob(f"*/{JOURNAL}"))
    if not journals:
        return []
    with publish_lock(warehouse):
        for journal in journals:
            if _finished_in_lake(warehouse, journal):
                journal.unlink()
            else:
                _play_back(warehouse, journal.parent)
    return [journal.parent.name for journal in journals]


def _finished_in_lake(warehouse: Path, journal: Path) -> bool:
    """A lake publish killed after its publication row: whole, nothing to play back."""
    wanted = json.loads(journal.read_text()).get("lake_version")
    if not wanted:
        return False
    from ivig_platform.warehouse.lake import current, lake_of

    lake = lake_of(warehouse)
    published = current(lake) if lake is not None else None
    return published is not None and published.version == wanted


def prune_versions(warehouse: Path, keep: int = KEEP_VERSIONS) -> None:
    versions = warehouse / VERSIONS_DIR
    for old in sorted(versions.glob(VERSION_GLOB))[:-keep]:
        old.unlink()
        shutil.rmtree(old.with_name(old.stem + EXTRAS_SUFFIX), ignore_errors=True)


def new_stamp() -> str:
    return datetime.now(UTC).strftime(STAMP_FORMAT)


def swap_in(bundle: Bundle, warehouse: Path, stage: Path, *, keep_version: bool,
            stamp: str | None = None, commit: Callable[[], object] | None = None,
            lake_version: str | None = None) -> None:
    """Publish `bundle` as one transaction (see the module); the caller holds the lock.

    `commit`: a lake's last step (its publication row), run after the swap and before
    the journal goes; it fails, and the swap is played back, or it is the publish."""
    stamp = stamp or new_stamp()
    stage.mkdir(parents=True, exist_ok=True)
    try:
        _prepare(bundle, warehouse, stage, stamp, keep_version, lake_version)
        _swap(bundle, warehouse, stage)
        if commit is not None:
            commit()
    except BaseException:
        journal = stage / JOURNAL
        if journal.exists():
            if lake_version and _finished_in_lake(warehouse, journal):
                journal.unlink()  # the row is in: published after all, nothing to undo
            else:
                _play_back(warehouse, stage)
        raise
    (stage / JOURNAL).unlink()


def publish_bundle(bundle: Bundle, warehouse: Path, keep: int = KEEP_VERSIONS, *,
                   snapshot: int | None = None, run_id: str = "") -> Path:
    """Swap the run's file, report and docs into place together, keeping `keep` versions.

    On a lake warehouse, `snapshot` (the run's committed, unpublished snapshot) becomes
    the published one together with the report and docs, which are kept as
    `versions/ivig-<stamp>.extras/` for rollback like a file's."""
    from ivig_platform.warehouse.lake import (
        expire_unpublished,
        lake_of,
        publications,
        published_versions,
        record_publication,
    )

    lake = lake_of(warehouse)
    stage = bundle.database.parent
    if lake is None:
        with publish_lock(warehouse):
            swap_in(bundle, warehouse, stage, keep_version=True)
            prune_versions(warehouse, keep)
        shutil.rmtree(stage / PREVIOUS, ignore_errors=True)
        return published_path(warehouse)
    if snapshot is None:
        raise ValueError("a lake publish needs the run's committed snapshot")
    stamp = new_stamp()
    version = f"ivig-{stamp}"
    with publish_lock(warehouse):
        swap_in(Bundle(None, bundle.report, bundle.docs), warehouse, stage, keep_version=True,
                stamp=stamp, lake_version=version,
                commit=lambda: record_publication(lake, snapshot, run_id, version))
        kept = published_versions(publications(lake))[-keep:]
        names = {row.version for row in kept}
        for extras in (warehouse / VERSIONS_DIR).glob(f"ivig-*{EXTRAS_SUFFIX}"):
            if extras.name.removesuffix(EXTRAS_SUFFIX) not in names:
                shutil.rmtree(extras, ignore_errors=True)
        expire_unpublished(lake, kept)
    shutil.rmtree(stage / PREVIOUS, ignore_errors=True)
    return published_path(warehouse)


def publish(built: Path, warehouse: Path, keep: int = KEEP_VERSIONS) -> Path:
    """Rename `built` over the published file, keeping the last `keep` versions."""
    return publish_bundle(Bundle(built), warehouse, keep)
