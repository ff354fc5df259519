"""The cells as reported, in the build file: schema `landed_cells`, one table per landed one.

Landing keeps each landed row's text beside its Parquet (`<table>.cells.parquet`,
landing/cells.py); the build copies those of the accepted deliveries into the file it
publishes, so `ivig explain` answers from the published file alone (a rolled-back file
explains its own rows) and `landed.*` stays exactly the tables analysts know. A delivery
landed before landing version 3 has no cells file: its rows are explained without cells.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from ivig_platform.landing.cells import cells_file, cells_schema
from ivig_platform.landing.contract import TABLES
from ivig_platform.landing.manifest import delivery_dir

SCHEMA = "landed_cells"


def load_landed_cells(con: duckdb.DuckDBPyConnection, warehouse: Path) -> dict[str, int]:
    """`landed_cells.<table>` for every accepted delivery of `quality.site_delivery`."""
    accepted = con.execute(
        "SELECT site_id, delivery_id FROM quality.site_delivery WHERE status = 'accepted' "
        "ORDER BY site_id"
    ).fetchall()
    folders = [delivery_dir(warehouse, site, delivery) for site, delivery in accepted]
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    counts: dict[str, int] = {}
    for table in TABLES:
        empty = pl.DataFrame(schema=cells_schema(table))  # noqa: F841  (scanned by name)
        con.execute(f"CREATE OR REPLACE TABLE {SCHEMA}.{table} AS SELECT * FROM empty")
        files = [str(f / cells_file(table)) for f in folders if (f / cells_file(table)).is_file()]
        if files:
            con.execute(
                f"INSERT INTO {SCHEMA}.{table} BY NAME "
                "SELECT * FROM read_parquet($files, hive_partitioning = false)",
                {"files": files},
            )
        counts[table] = con.execute(f"SELECT count(*) FROM {SCHEMA}.{table}").fetchone()[0]
    return counts
