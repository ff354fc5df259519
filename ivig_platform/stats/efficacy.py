"""Efficacy table (``marts.mart_efficacy``, protocol §7 and §8) from the marts, no I/O.

Everything the protocol defines (measures, responder rules, subgroups, the summary
conventions) comes from an ``EfficacySpec`` of one plan (``spec.py``), so the same code
computes the primary plan's mart_efficacy and every amendment's rows of
mart_efficacy_by_plan.
"""

from __future__ import annotations

import polars as pl

from ivig_platform.protocol.plan import Condition
from ivig_platform.stats._frames import analysed_patients, require_columns
from ivig_platform.stats.spec import EfficacySpec, ResponderSpec
from ivig_platform.stats.summaries import describe, mean, sd
from ivig_platform.stats.tests_paired import t_critical, t_two_sided_p, wilcoxon_p

_BASE, _POST = pl.col("baseline"), pl.col("post")
_QUANTITY = {
    "baseline": _BASE, "post": _POST, "change": _POST - _BASE, "decrease": _BASE - _POST,
}  # fmt: skip


def _condition(c: Condition, decimals: int) -> pl.Expr:
    """`quantity op value` on one pair, after rounding to the plan's decimals (§7), so float
    noise cannot move a value across a threshold."""
    x = _QUANTITY[c.quantity].round(decimals)
    return {"<": x < c.value, "<=": x <= c.value, ">": x > c.value, ">=": x >= c.value}[c.op]


def responder_exprs(rule: ResponderSpec, decimals: int) -> tuple[pl.Expr, pl.Expr]:
    """(eligible, responder) over one complete pair (columns ``baseline``, ``post``)."""
    eligible = pl.lit(True) if rule.eligible is None else _condition(rule.eligible, decimals)
    return eligible, _condition(rule.responder, decimals)


def default_spec() -> EfficacySpec:
    """The primary plan of the protocol in force."""
    from ivig_platform.protocol.in_force import protocol_in_force

    protocol = protocol_in_force()
    return EfficacySpec.from_plan(protocol.primary_plan, protocol)


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
_KEYS = ["subgroup", "subgroup_value", "measure"]


def _patient_columns(spec: EfficacySpec) -> list[str]:
    columns = ["patient_key", "n_cycles"]
    for g in spec.subgroups:
        if g.kind == "list":
            columns.append(f"{g.column}_{g.value}")
        elif g.column:
            columns.append(g.column)
    return list(dict.fromkeys(columns))


