"""`ivig demo` end to end, as a user runs it: a real process, Prefect's local server,
the published DuckDB file — then what the protocol promises about that file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import polars.selectors as cs
import pytest

pytestmark = pytest.mark.e2e

IVIG = str(Path(sys.executable).parent / "ivig")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [IVIG, *args], capture_output=True, text=True, timeout=900,
        env=env or os.environ.copy(),
    )


# `demo` (one `ivig demo` per session, shared with the provenance tests): conftest.py


@pytest.fixture(scope="session")
def published(demo):
    folder, _, _ = demo
    con = duckdb.connect(str(folder / "warehouse" / "ivig.duckdb"), read_only=True)
    yield con
    con.close()


def test_demo_publishes_and_reports_every_site(demo):
    _, result, _ = demo
    assert "published" in result.stdout
    assert "18 sites accepted" in result.stdout


def test_site_delivery_lists_every_delivery_with_its_status(demo, published):
    _, _, truth = demo
    rows = published.execute(
        "SELECT site_id, delivery_id, status, split_part(reason, ':', 1), source_rows "
        "FROM quality.site_delivery"
    ).fetchall()
    expected = {
        (site, delivery, status, code, source_rows)
        for site, delivery, status, code, source_rows in truth.expected_deliveries
    }
    assert {(s, d, st, c) for s, d, st, c, _ in rows} == {
        (s, d, st, c) for s, d, st, c, _ in expected
    }
    accepted_sites = {s for s, _, st, _, _ in rows if st == "accepted"}
    assert len(accepted_sites) == 18
    assert {"superseded", "rejected"} <= {st for _, _, st, _, _ in rows}


def test_every_source_row_is_landed_or_quarantined(published):
    mismatched = published.execute(
        "SELECT site_id, delivery_id FROM quality.site_delivery "
        "WHERE status <> 'rejected' AND rows_landed + rows_quarantined <> source_rows"
    ).fetchall()
    assert mismatched == []
    per_delivery = published.execute(
        "SELECT d.site_id, d.delivery_id, d.rows_quarantined, count(q.rule) "
        "FROM quality.site_delivery d LEFT JOIN quality.quarantine q USING (site_id, delivery_id) "
        "WHERE d.status <> 'rejected' GROUP BY ALL"
    ).fetchall()
    assert all(expected == found for _, _, expected, found in per_delivery)


def test_quarantine_holds_exactly_the_injected_bad_rows(demo, published):
    _, _, truth = demo
    found = set(published.execute(
        "SELECT site_id, delivery_id, table_name, source_row, rule FROM quality.quarantine"
    ).fetchall())
    assert found == set(truth.expected_quarantine)


def test_landed_cohort_matches_the_published_counts(published):
    # Patients with a landed cycle are the analysed cohort (§7); the demo also lands one
    # patient whose every cycle is quarantined, who stays out of the analyses.
    n, women, men, diffuse, limited = published.execute(
        "SELECT count(*), count(*) FILTER (sex = 'F'), count(*) FILTER (sex = 'M'), "
        "count(*) FILTER (ssc_subtype = 'diffuse'), count(*) FILTER (ssc_subtype = 'limited') "
        "FROM landed.patients WHERE age_at_index IS NOT NULL"
    ).fetchone()
    assert (n, women, men, diffuse, limited) == (78, 64, 14, 46, 32)
    mean_age = published.execute("SELECT avg(age_at_index) FROM landed.patients").fetchone()[0]
    assert mean_age == pytest.approx(58.5, rel=0.01)
    events, patients = published.execute(
        "SELECT count(*), count(DISTINCT patient_key) FROM landed.adverse_events"
    ).fetchone()
    assert (events, patients) == (12, 10)


def test_landed_tables_hold_the_clean_rows(demo, published):
    _, _, truth = demo
    for table, frame in truth.clean.items():
        count = published.execute(f"SELECT count(*) FROM landed.{table}").fetchone()[0]
        assert count == frame.height, table


def test_ck_is_landed_in_units_per_litre(published):
    converted = published.execute(
        "SELECT count(*) FROM landed.assessments WHERE measure = 'ck' "
        "AND lower(unit_as_reported) LIKE '%kat%' "
        "AND abs(value - 60 * replace(value_as_reported, ',', '.')::DOUBLE) > 0.01"
    ).fetchone()[0]
    assert converted == 0


REPO = Path(__file__).resolve().parents[1]


def _identifiers(truth) -> list[str]:
    """Identifiers to look for; a lone first name or surname that is also part of a
    hospital's name in the site registry ("Rocío" in Virgen del Rocío) is not a leak."""
    registry = (REPO / "dbt_project" / "seeds" / "reference" / "site_registry.csv").read_text()
    return sorted({
        str(i) for i in truth.identifiers if len(str(i)) >= 4 and str(i) not in registry
    })


