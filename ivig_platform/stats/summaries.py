"""Descriptive statistics of protocol §7 as Polars expressions.

Every function takes a column name or an expression and returns an aggregating
expression, so one call serves a whole frame (``select``) or every group at once
(``group_by(...).agg(...)``).

Missing values: nulls and NaNs are both treated as missing and ignored; a statistic of
no remaining value is null.
"""

from __future__ import annotations

import polars as pl

# Polars' ``interpolation="linear"`` places quantile q of the n non-missing values at the
# 0-based position h = (n - 1) * q of the sorted values and interpolates linearly between
# positions floor(h) and ceil(h) (polars-core ``quantile_idx``:
# ``float_idx = (nonnull_count - 1.0) * quantile``). That is Hyndman & Fan type 7, R's
# default ``quantile(x, q, type = 7)`` (1-based h = (n - 1) q + 1) and NumPy's
# ``percentile(..., method="linear")``; tests/test_stats_summaries.py checks it against
# NumPy on random samples and against R values. Polars' default, "nearest", is NOT type 7.
QUANTILE_INTERPOLATION = "linear"


def _values(x: str | pl.Expr) -> pl.Expr:
    """The values as Float64 with NaN turned into null, so both count as missing."""
    expr = pl.col(x) if isinstance(x, str) else x
    return expr.cast(pl.Float64).fill_nan(None)


def n_nonmissing(x: str | pl.Expr) -> pl.Expr:
    """Number of non-null, non-NaN values (UInt32)."""
    return _values(x).count()


def mean(x: str | pl.Expr) -> pl.Expr:
    """Arithmetic mean of the non-missing values; null when there are none."""
    return _values(x).mean()


def sd(x: str | pl.Expr, ddof: int = 1) -> pl.Expr:
    """Sample standard deviation with denominator n - ddof: the plan's ``sd_ddof``, 1 in
    v1 (R ``sd``, NumPy ``ddof=1``).

    Null when fewer than 2 non-missing values (R returns NA for n = 1). Matches R and
    NumPy to floating-point rounding (relative 1e-12 in the tests).
    """
    return _values(x).std(ddof=ddof)


def quantile7(x: str | pl.Expr, q: float) -> pl.Expr:
    """Quantile ``q`` (0-1) by linear interpolation, R type 7.

    Matches R ``quantile(x, q)`` and NumPy ``percentile(x, 100 q, method="linear")`` to
    floating-point rounding. Null when there is no non-missing value; with one value,
    every quantile is that value (as in R).
    """
    return _values(x).quantile(q, interpolation=QUANTILE_INTERPOLATION)


def median(x: str | pl.Expr) -> pl.Expr:
    """Median, the type-7 quantile 0.5 (same as R ``median``)."""
    return quantile7(x, 0.5)


def q1(x: str | pl.Expr) -> pl.Expr:
    """First quartile, type 7."""
    return quantile7(x, 0.25)


def q3(x: str | pl.Expr) -> pl.Expr:
    """Third quartile, type 7."""
    return quantile7(x, 0.75)


def describe(x: str | pl.Expr, prefix: str, ddof: int = 1) -> list[pl.Expr]:
    """``{prefix}_mean, _sd, _median, _q1, _q3`` in that order (the §8 summary block)."""
    return [
        mean(x).alias(f"{prefix}_mean"),
        sd(x, ddof).alias(f"{prefix}_sd"),
        median(x).alias(f"{prefix}_median"),
        q1(x).alias(f"{prefix}_q1"),
        q3(x).alias(f"{prefix}_q3"),
    ]
