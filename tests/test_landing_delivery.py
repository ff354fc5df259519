"""A delivery as a whole (protocol §2, §6): rejections, re-landing, pseudonyms, age.

A rejected delivery must say why (the reason starts with its code and names the file or
column at fault) and must leave no Parquet behind; a landed one is landed once per
content and key; patient ids leave landing only as keyed pseudonyms.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from ivig_platform.landing.discovery import discover_deliveries
from ivig_platform.landing.land import MANIFEST, Delivery
from ivig_platform.landing.pseudonym import MissingKeyError, load_key, pseudonym

SITE = "h-clinic-barcelona"
KEY = b"test-pseudonym-key-0123456789abcdef"  # the conftest key, for module fixtures
DELIVERY = "2026-11-24"
LATER = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def rejected(warehouse, delivery: Delivery, code: str):
    manifest = warehouse.land(delivery)  # the helper checks that no Parquet was written
    assert manifest.status == "rejected"
    assert manifest.rejection_code == code, manifest.reason
    assert manifest.reason.startswith(f"{code}: ")
    assert (manifest.rows_landed, manifest.rows_quarantined, manifest.tables) == (0, 0, {})
    folder = warehouse.folder(delivery)
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST]
    assert warehouse.manifest_json(delivery)["reason"] == manifest.reason
    return manifest.reason


def test_reject_missing_table(extract, make_delivery, warehouse, tmp_path):
    tables = extract.csv_tables()
    del tables["treatments"]
    reason = rejected(warehouse, make_delivery(tmp_path, SITE, DELIVERY, tables),
                      "missing_table")
    assert "treatments.csv" in reason


def test_reject_missing_sheet_in_workbook(extract, make_delivery, warehouse, tmp_path):
    sheets = extract.xlsx_tables()
    del sheets["adverse_events"]
    reason = rejected(warehouse, make_delivery(tmp_path, SITE, DELIVERY, sheets, xlsx=True),
                      "missing_table")
    assert "adverse_events" in reason


def test_reject_missing_required_column(extract, make_delivery, warehouse, tmp_path):
    extract.drop_column("ivig_cycles", "dose_g")
    reason = rejected(warehouse, make_delivery(tmp_path, SITE, DELIVERY, extract.csv_tables()),
                      "missing_column")
    assert "ivig_cycles.csv" in reason and "dose_g" in reason


def test_reject_missing_required_column_in_workbook(extract, make_delivery, warehouse,
                                                    tmp_path):
    extract.drop_column("patients", "birth_date")
    delivery = make_delivery(tmp_path, SITE, DELIVERY, extract.xlsx_tables(), xlsx=True)
    reason = rejected(warehouse, delivery, "missing_column")
    assert "patients" in reason and "birth_date" in reason


def test_optional_column_may_be_absent(extract, make_delivery, warehouse, tmp_path):
    extract.drop_column("ivig_cycles", "weight_kg")
    extract.drop_column("treatments", "end_date")
    delivery = make_delivery(tmp_path, SITE, DELIVERY, extract.csv_tables())
    manifest = warehouse.land(delivery)
    assert (manifest.status, manifest.rows_quarantined) == ("landed", 0)
    assert warehouse.table(delivery, "ivig_cycles").get_column("weight_kg").null_count() == 3


def test_reject_ambiguous_columns(extract, make_delivery, warehouse, tmp_path):
    extract.add_column("patients", "NHC", ["1", "2", "3"])
    reason = rejected(warehouse, make_delivery(tmp_path, SITE, DELIVERY, extract.csv_tables()),
                      "ambiguous_column")
    assert "patients.csv" in reason
    assert "'patient_id'" in reason and "'NHC'" in reason


@pytest.mark.parametrize("second", ["patient_id", "NHC"])
def test_reject_ambiguous_columns_in_workbook(second, extract, make_delivery, warehouse,
                                              tmp_path):
    """The same header twice, verbatim or as an alias: fastexcel renames a verbatim copy
    (`patient_id_1`), which used to be dropped as an unknown column."""
    extract.add_column("patients", second, ["1", "2", "3"])
    delivery = make_delivery(tmp_path, SITE, DELIVERY, extract.xlsx_tables(), xlsx=True)
    reason = rejected(warehouse, delivery, "ambiguous_column")
    assert "extract.xlsx[patients]" in reason and f"{second!r}" in reason


def test_empty_header_cell_in_workbook_is_not_a_dropped_column(extract, make_delivery,
                                                                warehouse, tmp_path):
    extract.add_column("ivig_cycles", "", ["x", "y", "z"])
    delivery = make_delivery(tmp_path, SITE, DELIVERY, extract.xlsx_tables(), xlsx=True)
    manifest = warehouse.land(delivery)
    assert (manifest.status, manifest.dropped_columns) == ("landed", [])


def test_reject_ambiguous_spanish_and_english_columns(extract, make_delivery, warehouse,
                                                      tmp_path):
    extract.add_column("assessments", "Valor", ["3", "1149", "217", "15", "0.78"])
    reason = rejected(warehouse, make_delivery(tmp_path, SITE, DELIVERY, extract.csv_tables()),
                      "ambiguous_column")
    assert "'value'" in reason and "'Valor'" in reason


def test_reject_file_neither_utf8_nor_cp1252(extract, make_delivery, warehouse, tmp_path):
    tables = {**extract.csv_tables(), "patients": b"patient_id,sex\n\x81\x8d,F\n"}
    reason = rejected(warehouse, make_delivery(tmp_path, SITE, DELIVERY, tables),
                      "unreadable_file")
    assert "patients.csv" in reason


def test_reject_empty_file(extract, make_delivery, warehouse, tmp_path):
    tables = {**extract.csv_tables(), "assessments": b""}
    reason = rejected(warehouse, make_delivery(tmp_path, SITE, DELIVERY, tables),
                      "unreadable_file")
    assert "assessments.csv" in reason


def test_reject_corrupt_workbook(make_delivery, warehouse, tmp_path):
    delivery = make_delivery(tmp_path, SITE, DELIVERY, {})
    (delivery.path / "extract.xlsx").write_bytes(b"PK\x03\x04 this is not a workbook")
    reason = rejected(warehouse, delivery, "unreadable_file")
    assert "extract.xlsx" in reason


def test_reject_empty_delivery_folder(make_delivery, warehouse, tmp_path):
    reason = rejected(warehouse, make_delivery(tmp_path, SITE, DELIVERY, {}), "empty_delivery")
    assert "patients" in reason


def test_reject_folder_with_unrelated_files_only(make_delivery, warehouse, tmp_path):
    delivery = make_delivery(tmp_path, SITE, DELIVERY, {})
    (delivery.path / "LEEME.txt").write_text("Extracción de noviembre")
    rejected(warehouse, delivery, "empty_delivery")


def test_reject_workbook_and_csv_together(extract, make_delivery, warehouse, tmp_path):
    delivery = make_delivery(tmp_path, SITE, DELIVERY, extract.xlsx_tables(), xlsx=True)
    (delivery.path / "patients.csv").write_text(extract.csv("patients"))
    reason = rejected(warehouse, delivery, "mixed_formats")
    assert "extract.xlsx" in reason


@pytest.mark.parametrize("site", ["Hospital_La_Paz", "h", "h.paz", "hospital la paz",
                                  "h" * 33, "hospital-ñ"])
def test_reject_invalid_site_id(site, extract, make_delivery, warehouse, tmp_path):
    reason = rejected(warehouse, make_delivery(tmp_path, site, DELIVERY, extract.csv_tables()),
                      "invalid_site_id")
    assert repr(site) in reason


@pytest.mark.parametrize("site", ["hp", "h_la-paz_01", "h" * 32])
def test_valid_site_id_passes_the_site_check(site, make_delivery, warehouse, tmp_path):
    """A valid site id gets as far as reading the folder (here: empty, so nothing to read)."""
    rejected(warehouse, make_delivery(tmp_path, site, DELIVERY, {}), "empty_delivery")


def test_reject_delivery_without_a_valid_patient(extract, make_delivery, warehouse, tmp_path):
    patients = extract.tables["patients"]
    patients[1][2] = "31/02/1961"
    patients[2][5] = ""
    patients[3][0] = patients[1][0]  # duplicate of the first id
    reason = rejected(warehouse, make_delivery(tmp_path, SITE, DELIVERY, extract.csv_tables()),
                      "no_valid_patient")
    assert "patient" in reason


def test_reject_header_only_patients_file(extract, make_delivery, warehouse, tmp_path):
    tables = {**extract.csv_tables(), "patients": extract.csv("patients").split("\n")[0]}
    rejected(warehouse, make_delivery(tmp_path, SITE, DELIVERY, tables), "no_valid_patient")


def test_empty_tables_other_than_patients_land(extract, make_delivery, warehouse, tmp_path):
    for table in ("ivig_cycles", "treatments", "assessments", "adverse_events"):
        del extract.tables[table][1:]
    delivery = make_delivery(tmp_path, SITE, DELIVERY, extract.csv_tables())
    manifest = warehouse.land(delivery)
    assert (manifest.status, manifest.rows_landed) == ("landed", 3)
    assert warehouse.table(delivery, "ivig_cycles").is_empty()
    assert warehouse.table(delivery, "patients").get_column("age_at_index").null_count() == 3


@pytest.fixture(scope="module")
def base(tmp_path_factory, new_extract, make_delivery, new_warehouse):
    """The base extract (plus one quarantined cycle), landed once for the module."""
    extract = new_extract()
    extract.append("ivig_cycles", patient_id="100234", start_date="2021-01-01", dose_g="0")
    tmp = tmp_path_factory.mktemp("base")
    delivery = make_delivery(tmp, SITE, DELIVERY, extract.csv_tables())
    warehouse = new_warehouse(tmp / "warehouse", KEY)
    manifest = warehouse.land(delivery)
    assert (manifest.status, manifest.rows_quarantined) == ("landed", 1)
    return extract, warehouse, delivery


# --- landing once per content and key ------------------------------------------------------


def test_landing_the_same_folder_twice_reuses_the_manifest(extract, make_delivery, warehouse,
                                                           tmp_path):
    delivery = make_delivery(tmp_path, SITE, DELIVERY, extract.csv_tables())
    first = warehouse.land(delivery)
    manifest_file = warehouse.folder(delivery) / MANIFEST
    parquet = warehouse.folder(delivery) / "patients.parquet"
    stamps = (manifest_file.stat().st_mtime_ns, parquet.stat().st_mtime_ns)
    second = warehouse.land(delivery, now=LATER)
    assert second == first
    assert second.landed_at == first.landed_at
    assert (manifest_file.stat().st_mtime_ns, parquet.stat().st_mtime_ns) == stamps


def test_rejected_delivery_is_not_landed_again_either(make_delivery, warehouse, tmp_path):
    delivery = make_delivery(tmp_path, SITE, DELIVERY, {})
    first = warehouse.land(delivery)
    assert warehouse.land(delivery, now=LATER).landed_at == first.landed_at


def test_changing_one_byte_relands(extract, make_delivery, warehouse, tmp_path):
    delivery = make_delivery(tmp_path, SITE, DELIVERY, extract.csv_tables())
    first = warehouse.land(delivery)
    path = delivery.path / "ivig_cycles.csv"
    path.write_bytes(path.read_bytes().replace(b"2021-04-01,120", b"2021-04-01,121"))
    second = warehouse.land(delivery, now=LATER)
    assert second.content_sha256 != first.content_sha256
    assert second.landed_at == LATER.isoformat()
    doses = warehouse.table(delivery, "ivig_cycles").sort("source_row").get_column("dose_g")
    assert doses.to_list() == [120.0, 121.0, 140.0]


def test_a_different_key_relands_with_other_pseudonyms(extract, make_delivery, warehouse,
                                                       tmp_path):
    delivery = make_delivery(tmp_path, SITE, DELIVERY, extract.csv_tables())
    first = warehouse.land(delivery)
    keys_before = set(warehouse.table(delivery, "patients").get_column("patient_key"))
    second = warehouse.land(delivery, key=b"another-study-key-fedcba9876543210", now=LATER)
    keys_after = set(warehouse.table(delivery, "patients").get_column("patient_key"))
    assert second.key_fingerprint != first.key_fingerprint
    assert second.landed_at == LATER.isoformat()
    assert keys_before.isdisjoint(keys_after)


def test_manifest_never_holds_the_key(base):
    _, warehouse, delivery = base
    text = (warehouse.folder(delivery) / MANIFEST).read_text()
    assert warehouse.key.decode() not in text


# --- pseudonyms ----------------------------------------------------------------------------

CLEAR_IDS = ["100234", "100781", "101502"]


def patient_keys(warehouse, delivery) -> list[str]:
    return warehouse.table(delivery, "patients").sort("source_row").get_column(
        "patient_key").to_list()


def test_pseudonym_is_hmac_sha256_of_site_and_id(base):
    _, warehouse, delivery = base
    expected = [
        hmac.new(KEY, f"{SITE}\x1f{pid}".encode(), hashlib.sha256).hexdigest()
        for pid in CLEAR_IDS
    ]
    assert patient_keys(warehouse, delivery) == expected
    for key, clear in zip(expected, CLEAR_IDS, strict=True):
        assert re.fullmatch(r"[0-9a-f]{64}", key) and key != clear


def test_pseudonyms_are_the_same_in_every_table(base):
    _, warehouse, delivery = base
    first_patient = pseudonym(KEY, SITE, "100234")
    for table in ("ivig_cycles", "treatments", "assessments", "adverse_events"):
        keys = warehouse.table(delivery, table).get_column("patient_key")
        assert first_patient in keys.to_list(), table
        assert set(keys) <= set(patient_keys(warehouse, delivery)), table


def test_pseudonyms_are_stable_across_runs_with_the_same_key(base, new_warehouse, tmp_path):
    _, first_run, delivery = base
    second_run = new_warehouse(tmp_path / "warehouse-2", KEY)
    second_run.land(delivery)
    assert patient_keys(second_run, delivery) == patient_keys(first_run, delivery)


def test_same_id_at_two_sites_gets_two_pseudonyms(base, make_delivery, tmp_path):
    extract, warehouse, one = base
    other = make_delivery(tmp_path, "h-la-fe", DELIVERY, extract.csv_tables())
    warehouse.land(other)
    assert set(patient_keys(warehouse, one)).isdisjoint(patient_keys(warehouse, other))


def test_pseudonym_does_not_confuse_site_and_id_boundaries(pseudonym_key):
    assert pseudonym(pseudonym_key, "h-1", "23") != pseudonym(pseudonym_key, "h-12", "3")
    assert pseudonym(pseudonym_key, "hp", "1") != pseudonym(b"x" * 32, "hp", "1")


def test_load_key_refuses_a_missing_key(monkeypatch):
    monkeypatch.delenv("IVIG_PSEUDONYM_KEY", raising=False)
    with pytest.raises(MissingKeyError, match="IVIG_PSEUDONYM_KEY is not set"):
        load_key()


def test_load_key_refuses_an_empty_key(monkeypatch):
    monkeypatch.setenv("IVIG_PSEUDONYM_KEY", "")
    with pytest.raises(MissingKeyError, match="IVIG_PSEUDONYM_KEY is not set"):
        load_key()


def test_load_key_refuses_a_short_key(monkeypatch):
    monkeypatch.setenv("IVIG_PSEUDONYM_KEY", "x" * 15)
    with pytest.raises(MissingKeyError, match=r"too short \(15 characters; at least 16\)"):
        load_key()


def test_load_key_returns_the_key_from_the_environment(pseudonym_key, monkeypatch):
    assert load_key() == pseudonym_key
    monkeypatch.setenv("IVIG_PSEUDONYM_KEY", "k" * 16)
    assert load_key() == b"k" * 16


# --- age at index --------------------------------------------------------------------------


def age(birth: date, index: date) -> float:
    return round((index - birth).days / 365.25, 1)


def ages(warehouse, delivery) -> list[float | None]:
    return warehouse.table(delivery, "patients").sort("source_row").get_column(
        "age_at_index").to_list()


def test_age_at_index_from_birth_to_first_landed_cycle(base):
    """100234's earliest cycle (2021-01-01) is quarantined: her index is 2021-03-01."""
    _, warehouse, delivery = base
    assert ages(warehouse, delivery) == [
        age(date(1961, 4, 17), date(2021, 3, 1)),
        age(date(1955, 11, 2), date(2021, 5, 10)),
        None,  # 101502 has no cycle
    ]
    assert ages(warehouse, delivery)[:2] == [59.9, 65.5]
    assert "birth_date" not in warehouse.table(delivery, "patients").columns


