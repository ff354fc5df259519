"""Amendments side by side (issue 11): the v2 plan of the issue, in force with the primary
plan, gives mart_efficacy_by_plan rows v1 and v2, each equal to an independent computation
of §7 under that plan (plain Python and SciPy here, not ivig_platform.stats), and leaves
mart_efficacy as it is without the amendment.

One dbt build of the efficacy marts on the small fixture file of tests/dbt_fixtures.py.
Under v1 the fixture's mRSS has two pairs (p1 and p3); under v2's windows (baseline from
index - 60, post 120-240 days after the last cycle, nearest to 180) p3's post (last + 90) is
out of the window and p1 keeps its pair: the plans differ where they should.
"""

from __future__ import annotations

import math
import statistics
from datetime import date

import duckdb
import pytest
from dbt_fixtures import ASSESSMENTS, CYCLES, PATIENTS, build_by_plan_marts, patient_key
from protocol_helpers import V2
from scipy import stats as scipy_stats

#: (baseline_days_before, post_target_days, post_min_days, post_max_days) by plan.
WINDOWS = {"v1": (90, 90, 30, 180), "v2": (60, 180, 120, 240)}
COMPARED = ("n_paired", "n_baseline_only", "n_post_only", "baseline_mean", "post_mean",
            "mean_change", "sd_change", "ttest_p", "change_ci_low", "change_ci_high",
            "wilcoxon_p")


def independent_pairs(plan: str) -> dict[str, dict[str, tuple[float | None, float | None]]]:
    """measure -> patient -> (baseline, post) under the plan's windows, from the fixture."""
    before, target, low, high = WINDOWS[plan]
    starts: dict[str, list[date]] = {}
    for patient, _, start, *_ in CYCLES:
        starts.setdefault(patient, []).append(start)
    pairs: dict[str, dict[str, tuple[float | None, float | None]]] = {}
    followed = {(p, m) for p, m, *_ in ASSESSMENTS if p in starts}
    for patient, measure in sorted(followed):
        index, last = min(starts[patient]), max(starts[patient])
        rows = [(w, v) for p, m, w, v, *_ in ASSESSMENTS if p == patient and m == measure]
        baseline = [(w, v) for w, v in rows if -before <= (w - index).days <= 0]
        posts = [(w, v) for w, v in rows if low <= (w - last).days <= high]
        b = max(baseline)[1] if baseline else None
        # nearest to the target; on a tie the later date
        p = min(posts, key=lambda wv: (abs((wv[0] - last).days - target),
                                       -wv[0].toordinal()))[1] if posts else None
        pairs.setdefault(measure, {})[patient] = (b, p)
    return pairs


def independent_row(pairs: dict[str, tuple[float | None, float | None]]) -> dict[str, object]:
    complete = [(b, p) for b, p in pairs.values() if b is not None and p is not None]
    n = len(complete)
    changes = [p - b for b, p in complete]
    row: dict[str, object] = {
        "n_paired": n,
        "n_baseline_only": sum(b is not None and p is None for b, p in pairs.values()),
        "n_post_only": sum(b is None and p is not None for b, p in pairs.values()),
        "baseline_mean": statistics.fmean(b for b, _ in complete) if n else None,
        "post_mean": statistics.fmean(p for _, p in complete) if n else None,
        "mean_change": statistics.fmean(changes) if n else None,
        "sd_change": statistics.stdev(changes) if n >= 2 else None,
        "ttest_p": None, "change_ci_low": None, "change_ci_high": None, "wilcoxon_p": None,
    }
    if n >= 2 and len({round(c, 9) for c in changes}) > 1:
        t = scipy_stats.ttest_rel([p for _, p in complete], [b for b, _ in complete])
        ci = t.confidence_interval(0.95)
        row |= {"ttest_p": t.pvalue, "change_ci_low": ci.low, "change_ci_high": ci.high}
    if n >= 2 and any(round(c, 9) != 0 for c in changes):
        row["wilcoxon_p"] = scipy_stats.wilcoxon([round(c, 9) for c in changes],
                                                 method="exact").pvalue
    return row


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    path, _ = build_by_plan_marts(tmp_path_factory.mktemp("by-plan"), V2)
    con = duckdb.connect(str(path), read_only=True)
    yield con
    con.close()


def _rows(con, sql: str) -> list[dict]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def _close(got: object, expected: object) -> bool:
    if got is None or expected is None:
        return got is None and expected is None
    return math.isclose(float(got), float(expected), rel_tol=1e-9, abs_tol=1e-12)


def test_by_plan_holds_v1_then_v2_with_the_same_grid(built) -> None:
    plans = [r["analysis_plan"] for r in _rows(
        built, "select analysis_plan, count(*) as n from marts.mart_efficacy_by_plan "
               "group by analysis_plan order by min(rowid)")]
    assert plans == ["v1", "v2"]
    (counts,) = _rows(built, "select count(*) filter (where analysis_plan = 'v1') as v1, "
                             "count(*) filter (where analysis_plan = 'v2') as v2 "
                             "from marts.mart_efficacy_by_plan")
    assert counts["v1"] == counts["v2"] == 28


@pytest.mark.parametrize("plan", ["v1", "v2"])
def test_each_plans_rows_equal_an_independent_computation(built, plan) -> None:
    pairs = independent_pairs(plan)
    got = {r["measure"]: r for r in _rows(
        built, f"select * from marts.mart_efficacy_by_plan where analysis_plan = '{plan}' "
               "and subgroup = 'all'")}
    for measure in ("mrc", "ck", "mrss", "ucla_git"):
        expected = independent_row(pairs.get(measure, {}))
        for column in COMPARED:
            assert _close(got[measure][column], expected[column]), (plan, measure, column)


def test_the_plans_differ_where_their_windows_do(built) -> None:
    n = {(r["analysis_plan"], r["measure"]): r["n_paired"] for r in _rows(
        built, "select analysis_plan, measure, n_paired from marts.mart_efficacy_by_plan "
               "where subgroup = 'all'")}
    assert (n[("v1", "mrss")], n[("v2", "mrss")]) == (2, 1)


def test_mart_efficacy_is_the_primary_plan_unchanged(built) -> None:
    primary = _rows(built, "select * exclude (analysis_plan) from marts.mart_efficacy_by_plan "
                           "where analysis_plan = 'v1'")
    assert _rows(built, "select * from marts.mart_efficacy") == primary


def test_every_plans_window_labels_are_queryable_per_patient(built) -> None:
    p1 = patient_key(PATIENTS["p1"][0], "P1")
    rows = {r["analysis_plan"]: r for r in _rows(
        built, "select * from marts.fct_assessment_window_by_plan "
               f"where patient_key = '{p1}' and measure = 'ck'")}
    # v1: the edge value of index - 90 is baseline; v2's window (60 days) does not reach it
    assert rows["v1"]["baseline_value"] == 1500.0
    assert rows["v2"]["baseline_date"] is None
