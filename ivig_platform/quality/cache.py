"""Landing-gate results kept with the delivery they judged, so an unchanged site is not
validated again on every refresh.

A site's verdict depends on its delivery (content hash), the suites (the expectation
files) and its drift references, which are fixed the first time the delivery is gated and
stored with it (drift_reference.py): other sites arriving or changing move neither the
references nor, therefore, the verdict. The cache key holds the three — no bounds taken
from the current pool — so an unchanged site is not validated again when others change,
and a change of the suites re-validates against the same references. Results live next to
the delivery's Parquet and vanish with it when the delivery is landed again (its
references do not: they are kept under WAREHOUSE/gate/references/).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
from pathlib import Path

import polars as pl

from ivig_platform.landing.land import delivery_dir
from ivig_platform.quality.drift_reference import DriftPools, References, fixed_references
from ivig_platform.quality.gate import GateResult, _gate_suites, landing_parameters
from ivig_platform.quality.pooled import POOL_PREFIX, run_landing_gates
from ivig_platform.quality.registry import expectations_dir

CACHE_DIR = "_gate"


def suites_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted(expectations_dir().rglob("*")):
        if path.is_file() and path.suffix in {".json", ".csv"}:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def gate_key(content_sha256: str, fingerprint: str, references: References) -> str:
    """The cache key of a verdict: the delivery, the suites and the delivery's fixed drift
    references (everything else a verdict rests on follows from the delivery)."""
    material = json.dumps(
        {"content": content_sha256, "suites": fingerprint,
         "references": {k: dataclasses.asdict(v) for k, v in references.items()}},
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
                         pools: DriftPools, run_id: str, fingerprint: str
                         ) -> list[tuple[GateResult, bool]]:
    """Gate results of (site_id, delivery_id, content_sha256), from the cache where nothing
    they depend on changed; the others are validated together (`run_landing_gates`).

    Each delivery is judged against its stored drift references; a delivery gated for the
    first time gets them fixed now from `pools`. Returns (result, from_cache) in the order
    given.
    """
    suites = _gate_suites("landing", None)
    references = {
        (site, delivery): fixed_references(warehouse, site, delivery, content, pools)
        for site, delivery, content in deliveries
    }
    parameters = {
        (site, delivery): landing_parameters(suites, site, delivery, tables[(site, delivery)],
                                             references[(site, delivery)])
        for site, delivery, _ in deliveries
    }
    keys = {
        (site, delivery): gate_key(content, fingerprint, references[(site, delivery)])
        for site, delivery, content in deliveries
    }
    found = {
        (site, delivery): read_cached(warehouse, site, delivery, keys[(site, delivery)], run_id)
        for site, delivery, _ in deliveries
    }
    missing = [(site, delivery) for (site, delivery), hit in found.items() if hit is None]
    fresh = run_landing_gates([(s, d, tables[(s, d)]) for s, d in missing], pools.newest,
                              run_id, parameters=parameters)
    for result in fresh:
        write_cached(warehouse, keys[(result.site_id, result.delivery_id)], result)
    fresh_by = {(r.site_id, r.delivery_id): r for r in fresh}
    return [
        (found[(s, d)], True) if found[(s, d)] is not None else (fresh_by[(s, d)], False)
        for s, d, _ in deliveries
    ]
