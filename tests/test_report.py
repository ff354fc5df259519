"""The study report (issue 5 item 4) on the synthetic warehouse of ``report_fixtures``:
every section, the §6 small-count rule, no patient key, inline SVG plots, a self-contained
file, graceful absence of optional tables, and a real render in headless Chromium."""

from __future__ import annotations

import re
import struct
import subprocess
import zlib
from datetime import UTC, date, datetime
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest
from report_fixtures import build_report_warehouse, fixture_patient_keys

from ivig_platform.report import build_html, read_warehouse, render_report
from ivig_platform.report import reference as ref
from ivig_platform.report.data import COLUMNS
from ivig_platform.report.formatting import count_percent, fraction_percent, mean_sd, p_value
from ivig_platform.report.plots import (
    MAX_LINES,
    SAMPLE_SEED,
    paired_figures,
    paired_spec,
    paired_values,
)
from ivig_platform.report.privacy import is_small, mask_count

SECTION_IDS = ("summary", "table1", "efficacy", "safety", "paired-plots", "sites", "published")
CHROMIUM = Path("/usr/bin/chromium")


# --------------------------------------------------------------------------- helpers


class _Page(HTMLParser):
    """Collects what the tests look at: ids and their headings, table cells with their
    class, every src/href, tags seen, the text of SVG <text> elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.headings: dict[str, str] = {}
        self.cells: list[tuple[str, str, str]] = []  # (table id, class, text)
        self.rows: list[tuple[str, list[str]]] = []  # (table id, cell texts)
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.tags: set[str] = set()
        self.svg_texts: list[str] = []
        self._section: str | None = None
        self._table: str | None = None
        self._cell: tuple[str, list[str]] | None = None
        self._heading: list[str] | None = None
        self._svg_text: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if "id" in a:
            self.ids.append(a["id"])
        if tag in ("section", "header") and "id" in a:
            self._section = a["id"]
        if tag == "table":
            self._table = a.get("id", "")
        for attribute in ("src", "href", "xlink:href", "data"):
            if attribute in a:
                self.links.append((tag, attribute, a[attribute] or ""))
        if tag == "tr":
            self.rows.append((self._table or "", []))
        if tag == "td":
            self._cell = (a.get("class") or "", [])
        if tag in ("h1", "h2"):
            self._heading = []
        if tag == "text":
            self._svg_text = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            css, parts = self._cell
            self.cells.append((self._table or "", css, "".join(parts).strip()))
            self.rows[-1][1].append("".join(parts).strip())
            self._cell = None
        if tag in ("h1", "h2") and self._heading is not None and self._section:
            self.headings.setdefault(self._section, "".join(self._heading).strip())
            self._heading = None
        if tag == "text" and self._svg_text is not None:
            self.svg_texts.append("".join(self._svg_text).strip())
            self._svg_text = None

    def handle_data(self, data):
        for buffer in (self._cell[1] if self._cell else None, self._heading, self._svg_text):
            if buffer is not None:
                buffer.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.html = html
    return page


def report_notes(page: _Page) -> str:
    """The text of every section's notes (the <li> of <ul class="notes">)."""
    notes = re.findall(r'<ul class="notes">(.*?)</ul>', page.html, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", " ", " ".join(notes)))


#: An integer count of 1-4 inside a cell's text ("3", "3 (15.0%)", "3/20", "rule 3"),
#: not part of a larger number, a decimal or a percentage.
SMALL_COUNT = re.compile(r"(?<![\d.,<])[1-4](?![\d.,%])")


def small_counts(text: str) -> list[str]:
    return SMALL_COUNT.findall(text)


def cell(page: _Page, table: str, row_label: str) -> list[str]:
    """The cell texts of the first row of ``table`` whose first cell is ``row_label``."""
    for table_id, texts in page.rows:
        if table_id == table and texts and texts[0] == row_label:
            return texts
    raise AssertionError(f"no row {row_label!r} in {table}")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    return build_report_warehouse(tmp_path_factory.mktemp("report") / "ivig.duckdb")


@pytest.fixture(scope="module")
def report(warehouse, tmp_path_factory) -> Path:
    return render_report(warehouse, tmp_path_factory.mktemp("out") / "report.html")


@pytest.fixture(scope="module")
def html(report) -> str:
    return report.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def page(html) -> _Page:
    return parse(html)


# --------------------------------------------------------------------------- §6 rule


@pytest.mark.parametrize(
    ("count", "shown"),
    [(0, "0"), (1, "<5"), (2, "<5"), (3, "<5"), (4, "<5"), (5, "5"), (12, "12"),
     (14000, "14,000"), (None, "—"), (3.0, "<5"), (float("nan"), "—")],
)  # fmt: skip
def test_mask_count_shows_1_to_4_as_less_than_5(count, shown):
    assert mask_count(count) == shown
    assert is_small(count) == (shown == "<5")


def test_mask_count_rejects_a_fractional_count():
    with pytest.raises(ValueError):
        mask_count(2.5)


def test_statistics_of_small_counts_are_suppressed():
    assert count_percent(3, 15.0, 20) == "<5"
    assert count_percent(0, 0.0, 20) == "0 (0.0%)"
    assert count_percent(6, 100.0, 6) == "6 (100.0%)"
    assert count_percent(0, 0.0, 3) == "0"  # a percentage of a denominator of 1-4
    assert fraction_percent(13, 15, 86.67) == "13/15 (86.7%)"
    assert fraction_percent(2, 15, 13.3) == "<5/15"
    assert mean_sd(3.1, 0.4, 4) == "n<5"
    assert mean_sd(3.1, 0.4, 5, 2) == "3.10 (0.40)"
    assert p_value(0.0004) == "<0.001"
    assert p_value(0.0312) == "0.031"
    assert p_value(0.01, n=3) == "n<5"


# --------------------------------------------------------------------------- content


def test_every_section_is_present_with_an_id_and_a_heading(page):
    for section_id in SECTION_IDS:
        assert section_id in page.ids
        assert page.headings.get(section_id), f"section {section_id} has no heading"
    for table_id in ("table1-table", "efficacy-table", "safety-table", "site-contribution",
                     "site-deliveries", "site-quality", "published-table"):  # fmt: skip
        assert table_id in page.ids
    assert "IVIG in systemic sclerosis" in page.headings["summary"]


def test_header_shows_the_build_time_and_the_study_size(html):
    assert "2026-11-25 09:30 UTC" in html  # quality.refresh_run.built_at
    assert "Patients analysed" in html


def test_no_count_of_1_to_4_is_displayed(page, html):
    count_cells = [(t, c, text) for t, c, text in page.cells if c in ("count", "num")]
    assert len(count_cells) > 200
    offending = [(t, text) for t, _, text in count_cells if small_counts(text)]
    assert offending == []
    # the header's and the safety section's facts, and the plot subtitles, are counts too
    # (the published-figures summary counts figures, not patients: "3 of 32" stays)
    facts = html.split('<section id="published">')[0]
    for dd in re.findall(r"<dd>(.*?)</dd>", facts):
        assert not small_counts(dd), dd
    subtitles = [t for t in page.svg_texts if "patients with both values" in t]
    assert len(subtitles) == 4
    assert not any(small_counts(t) for t in subtitles)


def test_known_small_counts_are_masked_and_their_percentages_left_out(page):
    # 3 men, all diffuse; the limited column's N is hidden (secondary suppression: see
    # test_report_disclosure.py), so its percentages are left out
    assert cell(page, "table1-table", "Men")[1:] == ["<5", "<5", "0"]
    hospital_c = cell(page, "site-contribution", "hospital-c")
    assert hospital_c[2:4] == ["<5", "<5"]  # 3 patients, landed and analysed
    assert cell(page, "site-quality", "hospital-a")[1] == "out_of_range <5; invalid_date <5"
    # the superseded delivery's quarantined row is not counted with the accepted ones
    assert cell(page, "site-quality", "hospital-b")[1:] == [
        "duplicate_key 7; unknown_patient 5", "13", "<5", "<5",
    ]  # fmt: skip
    anaphylaxis = cell(page, "safety-table", "anaphylaxis")
    assert anaphylaxis[1:] == ["<5", "<5", "n<5"]


def test_site_panel_and_status_show_the_marts_freshness(page, warehouse, tmp_path):
    """Both read marts.mart_site_freshness, whose age counts from the delivery's date."""
    from typer.testing import CliRunner

    from ivig_platform.cli import app

    assert cell(page, "site-contribution", "hospital-c")[-1] == "warn (85 d)"
    assert cell(page, "site-contribution", "hospital-a")[-1] == "fresh (5 d)"
    assert "days since the date of the site's accepted delivery" in report_notes(page)
    (tmp_path / "ivig.duckdb").write_bytes(warehouse.read_bytes())
    result = CliRunner().invoke(app, ["status", "--warehouse", str(tmp_path)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.output.splitlines() if "hospital-c" in x and "accepted" in x]
    assert line.split()[-1] == "warn"  # the freshness column, last
    age = (datetime.now(UTC).date() - date(2026, 9, 1)).days  # the accepted delivery's date
    assert f"{age} d" in line


def test_statistics_of_fewer_than_5_pairs_are_suppressed(page, warehouse):
    efficacy = read_warehouse(warehouse).get("marts.mart_efficacy")
    small = efficacy.filter(pl.col("n_paired").is_between(1, 4))
    assert small.height  # the fixture has such subgroups
    rows = [text for t, _, text in page.cells if t == "efficacy-table"]
    assert rows.count("n<5") >= 5 * small.height


def test_no_patient_key_appears(html):
    keys = fixture_patient_keys()
    assert len(keys) == 21
    for key in keys:
        assert key not in html
        assert key[:12] not in html
    assert not re.search(r"[0-9a-f]{32,}", html)


def test_plots_are_inline_svg(page, html):
    for measure in ("mrc", "ck", "mrss", "ucla_git"):
        block = html.split(f'<figure id="plot-{measure}">', 1)[1].split("</figure>", 1)[0]
        assert block.lstrip().startswith("<svg"), measure
    assert html.count("<svg") == 4
    assert "img" not in page.tags and "script" not in page.tags


def test_the_file_is_self_contained(page, html):
    external = [
        (tag, attribute, value) for tag, attribute, value in page.links if not value.startswith("#")
    ]
    # in-page anchors (the table of contents) and one link to a page beside the report
    # (the docs site's data contract, issue 11): nothing fetched, nothing off the warehouse
    assert external == [("a", "href", "docs/contract.html")]
    for tag in ("script", "link", "iframe", "object", "embed", "img"):
        assert tag not in page.tags
    assert "@import" not in html and "url(http" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html)


def test_render_replaces_the_output_atomically(warehouse, tmp_path):
    out = tmp_path / "nested" / "report.html"
    out.parent.mkdir()
    out.write_text("old")
    assert render_report(warehouse, out) == out
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]


