"""`marts.ard` (provenance/ard.py): the stats marts as analysis results data, one row per
statistic, which must agree with mart_efficacy and mart_safety cell for cell."""

from __future__ import annotations

import json
import math

import duckdb
import polars as pl
import pytest
from report_fixtures import build_report_warehouse

from ivig_platform.provenance.ard import (
    ARD_KEY,
    EFFICACY_STATS,
    SAFETY_STATS,
    export_ard_json,
    write_ard,
)
from ivig_platform.stats.efficacy import efficacy_pairs


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    path = build_report_warehouse(tmp_path_factory.mktemp("ard") / "ivig.duckdb")
    con = duckdb.connect(str(path))
    write_ard(con, "v1", "f" * 64)
    frames = {name: con.execute(f"SELECT * FROM marts.{name}").pl()
              for name in ("ard", "mart_efficacy", "mart_safety", "fct_assessment",
                           "dim_patient")}
    con.close()
    return path, frames


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=0, abs_tol=0) or float(a) == float(b)


def test_ard_agrees_with_mart_efficacy_cell_for_cell(built):
    _, frames = built
    ard, mart = frames["ard"].filter(pl.col("analysis") == "efficacy"), frames["mart_efficacy"]
    assert ard.height == mart.height * len(EFFICACY_STATS)
    by_cell = {(r["group1"], r["group1_level"], r["variable"], r["mart_column"]): r["stat"]
               for r in ard.iter_rows(named=True)}
    numeric = [s.column for s in EFFICACY_STATS]
    assert set(numeric) == {c for c, t in mart.schema.items() if t.is_numeric()}
    for row in mart.iter_rows(named=True):
        for column in numeric:
            key = (row["subgroup"], row["subgroup_value"], row["measure"], column)
            assert _same(by_cell[key], row[column]), (key, by_cell[key], row[column])


def test_ard_agrees_with_mart_safety_cell_for_cell(built):
    _, frames = built
    ard, mart = frames["ard"].filter(pl.col("analysis") == "safety"), frames["mart_safety"]
    assert ard.height == mart.height * len(SAFETY_STATS)
    by_cell = {(r["variable"], r["variable_level"], r["mart_column"]): r["stat"]
               for r in ard.iter_rows(named=True)}
    for row in mart.iter_rows(named=True):
        for stat in SAFETY_STATS:
            key = (row["section"], row["category"], stat.column)
            assert _same(by_cell[key], row[stat.column]), key


def test_each_statistic_is_one_row_with_its_method_and_reference(built):
    _, frames = built
    ard = frames["ard"]
    assert ard.group_by(ARD_KEY).len().get_column("len").max() == 1
    assert ard.filter(pl.col("method").is_null() | pl.col("reference").is_null()).is_empty()
    assert set(ard["plan"]) == {"v1"}
    rules = ard.filter((pl.col("context") == "responders") & (pl.col("variable") == "ck"))
    assert set(rules["method"]) == {set(frames["mart_efficacy"].filter(
        pl.col("measure") == "ck")["responder_rule"]).pop()}
    ttest = ard.filter((pl.col("context") == "paired_t_test") & (pl.col("stat_name") == "p.value"))
    assert set(ttest["reference"]) == {"R stats::t.test(post, baseline, paired = TRUE)"}


def test_efficacy_pairs_are_exactly_the_pairs_counted_in_n_paired(built):
    _, frames = built
    pairs = efficacy_pairs(frames["fct_assessment"], frames["dim_patient"])
    counted = pairs.group_by("subgroup", "subgroup_value", "measure").len()
    joined = frames["mart_efficacy"].join(counted, on=["subgroup", "subgroup_value", "measure"],
                                          how="left").with_columns(pl.col("len").fill_null(0))
    assert (joined["n_paired"] == joined["len"]).all()
    assert pairs.filter(pl.col("baseline").is_null() | pl.col("post").is_null()).is_empty()


def test_ard_json_is_the_published_ard_with_its_run(built, tmp_path):
    path, frames = built
    out = export_ard_json(path, tmp_path / "ard.json")
    data = json.loads(out.read_text())
    assert data["run_id"] == "run-fixture-2"
    assert len(data["ard"]) == frames["ard"].height
    assert set(data["ard"][0]) == set(frames["ard"].columns)


def test_no_ard_json_from_a_file_without_an_ard(tmp_path):
    path = build_report_warehouse(tmp_path / "ivig.duckdb")
    assert export_ard_json(path, tmp_path / "ard.json") is None
    assert not (tmp_path / "ard.json").exists()
