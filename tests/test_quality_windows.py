"""The analysis windows of protocol §7 used by the quality gate (ivig_platform.quality.windows)."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from ivig_platform.quality.windows import analysis_windows, patient_windows

INDEX = date(2024, 3, 1)


def _cycles(*starts: date, key: str = "p1") -> pl.DataFrame:
    return pl.DataFrame({"patient_key": [key] * len(starts), "start_date": list(starts)})


def _assessments(rows: list[tuple[str, str, date, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema={"patient_key": pl.Utf8, "measure": pl.Utf8, "assessment_date": pl.Date,
                      "value": pl.Float64}, orient="row",
    )


def _one(cycles: pl.DataFrame, rows: list[tuple[str, str, date, float]]) -> dict:
    frame = analysis_windows(cycles, _assessments(rows))
    assert frame.height == 1
    return frame.row(0, named=True)


@pytest.mark.parametrize(
    ("days", "selected"),
    [
        ((-90, -30), -30),  # the latest in the window
        ((-91, -90), -90),  # -90 is inside, -91 outside
        ((-10, 0), 0),  # the index date itself is inside
        ((-10, 1), -10),  # the day after the index is not baseline
    ],
)
def test_baseline_is_latest_in_index_minus_90_to_index(days: tuple[int, int],
                                                       selected: int) -> None:
    rows = [("p1", "ck", INDEX + timedelta(days=d), float(d)) for d in days]
    got = _one(_cycles(INDEX), rows)
    assert got["baseline_date"] == INDEX + timedelta(days=selected)
    assert got["baseline_value"] == float(selected)


@pytest.mark.parametrize(
    ("days", "selected"),
    [
        ((60, 95), 95),  # nearest to +90
        ((85, 95), 95),  # a tie: the later
        ((29, 181), None),  # both just outside 30..180
        ((30, 200), 30),  # 30 is inside
        ((180, 10), 180),  # 180 is inside
    ],
)
def test_post_is_nearest_to_last_plus_90_within_30_to_180(days: tuple[int, int],
                                                          selected: int | None) -> None:
    last = INDEX + timedelta(days=56)
    rows = [("p1", "mrss", last + timedelta(days=d), float(d)) for d in days]
    got = _one(_cycles(INDEX, INDEX + timedelta(days=28), last), rows)
    expected = None if selected is None else last + timedelta(days=selected)
    assert got["post_date"] == expected


def test_patient_without_cycle_and_unfollowed_measure_are_left_out() -> None:
    rows = [("p1", "ck", INDEX, 500.0), ("p2", "ck", INDEX, 800.0)]
    frame = analysis_windows(_cycles(INDEX), _assessments(rows))
    assert frame.select("patient_key", "measure").rows() == [("p1", "ck")]


def test_patient_windows_marks_followed_but_missing_apart_from_not_followed() -> None:
    cycles = pl.concat([_cycles(INDEX, key="p1"), _cycles(INDEX, key="p2")])
    rows = [
        ("p1", "ck", INDEX - timedelta(days=5), 2000.0),
        ("p1", "ck", INDEX + timedelta(days=90), 20.0),
        ("p2", "ck", INDEX + timedelta(days=400), 150.0),  # followed, in no window
    ]
    frame = patient_windows(cycles, _assessments(rows)).sort("patient_key")
    p1, p2 = frame.rows(named=True)
    assert (p1["has_baseline_ck"], p1["has_post_ck"], p1["fold_drop_ck"]) == (True, True, 100.0)
    assert (p2["has_baseline_ck"], p2["has_post_ck"], p2["fold_drop_ck"]) == (False, False, None)
    assert p1["has_baseline_mrss"] is None  # never assessed: outside the denominator
    assert p1["n_cycles"] == 1