def test_age_at_index_uses_the_earliest_cycle_not_the_first_listed(extract, make_delivery,
                                                                   warehouse, tmp_path):
    extract.append("ivig_cycles", patient_id="100781", cycle_number="5",
                   start_date="2021-05-01")
    extract.tables["ivig_cycles"][3][3] = "0"  # and 100781's listed first cycle: dose 0
    extract.append("ivig_cycles", patient_id="101502", cycle_number="1", start_date="2022-01-01")
    extract.append("ivig_cycles", patient_id="101502", cycle_number="2", start_date="2022-02-01",
                   dose_g="0")
    delivery = make_delivery(tmp_path, SITE, DELIVERY, extract.csv_tables())
    warehouse.land(delivery)
    assert ages(warehouse, delivery) == [
        age(date(1961, 4, 17), date(2021, 3, 1)),
        age(date(1955, 11, 2), date(2021, 5, 1)),
        age(date(1970, 8, 23), date(2022, 1, 1)),
    ]


def test_age_at_index_null_when_every_cycle_is_quarantined(extract, make_delivery, warehouse,
                                                           tmp_path):
    extract.tables["ivig_cycles"][3][3] = "0"  # 100781's only cycle: dose 0
    delivery = make_delivery(tmp_path, SITE, DELIVERY, extract.csv_tables())
    warehouse.land(delivery)
    assert ages(warehouse, delivery)[1] is None


