"""Publishing a built DuckDB file where analysts read it, atomically.

`os.replace` on the same filesystem swaps the directory entry in one step: an analyst
holding the old file open keeps reading the old inode, a new connection sees the new
file, and nobody ever sees half a refresh. The previous files stay hard-linked under
`versions/` for rollback.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

PUBLISHED_NAME = "ivig.duckdb"
KEEP_VERSIONS = 3
VERSIONS_DIR = "versions"
VERSION_GLOB = "ivig-*.duckdb"
STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"  # version names sort by the time they were published


def published_path(warehouse: Path) -> Path:
    return warehouse / PUBLISHED_NAME


def build_path(warehouse: Path, run_id: str) -> Path:
    """A per-run folder, with the same file name every run: dbt names its catalog after
    the file, and a stable name lets a refresh reuse the previous one's parse."""
    # Named as the published file: dbt-duckdb names the catalog after the file, and the dbt
    # docs then name every relation as analysts find it (ivig.marts.dim_patient).
    return warehouse / ".build" / run_id / PUBLISHED_NAME


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


def publish(built: Path, warehouse: Path, keep: int = KEEP_VERSIONS) -> Path:
    """Rename `built` over the published file, keeping the last `keep` versions."""
    target = published_path(warehouse)
    versions = warehouse / VERSIONS_DIR
    with publish_lock(warehouse):
        versions.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime(STAMP_FORMAT)
        os.link(built, versions / f"ivig-{stamp}.duckdb")
        # A write-ahead log left by some writer belongs to the old file, not the new one.
        target.with_name(target.name + ".wal").unlink(missing_ok=True)
        os.replace(built, target)
        for old in sorted(versions.glob(VERSION_GLOB))[:-keep]:
            old.unlink()
    return target


def replace_folder(source: Path, target: Path) -> None:
    """Swap a generated site (docs) into place: the old one goes only once the new is in."""
    if not source.is_dir():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    shutil.move(str(source), str(target))
    shutil.rmtree(old, ignore_errors=True)
