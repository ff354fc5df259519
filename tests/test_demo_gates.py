"""The demo inbox against the REAL landing gate (issue 4), without Prefect.

Every delivery of the demo is landed as the refresh lands it; the pool of the site drift
check is built over each site's newest landed delivery (as the refresh builds it); then the
landing suites run on each site's newest landed delivery. The demo must hold exactly one
delivery that the gate holds back (the newer one of `held_back_site`, CK in µkat/L labelled
U/L: site drift, severity error) while that site's older delivery passes, one site that
passes with a `warn` (measure completeness at `warn_site`), and nothing else that fails an
`error` check: otherwise the published figures would lose a site.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivig_platform.demo import DemoTruth, write_demo_inbox
from ivig_platform.landing.discovery import discover_deliveries
from ivig_platform.landing.land import Manifest, land_delivery
from ivig_platform.landing.pseudonym import load_key
from ivig_platform.quality import GateResult, landed_tables, pool_stats, run_landing_gate
from ivig_platform.quality.pool import PoolStats

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)  # the refresh's clock: after every delivery
RUN_ID = "demo-gates-test"


class Gated:
    """What the module fixture computed once (landing and 19 gate runs take ~30 s)."""

    def __init__(self, truth: DemoTruth, warehouse: Path, manifests: list[Manifest],
                 newest: dict[str, str], pool: PoolStats, gates: dict[str, GateResult]) -> None:
        self.truth = truth
        self.warehouse = warehouse
        self.manifests = manifests
        self.newest = newest
        self.pool = pool
        self.gates = gates


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> Gated:
    root = tmp_path_factory.mktemp("demo_gates")
    truth = write_demo_inbox(root / "inbox")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IVIG_PSEUDONYM_KEY", "x" * 32)
        key = load_key()
    warehouse = root / "warehouse"
    manifests = [land_delivery(d, warehouse, key, now=NOW)
                 for d in discover_deliveries(root / "inbox")]
    newest: dict[str, str] = {}
    for m in manifests:
        if m.status == "landed" and m.delivery_id > newest.get(m.site_id, ""):
            newest[m.site_id] = m.delivery_id
    tables = {site: landed_tables(warehouse, site, d) for site, d in newest.items()}
    pool = pool_stats(tables)
    gates = {site: run_landing_gate(site, d, tables[site], pool, RUN_ID)
             for site, d in sorted(newest.items())}
    return Gated(truth, warehouse, manifests, newest, pool, gates)


def _failed(gate: GateResult, severity: str) -> list:
    return [o for o in gate.failures if o.severity == severity]


def test_the_specials_are_four_distinct_sites(gated: Gated) -> None:
    t = gated.truth
    specials = [t.two_delivery_site, t.broken_newest_site, t.held_back_site, t.warn_site]
    assert None not in specials and len(set(specials)) == 4
    assert t.held_back_delivery is not None and t.warn_measure and t.warn_timepoint


def test_held_back_delivery_lands_cleanly(gated: Gated) -> None:
    """Landing has nothing against it: every row passes the row rules."""
    t = gated.truth
    (m,) = [m for m in gated.manifests
            if (m.site_id, m.delivery_id) == (t.held_back_site, t.held_back_delivery)]
    assert m.status == "landed"
    assert m.rows_quarantined == 0 and m.rows_landed == m.source_rows
    assert gated.newest[t.held_back_site] == t.held_back_delivery


def test_only_the_held_back_delivery_fails_an_error_check(gated: Gated) -> None:
    t = gated.truth
    held = {site for site, gate in gated.gates.items() if not gate.passed_errors}
    assert held == {t.held_back_site}
    gate = gated.gates[t.held_back_site]
    assert gate.delivery_id == t.held_back_delivery
    assert gate.passed_errors is False and gate.verdict == "held back"
    assert gate.reason is not None and gate.reason.startswith("quality_gate")
    (drift,) = _failed(gate, "error")
    assert (drift.suite, drift.check_type, drift.column) == (
        "landed.assessments", "site_drift", "value")
    assert "measure=ck" in drift.check_id
    # CK read as U/L while written in µkat/L: about 60 times below the pool
    ratio = float(drift.observed_value.split("ratio ")[1].split(" ")[0])
    assert 1 / 200 < ratio <= 1 / 10


def test_held_back_matches_the_truth_of_deliveries(gated: Gated) -> None:
    """`expected_deliveries` says rejected/quality_gate for exactly what the gate holds back."""
    expected = {(s, d) for s, d, status, reason, _ in gated.truth.expected_deliveries
                if (status, reason) == ("rejected", "quality_gate")}
    found = {(g.site_id, g.delivery_id) for g in gated.gates.values() if not g.passed_errors}
    assert found == expected


def test_older_delivery_of_the_held_back_site_passes(gated: Gated) -> None:
    """What the refresh gates next: the site's previous delivery stays in force."""
    t = gated.truth
    (older,) = [d for s, d, status, _, _ in t.expected_deliveries
                if s == t.held_back_site and status == "accepted"]
    assert older < t.held_back_delivery
    gate = run_landing_gate(t.held_back_site, older,
                            landed_tables(gated.warehouse, t.held_back_site, older),
                            gated.pool, RUN_ID)
    assert gate.passed_errors is True and not _failed(gate, "error")
    drift = [o for o in gate.outcomes if o.check_type == "site_drift"]
    assert drift and all(o.success and "ratio" in (o.observed_value or "") for o in drift)


def test_warn_site_passes_with_a_completeness_warning(gated: Gated) -> None:
    t = gated.truth
    gate = gated.gates[t.warn_site]
    assert gate.passed_errors is True and gate.verdict == "passed with warnings"
    column = f"has_{t.warn_timepoint}_{t.warn_measure}"
    warned = [o for o in _failed(gate, "warn") if o.check_type == "measure_completeness"]
    assert [o.column for o in warned] == [column]
    (o,) = warned
    assert o.suite == "landed.patient_windows"
    assert o.unexpected_percent is not None and o.unexpected_percent > 50
    assert o.element_count is not None and o.element_count - o.unexpected_count >= 1


def test_every_other_site_passes_its_error_checks(gated: Gated) -> None:
    t = gated.truth
    for site, gate in gated.gates.items():
        if site == t.held_back_site:
            continue
        assert gate.passed_errors is True, (site, gate.reason)
        assert not _failed(gate, "error"), site
        if site != t.warn_site:
            completeness = [o for o in _failed(gate, "warn")
                            if o.check_type == "measure_completeness"]
            assert not completeness, (site, [o.column for o in completeness])