def test_optional_tables_absent(tmp_path):
    database = build_report_warehouse(
        tmp_path / "bare.duckdb", check_result=False, freshness=False, refresh_run=False
    )
    html = render_report(database, tmp_path / "report.html").read_text(encoding="utf-8")
    page = parse(html)
    assert all(s in page.ids for s in SECTION_IDS)
    assert "Data-quality checks (quality.check_result): not available in this warehouse" in html
    assert "Freshness (marts.mart_site_freshness): not available in this warehouse" in html
    assert "Failed checks" not in html
    assert "site-quality" in page.ids  # quarantine by rule is still there


def test_stats_marts_absent(tmp_path):
    database = build_report_warehouse(tmp_path / "no_stats.duckdb", stats_marts=False)
    html = build_html(read_warehouse(database))
    assert "marts.mart_efficacy: not available in this warehouse" in html
    assert "marts.mart_safety: not available in this warehouse" in html
    page = parse(html)
    assert all(s in page.ids for s in SECTION_IDS)
    assert html.count("<svg") == 4  # the plots come from fct_assessment


def test_published_figures_can_be_left_out(warehouse):
    page = parse(build_html(read_warehouse(warehouse), published_figures=False))
    assert "published" not in page.ids
    assert "table1" in page.ids


def test_a_measure_of_fewer_than_5_pairs_is_not_plotted():
    rows = [
        {"patient_key": f"k{i}", "measure": "mrss", "analysis_timepoint": tp, "value": v}
        for i in range(3)
        for tp, v in (("baseline", 10.0 + i), ("post", 8.0 + i))
    ]
    figures = {f.id: f for f in paired_figures(pl.DataFrame(rows))}
    assert figures["plot-mrss"].svg is None
    assert "Fewer than 5" in figures["plot-mrss"].message
    assert figures["plot-ck"].svg is None


