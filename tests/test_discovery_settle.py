"""A delivery is taken only when complete: `_READY`, or unchanged for the settle time."""

from __future__ import annotations

import os
import time

import pytest

from ivig_platform.landing.discovery import discover_settled, is_settled
from ivig_platform.landing.land import DeliveryChanged, content_hash


def _delivery(root, site="hu-test", delivery="2026-11-01"):
    folder = root / site / delivery
    folder.mkdir(parents=True)
    (folder / "patients.csv").write_text("patient_id\nA1\n")
    return folder


def test_a_folder_written_just_now_is_not_settled(tmp_path):
    folder = _delivery(tmp_path)
    assert not is_settled(folder, settle_seconds=60)


def test_a_folder_unchanged_for_the_settle_time_is_settled(tmp_path):
    folder = _delivery(tmp_path)
    old = time.time() - 120
    for path in (folder / "patients.csv", folder):
        os.utime(path, (old, old))
    assert is_settled(folder, settle_seconds=60)


def test_the_ready_marker_needs_no_waiting(tmp_path):
    folder = _delivery(tmp_path)
    (folder / "_READY").touch()
    assert is_settled(folder, settle_seconds=3600)


def test_zero_settle_time_takes_everything(tmp_path):
    assert is_settled(_delivery(tmp_path), settle_seconds=0)


def test_discovery_splits_ready_from_waiting(tmp_path):
    ready = _delivery(tmp_path, delivery="2026-10-01")
    (ready / "_READY").touch()
    _delivery(tmp_path, delivery="2026-11-01")
    found = discover_settled(tmp_path, settle_seconds=60)
    assert [d.delivery_id for d in found.ready] == ["2026-10-01"]
    assert [d.delivery_id for d in found.waiting] == ["2026-11-01"]


def test_the_ready_marker_is_not_content(tmp_path):
    folder = _delivery(tmp_path)
    before = content_hash(folder)
    (folder / "_READY").touch()
    assert content_hash(folder) == before


def test_a_delivery_changing_while_it_is_landed_raises_a_transient_error(
    tmp_path, monkeypatch
):
    """The flow retries OSErrors with backoff; nothing of the half-read delivery is kept."""
    from ivig_platform.landing import land as land_module

    folder = _delivery(tmp_path / "inbox")
    headers = {
        "patients": "patient_id,sex,birth_date,ssc_subtype,overlap,indication,ivig_stop_reason\n"
                    "A1,F,1960-01-02,diffuse,,skin,\n",
        "ivig_cycles": "patient_id,cycle_number,start_date,dose_g\nA1,1,2024-01-01,120\n",
        "treatments": "patient_id,drug\n",
        "assessments": "patient_id,assessment_date,measure,value,unit\n",
        "adverse_events": "patient_id,onset_date,term,severity,serious,related,action\n",
    }
    for table, text in headers.items():
        (folder / f"{table}.csv").write_text(text)
    real_read = land_module.read_delivery

    def read_then_change(path, contract=None):
        tables = real_read(path, contract)
        (path / "patients.csv").write_text("patient_id\nA1\nA2\n")  # the sender writes on
        return tables

    monkeypatch.setattr(land_module, "read_delivery", read_then_change)
    delivery = land_module.Delivery("hu-test", "2026-11-01", folder)
    with pytest.raises(DeliveryChanged):
        land_module.land_delivery(delivery, tmp_path / "wh", b"k" * 32)
    assert not land_module.delivery_dir(tmp_path / "wh", "hu-test", "2026-11-01").exists()
