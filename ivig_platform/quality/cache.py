"""Landing-gate results kept with the delivery they judged, so an unchanged site is not
validated again on every refresh.

A verdict is reused only under the same key, and the key holds everything the verdict
rests on (`gate_key`):

- the delivery: its content hash and the landed files the gate read (their SHA-256 from
  the manifest), so a delivery landed again is judged again;
- its drift references, fixed the first time the delivery is gated and stored with it
  (drift_reference.py): other sites arriving or changing move neither the references nor,
  therefore, the verdict, and no bound is taken from the current pool;
- the suites (the expectation files);
- what judges (fingerprints.GATE): the gate's code (`ivig_platform/quality/**` and every
  package module it imports), the versions of great-expectations, pandas and polars, and
  the protocol's contract and plans in force.

So a change of the suites, of the gate's code, of GX or of the protocol re-validates
against the same references, and nothing else does. Results are stored as JSON
(result_json.py: the outcomes, and GX's results through its public JSON form), never as
pickles of GX's classes; a file that cannot be read as a current result (damaged, of an
older format, such as the pickles earlier versions wrote) is ignored, removed and the
delivery validated again. Results live next to the delivery's Parquet and vanish with it
when the delivery is landed again (its references do not: they are kept under
WAREHOUSE/gate/references/).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from ivig_platform.fingerprints import GATE, digest
from ivig_platform.landing.land import delivery_dir, read_manifest
from ivig_platform.quality.drift_reference import DriftPools, References, fixed_references
from ivig_platform.quality.gate import GateResult, _gate_suites, landing_parameters
from ivig_platform.quality.pooled import POOL_PREFIX, run_landing_gates
from ivig_platform.quality.registry import expectations_dir
from ivig_platform.quality.result_json import UnreadableResult, from_json, to_json

if TYPE_CHECKING:
    from ivig_platform.protocol.load import Protocol

CACHE_DIR = "_gate"
SUFFIX = ".json"
# What earlier versions stored (pickles of GX objects): never read, removed on sight.
OLD_SUFFIXES = (".pickle",)


def suites_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted(expectations_dir().rglob("*")):
        if path.is_file() and path.suffix in {".json", ".csv"}:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def gate_key(content_sha256: str, fingerprint: str, references: References, *,
             judge: str, landed: str) -> str:
    """The cache key of a verdict (see the module docstring): the delivery's content and
    landed files (`landed`), its fixed drift references, the suites (`fingerprint`) and
    what judges (`judge`: `GATE.fingerprint()`)."""
    return digest({
        "content": content_sha256, "landed": landed, "suites": fingerprint, "judge": judge,
        "references": {k: dataclasses.asdict(v) for k, v in references.items()},
    })[:32]


def landed_identity(warehouse: Path, site_id: str, delivery_id: str) -> str:
    """The landed files a verdict judged, by the sizes and SHA-256 their manifest records
    ("" when there is no readable manifest: such a delivery is never gated)."""
    manifest = read_manifest(delivery_dir(warehouse, site_id, delivery_id))
    if manifest is None:
        return ""
    return digest({"landing": manifest.landing_version, "files": manifest.landed_files})


def cache_path(warehouse: Path, site_id: str, delivery_id: str, key: str) -> Path:
    return delivery_dir(warehouse, site_id, delivery_id) / CACHE_DIR / f"{key}{SUFFIX}"


def read_cached(warehouse: Path, site_id: str, delivery_id: str, key: str,
                run_id: str) -> GateResult | None:
    """The cached gate result of a delivery under `key`, re-stamped with this run's id.

    `validated_at` keeps the time the checks really ran, so `quality.check_result`
    describes the current refresh and says when each verdict was reached. A file that is
    not a current result is only a cache: it is removed and the delivery validated again.
    """
    path = cache_path(warehouse, site_id, delivery_id, key)
    try:
        cached, record = from_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, UnreadableResult):
        path.unlink(missing_ok=True)
        return None
    if record.get("key") != key or (cached.site_id, cached.delivery_id) != (site_id,
                                                                            delivery_id):
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
    for old in folder.iterdir():
        if old.suffix in (SUFFIX, *OLD_SUFFIXES):
            old.unlink(missing_ok=True)
    path = folder / f"{key}{SUFFIX}"
    tmp = folder / f".{key}.{os.getpid()}.tmp"
    tmp.write_text(to_json(own, key=key), encoding="utf-8")
    tmp.replace(path)


def cached_landing_gates(warehouse: Path, deliveries: list[tuple[str, str, str]],
                         tables: dict[tuple[str, str], dict[str, pl.DataFrame]],
                         pools: DriftPools, run_id: str, fingerprint: str, *,
                         protocol: Protocol | None = None
                         ) -> list[tuple[GateResult, bool]]:
    """Gate results of (site_id, delivery_id, content_sha256), from the cache where nothing
    they depend on changed; the others are validated together (`run_landing_gates`).

    Each delivery is judged against its stored drift references; a delivery gated for the
    first time gets them fixed now from `pools`. `fingerprint`: the suites'
    (`suites_fingerprint()`); `protocol`: the protocol in force (default: `load_protocol()`),
    whose contract and plans are part of the key. Returns (result, from_cache) in the
    order given.
    """
    judge = GATE.fingerprint(protocol)
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
        (site, delivery): gate_key(content, fingerprint, references[(site, delivery)],
                                   judge=judge,
                                   landed=landed_identity(warehouse, site, delivery))
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
