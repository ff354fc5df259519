"""Paired tests of protocol §7: paired t-test and R's Wilcoxon signed-rank test.

Two layers:

* ``paired_t_test(post, baseline)`` and ``wilcoxon_signed_rank(post, baseline)`` work on
  NumPy arrays and return a frozen result; the report and the tests use them directly.
* ``wilcoxon_p``, ``t_two_sided_p`` and ``t_critical`` wrap them as Polars expressions
  for ``group_by(...).agg(...)`` (``efficacy.py``).

Conventions shared by both tests (protocol §7; the numbers are the plan's
``summaries``, by default those of the primary plan in force: v1 rounds differences to 9
decimals, needs 2 pairs, gives 95% intervals and computes Wilcoxon's p exactly below 50
pairs):

* Differences are ``post - baseline`` (R: ``t.test(post, baseline, paired = TRUE)``,
  ``wilcox.test(post, baseline, paired = TRUE)``).
* Missing values: a pair with a NaN (or null) on either side is dropped first, as R's
  ``complete.cases``. Infinite values raise ``ValueError``.
* Fewer than ``min_pairs`` complete pairs: the test is not computed (p-value null). For
  the t-test and 2 pairs this is R's own behaviour (``stop("not enough 'x'
  observations")``); for the Wilcoxon test it is the protocol's rule (R would report
  p = 1 for a single pair); ``min_pairs=1`` gives R's behaviour.
* Null is ``None`` in the results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import polars as pl
from scipy import stats

from ivig_platform.protocol.plan import Plan


@dataclass(frozen=True)
class Conventions:
    """The plan's summary conventions the tests use (protocol §7 ``summaries``).

    ``round_decimals``: differences are rounded before zeros and ties are looked for, so
    floating-point noise (0.1 + 0.2 - 0.3 = 5.6e-17) makes no false zero, tie or non-tie;
    ``min_pairs``: with fewer pairs the statistics that need them are null;
    ``exact_below``: Wilcoxon's p is exact when n (after dropping zeros) is below this (R's
    ``wilcox.test`` default); ``correct``: continuity correction of the normal
    approximation; ``ci_level``: of the t interval.
    """

    round_decimals: int
    min_pairs: int
    exact_below: int
    correct: bool
    ci_level: float


def conventions_of(plan: Plan) -> Conventions:
    s = plan.summaries
    wilcoxon = s.tests.wilcoxon
    return Conventions(s.round_decimals, s.min_pairs,
                       wilcoxon.exact_below if wilcoxon else 0,
                       wilcoxon.correct if wilcoxon else True, s.ci_level)


_LAST: list[tuple[object, Conventions]] = []


def conventions() -> Conventions:
    """The conventions of the primary plan of the protocol in force."""
    from ivig_platform.protocol.in_force import protocol_in_force

    protocol = protocol_in_force()
    if not _LAST or _LAST[0][0] is not protocol:
        _LAST[:] = [(protocol, conventions_of(protocol.primary_plan))]
    return _LAST[0][1]


@dataclass(frozen=True)
class PairedTTest:
    """Result of ``paired_t_test``; ``None`` where not computable."""

    n: int
    mean_difference: float | None
    sd_difference: float | None
    statistic: float | None
    df: int | None
    p_value: float | None
    ci_low: float | None
    ci_high: float | None
    conf_level: float


@dataclass(frozen=True)
class WilcoxonSignedRank:
    """Result of ``wilcoxon_signed_rank``.

    ``statistic`` is R's V: the sum of the ranks of |d| over the positive differences
    d = post - baseline (after rounding and dropping zeros). ``method`` is ``"exact"``
    (signed-rank distribution), ``"normal"`` (normal approximation with continuity and
    tie correction) or ``None`` when no p-value is computed.
    """

    n_pairs: int
    n_nonzero: int
    statistic: float | None
    p_value: float | None
    method: Literal["exact", "normal"] | None
    ties: bool
    zeros: bool


def _complete_pairs(post: object, baseline: object) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(post, dtype=np.float64).ravel()
    y = np.asarray(baseline, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"post and baseline differ in length ({x.size} vs {y.size})")
    if np.isinf(x).any() or np.isinf(y).any():
        raise ValueError("infinite values are not valid measurements")
    ok = ~(np.isnan(x) | np.isnan(y))
    return x[ok], y[ok]


def paired_t_test(post: object, baseline: object, conf_level: float | None = None, *,
                  min_pairs: int | None = None, round_decimals: int | None = None
                  ) -> PairedTTest:
    """Two-sided paired t-test of post - baseline and the t-based CI of the mean change.

    Reference: R ``t.test(post, baseline, paired = TRUE)``; ``scipy.stats.ttest_rel``.
    Matches both to floating-point rounding (relative 1e-10 in the tests; R's
    ``sleep`` example to the printed digits). t = mean(d) / (sd(d) / sqrt(n)), df = n - 1,
    p = 2 P(T_df >= |t|), CI = mean(d) -/+ t_{df, (1 + conf_level) / 2} sd(d) / sqrt(n).

    Nulls: fewer than ``min_pairs`` (2) complete pairs -> only ``n`` and (for n = 1)
    ``mean_difference`` are given. Differences all equal once rounded to
    ``round_decimals`` (9) decimals (sd 0, or noise only) -> statistic, p and CI are null:
    R stops with "data are essentially constant" and SciPy returns NaN. Unset arguments
    are the primary plan's (``conventions()``).
    """
    c = conventions()
    conf_level = c.ci_level if conf_level is None else conf_level
    min_pairs = c.min_pairs if min_pairs is None else min_pairs
    round_decimals = c.round_decimals if round_decimals is None else round_decimals
    x, y = _complete_pairs(post, baseline)
    d = x - y
    n = int(d.size)
    if n == 0:
        return PairedTTest(0, None, None, None, None, None, None, None, conf_level)
    mean_d = float(d.mean())
    if n < max(min_pairs, 2):
        return PairedTTest(n, mean_d, None, None, None, None, None, None, conf_level)
    sd_d = float(d.std(ddof=1))
    df = n - 1
    if np.unique(np.round(d, round_decimals)).size == 1:
        return PairedTTest(n, mean_d, sd_d, None, df, None, None, None, conf_level)
    se = sd_d / np.sqrt(n)
    t_stat = mean_d / se
    p = float(2.0 * stats.t.sf(abs(t_stat), df))
    half_width = float(stats.t.ppf((1.0 + conf_level) / 2.0, df)) * se
    return PairedTTest(
        n,
        mean_d,
        sd_d,
        float(t_stat),
        df,
        min(p, 1.0),
        float(mean_d - half_width),
        float(mean_d + half_width),
        conf_level,
    )


@lru_cache(maxsize=64)
def _signrank_counts(n: int) -> np.ndarray:
    """counts[v] = number of subsets of {1..n} whose sum is v (v = 0..n(n+1)/2).

    Under H0 each of the 2^n sign patterns is equally likely, so P(V = v) = counts[v]/2^n.
    Built by the usual DP over ranks (add rank k to every subset or not). Exact in int64
    for n < 63 (every count is at most 2^n); used for n < 50.
    """
    counts = np.zeros(n * (n + 1) // 2 + 1, dtype=np.int64)
    counts[0] = 1
    for k in range(1, n + 1):
        counts[k:] = counts[k:] + counts[:-k]
    counts.flags.writeable = False
    return counts


def psignrank(q: float, n: int, *, lower_tail: bool = True) -> float:
    """P(V <= q) (or P(V > q) with ``lower_tail=False``) for the Wilcoxon signed-rank
    statistic V of n untied, non-zero values.

    Same as R ``psignrank(q, n, lower.tail)``; exact (integer counts), n < 63 here. The
    upper tail is summed directly, not taken as 1 - lower, so small p keep their digits.
    """
    counts = _signrank_counts(n)
    upto = int(np.floor(q + 1e-7))  # V is an integer here; the fuzz absorbs float error
    if lower_tail:
        hits = counts[: upto + 1].sum() if upto >= 0 else 0
    else:
        hits = counts[max(upto + 1, 0) :].sum()
    return float(hits / 2.0**n)


def _average_ranks(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks of ``a`` (ties share the mean rank, R ``rank``) and tie-group sizes."""
    _, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # 0-based first position of each value
    mean_rank = first + (counts + 1) / 2.0
    return mean_rank[inverse], counts


