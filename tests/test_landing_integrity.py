"""A landed delivery is all there or not used (issue 10, point 1).

Two refreshes landing the same delivery at once must not share a staging folder; a
manifest must only ever describe files that are present with the bytes it lists; a
landing whose files do not match its manifest is landed again from the inbox, or, when
the inbox folder is gone, recorded as rejected with a reason instead of being gated as is.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from conftest import assert_counts_add_up

from ivig_platform.landing.cells import cells_file
from ivig_platform.landing.contract import TABLES
from ivig_platform.landing.land import (
    LANDED_FILES,
    MANIFEST,
    land_delivery,
    landed_manifests,
    remove_stale_partials,
)

SITE = "h-la-fe"
DELIVERY = "2026-11-24"
LATER = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

# Landing version 3 writes each table's cells as reported beside it (landing/cells.py).
WRITTEN_FILES = sorted(LANDED_FILES + [cells_file(name) for name in TABLES])


def _overlapping_writes(monkeypatch, parties: int) -> None:
    """Hold each lander after its first Parquet file until all of them have written one.

    The real writer runs; the barrier only makes the landers' staging windows overlap
    every time, where an unsynchronised race would overlap only now and then.
    """
    barrier = threading.Barrier(parties, timeout=10)
    waited: set[int] = set()
    write = pl.DataFrame.write_parquet

    def write_then_wait(frame, file, *args, **kwargs):
        write(frame, file, *args, **kwargs)
        me = threading.get_ident()
        if me not in waited:
            waited.add(me)
            # A broken barrier means the other lander failed first; the test reports it.
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()

    monkeypatch.setattr(pl.DataFrame, "write_parquet", write_then_wait)


def _land_concurrently(delivery, warehouse, key, parties: int = 2) -> list:
    outcomes: list = [None] * parties

    def run(i: int) -> None:
        try:
            outcomes[i] = land_delivery(delivery, warehouse, key)
        except Exception as exc:  # the test reports it; a lander must not fail
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(parties)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def _site_folders(warehouse) -> list[str]:
    return sorted(p.name for p in (warehouse.path / "landing" / f"site={SITE}").iterdir())


@pytest.fixture
def delivery(extract, make_delivery, tmp_path):
    return make_delivery(tmp_path, SITE, DELIVERY, extract.csv_tables())


@pytest.mark.parametrize("parties", [2, 3])
def test_concurrent_landings_of_one_delivery_leave_one_complete_landing(
        parties, delivery, warehouse, monkeypatch):
    _overlapping_writes(monkeypatch, parties)
    outcomes = _land_concurrently(delivery, warehouse.path, warehouse.key, parties)
    assert [type(o).__name__ for o in outcomes] == ["Manifest"] * parties, outcomes
    assert all(o.status == "landed" for o in outcomes)
    assert _site_folders(warehouse) == [f"delivery={DELIVERY}"]  # no staging left behind
    (recorded,) = landed_manifests(warehouse.path)
    assert recorded.status == "landed", recorded.reason
    assert_counts_add_up(recorded, warehouse.folder(delivery))


def test_manifest_lists_every_file_with_its_size_and_sha256(delivery, warehouse):
    manifest = warehouse.land(delivery)
    folder = warehouse.folder(delivery)
    assert sorted(manifest.landed_files) == WRITTEN_FILES
    on_disk = sorted(p.name for p in folder.iterdir() if p.name != MANIFEST)
    assert on_disk == WRITTEN_FILES
    for name, record in manifest.landed_files.items():
        data = (folder / name).read_bytes()
        assert record == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert warehouse.manifest_json(delivery)["landed_files"] == manifest.landed_files


def test_rejected_delivery_lists_no_files(make_delivery, warehouse, tmp_path):
    manifest = warehouse.land(make_delivery(tmp_path, SITE, DELIVERY, {}))
    assert (manifest.status, manifest.landed_files) == ("rejected", {})


def _failing_write(monkeypatch, failing: str, error: Exception) -> None:
    write = pl.DataFrame.write_parquet

    def write_or_fail(frame, file, *args, **kwargs):
        if str(file).endswith(failing):
            raise error
        write(frame, file, *args, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", write_or_fail)


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   RuntimeError("a bug in landing")],
                         ids=["disk_full", "bug"])
def test_a_landing_that_fails_half_way_writes_no_manifest_and_keeps_the_old_landing(
        error, delivery, warehouse, monkeypatch):
    first = warehouse.land(delivery)
    cycles = delivery.path / "ivig_cycles.csv"
    cycles.write_bytes(cycles.read_bytes().replace(b"2021-04-01,120", b"2021-04-01,121"))
    _failing_write(monkeypatch, "quarantine.parquet", error)
    with pytest.raises(type(error)):
        land_delivery(delivery, warehouse.path, warehouse.key, now=LATER)
    assert _site_folders(warehouse) == [f"delivery={DELIVERY}"]  # staging removed
    assert warehouse.manifest_json(delivery)["landed_at"] == first.landed_at
    (recorded,) = landed_manifests(warehouse.path)
    assert (recorded.status, recorded.content_sha256) == ("landed", first.content_sha256)


def test_a_file_that_does_not_read_back_as_written_is_never_in_a_manifest(
        delivery, warehouse, monkeypatch):
    """A short write that reports no error (a full disk behind a network share)."""
    write = pl.DataFrame.write_parquet

    def write_short(frame, file, *args, **kwargs):
        write(frame, file, *args, **kwargs)
        if str(file).endswith("assessments.parquet"):
            data = Path(file).read_bytes()
            Path(file).write_bytes(data[: len(data) // 2])

    monkeypatch.setattr(pl.DataFrame, "write_parquet", write_short)
    with pytest.raises(OSError, match="assessments.parquet did not read back as written"):
        land_delivery(delivery, warehouse.path, warehouse.key)
    assert not (warehouse.path / "landing" / f"site={SITE}").exists() or \
        _site_folders(warehouse) == []
    assert landed_manifests(warehouse.path) == []


def _break(folder, name: str, how: str) -> None:
    path = folder / name
    if how == "missing":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[:-10])
    else:  # same size, one byte changed
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))


DAMAGE = [
    ("patients.parquet", "missing", "patients.parquet missing (the manifest lists it)"),
    ("ivig_cycles.parquet", "truncated", "ivig_cycles.parquet has "),
    ("quarantine.parquet", "altered", "quarantine.parquet differs from the file landed"),
]


@pytest.mark.parametrize(("name", "how", "problem"), DAMAGE, ids=[d[1] for d in DAMAGE])
def test_damaged_landing_is_rejected_when_its_inbox_folder_is_gone(
        name, how, problem, delivery, warehouse):
    warehouse.land(delivery)
    _break(warehouse.folder(delivery), name, how)
    shutil.rmtree(delivery.path)  # archived by the hospital
    (recorded,) = landed_manifests(warehouse.path)
    assert recorded.status == "rejected"
    assert recorded.rejection_code == "damaged_landing"
    assert problem in recorded.reason
    assert recorded.reason.endswith("the inbox folder is needed to land it again")
    assert (recorded.rows_landed, recorded.rows_quarantined, recorded.tables) == (0, 0, {})


@pytest.mark.parametrize(("name", "how", "problem"), DAMAGE, ids=[d[1] for d in DAMAGE])
def test_damaged_landing_is_landed_again_from_the_inbox(name, how, problem, delivery,
                                                        warehouse):
    first = warehouse.land(delivery)
    _break(warehouse.folder(delivery), name, how)
    again = warehouse.land(delivery, now=LATER)  # checks the counts add up again
    assert again.landed_at == LATER.isoformat()
    assert again.landed_files[name] != {} and again.content_sha256 == first.content_sha256
    (recorded,) = landed_manifests(warehouse.path)
    assert recorded.status == "landed"


def test_a_manifest_that_does_not_list_a_table_file_is_damaged(delivery, warehouse):
    warehouse.land(delivery)
    path = warehouse.folder(delivery) / MANIFEST
    data = json.loads(path.read_text())
    del data["landed_files"]["patients.parquet"]
    path.write_text(json.dumps(data))
    (recorded,) = landed_manifests(warehouse.path)
    assert recorded.reason.startswith(
        "damaged_landing: patients.parquet not listed in the manifest")
    assert warehouse.land(delivery, now=LATER).landed_at == LATER.isoformat()


def _as_version_1(folder) -> None:
    """Rewrite a manifest the way landing version 1 wrote it (no `landed_files`)."""
    path = folder / MANIFEST
    data = json.loads(path.read_text())
    del data["landed_files"]
    data["landing_version"] = "1"
    path.write_text(json.dumps(data))


def test_version_1_manifest_is_landed_again_when_the_inbox_folder_is_there(delivery,
                                                                          warehouse):
    warehouse.land(delivery)
    _as_version_1(warehouse.folder(delivery))
    again = warehouse.land(delivery, now=LATER)
    assert again.landed_at == LATER.isoformat()
    assert sorted(again.landed_files) == WRITTEN_FILES


def test_version_1_manifest_without_its_inbox_folder_stays_when_its_files_are_there(
        delivery, warehouse):
    first = warehouse.land(delivery)
    _as_version_1(warehouse.folder(delivery))
    shutil.rmtree(delivery.path)
    (recorded,) = landed_manifests(warehouse.path)
    assert (recorded.status, recorded.rows_landed) == ("landed", first.rows_landed)


@pytest.mark.parametrize(("how", "problem"), [
    ("missing", "patients.parquet missing"),
    ("truncated", "patients.parquet is not a readable Parquet file"),
])
def test_version_1_manifest_without_its_inbox_folder_is_rejected_when_a_file_is_broken(
        how, problem, delivery, warehouse):
    warehouse.land(delivery)
    folder = warehouse.folder(delivery)
    _as_version_1(folder)
    _break(folder, "patients.parquet", how)
    shutil.rmtree(delivery.path)
    (recorded,) = landed_manifests(warehouse.path)
    assert recorded.rejection_code == "damaged_landing"
    assert problem in recorded.reason
    assert "recorded no file hashes, so only the files' presence and row counts" \
        in recorded.reason


def test_version_1_manifest_with_a_wrong_row_count_is_rejected(delivery, warehouse):
    warehouse.land(delivery)
    folder = warehouse.folder(delivery)
    _as_version_1(folder)
    data = json.loads((folder / MANIFEST).read_text())
    data["tables"]["treatments"]["landed"] += 1
    (folder / MANIFEST).write_text(json.dumps(data))
    (recorded,) = landed_manifests(warehouse.path)
    assert "treatments.parquet has 2 rows, the manifest lists 3" in recorded.reason


@pytest.mark.parametrize("damage", ["unreadable", "missing"])
def test_landing_without_a_readable_manifest_is_recorded_as_damaged_and_landed_again(
        damage, delivery, warehouse):
    warehouse.land(delivery)
    path = warehouse.folder(delivery) / MANIFEST
    if damage == "missing":
        path.unlink()
    else:
        path.write_text('{"site_id": "h-la-')
    (recorded,) = landed_manifests(warehouse.path)  # said, not left out of the record
    assert (recorded.site_id, recorded.delivery_id, recorded.status) == (
        SITE, DELIVERY, "rejected")
    assert recorded.reason == ("damaged_landing: _manifest.json missing or unreadable; "
                               "the inbox folder is needed to land it again")
    assert recorded.delivery_date == DELIVERY
    assert warehouse.land(delivery, now=LATER).landed_at == LATER.isoformat()
    assert landed_manifests(warehouse.path)[0].status == "landed"


def _killed_staging(warehouse, delivery, kind: str, *, with_manifest: bool):
    """A copy of the delivery's landing under a temporary name, as a killed lander left it."""
    folder = warehouse.folder(delivery)
    stale = folder.with_name(f"{folder.name}.{kind}-{'0123456789abcdef' * 2}")
    shutil.copytree(folder, stale)
    if not with_manifest:
        (stale / MANIFEST).unlink()
    (stale / "patients.parquet").unlink()
    return stale