def test_paired_values_keep_only_complete_pairs_of_analysed_patients():
    assessments = pl.DataFrame(
        {
            "patient_key": ["a", "a", "b", "c", "c", "d", "d"],
            "measure": ["ck"] * 7,
            "analysis_timepoint": ["baseline", "post", "baseline", "baseline", "post",
                                   "baseline", None],
            "value": [900.0, 200.0, 500.0, 1200.0, 300.0, 50.0, 60.0],
        }
    )  # fmt: skip
    patients = pl.DataFrame({"patient_key": ["a", "b", "c", "d"], "n_cycles": [3, 2, 0, 1]})
    pairs = paired_values(assessments, patients)
    assert "patient_key" not in pairs.columns
    assert pairs.sort("timepoint")["value"].to_list() == [900.0, 200.0]  # a only


def _many_pairs(n: int, measure: str = "mrss") -> pl.DataFrame:
    """``fct_assessment``-like rows: ``n`` patients with a baseline and a post value."""
    i = pl.int_range(0, n, eager=True)
    baseline = pl.DataFrame({"patient_key": "k" + i.cast(pl.String), "value": (i % 47) + 4.0})
    post = baseline.with_columns(value=(pl.col("value") * 0.8).round(1))
    return pl.concat(
        [
            baseline.with_columns(analysis_timepoint=pl.lit("baseline")),
            post.with_columns(analysis_timepoint=pl.lit("post")),
        ]
    ).with_columns(measure=pl.lit(measure))


