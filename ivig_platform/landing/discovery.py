"""Finding the deliveries in an inbox (protocol §2: `<inbox>/<site_id>/<delivery_id>/`)."""

from __future__ import annotations

from pathlib import Path

from ivig_platform.landing.land import Delivery


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
