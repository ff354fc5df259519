"""safety_table on a small hand-built cohort."""

from __future__ import annotations

import polars as pl
import pytest

from ivig_platform.stats import SAFETY_SCHEMA, safety_table


def _patients() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "patient_key": ["a", "b", "c", "d", "e"],
            "n_cycles": [3, 4, 5, 0, 2],  # d has no landed cycle: out of every analysis
            "ivig_stop_reason": [None, "adverse_event", "inefficacy", "other", None],
        }
    )


def _cycles() -> pl.DataFrame:
    return pl.DataFrame({"patient_key": ["a"] * 3 + ["b"] * 4 + ["c"] * 5 + ["e"] * 2})


def _events() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "patient_key": ["a", "a", "b", "c", "d", "e"],
            "site_id": "s1",
            "onset_date": None,
            "term": ["Headache", "Headache", "Rash", "Headache", "Fever", "Fever"],
            "severity": ["mild", "moderate", None, "severe", "mild", "mild"],
            "serious": [False, False, True, None, False, False],
            "related": ["yes", "no", "yes", "unknown", None, "yes"],
            "action": ["none", "interrupted", "discontinued", "none", "none", "discontinued"],
        }
    )


@pytest.fixture(scope="module")
def table() -> pl.DataFrame:
    return safety_table(_events(), _patients(), _cycles())


def _get(table: pl.DataFrame, section: str, category: str) -> dict:
    (row,) = table.filter((pl.col("section") == section) & (pl.col("category") == category)).rows(
        named=True
    )
    return row


def test_schema_and_denominators(table: pl.DataFrame) -> None:
    assert dict(table.schema) == SAFETY_SCHEMA
    assert table["n_patients_analysed"].unique().to_list() == [4]  # a b c e
    assert table["n_cycles"].unique().to_list() == [14]
    assert table["section"].unique(maintain_order=True).to_list() == [
        "overall", "term", "severity", "seriousness", "related", "action", "discontinuation",
    ]  # fmt: skip


def test_overall(table: pl.DataFrame) -> None:
    row = _get(table, "overall", "any")
    assert (row["n_events"], row["n_patients"]) == (5, 4)  # d's Fever is left out
    assert row["pct_patients"] == 100.0
    assert row["events_per_100_cycles"] == pytest.approx(500 / 14)


def test_terms_ordered_by_frequency(table: pl.DataFrame) -> None:
    terms = table.filter(pl.col("section") == "term")
    assert terms.select("category", "n_events", "n_patients").rows() == [
        ("Headache", 3, 2),
        ("Fever", 1, 1),
        ("Rash", 1, 1),
    ]


def test_sections_add_up_and_show_fixed_categories(table: pl.DataFrame) -> None:
    for section in ("term", "severity", "seriousness", "related", "action"):
        assert table.filter(pl.col("section") == section)["n_events"].sum() == 5, section
    severity = table.filter(pl.col("section") == "severity")
    assert severity["category"].to_list() == ["mild", "moderate", "severe", "not_recorded"]
    assert _get(table, "seriousness", "yes")["n_events"] == 1
    assert _get(table, "seriousness", "not_recorded")["n_events"] == 1
    assert _get(table, "action", "discontinued")["n_patients"] == 2


def test_discontinuation(table: pl.DataFrame) -> None:
    rows = table.filter(pl.col("section") == "discontinuation")
    assert rows.select("category", "n_patients").rows() == [
        ("any", 2),  # b, c (d stopped but has no cycle)
        ("adverse_event", 1),
        ("inefficacy", 1),
        ("other", 0),
        ("followed_adverse_event", 2),  # b (reason) and e (event action discontinued)
    ]
    assert rows["n_events"].null_count() == rows.height
    assert _get(table, "discontinuation", "any")["pct_patients"] == 50.0


def test_no_events_and_no_patients() -> None:
    empty = safety_table(_events().clear(), _patients(), _cycles())
    assert _get(empty, "overall", "any")["n_events"] == 0
    assert empty.filter(pl.col("section") == "term").height == 0
    none = safety_table(_events(), _patients().clear(), _cycles())
    assert _get(none, "overall", "any")["pct_patients"] is None
    assert _get(none, "overall", "any")["events_per_100_cycles"] is None
