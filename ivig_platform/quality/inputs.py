"""Reading what the gates check: a delivery's landed Parquet, and the marts in DuckDB.

Both come back as Polars frames keyed by table name, ready for run_landing_gate /
pool_stats (landed) and run_mart_gate (marts). DuckDB hands Polars its own types (DATE,
BIGINT, DOUBLE, DECIMAL, BOOLEAN, VARCHAR), which the gate's conversion maps to the type
families of the contract.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from ivig_platform.landing.contract import TABLES
from ivig_platform.landing.land import delivery_dir
from ivig_platform.quality.frames import MARTS


def landed_tables(warehouse: Path, site_id: str, delivery_id: str) -> dict[str, pl.DataFrame]:
    """The landed tables of one delivery (a missing file is left out; the gate reports it)."""
    folder = delivery_dir(Path(warehouse), site_id, delivery_id)
    return {
        table: pl.read_parquet(folder / f"{table}.parquet")
        for table in TABLES
        if (folder / f"{table}.parquet").exists()
    }


def read_marts(con: duckdb.DuckDBPyConnection, schema: str = "marts"
               ) -> dict[str, pl.DataFrame]:
    """The marts the mart gate checks, from an open DuckDB connection (missing ones left out)."""
    present = {
        name for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
            [schema],
        ).fetchall()
    }
    return {
        name: con.execute(f'SELECT * FROM "{schema}"."{name}"').pl()
        for name in MARTS
        if name in present
    }
