"""Landing of one delivery: read, check, pseudonymise, write Parquet and a manifest.

The manifest is the delivery's record in the warehouse (status, reason, counts, content
hash). It is written last, after the Parquet files are in place, so a delivery whose
manifest exists is completely landed; a crash half-way leaves no manifest and the next
refresh lands the delivery again.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote

import polars as pl

from ivig_platform.landing.contract import TABLES
from ivig_platform.landing.pseudonym import key_fingerprint, pseudonym_expr
from ivig_platform.landing.readers import DeliveryRejected, RawTable, read_delivery, sha256_file
from ivig_platform.landing.rules import check_delivery
from ivig_platform.landing.schema import QUARANTINE, landed_schema

# Bump when landing's output for the same input changes, so old landings are redone.
LANDING_VERSION = "1"
MANIFEST = "_manifest.json"
SITE_ID = re.compile(r"^[a-z0-9_-]{2,32}$")


@dataclass
class Manifest:
    site_id: str
    delivery_id: str
    status: str  # landed | rejected
    reason: str | None
    content_sha256: str
    landing_version: str
    key_fingerprint: str
    delivery_date: str
    landed_at: str
    source_rows: int = 0
    rows_landed: int = 0
    rows_quarantined: int = 0
    tables: dict[str, dict[str, int]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    formats: dict[str, str] = field(default_factory=dict)
    dropped_columns: list[str] = field(default_factory=list)

    @property
    def rejection_code(self) -> str | None:
        return self.reason.split(":", 1)[0] if self.reason else None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Delivery:
    """A delivery folder found in the inbox."""

    site_id: str
    delivery_id: str
    path: Path

    @property
    def label(self) -> str:
        return f"{self.site_id}/{self.delivery_id}"


def delivery_dir(warehouse: Path, site_id: str, delivery_id: str) -> Path:
    """Hive-style partition folders; odd folder names are percent-encoded, never trusted."""
    return (
        warehouse / "landing" / f"site={quote(site_id, safe='')}"
        / f"delivery={quote(delivery_id, safe='')}"
    )


class DeliveryChanged(OSError):
    """The delivery's files changed while it was being landed: a transient condition."""


def content_hash(folder: Path) -> str:
    """A delivery's identity is its files' names and bytes, not its folder's timestamps.

    The `_READY` marker is a signal, not content: adding it does not make a new delivery.
    """
    digest = hashlib.sha256()
    files = (p for p in folder.rglob("*") if p.is_file() and p.name != "_READY")
    for path in sorted(files):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(b"\0")
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def delivery_date(delivery_id: str, today: date) -> date:
    """The delivery's date bounds every date in it: its ISO `delivery_id`, else today (§5)."""
    try:
        return date.fromisoformat(delivery_id) if len(delivery_id) == 10 else today
    except ValueError:
        return today


def landed_manifests(warehouse: Path) -> list[Manifest]:
    """Every delivery landing has recorded: the warehouse, not the inbox, is the record.

    Hospitals' inbox folders get archived or cleaned; a site's accepted delivery must stay
    in force after its folder is gone.
    """
    return [
        Manifest.from_json(path.read_text())
        for path in sorted((warehouse / "landing").glob(f"site=*/delivery=*/{MANIFEST}"))
    ]


def read_manifest(folder: Path) -> Manifest | None:
    path = folder / MANIFEST
    return Manifest.from_json(path.read_text()) if path.exists() else None


def is_current(manifest: Manifest | None, content: str, fingerprint: str) -> bool:
    return (
        manifest is not None
        and manifest.content_sha256 == content
        and manifest.landing_version == LANDING_VERSION
        and manifest.key_fingerprint == fingerprint
    )


def _landed(frame: pl.DataFrame, raw: RawTable, delivery: Delivery, loaded_at: datetime,
            patient_key: pl.Expr) -> pl.DataFrame:
    """The landed table in its schema: pseudonym, typed columns and provenance, in one pass."""
    derived = {
        "patient_key": patient_key,
        "site_id": pl.lit(delivery.site_id),
        "delivery_id": pl.lit(delivery.delivery_id),
        "source_file": pl.lit(raw.source_file),
        "source_row": pl.col("_source_row").cast(pl.Int32),
        "file_sha256": pl.lit(raw.file_sha256),
        "loaded_at": pl.lit(loaded_at).cast(pl.Datetime("us", "UTC")),
    }
    return frame.select(
        derived.get(name, pl.col(name)).cast(dtype).alias(name)
        for name, dtype in landed_schema(raw.name).items()
    )


