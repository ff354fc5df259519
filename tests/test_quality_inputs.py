"""Reading the gates' inputs: landed Parquet of a delivery, marts from DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
from quality_samples import landed_site, marts_from_sites

from ivig_platform.landing.land import delivery_dir
from ivig_platform.quality import landed_tables, read_marts
from ivig_platform.quality._gx import to_pandas


def test_landed_tables_reads_a_delivery_as_landing_wrote_it(tmp_path: Path) -> None:
    tables = landed_site("h01", n_patients=3)
    folder = delivery_dir(tmp_path, "h01", "2026-11-24")
    folder.mkdir(parents=True)
    for name, frame in tables.items():
        if name != "treatments":
            frame.write_parquet(folder / f"{name}.parquet")
    got = landed_tables(tmp_path, "h01", "2026-11-24")
    assert set(got) == set(tables) - {"treatments"}
    assert got["patients"].schema == tables["patients"].schema
    assert got["assessments"].equals(tables["assessments"])


def test_read_marts_from_duckdb_keeps_types_the_gate_understands() -> None:
    marts = marts_from_sites({"h01": landed_site("h01", n_patients=3)})
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    for name, frame in marts.items():
        if name != "mart_cohort":
            con.register("frame", frame)
            con.execute(f"CREATE TABLE marts.{name} AS SELECT * FROM frame")
            con.unregister("frame")
    con.execute("CREATE TABLE marts.other AS SELECT 1 AS x")
    got = read_marts(con)
    assert set(got) == {"dim_patient", "fct_ivig_cycle", "fct_assessment", "fct_adverse_event",
                        "mart_efficacy", "mart_safety"}
    dim = to_pandas(got["dim_patient"])
    assert str(dim["n_cycles"].dtype) == "Int64" and str(dim["on_biologic"].dtype) == "boolean"
    assert str(dim["index_date"].dtype).startswith("datetime64")
    decimal = to_pandas(pl.DataFrame({"d": ["1.50"]}).select(pl.col("d").cast(pl.Decimal(5, 2))))
    assert str(decimal["d"].dtype) == "float64"