@pytest.mark.parametrize("with_manifest", [True, False])
def test_stale_staging_folders_are_never_read_and_are_removed(with_manifest, delivery,
                                                              warehouse):
    warehouse.land(delivery)
    stale = _killed_staging(warehouse, delivery, "partial", with_manifest=with_manifest)
    (recorded,) = landed_manifests(warehouse.path)
    assert recorded.status == "landed"
    assert remove_stale_partials(warehouse.path) == [stale]
    assert _site_folders(warehouse) == [f"delivery={DELIVERY}"]
    assert warehouse.land(delivery, now=LATER).landed_at != LATER.isoformat()  # still current


def test_landing_killed_between_the_two_renames_of_a_swap_is_put_back(delivery, warehouse):
    first = warehouse.land(delivery)
    folder = warehouse.folder(delivery)
    aside = folder.with_name(f"{folder.name}.replaced-{'ab' * 16}")
    folder.rename(aside)
    shutil.rmtree(delivery.path)  # and the inbox folder is gone: the aside copy is all there is
    assert landed_manifests(warehouse.path) == []
    assert remove_stale_partials(warehouse.path) == []
    (recorded,) = landed_manifests(warehouse.path)
    assert (recorded.status, recorded.landed_at) == ("landed", first.landed_at)


def test_set_aside_copy_is_removed_when_a_landing_is_in_place(delivery, warehouse):
    warehouse.land(delivery)
    stale = _killed_staging(warehouse, delivery, "replaced", with_manifest=True)
    assert remove_stale_partials(warehouse.path) == [stale]