def _layer_marks(spec: dict) -> list[str]:
    return [layer["mark"]["type"] for layer in spec["layer"]]


def test_a_plot_of_up_to_max_lines_pairs_draws_every_patient():
    for n in (12, MAX_LINES):
        pairs = paired_values(_many_pairs(n))
        spec = paired_spec(pairs, "mrss")
        assert len(spec["datasets"]["patients"]) == 2 * n
        assert _layer_marks(spec) == ["line", "circle", "line", "point"]  # no IQR band
        assert spec["title"]["subtitle"] == f"{mask_count(n)} patients with both values"
    figure = {f.id: f for f in paired_figures(_many_pairs(12))}["plot-mrss"]
    assert figure.caption.endswith("baseline and post value of each patient")
    assert figure.svg.count("layer_0_marks") == 12  # one line per patient


def test_a_plot_of_many_pairs_draws_a_stated_sample_with_the_median_and_band():
    n = 1000
    assessments = _many_pairs(n)
    pairs = paired_values(assessments)
    spec = paired_spec(pairs, "mrss")
    assert spec == paired_spec(pairs, "mrss")  # deterministic (seeded)
    shown = {row["pair"] for row in spec["datasets"]["patients"]}
    assert len(shown) == MAX_LINES and len(spec["datasets"]["patients"]) == 2 * MAX_LINES
    assert shown != set(range(1, MAX_LINES + 1))  # a random sample, not the lowest values
    assert _layer_marks(spec) == ["line", "area", "line", "point"]
    # the median and the band are of every pair, not of the sample
    values = assessments.group_by("analysis_timepoint").agg(
        median=pl.col("value").median(),
        q1=pl.col("value").quantile(0.25, interpolation="linear"),
        q3=pl.col("value").quantile(0.75, interpolation="linear"),
    )
    expected = {
        ("Baseline" if tp == "baseline" else "Post", m, q1, q3)
        for tp, m, q1, q3 in values.iter_rows()
    }
    summary = {(r["timepoint"], r["median"], r["q1"], r["q3"]) for r in spec["datasets"]["summary"]}
    assert summary == expected
    stated = f"{MAX_LINES} of 1,000 patients shown"
    assert spec["title"]["subtitle"] == [
        "1,000 patients with both values",
        f"lines: {stated}; band: IQR",
    ]
    figure = {f.id: f for f in paired_figures(assessments)}["plot-mrss"]
    assert stated in figure.caption and f"seed {SAMPLE_SEED}" in figure.caption
    assert "median" in figure.caption and "interquartile range" in figure.caption
    assert figure.svg.count("layer_0_marks") == MAX_LINES  # lines drawn: the sample only
    subtitle = [t for t in parse(figure.svg).svg_texts if "patients with both values" in t]
    # the two subtitle lines are two <tspan> of one <text>
    assert subtitle == ["1,000 patients with both values" + f"lines: {stated}; band: IQR"]
    assert "k1" not in figure.svg  # no patient key


def test_a_registry_sized_plot_stays_small():
    pairs = paired_values(_many_pairs(20_000))
    spec = paired_spec(pairs, "mrss")
    assert len(spec["datasets"]["patients"]) == 2 * MAX_LINES
    assert len(spec["datasets"]["summary"]) == 2
    assert all(
        row["value"] == round(row["value"], 2) for row in spec["datasets"]["patients"]
    )  # rounded for Vega


