"""Landing of one delivery: read, check, pseudonymise, write Parquet and a manifest.

The manifest is the delivery's record in the warehouse (manifest.py: status, reason,
counts, content hash, and the size and SHA-256 of every file it names). Each call lands
into a staging folder of its own and writes the manifest last, after every file was
written, read back and verified; the finished folder is then swapped into place
(staging.py). A crash half-way leaves only a staging folder, which nothing reads and
`remove_stale_partials` removes. A landing in place is reused only when it is current and
its files match its manifest; otherwise it is landed again.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from ivig_platform.fingerprints import LANDING
from ivig_platform.landing.cells import cells_file, cells_frame
from ivig_platform.landing.contract import TABLES, LandingContract, landing_contract
from ivig_platform.landing.integrity import FileRecord, write_verified
from ivig_platform.landing.links import unsafe_folder, unsafe_link
from ivig_platform.landing.manifest import (
    LANDED_FILES,
    MANIFEST,
    QUARANTINE_FILE,
    Manifest,
    delivery_date,
    delivery_dir,
    landed_manifests,
    landing_problems,
    read_manifest,
    remove_stale_partials,
)
from ivig_platform.landing.pseudonym import key_fingerprint, pseudonym_expr
from ivig_platform.landing.readers import (
    SOURCE_ROW,
    DeliveryRejected,
    RawTable,
    read_delivery,
    sha256_file,
)
from ivig_platform.landing.rules import check_delivery
from ivig_platform.landing.schema import QUARANTINE, landed_schema
from ivig_platform.landing.staging import new_staging, swap_into_place

if TYPE_CHECKING:
    from ivig_platform.protocol.load import Protocol

# What the rest of the platform imports from here (the record lives in manifest.py).
__all__ = [
    "LANDED_FILES", "MANIFEST", "Delivery", "DeliveryChanged", "Manifest", "content_hash",
    "delivery_date", "delivery_dir", "is_current", "land_delivery", "landed_manifests",
    "landing_fingerprint", "read_manifest", "remove_stale_partials",
]

#: The repository protocol's site_id rule (landing checks the contract in force's).
SITE_ID = re.compile(landing_contract().site_id_pattern)
#: The file a site writes last to say a delivery is complete (protocol delivery.yaml).
READY_MARKER = landing_contract().ready_marker


@dataclass(frozen=True)
class Delivery:
    """A delivery folder found in the inbox."""

    site_id: str
    delivery_id: str
    path: Path

    @property
    def label(self) -> str:
        return f"{self.site_id}/{self.delivery_id}"


class DeliveryChanged(OSError):
    """The delivery's files changed while it was being landed: a transient condition."""


def content_hash(folder: Path) -> str:
    """A delivery's identity is its files' names and bytes, not its folder's timestamps.

    The ready marker (`_READY`) is a signal, not content: adding it does not make a new delivery.
    A symbolic link counts by where it points, never by what it points at: hashing must
    not open a file that landing may refuse to read (links.py). `rglob` does not descend
    into linked folders.
    """
    digest = hashlib.sha256()
    entries = (p for p in folder.rglob("*")
               if (p.is_symlink() or p.is_file()) and p.name != READY_MARKER)
    for path in sorted(entries):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(b"\0")
        if path.is_symlink():
            digest.update(b"link\0" + os.fsencode(os.readlink(path)))
        else:
            digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def _identity(delivery: Delivery) -> tuple[str, str | None]:
    """The delivery's content hash, and why its folder must not be read (None: it may).

    A delivery folder reached through a link out of place is refused unread: its identity
    is where the link leads, so a changed link is a new delivery and an unchanged one is
    not refused again on every refresh.
    """
    refused = unsafe_folder(delivery.path, delivery.path.parent.parent)
    if refused is None:
        return content_hash(delivery.path), None
    where = os.fsencode(str(delivery.path.resolve()))
    return hashlib.sha256(b"refused folder\0" + where).hexdigest(), refused


def landing_fingerprint(protocol: Protocol | None = None) -> str:
    """What landing's output depends on besides the delivery and the key: landing's code
    (and the package modules it imports), polars, fastexcel and pyarrow, and the effective
    contract of `protocol` (default: the protocol in force). Derived, never bumped by hand
    (it replaces the hand-kept `LANDING_VERSION`; see ivig_platform/fingerprints.py)."""
    return LANDING.fingerprint(protocol)


