"""The landing gate: each check type catches a crafted delivery with the right consequence.

`error` → passed_errors False: the delivery is held back. `warn` → reported, the delivery
passes. For speed each case runs only the suite it targets: the other suites pass on the
same clean sample (test_clean_site_passes_every_check), and the whole gate's verdict is
shown end to end by the sparse-site (warn) and missing-table (error) tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta

import polars as pl
import pytest
from quality_samples import landed_site, pseudonym

from ivig_platform.quality import load_suites, pool_stats, run_landing_gate

Tables = dict[str, pl.DataFrame]
DELIVERY = "2026-11-24"
SUITES = load_suites()


@pytest.fixture(scope="module")
def sites() -> dict[str, Tables]:
    return {f"h{i:02d}": landed_site(f"h{i:02d}", n_patients=6 + i % 3, seed=i)
            for i in range(1, 7)}


@pytest.fixture(scope="module")
def pool(sites: dict[str, Tables]):
    return pool_stats(sites)


def _site(sites: dict[str, Tables], site_id: str = "h01") -> Tables:
    return {name: frame.clone() for name, frame in sites[site_id].items()}


def _first_key(t: Tables) -> str:
    return t["patients"].get_column("patient_key")[0]


def _set(t: Tables, table: str, where: pl.Expr, **values: object) -> None:
    """Set columns (to literals or expressions) on the rows of `table` matching `where`."""
    t[table] = t[table].with_columns(
        pl.when(where).then(v if isinstance(v, pl.Expr) else pl.lit(v, dtype=t[table].schema[c]))
        .otherwise(pl.col(c)).cast(t[table].schema[c]).alias(c)
        for c, v in values.items()
    )


def _measure_of(t: Tables, key: str, measure: str) -> pl.Expr:
    return (pl.col("patient_key") == key) & (pl.col("measure") == measure)


def _replace_first_patient_key(t: Tables, new: str) -> None:
    old = _first_key(t)
    for name in t:
        t[name] = t[name].with_columns(
            pl.when(pl.col("patient_key") == old).then(pl.lit(new))
            .otherwise(pl.col("patient_key")).alias("patient_key"))


def _many_cycles(t: Tables) -> None:
    key = _first_key(t)
    first = t["ivig_cycles"].filter(pl.col("patient_key") == key).row(0, named=True)
    extra = [{**first, "cycle_number": n, "start_date": first["start_date"] + timedelta(28 * n)}
             for n in range(100, 130)]
    t["ivig_cycles"] = pl.concat([t["ivig_cycles"], pl.DataFrame(
        extra, schema=t["ivig_cycles"].schema, orient="row")])


def _ck_pair(t: Tables, baseline: float, post: float, measure: str = "ck") -> None:
    key = _first_key(t)  # patient 1 of a sample has both windows filled for ck and mrss
    rows = t["assessments"].filter(_measure_of(t, key, measure)).sort("assessment_date")
    first, last = rows.get_column("assessment_date")[0], rows.get_column("assessment_date")[-1]
    _set(t, "assessments", _measure_of(t, key, measure) & (pl.col("assessment_date") == first),
         value=baseline)
    _set(t, "assessments", _measure_of(t, key, measure) & (pl.col("assessment_date") == last),
         value=post)


def _orphan_assessment(t: Tables) -> None:
    row = t["assessments"].row(0, named=True)
    t["assessments"] = pl.concat([t["assessments"], pl.DataFrame(
        [{**row, "patient_key": pseudonym("elsewhere", 1)}], schema=t["assessments"].schema,
        orient="row")])


def _duplicate_cycle(t: Tables) -> None:
    t["ivig_cycles"] = pl.concat([t["ivig_cycles"], t["ivig_cycles"].head(1)])


# (id, suite, mutation, check_type, column): all of severity error
ERROR_CASES: list[tuple[str, str, Callable[[Tables], None], str, str | None]] = [
    ("missing_column", "landed.patients",
     lambda t: t.update(patients=t["patients"].drop("ssc_subtype")), "columns_present", None),
    ("wrong_type", "landed.ivig_cycles",
     lambda t: t.update(ivig_cycles=t["ivig_cycles"].with_columns(pl.col("dose_g").cast(pl.Utf8))),
     "column_type", "dose_g"),
    ("null_required", "landed.assessments",
     lambda t: _set(t, "assessments", pl.int_range(pl.len()) == 0, value=None),
     "required_value", "value"),
    ("duplicate_key", "landed.ivig_cycles", _duplicate_cycle, "unique_key",
     "patient_key|cycle_number"),
    ("orphan_row", "landed.assessments", _orphan_assessment, "foreign_key", "patient_known"),
    ("clear_identifier", "landed.patients",
     lambda t: _replace_first_patient_key(t, "NHC-00012345"), "key_format", "patient_key"),
    ("mixed_delivery", "landed.treatments",
     lambda t: _set(t, "treatments", pl.int_range(pl.len()) == 0, delivery_id="2025-01-01"),
     "matches_delivery", "delivery_id"),
    ("bad_category", "landed.patients",
     lambda t: _set(t, "patients", pl.int_range(pl.len()) == 0, sex="X"), "value_in_set", "sex"),
    ("empty_indication", "landed.patients",
     lambda t: _set(t, "patients", pl.int_range(pl.len()) == 0, indication=[]),
     "list_values_in_set", "indication_text"),
    ("bad_list_item", "landed.patients",
     lambda t: _set(t, "patients", pl.int_range(pl.len()) == 0, overlap=["lupus"]),
     "list_values_in_set", "overlap_text"),
    ("mrss_out_of_range", "landed.assessments",
     lambda t: _set(t, "assessments", pl.col("measure") == "mrss", value=60.0),
     "valid_range", "value"),
    ("ck_unit_error", "landed.assessments",
     lambda t: _set(t, "assessments", pl.col("measure") == "ck", value=pl.col("value") / 60),
     "site_drift", "value"),
    ("ck_unit_error_up", "landed.assessments",
     lambda t: _set(t, "assessments", pl.col("measure") == "ck", value=pl.col("value") * 60),
     "site_drift", "value"),
    ("no_cycles_table", "landed.patient_windows", lambda t: t.pop("ivig_cycles"),
     "frame_build", None),
]


@pytest.mark.parametrize(("suite", "mutate", "check_type", "column"),
                         [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_error_check_holds_the_delivery_back(sites, pool, suite, mutate, check_type,
                                             column) -> None:
    tables = _site(sites)
    mutate(tables)
    gate = run_landing_gate("h01", DELIVERY, tables, pool, "run-test",
                            suites={suite: SUITES[suite]})
    failed = [o for o in gate.failures if o.check_type == check_type]
    assert failed, [o.check_id for o in gate.failures]
    assert all(o.severity == "error" for o in failed)
    if column:
        assert column in {o.column for o in failed}
    assert gate.passed_errors is False
    assert gate.verdict == "held back"
    assert gate.reason and gate.reason.startswith("quality_gate: ")


WARN_CASES: list[tuple[str, str, Callable[[Tables], None], str, str]] = [
    ("dose_per_kg", "landed.ivig_cycles",
     lambda t: _set(t, "ivig_cycles", pl.int_range(pl.len()) == 0, dose_g=400.0, weight_kg=30.0),
     "plausible_range", "dose_g_per_kg"),
    ("many_cycles", "landed.patient_windows", _many_cycles, "plausible_range", "n_cycles"),
    ("child", "landed.patients",
     lambda t: _set(t, "patients", pl.int_range(pl.len()) == 0, age_at_index=12.0),
     "plausible_range", "age_at_index"),
    ("ck_falls_500_fold", "landed.patient_windows", lambda t: _ck_pair(t, 50_000.0, 100.0),
     "plausible_change", "fold_drop_ck"),
    ("mrss_jumps_30", "landed.patient_windows", lambda t: _ck_pair(t, 40.0, 10.0, "mrss"),
     "plausible_change", "change_mrss"),
]


@pytest.mark.parametrize(("suite", "mutate", "check_type", "column"),
                         [c[1:] for c in WARN_CASES], ids=[c[0] for c in WARN_CASES])
def test_warn_check_reports_and_the_delivery_passes(sites, pool, suite, mutate, check_type,
                                                    column) -> None:
    tables = _site(sites)
    mutate(tables)
    gate = run_landing_gate("h01", DELIVERY, tables, pool, "run-test",
                            suites={suite: SUITES[suite]})
    failed = [o for o in gate.failures if o.check_type == check_type and o.column == column]
    assert len(failed) == 1 and failed[0].severity == "warn"
    assert failed[0].unexpected_count >= 1
    assert gate.passed_errors is True
    assert gate.verdict == "passed with warnings" and gate.reason is None


def test_clean_site_passes_every_check(sites, pool) -> None:
    gate = run_landing_gate("h01", DELIVERY, sites["h01"], pool, "run-test")
    assert gate.failures == [], [o.check_id for o in gate.failures]
    assert gate.verdict == "passed" and gate.passed_errors and gate.reason is None
    assert gate.suites == [
        "landed.patients", "landed.ivig_cycles", "landed.treatments",
        "landed.assessments", "landed.adverse_events", "landed.patient_windows",
    ]
    counts = gate.counts
    assert counts["error"]["checks"] > 100 and counts["warn"]["checks"] >= 10
    assert counts["error"]["failed"] == counts["warn"]["failed"] == 0
    drift = [o for o in gate.outcomes if o.check_type == "site_drift"]
    assert drift[0].success
    assert re.fullmatch(r"CK \(U/L\): site median \d+(\.\d+)? \(n=\d+\), .*ratio .*",
                        drift[0].observed_value), drift[0].observed_value
    assert all(o.element_count is None or o.element_count >= 0 for o in gate.outcomes)


def test_sparse_site_warns_on_completeness_only(sites, pool) -> None:
    tables = landed_site("h07", DELIVERY, n_patients=8, sparse=True)
    gate = run_landing_gate("h07", DELIVERY, tables, pool, "run-test")
    assert gate.passed_errors is True
    failed = {o.column for o in gate.failures}
    assert failed and all(c.startswith("has_post_") for c in failed)
    assert {o.check_type for o in gate.failures} == {"measure_completeness"}
    ck = next(o for o in gate.failures if o.column == "has_post_ck")
    assert ck.threshold == 50.0 and ck.unexpected_percent > 50.0
    assert ck.observed_value.startswith(f"CK: {ck.unexpected_count} of ")


def test_completeness_exactly_at_threshold_passes(sites, pool) -> None:
    tables = _site(sites, "h02")  # 8 patients, all followed for mRSS
    keys = tables["patients"].get_column("patient_key")
    assert keys.len() == 8
    half = keys.head(4)
    latest = pl.col("assessment_date") == pl.col("assessment_date").max().over(
        "patient_key", "measure")
    tables["assessments"] = tables["assessments"].filter(  # drop their post mRSS
        ~((pl.col("measure") == "mrss") & pl.col("patient_key").is_in(half.implode()) & latest))
    gate = run_landing_gate("h02", DELIVERY, tables, pool, "run-test",
                            suites={"landed.patient_windows": SUITES["landed.patient_windows"]})
    post = next(o for o in gate.outcomes if o.column == "has_post_mrss")
    assert post.unexpected_percent == 50.0 and post.success  # ≤ threshold passes


def test_site_drift_not_evaluated_without_a_pool(sites) -> None:
    tables = _site(sites)
    _set(tables, "assessments", pl.col("measure") == "ck", value=pl.col("value") / 60)
    lonely = pool_stats({"h01": tables})
    gate = run_landing_gate("h01", DELIVERY, tables, lonely, "run-test",
                            suites={"landed.assessments": SUITES["landed.assessments"]})
    drift = next(o for o in gate.outcomes if o.check_type == "site_drift")
    assert drift.success and drift.observed_value.startswith("CK (U/L): not evaluated")


def test_site_without_ck_is_not_judged_for_drift(sites, pool) -> None:
    tables = _site(sites)
    tables["assessments"] = tables["assessments"].filter(pl.col("measure") != "ck")
    gate = run_landing_gate("h01", DELIVERY, tables, pool, "run-test",
                            suites={"landed.assessments": SUITES["landed.assessments"]})
    drift = next(o for o in gate.outcomes if o.check_type == "site_drift")
    assert drift.success and drift.observed_value.startswith(
        "CK (U/L): not evaluated: 0 value(s)")
    assert gate.passed_errors
    validated = {r.expectation_config.meta["check_id"] for r in gate.runs[0].result.results}
    assert drift.check_id not in validated  # left out of the GX run, so Data Docs agree


def test_completeness_needs_three_followed_patients(sites, pool) -> None:
    tables = _site(sites)
    keep = tables["patients"].get_column("patient_key").head(2).implode()
    latest = pl.col("assessment_date") == pl.col("assessment_date").max().over(
        "patient_key", "measure")
    # mRSS of two patients only, both without their post value: 100% missing, but of 2
    tables["assessments"] = tables["assessments"].filter(
        (pl.col("measure") != "mrss") | (pl.col("patient_key").is_in(keep) & ~latest))
    gate = run_landing_gate("h01", DELIVERY, tables, pool, "run-test",
                            suites={"landed.patient_windows": SUITES["landed.patient_windows"]})
    post = next(o for o in gate.outcomes if o.column == "has_post_mrss")
    assert post.success and post.observed_value == (
        "mRSS: not evaluated: 2 patient(s) followed for the measure (needs 3)")


def test_clear_identifiers_never_appear_in_results(sites, pool) -> None:
    tables = _site(sites)
    _replace_first_patient_key(tables, "NHC-00012345")
    tables["patients"] = pl.concat([tables["patients"], tables["patients"].head(1)])
    gate = run_landing_gate("h01", DELIVERY, tables, pool, "run-test",
                            suites={"landed.patients": SUITES["landed.patients"]})
    assert {"key_format", "unique_key"} <= {o.check_type for o in gate.failures}
    dumped = json.dumps([run.result.to_json_dict() for run in gate.runs], default=str)
    assert "NHC-00012345" not in dumped
    assert all("NHC" not in (o.observed_value or "") for o in gate.outcomes)


def test_missing_table_is_an_error_not_a_crash(sites, pool) -> None:
    tables = _site(sites)
    del tables["adverse_events"]
    gate = run_landing_gate("h01", DELIVERY, tables, pool, "run-test")
    assert gate.passed_errors is False
    failed = {o.check_type for o in gate.failures if o.suite == "landed.adverse_events"}
    assert "columns_present" in failed
