"""What a refresh checks before it does any work, and refuses with one clear line.

Run by the CLI before Prefect starts (a refusal costs milliseconds) and again by the flow
under the run lock (a flow run from a deployment has no CLI in front of it). Each refusal
leaves the warehouse exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ivig_platform.landing.discovery import Discovery, discover_settled
from ivig_platform.landing.land import Manifest, landed_manifests
from ivig_platform.warehouse.keys import (
    KeyChanged,
    RekeyPlan,
    RekeyRefused,
    plan_rekey,
    refuse_changed_key,
    refuse_incomplete_rekey,
)
from ivig_platform.warehouse.live import published_accepted
from ivig_platform.warehouse.outcome import RefreshFailed


@dataclass(frozen=True)
class Preflight:
    found: Discovery
    landed: list[Manifest]
    rekey: RekeyPlan


def refuse(line: str) -> RefreshFailed:
    return RefreshFailed(line, stage="start", published=False)


def nothing_to_publish(found: Discovery, landed: list[Manifest], inbox: Path,
                       warehouse: Path) -> str | None:
    """An inbox with nothing to take into a warehouse with nothing landed publishes nothing.

    (Publishing an empty warehouse would replace nothing with nothing and exit 0, as if
    the night's run had worked.)
    """
    if found.ready or landed:
        return None
    if found.waiting:
        return (f"inbox {inbox} holds no settled deliveries ({len(found.waiting)} still being "
                f"written) and {warehouse} has none landed: nothing to publish")
    unusable = (f" ({len(found.issues)} folder(s) that are not site ids: "
                f"{', '.join(repr(i.folder) for i in found.issues)})" if found.issues else "")
    return (f"inbox {inbox} holds no deliveries{unusable} and {warehouse} has none landed: "
            "nothing to publish")


def preflight(inbox: Path, warehouse: Path, fingerprint: str, settle_seconds: float,
              rekey: bool) -> Preflight:
    """Discover the inbox and check key and content; raise `RefreshFailed` to refuse."""
    found = discover_settled(inbox, settle_seconds)
    landed = landed_manifests(warehouse)
    empty = nothing_to_publish(found, landed, inbox, warehouse)
    if empty:
        raise refuse(empty)
    plan = RekeyPlan()
    try:
        if rekey:
            ready = {(d.site_id, d.delivery_id) for d in found.ready}
            plan = plan_rekey(landed, fingerprint, ready, published_accepted(warehouse))
            refuse_incomplete_rekey(plan, inbox, warehouse)
        else:
            refuse_changed_key(landed, fingerprint, warehouse)
    except (KeyChanged, RekeyRefused) as exc:
        raise refuse(str(exc)) from exc
    return Preflight(found, landed, plan)
