"""The pooled landing gate gives every delivery exactly the outcomes of its own gate run.

`run_landing_gates` validates many deliveries in one GX validation per suite and splits
the results per delivery (quality/pooled.py); `run_landing_gate` validates one delivery
alone. Here each crafted error and warn case of test_quality_landing_gate.py is put on a
site of its own, among clean sites, and gated both ways: every outcome (check, success,
counts, percent, observed value) must be the same, and most deliveries must really have
been judged in a pool, so the split is what is tested.
"""

from __future__ import annotations

import polars as pl
import pytest
from quality_samples import landed_site
from test_quality_landing_gate import DELIVERY, ERROR_CASES, WARN_CASES, Tables

from ivig_platform.quality import pool_stats, run_landing_gate
from ivig_platform.quality.pooled import POOL_PREFIX, run_landing_gates

RUN = "run-pooled"


def _site(site_id: str, seed: int, **kwargs) -> Tables:
    return landed_site(site_id, DELIVERY, n_patients=6 + seed % 3, seed=seed, **kwargs)


@pytest.fixture(scope="module")
def deliveries() -> list[tuple[str, str, Tables]]:
    sites = [(f"h{i:02d}", DELIVERY, _site(f"h{i:02d}", i)) for i in range(1, 9)]
    sites.append(("h09", DELIVERY, _site("h09", 9, sparse=True)))
    for n, (name, _, mutate, _, _) in enumerate([*ERROR_CASES, *WARN_CASES], start=20):
        site = f"h{n:02d}-{name.replace('_', '-')}"
        tables = _site(site, n)
        mutate(tables)
        sites.append((site, DELIVERY, tables))
    # a key shared with another site, and a row carrying another site's id
    shared = _site("h90", 90)
    shared["patients"] = pl.concat([shared["patients"], sites[0][2]["patients"].head(1)
                                    .with_columns(pl.lit("h90").alias("site_id"))])
    sites.append(("h90", DELIVERY, shared))
    foreign = _site("h91", 91)
    foreign["assessments"] = foreign["assessments"].with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("h02")).otherwise(pl.col("site_id"))
        .alias("site_id"))
    sites.append(("h91", DELIVERY, foreign))
    return sites


@pytest.fixture(scope="module")
def pool(deliveries):
    return pool_stats({site: tables for site, _, tables in deliveries[:8]})


@pytest.fixture(scope="module")
def both(deliveries, pool):
    pooled = run_landing_gates(deliveries, pool, RUN)
    alone = [run_landing_gate(site, delivery, tables, pool, RUN)
             for site, delivery, tables in deliveries]
    return pooled, alone


def test_every_delivery_gets_the_outcomes_of_its_own_gate(both) -> None:
    pooled, alone = both
    assert [g.label for g in pooled] == [g.label for g in alone]
    for p, a in zip(pooled, alone, strict=True):
        assert p.outcomes == a.outcomes, p.label
        assert p.verdict == a.verdict and p.reason == a.reason, p.label


def test_the_cases_fail_as_crafted(both) -> None:
    pooled, _ = both
    by_site = {g.site_id: g for g in pooled}
    for n, (name, _, _, check_type, _) in enumerate(ERROR_CASES, start=20):
        gate = by_site[f"h{n:02d}-{name.replace('_', '-')}"]
        assert not gate.passed_errors and check_type in {o.check_type for o in gate.failures}
    for n, (name, _, _, check_type, _) in enumerate(WARN_CASES, start=20 + len(ERROR_CASES)):
        gate = by_site[f"h{n:02d}-{name.replace('_', '-')}"]
        assert gate.passed_errors and check_type in {o.check_type for o in gate.failures}
    # h90's copied key is unique within h90: it passes, as it does alone
    assert by_site["h90"].passed_errors and by_site["h01"].passed_errors
    assert "matches_delivery" in {o.check_type for o in by_site["h91"].failures}


def test_clean_deliveries_are_judged_in_a_pool_and_failed_ones_alone(both) -> None:
    pooled, _ = both
    for gate in pooled:
        alone = [r.suite for r in gate.runs if not r.batch_identifier.startswith(POOL_PREFIX)]
        if not gate.passed_errors:
            failed_suites = {o.suite for o in gate.failures if o.severity == "error"}
            assert failed_suites <= set(alone), gate.label  # GX on the delivery alone
        elif gate.site_id in {"h01", "h90"}:  # a key of both: judged alone, not in the pool
            assert "landed.patients" in alone, gate.label
        elif gate.site_id.startswith("h0"):
            assert alone == [], gate.label
    shared = {r.batch_identifier for g in pooled for r in g.runs}
    assert any(b.startswith(POOL_PREFIX) for b in shared)
    # a pooled result is one object, shared: Data Docs render it once
    firsts = [g.runs[0].result for g in pooled if g.runs[0].batch_identifier.startswith(
        POOL_PREFIX)]
    assert len({id(r) for r in firsts}) == 1


def test_a_single_delivery_is_validated_alone(deliveries, pool) -> None:
    site, delivery, tables = deliveries[0]
    (gate,) = run_landing_gates([(site, delivery, tables)], pool, RUN)
    assert gate.outcomes == run_landing_gate(site, delivery, tables, pool, RUN).outcomes
    assert not any(r.batch_identifier.startswith(POOL_PREFIX) for r in gate.runs)
