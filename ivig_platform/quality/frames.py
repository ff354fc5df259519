"""The frames the suites validate: the tables themselves plus a few derived columns.

GX checks one frame at a time, so everything a check needs from another table is derived
here first, in Polars, and named plainly (the parameter tables refer to these names):

- `patient_known` (every landed table but patients; every fact mart): the row's patient is
  in the delivery's `patients` (in `dim_patient` for the marts);
- `overlap_text`, `indication_text` (landed.patients): the list items joined with `|`;
- `dose_g_per_kg` (landed.ivig_cycles): dose_g / weight_kg, null without a weight;
- `n_cycles_agrees`, `index_date_agrees` (marts.dim_patient): against fct_ivig_cycle;
- the whole of `landed.patient_windows` and `marts.efficacy_inputs` (see their builders).

Derived columns of a table are added only when their inputs are there with a usable type;
otherwise they are left out and the checks on them fail as a missing column would (the
conformance checks of the table say why). The two derived suites need their inputs and
raise when they are broken; the gate records that as a `frame_build` error.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from ivig_platform.quality.windows import analysis_windows, patient_windows, primary_plan

LANDED_TABLES: tuple[str, ...] = (
    "patients", "ivig_cycles", "treatments", "assessments", "adverse_events",
)
MARTS: tuple[str, ...] = (
    "dim_patient", "fct_ivig_cycle", "fct_assessment", "fct_adverse_event", "mart_cohort",
    "mart_efficacy", "mart_safety",
)


def _with(frame: pl.DataFrame, name: str, expr: Callable[[], pl.Expr]) -> pl.DataFrame:
    """Add one derived column, or leave the frame as it is when its inputs are unusable."""
    try:
        return frame.with_columns(expr().alias(name))
    except (pl.exceptions.PolarsError, TypeError, ValueError):
        return frame


def _keys(frame: pl.DataFrame | None) -> pl.Series | None:
    if frame is None or "patient_key" not in frame.columns:
        return None
    return frame.get_column("patient_key")


def _patient_known(frame: pl.DataFrame, patients: pl.DataFrame | None) -> pl.DataFrame:
    keys = _keys(patients)
    if keys is None:
        return frame
    return _with(frame, "patient_known", lambda: pl.col("patient_key").is_in(keys.implode()))


def landed_table(name: str, tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """The frame of suite `landed.<name>`: the landed table and its derived columns."""
    frame = tables.get(name)
    if frame is None:
        return pl.DataFrame()
    if name == "patients":
        for column in ("overlap", "indication"):
            frame = _with(frame, f"{column}_text", lambda c=column: pl.col(c).list.join("|"))
        return frame
    frame = _patient_known(frame, tables.get("patients"))
    if name == "ivig_cycles":
        frame = _with(
            frame, "dose_g_per_kg",
            lambda: pl.col("dose_g").cast(pl.Float64) / pl.col("weight_kg").cast(pl.Float64),
        )
    return frame


def landed_patient_windows(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """The frame of suite `landed.patient_windows` (see windows.patient_windows)."""
    return patient_windows(tables["ivig_cycles"], tables["assessments"])


def mart_table(name: str, marts: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """The frame of suite `marts.<name>`: the mart and its derived columns."""
    frame = marts.get(name)
    if frame is None:
        return pl.DataFrame()
    if name in ("fct_ivig_cycle", "fct_assessment", "fct_adverse_event"):
        return _patient_known(frame, marts.get("dim_patient"))
    if name == "dim_patient":
        cycles = marts.get("fct_ivig_cycle")
        if cycles is None or not {"patient_key", "start_date"} <= set(cycles.columns):
            return frame
        per_patient = cycles.group_by("patient_key").agg(
            pl.len().alias("_n"), pl.col("start_date").min().alias("_first")
        )
        try:
            joined = frame.join(per_patient, on="patient_key", how="left")
        except pl.exceptions.PolarsError:
            return frame
        joined = _with(joined, "n_cycles_agrees",
                       lambda: pl.col("n_cycles") == pl.col("_n").fill_null(0))
        joined = _with(joined, "index_date_agrees",
                       lambda: pl.col("index_date").cast(pl.Date).eq_missing(pl.col("_first")))
        return joined.drop("_n", "_first")
    if name == "mart_efficacy":
        return _efficacy_checked(frame, marts)
    if name == "mart_safety":
        return _with(frame, "patients_within_events",
                     lambda: (pl.col("n_patients") <= pl.col("n_events")).fill_null(True))
    return frame


def _efficacy_checked(frame: pl.DataFrame, marts: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """mart_efficacy with `ci_contains_mean_change` and `n_paired_agrees`.

    The pairs are counted here from fct_assessment and dim_patient, independently of the
    stats code: an analysed patient (n_cycles > 0, §7) with a non-null baseline and post
    value of the measure. The whole cohort's n_paired must equal that count; a subgroup's
    (a subset of the cohort) must not exceed it.
    """
    frame = _with(frame, "ci_contains_mean_change", lambda: (
        (pl.col("change_ci_low") <= pl.col("mean_change"))
        & (pl.col("mean_change") <= pl.col("change_ci_high"))).fill_null(True))
    patients, assessments = marts.get("dim_patient"), marts.get("fct_assessment")
    if patients is None or assessments is None:
        return frame
    try:
        analysed = patients.filter(pl.col("n_cycles").fill_null(0) > 0).select(
            pl.col("patient_key").cast(pl.String))
        labelled = assessments.select(
            pl.col("patient_key").cast(pl.String), pl.col("measure").cast(pl.String),
            pl.col("analysis_timepoint").cast(pl.String),
            pl.col("value").cast(pl.Float64).fill_nan(None),
        ).filter(pl.col("value").is_not_null()).join(analysed, on="patient_key", how="semi")
        pairs = (
            labelled.group_by("patient_key", "measure")
            .agg(pl.col("analysis_timepoint").eq("baseline").any().alias("_b"),
                 pl.col("analysis_timepoint").eq("post").any().alias("_p"))
            .filter(pl.col("_b") & pl.col("_p"))
            .group_by("measure").agg(pl.len().cast(pl.Int64).alias("_pairs"))
        )
        joined = frame.with_columns(pl.col("measure").cast(pl.String)).join(
            pairs, on="measure", how="left")
    except pl.exceptions.PolarsError:
        return frame
    counted = pl.col("_pairs").fill_null(0)
    joined = _with(joined, "n_paired_agrees", lambda: pl.when(pl.col("subgroup") == "all")
                   .then(pl.col("n_paired") == counted)
                   .otherwise(pl.col("n_paired") <= counted).fill_null(False))
    return joined.drop("_pairs")


def efficacy_inputs(marts: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """The frame of suite `marts.efficacy_inputs`: one row per analysed patient.

    Patients: those with a cycle in fct_ivig_cycle, and any other patient with an
    assessment labelled baseline or post (which §7 cannot select, so it disagrees).
    For each measure m of the primary plan: `baseline_m`, `post_m` = the values
    fct_assessment labels so (the inputs of the paired analysis); `baseline_m_agrees`,
    `post_m_agrees` = the labelled assessment's date is the one analysis_windows selects
    under the primary plan's windows (both absent agrees).
    """
    plan = primary_plan()
    cycles = marts["fct_ivig_cycle"].select("patient_key", pl.col("start_date").cast(pl.Date))
    assessments = marts["fct_assessment"].select(
        "patient_key", "measure", pl.col("assessment_date").cast(pl.Date),
        pl.col("value").cast(pl.Float64), "analysis_timepoint",
    )
    expected = analysis_windows(cycles, assessments, plan.windows)
    labelled = (
        assessments.filter(pl.col("analysis_timepoint").is_in(["baseline", "post"]))
        .sort("patient_key", "measure", "analysis_timepoint", "assessment_date")
        .group_by("patient_key", "measure", "analysis_timepoint", maintain_order=True)
        .agg(pl.col("assessment_date").first(), pl.col("value").first())
    )
    patients = pl.concat(
        [cycles.select("patient_key"), labelled.select("patient_key")]
    ).unique().sort("patient_key")
    frame = patients
    for m in plan.measure_names:
        want = expected.filter(pl.col("measure") == m)
        for tp in ("baseline", "post"):
            got = labelled.filter(
                (pl.col("measure") == m) & (pl.col("analysis_timepoint") == tp)
            ).select(
                "patient_key",
                pl.col("value").alias(f"{tp}_{m}"),
                pl.col("assessment_date").alias("_got"),
            )
            frame = (
                frame.join(got, on="patient_key", how="left")
                .join(want.select("patient_key", pl.col(f"{tp}_date").alias("_want")),
                      on="patient_key", how="left")
                .with_columns(pl.col("_got").eq_missing(pl.col("_want")).alias(f"{tp}_{m}_agrees"))
                .drop("_got", "_want")
            )
    return frame


LANDING_BUILDERS: dict[str, Callable[[dict[str, pl.DataFrame]], pl.DataFrame]] = {
    **{f"landed.{t}": (lambda tables, t=t: landed_table(t, tables)) for t in LANDED_TABLES},
    "landed.patient_windows": landed_patient_windows,
}

MART_BUILDERS: dict[str, Callable[[dict[str, pl.DataFrame]], pl.DataFrame]] = {
    **{f"marts.{m}": (lambda marts, m=m: mart_table(m, marts)) for m in MARTS},
    "marts.efficacy_inputs": efficacy_inputs,
}
