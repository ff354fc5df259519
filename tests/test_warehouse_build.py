"""The warehouse file (protocol §2, §8; CONTRACT.md): which delivery is in force per site,
what `landed` and `quality` hold, and publishing that never disturbs a reader.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb
import polars as pl
import pytest

from ivig_platform.landing.land import Manifest
from ivig_platform.warehouse.build import RunInfo, build_database, delivery_status
from ivig_platform.warehouse.publish import build_path, publish, published_path

RUN = RunInfo(run_id="test-run", started_at=datetime(2026, 11, 25, 9, 0, tzinfo=UTC),
              inbox="/inbox")

SITE_DELIVERY_COLUMNS = [
    "site_id", "delivery_id", "status", "reason", "rows_landed", "rows_quarantined",
    "source_rows", "content_sha256", "landed_at", "delivery_date", "dropped_columns",
    "rejected_by",
]
QUARANTINE_COLUMNS = [
    "site_id", "delivery_id", "table_name", "source_file", "source_row", "column_name", "rule",
    "value", "detail",
]
PROVENANCE = [
    ("site_id", "VARCHAR"), ("delivery_id", "VARCHAR"), ("source_file", "VARCHAR"),
    ("source_row", "INTEGER"), ("file_sha256", "VARCHAR"), ("loaded_at", "TIMESTAMP"),
]
# CONTRACT.md, schema `landed`: columns and types, provenance last.
LANDED_COLUMNS = {
    "patients": [("patient_key", "VARCHAR"), ("sex", "VARCHAR"), ("age_at_index", "DOUBLE"),
                 ("ssc_subtype", "VARCHAR"), ("overlap", "VARCHAR[]"),
                 ("indication", "VARCHAR[]"), ("ivig_stop_reason", "VARCHAR")],
    "ivig_cycles": [("patient_key", "VARCHAR"), ("cycle_number", "INTEGER"),
                    ("start_date", "DATE"), ("dose_g", "DOUBLE"), ("weight_kg", "DOUBLE")],
    "treatments": [("patient_key", "VARCHAR"), ("drug", "VARCHAR"), ("start_date", "DATE"),
                   ("end_date", "DATE")],
    "assessments": [("patient_key", "VARCHAR"), ("assessment_date", "DATE"),
                    ("measure", "VARCHAR"), ("value", "DOUBLE"),
                    ("value_as_reported", "VARCHAR"), ("unit_as_reported", "VARCHAR")],
    "adverse_events": [("patient_key", "VARCHAR"), ("onset_date", "DATE"), ("term", "VARCHAR"),
                       ("severity", "VARCHAR"), ("serious", "BOOLEAN"), ("related", "VARCHAR"),
                       ("action", "VARCHAR")],
}


def manifest(site: str, delivery: str, status: str = "landed", **fields) -> Manifest:
    values = dict(
        site_id=site, delivery_id=delivery, status=status,
        reason="missing_table: missing treatments.csv" if status == "rejected" else None,
        content_sha256="0" * 64, landing_version="1", key_fingerprint="f" * 16,
        delivery_date=delivery, landed_at="2026-11-25T09:30:00+00:00",
    )
    values.update(fields)
    return Manifest(**values)


def statuses(frame: pl.DataFrame) -> dict[tuple[str, str], str]:
    return {(r["site_id"], r["delivery_id"]): r["status"] for r in frame.iter_rows(named=True)}


# --- delivery_status -----------------------------------------------------------------------


def test_newest_landed_delivery_is_accepted_and_older_superseded():
    status = delivery_status([
        manifest("h-la-paz", "2026-11-24"), manifest("h-la-paz", "2026-09-01"),
        manifest("h-la-paz", "2026-10-01"),
    ])
    assert statuses(status) == {
        ("h-la-paz", "2026-09-01"): "superseded",
        ("h-la-paz", "2026-10-01"): "superseded",
        ("h-la-paz", "2026-11-24"): "accepted",
    }
    assert status.get_column("delivery_id").to_list() == [
        "2026-09-01", "2026-10-01", "2026-11-24"]


def test_rejected_delivery_stays_rejected_whatever_its_order():
    status = delivery_status([
        manifest("h-la-fe", "2026-08-01", "rejected"),
        manifest("h-la-fe", "2026-10-01"),
    ])
    assert statuses(status) == {
        ("h-la-fe", "2026-08-01"): "rejected", ("h-la-fe", "2026-10-01"): "accepted"}


def test_site_whose_newest_delivery_is_rejected_keeps_its_older_accepted():
    status = delivery_status([
        manifest("h-la-fe", "2026-09-01"), manifest("h-la-fe", "2026-10-01"),
        manifest("h-la-fe", "2026-11-24", "rejected"),
    ])
    assert statuses(status) == {
        ("h-la-fe", "2026-09-01"): "superseded",
        ("h-la-fe", "2026-10-01"): "accepted",
        ("h-la-fe", "2026-11-24"): "rejected",
    }


def test_site_with_only_rejected_deliveries_has_none_accepted():
    status = delivery_status([
        manifest("h-clinic", "2026-10-01", "rejected"),
        manifest("h-clinic", "2026-11-24", "rejected"),
        manifest("h-la-paz", "2026-01-01"),
    ])
    assert statuses(status) == {
        ("h-clinic", "2026-10-01"): "rejected", ("h-clinic", "2026-11-24"): "rejected",
        ("h-la-paz", "2026-01-01"): "accepted",
    }


def test_sites_are_judged_independently():
    status = delivery_status([
        manifest("h-a", "2026-11-24"), manifest("h-b", "2026-01-01"),
        manifest("h-b", "2025-12-31"),
    ])
    assert statuses(status) == {
        ("h-a", "2026-11-24"): "accepted", ("h-b", "2025-12-31"): "superseded",
        ("h-b", "2026-01-01"): "accepted",
    }


def test_site_delivery_row_carries_the_manifest():
    row = delivery_status([
        manifest("h-a", "2026-11-24", source_rows=10, rows_landed=8, rows_quarantined=2,
                 dropped_columns=["DNI", "Nombre"], content_sha256="a" * 64),
        manifest("h-a", "2026-12-01", "rejected", delivery_date="2026-12-01"),
    ]).row(0, named=True)
    assert list(row) == SITE_DELIVERY_COLUMNS
    assert row == {
        "site_id": "h-a", "delivery_id": "2026-11-24", "status": "accepted", "reason": None,
        "rows_landed": 8, "rows_quarantined": 2, "source_rows": 10,
        "content_sha256": "a" * 64, "landed_at": datetime(2026, 11, 25, 9, 30, tzinfo=UTC),
        "delivery_date": date(2026, 11, 24), "dropped_columns": "DNI, Nombre",
        "rejected_by": None,
    }


def test_rejected_by_tells_a_held_back_delivery_from_a_landing_rejection():
    # §8's status stays three-valued; rejected_by says who rejected (states.py: held_back)
    status = delivery_status(
        [manifest("h-a", "2026-10-01"), manifest("h-a", "2026-11-01"),
         manifest("h-a", "2026-12-01", "rejected", reason="missing_table: x")],
        held_back={("h-a", "2026-11-01"): "quality_gate: 1 error check(s) failed: x"})
    got = {r["delivery_id"]: (r["status"], r["rejected_by"]) for r in status.to_dicts()}
    assert got == {"2026-10-01": ("accepted", None),
                   "2026-11-01": ("rejected", "quality_gate"),
                   "2026-12-01": ("rejected", "landing")}


def test_no_manifests_give_an_empty_site_delivery():
    status = delivery_status([])
    assert status.is_empty() and status.columns == SITE_DELIVERY_COLUMNS


# --- build_database ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def landed(tmp_path_factory, new_extract, make_delivery, new_warehouse):
    """Three sites, five deliveries, landed for real.

    h-la-paz: 2026-10-01 (three patients) superseded by 2026-11-24 (four patients);
    h-la-fe: 2026-09-01 in force, 2026-11-24 rejected (no treatments.csv);
    h-clinic: a single rejected delivery (no patients.csv). Each landed delivery has one
    quarantined cycle.
    """
    tmp = tmp_path_factory.mktemp("build")
    warehouse = new_warehouse(tmp / "warehouse", b"build-test-key-0123456789abcdef")
    manifests = []

    def deliver(site, delivery, extra_patient=False, drop=None):
        extract = new_extract()
        extract.append("ivig_cycles", dose_g="401")
        if extra_patient:
            extract.append("patients", patient_id="104444")
        tables = extract.csv_tables()
        if drop:
            del tables[drop]
        manifests.append(warehouse.land(make_delivery(tmp, site, delivery, tables)))

    deliver("h-la-paz", "2026-10-01")
    deliver("h-la-paz", "2026-11-24", extra_patient=True)
    deliver("h-la-fe", "2026-09-01")
    deliver("h-la-fe", "2026-11-24", drop="treatments")
    deliver("h-clinic", "2026-11-24", drop="patients")
    return warehouse, manifests


@pytest.fixture(scope="module")
def built(landed, tmp_path_factory):
    warehouse, manifests = landed
    path = tmp_path_factory.mktemp("built") / "ivig.duckdb"
    build_database(path, warehouse.path, manifests, RUN)
    con = duckdb.connect(str(path), read_only=True)
    yield con
    con.close()


def query(con, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def test_build_records_every_delivery_in_site_delivery(built):
    rows = query(built, "SELECT site_id, delivery_id, status, split_part(reason, ':', 1), "
                        "rows_landed, rows_quarantined, source_rows FROM quality.site_delivery "
                        "ORDER BY site_id, delivery_id")
    assert rows == [
        ("h-clinic", "2026-11-24", "rejected", "missing_table", 0, 0, 0),
        ("h-la-fe", "2026-09-01", "accepted", None, 14, 1, 15),
        ("h-la-fe", "2026-11-24", "rejected", "missing_table", 0, 0, 0),
        ("h-la-paz", "2026-10-01", "superseded", None, 14, 1, 15),
        ("h-la-paz", "2026-11-24", "accepted", None, 15, 1, 16),
    ]


def test_build_lands_only_the_accepted_deliveries_rows(built):
    for table in LANDED_COLUMNS:
        rows = query(built, f"SELECT site_id, delivery_id, count(*) FROM landed.{table} "
                            "GROUP BY ALL ORDER BY ALL")
        assert [(s, d) for s, d, _ in rows] == [("h-la-fe", "2026-09-01"),
                                                ("h-la-paz", "2026-11-24")], table
    assert query(built, "SELECT site_id, count(*) FROM landed.patients GROUP BY ALL "
                        "ORDER BY ALL") == [("h-la-fe", 3), ("h-la-paz", 4)]


def test_build_counts_match_the_accepted_manifests(built):
    landed = sum(
        query(built, f"SELECT count(*) FROM landed.{t}")[0][0] for t in LANDED_COLUMNS)
    assert landed == query(built, "SELECT sum(rows_landed) FROM quality.site_delivery "
                                  "WHERE status = 'accepted'")[0][0]


def test_build_quarantine_holds_accepted_and_superseded_deliveries(built):
    rows = query(built, "SELECT site_id, delivery_id, table_name, source_file, source_row, "
                        "column_name, rule, value FROM quality.quarantine ORDER BY ALL")
    assert rows == [
        ("h-la-fe", "2026-09-01", "ivig_cycles", "ivig_cycles.csv", 4, "dose_g",
         "out_of_range", "401"),
        ("h-la-paz", "2026-10-01", "ivig_cycles", "ivig_cycles.csv", 4, "dose_g",
         "out_of_range", "401"),
        ("h-la-paz", "2026-11-24", "ivig_cycles", "ivig_cycles.csv", 4, "dose_g",
         "out_of_range", "401"),
    ]


def columns(con, schema: str, table: str) -> list[tuple[str, str]]:
    return query(con, "SELECT column_name, data_type FROM information_schema.columns "
                      f"WHERE table_schema = '{schema}' AND table_name = '{table}' "
                      "ORDER BY ordinal_position")


@pytest.mark.parametrize("table", list(LANDED_COLUMNS))
def test_landed_tables_have_the_contract_columns(table, built):
    got = columns(built, "landed", table)
    assert [name for name, _ in got] == [n for n, _ in LANDED_COLUMNS[table] + PROVENANCE]
    # loaded_at is UTC; DuckDB calls Polars' UTC datetimes TIMESTAMP WITH TIME ZONE.
    types = dict(got)
    assert types.pop("loaded_at") in ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE")
    expected = dict(LANDED_COLUMNS[table] + PROVENANCE)
    del expected["loaded_at"]
    assert types == expected


def test_quality_tables_have_the_contract_columns(built):
    assert [n for n, _ in columns(built, "quality", "site_delivery")] == SITE_DELIVERY_COLUMNS
    assert [n for n, _ in columns(built, "quality", "quarantine")] == QUARANTINE_COLUMNS
    types = dict(columns(built, "quality", "site_delivery"))
    assert types["delivery_date"] == "DATE"
    assert types["landed_at"] in ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE")


def test_landed_rows_keep_their_provenance(built):
    row = query(built, "SELECT source_file, source_row, length(file_sha256), loaded_at "
                       "FROM landed.ivig_cycles WHERE site_id = 'h-la-fe' "
                       "ORDER BY source_row LIMIT 1")[0]
    assert row[:3] == ("ivig_cycles.csv", 1, 64)
    assert row[3] == datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def test_build_without_any_accepted_delivery_has_empty_tables(tmp_path):
    path = tmp_path / "ivig.duckdb"
    status = build_database(path, tmp_path, [manifest("h-a", "2026-11-24", "rejected")], RUN)
    assert status.get_column("status").to_list() == ["rejected"]
    con = duckdb.connect(str(path), read_only=True)
    try:
        for table in LANDED_COLUMNS:
            assert query(con, f"SELECT count(*) FROM landed.{table}") == [(0,)]
        assert query(con, "SELECT count(*) FROM quality.quarantine") == [(0,)]
        assert [n for n, _ in columns(con, "landed", "patients")][:1] == ["patient_key"]
    finally:
        con.close()


def test_build_reads_a_delivery_with_an_odd_folder_name(new_extract, make_delivery,
                                                        warehouse, tmp_path):
    odd = "entrega nov (corregida) [v2]*?"
    delivery = make_delivery(tmp_path, "h-a", odd, new_extract().csv_tables())
    manifests = [warehouse.land(delivery), manifest("h-a", "2026-10-01", "rejected")]
    path = tmp_path / "ivig.duckdb"
    build_database(path, warehouse.path, manifests, RUN)
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert query(con, "SELECT delivery_id, count(*) FROM landed.patients GROUP BY ALL") == [
            (odd, 3)]
    finally:
        con.close()


# --- publish -------------------------------------------------------------------------------


def test_publish_keeps_old_readers_reading_the_old_file(landed, tmp_path):
    warehouse, manifests = landed
    target = tmp_path / "published"
    first = build_path(target, "run-1")
    build_database(first, warehouse.path, manifests[:1], RUN)
    publish(first, target)

    reader = duckdb.connect(str(published_path(target)), read_only=True)
    try:
        assert query(reader, "SELECT count(*) FROM landed.patients") == [(3,)]
        second = build_path(target, "run-2")
        build_database(second, warehouse.path, manifests, RUN)
        publish(second, target)
        assert not second.exists()
        # The old connection still reads the old file, whole.
        assert query(reader, "SELECT count(*) FROM landed.patients") == [(3,)]
        assert query(reader, "SELECT count(*) FROM quality.site_delivery") == [(1,)]
    finally:
        reader.close()
    fresh = duckdb.connect(str(published_path(target)), read_only=True)
    try:
        assert query(fresh, "SELECT count(*) FROM landed.patients") == [(7,)]
        assert query(fresh, "SELECT count(*) FROM quality.site_delivery") == [(5,)]
    finally:
        fresh.close()


def test_publish_keeps_the_last_versions(landed, tmp_path):
    warehouse, manifests = landed
    target = tmp_path / "published"
    for i in range(3):
        built_file = build_path(target, f"run-{i}")
        build_database(built_file, warehouse.path, manifests[: i + 1], RUN)
        publish(built_file, target, keep=2)
    versions = sorted((target / "versions").glob("ivig-*.duckdb"))
    assert len(versions) == 2
    assert versions[-1].stat().st_ino == published_path(target).stat().st_ino
