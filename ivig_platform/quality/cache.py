"""Landing-gate results kept with the delivery they judged, so an unchanged site is not
validated again on every refresh.

A site's verdict depends on its delivery (content hash), the suites (the expectation
files) and, through the drift checks only, on the other sites: the bounds computed from
the pool. The cache key holds all three, so a change in any of them re-validates. The
pooled median of many sites rarely moves when one site re-delivers, so most sites hit the
cache on a one-site refresh. Results live next to the delivery's Parquet and vanish with
it when the delivery is landed again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
from pathlib import Path

import polars as pl

from ivig_platform.landing.land import delivery_dir
from ivig_platform.quality.gate import (
    PROVENANCE_PARAMETERS,
    GateResult,
    _gate_suites,
    landing_parameters,
)
from ivig_platform.quality.pool import PoolStats
from ivig_platform.quality.pooled import POOL_PREFIX, Parameters, run_landing_gates
from ivig_platform.quality.registry import expectations_dir

CACHE_DIR = "_gate"


def suites_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted(expectations_dir().rglob("*")):
        if path.is_file() and path.suffix in {".json", ".csv"}:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def gate_key(content_sha256: str, fingerprint: str, parameters: Parameters) -> str:
    """The cache key of a verdict: the delivery, the suites and the drift bounds and skips
    of its `landing_parameters` (the provenance parameters follow from the delivery)."""
    values, _, skips = parameters
    drift = {k: v for k, v in values.items() if k not in PROVENANCE_PARAMETERS.values()}
    material = json.dumps(
        {"content": content_sha256, "suites": fingerprint, "drift": drift, "skips": skips},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def read_cached(warehouse: Path, site_id: str, delivery_id: str, key: str,
                run_id: str) -> GateResult | None:
    """The cached gate result of a delivery under `key`, re-stamped with this run's id.

    `validated_at` keeps the time the checks really ran, so `quality.check_result`
    describes the current refresh and says when each verdict was reached.
    """
    path = delivery_dir(warehouse, site_id, delivery_id) / CACHE_DIR / f"{key}.pickle"
    if not path.exists():
        return None
    try:
        cached: GateResult = pickle.loads(path.read_bytes())
    except Exception:  # an unreadable cache is only a cache: validate again
        path.unlink(missing_ok=True)
        return None
    return dataclasses.replace(cached, run_id=run_id)


def write_cached(warehouse: Path, key: str, result: GateResult) -> None:
    """Keep a delivery's gate result under `key` (replacing older keys).

    Validation results shared by a pool of deliveries are left out of the copy: they are
    the pool's, large, and belong to the Data Docs of the refresh that ran them. The
    delivery's own outcomes and its own validations (a held-back delivery's) are kept.
    """
    folder = delivery_dir(warehouse, result.site_id, result.delivery_id) / CACHE_DIR
    own = dataclasses.replace(
        result, runs=[r for r in result.runs if not r.batch_identifier.startswith(POOL_PREFIX)]
    )
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.pickle"):
        old.unlink()
    path = folder / f"{key}.pickle"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(own))
    tmp.replace(path)


def cached_landing_gates(warehouse: Path, deliveries: list[tuple[str, str, str]],
                         tables: dict[tuple[str, str], dict[str, pl.DataFrame]],
                         pool: PoolStats, run_id: str, fingerprint: str
                         ) -> list[tuple[GateResult, bool]]:
    """Gate results of (site_id, delivery_id, content_sha256), from the cache where nothing
    they depend on changed; the others are validated together (`run_landing_gates`).

    Returns (result, from_cache) in the order given.
    """
    suites = _gate_suites("landing", None)
    parameters = {
        (site, delivery): landing_parameters(suites, site, delivery, tables[(site, delivery)],
                                             pool)
        for site, delivery, _ in deliveries
    }
    keys = {
        (site, delivery): gate_key(content, fingerprint, parameters[(site, delivery)])
        for site, delivery, content in deliveries
    }
    found = {
        (site, delivery): read_cached(warehouse, site, delivery, keys[(site, delivery)], run_id)
        for site, delivery, _ in deliveries
    }
    missing = [(site, delivery) for (site, delivery), hit in found.items() if hit is None]
    fresh = run_landing_gates([(s, d, tables[(s, d)]) for s, d in missing], pool, run_id,
                              parameters=parameters)
    for result in fresh:
        write_cached(warehouse, keys[(result.site_id, result.delivery_id)], result)
    fresh_by = {(r.site_id, r.delivery_id): r for r in fresh}
    return [
        (found[(s, d)], True) if found[(s, d)] is not None else (fresh_by[(s, d)], False)
        for s, d, _ in deliveries
    ]
