"""The stats step's I/O: read the dbt marts, write `mart_efficacy` and `mart_safety`.

The statistics themselves are pure functions in `ivig_platform.stats`; this module only
moves frames between the build file and them, so the same functions serve the report and
the tests.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from ivig_platform.stats import efficacy_table, safety_table


def read_marts(con: duckdb.DuckDBPyConnection, names: list[str]) -> dict[str, pl.DataFrame]:
    return {name: con.execute(f"SELECT * FROM marts.{name}").pl() for name in names}


def write_stats_marts(database: Path) -> dict[str, int]:
    """Compute the efficacy and safety marts into the build file; return their row counts."""
    con = duckdb.connect(str(database))
    try:
        marts = read_marts(
            con, ["dim_patient", "fct_assessment", "fct_adverse_event", "fct_ivig_cycle"]
        )
        efficacy = efficacy_table(marts["fct_assessment"], marts["dim_patient"])
        safety = safety_table(
            marts["fct_adverse_event"], marts["dim_patient"], marts["fct_ivig_cycle"]
        )
        for name, frame in (("mart_efficacy", efficacy), ("mart_safety", safety)):
            con.register("stats_frame", frame)
            con.execute(f"CREATE OR REPLACE TABLE marts.{name} AS SELECT * FROM stats_frame")
            con.unregister("stats_frame")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return {"mart_efficacy": efficacy.height, "mart_safety": safety.height}
