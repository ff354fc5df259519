"""efficacy_table on a small hand-built cohort (protocol §7, §8)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from ivig_platform.stats import EFFICACY_SCHEMA, efficacy_table
from ivig_platform.stats.efficacy import default_spec
from ivig_platform.stats.tests_paired import paired_t_test, wilcoxon_signed_rank

# The primary plan's measures and subgroups (the fixtures below are written for v1).
MEASURES = default_spec().measures
SUBGROUPS = [(g.subgroup, g.value) for g in default_spec().subgroups]

MART_COLUMNS = [
    "subgroup", "subgroup_value", "measure", "n_paired",
    "baseline_mean", "baseline_sd", "baseline_median", "baseline_q1", "baseline_q3",
    "post_mean", "post_sd", "post_median", "post_q1", "post_q3",
    "mean_change", "change_ci_low", "change_ci_high", "ttest_p", "wilcoxon_p",
]  # fmt: skip
EXTRA_COLUMNS = [
    "n_baseline_only", "n_post_only", "sd_change", "cohens_dz",
    "n_responders", "responder_rule", "pct_responders", "n_responder_denominator",
]  # fmt: skip


def _patients() -> pl.DataFrame:
    # p1 has two indications; p4 has no landed cycle; p3 has no subtype.
    return pl.DataFrame(
        {
            "patient_key": ["p1", "p2", "p3", "p4", "p5", "p6"],
            "site_id": ["a", "a", "b", "b", "c", "c"],
            "ssc_subtype": ["diffuse", "limited", None, "diffuse", "limited", "diffuse"],
            "indication_myositis": [True, True, False, False, True, False],
            "indication_gastrointestinal": [True, False, False, False, False, True],
            "indication_skin": [False, False, True, False, None, False],
            "indication_other": [False, False, False, True, False, False],
            "n_cycles": [5, 3, 2, 0, 4, 6],
        }
    )


# (patient, measure, timepoint, value)
_ROWS = [
    ("p1", "mrc", "baseline", 2.67), ("p1", "mrc", "post", 4.0),
    ("p2", "mrc", "baseline", 3.0), ("p2", "mrc", "post", 3.33),
    ("p3", "mrc", "baseline", 2.0), ("p3", "mrc", "post", 2.67),  # 3- is below grade 3
    ("p5", "mrc", "baseline", 4.0), ("p5", "mrc", "post", 5.0),
    ("p6", "mrc", "baseline", 3.0),  # left out: no post
    ("p4", "mrc", "baseline", 1.0), ("p4", "mrc", "post", 5.0),  # n_cycles 0: excluded
    ("zz", "mrc", "baseline", 1.0), ("zz", "mrc", "post", 5.0),  # not in dim_patient
    ("p1", "mrc", None, 1.0),  # not a baseline/post assessment
    ("p1", "mrss", "baseline", 20.0), ("p1", "mrss", "post", 14.0),  # -6: responder
    ("p2", "mrss", "baseline", 10.0), ("p2", "mrss", "post", 6.0),  # -4: not
    ("p5", "mrss", "baseline", 15.0), ("p5", "mrss", "post", 10.0),  # -5: responder
    ("p6", "mrss", "post", 12.0),  # left out: no baseline
    ("p1", "ck", "baseline", 1500.0), ("p1", "ck", "post", 150.0),  # eligible, responder
    ("p2", "ck", "baseline", 150.0), ("p2", "ck", "post", 100.0),  # not eligible
    ("p3", "ck", "baseline", 800.0), ("p3", "ck", "post", 400.0),  # eligible, not
    ("p5", "ck", "baseline", 250.0), ("p5", "ck", "post", 199.0),  # eligible, responder
    ("p1", "ucla_git", "baseline", 1.0), ("p1", "ucla_git", "post", 0.5),
    ("p2", "ucla_git", "baseline", 1.2), ("p2", "ucla_git", "post", 1.2),
    ("p5", "ucla_git", "baseline", 0.8), ("p5", "ucla_git", "post", None),  # null = missing
]  # fmt: skip


def _assessments(rows: list[tuple[str, str, str | None, float | None]] = _ROWS) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "patient_key": pl.String,
            "measure": pl.String,
            "analysis_timepoint": pl.String,
            "value": pl.Float64,
        },
        orient="row",
    ).with_columns(site_id=pl.lit("a"), assessment_date=pl.lit(None, dtype=pl.Date))


@pytest.fixture(scope="module")
def table() -> pl.DataFrame:
    return efficacy_table(_assessments(), _patients())


def _row(table: pl.DataFrame, subgroup: str, value: str, measure: str) -> dict:
    (row,) = table.filter(
        (pl.col("subgroup") == subgroup)
        & (pl.col("subgroup_value") == value)
        & (pl.col("measure") == measure)
    ).rows(named=True)
    return row


def test_schema_and_every_subgroup_measure_row(table: pl.DataFrame) -> None:
    assert table.columns == MART_COLUMNS + EXTRA_COLUMNS
    assert dict(table.schema) == EFFICACY_SCHEMA
    expected = [(s, v, m) for s, v in SUBGROUPS for m in MEASURES]
    assert table.select("subgroup", "subgroup_value", "measure").rows() == expected
    assert len(expected) == 28
    assert {v for s, v in SUBGROUPS if s == "indication"} == {
        "myositis", "gastrointestinal", "skin", "other",
    }  # fmt: skip


def test_overall_mrc_statistics(table: pl.DataFrame) -> None:
    row = _row(table, "all", "all", "mrc")
    base = np.array([2.67, 3.0, 2.0, 4.0])  # p1 p2 p3 p5; p4 (no cycle) and zz left out
    post = np.array([4.0, 3.33, 2.67, 5.0])
    assert row["n_paired"] == 4
    assert (row["n_baseline_only"], row["n_post_only"]) == (1, 0)  # p6
    assert row["baseline_mean"] == pytest.approx(base.mean())
    assert row["baseline_sd"] == pytest.approx(base.std(ddof=1))
    assert [row["baseline_q1"], row["baseline_median"], row["baseline_q3"]] == pytest.approx(
        list(np.percentile(base, [25, 50, 75], method="linear"))
    )
    assert [row["post_q1"], row["post_median"], row["post_q3"]] == pytest.approx(
        list(np.percentile(post, [25, 50, 75], method="linear"))
    )
    ref = stats.ttest_rel(post, base)
    ci = ref.confidence_interval()
    assert row["mean_change"] == pytest.approx((post - base).mean())
    assert row["sd_change"] == pytest.approx((post - base).std(ddof=1))
    assert row["ttest_p"] == pytest.approx(ref.pvalue, rel=1e-10)
    assert (row["change_ci_low"], row["change_ci_high"]) == pytest.approx((ci.low, ci.high))
    t = paired_t_test(post, base)
    assert row["ttest_p"] == pytest.approx(t.p_value, rel=1e-12)
    assert row["cohens_dz"] is None  # 4 pairs: below the small-cell threshold (§6)
    assert row["wilcoxon_p"] == pytest.approx(wilcoxon_signed_rank(post, base).p_value)
    # responders: post >= 3 -> 4.0, 3.33, 5.0 (2.67 = 3- is below)
    assert (row["n_responders"], row["n_responder_denominator"]) == (3, 4)
    assert row["pct_responders"] == pytest.approx(75.0)
    assert "post >= 3" in row["responder_rule"]


def test_patient_with_two_indications_counts_in_both(table: pl.DataFrame) -> None:
    myositis = _row(table, "indication", "myositis", "mrc")  # p1 p2 p5
    gi = _row(table, "indication", "gastrointestinal", "mrc")  # p1 (+ p6 baseline only)
    assert myositis["n_paired"] == 3
    assert myositis["baseline_mean"] == pytest.approx(np.mean([2.67, 3.0, 4.0]))
    assert (gi["n_paired"], gi["n_baseline_only"]) == (1, 1)
    # one pair: mean/median given, statistics needing 2 pairs null
    assert gi["mean_change"] == pytest.approx(4.0 - 2.67)
    assert gi["baseline_median"] == 2.67 and gi["post_q3"] == 4.0
    for col in ("baseline_sd", "sd_change", "change_ci_low", "ttest_p", "wilcoxon_p"):
        assert gi[col] is None, col
    assert gi["cohens_dz"] is None


def test_subtype_subgroups_and_exclusions(table: pl.DataFrame) -> None:
    diffuse = _row(table, "ssc_subtype", "diffuse", "mrc")  # p1 (+ p6); p4 excluded
    limited = _row(table, "ssc_subtype", "limited", "mrc")  # p2 p5
    assert (diffuse["n_paired"], diffuse["n_baseline_only"]) == (1, 1)
    assert limited["n_paired"] == 2
    skin = _row(table, "indication", "skin", "mrc")  # p3 only (null subtype, p5 skin null)
    assert skin["n_paired"] == 1 and skin["post_mean"] == 2.67
    for measure in MEASURES:  # indication 'other' is p4 only, who has no cycle
        other = _row(table, "indication", "other", measure)
        assert (other["n_paired"], other["n_baseline_only"], other["n_post_only"]) == (0, 0, 0)
        assert other["baseline_mean"] is None and other["wilcoxon_p"] is None


def test_mrss_left_out_and_responders(table: pl.DataFrame) -> None:
    row = _row(table, "all", "all", "mrss")
    assert (row["n_paired"], row["n_baseline_only"], row["n_post_only"]) == (3, 0, 1)
    assert row["mean_change"] == pytest.approx(-5.0)
    assert (row["n_responders"], row["n_responder_denominator"]) == (2, 3)  # -6 and -5


def test_ck_responders_among_abnormal_baseline(table: pl.DataFrame) -> None:
    row = _row(table, "all", "all", "ck")
    assert row["n_paired"] == 4
    assert (row["n_responders"], row["n_responder_denominator"]) == (2, 3)
    assert row["pct_responders"] == pytest.approx(200 / 3)
    assert "baseline >= 200" in row["responder_rule"]


def test_ucla_git_has_no_responder_rule_and_null_value_is_missing(table: pl.DataFrame) -> None:
    row = _row(table, "all", "all", "ucla_git")
    assert (row["n_paired"], row["n_baseline_only"]) == (2, 1)  # p5's post is null
    for col in ("n_responders", "n_responder_denominator", "pct_responders", "responder_rule"):
        assert row[col] is None, col
    assert row["wilcoxon_p"] == wilcoxon_signed_rank([0.5, 1.2], [1.0, 1.2]).p_value


def test_constant_change_has_no_t_test() -> None:
    rows = [(k, "mrss", tp, v) for k in ("p1", "p2", "p5") for tp, v in
            (("baseline", 10.0), ("post", 8.0))]  # fmt: skip
    row = _row(efficacy_table(_assessments(rows), _patients()), "all", "all", "mrss")
    assert row["n_paired"] == 3 and row["mean_change"] == -2.0 and row["sd_change"] == 0.0
    assert row["ttest_p"] is row["change_ci_low"] is row["cohens_dz"] is None
    assert row["wilcoxon_p"] == wilcoxon_signed_rank([8.0] * 3, [10.0] * 3).p_value


def test_empty_assessments_still_give_every_row() -> None:
    out = efficacy_table(_assessments([]), _patients())
    assert out.height == 28 and out["n_paired"].to_list() == [0] * 28
    assert out["n_responders"].null_count() == 7  # ucla_git rows


def test_duplicate_baseline_is_an_error() -> None:
    rows = [*_ROWS, ("p1", "mrc", "baseline", 3.0)]
    with pytest.raises(ValueError, match="more than one"):
        efficacy_table(_assessments(rows), _patients())


def test_missing_column_is_an_error() -> None:
    with pytest.raises(ValueError, match="indication_skin"):
        efficacy_table(_assessments(), _patients().drop("indication_skin"))


def test_input_row_order_does_not_change_output(table: pl.DataFrame) -> None:
    shuffled = _assessments().sample(fraction=1.0, shuffle=True, seed=7)
    assert efficacy_table(shuffled, _patients().reverse()).equals(table)  # bit for bit


def _pairs_of(n: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """n analysed patients, each with an mrss baseline and a post value."""
    keys = [f"q{i}" for i in range(n)]
    patients = pl.DataFrame({
        "patient_key": keys, "site_id": ["a"] * n, "ssc_subtype": ["diffuse"] * n,
        **{f"indication_{v}": [v == "skin"] * n
           for v in ("myositis", "gastrointestinal", "skin", "other")},
        "n_cycles": [3] * n,
    })
    rows = [(k, "mrss", tp, float(v)) for i, k in enumerate(keys)
            for tp, v in (("baseline", 20 + i), ("post", 14 + 2 * i % 5))]
    return _assessments(rows), patients


@pytest.mark.parametrize("n", [2, 4, 5, 6])
def test_effect_size_is_null_below_the_small_cell_threshold(n: int) -> None:
    """cohens_dz of 2 pairs can be any size (-52.3 in issue 14): null below §6's 5 pairs,
    where the report shows no statistic either; the tests and the CI keep their pairs."""
    assessments, patients = _pairs_of(n)
    row = _row(efficacy_table(assessments, patients), "all", "all", "mrss")
    base = np.array([20.0 + i for i in range(n)])
    post = np.array([14.0 + 2 * i % 5 for i in range(n)])
    d = post - base
    assert row["n_paired"] == n and row["ttest_p"] is not None
    if n < 5:
        assert row["cohens_dz"] is None
    else:
        assert row["cohens_dz"] == pytest.approx(d.mean() / d.std(ddof=1))
