"""`ivig sql`: read-only SQL on the published file with nothing but what the set-up installs
(one query printed, exported to CSV or Parquet, or a prompt fed from stdin)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner, Result

from ivig_platform.cli import app

IVIG = str(Path(sys.executable).parent / "ivig")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wh")
    con = duckdb.connect(str(folder / "ivig.duckdb"))
    con.execute("CREATE SCHEMA marts; CREATE TABLE marts.dim_patient AS "
                "SELECT 'p' || i AS patient_key, CASE WHEN i % 5 = 0 THEN 'M' ELSE 'F' END AS sex,"
                " i < 9 AS is_analysed FROM range(10) t(i)")
    con.close()
    return folder


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ivig_sql(warehouse: Path, *args: str, stdin: str | None = None) -> Result:
    """The command in this process (a subprocess costs seconds of imports); the real
    process and a real pipe are in test_a_query_prints_a_table_fitted_to_80_columns."""
    return CliRunner().invoke(app, ["sql", "--warehouse", str(warehouse), *args],
                              input=stdin, env={"COLUMNS": "80"})


def cells(output: str) -> list[list[str]]:
    """The cells of DuckDB's box tables in `output`, row by row (header rows included)."""
    return [[c.strip() for c in line.strip().strip("│").split("│")]
            for line in output.splitlines() if line.startswith("│")]


def test_a_query_prints_a_table_fitted_to_80_columns(warehouse: Path):
    result = subprocess.run(
        [IVIG, "sql", "--warehouse", str(warehouse),
         "SELECT sex, count(*) AS n FROM marts.dim_patient GROUP BY sex ORDER BY sex"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(map(len, lines)) <= 80 and "\x1b[" not in result.stdout
    assert cells(result.stdout)[-2:] == [["F", "8"], ["M", "2"]]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_writes_the_whole_result(warehouse: Path, tmp_path: Path, fmt: str):
    out = tmp_path / f"patients.{fmt}"
    result = ivig_sql(warehouse, "SELECT * FROM marts.dim_patient WHERE is_analysed",
                      f"--{fmt}", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"9 rows written to {out}"
    frame = pl.read_csv(out) if fmt == "csv" else pl.read_parquet(out)
    assert frame.columns == ["patient_key", "sex", "is_analysed"] and frame.height == 9


def test_a_write_is_refused_and_the_file_is_unchanged(warehouse: Path):
    before = digest(warehouse / "ivig.duckdb")
    result = ivig_sql(warehouse, "DELETE FROM marts.dim_patient")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "read-only" in result.stderr
    assert digest(warehouse / "ivig.duckdb") == before


def test_the_prompt_runs_piped_statements_and_fails_on_an_error(warehouse: Path):
    script = (".tables\nSELECT count(*) AS n\n  FROM marts.dim_patient;\n"
              "DROP TABLE marts.dim_patient;\n")
    result = ivig_sql(warehouse, stdin=script)
    assert "marts.dim_patient" in result.stdout  # .tables
    assert ["10"] in cells(result.stdout)  # the statement over two lines
    assert "read-only" in result.stderr
    assert result.exit_code == 1  # a piped script that failed says so


def test_no_published_file_is_one_clear_line(tmp_path: Path):
    result = ivig_sql(tmp_path, "SELECT 1")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: no published warehouse at {tmp_path / 'ivig.duckdb'} (run `ivig refresh` first)")


def test_export_without_a_query_is_refused(warehouse: Path, tmp_path: Path):
    result = ivig_sql(warehouse, "--csv", str(tmp_path / "x.csv"))
    assert result.exit_code == 1 and "need a QUERY" in result.stderr
