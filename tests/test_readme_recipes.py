"""The DBeaver recipe: one property, the same in both READMEs, and the one DuckDB's JDBC
driver reads. The driver's jar is not obtainable here (no Maven registry), so the test
pins what can be checked without it: `duckdb.read_only` is not a DuckDB setting (only the
driver understands it, which is why it is the driver property to set) and the setting the
driver turns it into, `access_mode = READ_ONLY`, opens the file so that it refuses writes.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from readme_recipes import DEPLOY_README, README, section

JDBC_READ_ONLY = "duckdb.read_only"  # org.duckdb.DuckDBDriver.DUCKDB_READONLY_PROPERTY


def dbeaver_property(text: str) -> tuple[str, str]:
    found = re.search(r"DBeaver.*?\*Driver\s+properties\*\s+add\s+`([^`]+)`\s*=\s*`([^`]+)`",
                      text, re.DOTALL)
    assert found, "no DBeaver recipe"
    return found.group(1), found.group(2)


def test_both_readmes_give_the_same_dbeaver_recipe() -> None:
    main = dbeaver_property(section(README, "For analysts: connecting"))
    deploy = dbeaver_property(section(DEPLOY_README, "Analysts: reading the warehouse"))
    assert main == deploy == (JDBC_READ_ONLY, "true")


def test_the_jdbc_property_is_not_a_duckdb_setting(tmp_path: Path) -> None:
    with pytest.raises(duckdb.Error, match="not recognized: duckdb.read_only"):
        duckdb.connect(str(tmp_path / "x.duckdb"), config={JDBC_READ_ONLY: "true"})


def test_the_setting_it_becomes_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "ivig.duckdb"
    duckdb.connect(str(path)).execute("CREATE TABLE t AS SELECT 1 AS x").close()
    con = duckdb.connect(str(path), config={"access_mode": "READ_ONLY"})
    assert con.execute("SELECT x FROM t").fetchall() == [(1,)]
    with pytest.raises(duckdb.Error, match="(?i)read-only"):
        con.execute("INSERT INTO t VALUES (2)")
