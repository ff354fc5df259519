"""Finding the deliveries in an inbox (protocol §2: `<inbox>/<site_id>/<delivery_id>/`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ivig_platform.landing.land import READY_MARKER, Delivery

__all__ = ["READY_MARKER", "Discovery", "discover_deliveries", "discover_settled"]


@dataclass(frozen=True)
class Discovery:
    ready: list[Delivery]
    waiting: list[Delivery]  # still being written: taken by a later refresh


def discover_deliveries(inbox: Path) -> list[Delivery]:
    """Every delivery folder, ordered by site then delivery id (the protocol's order).

    Hidden folders (`.something`) are tools' scratch space, not deliveries. Site folders
    with odd names are still returned: landing rejects them with a reason, so the hospital
    hears about it instead of its data vanishing.
    """
    if not inbox.is_dir():
        raise FileNotFoundError(f"inbox folder {inbox} does not exist")
    found = [
        Delivery(site.name, delivery.name, delivery)
        for site in inbox.iterdir()
        if site.is_dir() and not site.name.startswith(".")
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
    deliveries = discover_deliveries(inbox)
    ready = [d for d in deliveries if is_settled(d.path, settle_seconds)]
    waiting = [d for d in deliveries if d not in ready]
    return Discovery(ready=ready, waiting=waiting)
