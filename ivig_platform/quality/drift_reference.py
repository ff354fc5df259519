"""The fixed reference of a delivery's site_drift checks: other sites cannot move a verdict.

A drift check compares a site's median with a pooled median of other sites (`pool.py`).
Computed afresh on every refresh, that reference moved whenever other sites arrived or
changed, so an unchanged delivery could be held back one day and its patients leave the
marts (issue 10: 27 new sites moved the pooled CK median and held back an unchanged
site). So the reference is fixed the first time a delivery is gated and stored with it:

- it is the leave-one-out pooled median (median of site medians, on the log scale, sites
  with at least `min_values` values) over the **established** sites: the other sites'
  deliveries accepted in the last published warehouse (`quality.site_delivery` of
  `WAREHOUSE/ivig.duckdb`, read read-only) — sites whose data already passed the gate;
- only when fewer than `min_sites` established sites qualify (a new warehouse, e.g. the
  first refresh of the demo) is it the pool of every other site's newest landed delivery,
  as before;
- it is stored in `WAREHOUSE/gate/references/site=…/delivery=….json` with the delivery's
  content hash, and every later gating of the same content uses it: new deliveries cannot
  move it, a change of the suites re-validates against it, and it survives the delivery
  being landed again (a new landing version, a re-keying), which replaces the delivery's
  folder. A delivery whose content changed (a new delivery under the same id) gets a new
  one. A check whose pool options (`min_values`) changed gets a new one for that check.

The reference says what it stands on: its median, how many sites, which basis and when
and by which run it was fixed; the check's observed value repeats it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

import duckdb
import polars as pl

from ivig_platform.landing.contract import TABLES
from ivig_platform.landing.land import delivery_dir
from ivig_platform.quality.generate import drift_options
from ivig_platform.quality.pool import PoolStats, drift_checks, drift_key, pool_stats
from ivig_platform.quality.registry import Check
from ivig_platform.warehouse.lake import LakeError
from ivig_platform.warehouse.publish import published_path
from ivig_platform.warehouse.reader import open_if_published

REFERENCES_DIR = Path("gate") / "references"
ESTABLISHED = "established"
NEWEST_LANDED = "newest landed"
OTHER_SITES = "other sites"


@dataclass(frozen=True)
class DriftReference:
    """The pooled median one drift check of one delivery is judged against."""

    check: str  # drift_key: suite/column[condition]
    median: float | None
    n_sites: int
    min_values: int
    basis: str  # ESTABLISHED | NEWEST_LANDED | OTHER_SITES (a pool handed in directly)
    fixed_on: str  # ISO date
    run_id: str

    def describe(self) -> str:
        """``pooled median of 17 established site(s) 236.5 (fixed 2026-11-24, run …)``
        without the number, which the caller formats."""
        what = {
            ESTABLISHED: f"{self.n_sites} established site(s)",
            NEWEST_LANDED: f"{self.n_sites} other site(s)' newest deliveries",
        }.get(self.basis, f"{self.n_sites} other site(s)")
        return f"pooled median of {what}"

    @property
    def stamp(self) -> str:
        return f"fixed {self.fixed_on}, run {self.run_id}"


References = Mapping[str, DriftReference]  # drift_key -> reference


def _min_values(check: Check) -> int:
    return int(drift_options(check)["min_values"])


def _min_sites(check: Check) -> int:
    return int(drift_options(check)["min_sites"])


def reference_of(pool: PoolStats, check: Check, site_id: str, basis: str, fixed_on: str,
                 run_id: str) -> DriftReference:
    """The leave-one-out reference of ``site_id`` for ``check`` in ``pool``."""
    median, n_sites = pool.reference(drift_key(check), site_id, _min_values(check))
    return DriftReference(drift_key(check), median, n_sites, _min_values(check), basis,
                          fixed_on, run_id)


def references_from_pool(pool: PoolStats, site_id: str, fixed_on: str, run_id: str,
                         basis: str = OTHER_SITES) -> dict[str, DriftReference]:
    """Every drift check's reference of ``site_id`` from one pool (nothing stored)."""
    return {drift_key(c): reference_of(pool, c, site_id, basis, fixed_on, run_id)
            for c in drift_checks()}