# Pseudonyms and file hashes are long hex strings; a 7-digit record number could appear
# inside one by chance, so hex runs are blanked before looking for identifiers.
HEX_RUN = rb"[0-9a-f]{32,}"


def _without_hashes(text: bytes) -> bytes:
    return re.sub(HEX_RUN, b"#", text)


def test_no_direct_identifier_in_any_table_of_the_published_file(demo, published):
    _, _, truth = demo
    identifiers = _identifiers(truth)
    assert identifiers, "the demo must declare its identifiers"
    columns = published.execute(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns "
        "WHERE data_type = 'VARCHAR' OR data_type LIKE '%[]'"
    ).fetchall()
    published.execute("CREATE OR REPLACE TEMP TABLE ids AS SELECT unnest($ids) AS id",
                      {"ids": identifiers})
    for schema, table, column in columns:
        hits = published.execute(
            f'SELECT count(*) FROM "{schema}"."{table}" t, ids '
            f'WHERE contains(regexp_replace(CAST(t."{column}" AS VARCHAR), '
            f"'[0-9a-f]{{32,}}', '#', 'g'), ids.id)"
        ).fetchone()[0]
        assert hits == 0, f"{schema}.{table}.{column} holds a direct identifier"


def test_no_direct_identifier_in_any_file_under_the_warehouse(demo):
    folder, result, truth = demo
    identifiers = _identifiers(truth)
    needles = [i.encode() for i in identifiers]
    leaks = []
    for path in (folder / "warehouse").rglob("*"):
        if not path.is_file() or path.suffix == ".duckdb":
            continue
        if path.suffix == ".parquet":
            frame = pl.read_parquet(path).with_columns(
                cs.by_dtype(pl.List(pl.Utf8)).list.join("|")
            )
            text = frame.write_csv().encode()
        else:
            text = path.read_bytes()
        text = _without_hashes(text)
        leaks += [(str(path), n.decode()) for n in needles if n in text]
    output = _without_hashes((result.stdout + result.stderr).encode())
    leaks += [("ivig demo output", n.decode()) for n in needles if n in output]
    assert leaks == []


def _demo_env(folder: Path) -> dict[str, str]:
    env = os.environ.copy()
    env["IVIG_PSEUDONYM_KEY"] = (folder / ".pseudonym_key").read_text().strip()
    return env


def test_unchanged_inbox_skips_the_refresh_before_prefect_starts(demo):
    folder, _, _ = demo
    published = folder / "warehouse" / "ivig.duckdb"
    before = published.stat().st_ino
    again = run_cli("refresh", "--inbox", str(folder / "inbox"),
                    "--warehouse", str(folder / "warehouse"), env=_demo_env(folder))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing changed since the last publish" in again.stdout
    assert published.stat().st_ino == before


def test_forced_refresh_of_an_unchanged_inbox_does_no_landing_work(demo):
    folder, _, _ = demo
    landing = folder / "warehouse" / "landing"
    before = {p: p.stat().st_mtime_ns for p in landing.rglob("*") if p.is_file()}
    again = run_cli("refresh", "--inbox", str(folder / "inbox"), "--force",
                    "--warehouse", str(folder / "warehouse"), env=_demo_env(folder))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "published" in again.stdout
    after = {p: p.stat().st_mtime_ns for p in landing.rglob("*") if p.is_file()}
    assert after == before


def test_status_shows_every_delivery(demo):
    folder, _, truth = demo
    result = run_cli("status", "--warehouse", str(folder / "warehouse"))
    assert result.returncode == 0, result.stderr
    for site, delivery, status, _, _ in truth.expected_deliveries:
        assert site in result.stdout and delivery in result.stdout and status in result.stdout


