"""dbt's console output in a refresh: no colour codes when it is not a terminal (a refresh's
log, CI) and a stale source said as a warning, not as dbt's red `ERROR STALE` line."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from dbt_fixtures import build_fixture_database

from ivig_platform.modeling import build_marts


def test_stale_sources_are_warnings_without_colour_codes(tmp_path, capfd, caplog):
    # landed 130 days ago: past dbt's error_after (120 days) for the landed source
    fixture = build_fixture_database(
        tmp_path / "build.duckdb", now=datetime.now(UTC) - timedelta(days=130))
    with caplog.at_level(logging.WARNING, logger="ivig.dbt"):
        outcome = build_marts(fixture.path, target_dir=tmp_path / "target", docs_dir=None,
                              select=["stg_landed__patients"])
    console = capfd.readouterr()
    assert outcome.success, outcome.summary()
    printed = console.out + console.err
    assert "\x1b[" not in printed
    assert "ERROR STALE" not in printed
    dbt_log = (tmp_path / "target" / "logs" / "dbt.log").read_text()
    assert "\x1b[" not in dbt_log
    stale = {w.name: w for w in outcome.warnings if w.resource_type == "source"}
    assert stale["landed.patients"].status == "freshness error"
    assert "(warn after 45 days, error after 120 days)" in stale["landed.patients"].message
    logged = [r.getMessage() for r in caplog.records if r.name == "ivig.dbt"]
    assert any(m.startswith("warning: dbt source freshness of landed.patients: newest "
                            "loaded_at 140 days old") for m in logged), logged
    assert "- warning: source landed.patients" in outcome.summary()
