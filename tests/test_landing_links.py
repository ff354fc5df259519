"""Symbolic links in a delivery (issue 10, point 9).

A `patients.csv` that is a link to a file outside the inbox (the trial used
`/etc/passwd`) was read. A link that leads out of its delivery folder, or a delivery or
site folder that is itself a link, rejects the delivery as `unsafe_file`, and what the
link points at is never opened (an audit hook watches every `open`); a link that stays
inside its delivery folder is followed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ivig_platform.landing.land import Delivery

SITE = "h-la-fe"
DELIVERY = "2026-11-24"
LATER_DELIVERY = "2026-12-01"

_watched: list[str] = []  # path prefixes that must not be opened
_opened: list[str] = []


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _watched and isinstance(args[0], str | bytes | Path):
        path = str(Path(str(args[0]) if not isinstance(args[0], bytes) else args[0].decode()))
        if any(path.startswith(prefix) for prefix in _watched):
            _opened.append(path)


sys.addaudithook(_audit)  # audit hooks cannot be removed; it only records watched paths


@pytest.fixture
def outside(tmp_path):
    """A folder outside the inbox; from the first landing on, nobody may open its files."""
    folder = tmp_path / "outside"
    folder.mkdir()
    _opened.clear()
    yield folder
    _watched.clear()
    assert _opened == [], f"landing opened {_opened}"


def rejected_reason(warehouse, delivery: Delivery, *, watch: Path | None = None) -> str:
    _watched.append(str(watch or delivery.path.parents[2] / "outside"))
    try:
        manifest = warehouse.land(delivery)
    finally:
        _watched.clear()
    assert manifest.status == "rejected"
    assert manifest.rejection_code == "unsafe_file", manifest.reason
    return manifest.reason


def test_table_file_linked_outside_the_inbox_is_refused_unread(extract, make_delivery,
                                                               warehouse, tmp_path, outside):
    tables = extract.csv_tables()
    (outside / "passwd").write_text(tables.pop("patients"))
    delivery = make_delivery(tmp_path, SITE, DELIVERY, tables)
    (delivery.path / "patients.csv").symlink_to(outside / "passwd")
    assert rejected_reason(warehouse, delivery) == (
        "unsafe_file: patients.csv is a symbolic link to a path outside the inbox")


def test_any_file_linked_outside_the_inbox_refuses_the_delivery(extract, make_delivery,
                                                                warehouse, tmp_path, outside):
    (outside / "notes.txt").write_text("not a table")
    delivery = make_delivery(tmp_path, SITE, DELIVERY, extract.csv_tables())
    (delivery.path / "extra").mkdir()
    (delivery.path / "extra" / "LEEME.txt").symlink_to(outside / "notes.txt")
    assert "extra/LEEME.txt is a symbolic link to a path outside the inbox" in \
        rejected_reason(warehouse, delivery)


def test_folder_inside_the_delivery_linked_outside_is_refused(extract, make_delivery,
                                                              warehouse, tmp_path, outside):
    delivery = make_delivery(tmp_path, SITE, DELIVERY, extract.csv_tables())
    (delivery.path / "anexos").symlink_to(outside, target_is_directory=True)
    assert rejected_reason(warehouse, delivery) == (
        "unsafe_file: anexos is a symbolic link to a path outside the inbox")


def test_delivery_folder_linked_outside_the_inbox_is_refused_unread(extract, make_delivery,
                                                                    warehouse, tmp_path,
                                                                    outside):
    elsewhere = make_delivery(outside, SITE, DELIVERY, extract.csv_tables())
    site = tmp_path / "inbox" / SITE
    site.mkdir(parents=True)
    (site / DELIVERY).symlink_to(elsewhere.path, target_is_directory=True)
    delivery = Delivery(SITE, DELIVERY, site / DELIVERY)
    assert rejected_reason(warehouse, delivery) == (
        "unsafe_file: the delivery folder is a symbolic link to a path outside the inbox; "
        "send the files themselves")


def test_site_folder_linked_outside_the_inbox_is_refused_unread(extract, make_delivery,
                                                                warehouse, tmp_path, outside):
    make_delivery(outside, SITE, DELIVERY, extract.csv_tables())
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / SITE).symlink_to(outside / "inbox" / SITE, target_is_directory=True)
    delivery = Delivery(SITE, DELIVERY, tmp_path / "inbox" / SITE / DELIVERY)
    assert "the site folder is a symbolic link to a path outside the inbox" in \
        rejected_reason(warehouse, delivery)


def test_delivery_folder_linked_to_another_sites_folder_is_refused(extract, make_delivery,
                                                                   warehouse, tmp_path):
    other = make_delivery(tmp_path, "h-clinic", DELIVERY, extract.csv_tables())
    site = tmp_path / "inbox" / SITE
    site.mkdir(parents=True)
    (site / DELIVERY).symlink_to(other.path, target_is_directory=True)
    assert "the delivery folder is a symbolic link to another folder of the inbox" in \
        rejected_reason(warehouse, Delivery(SITE, DELIVERY, site / DELIVERY))


def test_table_file_linked_to_another_sites_file_is_refused(extract, make_delivery,
                                                            warehouse, tmp_path):
    tables = extract.csv_tables()
    other = make_delivery(tmp_path, "h-clinic", DELIVERY, tables)
    del tables["treatments"]
    delivery = make_delivery(tmp_path, SITE, DELIVERY, tables)
    (delivery.path / "treatments.csv").symlink_to(other.path / "treatments.csv")
    assert rejected_reason(warehouse, delivery) == (
        "unsafe_file: treatments.csv is a symbolic link to a path outside its delivery folder")


@pytest.mark.parametrize("target", ["../../../outside/missing.csv", "/nonexistent/x.csv"])
def test_dangling_link_out_of_the_delivery_is_refused(target, extract, make_delivery,
                                                      warehouse, tmp_path):
    tables = extract.csv_tables()
    del tables["patients"]
    delivery = make_delivery(tmp_path, SITE, DELIVERY, tables)
    (delivery.path / "patients.csv").symlink_to(target)
    assert "patients.csv is a symbolic link to a path outside the inbox" in \
        rejected_reason(warehouse, delivery)


def test_link_loop_is_refused(extract, make_delivery, warehouse, tmp_path):
    tables = extract.csv_tables()
    del tables["patients"]
    delivery = make_delivery(tmp_path, SITE, DELIVERY, tables)
    (delivery.path / "patients.csv").symlink_to("loop.csv")
    (delivery.path / "loop.csv").symlink_to("patients.csv")
    assert "is a symbolic link that cannot be resolved" in rejected_reason(warehouse, delivery)


def test_link_that_stays_inside_its_delivery_folder_is_followed(extract, make_delivery,
                                                                warehouse, tmp_path):
    tables = extract.csv_tables()
    delivery = make_delivery(tmp_path, SITE, DELIVERY, {})
    (delivery.path / "export").mkdir()
    for name, text in tables.items():
        (delivery.path / "export" / f"{name}_2026.csv").write_text(text)
        (delivery.path / f"{name}.csv").symlink_to(Path("export") / f"{name}_2026.csv")
    manifest = warehouse.land(delivery)
    assert (manifest.status, manifest.rows_quarantined, manifest.rows_landed) == (
        "landed", 0, 14)


def test_a_refused_delivery_is_not_landed_again_until_its_link_changes(
        extract, make_delivery, warehouse, tmp_path, outside):
    tables = extract.csv_tables()
    (outside / "a.csv").write_text(tables.pop("patients"))
    delivery = make_delivery(tmp_path, SITE, DELIVERY, tables)
    link = delivery.path / "patients.csv"
    link.symlink_to(outside / "a.csv")
    _watched.append(str(outside))
    first = warehouse.land(delivery)
    assert warehouse.land(delivery).landed_at == first.landed_at
    link.unlink()
    link.symlink_to(outside / "b.csv")
    assert warehouse.land(delivery).content_sha256 != first.content_sha256
