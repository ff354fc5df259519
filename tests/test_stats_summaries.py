"""Descriptive statistics (protocol §7): SD n-1 and R type-7 quartiles as expressions."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivig_platform.stats.summaries import describe, median, n_nonmissing, q1, q3, quantile7, sd

FAST = settings(derandomize=True, max_examples=150, deadline=None, database=None)

values = st.lists(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=1, max_size=40
)


def _one(expr: pl.Expr, xs: list[float | None]) -> float | None:
    return pl.DataFrame({"x": xs}, schema={"x": pl.Float64}).select(expr).item()


# R 4.x: quantile(1:10) -> 1.00 3.25 5.50 7.75 10.00; quantile(c(1, 2, 3, 4)) ->
# 1.00 1.75 2.50 3.25 4.00; quantile(c(7, 1, 3)) -> 1 2 3 5 7 (type 7, the default).
@pytest.mark.parametrize(
    ("xs", "expected"),
    [
        (list(range(1, 11)), (3.25, 5.5, 7.75)),
        ([1, 2, 3, 4], (1.75, 2.5, 3.25)),
        ([7, 1, 3], (2.0, 3.0, 5.0)),
        ([5], (5.0, 5.0, 5.0)),
    ],
)
def test_quartiles_match_r_type7(xs: list[float], expected: tuple[float, float, float]) -> None:
    got = tuple(_one(f("x"), [float(v) for v in xs]) for f in (q1, median, q3))
    assert got == pytest.approx(expected, rel=1e-12)


def test_polars_default_quantile_is_not_type7() -> None:
    """Guard for the comment in summaries.py: 'nearest' differs from type 7."""
    frame = pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    assert frame.select(pl.col("x").quantile(0.25)).item() != 1.75
    assert frame.select(quantile7("x", 0.25)).item() == 1.75


@FAST
@given(xs=values, q=st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]))
def test_quantile7_equals_numpy_linear(xs: list[float], q: float) -> None:
    expected = float(np.percentile(np.array(xs), 100 * q, method="linear"))
    assert _one(quantile7("x", q), xs) == pytest.approx(expected, rel=1e-12, abs=1e-9)


@FAST
@given(xs=values)
def test_sd_is_n_minus_1(xs: list[float]) -> None:
    got = _one(sd("x"), xs)
    if len(xs) < 2:
        assert got is None
    else:
        assert got == pytest.approx(float(np.std(xs, ddof=1)), rel=1e-9, abs=1e-9)


def test_nulls_and_nans_are_missing() -> None:
    xs = [1.0, None, float("nan"), 3.0]
    assert _one(n_nonmissing("x"), xs) == 2
    assert _one(median("x"), xs) == 2.0
    assert _one(sd("x"), xs) == pytest.approx(np.sqrt(2.0))
    assert _one(sd("x"), [None, 4.0]) is None
    assert _one(median("x"), [None, None]) is None


def test_describe_per_group() -> None:
    frame = pl.DataFrame({"g": ["a", "a", "a", "b"], "x": [1.0, 2.0, 4.0, 9.0]})
    out = frame.group_by("g").agg(describe("x", "v")).sort("g")
    assert out.columns == ["g", "v_mean", "v_sd", "v_median", "v_q1", "v_q3"]
    a, b = out.rows(named=True)
    assert a["v_mean"] == pytest.approx(7 / 3)
    assert a["v_sd"] == pytest.approx(float(np.std([1, 2, 4], ddof=1)))
    assert (a["v_q1"], a["v_median"], a["v_q3"]) == (1.5, 2.0, 3.0)
    assert b["v_sd"] is None and b["v_median"] == 9.0