@pytest.mark.parametrize("n", [7, MAX_LINES + 1])
@pytest.mark.parametrize("measure", ["mrc", "ck", "mrss", "ucla_git"])
def test_plot_specs_are_valid_vega_lite(measure, n):
    """The specs are handed to vl-convert without Altair; check them against the schema."""
    from altair.utils.schemapi import validate_jsonschema
    from altair.vegalite.v6.schema import core

    spec = paired_spec(paired_values(_many_pairs(n, measure)), measure)
    validate_jsonschema(spec, core.load_schema())


def test_the_report_reads_only_the_columns_it_uses_of_the_large_tables(warehouse):
    frames = read_warehouse(warehouse).frames
    for name, columns in COLUMNS.items():
        assert frames[name] is not None and set(frames[name].columns) <= set(columns), name
    assert "value_as_reported" not in frames["marts.fct_assessment"].columns
    assert "n_paired" in frames["marts.mart_efficacy"].columns  # small marts: whole


# --------------------------------------------------------------------------- §1 figures


def test_published_figures_match_protocol_section_1():
    from ivig_platform.demo.shape import PUBLISHED_FIGURES as DEMO

    figures = {f.key: f.published for f in ref.PUBLISHED_FIGURES}
    shared = set(figures) & set(DEMO)
    assert len(shared) >= 28
    assert {k: figures[k] for k in shared} == {k: float(DEMO[k]) for k in shared}


def test_tolerance_rules():
    assert ref.within_tolerance("count", 78, 78.0)
    assert not ref.within_tolerance("count", 78, 77.0)
    assert ref.within_tolerance("mean", 1149, 1149 * 1.0099)
    assert not ref.within_tolerance("mean", 1149, 1149 * 1.011)
    assert ref.within_tolerance("mean", 0.78, 0.7878)
    assert ref.within_tolerance("percent", 92, 90.0)
    assert not ref.within_tolerance("percent", 92, 89.9)
    assert ref.within_tolerance("percent", 6, 6.4)
    assert ref.within_tolerance("count", 5, None) is None


def test_comparison_reads_the_marts_and_withholds_marks_on_small_counts(warehouse):
    frames = read_warehouse(warehouse).frames
    marts = {name.split(".")[1]: frames[name] for name in
             ("marts.mart_cohort", "marts.mart_efficacy", "marts.mart_safety")}  # fmt: skip
    by_key = {c.figure.key: c for c in ref.compare(marts)}
    assert set(by_key) == {f.key for f in ref.PUBLISHED_FIGURES}
    assert by_key["n_patients"].computed.value == 20 and by_key["n_patients"].within is False
    assert by_key["pct_overlap_any"].computed.value == pytest.approx(50.0)
    assert by_key["pct_overlap_any"].within is True
    men = by_key["n_men"]  # 3 men: shown as <5, and no mark that would disclose it
    assert men.computed.masked and men.within is None
    assert by_key["mrss_baseline_mean"].computed.count == 15  # n_paired


def test_comparison_without_marts_marks_nothing():
    assert all(c.within is None for c in ref.compare({}))


# --------------------------------------------------------------------------- browser


def _png_rows(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and the (still filtered) scanlines of an 8-bit RGB/RGBA PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0
    stride = 1 + width * (3 if colour == 2 else 4)
    raw = zlib.decompress(idat)
    assert len(raw) == stride * height
    return width, height, [raw[i * stride : (i + 1) * stride] for i in range(height)]


def test_report_renders_in_headless_chromium(report, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent (apt-get install -y chromium)")
    screenshot = tmp_path / "report.png"
    result = subprocess.run(
        [
            str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--no-first-run",
            "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,4000",
            f"--screenshot={screenshot}", report.resolve().as_uri(),
        ],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert screenshot.exists(), result.stderr[-2000:]
    width, height, rows = _png_rows(screenshot)
    assert (width, height) == (1280, 4000)
    # A single-colour image filters (None/Sub/Up/Average/Paeth) to a handful of distinct
    # byte values; a rendered page of text, tables and plots to a couple of hundred. Check
    # the top (header, table 1) and the lower half (safety, plots) separately.
    for band in (rows[:600], rows[2400:3400]):
        distinct = set(b"".join(row[1:] for row in band))
        assert len(distinct) > 64, f"a blank band: {len(distinct)} distinct byte values"


def test_render_warehouse_report_writes_report_html_next_to_the_published_file(warehouse, tmp_path):
    import shutil

    from ivig_platform.report import render_warehouse_report

    shutil.copy(warehouse, tmp_path / "ivig.duckdb")
    out = render_warehouse_report(tmp_path)
    assert out == tmp_path / "report.html" and out.stat().st_size > 10_000
