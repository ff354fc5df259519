"""The record of what is landed: each delivery's manifest, and whether its files match it.

The warehouse, not the inbox, is the record (inbox folders get archived). A manifest
lists every file beside it with its size and SHA-256; a landing whose files do not match
is returned as rejected (`damaged_landing`) and never used as is. Staging and set-aside
folders (staging.py) are never read, and `remove_stale_partials` clears what killed
landings left.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from ivig_platform.landing.contract import TABLES
from ivig_platform.landing.integrity import FileRecord, file_problems, legacy_problems
from ivig_platform.landing.staging import REPLACED, temporary_target

MANIFEST = "_manifest.json"
QUARANTINE_FILE = "quarantine.parquet"
# The files every landed delivery has; a rejected one has only its manifest.
LANDED_FILES = [f"{name}.parquet" for name in TABLES] + [QUARANTINE_FILE]


@dataclass
class Manifest:
    site_id: str
    delivery_id: str
    status: str  # landed | rejected
    reason: str | None
    content_sha256: str
    # The landing fingerprint (code, libraries, contract: fingerprints.LANDING) of the
    # landing that wrote it; "1"/"2" in manifests of the hand-bumped versions before it.
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
    # file name -> {"bytes", "sha256"} of every file beside the manifest; None in manifests
    # written before landing version 2, which did not record them.
    landed_files: dict[str, FileRecord] | None = None
    # What the landing fingerprint was made of ({"code", "libraries", "protocol"}), so a
    # re-landing can be explained; None in manifests written before it was recorded.
    landed_by: dict[str, Any] | None = None
    # The fingerprint of the contract it was landed under (protocol contract and
    # pseudonymisation); empty in manifests written before the contract was recorded.
    contract_fingerprint: str = ""

    @property
    def rejection_code(self) -> str | None:
        return self.reason.split(":", 1)[0] if self.reason else None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        return cls(**json.loads(text))


def delivery_dir(warehouse: Path, site_id: str, delivery_id: str) -> Path:
    """Hive-style partition folders; odd folder names are percent-encoded, never trusted."""
    return (
        warehouse / "landing" / f"site={quote(site_id, safe='')}"
        / f"delivery={quote(delivery_id, safe='')}"
    )


def landed_manifests(warehouse: Path) -> list[Manifest]:
    """Every delivery landing has recorded: the warehouse, not the inbox, is the record.

    Hospitals' inbox folders get archived or cleaned; a site's accepted delivery must stay
    in force after its folder is gone. A landing whose files do not match its manifest
    comes back as rejected (`damaged_landing`), so it is never gated or built as is, and
    the site's previous delivery stays in force. Staging and set-aside folders are never
    read: only a manifest in its own delivery's folder counts.
    """
    manifests: list[Manifest] = []
    for folder in sorted((warehouse / "landing").glob("site=*/delivery=*")):
        if not folder.is_dir():
            continue
        manifest = read_manifest(folder)
        if manifest is not None and _is_own_folder(warehouse, manifest, folder):
            manifests.append(checked_manifest(manifest, folder))
        elif manifest is None and temporary_target(folder) is None:
            manifests.append(_without_manifest(folder))
    return manifests


def _without_manifest(folder: Path) -> Manifest:
    """A delivery folder whose manifest is gone or unreadable: a landing only ever moves
    into place complete, so this is damage, and it is said rather than left out (a
    delivery missing from the record would vanish from `quality.site_delivery`)."""
    site_id = unquote(folder.parent.name.removeprefix("site="))
    delivery_id = unquote(folder.name.removeprefix("delivery="))
    when = datetime.fromtimestamp(folder.stat().st_mtime, UTC)
    reason = (f"damaged_landing: {MANIFEST} missing or unreadable; the inbox folder is "
              "needed to land it again")
    return Manifest(
        site_id=site_id, delivery_id=delivery_id, status="rejected", reason=reason,
        content_sha256="", landing_version="", key_fingerprint="",
        delivery_date=delivery_date(delivery_id, when.date()).isoformat(),
        landed_at=when.isoformat(), landed_files={},
    )


def delivery_date(delivery_id: str, today: date) -> date:
    """The delivery's date bounds every date in it: its ISO `delivery_id`, else today (§5)."""
    try:
        return date.fromisoformat(delivery_id) if len(delivery_id) == 10 else today
    except ValueError:
        return today


