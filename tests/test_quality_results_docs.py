"""What the gates leave behind: quality.check_result rows, artifacts and the Data Docs site."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
from quality_samples import landed_site, marts_from_sites

from ivig_platform.quality import (
    GateResult,
    build_data_docs,
    check_results_frame,
    failure_rows,
    gate_markdown,
    pool_stats,
    run_landing_gate,
    run_mart_gate,
)

RUN = "20261124T090000-abc123"
COLUMNS = [
    "run_id", "site_id", "delivery_id", "suite", "expectation", "column_name", "category",
    "severity", "threshold", "success", "observed_value", "unexpected_count",
    "unexpected_percent", "element_count",
]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def results() -> list[GateResult]:
    """A refresh in miniature: clean sites, a sparse site (warn), a newer delivery of a clean
    site with CK in the wrong unit (error, held back), then the marts of the sites in force.
    The pool holds the newer delivery, as a refresh would before knowing its verdict."""
    sites = {"h01": landed_site("h01", seed=1), "h02": landed_site("h02", seed=2),
             "h03": landed_site("h03", sparse=True), "h04": landed_site("h04", seed=4)}
    newer = landed_site("h01", "2026-12-01", seed=1, ck_scale=1 / 60)
    pool = pool_stats({**sites, "h01": newer})
    gates = [run_landing_gate(s, "2026-11-24", t, pool, RUN) for s, t in sites.items()]
    gates.append(run_landing_gate("h01", "2026-12-01", newer, pool, RUN))
    gates.append(run_mart_gate(marts_from_sites(sites), RUN))
    return gates


def test_gate_verdicts_of_the_miniature_refresh(results) -> None:
    assert [g.verdict for g in results] == [
        "passed", "passed", "passed with warnings", "passed", "held back", "passed"]
    held = results[4]
    assert held.reason.startswith("quality_gate: 1 error check(s) failed: landed.assessments")


def test_check_results_frame_has_the_check_result_columns(results) -> None:
    frame = check_results_frame(results)
    assert frame.columns == COLUMNS
    assert frame.schema["success"] == pl.Boolean and frame.schema["threshold"] == pl.Float64
    assert frame.schema["unexpected_count"] == pl.Int64
    assert frame.schema["observed_value"] == pl.Utf8
    assert frame.height == sum(len(g.outcomes) for g in results)
    assert frame.get_column("run_id").unique().to_list() == [RUN]
    marts = frame.filter(pl.col("suite").str.starts_with("marts."))
    assert marts.get_column("site_id").null_count() == marts.height
    failed = frame.filter(~pl.col("success")).select("site_id", "delivery_id", "severity")
    assert ("h01", "2026-12-01", "error") in failed.rows()
    assert ("h03", "2026-11-24", "warn") in failed.rows()
    assert set(frame.get_column("category").unique()) == {
        "conformance", "completeness", "plausibility"}
    extended = check_results_frame(results, extended=True)
    assert extended.columns == [*COLUMNS, "check_id", "check_type", "gate"]
    assert check_results_frame([]).columns == COLUMNS


def test_artifact_helpers(results) -> None:
    text = gate_markdown(results, Path("/w/data_docs/index.html"))
    assert "| h01/2026-12-01 | held back | " in text and "| marts | passed |" in text
    rows = failure_rows(results)
    assert {r["severity"] for r in rows} == {"error", "warn"}
    assert all(set(r) >= {"gate", "suite", "check", "column", "observed"} for r in rows)


def _hrefs(page: Path) -> list[str]:
    return re.findall(r'href="([^"#]+)"', page.read_text(encoding="utf-8"))


def test_build_data_docs_writes_a_static_offline_site(results, tmp_path: Path) -> None:
    docs = tmp_path / "warehouse" / "data_docs"
    index = build_data_docs(results, docs)
    assert index == docs / "index.html" and index.exists()
    text = index.read_text(encoding="utf-8")
    links = [h for h in _hrefs(index) if h.startswith("validations/")]
    # one validation page per gate run and suite, each linked from the index and present
    assert len(links) == sum(len(g.runs) for g in results)
    for link in links:
        assert (docs / link).exists(), link
    suites = [h for h in _hrefs(index) if h.startswith("expectations/")]
    assert len(set(suites)) == 14 and all((docs / h).exists() for h in suites)
    assert "held back" in text and "Gate runs" in text
    for page in docs.rglob("*.html"):  # nothing is fetched from the internet
        html = page.read_text(encoding="utf-8")
        assert not re.search(r'<(script|link)[^>]+(src|href)="https?://', html), page
    # a rebuild replaces the site whole and leaves nothing beside it
    build_data_docs(results[:1], docs)
    assert len([h for h in _hrefs(index) if h.startswith("validations/")]) == len(results[0].runs)
    assert sorted(p.name for p in docs.parent.iterdir()) == ["data_docs"]


DEAD_WIDGETS = ("Clear Filters", "Validation Filter", "Show more info", 'data-toggle="tab"',
                'data-toggle="collapse"', 'data-toggle="buttons"')


def test_data_docs_pages_have_no_dead_widgets_and_their_styles(results, tmp_path) -> None:
    """Offline, GX's tabs, filters and toggles do nothing (issue 14: two orphan "Clear
    Filters" buttons); every page carries the stylesheet that lays it out, and every local
    link or image of it (GX's favicon path was one level short) is there."""
    docs = tmp_path / "data_docs"
    build_data_docs(results, docs)
    pages = sorted(docs.rglob("*.html"))
    assert any("validations" in p.parts for p in pages)
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert [w for w in DEAD_WIDGETS if w in text] == [], page
        assert text.count('id="ivig-offline-style"') == 1 and ".row{display:flex" in text
        for target in re.findall(r'(?:href|src)="([^"#:]+)"', text):
            assert (page.parent / target).resolve().exists(), (page, target)
    notes = (docs / "expectations" / "landed" / "patients.html").read_text(encoding="utf-8")
    assert "Notes:" in notes  # the notes are shown, not behind a toggle


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_data_docs_render_in_headless_chromium(results, tmp_path: Path) -> None:
    index = build_data_docs(results, tmp_path / "data_docs")
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--no-first-run", "--window-size=1280,900"]
    dom = subprocess.run([*flags, "--dump-dom", index.as_uri()], capture_output=True,
                         text=True, timeout=90)
    assert "Gate runs" in dom.stdout and "h01/2026-12-01" in dom.stdout
    assert "landed.patient_windows" in dom.stdout
    shot = tmp_path / "gx_docs.png"
    subprocess.run([*flags, f"--screenshot={shot}", index.as_uri()], capture_output=True,
                   timeout=90)
    assert shot.exists() and shot.stat().st_size > 10_000
