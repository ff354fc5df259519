"""Paired t-test and Wilcoxon signed-rank test against R's published results and SciPy."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ivig_platform.stats.tests_paired import (
    paired_t_test,
    psignrank,
    t_critical,
    t_two_sided_p,
    wilcoxon_p,
    wilcoxon_signed_rank,
)

FAST = settings(derandomize=True, max_examples=200, deadline=None, database=None)

# R's `sleep` data: extra for group 1 and group 2, IDs 1-10.
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]

# Hollander & Wolfe (1973), p. 29, the example of R's ?wilcox.test.
HW_X = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
HW_Y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]


# --- R references ----------------------------------------------------------------------


def test_paired_t_matches_r_sleep() -> None:
    """R: t.test(extra ~ group, data = sleep, paired = TRUE) (R < 4.4 formula form)

    t = -4.0621, df = 9, p-value = 0.002833
    95 percent confidence interval: -2.4598858 -0.7001142
    mean difference -1.58
    """
    res = paired_t_test(SLEEP_1, SLEEP_2)
    assert res.n == 10 and res.df == 9
    assert res.statistic == pytest.approx(-4.0621, abs=5e-5)
    assert res.p_value == pytest.approx(0.002833, abs=5e-7)
    assert res.ci_low == pytest.approx(-2.4598858, abs=5e-8)
    assert res.ci_high == pytest.approx(-0.7001142, abs=5e-8)
    assert res.mean_difference == pytest.approx(-1.58, abs=1e-12)


def test_wilcoxon_matches_r_sleep_ties_and_zero() -> None:
    """R: wilcox.test(sleep$extra[1:10], sleep$extra[11:20], paired = TRUE)

    V = 0, p-value = 0.009091, with warnings "cannot compute exact p-value with ties" and
    "... with zeroes". By R's source: d = (-1.2, -2.4, -1.3, -1.3, 0, -1.0, -1.8, -0.8,
    -4.6, -1.4); the zero (ID 9) is dropped, n = 9; one tie (1.3 twice, ranks 4.5);
    V = 0; z = 0 - 9*10/4 = -22.5; sigma = sqrt(9*10*19/24 - (2^3 - 2)/48) =
    sqrt(71.125); CORRECTION = sign(z) * 0.5 = -0.5; z = (-22.5 + 0.5)/sigma = -2.6086;
    p = 2 * pnorm(-2.6086) = 0.009091.
    """
    res = wilcoxon_signed_rank(SLEEP_1, SLEEP_2)
    assert res.method == "normal" and res.ties and res.zeros
    assert (res.n_pairs, res.n_nonzero, res.statistic) == (10, 9, 0.0)
    z = (-22.5 + 0.5) / np.sqrt(9 * 10 * 19 / 24 - (2**3 - 2) / 48)
    assert res.p_value == pytest.approx(2 * stats.norm.cdf(z), rel=1e-12)
    assert res.p_value == pytest.approx(0.009091, abs=5e-7)


def test_wilcoxon_matches_r_hollander_wolfe_exact() -> None:
    """R ?wilcox.test: wilcox.test(x, y, paired = TRUE) -> V = 40, p-value = 0.03906.

    No ties, no zeros, n = 9 < 50: exact. V = 40 > 9*10/4, so p = 2 P(V' >= 40) = 2 * 10/512
    (the 10 subsets of {1..9} with sum <= 5, by symmetry) = 0.0390625.
    """
    res = wilcoxon_signed_rank(HW_X, HW_Y)
    assert res.method == "exact" and not res.ties and not res.zeros
    assert res.statistic == 40.0
    assert res.p_value == pytest.approx(20 / 512, rel=1e-15)


# --- exact distribution ------------------------------------------------------------------


@pytest.mark.parametrize("n", range(0, 13))
def test_psignrank_equals_enumeration(n: int) -> None:
    sums = [sum(c) for k in range(n + 1) for c in itertools.combinations(range(1, n + 1), k)]
    counts = np.bincount(sums, minlength=n * (n + 1) // 2 + 1)
    cdf = np.cumsum(counts) / 2**n
    for q in range(-1, n * (n + 1) // 2 + 2):
        expected = 0.0 if q < 0 else cdf[min(q, len(cdf) - 1)]
        assert psignrank(q, n) == pytest.approx(expected, rel=1e-15, abs=1e-300)
        assert psignrank(q, n, lower_tail=False) == pytest.approx(1 - expected, abs=1e-15)


def test_psignrank_keeps_small_upper_tail() -> None:
    # P(V >= 1225 | n = 49) = 2^-49: exact, not 1 - (1 - 2^-49) = 0.
    assert psignrank(1224, 49, lower_tail=False) == 2.0**-49


# --- SciPy as an independent reference -----------------------------------------------


def _scipy_wilcoxon_p(post: np.ndarray, baseline: np.ndarray, min_pairs: int = 2) -> float | None:
    """Same rules, computed by scipy.stats.wilcoxon on the rounded differences."""
    d = np.round(post - baseline, 9)
    nonzero = d[d != 0]
    if d.size < min_pairs or nonzero.size == 0:
        return None
    ties = np.unique(np.abs(nonzero)).size < nonzero.size
    exact = nonzero.size < 50 and not ties and nonzero.size == d.size
    method = "exact" if exact else "asymptotic"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.wilcoxon(d, zero_method="wilcox", correction=True, method=method)
    return float(res.pvalue)


def _check_wilcoxon(post: np.ndarray, baseline: np.ndarray, min_pairs: int = 2) -> None:
    got = wilcoxon_signed_rank(post, baseline, min_pairs=min_pairs).p_value
    expected = _scipy_wilcoxon_p(post, baseline, min_pairs=min_pairs)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-14)


baselines = st.integers(0, 5000).map(lambda k: k / 100)


@FAST
@given(
    steps=st.lists(
        st.integers(-100_000, 100_000).filter(bool), unique_by=abs, min_size=1, max_size=60
    ),
    data=st.data(),
)
def test_wilcoxon_untied_matches_scipy(steps: list[int], data: st.DataObject) -> None:
    """No ties, no zeros: exact for n < 50 (and n = 1 with min_pairs=1), normal above."""
    baseline = np.array(data.draw(st.lists(baselines, min_size=len(steps), max_size=len(steps))))
    post = baseline + np.array(steps) / 100
    _check_wilcoxon(post, baseline)
    _check_wilcoxon(post, baseline, min_pairs=1)
    res = wilcoxon_signed_rank(post, baseline)
    if len(steps) >= 2:
        assert res.method == ("exact" if len(steps) < 50 else "normal")


@FAST
@given(steps=st.lists(st.integers(-4, 4), min_size=0, max_size=70), data=st.data())
def test_wilcoxon_ties_and_zeros_match_scipy(steps: list[int], data: st.DataObject) -> None:
    """Many ties and zeros (steps of 0.5): normal approximation with tie correction."""
    baseline = np.array(data.draw(st.lists(baselines, min_size=len(steps), max_size=len(steps))))
    post = baseline + np.array(steps, dtype=float) * 0.5
    _check_wilcoxon(post, baseline)
    _check_wilcoxon(post, baseline, min_pairs=1)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_wilcoxon_small_n(n: int) -> None:
    post, baseline = np.arange(n) + 2.5, np.zeros(n)
    res = wilcoxon_signed_rank(post, baseline)
    assert res.n_pairs == n
    assert res.p_value is None if n < 2 else res.p_value == _scipy_wilcoxon_p(post, baseline)
    if n == 1:  # R: wilcox.test(2.5, 0, paired = TRUE) -> V = 1, p-value = 1
        assert wilcoxon_signed_rank(post, baseline, min_pairs=1).p_value == 1.0
    if n == 2:  # exact: V = 3 = max, p = 2 * P(V' >= 3) = 2 * 1/4
        assert res.method == "exact" and res.p_value == 0.5


@pytest.mark.parametrize("n", [2, 3, 7, 60])
def test_wilcoxon_all_equal_differences(n: int) -> None:
    """All differences equal: one tie group, normal approximation (R and SciPy agree)."""
    baseline = np.linspace(0.0, 3.0, n)
    res = wilcoxon_signed_rank(baseline + 0.7, baseline)
    assert res.ties and res.method == "normal"
    _check_wilcoxon(baseline + 0.7, baseline)


def test_wilcoxon_all_zero_differences_is_null() -> None:
    """R returns p = NaN (sigma = 0) with V = 0; SciPy returns NaN: we return null."""
    res = wilcoxon_signed_rank([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert res.p_value is None and res.method is None
    assert res.statistic == 0.0 and res.n_nonzero == 0 and res.zeros


def test_rounding_removes_false_zero() -> None:
    """0.1 + 0.2 - 0.3 = 5.6e-17 is a zero after rounding: dropped, so no exact test."""
    post = np.array([0.1 + 0.2, 1.0, 2.5, -0.7])
    baseline = np.array([0.3, 0.0, 0.0, 0.0])
    assert (post - baseline)[0] != 0.0
    res = wilcoxon_signed_rank(post, baseline)
    assert res.zeros and res.n_nonzero == 3 and res.method == "normal"
    expected = stats.wilcoxon([1.0, 2.5, -0.7], correction=True, method="asymptotic").pvalue
    assert res.p_value == pytest.approx(expected, rel=1e-12)


def test_rounding_finds_true_tie() -> None:
    """0.4 - 0.1 = 0.30000000000000004 and 0.3 - 0 = 0.3 are the same difference."""
    post = np.array([0.4, 0.3, 2.0, -3.5])
    baseline = np.array([0.1, 0.0, 0.0, 0.0])
    raw = post - baseline
    assert raw[0] != raw[1]  # unrounded, R would see no tie and use the exact test
    res = wilcoxon_signed_rank(post, baseline)
    assert res.ties and res.method == "normal" and res.statistic == 1.5 + 1.5 + 3
    expected = stats.wilcoxon([0.3, 0.3, 2.0, -3.5], correction=True, method="asymptotic")
    assert res.p_value == pytest.approx(expected.pvalue, rel=1e-12)


def test_missing_pairs_are_dropped() -> None:
    res = wilcoxon_signed_rank([1.0, np.nan, 3.0, 4.0], [0.0, 1.0, np.nan, 1.5])
    assert res.n_pairs == 2
    assert paired_t_test([1.0, np.nan, 3.0, 4.0], [0.0, 1.0, np.nan, 1.5]).n == 2
    with pytest.raises(ValueError, match="length"):
        paired_t_test([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="infinite"):
        wilcoxon_signed_rank([np.inf, 1.0], [0.0, 0.0])


# --- paired t-test -----------------------------------------------------------------------


@FAST
@given(
    pairs=st.lists(
        st.tuples(st.integers(-10_000, 10_000), st.integers(-10_000, 10_000)),
        min_size=0,
        max_size=40,
    )
)
def test_paired_t_matches_scipy(pairs: list[tuple[int, int]]) -> None:
    post = np.array([p for p, _ in pairs], dtype=float) / 100
    baseline = np.array([b for _, b in pairs], dtype=float) / 100
    res = paired_t_test(post, baseline)
    assert res.n == len(pairs)
    if len(pairs) < 2:
        assert res.statistic is res.p_value is res.ci_low is res.ci_high is None
        assert res.sd_difference is None
        return
    if np.unique(np.round(post - baseline, 9)).size == 1:  # R: "essentially constant"
        assert res.statistic is res.p_value is res.ci_low is None
        return
    ref = stats.ttest_rel(post, baseline)
    ci = ref.confidence_interval(0.95)
    assert res.statistic == pytest.approx(ref.statistic, rel=1e-10)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
    assert (res.ci_low, res.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9, abs=1e-12)
    assert res.mean_difference == pytest.approx(float(np.mean(post - baseline)), abs=1e-12)


def test_paired_t_single_pair_keeps_mean() -> None:
    res = paired_t_test([3.0], [1.0])
    assert res.n == 1 and res.mean_difference == 2.0
    assert res.sd_difference is res.p_value is res.ci_low is None
    assert paired_t_test([], []).mean_difference is None


def test_paired_t_constant_differences_is_null() -> None:
    """R stops ("data are essentially constant"); SciPy gives t = inf, p = 0: we give null."""
    res = paired_t_test([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert res.mean_difference == pytest.approx(1.0) and res.sd_difference == 0.0
    assert res.statistic is res.p_value is res.ci_low is res.ci_high is None


# --- expressions --------------------------------------------------------------------------


def test_expressions_match_functions_per_group() -> None:
    frame = pl.DataFrame(
        {
            "g": ["sleep"] * 10 + ["hw"] * 9 + ["one"] + ["nulls"] * 3,
            "post": [*SLEEP_1, *HW_X, 1.0, 1.0, None, 3.0],
            "base": [*SLEEP_2, *HW_Y, 0.0, 0.5, 2.0, None],
        }
    )
    out = frame.group_by("g").agg(wilcoxon_p("post", "base").alias("p"))
    got = dict(out.iter_rows())
    assert got["sleep"] == wilcoxon_signed_rank(SLEEP_1, SLEEP_2).p_value
    assert got["hw"] == pytest.approx(0.0390625)
    assert got["one"] is None and got["nulls"] is None  # one complete pair each


def test_t_expressions_are_elementwise() -> None:
    frame = pl.DataFrame({"t": [-4.062127683382037, 0.0, None], "df": [9, 3, 5]})
    out = frame.select(p=t_two_sided_p("t", "df"), crit=t_critical("df"))
    assert out["p"][0] == pytest.approx(0.002833, abs=5e-7)
    assert out["p"][1] == 1.0 and out["p"][2] is None
    assert out["crit"].to_list() == pytest.approx(list(stats.t.ppf(0.975, [9, 3, 5])))
