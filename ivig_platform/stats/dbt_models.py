"""The stats marts as dbt builds them (dbt_project/models/marts/*.py): frames in, frame out.

The dbt Python models only fetch their inputs (refs and the `protocol` source tables) and
call these functions, so the models stay one call each and everything here is testable
without dbt. Counts come out as BIGINT (Int64), statistics as DOUBLE.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from ivig_platform.stats.efficacy import EFFICACY_SCHEMA, efficacy_table
from ivig_platform.stats.safety import safety_table
from ivig_platform.stats.spec import SafetySpec, efficacy_specs_from_tables

#: Schema of mart_efficacy_by_plan: `analysis_plan`, then mart_efficacy's columns.
EFFICACY_BY_PLAN_SCHEMA: dict[str, pl.DataType] = {"analysis_plan": pl.String(),
                                                    **EFFICACY_SCHEMA}


def efficacy_of_primary_plan(assessments: pl.DataFrame, patients: pl.DataFrame,
                             protocol: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """mart_efficacy: fct_assessment's labelled pairs under the primary plan."""
    primary = efficacy_specs_from_tables(protocol)[0]
    return efficacy_table(assessments, patients, primary)


def labelled_assessments(windows: pl.DataFrame) -> pl.DataFrame:
    """fct_assessment_window_by_plan as fct_assessment-shaped rows (analysis_plan,
    patient_key, measure, value, analysis_timepoint): one row per selected assessment."""
    parts = [
        windows.filter(pl.col(f"{tp}_date").is_not_null()).select(
            "analysis_plan", "patient_key", "measure",
            pl.col(f"{tp}_value").alias("value"), pl.lit(tp).alias("analysis_timepoint"))
        for tp in ("baseline", "post")
    ]
    return pl.concat(parts, how="vertical")


def efficacy_by_plan(windows: pl.DataFrame, patients: pl.DataFrame,
                     protocol: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """mart_efficacy_by_plan: every plan in force, in plan order, `analysis_plan` first."""
    labelled = labelled_assessments(windows)
    frames = []
    for spec in efficacy_specs_from_tables(protocol):
        mine = labelled.filter(pl.col("analysis_plan") == spec.plan).drop("analysis_plan")
        table = efficacy_table(mine, patients, spec)
        frames.append(table.select(pl.lit(spec.plan).alias("analysis_plan"), pl.all()))
    if not frames:
        return pl.DataFrame(schema=EFFICACY_BY_PLAN_SCHEMA)
    return pl.concat(frames, how="vertical").select(
        pl.col(c).cast(t) for c, t in EFFICACY_BY_PLAN_SCHEMA.items())


def safety_of(adverse_events: pl.DataFrame, patients: pl.DataFrame, cycles: pl.DataFrame,
              protocol: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """mart_safety, with the contract's codes and the primary plan's safety definitions."""
    return safety_table(adverse_events, patients, cycles, SafetySpec.from_tables(protocol))
