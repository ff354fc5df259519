"""Finding the deliveries in an inbox (protocol §2: `<inbox>/<site_id>/<delivery_id>/`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ivig_platform.landing.contract import landing_contract
from ivig_platform.landing.land import READY_MARKER, SITE_ID, Delivery

__all__ = ["READY_MARKER", "Discovery", "InboxIssue", "discover_deliveries",
           "discover_settled"]

#: The site_id rule of the repository protocol's contract, in its own words.
UNUSABLE_SITE_FOLDER = (f"not a site id: {landing_contract().site_id_description} "
                        "(nothing in it was read)")


@dataclass(frozen=True)
class InboxIssue:
    """A folder of the inbox that cannot be a site; listed, never read (`quality.inbox_issue`)."""

    folder: str
    reason: str


@dataclass(frozen=True)
class Discovery:
    ready: list[Delivery]
    waiting: list[Delivery]  # still being written: taken by a later refresh
    issues: list[InboxIssue] = field(default_factory=list)


def site_folders(inbox: Path) -> tuple[list[Path], list[InboxIssue]]:
    """The inbox's site folders, and the folders whose name cannot be a site id.

    One treatment for every unusable name — `bad name`, `HU-X`, `..evil`, `.cache`: the
    folder is not read and is listed (run summary, `ivig status`, `quality.inbox_issue`),
    so a hospital that named its folder wrongly hears about it and nothing of it lands
    under a name no analyst would look for. Files at the top of the inbox are not
    folders of anyone and are left alone.
    """
    if not inbox.is_dir():
        raise FileNotFoundError(f"inbox folder {inbox} does not exist")
    sites, issues = [], []
    for entry in sorted(inbox.iterdir()):
        if not entry.is_dir():
            continue
        if SITE_ID.match(entry.name):
            sites.append(entry)
        else:
            issues.append(InboxIssue(entry.name, UNUSABLE_SITE_FOLDER))
    return sites, issues


def discover_deliveries(inbox: Path) -> list[Delivery]:
    """Every delivery folder of a usable site folder, ordered by site then delivery id.

    Hidden delivery folders (`.something`) are upload tools' scratch space, not
    deliveries.
    """
    return _deliveries(site_folders(inbox)[0])


def _deliveries(sites: list[Path]) -> list[Delivery]:
    found = [
        Delivery(site.name, delivery.name, delivery)
        for site in sites
        for delivery in site.iterdir()
        if delivery.is_dir() and not delivery.name.startswith(".")
    ]
    return sorted(found, key=lambda d: (d.site_id, d.delivery_id))


def is_settled(folder: Path, settle_seconds: float, now: float | None = None) -> bool:
    """A delivery is complete when it carries `_READY` or nothing in it changed lately.

    Hospitals copy files one by one (SFTP, shared drives); landing a folder half-way
    through a copy would reject a good delivery. A sender that writes `_READY` last needs
    no waiting; otherwise the folder must have been still for `settle_seconds`.
    """
    if settle_seconds <= 0 or (folder / READY_MARKER).exists():
        return True
    now = time.time() if now is None else now
    newest = max((p.stat().st_mtime for p in folder.rglob("*")), default=folder.stat().st_mtime)
    return now - max(newest, folder.stat().st_mtime) >= settle_seconds


def discover_settled(inbox: Path, settle_seconds: float) -> Discovery:
    sites, issues = site_folders(inbox)
    deliveries = _deliveries(sites)
    ready = [d for d in deliveries if is_settled(d.path, settle_seconds)]
    waiting = [d for d in deliveries if d not in ready]
    return Discovery(ready=ready, waiting=waiting, issues=issues)