def _is_own_folder(warehouse: Path, manifest: Manifest, folder: Path) -> bool:
    """A manifest counts only in its own delivery's folder: the one in a staging or
    set-aside copy names the delivery it is a copy of. Names are not trusted: a delivery
    id may end in `.partial` like a staging folder."""
    return delivery_dir(warehouse, manifest.site_id, manifest.delivery_id) == folder


def landing_problems(manifest: Manifest, folder: Path) -> list[str]:
    """What is wrong with the files of a landing, compared with its manifest."""
    if manifest.landed_files is None:
        if manifest.status != "landed":
            return []
        counts = {f"{name}.parquet": c["landed"] for name, c in manifest.tables.items()}
        counts[QUARANTINE_FILE] = manifest.rows_quarantined
        return legacy_problems(folder, {name: counts.get(name, -1) for name in LANDED_FILES})
    expected = LANDED_FILES if manifest.status == "landed" else []
    return file_problems(folder, manifest.landed_files, expected)


def checked_manifest(manifest: Manifest, folder: Path) -> Manifest:
    """The manifest as the record of its delivery: rejected when its files do not match.

    A manifest older than `landed_files` (landing version 1) whose delivery was not landed
    again — its inbox folder is gone — is checked as far as it can be: every file present
    and each Parquet file's row count as the manifest says. If that holds it stays in
    force, since rejecting it would drop the site's data for want of a hash that the old
    version never wrote; if not, the reason says that the bytes could not be verified.
    """
    problems = landing_problems(manifest, folder)
    if not problems:
        return manifest
    legacy = manifest.landed_files is None
    reason = "damaged_landing: " + "; ".join(problems) + (
        " (landed by an earlier version that recorded no file hashes, so only the files' "
        "presence and row counts could be checked)" if legacy else ""
    ) + "; the inbox folder is needed to land it again"
    return replace(manifest, status="rejected", reason=reason, rows_landed=0,
                   rows_quarantined=0, tables={})


def read_manifest(folder: Path) -> Manifest | None:
    """The manifest in `folder`; None when there is none or it cannot be read."""
    path = folder / MANIFEST
    try:
        return Manifest.from_json(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):  # cut short or edited by hand: not a record
        return None


def remove_stale_partials(warehouse: Path) -> list[Path]:
    """Remove the staging and set-aside folders of landings that never finished.

    Call it only while no landing into `warehouse` runs (the refresh holds its run lock):
    a staging folder of a running landing looks the same as a dead one. A set-aside
    folder whose delivery has no landing in place — the process died between the two
    renames of a swap — is put back instead, when its files match its manifest, so a
    site whose inbox folder is gone keeps its data. Returns the folders removed.
    """
    removed: list[Path] = []
    for folder in sorted((warehouse / "landing").glob("site=*/*")):
        temporary = temporary_target(folder)
        if temporary is None or not folder.is_dir():
            continue
        manifest = read_manifest(folder)
        if manifest is not None and _is_own_folder(warehouse, manifest, folder):
            continue  # a delivery whose id only looks like a staging folder's name
        kind, target_name = temporary
        target = folder.with_name(target_name)
        if kind == REPLACED and not target.exists() and _restorable(warehouse, folder, target):
            folder.rename(target)
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _restorable(warehouse: Path, folder: Path, target: Path) -> bool:
    manifest = read_manifest(folder)
    return (
        manifest is not None
        and _is_own_folder(warehouse, manifest, target)
        and not landing_problems(manifest, folder)
    )
