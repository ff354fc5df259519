"""The report's only I/O: read the published DuckDB file into Polars frames."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

#: (schema, table) the report reads; any of them may be absent from a warehouse.
TABLES: tuple[tuple[str, str], ...] = (
    ("marts", "dim_patient"),
    ("marts", "fct_ivig_cycle"),
    ("marts", "fct_assessment"),
    ("marts", "fct_adverse_event"),
    ("marts", "mart_cohort"),
    ("marts", "mart_efficacy"),
    ("marts", "mart_efficacy_by_plan"),
    ("marts", "mart_safety"),
    ("marts", "mart_site_freshness"),
    ("quality", "site_delivery"),
    ("quality", "quarantine"),
    ("quality", "check_result"),
    ("quality", "refresh_run"),
    ("quality", "run_record"),
    ("quality", "check_delta"),
)

#: The columns the report uses of the tables that grow with the registry (a row per patient,
#: cycle, assessment, event or check); only these are read (at 20,000 patients ~20 MB of
#: frames instead of ~50 MB, and ~70 MB less peak memory). The other tables (marts of a few
#: hundred rows, deliveries) are read whole. A section needing another column of these adds
#: it here.
COLUMNS: dict[str, tuple[str, ...]] = {
    "marts.dim_patient": ("patient_key", "site_id", "n_cycles", "hospital"),
    "marts.fct_ivig_cycle": ("site_id",),
    "marts.fct_assessment": ("patient_key", "site_id", "measure", "analysis_timepoint", "value"),
    "marts.fct_adverse_event": ("site_id",),
    "quality.check_result": ("run_id", "site_id", "severity", "success"),
}


@dataclass(frozen=True)
class ReportData:
    """The warehouse tables the report uses, keyed ``schema.table``; absent ones are None."""

    frames: dict[str, pl.DataFrame | None]
    database_name: str = ""

    def get(self, name: str) -> pl.DataFrame | None:
        return self.frames.get(name)


def read_warehouse(database: Path) -> ReportData:
    """Read every table of ``TABLES`` present in ``database`` (opened read-only); of the
    tables in ``COLUMNS``, only those columns (the ones present: a missing column stays
    missing, for the sections to say so)."""
    from ivig_platform.warehouse.reader import open_read_only

    con = open_read_only(Path(database))
    try:
        present: dict[tuple[str, str], list[str]] = {}
        for schema, name, column in con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "ORDER BY table_schema, table_name, ordinal_position"
        ).fetchall():
            present.setdefault((schema, name), []).append(column)
        frames: dict[str, pl.DataFrame | None] = {}
        for schema, name in TABLES:
            key = f"{schema}.{name}"
            if (schema, name) not in present:
                frames[key] = None
                continue
            wanted = COLUMNS.get(key)
            columns = [c for c in present[(schema, name)] if wanted is None or c in wanted]
            select = ", ".join(f'"{c}"' for c in columns) if columns else "*"
            frames[key] = con.execute(f'SELECT {select} FROM "{schema}"."{name}"').pl()
    finally:
        con.close()
    return ReportData(frames, database_name=Path(database).name)