def wilcoxon_signed_rank(
    post: object, baseline: object, *, min_pairs: int | None = None,
    round_decimals: int | None = None, exact_below: int | None = None,
    correct: bool | None = None,
) -> WilcoxonSignedRank:
    """Two-sided Wilcoxon signed-rank test as R's ``wilcox.test(post, baseline, paired=TRUE)``.

    Follows R's ``wilcox.test.default`` (R >= 4.0, defaults ``exact = NULL``,
    ``correct = TRUE``), except that differences are rounded to 9 decimals first (§7;
    R's ``digits.rank = Inf`` does not round):

    1. d = round(post - baseline, 9) over complete pairs; zeros dropped; n = nonzeros.
    2. V = sum of the average ranks of |d| over d > 0.
    3. Exact when n < 50 and no ties and no zeros: p = min(1, 2 P(V' <= V)) when
       V <= n(n+1)/4, else min(1, 2 P(V' >= V)), V' from the signed-rank distribution
       (computed here, as R ``psignrank``).
    4. Otherwise normal approximation: z = V - n(n+1)/4,
       sigma = sqrt(n(n+1)(2n+1)/24 - sum(t^3 - t)/48) over tie groups t,
       z = (z - sign(z)/2) / sigma (R's ``CORRECTION <- sign(z) * 0.5``),
       p = 2 min(P(Z <= z), P(Z >= z)) (at most 1).

    Matches R to floating-point rounding (R's ``sleep`` and Hollander & Wolfe examples in
    the tests) and ``scipy.stats.wilcoxon`` (``zero_method="wilcox"``, ``correction=True``,
    ``method="exact"`` or ``"asymptotic"``) on the rounded differences.

    Nulls: fewer than ``min_pairs`` complete pairs (default 2, §7) -> p null. All
    differences zero -> p null (R returns NaN: sigma is 0); V is then 0 as in R. Unset
    arguments are the primary plan's (``conventions()``: 9 decimals, 2 pairs, exact below
    50, continuity correction).
    """
    c = conventions()
    min_pairs = c.min_pairs if min_pairs is None else min_pairs
    round_decimals = c.round_decimals if round_decimals is None else round_decimals
    exact_below = c.exact_below if exact_below is None else exact_below
    correct = c.correct if correct is None else correct
    x, y = _complete_pairs(post, baseline)
    n_pairs = int(x.size)
    d = np.round(x - y, round_decimals)
    zeros = bool((d == 0).any())
    d = d[d != 0]
    n = int(d.size)
    if n_pairs == 0:
        return WilcoxonSignedRank(0, 0, None, None, None, False, False)
    ranks, tie_sizes = _average_ranks(np.abs(d))
    v = float(ranks[d > 0].sum())
    ties = bool((tie_sizes > 1).any())
    if n_pairs < min_pairs or n == 0:
        return WilcoxonSignedRank(n_pairs, n, v, None, None, ties, zeros)

    if n < exact_below and not ties and not zeros:
        # R: upper tail P(V' >= v) above the mean n(n+1)/4, else lower tail P(V' <= v)
        upper = v > n * (n + 1) / 4
        one_side = psignrank(v - 1, n, lower_tail=False) if upper else psignrank(v, n)
        return WilcoxonSignedRank(n_pairs, n, v, min(2.0 * one_side, 1.0), "exact", ties, zeros)

    z = v - n * (n + 1) / 4
    sigma = np.sqrt(n * (n + 1) * (2 * n + 1) / 24 - np.sum(tie_sizes**3 - tie_sizes) / 48)
    z = (z - (np.sign(z) * 0.5 if correct else 0.0)) / sigma
    p = 2.0 * min(stats.norm.cdf(z), stats.norm.sf(z))
    return WilcoxonSignedRank(n_pairs, n, v, min(float(p), 1.0), "normal", ties, zeros)


