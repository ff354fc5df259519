"""Gating every site's newest landed delivery, in rounds: a held-back site falls back.

A site whose newest delivery fails an `error` check is held back and its previous landed
delivery is gated in the next round, so the last good data stays in force; the other sites
are unaffected. Each round is one call of `gate_round` (in the refresh, the
`gate-deliveries` Prefect task, which validates the round's uncached deliveries together).

The drift references of a delivery gated for the first time are fixed from two pools
(drift_reference.py): the sites established in the last published warehouse, else every
site's newest landed delivery. Deliveries gated before keep theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from ivig_platform.landing.land import Manifest
from ivig_platform.quality.cache import suites_fingerprint
from ivig_platform.quality.drift_reference import DriftPools, established_pool
from ivig_platform.quality.gate import GateResult
from ivig_platform.quality.inputs import landed_tables
from ivig_platform.quality.pool import pool_stats

#: (batch of (site, delivery, content), warehouse, pools, run_id, suites fingerprint,
#: label, tables already read) -> one GateResult per delivery of the batch
GateRound = Callable[
    [list[tuple[str, str, str]], Path, DriftPools, str, str, str,
     dict[tuple[str, str], dict[str, pl.DataFrame]] | None],
    list[GateResult],
]


def gate_sites(manifests: list[Manifest], warehouse: Path, run_id: str,
               gate_round: GateRound, *, today: date | None = None
               ) -> tuple[dict[tuple[str, str], str], list[GateResult]]:
    """Gate each site's newest landed delivery; a held-back site falls back to older ones.

    Returns the held-back deliveries ((site, delivery) -> reason) and every gate result.
    """
    by_site: dict[str, list[str]] = {}
    content: dict[tuple[str, str], str] = {}
    for m in sorted(manifests, key=lambda m: m.delivery_id, reverse=True):
        if m.status == "landed":
            by_site.setdefault(m.site_id, []).append(m.delivery_id)
            content[(m.site_id, m.delivery_id)] = m.content_sha256
    if not by_site:
        return {}, []
    # Each site's newest delivery is read once: for the pools, then for its gate.
    newest = {(site, deliveries[0]): landed_tables(warehouse, site, deliveries[0])
              for site, deliveries in by_site.items()}
    pools = DriftPools(
        established=established_pool(warehouse, newest),
        newest=pool_stats({site: tables for (site, _), tables in newest.items()}),
        fixed_on=(today or datetime.now(UTC).date()).isoformat(),
        run_id=run_id,
    )
    fingerprint = suites_fingerprint()
    held_back: dict[tuple[str, str], str] = {}
    results: list[GateResult] = []
    pending = {site: deliveries[0] for site, deliveries in by_site.items()}
    round_number = 0
    while pending:
        round_number += 1
        label = (f"{len(pending)}-deliveries" if round_number == 1
                 else f"fallback-{round_number - 1}-{len(pending)}-deliveries")
        batch = [(site, pending[site], content[(site, pending[site])])
                 for site in sorted(pending)]
        pending = {}
        read = newest if round_number == 1 else None
        for result in gate_round(batch, warehouse, pools, run_id, fingerprint, label, read):
            results.append(result)
            if not result.passed_errors:
                site = result.site_id
                held_back[(site, result.delivery_id)] = result.reason
                older = by_site[site][by_site[site].index(result.delivery_id) + 1:]
                if older:
                    pending[site] = older[0]
    return held_back, results
