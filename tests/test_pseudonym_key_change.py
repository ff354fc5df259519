"""A changed pseudonymisation key is refused; re-keying never mixes two keys (issue 10, 2).

The rules are pinned as a table on plain manifests; the whole story — key A, an archived
inbox folder, key B refused, `--rekey` refused naming the delivery, folder back,
`--rekey` publishing key B's pseudonyms only — runs as real `ivig refresh` processes in
test_refresh_runs.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ivig_platform.landing.land import Manifest
from ivig_platform.warehouse.keys import (
    KeyChanged,
    RekeyRefused,
    plan_rekey,
    refuse_changed_key,
    refuse_incomplete_rekey,
    retire,
)

OLD, NEW = "old0000000000000", "new0000000000000"


def manifest(site: str, delivery: str, status: str = "landed", key: str = OLD) -> Manifest:
    return Manifest(site_id=site, delivery_id=delivery, status=status, reason=None,
                    content_sha256="c", landing_version="1", key_fingerprint=key,
                    delivery_date=delivery, landed_at="2026-11-25T09:30:00+00:00")


def test_a_refresh_with_another_key_is_refused_saying_how_to_rekey(tmp_path: Path):
    landed = [manifest("hu-a", "2026-10-01"), manifest("hu-b", "2026-10-02")]
    with pytest.raises(KeyChanged) as refused:
        refuse_changed_key(landed, NEW, tmp_path)
    message = str(refused.value)
    assert f"fingerprint {NEW}" in message and f"fingerprint {OLD}" in message
    assert "2 landed deliveries" in message and "--rekey" in message
    assert "\n" not in message


def test_the_same_key_and_keyless_rejections_are_not_refused(tmp_path: Path):
    refuse_changed_key([manifest("hu-a", "2026-10-01", key=NEW),
                        manifest("hu-b", "2026-10-01", status="rejected")], NEW, tmp_path)


# (site, delivery, in the inbox?) of other-key landed deliveries, the published accepted
# delivery per site, and where each delivery goes.
CASES = [
    pytest.param([("hu-a", "2026-10-01", True)], {"hu-a": "2026-10-01"},
                 {"hu-a/2026-10-01": "reland"}, id="present-is-landed-again"),
    pytest.param([("hu-a", "2026-10-01", False)], {"hu-a": "2026-10-01"},
                 {"hu-a/2026-10-01": "missing: accepted"}, id="accepted-missing-refuses"),
    pytest.param([("hu-a", "2026-09-01", False), ("hu-a", "2026-10-01", True)],
                 {"hu-a": "2026-10-01"},
                 {"hu-a/2026-09-01": "retire", "hu-a/2026-10-01": "reland"},
                 id="superseded-missing-is-retired"),
    pytest.param([("hu-a", "2026-09-01", False), ("hu-a", "2026-10-01", True)],
                 {"hu-a": "2026-09-01"},
                 {"hu-a/2026-09-01": "missing: accepted", "hu-a/2026-10-01": "reland"},
                 id="held-back-newer-leaves-the-older-in-force"),
    pytest.param([("hu-a", "2026-09-01", True), ("hu-a", "2026-10-01", False)],
                 {"hu-a": "2026-09-01"},
                 {"hu-a/2026-09-01": "reland",
                  "hu-a/2026-10-01": "missing: held back, may be accepted later"},
                 id="held-back-missing-refuses"),
    pytest.param([("hu-new", "2026-10-01", False)], {},
                 {"hu-new/2026-10-01": "missing: landed, not in the published file yet"},
                 id="never-published-missing-refuses"),
]


@pytest.mark.parametrize(("deliveries", "accepted", "expected"), CASES)
def test_rekey_plan(deliveries, accepted, expected):
    landed = [manifest(site, delivery) for site, delivery, _ in deliveries]
    inbox = {(site, delivery) for site, delivery, present in deliveries if present}
    plan = plan_rekey(landed, NEW, inbox, accepted)
    where = {label: "reland" for label in plan.reland}
    where |= {label: "retire" for label in plan.retired_labels}
    where |= {f"{m.site_id}/{m.delivery_id}": f"missing: {why}" for m, why in plan.missing}
    assert where == expected


def test_an_incomplete_rekey_is_refused_listing_the_deliveries(tmp_path: Path):
    landed = [manifest("hu-a", "2026-10-01"), manifest("hu-b", "2026-10-02")]
    plan = plan_rekey(landed, NEW, {("hu-b", "2026-10-02")}, {"hu-a": "2026-10-01"})
    with pytest.raises(RekeyRefused, match=r"nothing was changed: 1 delivery in force .* "
                                           r"hu-a/2026-10-01 \(accepted\)"):
        refuse_incomplete_rekey(plan, tmp_path / "inbox", tmp_path)


def test_retired_deliveries_leave_the_landing_and_are_kept(tmp_path: Path):
    from ivig_platform.landing.land import delivery_dir, landed_manifests

    old = manifest("hu-a", "2026-09-01")
    folder = delivery_dir(tmp_path, "hu-a", "2026-09-01")
    folder.mkdir(parents=True)
    (folder / "_manifest.json").write_text(old.to_json())
    (moved,) = retire(tmp_path, [old])
    assert not folder.exists() and landed_manifests(tmp_path) == []
    assert moved == tmp_path / "retired" / f"key-{OLD}" / "site=hu-a" / "delivery=2026-09-01"
    assert (moved / "_manifest.json").exists()
