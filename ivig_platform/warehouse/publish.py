"""Publishing a built DuckDB file where analysts read it, atomically.

`os.replace` on the same filesystem swaps the directory entry in one step: an analyst
holding the old file open keeps reading the old inode, a new connection sees the new
file, and nobody ever sees half a refresh. The previous files stay hard-linked under
`versions/` for rollback.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

PUBLISHED_NAME = "ivig.duckdb"
KEEP_VERSIONS = 3


def published_path(warehouse: Path) -> Path:
    return warehouse / PUBLISHED_NAME


def build_path(warehouse: Path, run_id: str) -> Path:
    return warehouse / ".build" / f"ivig-{run_id}.duckdb"


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
    versions = warehouse / "versions"
    with publish_lock(warehouse):
        versions.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        os.link(built, versions / f"ivig-{stamp}.duckdb")
        # A write-ahead log left by some writer belongs to the old file, not the new one.
        target.with_name(target.name + ".wal").unlink(missing_ok=True)
        os.replace(built, target)
        for old in sorted(versions.glob("ivig-*.duckdb"))[:-keep]:
            old.unlink()
    return target
