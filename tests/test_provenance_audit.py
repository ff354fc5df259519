"""The audit trail (provenance/audit.py): only state changes are events, the log is
append-only and survives rebuilds, a rollback appends `rolled_back` events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl

from ivig_platform.landing.manifest import Manifest
from ivig_platform.provenance import audit
from ivig_platform.provenance.steps import after_publish, record_inputs
from ivig_platform.warehouse.build import RunInfo, build_database, delivery_status

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def manifest(site: str, delivery: str, content: str = "", status: str = "landed",
             reason: str | None = None) -> Manifest:
    return Manifest(site_id=site, delivery_id=delivery, status=status, reason=reason,
                    content_sha256=content or f"{site}-{delivery}", landing_version="3",
                    key_fingerprint="k", delivery_date=delivery, landed_at=T0.isoformat(),
                    rows_landed=10, rows_quarantined=1)


def run(history: list[dict], manifests: list[Manifest], run_id: str, day: int,
        held: dict[tuple[str, str], str] | None = None,
        checks: dict[tuple[str, str], list[str]] | None = None) -> list[dict]:
    held = held or {}
    observed = audit.observe(manifests, delivery_status(manifests, held), held, checks or {})
    events = audit.derive_events(history, observed, run_id, T0 + timedelta(days=day))
    history.extend(events)
    return events


def kinds(events: list[dict]) -> list[tuple[str, str, str]]:
    return [(e["site_id"], e["delivery_id"], e["event"]) for e in events]


def test_three_refreshes_with_a_held_back_and_a_superseded_delivery_and_a_rollback():
    log: list[dict] = []
    first = [manifest("site-a", "2026-10-01"), manifest("site-b", "2026-10-01")]
    assert kinds(run(log, first, "r1", 0)) == [
        ("site-a", "2026-10-01", "received"), ("site-a", "2026-10-01", "landed"),
        ("site-a", "2026-10-01", "accepted"),
        ("site-b", "2026-10-01", "received"), ("site-b", "2026-10-01", "landed"),
        ("site-b", "2026-10-01", "accepted"),
    ]
    second = [*first, manifest("site-a", "2026-11-01")]
    held = {("site-a", "2026-11-01"): "quality gate: 1 error check failed"}
    checks = {("site-a", "2026-11-01"): ["landed.assessments/value[measure=ck]/site_drift/error"]}
    events = run(log, second, "r2", 1, held, checks)
    assert kinds(events) == [("site-a", "2026-11-01", "received"),
                             ("site-a", "2026-11-01", "landed"),
                             ("site-a", "2026-11-01", "held_back")]
    assert events[-1]["failed_checks"] == checks[("site-a", "2026-11-01")]
    assert events[-1]["detail"] == held[("site-a", "2026-11-01")]
    third = [*second, manifest("site-b", "2026-11-05")]
    events = run(log, third, "r3", 2, held, checks)
    assert kinds(events) == [("site-b", "2026-10-01", "superseded"),
                             ("site-b", "2026-11-05", "received"),
                             ("site-b", "2026-11-05", "landed"),
                             ("site-b", "2026-11-05", "accepted")]
    assert {e["run_id"] for e in events} == {"r3"}
    # rollback to the second run's file: site-b's old delivery is in force again
    before = {(r["site_id"], r["delivery_id"]): r["status"]
              for r in delivery_status(third, held).iter_rows(named=True)}
    after = {(r["site_id"], r["delivery_id"]): r["status"]
             for r in delivery_status(second, held).iter_rows(named=True)}
    rolled = audit.rollback_events(log, before, after, "ivig-3", "ivig-2",
                                   T0 + timedelta(days=3), "rollback-1")
    log.extend(rolled)
    assert [(e["delivery_id"], e["event"], e["status"]) for e in rolled] == [
        ("2026-10-01", "rolled_back", "accepted"),
        ("2026-11-05", "rolled_back", "not_published")]
    assert all(e["site_id"] == "site-b" for e in rolled)
    # the next refresh of the same inbox publishes the newer delivery again
    assert kinds(run(log, third, "r4", 4, held, checks)) == [
        ("site-b", "2026-10-01", "superseded"), ("site-b", "2026-11-05", "accepted")]


def test_an_unchanged_night_adds_no_event():
    log: list[dict] = []
    deliveries = [manifest("site-a", "2026-10-01"), manifest("site-b", "2026-10-01",
                                                            status="rejected",
                                                            reason="missing_table: x")]
    run(log, deliveries, "r1", 0)
    assert run(log, deliveries, "r2", 1) == []


def test_a_delivery_sent_again_with_other_files_is_received_again():
    log: list[dict] = []
    run(log, [manifest("site-a", "2026-10-01", content="one")], "r1", 0)
    events = run(log, [manifest("site-a", "2026-10-01", content="two")], "r2", 1)
    assert kinds(events) == [("site-a", "2026-10-01", e) for e in
                             ("received", "landed", "accepted")]
    assert events[0]["content_sha256"] == "two"


def test_a_held_back_delivery_failing_other_checks_is_an_event_again():
    log: list[dict] = []
    key = ("site-a", "2026-10-01")
    deliveries = [manifest(*key)]
    run(log, deliveries, "r1", 0, {key: "held"}, {key: ["check-1"]})
    assert run(log, deliveries, "r2", 1, {key: "held"}, {key: ["check-1"]}) == []
    again = run(log, deliveries, "r3", 2, {key: "held"}, {key: ["check-2"]})
    assert kinds(again) == [(*key, "held_back")]


def test_a_rejected_landing_is_received_and_rejected_with_its_reason():
    log: list[dict] = []
    events = run(log, [manifest("site-a", "2026-10-01", status="rejected",
                                reason="missing_column: patients.csv: sex")], "r1", 0)
    assert [(e["event"], e["detail"]) for e in events] == [
        ("received", None), ("rejected", "missing_column: patients.csv: sex")]


def test_the_log_is_append_only_and_a_torn_last_line_is_skipped_and_ended(tmp_path):
    first = audit._event(T0, "r1", "site-a", "d1", "received", "received", "c")
    audit.append_events(tmp_path, [first])
    with audit.events_path(tmp_path).open("a") as handle:
        handle.write('{"event_time": "2026-')  # a crash half-way through a line
    assert audit.read_events(tmp_path) == [first]
    second = audit._event(T0, "r2", "site-a", "d1", "landed", "landed", "c")
    audit.append_events(tmp_path, [second])
    assert audit.read_events(tmp_path) == [first, second]
    assert audit.site_history(tmp_path, "site-a") == [first, second]
    assert audit.site_history(tmp_path, "site-b") == []


def test_the_build_gets_the_log_and_the_run_events_and_the_publish_appends_them(
        extract, make_delivery, tmp_path, warehouse):
    delivery = make_delivery(tmp_path, "h-one", "2026-11-24", extract.csv_tables(";"))
    manifests = [warehouse.land(delivery)]
    old = audit._event(T0, "r0", "h-old", "2026-01-01", "received", "received", "c")
    audit.append_events(warehouse.path, [old])
    built = tmp_path / "build.duckdb"
    build_database(built, warehouse.path, manifests,
                   RunInfo("r1", T0, str(tmp_path / "inbox"), "k"))
    pending = record_inputs(built, warehouse.path, manifests, {}, [], "r1", now=T0)
    assert [e["event"] for e in pending] == ["received", "landed", "accepted"]
    con = duckdb.connect(str(built), read_only=True)
    events = con.execute("SELECT run_id, event FROM quality.delivery_event").fetchall()
    cells = con.execute("SELECT count(*) FROM landed_cells.assessments").fetchone()[0]
    landed = con.execute("SELECT count(*) FROM landed.assessments").fetchone()[0]
    con.close()
    assert events == [("r0", "received"), ("r1", "received"), ("r1", "landed"),
                      ("r1", "accepted")]
    assert cells == landed > 0
    assert audit.read_events(warehouse.path) == [old]  # nothing appended before the publish
    (warehouse.path / "ivig.duckdb").write_bytes(built.read_bytes())
    after_publish(warehouse.path, pending, None)
    assert [e["event"] for e in audit.read_events(warehouse.path)] == [
        "received", "received", "landed", "accepted"]
    frame = audit.events_frame(audit.read_events(warehouse.path))
    assert frame.schema == pl.Schema(audit.EVENT_SCHEMA)


def test_a_rollback_puts_a_held_back_delivery_back_as_held_back_not_rejected(tmp_path):
    # a newer delivery superseded the held-back one; rolling back restores the file in
    # which the gate held it back (site_delivery: rejected with the gate's reason)
    key = ("site-a", "2026-11-01")
    log: list[dict] = []
    run(log, [manifest(*key)], "r1", 0, {key: "quality_gate: 1 error check(s) failed: x"},
        {key: ["check-1"]})
    newer = run(log, [manifest(*key), manifest("site-a", "2026-11-02")], "r2", 1)
    assert kinds(newer)[0] == (*key, "superseded")
    restored = tmp_path / "restored.duckdb"
    con = duckdb.connect(str(restored))
    con.execute("CREATE SCHEMA quality")
    con.execute("CREATE TABLE quality.site_delivery (site_id VARCHAR, delivery_id VARCHAR, "
                "status VARCHAR, reason VARCHAR)")
    con.execute("INSERT INTO quality.site_delivery VALUES ('site-a', '2026-11-01', "
                "'rejected', 'quality_gate: 1 error check(s) failed: x'), "
                "('site-b', '2026-10-01', 'rejected', 'missing_table: x')")
    con.close()
    after = audit.delivery_statuses(restored)
    assert after == {key: "held_back", ("site-b", "2026-10-01"): "rejected"}
    rolled = audit.rollback_events(log, {key: "superseded", ("site-a", "2026-11-02"):
                                         "accepted", ("site-b", "2026-10-01"): "rejected"},
                                   after, "ivig-2", "ivig-1", T0 + timedelta(days=2), "rb")
    assert [(e["delivery_id"], e["status"]) for e in rolled] == [
        ("2026-11-01", "held_back"), ("2026-11-02", "not_published")]