def efficacy_table(assessments: pl.DataFrame, patients: pl.DataFrame,
                   spec: EfficacySpec | None = None) -> pl.DataFrame:
    """Paired baseline/post analysis per subgroup x measure (mart_efficacy) of one plan.

    Inputs: ``assessments`` shaped like ``marts.fct_assessment`` (uses ``patient_key``,
    ``measure``, ``value``, ``analysis_timepoint`` as labelled under the plan) and
    ``patients`` like ``marts.dim_patient`` (uses ``patient_key``, ``n_cycles`` and the
    columns of the plan's subgroups: ``ssc_subtype``, ``indication_*``). Extra columns are
    ignored. ``spec``: the plan (default: the primary plan of the protocol in force).

    Grain: one row per subgroup x measure of the plan, always every one (v1: 7 x 4 = 28
    rows), in the order of the plan's subgroups then measures, even when ``n_paired`` is 0.

    Who counts:
      * Patients with ``n_cycles`` 0 (or null) leave every analysis (§7); assessments of
        patients absent from ``patients`` are ignored.
      * Subgroups (v1): ``all``; ``ssc_subtype`` by code (null subtype: only in ``all``);
        ``indication`` by code from the ``indication_*`` flags (null = false) — a patient
        with two indications counts in both rows.
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
      * ``wilcoxon_p``: R ``wilcox.test(post, baseline, paired = TRUE)`` with the plan's
        rounding of differences (see ``wilcoxon_signed_rank``). Null for fewer pairs than
        the plan's ``min_pairs`` (§7; R would give p = 1 for one pair) and when every
        difference is zero (R: NaN).
      * ``n_baseline_only``, ``n_post_only`` (see above).
      * ``sd_change``: SD (n - 1) of the differences; ``cohens_dz``: mean_change /
        sd_change, null when ttest_p is null for want of pairs or of spread, and for fewer
        pairs than the small-cell threshold of §6 (5): with two pairs sd_change is noise
        and d is any size (-52.3), and the report shows no statistic of fewer than 5.
      * ``n_responders`` / ``n_responder_denominator`` / ``pct_responders`` (percent,
        0-100, null when the denominator is 0) and ``responder_rule`` (the rule as text),
        by the plan's responder rules (v1: mrc post >= 3 over n_paired; mrss baseline -
        post >= 5 over n_paired; ck post < 200 U/L over the pairs with baseline >= 200
        U/L); a measure without a rule has all four null. Thresholds are compared after
        rounding to the plan's decimals.
    """
    spec = spec or default_spec()
    require_columns(assessments, _ASSESSMENT_COLUMNS, "assessments")
    require_columns(patients, _patient_columns(spec), "patients")
    analysed = analysed_patients(patients)

    long = (
        _memberships(analysed, spec)
        .join(_pairs(assessments, analysed, spec), on="patient_key", how="inner")
        .with_columns(
            _by_measure(spec, 0).alias("_eligible"),
            _by_measure(spec, 1).alias("_responder"),
        )
    )
    # a fixed row order within groups makes float sums, hence the output, reproducible
    stats = long.sort([*_KEYS, "patient_key"]).group_by(_KEYS).agg(_aggregations(spec))
    return (
        _grid(spec)
        .join(stats, on=_KEYS, how="left")
        .sort("_order")
        .with_columns(pl.col("n_paired", "n_baseline_only", "n_post_only").fill_null(0))
        .with_columns(_derived(spec))
        .select(pl.col(c).cast(dtype) for c, dtype in EFFICACY_SCHEMA.items())
    )


def efficacy_pairs(assessments: pl.DataFrame, patients: pl.DataFrame,
                   spec: EfficacySpec | None = None) -> pl.DataFrame:
    """The complete (patient, baseline, post) pairs behind each mart_efficacy row.

    Columns ``subgroup``, ``subgroup_value``, ``measure``, ``patient_key``, ``baseline``,
    ``post``: exactly the pairs ``efficacy_table`` counts in ``n_paired`` (same
    memberships, same flagged rows), so `ivig explain` can show what a row was computed
    from. Inputs as for ``efficacy_table``.
    """
    require_columns(assessments, _ASSESSMENT_COLUMNS, "assessments")
    spec = spec or default_spec()
    require_columns(patients, _patient_columns(spec), "patients")
    analysed = analysed_patients(patients)
    return (
        _memberships(analysed, spec)
        .join(_pairs(assessments, analysed, spec), on="patient_key", how="inner")
        .filter(_BASE.is_not_null() & _POST.is_not_null())
        .select(*_KEYS, "patient_key", "baseline", "post")
        .sort(*_KEYS, "patient_key")
    )


def _memberships(analysed: pl.DataFrame, spec: EfficacySpec) -> pl.DataFrame:
    """One row per analysed patient x subgroup the patient belongs to."""
    key = pl.col("patient_key")
    parts = []
    for g in spec.subgroups:
        if g.column is None:
            member = pl.lit(True)
        elif g.kind == "list":
            member = pl.col(f"{g.column}_{g.value}").cast(pl.Boolean).fill_null(False)
        else:
            member = (pl.col(g.column).cast(pl.String) == g.value).fill_null(False)
        parts.append(analysed.filter(member).select(
            key, subgroup=pl.lit(g.subgroup), subgroup_value=pl.lit(g.value)))
    return pl.concat(parts, how="vertical")