def test_refresh_without_key_refuses_with_a_clear_message(tmp_path):
    (tmp_path / "inbox").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "IVIG_PSEUDONYM_KEY"}
    result = run_cli("refresh", "--inbox", str(tmp_path / "inbox"),
                     "--warehouse", str(tmp_path / "wh"), env=env)
    assert result.returncode == 1
    assert "IVIG_PSEUDONYM_KEY" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_marts_reproduce_the_published_efficacy_figures(published):
    rows = published.execute(
        "SELECT measure, baseline_mean, post_mean, n_responders, n_paired "
        "FROM marts.mart_efficacy WHERE subgroup = 'all'"
    ).fetchall()
    means = {m: (b, p) for m, b, p, _, _ in rows}
    assert means["ck"][0] == pytest.approx(1149, rel=0.01)
    assert means["ck"][1] == pytest.approx(217, rel=0.01)
    assert means["mrss"][0] == pytest.approx(15, rel=0.01)
    assert means["mrss"][1] == pytest.approx(13, rel=0.01)
    assert means["ucla_git"][0] == pytest.approx(1.06, rel=0.01)
    assert means["ucla_git"][1] == pytest.approx(0.78, rel=0.01)
    mrc = next((r, n) for m, _, _, r, n in rows if m == "mrc")
    assert 100 * mrc[0] / mrc[1] == pytest.approx(92, abs=2)


def test_table_one_and_safety_are_published(published):
    women = published.execute(
        "SELECT n FROM marts.mart_cohort WHERE subgroup = 'all' AND characteristic = 'sex_female'"
    ).fetchone()[0]
    assert women == 64
    events = published.execute(
        "SELECT n_events, n_patients FROM marts.mart_safety WHERE section = 'overall'"
    ).fetchone()
    assert tuple(events) == (12, 10)


def test_quality_checks_are_queryable_and_docs_are_written(demo, published):
    folder, _, _ = demo
    suites = {s for (s,) in published.execute(
        "SELECT DISTINCT suite FROM quality.check_result").fetchall()}
    assert any(s.startswith("landed.") for s in suites)
    assert any(s.startswith("marts.") for s in suites)
    failed_errors = published.execute(
        "SELECT count(*) FROM quality.check_result c JOIN quality.site_delivery d "
        "USING (site_id, delivery_id) WHERE d.status = 'accepted' "
        "AND c.severity = 'error' AND NOT c.success"
    ).fetchone()[0]
    assert failed_errors == 0
    warehouse = folder / "warehouse"
    assert (warehouse / "report.html").exists()
    assert (warehouse / "docs" / "dbt" / "static_index.html").exists()
    assert (warehouse / "docs" / "data-docs" / "index.html").exists()


def test_site_freshness_counts_from_each_accepted_delivery_date(published):
    """Issue 10 (7): not from the landing time, which made every site 'fresh (0 d)'."""
    rows = published.execute(
        "SELECT f.site_id, f.days_since_accepted_delivery, "
        "cast(timezone('UTC', f.measured_at) AS DATE) - d.delivery_date, f.freshness_status "
        "FROM marts.mart_site_freshness f JOIN quality.site_delivery d "
        "ON d.site_id = f.site_id AND d.status = 'accepted'"
    ).fetchall()
    assert len(rows) == 18
    assert all(days == expected for _, days, expected, _ in rows)
    assert {status for *_, status in rows} != {"fresh"}  # the demo's deliveries span months


def test_every_table_of_the_demo_report_passes_the_disclosure_audit(demo):
    """Issue 10 (8): no <5 of the report can be worked out from its row, column or total."""
    from disclosure_audit import HIDDEN, audit, displayed

    from ivig_platform.report import read_warehouse
    from ivig_platform.report.relations import report_counts
    from ivig_platform.report.sections import sections

    folder, _, _ = demo
    frames = read_warehouse(folder / "warehouse" / "ivig.duckdb").frames
    rendered = sections(frames)
    audit(report_counts(frames), rendered)
    assert HIDDEN in displayed(rendered).values()
    assert HIDDEN in (folder / "warehouse" / "report.html").read_text(encoding="utf-8")