def test_swap_replaces_a_landing_already_in_place(delivery, warehouse):
    first = warehouse.land(delivery)
    cycles = delivery.path / "ivig_cycles.csv"
    cycles.write_bytes(cycles.read_bytes().replace(b"2021-04-01,120", b"2021-04-01,121"))
    second = warehouse.land(delivery, now=LATER)
    assert second.content_sha256 != first.content_sha256
    assert _site_folders(warehouse) == [f"delivery={DELIVERY}"]
    (recorded,) = landed_manifests(warehouse.path)
    assert recorded == second



def test_version_1_staging_folder_is_never_read_and_is_removed(delivery, warehouse):
    """Version 1 staged every call in `delivery=<id>.partial`; a killed one may remain."""
    warehouse.land(delivery)
    folder = warehouse.folder(delivery)
    legacy = folder.with_name(f"{folder.name}.partial")
    shutil.copytree(folder, legacy)
    (legacy / "patients.parquet").unlink()
    (recorded,) = landed_manifests(warehouse.path)
    assert recorded.status == "landed"
    assert remove_stale_partials(warehouse.path) == [legacy]


@pytest.mark.parametrize("delivery_id", ["2026-11.partial", f"x.partial-{'ab' * 16}",
                                         f"x.replaced-{'cd' * 16}"])
def test_a_delivery_whose_id_looks_like_a_staging_folder_is_still_a_delivery(
        delivery_id, extract, make_delivery, warehouse, tmp_path):
    delivery = make_delivery(tmp_path, SITE, delivery_id, extract.csv_tables())
    warehouse.land(delivery)
    (recorded,) = landed_manifests(warehouse.path)
    assert (recorded.delivery_id, recorded.status) == (delivery_id, "landed")
    assert remove_stale_partials(warehouse.path) == []
    assert landed_manifests(warehouse.path) == [recorded]
