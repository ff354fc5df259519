"""The analysis windows of protocol §7, as pure Polars functions.

The quality gate needs them twice: at landing, to know per site how many patients have a
baseline and a post value of each measure (completeness) and how large their changes are
(plausibility); after dbt, to check that the marts label as `baseline`/`post` exactly the
assessments §7 selects. They take plain frames, so the landed tables and the marts both fit:

- cycles: `patient_key`, `start_date` (Date), one row per cycle;
- assessments: `patient_key`, `measure`, `assessment_date` (Date), `value`.

Definitions (§7, the windows of the plan given, by default the primary plan of the
protocol in force): index date = first cycle start; baseline = the latest assessment dated
from index - `baseline_days_before` days to index, inclusive; post = the assessment nearest
to last cycle start + `post_target_days` among those `post_min_days` to `post_max_days`
after the last cycle start, inclusive, the later on a tie. Assessments of a patient without
a cycle take part in nothing. Nulls: an assessment with a null date or value is ignored
(landing never lands one).
"""

from __future__ import annotations

import polars as pl

from ivig_platform.protocol.plan import Plan, Windows

WINDOW_SCHEMA: dict[str, pl.DataType] = {
    "patient_key": pl.Utf8(),
    "measure": pl.Utf8(),
    "baseline_date": pl.Date(),
    "baseline_value": pl.Float64(),
    "post_date": pl.Date(),
    "post_value": pl.Float64(),
}


def cycle_span(cycles: pl.DataFrame) -> pl.DataFrame:
    """One row per patient with a cycle: `n_cycles`, `index_date`, `last_cycle_date`."""
    return (
        cycles.filter(pl.col("start_date").is_not_null())
        .group_by("patient_key")
        .agg(
            pl.len().cast(pl.Int64).alias("n_cycles"),
            pl.col("start_date").min().alias("index_date"),
            pl.col("start_date").max().alias("last_cycle_date"),
        )
        .sort("patient_key")
    )


def primary_plan() -> Plan:
    """The primary plan of the protocol in force (the run's, else the repository's)."""
    from ivig_platform.protocol.in_force import protocol_in_force

    return protocol_in_force().primary_plan


def analysis_windows(cycles: pl.DataFrame, assessments: pl.DataFrame,
                     windows: Windows | None = None) -> pl.DataFrame:
    """One row per patient with a cycle × measure assessed at least once for that patient.

    Columns of WINDOW_SCHEMA: the baseline and post assessment's date and value, null when
    the window holds none. A (patient, measure) pair absent from the result was never
    assessed ("not followed"), which completeness treats differently from "followed but
    missing in the window". `windows`: the plan's (default: the primary plan's).
    """
    w = windows or primary_plan().windows
    if w.post_tie != "later":  # the only tie rule the plan schema allows today
        raise ValueError(f"unknown post_tie {w.post_tie!r}")
    span = cycle_span(cycles).select("patient_key", "index_date", "last_cycle_date")
    rows = (
        assessments.select("patient_key", "measure", "assessment_date", "value")
        .filter(pl.col("assessment_date").is_not_null() & pl.col("value").is_not_null())
        .join(span, on="patient_key", how="inner")
        .with_columns(
            (pl.col("assessment_date") - pl.col("index_date")).dt.total_days()
            .alias("_from_index"),
            (pl.col("assessment_date") - pl.col("last_cycle_date")).dt.total_days()
            .alias("_from_last"),
        )
    )
    keys = ["patient_key", "measure"]
    followed = rows.select(keys).unique()
    baseline = (
        rows.filter(pl.col("_from_index").is_between(-w.baseline_days_before, 0))
        # latest in the window; the value breaks ties of duplicated dates deterministically
        .sort([*keys, "assessment_date", "value"])
        .group_by(keys, maintain_order=True)
        .agg(
            pl.col("assessment_date").last().alias("baseline_date"),
            pl.col("value").last().alias("baseline_value"),
        )
    )
    post = (
        rows.filter(pl.col("_from_last").is_between(w.post_min_days, w.post_max_days))
        .with_columns((pl.col("_from_last") - w.post_target_days).abs().alias("_distance"))
        # nearest to the target; on a tie the later date (§7), then the value
        .sort([*keys, "_distance", "assessment_date", "value"],
              descending=[False, False, False, True, True])
        .group_by(keys, maintain_order=True)
        .agg(
            pl.col("assessment_date").first().alias("post_date"),
            pl.col("value").first().alias("post_value"),
        )
    )
    return (
        followed.join(baseline, on=keys, how="left")
        .join(post, on=keys, how="left")
        .select([pl.col(c).cast(t) for c, t in WINDOW_SCHEMA.items()])
        .sort(keys)
    )


def patient_windows(cycles: pl.DataFrame, assessments: pl.DataFrame,
                    plan: Plan | None = None) -> pl.DataFrame:
    """The frame of suite `landed.patient_windows`: one row per patient with a cycle.

    For each measure m of the plan (default: the primary plan of the protocol in force):
    `baseline_m`, `post_m` (values, null when missing);
    `has_baseline_m`, `has_post_m` (True/False for a patient followed for m, i.e. with any
    assessment of m; null when not followed, so completeness is measured among followed
    patients only); `change_m` = post - baseline and `fold_drop_m` = baseline / post (null
    unless both exist). Plus `n_cycles`, `index_date`, `last_cycle_date`.
    """
    plan = plan or primary_plan()
    frame = cycle_span(cycles)
    windows = analysis_windows(cycles, assessments, plan.windows)
    for m in plan.measure_names:
        one = windows.filter(pl.col("measure") == m).select(
            "patient_key",
            pl.col("baseline_value").alias(f"baseline_{m}"),
            pl.col("post_value").alias(f"post_{m}"),
            pl.col("baseline_date").is_not_null().alias(f"has_baseline_{m}"),
            pl.col("post_date").is_not_null().alias(f"has_post_{m}"),
        )
        frame = frame.join(one, on="patient_key", how="left")
        frame = frame.with_columns(
            (pl.col(f"post_{m}") - pl.col(f"baseline_{m}")).alias(f"change_{m}"),
            (pl.col(f"baseline_{m}") / pl.col(f"post_{m}")).alias(f"fold_drop_{m}"),
        )
    return frame.sort("patient_key")
