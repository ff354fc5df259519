"""What is published right now, read from the published file itself.

The file is the truth: whatever a run, a kill or a rollback did, `ivig.duckdb` says which
run built it (`quality.refresh_run`) and which delivery of each site is in force
(`quality.site_delivery`). Read-only, and cheap enough to ask before Prefect starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import duckdb
import polars as pl

from ivig_platform.warehouse.lake import LakeError
from ivig_platform.warehouse.publish import published_path
from ivig_platform.warehouse.reader import open_if_published, published_exists

T = TypeVar("T")


def _query(warehouse: Path, sql: str) -> list[tuple] | None:
    """Rows of `sql` on the published file; None when there is none or it cannot be read."""
    return _read(warehouse, lambda con: con.execute(sql).fetchall())


def _read(warehouse: Path, fetch: Callable[[duckdb.DuckDBPyConnection], T]) -> T | None:
    path = published_path(Path(warehouse))
    try:
        con = open_if_published(path)
    except (duckdb.Error, LakeError):
        return None
    if con is None:
        return None
    try:
        return fetch(con)
    except duckdb.Error:
        return None
    finally:
        con.close()


@dataclass(frozen=True)
class LiveRun:
    run_id: str
    built_at: datetime | None

    def describe(self) -> str:
        when = (f", built {self.built_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
                if self.built_at else "")
        return f"run {self.run_id}{when}"


def live_run(warehouse: Path) -> LiveRun | None:
    """The run whose file is published now, from the file (None: nothing published)."""
    try:
        if not published_exists(published_path(Path(warehouse))):
            return None
    except LakeError as exc:
        return LiveRun(f"unknown ({exc})", None)
    rows = _query(warehouse, "SELECT run_id, max(built_at) FROM quality.refresh_run "
                             "GROUP BY run_id ORDER BY 2 DESC LIMIT 1")
    if not rows:
        return LiveRun("unknown (quality.refresh_run of the published file unreadable)", None)
    return LiveRun(str(rows[0][0]), rows[0][1])


def published_accepted(warehouse: Path) -> dict[str, str]:
    """site → its accepted delivery in the published file (empty when none is published)."""
    rows = _query(warehouse, "SELECT site_id, delivery_id FROM quality.site_delivery "
                             "WHERE status = 'accepted'")
    return dict(rows or [])


def published_site_delivery(warehouse: Path) -> pl.DataFrame | None:
    """The published file's `quality.site_delivery` (None: nothing published, or unreadable),
    what an incremental build compares this run's deliveries with (warehouse/changes.py)."""
    return _read(warehouse, lambda con: con.execute("SELECT * FROM quality.site_delivery").pl())