def _pairs(assessments: pl.DataFrame, analysed: pl.DataFrame,
           spec: EfficacySpec) -> pl.DataFrame:
    """One row per analysed patient x measure with a baseline or post: baseline, post."""
    flagged = (
        assessments.select(
            pl.col("patient_key").cast(pl.String),
            pl.col("measure").cast(pl.String),
            pl.col("analysis_timepoint").cast(pl.String).alias("timepoint"),
            pl.col("value").cast(pl.Float64).fill_nan(None),
        )
        .filter(pl.col("measure").is_in(list(spec.measures))
                & pl.col("timepoint").is_in(["baseline", "post"]))
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


def _by_measure(spec: EfficacySpec, which: int) -> pl.Expr:
    """Per measure, its rule's eligible (0) or responder (1) expression; null if none."""
    expr = pl.lit(None, dtype=pl.Boolean)
    for measure, rule in spec.responders.items():
        chosen = responder_exprs(rule, spec.round_decimals)[which]
        expr = pl.when(pl.col("measure") == measure).then(chosen).otherwise(expr)
    return expr


def _aggregations(spec: EfficacySpec) -> list[pl.Expr]:
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
        *describe(base, "baseline", spec.sd_ddof),
        *describe(post, "post", spec.sd_ddof),
        mean(change).alias("mean_change"),
        sd(change, spec.sd_ddof).alias("sd_change"),
        # all differences equal once rounded (sd 0 up to float noise): no t statistic
        (change.round(spec.round_decimals).n_unique() <= 1).alias("_constant"),
        wilcoxon_p(post, base, min_pairs=spec.min_pairs, round_decimals=spec.round_decimals,
                   exact_below=spec.wilcoxon_exact_below,
                   correct=spec.wilcoxon_correct).alias("wilcoxon_p"),
        eligible.sum().alias("n_responder_denominator"),
        (eligible & responder).sum().alias("n_responders"),
    ]


def _derived(spec: EfficacySpec) -> list[pl.Expr]:
    n = pl.col("n_paired")
    mean_change, sd_change = pl.col("mean_change"), pl.col("sd_change")
    testable = (n >= spec.min_pairs) & ~pl.col("_constant").fill_null(True)
    se = sd_change / n.cast(pl.Float64).sqrt()
    t_stat = pl.when(testable).then(mean_change / se)
    df = pl.when(testable).then(n - 1)
    half_width = t_critical(df, spec.ci_level) * se
    has_rule = pl.col("measure").is_in(list(spec.responders))
    denominator = pl.col("n_responder_denominator")
    return [
        t_two_sided_p(t_stat, df).alias("ttest_p"),
        (mean_change - half_width).alias("change_ci_low"),
        (mean_change + half_width).alias("change_ci_high"),
        pl.when(testable & (n >= spec.effect_size_min_pairs))
        .then(mean_change / sd_change).alias("cohens_dz"),
        pl.when(has_rule).then(pl.col("n_responders").fill_null(0)).alias("n_responders"),
        pl.when(has_rule).then(denominator.fill_null(0)).alias("n_responder_denominator"),
        pl.when(has_rule & (denominator > 0))
        .then(100.0 * pl.col("n_responders") / denominator)
        .alias("pct_responders"),
        pl.col("measure")
        .replace_strict(
            {m: r.text for m, r in spec.responders.items()}, default=None,
            return_dtype=pl.String
        )
        .alias("responder_rule"),
    ]


def _grid(spec: EfficacySpec) -> pl.DataFrame:
    """Every subgroup x measure, with its output position."""
    rows = [(g.subgroup, g.value, m) for g in spec.subgroups for m in spec.measures]
    return pl.DataFrame(
        {
            "subgroup": [r[0] for r in rows],
            "subgroup_value": [r[1] for r in rows],
            "measure": [r[2] for r in rows],
            "_order": list(range(len(rows))),
        }
    )
