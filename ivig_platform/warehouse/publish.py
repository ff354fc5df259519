"""Publishing a built DuckDB file where analysts read it, atomically.

`os.replace` on the same filesystem swaps the directory entry in one step: an analyst
holding the old file open keeps reading the old inode, a new connection sees the new
file, and nobody ever sees half a refresh. The previous files stay hard-linked under
`versions/` for rollback.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

PUBLISHED_NAME = "ivig.duckdb"
KEEP_VERSIONS = 3


def published_path(warehouse: Path) -> Path:
    return warehouse / PUBLISHED_NAME


def build_path(warehouse: Path, run_id: str) -> Path:
    return warehouse / ".build" / f"ivig-{run_id}.duckdb"


def publish(built: Path, warehouse: Path, keep: int = KEEP_VERSIONS) -> Path:
    """Rename `built` over the published file, keeping the last `keep` versions."""
    target = published_path(warehouse)
    versions = warehouse / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    os.link(built, versions / f"ivig-{stamp}.duckdb")
    os.replace(built, target)
    for old in sorted(versions.glob("ivig-*.duckdb"))[:-keep]:
        old.unlink()
    return target
