"""The run record (provenance/run_record.py): code, protocol, versions, parameters, inputs
and an order-independent hash of every mart."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ivig_platform.provenance.run_record import (
    code_version,
    read_records,
    record_markdown,
    records_frame,
    run_record,
    table_hashes,
    write_record_table,
)
from ivig_platform.provenance.steps import after_publish

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def _hashes(rows: list[tuple]) -> dict:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    con.execute("CREATE TABLE marts.t (a INTEGER, b VARCHAR, c DOUBLE)")
    con.executemany("INSERT INTO marts.t VALUES (?, ?, ?)", rows)
    out = table_hashes(con)
    con.close()
    return out[0]


def test_a_mart_hash_ignores_row_order_and_sees_any_changed_value():
    rows = [(1, "x", 0.5), (2, None, 1.25), (3, "z", None)]
    first = _hashes(rows)
    assert first["rows"] == 3 and first["table_name"] == "marts.t"
    assert _hashes(list(reversed(rows)))["sha256"] == first["sha256"]
    assert _hashes([(1, "x", 0.5), (2, None, 1.26), (3, "z", None)])["sha256"] != first["sha256"]
    assert _hashes([(1, "x", 0.5), (2, "", 1.25), (3, "z", None)])["sha256"] != first["sha256"]


def test_code_version_is_the_checkout_commit():
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=False).stdout.strip()
    version = code_version()
    assert version["package_version"]
    if head:  # running from a checkout
        assert version["git_commit"] == head
        assert isinstance(version["git_dirty"], bool)


def test_record_names_inputs_protocol_versions_parameters_and_outputs(tmp_path):
    inputs = [{"site_id": "b", "delivery_id": "d", "content_sha256": "2", "status": "accepted"},
              {"site_id": "a", "delivery_id": "d", "content_sha256": "1", "status": "rejected"}]
    outputs = [{"table_name": "marts.t", "rows": 3, "sha256": "f" * 64}]
    record = run_record("r1", T0, inputs, {"force": False, "inbox": "/in"}, outputs, now=T0)
    assert [i["site_id"] for i in record["inputs"]] == ["a", "b"]
    assert record["protocol_version"] == "v1" and len(record["protocol_fingerprint"]) == 64
    assert [p["version"] for p in record["plans"]] == ["v1"]
    names = {v["name"] for v in record["versions"]}
    assert {"python", "duckdb", "dbt-core", "great_expectations", "prefect", "polars"} <= names
    assert {"name": "force", "value": "false"} in record["parameters"]
    assert record["outputs"] == outputs
    markdown = record_markdown(record)
    assert "r1" in markdown and "marts.t" in markdown
    # kept across publishes: the log, copied into each build with the new run last
    after_publish(tmp_path, [], record)
    second = run_record("r2", T0, inputs, {}, outputs, now=T0.replace(hour=3))
    con = duckdb.connect(str(tmp_path / "build.duckdb"))
    con.execute("CREATE SCHEMA quality")
    write_record_table(con, [*read_records(tmp_path), second])
    rows = con.execute("SELECT run_id, len(inputs), outputs[1].rows FROM quality.run_record"
                       ).fetchall()
    con.close()
    assert rows == [("r1", 2, 3), ("r2", 2, 3)]
    assert records_frame([record]).height == 1