def _quarantine(checked: pl.DataFrame, raw: RawTable, delivery: Delivery) -> pl.DataFrame:
    rows = checked.lazy().cast({"source_row": pl.Int32})
    if raw.malformed_rows:
        malformed = pl.LazyFrame(
            {
                "source_row": raw.malformed_rows,
                "column_name": [None] * len(raw.malformed_rows),
                "rule": ["malformed_row"] * len(raw.malformed_rows),
                "value": [None] * len(raw.malformed_rows),
                "detail": ["wrong number of fields for the header"] * len(raw.malformed_rows),
            },
            schema={"source_row": pl.Int32, "column_name": pl.Utf8, "rule": pl.Utf8,
                    "value": pl.Utf8, "detail": pl.Utf8},
        )
        rows = pl.concat([rows, malformed])
    return rows.with_columns(
        pl.lit(delivery.site_id).alias("site_id"),
        pl.lit(delivery.delivery_id).alias("delivery_id"),
        pl.lit(raw.name).alias("table_name"),
        pl.lit(raw.source_file).alias("source_file"),
    ).select(list(QUARANTINE)).sort("source_row").collect()


def land_delivery(delivery: Delivery, warehouse: Path, key: bytes,
                  now: datetime | None = None) -> Manifest:
    """Land one delivery (or find it already landed) and return its manifest.

    Never raises for bad input: a delivery that cannot be used comes back with status
    `rejected` and a reason; the caller carries on with the other sites.
    """
    now = now or datetime.now(UTC)
    target = delivery_dir(warehouse, delivery.site_id, delivery.delivery_id)
    content = content_hash(delivery.path)
    fingerprint = key_fingerprint(key)
    existing = read_manifest(target)
    if is_current(existing, content, fingerprint):
        return existing
    manifest = Manifest(
        site_id=delivery.site_id,
        delivery_id=delivery.delivery_id,
        status="landed",
        reason=None,
        content_sha256=content,
        landing_version=LANDING_VERSION,
        key_fingerprint=fingerprint,
        delivery_date=delivery_date(delivery.delivery_id, now.date()).isoformat(),
        landed_at=now.isoformat(),
    )
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        _land_into(delivery, staging, key, now, manifest)
    except DeliveryRejected as rejected:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        manifest.status = "rejected"
        manifest.reason = str(rejected)
        manifest.rows_landed = manifest.rows_quarantined = 0
        manifest.tables = {}
    if content_hash(delivery.path) != content:
        shutil.rmtree(staging, ignore_errors=True)
        raise DeliveryChanged(f"{delivery.label} changed while it was being landed")
    (staging / MANIFEST).write_text(manifest.to_json())
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return manifest


def _land_into(delivery: Delivery, folder: Path, key: bytes, now: datetime,
               manifest: Manifest) -> None:
    if not SITE_ID.match(delivery.site_id):
        raise DeliveryRejected(
            "invalid_site_id",
            f"site folder {delivery.site_id!r} is not 2-32 characters of a-z 0-9 - _",
        )
    raw_tables = read_delivery(delivery.path)
    manifest.source_rows = sum(t.source_rows for t in raw_tables.values())
    manifest.files = {t.source_file: t.file_sha256 for t in raw_tables.values()}
    manifest.formats = {t.name: t.dialect for t in raw_tables.values()}
    manifest.dropped_columns = sorted({c for t in raw_tables.values() for c in t.dropped_columns})
    checked = check_delivery(raw_tables, date.fromisoformat(manifest.delivery_date))
    if checked["patients"].landed.is_empty():
        raise DeliveryRejected(
            "no_valid_patient", "not a single patient row passed the rules of protocol §3/§5"
        )
    # Every landed row's patient is a landed patient; the union keeps this robust anyway.
    ids = pl.concat([checked[name].landed.get_column("patient_id") for name in TABLES])
    patient_key = pseudonym_expr(ids, key, delivery.site_id)
    quarantined: list[pl.DataFrame] = []
    for name in TABLES:
        raw, result = raw_tables[name], checked[name]
        landed = _landed(result.landed, raw, delivery, now, patient_key)
        landed.write_parquet(folder / f"{name}.parquet")
        bad = _quarantine(result.quarantined, raw, delivery)
        quarantined.append(bad)
        manifest.tables[name] = {
            "source_rows": raw.source_rows,
            "landed": landed.height,
            "quarantined": bad.height,
        }
    pl.concat(quarantined).write_parquet(folder / "quarantine.parquet")
    manifest.rows_landed = sum(t["landed"] for t in manifest.tables.values())
    manifest.rows_quarantined = sum(t["quarantined"] for t in manifest.tables.values())
