"""An unchanged delivery's verdict never changes because other sites arrived (issue 10, 6).

End to end for the gate (two refreshes of 10 and 40 sites, ~20 s): marked e2e.

A reduced demo inbox (10 sites, its held-back and warn specials kept) is landed, gated and
published as the refresh does it (real landing, the round logic of quality/rounds.py with
the real pooled GX gate and its cache, the real warehouse build and publish; only Prefect
and dbt are left out). Every verdict is recorded. Then 30 sites arrive: 25 with CK in the
wrong unit (22 sites 60 times too high, 3 sites 60 times too low, all within the valid
range, so landing lets them through) and 5 with extreme but valid values of other
measures. A second refresh
must give every existing delivery the same verdict, word for word, and hold back exactly
the 25 sites whose CK says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivig_platform.demo import write_demo_inbox
from ivig_platform.landing.discovery import discover_deliveries
from ivig_platform.landing.land import land_delivery, landed_manifests
from ivig_platform.quality import (
    GateResult,
    check_results_frame,
    landed_tables,
    load_suites,
    pool_stats,
    run_landing_gate,
)
from ivig_platform.quality.cache import cached_landing_gates
from ivig_platform.quality.drift_reference import (
    ESTABLISHED,
    NEWEST_LANDED,
    DriftPools,
    established_pool,
    read_references,
    reference_path,
)
from ivig_platform.quality.rounds import gate_sites
from ivig_platform.warehouse.build import RunInfo, build_database, delivery_status
from ivig_platform.warehouse.publish import build_path, publish

pytestmark = pytest.mark.e2e

KEY = b"verdict-stability-key-0123456789abcdef"
NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
NEW_DELIVERY = "2026-11-20"
# 30 arrivals, most of them 60 times too high: enough to drag the pooled median of every
# site's newest delivery (the old reference) into their range
CK_UP = [f"xck-up-{i:02d}" for i in range(22)]  # a unit error: 60 times too high
CK_DOWN = [f"xck-down-{i:02d}" for i in range(3)]  # µkat/L read as U/L: 60 times too low
EXTREME_OTHER = [f"xother-{i:02d}" for i in range(5)]  # mRSS 51 everywhere, CK as usual


@dataclass
class Refresh:
    """What one refresh decided."""

    results: dict[tuple[str, str], GateResult]
    status: dict[tuple[str, str], str]


def gate_round(batch, warehouse, pools, run_id, fingerprint, label, read):
    """One round as the gate-deliveries task runs it, without Prefect."""
    read = read or {}
    tables = {(s, d): read.get((s, d)) or landed_tables(warehouse, s, d) for s, d, _ in batch}
    return [r for r, _ in cached_landing_gates(warehouse, batch, tables, pools, run_id,
                                               fingerprint)]


def refresh(inbox: Path, warehouse: Path, run_id: str) -> Refresh:
    for delivery in discover_deliveries(inbox):
        land_delivery(delivery, warehouse, KEY, now=NOW)
    manifests = landed_manifests(warehouse)
    held_back, results = gate_sites(manifests, warehouse, run_id, gate_round,
                                    today=NOW.date())
    run = RunInfo(run_id=run_id, started_at=NOW, inbox=str(inbox))
    built = build_path(warehouse, run_id)
    build_database(built, warehouse, manifests, run, held_back=held_back,
                   check_results=check_results_frame(results))
    publish(built, warehouse)
    status = delivery_status(manifests, held_back)
    return Refresh(
        {(r.site_id, r.delivery_id): r for r in results},
        {(s, d): st for s, d, st in status.select("site_id", "delivery_id", "status").rows()},
    )


def new_site(make_delivery, new_extract, root: Path, site: str, *, ck: float | None = None,
             mrss: float | None = None) -> None:
    """A clean three-patient delivery with four CK values (and mRSS, when given) set."""
    extract = new_extract()
    rows = extract.tables["assessments"]
    for row in rows[1:]:
        if row[2] == "ck" and ck is not None:
            row[3] = f"{ck:g}"
    for patient, day in (("100781", "2021-05-02"), ("101502", "2021-05-03")):
        extract.append("assessments", patient_id=patient, assessment_date=day, measure="ck",
                       value=f"{ck if ck is not None else 310:g}", unit="U/L")
        if mrss is not None:
            extract.append("assessments", patient_id=patient, measure="mrss",
                           value=f"{mrss:g}")
    make_delivery(root, site, NEW_DELIVERY, extract.csv_tables())


@pytest.fixture(scope="module")
def stability(tmp_path_factory, make_delivery, new_extract):
    root = tmp_path_factory.mktemp("stability")
    truth = write_demo_inbox(root / "inbox", n_sites=10, n_patients=40)
    warehouse = root / "warehouse"
    first = refresh(root / "inbox", warehouse, "run-1")
    for i, site in enumerate(CK_UP):
        new_site(make_delivery, new_extract, root, site, ck=60 * (300 + 37 * i))
    for i, site in enumerate(CK_DOWN):
        new_site(make_delivery, new_extract, root, site, ck=round((300 + 41 * i) / 60, 2))
    for site in EXTREME_OTHER:
        new_site(make_delivery, new_extract, root, site, mrss=51)
    second = refresh(root / "inbox", warehouse, "run-2")
    return truth, warehouse, first, second


def _drift(result: GateResult) -> str:
    (drift,) = [o for o in result.outcomes if o.check_type == "site_drift"]
    return drift.observed_value or ""


def test_every_existing_verdict_is_unchanged_after_30_sites_arrive(stability) -> None:
    _, _, first, second = stability
    assert len(first.results) >= 10
    for key, before in first.results.items():
        after = second.results[key]
        assert (after.passed_errors, after.verdict, after.reason) == (
            before.passed_errors, before.verdict, before.reason), key
        assert [(o.check_id, o.success, o.observed_value) for o in after.outcomes] == [
            (o.check_id, o.success, o.observed_value) for o in before.outcomes], key
    assert {k: v for k, v in second.status.items() if k in first.status} == first.status


def test_the_demo_specials_keep_their_verdicts(stability) -> None:
    truth, _, first, second = stability
    for refreshed in (first, second):
        held = {k for k, r in refreshed.results.items() if not r.passed_errors}
        assert (truth.held_back_site, truth.held_back_delivery) in held
        assert refreshed.status[(truth.held_back_site, truth.held_back_delivery)] == "rejected"
        warned = refreshed.results[(truth.warn_site, max(
            d for s, d in refreshed.results if s == truth.warn_site))]
        assert warned.verdict == "passed with warnings"


def test_the_arrivals_are_judged_against_the_established_sites(stability) -> None:
    truth, _, first, second = stability
    for site in CK_UP + CK_DOWN:
        result = second.results[(site, NEW_DELIVERY)]
        assert not result.passed_errors, site
        assert "site_drift" in (result.reason or ""), site
        assert "established site(s)" in _drift(result), site
        assert second.status[(site, NEW_DELIVERY)] == "rejected"
    for site in EXTREME_OTHER:
        result = second.results[(site, NEW_DELIVERY)]
        assert result.passed_errors, (site, result.reason)
        assert second.status[(site, NEW_DELIVERY)] == "accepted"
    # the first refresh of a new warehouse had no established site: the newest-landed pool
    assert all("newest deliveries" in _drift(r) for r in first.results.values()
               if _drift(r).startswith("CK (U/L): site median"))


def test_without_fixed_references_the_arrivals_would_hold_existing_sites_back(stability):
    """The scenario bites: judged against every site's newest delivery (the old pool), the
    unchanged sites would now be held back (issue 10: hu-bellvitge)."""
    _, warehouse, first, _ = stability
    newest = {}
    for m in landed_manifests(warehouse):
        if m.status == "landed" and m.delivery_id > newest.get(m.site_id, ""):
            newest[m.site_id] = m.delivery_id
    tables = {site: landed_tables(warehouse, site, d) for site, d in newest.items()}
    pool = pool_stats(tables)
    suites = {"landed.assessments": load_suites()["landed.assessments"]}
    accepted = [k for k, r in first.results.items() if r.passed_errors and "ratio" in _drift(r)]
    flipped = [k for k in accepted if not run_landing_gate(
        k[0], k[1], tables[k[0]], pool, "old-pool", suites=suites).passed_errors]
    assert flipped, "the 30 arrivals should have moved the pooled median of newest deliveries"


def test_references_are_stored_with_the_delivery_and_say_how_they_were_fixed(stability):
    _, warehouse, first, _ = stability
    site, delivery = next(k for k, r in first.results.items() if "ratio" in _drift(r))
    record = json.loads(reference_path(warehouse, site, delivery).read_text())
    manifest = next(m for m in landed_manifests(warehouse)
                    if (m.site_id, m.delivery_id) == (site, delivery))
    assert record["content_sha256"] == manifest.content_sha256
    (reference,) = read_references(warehouse, site, delivery, manifest.content_sha256).values()
    assert (reference.basis, reference.run_id, reference.fixed_on) == (
        NEWEST_LANDED, "run-1", NOW.date().isoformat())
    assert f"fixed {NOW.date().isoformat()}, run run-1" in _drift(first.results[(site, delivery)])
    new = read_references(warehouse, CK_UP[0], NEW_DELIVERY, next(
        m.content_sha256 for m in landed_manifests(warehouse) if m.site_id == CK_UP[0]))
    assert [r.basis for r in new.values()] == [ESTABLISHED]
    assert read_references(warehouse, site, delivery, "another content") == {}


def test_regating_after_a_suite_change_uses_the_stored_reference(stability) -> None:
    """A changed suites fingerprint misses every cached verdict: the demo's deliveries are
    validated again, against the references stored with them — not against today's pools,
    which the arrivals have moved (they would say 2027-01-01 and run-3)."""
    _, warehouse, first, second = stability
    batch = [(s, d, m.content_sha256) for m in landed_manifests(warehouse)
             for s, d in [(m.site_id, m.delivery_id)] if (s, d) in first.results]
    newest = {}
    for m in landed_manifests(warehouse):
        if m.status == "landed" and m.delivery_id > newest.get(m.site_id, ""):
            newest[m.site_id] = m.delivery_id
    today = DriftPools(
        established=established_pool(warehouse),
        newest=pool_stats({s: landed_tables(warehouse, s, d) for s, d in newest.items()}),
        fixed_on="2027-01-01", run_id="run-3",
    )
    stamps = {p: p.stat().st_mtime_ns for p in (warehouse / "gate").rglob("*.json")}
    tables = {(s, d): landed_tables(warehouse, s, d) for s, d, _ in batch}
    gated = cached_landing_gates(warehouse, batch, tables, today, "run-3", "changed-suites")
    assert gated and not any(cached for _, cached in gated)  # all validated again
    for result, _ in gated:
        before = second.results[(result.site_id, result.delivery_id)]
        assert result.verdict == before.verdict, result.label
        assert _drift(result) == _drift(before), result.label
        assert "2027-01-01" not in _drift(result) and "run-3" not in _drift(result)
    assert {p: p.stat().st_mtime_ns for p in (warehouse / "gate").rglob("*.json")} == stamps
