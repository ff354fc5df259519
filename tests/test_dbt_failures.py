"""A broken build file must fail the build (so the caller keeps the previous publish)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
from dbt_fixtures import build_fixture_database, inject_duplicate_patient

from ivig_platform.modeling import build_marts


def test_duplicate_patient_key_fails_the_build_and_releases_the_file(tmp_path):
    fixture = build_fixture_database(tmp_path / "build.duckdb")
    inject_duplicate_patient(fixture.path)

    outcome = build_marts(fixture.path, target_dir=tmp_path / "target", docs_dir=tmp_path / "docs")

    assert outcome.success is False
    failed = {f.name: f for f in outcome.failures}
    assert "unique_stg_landed__patients_patient_key" in failed
    assert failed["unique_stg_landed__patients_patient_key"].status == "fail"
    # everything downstream of the broken contract is skipped, marts included
    assert "model.ivig.dim_patient" in outcome.skipped
    assert not outcome.docs_generated and not (tmp_path / "docs").exists()
    assert "FAILED" in outcome.summary()

    connection = duckdb.connect(str(fixture.path))  # read-write: no lock left behind
    try:
        tables = connection.execute(
            "select table_name from information_schema.tables where table_schema = 'marts'"
        ).fetchall()
    finally:
        connection.close()
    assert ("dim_patient",) not in tables


def test_missing_build_file_is_an_error_not_a_crash(tmp_path):
    outcome = build_marts(tmp_path / "absent.duckdb", target_dir=tmp_path / "t", docs_dir=None)
    assert outcome.success is False
    assert "not found" in outcome.error


def test_failing_model_fails_the_build_and_stale_sources_only_warn(tmp_path):
    # landed 100 days ago (source freshness: warn after 45 days), and a source table gone
    fixture = build_fixture_database(
        tmp_path / "build.duckdb", now=datetime.now(UTC) - timedelta(days=100)
    )
    connection = duckdb.connect(str(fixture.path))
    connection.execute("drop table landed.treatments")
    connection.close()

    outcome = build_marts(
        fixture.path,
        target_dir=tmp_path / "target",
        docs_dir=None,
        select=["stg_landed__patients", "stg_landed__treatments"],
    )

    assert outcome.success is False
    failed = {f.name: f for f in outcome.failures}
    assert failed["stg_landed__treatments"].resource_type == "model"
    assert failed["stg_landed__treatments"].status == "error"
    assert "treatments" in failed["stg_landed__treatments"].message
    stale = {w.name: w for w in outcome.warnings if w.resource_type == "source"}
    assert stale["landed.patients"].status == "freshness warn"
    assert "110 days" in stale["landed.patients"].message  # site A: 100 + 10 days
