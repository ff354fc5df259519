"""One pseudonymisation key per published warehouse (protocol §6; issue 10, point 2).

Each landed delivery's manifest records the fingerprint of the key its pseudonyms were
made with. A refresh with another key would re-land only the deliveries still in the
inbox and keep the old pseudonyms of those already archived: one file, two keys, and the
same patient under two keys cannot be followed. So a different key is refused before any
work, and re-keying (`ivig refresh --rekey`, flow parameter `rekey`) is all or nothing:

* every landed delivery whose inbox folder is there (settled) is landed again with the
  new key;
* a landed delivery whose inbox folder is gone and that is in force — the site's
  accepted delivery in the published file, or newer than it (held back now, it may be
  accepted later), or of a site not published yet — cannot be re-pseudonymised: the
  re-keying is refused, nothing changes, and the message lists them;
* a landed delivery whose inbox folder is gone and that is older than the site's
  accepted delivery is superseded (a delivery is a complete snapshot, §2): it is moved
  out of the landing to `WAREHOUSE/retired/key-<old fingerprint>/` (kept, not deleted;
  usable only with the old key) and the run summary lists it. The site then has no
  fallback older than its accepted delivery until it delivers again.

Rejected deliveries carry no pseudonyms and are ignored here.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ivig_platform.landing.land import Manifest, delivery_dir
from ivig_platform.landing.pseudonym import KEY_VARIABLE

RETIRED_DIR = "retired"


class KeyChanged(RuntimeError):
    """The key differs from the one the landed deliveries were pseudonymised with."""


class RekeyRefused(RuntimeError):
    """Re-keying would leave some delivery in force under the old key."""


def _label(m: Manifest) -> str:
    return f"{m.site_id}/{m.delivery_id}"


def other_key(manifests: list[Manifest], fingerprint: str) -> list[Manifest]:
    """Landed deliveries whose pseudonyms were made with another key."""
    return [m for m in manifests if m.status == "landed" and m.key_fingerprint != fingerprint]


def refuse_changed_key(manifests: list[Manifest], fingerprint: str, warehouse: Path) -> None:
    """Raise `KeyChanged` when any landed delivery was pseudonymised with another key."""
    stale = other_key(manifests, fingerprint)
    if not stale:
        return
    old = sorted({m.key_fingerprint for m in stale})
    raise KeyChanged(
        f"{KEY_VARIABLE} (fingerprint {fingerprint}) is not the key {len(stale)} landed "
        f"deliver{'y' if len(stale) == 1 else 'ies'} of {warehouse} were pseudonymised with "
        f"(fingerprint {', '.join(old)}); nothing was changed. Use the study's key, or, if "
        "the study's key has really changed, run `ivig refresh --rekey` (flow parameter "
        "rekey) to land every delivery again from its inbox files with the new key"
    )


@dataclass
class RekeyPlan:
    """What re-keying does with each landed delivery of another key."""

    reland: list[str] = field(default_factory=list)
    retire: list[Manifest] = field(default_factory=list)
    missing: list[tuple[Manifest, str]] = field(default_factory=list)  # (delivery, why)

    @property
    def retired_labels(self) -> list[str]:
        return [_label(m) for m in self.retire]


def plan_rekey(manifests: list[Manifest], fingerprint: str, in_inbox: set[tuple[str, str]],
               accepted: dict[str, str]) -> RekeyPlan:
    """Sort the other-key deliveries into re-landed, retired and missing (see the module).

    `in_inbox`: (site, delivery) of the settled delivery folders of this run; `accepted`:
    site → its accepted delivery in the published file.
    """
    plan = RekeyPlan()
    for m in sorted(other_key(manifests, fingerprint), key=lambda m: (m.site_id, m.delivery_id)):
        if (m.site_id, m.delivery_id) in in_inbox:
            plan.reland.append(_label(m))
            continue
        in_force = accepted.get(m.site_id)
        if in_force is None:
            plan.missing.append((m, "landed, not in the published file yet"))
        elif m.delivery_id == in_force:
            plan.missing.append((m, "accepted"))
        elif m.delivery_id > in_force:
            plan.missing.append((m, "held back, may be accepted later"))
        else:
            plan.retire.append(m)
    return plan


def refuse_incomplete_rekey(plan: RekeyPlan, inbox: Path, warehouse: Path) -> None:
    if not plan.missing:
        return
    listed = "; ".join(f"{_label(m)} ({why})" for m, why in plan.missing)
    n = len(plan.missing)
    raise RekeyRefused(
        f"re-keying refused, nothing was changed: {n} deliver{'y' if n == 1 else 'ies'} in "
        f"force in {warehouse} {'has' if n == 1 else 'have'} no files in {inbox} to land "
        f"again with the new key: {listed}. Put each folder back as "
        f"{inbox}/<site>/<delivery>/ and run the re-keying again"
    )


def retire(warehouse: Path, deliveries: list[Manifest]) -> list[Path]:
    """Move superseded other-key deliveries out of the landing (kept under `retired/`)."""
    moved = []
    for m in deliveries:
        source = delivery_dir(warehouse, m.site_id, m.delivery_id)
        landing = warehouse / "landing"
        target = warehouse / RETIRED_DIR / f"key-{m.key_fingerprint}" / source.relative_to(
            landing)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        source.rename(target)
        moved.append(target)
    return moved