@dataclass(frozen=True)
class DriftPools:
    """The pools a new reference is fixed from, in order: established, then newest landed."""

    established: PoolStats
    newest: PoolStats
    fixed_on: str
    run_id: str

    def fix(self, check: Check, site_id: str) -> DriftReference:
        established = reference_of(self.established, check, site_id, ESTABLISHED,
                                   self.fixed_on, self.run_id)
        if established.n_sites >= _min_sites(check):
            return established
        return reference_of(self.newest, check, site_id, NEWEST_LANDED, self.fixed_on,
                            self.run_id)


def reference_path(warehouse: Path, site_id: str, delivery_id: str) -> Path:
    return (Path(warehouse) / REFERENCES_DIR / f"site={quote(site_id, safe='')}"
            / f"delivery={quote(delivery_id, safe='')}.json")


def read_references(warehouse: Path, site_id: str, delivery_id: str, content_sha256: str
                    ) -> dict[str, DriftReference]:
    """The stored references of a delivery with this content ({} when none or another
    content's: those are replaced)."""
    path = reference_path(warehouse, site_id, delivery_id)
    try:
        record = json.loads(path.read_text())
        if record.get("content_sha256") != content_sha256:
            return {}
        return {key: DriftReference(**value) for key, value in record["references"].items()}
    except (OSError, ValueError, KeyError, TypeError):  # absent or unreadable: fix anew
        return {}


def write_references(warehouse: Path, site_id: str, delivery_id: str, content_sha256: str,
                     references: Mapping[str, DriftReference]) -> None:
    """Store a delivery's references (written whole, then renamed into place)."""
    path = reference_path(warehouse, site_id, delivery_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "site_id": site_id,
        "delivery_id": delivery_id,
        "content_sha256": content_sha256,
        "references": {k: asdict(v) for k, v in sorted(references.items())},
    }
    fd, tmp = tempfile.mkstemp(prefix=".reference.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fixed_references(warehouse: Path, site_id: str, delivery_id: str, content_sha256: str,
                     pools: DriftPools) -> dict[str, DriftReference]:
    """The delivery's references: the stored ones, and for the checks without one (first
    gating, or changed pool options) one fixed now from ``pools`` and stored."""
    stored = read_references(warehouse, site_id, delivery_id, content_sha256)
    references = {}
    for check in drift_checks():
        key = drift_key(check)
        kept = stored.get(key)
        if kept is not None and kept.min_values == _min_values(check):
            references[key] = kept
        else:
            references[key] = pools.fix(check, site_id)
    if references != stored:
        write_references(warehouse, site_id, delivery_id, content_sha256, references)
    return references


def accepted_deliveries(warehouse: Path) -> dict[str, str]:
    """site -> its accepted delivery in the published warehouse ({} when there is none).

    Read read-only: a refresh never writes the published file, it replaces it."""
    path = published_path(Path(warehouse))
    try:
        con = open_if_published(path)
    except (duckdb.Error, LakeError):  # unreadable: no established sites, the pool serves
        return {}
    if con is None:
        return {}
    try:
        rows = con.execute(
            "SELECT site_id, delivery_id FROM quality.site_delivery WHERE status = 'accepted'"
        ).fetchall()
    except duckdb.Error:
        return {}
    finally:
        con.close()
    return {str(site): str(delivery) for site, delivery in rows}


def established_pool(warehouse: Path,
                     read: Mapping[tuple[str, str], dict[str, pl.DataFrame]] | None = None
                     ) -> PoolStats:
    """The drift values of every site's delivery accepted in the last published warehouse.

    ``read``: landed tables already in memory, by (site, delivery); the others are read
    from landing (only the tables a drift check looks at). A delivery whose files are gone
    takes no part."""
    read = read or {}
    tables_needed = {c.suite.removeprefix("landed.") for c in drift_checks()} & set(TABLES)
    per_site: dict[str, dict[str, pl.DataFrame]] = {}
    for site, delivery in accepted_deliveries(warehouse).items():
        tables = read.get((site, delivery))
        if tables is None:
            folder = delivery_dir(Path(warehouse), site, delivery)
            tables = {t: pl.read_parquet(folder / f"{t}.parquet") for t in tables_needed
                      if (folder / f"{t}.parquet").exists()}
        if tables:
            per_site[site] = tables
    return pool_stats(per_site)