def is_current(manifest: Manifest | None, content: str, fingerprint: str,
               landing: str | None = None, contract_fingerprint: str | None = None) -> bool:
    """The landing in place was made from this content, with this key (`fingerprint`) and
    by this landing (`landing`: `landing_fingerprint()`, the default): it may be reused.
    The landing fingerprint covers the contract in force, so a changed contract (an
    amendment's new spelling, range or measure) lands the delivery again; `contract_fingerprint`
    (when given) also requires the contract recorded in the manifest to be that one."""
    return (
        manifest is not None
        and manifest.content_sha256 == content
        and manifest.landing_version == (landing or landing_fingerprint())
        and manifest.key_fingerprint == fingerprint
        and manifest.landed_files is not None
        and (contract_fingerprint is None
             or manifest.contract_fingerprint == contract_fingerprint)
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
                  now: datetime | None = None, *, protocol: Protocol | None = None,
                  contract: LandingContract | None = None) -> Manifest:
    """Land one delivery (or find it already landed) and return its manifest.

    Never raises for bad input: a delivery that cannot be used comes back with status
    `rejected` and a reason; the caller carries on with the other sites. A landing in
    place is reused only when it is current (same content, key and landing fingerprint:
    code, libraries and the contract of `protocol`, default the protocol in force) and its
    files match its manifest; anything else is landed again. The staging folder is removed
    whatever happens. `contract`: the contract in force
    (default: that of `protocol`).
    """
    now = now or datetime.now(UTC)
    contract = contract or landing_contract(protocol)
    target = delivery_dir(warehouse, delivery.site_id, delivery.delivery_id)
    content, refused = _identity(delivery)
    fingerprint = key_fingerprint(key)
    landing = landing_fingerprint(protocol)
    existing = read_manifest(target)
    if (is_current(existing, content, fingerprint, landing, contract.fingerprint)
            and not landing_problems(existing, target)):
        return existing
    manifest = Manifest(
        site_id=delivery.site_id,
        delivery_id=delivery.delivery_id,
        status="landed",
        reason=None,
        content_sha256=content,
        landing_version=landing,
        key_fingerprint=fingerprint,
        delivery_date=delivery_date(delivery.delivery_id, now.date()).isoformat(),
        landed_at=now.isoformat(),
        landed_by=LANDING.parts(protocol),
        contract_fingerprint=contract.fingerprint,
    )
    staging = new_staging(target)
    try:
        try:
            if refused is not None:
                raise DeliveryRejected("unsafe_file", refused)
            manifest.landed_files = _land_into(delivery, staging, key, now, manifest,
                                               contract)
        except DeliveryRejected as rejected:
            shutil.rmtree(staging)
            staging.mkdir()
            manifest.status = "rejected"
            manifest.reason = str(rejected)
            manifest.rows_landed = manifest.rows_quarantined = 0
            manifest.tables = {}
            manifest.landed_files = {}
        if _identity(delivery)[0] != content:
            raise DeliveryChanged(f"{delivery.label} changed while it was being landed")
        # Last: the manifest exists only once every file it lists was verified.
        (staging / MANIFEST).write_text(manifest.to_json())
        swap_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _land_into(delivery: Delivery, folder: Path, key: bytes, now: datetime,
               manifest: Manifest, contract: LandingContract) -> dict[str, FileRecord]:
    """Write the delivery's Parquet files into `folder`; return their verified records."""
    if not re.match(contract.site_id_pattern, delivery.site_id):
        raise DeliveryRejected(
            "invalid_site_id",
            f"site folder {delivery.site_id!r} is not {contract.site_id_description}",
        )
    link = unsafe_link(delivery.path, delivery.path.parent.parent)
    if link is not None:
        raise DeliveryRejected("unsafe_file", link)
    raw_tables = read_delivery(delivery.path, contract)
    manifest.source_rows = sum(t.source_rows for t in raw_tables.values())
    manifest.files = {t.source_file: t.file_sha256 for t in raw_tables.values()}
    manifest.formats = {t.name: t.dialect for t in raw_tables.values()}
    manifest.dropped_columns = sorted({c for t in raw_tables.values() for c in t.dropped_columns})
    checked = check_delivery(raw_tables, date.fromisoformat(manifest.delivery_date), contract)
    if checked["patients"].landed.is_empty():
        raise DeliveryRejected(
            "no_valid_patient", "not a single patient row passed the rules of protocol §3/§5"
        )
    # Every landed row's patient is a landed patient; the union keeps this robust anyway.
    ids = pl.concat([checked[name].landed.get_column("patient_id") for name in TABLES])
    patient_key = pseudonym_expr(ids, key, delivery.site_id)
    quarantined: list[pl.DataFrame] = []
    files: dict[str, FileRecord] = {}
    for name in TABLES:
        raw, result = raw_tables[name], checked[name]
        landed = _landed(result.landed, raw, delivery, now, patient_key)
        files[f"{name}.parquet"] = write_verified(landed, folder / f"{name}.parquet")
        cells = cells_frame(raw, result.landed.get_column(SOURCE_ROW), delivery.site_id,
                            delivery.delivery_id)
        files[cells_file(name)] = write_verified(cells, folder / cells_file(name))
        bad = _quarantine(result.quarantined, raw, delivery)
        quarantined.append(bad)
        manifest.tables[name] = {
            "source_rows": raw.source_rows,
            "landed": landed.height,
            "quarantined": bad.height,
        }
    files[QUARANTINE_FILE] = write_verified(pl.concat(quarantined), folder / QUARANTINE_FILE)
    manifest.rows_landed = sum(t["landed"] for t in manifest.tables.values())
    manifest.rows_quarantined = sum(t["quarantined"] for t in manifest.tables.values())
    return files
