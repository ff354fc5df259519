"""Efficacy table (``marts.mart_efficacy``, protocol §7 and §8) from the marts, no I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from ivig_platform.stats._frames import analysed_patients, require_columns
from ivig_platform.stats.summaries import describe, mean, sd
from ivig_platform.stats.tests_paired import (
    MIN_PAIRS,
    ROUND_DECIMALS,
    t_critical,
    t_two_sided_p,
    wilcoxon_p,
)

MEASURES: tuple[str, ...] = ("mrc", "ck", "mrss", "ucla_git")
SSC_SUBTYPES: tuple[str, ...] = ("diffuse", "limited")
INDICATIONS: tuple[str, ...] = ("myositis", "gastrointestinal", "skin", "other")

#: (subgroup, subgroup_value) in output order (§7 "overall, SSc subtype, each indication").
SUBGROUPS: tuple[tuple[str, str], ...] = (
    ("all", "all"),
    *(("ssc_subtype", v) for v in SSC_SUBTYPES),
    *(("indication", v) for v in INDICATIONS),
)

#: Upper limit of normal used by the CK responder rule (U/L).
CK_NORMAL_LIMIT_U_L = 200.0
#: mRSS minimal clinically important difference (protocol §1: about 5 points).
MRSS_MCID = 5.0
#: MRC "grade 3-5" threshold on the post value (3- = 2.67 is below).
MRC_GRADE_3 = 3.0


def _r(expr: pl.Expr) -> pl.Expr:
    """Round to the §7 9 decimals so float noise cannot move a value across a threshold."""
    return expr.round(ROUND_DECIMALS)


@dataclass(frozen=True)
class ResponderRule:
    """A responder definition over one complete pair (columns ``baseline``, ``post``).

    ``eligible`` selects the pairs that form the denominator; ``responder`` the pairs,
    among the eligible, that count as responders.
    """

    text: str
    eligible: pl.Expr
    responder: pl.Expr


_BASE, _POST = pl.col("baseline"), pl.col("post")

#: Responder rules by measure. ucla_git has none: the protocol defines no responder rule
#: for it, and its published MIDs are anchor-based ranges, not one agreed threshold.
RESPONDER_RULES: dict[str, ResponderRule] = {
    "mrc": ResponderRule(
        text="post >= 3 (MRC grade 3-5; 3- = 2.67 is below); denominator: n_paired",
        eligible=pl.lit(True),
        responder=_r(_POST) >= MRC_GRADE_3,
    ),
    "ck": ResponderRule(
        text=(
            "post < 200 U/L among pairs with baseline >= 200 U/L; "
            "denominator: pairs with baseline >= 200 U/L"
        ),
        eligible=_r(_BASE) >= CK_NORMAL_LIMIT_U_L,
        responder=_r(_POST) < CK_NORMAL_LIMIT_U_L,
    ),
    "mrss": ResponderRule(
        text="baseline - post >= 5 points (mRSS MCID); denominator: n_paired",
        eligible=pl.lit(True),
        responder=_r(_BASE - _POST) >= MRSS_MCID,
    ),
}

#: §8 columns of mart_efficacy, in order.
MART_COLUMNS: tuple[str, ...] = (
    "subgroup", "subgroup_value", "measure", "n_paired",
    "baseline_mean", "baseline_sd", "baseline_median", "baseline_q1", "baseline_q3",
    "post_mean", "post_sd", "post_median", "post_q1", "post_q3",
    "mean_change", "change_ci_low", "change_ci_high", "ttest_p", "wilcoxon_p",
)  # fmt: skip
#: Columns added after the §8 ones, in order.
EXTRA_COLUMNS: tuple[str, ...] = (
    "n_baseline_only", "n_post_only", "sd_change", "cohens_dz",
    "n_responders", "responder_rule", "pct_responders", "n_responder_denominator",
)  # fmt: skip

_INT_COLUMNS = {
    "n_paired", "n_baseline_only", "n_post_only", "n_responders", "n_responder_denominator",
}  # fmt: skip
_STR_COLUMNS = {"subgroup", "subgroup_value", "measure", "responder_rule"}

#: Output schema of ``efficacy_table``.
EFFICACY_SCHEMA: dict[str, pl.DataType] = {
    c: pl.Int64() if c in _INT_COLUMNS else pl.String() if c in _STR_COLUMNS else pl.Float64()
    for c in MART_COLUMNS + EXTRA_COLUMNS
}

_ASSESSMENT_COLUMNS = ("patient_key", "measure", "value", "analysis_timepoint")
_PATIENT_COLUMNS = (
    "patient_key", "ssc_subtype", "n_cycles", *(f"indication_{v}" for v in INDICATIONS),
)  # fmt: skip
_KEYS = ["subgroup", "subgroup_value", "measure"]


def efficacy_table(assessments: pl.DataFrame, patients: pl.DataFrame) -> pl.DataFrame:
    """Paired baseline/post analysis per subgroup x measure (mart_efficacy).

    Inputs: ``assessments`` shaped like ``marts.fct_assessment`` (uses ``patient_key``,
    ``measure``, ``value``, ``analysis_timepoint``) and ``patients`` like
    ``marts.dim_patient`` (uses ``patient_key``, ``ssc_subtype``, ``n_cycles``,
    ``indication_*``). Extra columns are ignored.

    Grain: one row per subgroup x measure, always all 7 x 4 = 28 rows, in the order of
    ``SUBGROUPS`` then ``MEASURES``, even when ``n_paired`` is 0.

    Who counts:
      * Patients with ``n_cycles`` 0 (or null) leave every analysis (§7); assessments of
        patients absent from ``patients`` are ignored.
      * Subgroups: ``all``; ``ssc_subtype`` diffuse / limited (null subtype: only in
        ``all``); ``indication`` myositis / gastrointestinal / skin / other from the
        ``indication_*`` flags (null = false) — a patient with two indications counts in
        both rows.
      * Per patient x measure, the row flagged ``analysis_timepoint`` 'baseline' and the
        one flagged 'post' (other rows ignored). More than one row for a patient x
        measure x timepoint raises ``ValueError`` (dbt guarantees at most one). A null
        or NaN ``value`` counts as no measurement.
      * Paired analysis: patients with both (§7). ``n_baseline_only`` / ``n_post_only``
        count the patients of the subgroup left out for want of a post / a baseline.

    Columns (``EFFICACY_SCHEMA``; counts Int64, statistics Float64, null = not
    computable):
      * ``subgroup``, ``subgroup_value``, ``measure``, ``n_paired``.
      * ``baseline_*`` / ``post_*``: mean, SD (n - 1), median, q1, q3 (R type 7) of the
        paired values (``summaries``). SD null for n_paired < 2.
      * ``mean_change``: mean of post - baseline (= post_mean - baseline_mean);
        ``change_ci_low/high``: t-based 95% CI; ``ttest_p``: two-sided paired t-test.
        Match R ``t.test(post, baseline, paired = TRUE)`` (see ``paired_t_test``). Null
        for n_paired < 2, and CI/p also when all differences are equal (R: "data are
        essentially constant").
      * ``wilcoxon_p``: R ``wilcox.test(post, baseline, paired = TRUE)`` with §7's
        9-decimal rounding (see ``wilcoxon_signed_rank``). Null for n_paired < 2 (§7;
        R would give p = 1 for one pair) and when every difference is zero (R: NaN).
      * ``n_baseline_only``, ``n_post_only`` (see above).
      * ``sd_change``: SD (n - 1) of the differences; ``cohens_dz``: mean_change /
        sd_change (null when ttest_p is null for want of pairs or of spread).
      * ``n_responders`` / ``n_responder_denominator`` / ``pct_responders`` (percent,
        0-100, null when the denominator is 0) and ``responder_rule`` (the rule as text):
        mrc post >= 3 over n_paired; mrss baseline - post >= 5 over n_paired; ck
        post < 200 U/L over the pairs with baseline >= 200 U/L; ucla_git: all four null
        (no rule in the protocol). Thresholds are compared after rounding to 9 decimals.
    """
    require_columns(assessments, _ASSESSMENT_COLUMNS, "assessments")
    require_columns(patients, _PATIENT_COLUMNS, "patients")
    analysed = analysed_patients(patients)

    long = (
        _memberships(analysed)
        .join(_pairs(assessments, analysed), on="patient_key", how="inner")
        .with_columns(
            _by_measure(lambda rule: rule.eligible).alias("_eligible"),
            _by_measure(lambda rule: rule.responder).alias("_responder"),
        )
    )
    # a fixed row order within groups makes float sums, hence the output, reproducible
    stats = long.sort([*_KEYS, "patient_key"]).group_by(_KEYS).agg(_aggregations())
    return (
        _grid()
        .join(stats, on=_KEYS, how="left")
        .sort("_order")
        .with_columns(pl.col("n_paired", "n_baseline_only", "n_post_only").fill_null(0))
        .with_columns(_derived())
        .select(pl.col(c).cast(dtype) for c, dtype in EFFICACY_SCHEMA.items())
    )


def efficacy_pairs(assessments: pl.DataFrame, patients: pl.DataFrame) -> pl.DataFrame:
    """The complete (patient, baseline, post) pairs behind each mart_efficacy row.

    Columns ``subgroup``, ``subgroup_value``, ``measure``, ``patient_key``, ``baseline``,
    ``post``: exactly the pairs ``efficacy_table`` counts in ``n_paired`` (same
    memberships, same flagged rows), so `ivig explain` can show what a row was computed
    from. Inputs as for ``efficacy_table``.
    """
    require_columns(assessments, _ASSESSMENT_COLUMNS, "assessments")
    require_columns(patients, _PATIENT_COLUMNS, "patients")
    analysed = analysed_patients(patients)
    return (
        _memberships(analysed)
        .join(_pairs(assessments, analysed), on="patient_key", how="inner")
        .filter(_BASE.is_not_null() & _POST.is_not_null())
        .select(*_KEYS, "patient_key", "baseline", "post")
        .sort(*_KEYS, "patient_key")
    )


def _memberships(analysed: pl.DataFrame) -> pl.DataFrame:
    """One row per analysed patient x subgroup the patient belongs to."""
    key = pl.col("patient_key")
    overall = analysed.select(key, subgroup=pl.lit("all"), subgroup_value=pl.lit("all"))
    subtype = analysed.filter(pl.col("ssc_subtype").cast(pl.String).is_in(SSC_SUBTYPES)).select(
        key, subgroup=pl.lit("ssc_subtype"), subgroup_value=pl.col("ssc_subtype").cast(pl.String)
    )
    indication = (
        analysed.select(
            key,
            *(
                pl.col(f"indication_{v}").cast(pl.Boolean).fill_null(False).alias(v)
                for v in INDICATIONS
            ),
        )
        .unpivot(index="patient_key", variable_name="subgroup_value", value_name="_member")
        .filter(pl.col("_member"))
        .select(key, subgroup=pl.lit("indication"), subgroup_value=pl.col("subgroup_value"))
    )
    return pl.concat([overall, subtype, indication], how="vertical")


def _pairs(assessments: pl.DataFrame, analysed: pl.DataFrame) -> pl.DataFrame:
    """One row per analysed patient x measure with a baseline or post: baseline, post."""
    flagged = (
        assessments.select(
            pl.col("patient_key").cast(pl.String),
            pl.col("measure").cast(pl.String),
            pl.col("analysis_timepoint").cast(pl.String).alias("timepoint"),
            pl.col("value").cast(pl.Float64).fill_nan(None),
        )
        .filter(pl.col("measure").is_in(MEASURES) & pl.col("timepoint").is_in(["baseline", "post"]))
        .join(analysed.select("patient_key"), on="patient_key", how="semi")
    )
    duplicated = (
        flagged.group_by("patient_key", "measure", "timepoint").len().filter(pl.col("len") > 1)
    )
    if duplicated.height:
        raise ValueError(
            f"{duplicated.height} patient x measure x timepoint combination(s) have more "
            "than one assessment flagged; fct_assessment must hold at most one baseline "
            "and one post per patient and measure"
        )
    value, timepoint = pl.col("value"), pl.col("timepoint")
    return (
        flagged.filter(value.is_not_null())
        .group_by("patient_key", "measure")
        .agg(
            baseline=value.filter(timepoint == "baseline").first(),
            post=value.filter(timepoint == "post").first(),
        )
    )


def _by_measure(pick: Callable[[ResponderRule], pl.Expr]) -> pl.Expr:
    """The per-measure expression chosen by ``pick`` from RESPONDER_RULES; null if none."""
    expr = pl.lit(None, dtype=pl.Boolean)
    for measure, rule in RESPONDER_RULES.items():
        expr = pl.when(pl.col("measure") == measure).then(pick(rule)).otherwise(expr)
    return expr


def _aggregations() -> list[pl.Expr]:
    has_base, has_post = _BASE.is_not_null(), _POST.is_not_null()
    paired = has_base & has_post
    base, post = _BASE.filter(paired), _POST.filter(paired)
    change = post - base
    eligible = pl.col("_eligible").filter(paired)
    responder = pl.col("_responder").filter(paired)
    return [
        paired.sum().alias("n_paired"),
        (has_base & ~has_post).sum().alias("n_baseline_only"),
        (~has_base & has_post).sum().alias("n_post_only"),
        *describe(base, "baseline"),
        *describe(post, "post"),
        mean(change).alias("mean_change"),
        sd(change).alias("sd_change"),
        # all differences equal once rounded (sd 0 up to float noise): no t statistic
        (_r(change).n_unique() <= 1).alias("_constant"),
        wilcoxon_p(post, base).alias("wilcoxon_p"),
        eligible.sum().alias("n_responder_denominator"),
        (eligible & responder).sum().alias("n_responders"),
    ]


def _derived() -> list[pl.Expr]:
    n = pl.col("n_paired")
    mean_change, sd_change = pl.col("mean_change"), pl.col("sd_change")
    testable = (n >= MIN_PAIRS) & ~pl.col("_constant").fill_null(True)
    se = sd_change / n.cast(pl.Float64).sqrt()
    t_stat = pl.when(testable).then(mean_change / se)
    df = pl.when(testable).then(n - 1)
    half_width = t_critical(df) * se
    has_rule = pl.col("measure").is_in(list(RESPONDER_RULES))
    denominator = pl.col("n_responder_denominator")
    return [
        t_two_sided_p(t_stat, df).alias("ttest_p"),
        (mean_change - half_width).alias("change_ci_low"),
        (mean_change + half_width).alias("change_ci_high"),
        pl.when(testable).then(mean_change / sd_change).alias("cohens_dz"),
        pl.when(has_rule).then(pl.col("n_responders").fill_null(0)).alias("n_responders"),
        pl.when(has_rule).then(denominator.fill_null(0)).alias("n_responder_denominator"),
        pl.when(has_rule & (denominator > 0))
        .then(100.0 * pl.col("n_responders") / denominator)
        .alias("pct_responders"),
        pl.col("measure")
        .replace_strict(
            {m: r.text for m, r in RESPONDER_RULES.items()}, default=None, return_dtype=pl.String
        )
        .alias("responder_rule"),
    ]


def _grid() -> pl.DataFrame:
    """Every subgroup x measure, with its output position."""
    rows = [(s, v, m) for s, v in SUBGROUPS for m in MEASURES]
    return pl.DataFrame(
        {
            "subgroup": [r[0] for r in rows],
            "subgroup_value": [r[1] for r in rows],
            "measure": [r[2] for r in rows],
            "_order": list(range(len(rows))),
        }
    )
