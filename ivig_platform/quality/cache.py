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
from ivig_platform.quality.gate import GateResult, _drift_parameters, _gate_suites, run_landing_gate
from ivig_platform.quality.pool import PoolStats
from ivig_platform.quality.registry import expectations_dir

CACHE_DIR = "_gate"


def suites_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted(expectations_dir().rglob("*")):
        if path.is_file() and path.suffix in {".json", ".csv"}:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def gate_key(site_id: str, content_sha256: str, tables: dict[str, pl.DataFrame],
             pool: PoolStats, fingerprint: str) -> str:
    parameters, _, skips = _drift_parameters(_gate_suites("landing", None), site_id, tables,
                                             pool)
    material = json.dumps(
        {"content": content_sha256, "suites": fingerprint, "drift": parameters,
         "skips": skips},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def cached_landing_gate(warehouse: Path, site_id: str, delivery_id: str, content_sha256: str,
                        tables: dict[str, pl.DataFrame], pool: PoolStats, run_id: str,
                        fingerprint: str) -> tuple[GateResult, bool]:
    """The gate result of a delivery, from its cache when nothing it depends on changed.

    Returns (result, from_cache). A cached result is re-stamped with this run's id, so
    `quality.check_result` describes the current refresh; `validated_at` keeps the time
    the checks really ran.
    """
    folder = delivery_dir(warehouse, site_id, delivery_id) / CACHE_DIR
    key = gate_key(site_id, content_sha256, tables, pool, fingerprint)
    path = folder / f"{key}.pickle"
    if path.exists():
        try:
            cached: GateResult = pickle.loads(path.read_bytes())
            return dataclasses.replace(cached, run_id=run_id), True
        except Exception:  # an unreadable cache is only a cache: validate again
            path.unlink(missing_ok=True)
    result = run_landing_gate(site_id, delivery_id, tables, pool, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.pickle"):
        old.unlink()
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(result))
    tmp.replace(path)
    return result, False
