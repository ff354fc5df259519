"""Quality over time (provenance/check_delta.py): each site's failing checks against the
previous published run's — new, persisting, resolved — as OHDSI's DQD compares releases."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import polars as pl

from ivig_platform.provenance.check_delta import (
    DELTA_SCHEMA,
    check_deltas,
    compare,
    current_failures,
    site_summary,
)
from ivig_platform.quality.gate import CheckOutcome, GateResult

WHEN = datetime(2026, 11, 25, tzinfo=UTC)


def outcome(check_id: str, success: bool, severity: str = "error") -> CheckOutcome:
    suite = check_id.split("/")[0]
    return CheckOutcome(suite=suite, check_id=check_id, check_type="t", expectation="e",
                        column="value", category="plausibility", severity=severity,
                        threshold=None, success=success, observed_value=None,
                        unexpected_count=1, unexpected_percent=50.0 if not success else 0.0,
                        element_count=2)


def gate(site: str | None, delivery: str | None, *outcomes: CheckOutcome,
         kind: str = "landing") -> GateResult:
    return GateResult(gate=kind, run_id="r", site_id=site, delivery_id=delivery,
                      validated_at=WHEN, outcomes=list(outcomes))


DRIFT = "landed.assessments/value[measure=ck]/site_drift/error"
COMPLETE = "landed.assessments/value/measure_completeness/warn"
MART = "marts.fct_assessment/value/valid_range/error"


def changes(frame: pl.DataFrame) -> set[tuple]:
    return set(frame.select("site_id", "check_id", "change").iter_rows())


def test_new_persisting_and_resolved_per_site_and_check():
    before = current_failures([gate("site-a", "d1", outcome(DRIFT, False)),
                               gate("site-b", "d1", outcome(COMPLETE, False, "warn"))])
    now = current_failures([gate("site-a", "d2", outcome(DRIFT, False)),
                            gate("site-b", "d1", outcome(COMPLETE, True, "warn"),
                                 outcome(DRIFT, False)),
                            gate(None, None, outcome(MART, False), kind="marts")])
    delta = compare(now, before, "r2", "r1")
    assert changes(delta) == {("site-a", DRIFT, "persisting"), ("site-b", COMPLETE, "resolved"),
                              ("site-b", DRIFT, "new"), (None, MART, "new")}
    persisting = delta.filter(pl.col("change") == "persisting").row(0, named=True)
    assert (persisting["delivery_id"], persisting["previous_delivery_id"]) == ("d2", "d1")
    resolved = delta.filter(pl.col("change") == "resolved").row(0, named=True)
    assert resolved["unexpected_percent"] is None
    assert resolved["previous_unexpected_percent"] == 50.0
    assert set(delta["previous_run_id"]) == {"r1"}


def test_a_site_is_judged_by_its_newest_gated_delivery():
    failures = current_failures([gate("site-a", "2026-11-01", outcome(DRIFT, False)),
                                 gate("site-a", "2026-10-01", outcome(COMPLETE, False, "warn"))])
    assert failures.select("delivery_id", "check_id").rows() == [("2026-11-01", DRIFT)]


def test_without_an_earlier_record_every_failure_is_new(tmp_path):
    results = [gate("site-a", "d1", outcome(DRIFT, False), outcome(COMPLETE, True, "warn"))]
    delta = check_deltas(results, tmp_path / "ivig.duckdb", "r1")
    assert delta.select("check_id", "change", "previous_run_id").rows() == [
        (DRIFT, "new", None)]
    assert delta.schema == pl.Schema(DELTA_SCHEMA)


def test_the_previous_failures_are_read_from_the_published_check_delta(tmp_path):
    published = tmp_path / "ivig.duckdb"
    first = compare(current_failures([gate("site-a", "d1", outcome(DRIFT, False))]), None,
                    "r1", None)
    con = duckdb.connect(str(published))
    con.execute("CREATE SCHEMA quality")
    con.execute("CREATE TABLE quality.refresh_run AS SELECT 'r1' AS run_id")
    con.register("f", first)
    con.execute("CREATE TABLE quality.check_delta AS SELECT * FROM f")
    con.close()
    delta = check_deltas([gate("site-a", "d1", outcome(DRIFT, True))], published, "r2")
    assert delta.select("check_id", "change", "previous_run_id").rows() == [
        (DRIFT, "resolved", "r1")]


def test_site_summary_lists_the_check_ids_by_change():
    delta = compare(current_failures([gate("site-a", "d2", outcome(DRIFT, False))]),
                    current_failures([gate("site-a", "d1", outcome(COMPLETE, False, "warn"))]),
                    "r2", "r1")
    row = site_summary(delta).row(0, named=True)
    assert (row["new"], row["persisting"], row["resolved"]) == ([DRIFT], [], [COMPLETE])