AGE_DAYS = [365, 366, 3652, 21915, 21933, 21934, 36524]


def test_age_at_index_is_days_over_365_25_rounded_to_one_decimal(extract, make_delivery,
                                                                 warehouse, tmp_path):
    first_cycle = date(2021, 3, 1)
    for i, days in enumerate(AGE_DAYS):
        pid = f"40000{i}"
        birth = first_cycle - timedelta(days=days)
        extract.append("patients", patient_id=pid, birth_date=birth.strftime("%d/%m/%Y"))
        extract.append("ivig_cycles", patient_id=pid, cycle_number="1",
                       start_date=first_cycle.isoformat())
    delivery = make_delivery(tmp_path, SITE, DELIVERY, extract.csv_tables())
    warehouse.land(delivery)
    assert ages(warehouse, delivery)[3:] == [round(d / 365.25, 1) for d in AGE_DAYS]
    assert ages(warehouse, delivery)[3:] == [1.0, 1.0, 10.0, 60.0, 60.0, 60.1, 100.0]


# --- discovery -----------------------------------------------------------------------------


def test_discovery_finds_deliveries_in_protocol_order(tmp_path):
    inbox = tmp_path / "inbox"
    for site, delivery in [("h-la-fe", "2026-11-24"), ("h-la-fe", "2026-10-01"),
                           ("h-clinic", "2026-11-24"), (".tmp", "x"), ("h-clinic", ".partial")]:
        (inbox / site / delivery).mkdir(parents=True)
    (inbox / "README.txt").write_text("no")
    (inbox / "h-clinic" / "notes.txt").write_text("no")
    found = discover_deliveries(inbox)
    assert [(d.site_id, d.delivery_id) for d in found] == [
        ("h-clinic", "2026-11-24"), ("h-la-fe", "2026-10-01"), ("h-la-fe", "2026-11-24")]
    assert found[0].path == inbox / "h-clinic" / "2026-11-24"


def test_discovery_refuses_a_missing_inbox(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        discover_deliveries(tmp_path / "nowhere")


def test_quarantine_table_has_contract_columns(base):
    _, warehouse, delivery = base
    assert warehouse.quarantine(delivery).schema == pl.Schema({
        "site_id": pl.Utf8, "delivery_id": pl.Utf8, "table_name": pl.Utf8,
        "source_file": pl.Utf8, "source_row": pl.Int32, "column_name": pl.Utf8,
        "rule": pl.Utf8, "value": pl.Utf8, "detail": pl.Utf8,
    })
