"""The mart gate: clean marts pass; each mart check type blocks the publish when broken."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
import pytest
from quality_samples import landed_site, marts_from_sites

from ivig_platform.quality import load_suites, run_mart_gate

Marts = dict[str, pl.DataFrame]
SUITES = load_suites()


@pytest.fixture(scope="module")
def marts() -> Marts:
    sites = {f"h{i:02d}": landed_site(f"h{i:02d}", n_patients=5, seed=i) for i in range(1, 5)}
    return marts_from_sites(sites)


def _copy(marts: Marts) -> Marts:
    return {name: frame.clone() for name, frame in marts.items()}


def _first(frame: pl.DataFrame) -> pl.Expr:
    return pl.int_range(pl.len()) == 0


def _relabel_baseline(m: Marts) -> None:
    """Move one patient's CK baseline label onto its post assessment's row (a §7 error)."""
    f = m["fct_assessment"]
    key = f.filter((pl.col("measure") == "ck") & (pl.col("analysis_timepoint") == "baseline")
                   ).get_column("patient_key")[0]
    ck = (pl.col("patient_key") == key) & (pl.col("measure") == "ck")
    m["fct_assessment"] = f.with_columns(
        pl.when(ck & (pl.col("analysis_timepoint") == "baseline")).then(None)
        .when(ck & (pl.col("analysis_timepoint") == "post")).then(pl.lit("baseline"))
        .otherwise(pl.col("analysis_timepoint")).alias("analysis_timepoint"))


def _drop_post_label(m: Marts) -> None:
    f = m["fct_assessment"]
    row = f.filter(pl.col("analysis_timepoint") == "post").row(0, named=True)
    m["fct_assessment"] = f.with_columns(
        pl.when((pl.col("patient_key") == row["patient_key"])
                & (pl.col("measure") == row["measure"])
                & (pl.col("analysis_timepoint") == "post"))
        .then(None).otherwise(pl.col("analysis_timepoint")).alias("analysis_timepoint"))


def _two_baselines(m: Marts) -> None:
    f = m["fct_assessment"]
    row = f.filter(pl.col("analysis_timepoint") == "baseline").row(0, named=True)
    m["fct_assessment"] = f.with_columns(
        pl.when((pl.col("patient_key") == row["patient_key"])
                & (pl.col("measure") == row["measure"]))
        .then(pl.lit("baseline")).otherwise(pl.col("analysis_timepoint"))
        .alias("analysis_timepoint"))


def _with_value(table: str, column: str, value: object) -> Callable[[Marts], None]:
    """Set `column` of the first row of mart `table` to `value`."""
    def mutate(m: Marts) -> None:
        frame = m[table]
        m[table] = frame.with_columns(
            pl.when(_first(frame)).then(pl.lit(value)).otherwise(pl.col(column))
            .cast(frame.schema[column]).alias(column))
    return mutate


# (id, suite, mutation, failing check type)
CASES: list[tuple[str, str, Callable[[Marts], None], str]] = [
    ("duplicate_patient", "marts.dim_patient",
     lambda m: m.update(dim_patient=pl.concat([m["dim_patient"], m["dim_patient"].head(1)])),
     "unique_key"),
    ("n_cycles_off", "marts.dim_patient",
     lambda m: m.update(dim_patient=m["dim_patient"].with_columns(
         pl.when(_first(m["dim_patient"])).then(pl.col("n_cycles") + 1)
         .otherwise(pl.col("n_cycles")).alias("n_cycles"))),
     "cross_table_agreement"),
    ("missing_column", "marts.dim_patient",
     lambda m: m.update(dim_patient=m["dim_patient"].drop("on_biologic")), "columns_present"),
    ("flag_as_text", "marts.dim_patient",
     lambda m: m.update(dim_patient=m["dim_patient"].with_columns(
         pl.col("on_biologic").cast(pl.Utf8))), "column_type"),
    ("orphan_cycle", "marts.fct_ivig_cycle",
     _with_value("fct_ivig_cycle", "patient_key", "f" * 64), "foreign_key"),
    ("zero_dose", "marts.fct_ivig_cycle",
     _with_value("fct_ivig_cycle", "dose_g", 0.0), "valid_range"),
    ("bad_timepoint", "marts.fct_assessment",
     _with_value("fct_assessment", "analysis_timepoint", "pre"), "value_in_set"),
    ("two_baselines", "marts.fct_assessment", _two_baselines, "unique_key"),
    ("bad_severity", "marts.fct_adverse_event",
     lambda m: m.update(fct_adverse_event=m["fct_adverse_event"].with_columns(
         pl.lit("fatal").alias("severity"))), "value_in_set"),
    ("empty_cohort", "marts.mart_cohort",
     lambda m: m.update(mart_cohort=m["mart_cohort"].clear()), "table_not_empty"),
    ("baseline_not_per_protocol", "marts.efficacy_inputs", _relabel_baseline, "window_agreement"),
    ("pair_misses_post", "marts.efficacy_inputs", _drop_post_label, "window_agreement"),
    ("efficacy_input_out_of_range", "marts.efficacy_inputs",
     lambda m: m.update(fct_assessment=m["fct_assessment"].with_columns(
         pl.when((pl.col("measure") == "mrss") & (pl.col("analysis_timepoint") == "post"))
         .then(pl.lit(75.0)).otherwise(pl.col("value")).alias("value"))), "valid_range"),
    ("no_fct_assessment", "marts.efficacy_inputs", lambda m: m.pop("fct_assessment"),
     "frame_build"),
    ("ci_misses_mean_change", "marts.mart_efficacy",
     lambda m: m.update(mart_efficacy=m["mart_efficacy"].with_columns(
         (pl.col("mean_change") - 1).alias("change_ci_high"))), "statistic_consistency"),
    ("n_paired_off", "marts.mart_efficacy",
     lambda m: m.update(mart_efficacy=m["mart_efficacy"].with_columns(
         pl.when(pl.col("subgroup") == "all").then(pl.col("n_paired") + 1)
         .otherwise(pl.col("n_paired")).alias("n_paired"))), "statistic_consistency"),
    ("p_value_above_one", "marts.mart_efficacy",
     _with_value("mart_efficacy", "ttest_p", 1.5), "valid_range"),
    ("empty_efficacy", "marts.mart_efficacy",
     lambda m: m.update(mart_efficacy=m["mart_efficacy"].clear()), "table_not_empty"),
    ("more_patients_than_events", "marts.mart_safety",
     lambda m: m.update(mart_safety=m["mart_safety"].with_columns(
         (pl.col("n_events") + 1).alias("n_patients"))), "statistic_consistency"),
]


@pytest.mark.parametrize(("suite", "mutate", "check_type"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_error_check_blocks_the_publish(marts, suite, mutate, check_type) -> None:
    broken = _copy(marts)
    mutate(broken)
    gate = run_mart_gate(broken, "run-test", suites={suite: SUITES[suite]})
    failed = [o for o in gate.failures if o.check_type == check_type]
    assert failed, [o.check_id for o in gate.failures]
    assert all(o.severity == "error" for o in failed)
    assert gate.passed_errors is False and gate.verdict == "blocked"


def test_clean_marts_pass_every_check(marts) -> None:
    gate = run_mart_gate(marts, "run-test")
    assert gate.failures == [], [(o.check_id, o.observed_value) for o in gate.failures]
    assert gate.verdict == "passed" and gate.site_id is None and gate.delivery_id is None
    assert set(gate.suites) == {
        "marts.dim_patient", "marts.fct_ivig_cycle", "marts.fct_assessment",
        "marts.fct_adverse_event", "marts.mart_cohort", "marts.efficacy_inputs",
        "marts.mart_efficacy", "marts.mart_safety",
    }
    consistency = [o for o in gate.outcomes if o.check_type == "statistic_consistency"]
    assert len(consistency) == 3 and all(o.element_count > 0 for o in consistency)
    agreements = [o for o in gate.outcomes if o.check_type == "window_agreement"]
    assert len(agreements) == 8 and all(o.element_count > 0 for o in agreements)
