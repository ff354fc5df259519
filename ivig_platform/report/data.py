"""The report's only I/O: read the published DuckDB file into Polars frames."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

#: (schema, table) the report reads; any of them may be absent from a warehouse.
TABLES: tuple[tuple[str, str], ...] = (
    ("marts", "dim_patient"),
    ("marts", "fct_ivig_cycle"),
    ("marts", "fct_assessment"),
    ("marts", "fct_adverse_event"),
    ("marts", "mart_cohort"),
    ("marts", "mart_efficacy"),
    ("marts", "mart_safety"),
    ("marts", "mart_site_freshness"),
    ("quality", "site_delivery"),
    ("quality", "quarantine"),
    ("quality", "check_result"),
    ("quality", "refresh_run"),
)


@dataclass(frozen=True)
class ReportData:
    """The warehouse tables the report uses, keyed ``schema.table``; absent ones are None."""

    frames: dict[str, pl.DataFrame | None]
    database_name: str = ""

    def get(self, name: str) -> pl.DataFrame | None:
        return self.frames.get(name)


def read_warehouse(database: Path) -> ReportData:
    """Read every table of ``TABLES`` present in ``database`` (opened read-only)."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        present = {
            (schema, name)
            for schema, name in con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables"
            ).fetchall()
        }
        frames: dict[str, pl.DataFrame | None] = {}
        for schema, name in TABLES:
            frames[f"{schema}.{name}"] = (
                con.execute(f'SELECT * FROM "{schema}"."{name}"').pl()
                if (schema, name) in present
                else None
            )
    finally:
        con.close()
    return ReportData(frames, database_name=Path(database).name)