# --- Polars expressions -------------------------------------------------------------


def _as_expr(x: str | pl.Expr) -> pl.Expr:
    return pl.col(x) if isinstance(x, str) else x


def wilcoxon_p(post: str | pl.Expr, baseline: str | pl.Expr, **conventions: object
               ) -> pl.Expr:
    """Aggregating expression: ``wilcoxon_signed_rank(post, baseline).p_value`` per group.

    Rows with a null/NaN on either side are dropped (complete pairs). Null as in
    ``wilcoxon_signed_rank`` (fewer than 2 pairs, all differences zero). Keyword
    arguments go to ``wilcoxon_signed_rank`` (the plan's conventions).
    """

    def _p(series: list[pl.Series]) -> float | None:
        post_s, base_s = series
        return wilcoxon_signed_rank(
            post_s.cast(pl.Float64).to_numpy(), base_s.cast(pl.Float64).to_numpy(),
            **conventions,
        ).p_value

    return pl.map_groups(
        [_as_expr(post), _as_expr(baseline)], _p, return_dtype=pl.Float64, returns_scalar=True
    )


def _elementwise(exprs: list[pl.Expr], fn: Callable[..., np.ndarray]) -> pl.Expr:
    def _apply(series: list[pl.Series]) -> pl.Series:
        arrays = [s.cast(pl.Float64).to_numpy() for s in series]
        with np.errstate(invalid="ignore"):
            out = np.asarray(fn(*arrays), dtype=np.float64)
        return pl.Series(out, dtype=pl.Float64).fill_nan(None)

    return pl.map_batches(exprs, _apply, return_dtype=pl.Float64, is_elementwise=True)


def t_two_sided_p(t: str | pl.Expr, df: str | pl.Expr) -> pl.Expr:
    """Elementwise two-sided p-value 2 P(T_df >= |t|) (R ``2 * pt(-abs(t), df)``).

    Null where ``t`` or ``df`` is null or ``df`` < 1.
    """
    return _elementwise(
        [_as_expr(t), _as_expr(df)],
        lambda t_, df_: np.minimum(2.0 * stats.t.sf(np.abs(t_), df_), 1.0),
    )


def t_critical(df: str | pl.Expr, conf_level: float | None = None) -> pl.Expr:
    """Elementwise t quantile for a two-sided ``conf_level`` CI (R ``qt(0.975, df)`` for
    the primary plan's 95%).

    Null where ``df`` is null or < 1.
    """
    conf_level = conventions().ci_level if conf_level is None else conf_level
    return _elementwise([_as_expr(df)], lambda df_: stats.t.ppf((1.0 + conf_level) / 2.0, df_))
