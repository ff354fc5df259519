"""A measure added by an amendment reaches the warehouse and the report with no code change
(issue 11): hand grip (tests/protocol_helpers.py) lands, is in fct_assessment, is analysed
under the amendment's plan in mart_efficacy_by_plan, and the report's "Protocol amendments"
section has its table, captioned with the amendment's label. And the report follows the
protocol it is given (labels, §6 rule), not the one in force when its modules were imported.

Decision (protocol/amendments/README.md): an amendment's `analysis` makes an additional plan
beside the primary plan v1, so mart_efficacy (the primary plan) keeps v1's measures; the new
measure is analysed in mart_efficacy_by_plan under the amendment's version.
"""

from __future__ import annotations

import re
from html import unescape

import duckdb
import pytest
from dbt_fixtures import L1, build_by_plan_marts, days
from protocol_helpers import HAND_GRIP, protocol_copy
from report_fixtures import build_report_warehouse

from ivig_platform.protocol.load import load_protocol
from ivig_platform.report import build_html, read_warehouse, render_build_report

#: Hand grip of p1 (before its index date, and 90 days after its last cycle) and of p3.
GRIP = [
    ("p1", "hand_grip", days(L1, -80), 21.5, "21,5", "kg", "baseline"),
    ("p1", "hand_grip", days(L1, 90), 26.0, "26", "kg", "post"),
]


@pytest.fixture(scope="module")
def grip(tmp_path_factory):
    """(file, protocol) of one dbt build of the efficacy marts under the hand-grip amendment."""
    return build_by_plan_marts(tmp_path_factory.mktemp("grip"), HAND_GRIP, GRIP)


def _rows(path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_measure_added_by_an_amendment_reaches_fct_assessment(grip) -> None:
    path, _ = grip
    rows = _rows(path, "SELECT measure, value, analysis_timepoint FROM marts.fct_assessment "
                       "WHERE measure = 'hand_grip' ORDER BY assessment_date")
    assert [(m, v) for m, v, _ in rows] == [("hand_grip", 21.5), ("hand_grip", 26.0)]


def test_a_measure_added_by_an_amendment_is_analysed_under_the_amendments_plan(grip) -> None:
    path, _ = grip
    by_plan = _rows(path, "SELECT analysis_plan, n_paired FROM marts.mart_efficacy_by_plan "
                          "WHERE measure = 'hand_grip' AND subgroup = 'all'")
    assert by_plan == [("v2-grip", 1)]
    primary = _rows(path, "SELECT DISTINCT measure FROM marts.mart_efficacy ORDER BY 1")
    assert [m for (m,) in primary] == sorted(load_protocol().primary_plan.measure_names)


def test_the_report_has_a_table_of_the_new_measure_under_its_label(grip) -> None:
    path, protocol = grip
    html = build_html(read_warehouse(path), protocol=protocol)
    table = re.search(r'<table id="amendment-v2-grip-hand_grip">(.*?)</table>', html, re.S)
    assert table, "no table of hand_grip in the Protocol amendments section"
    caption = re.search(r"<caption>(.*?)</caption>", table.group(1), re.S)
    assert caption and "Hand grip strength" in unescape(caption.group(1))


#: A protocol folder whose primary-plan label of mRSS and whose §6 threshold differ.
RELABELLED = (
    ("analysis/v1.yaml", "label: Modified Rodnan skin score (mRSS)",
     "label: Skin thickness score (relabelled)"),
    ("analysis/v1.yaml", "short_label: mRSS ({range})", "short_label: Skin score ({range})"),
    ("privacy.yaml", "threshold: 5", "threshold: 3"),
)


def test_the_report_follows_the_protocol_it_is_given_not_the_one_at_import(tmp_path) -> None:
    protocol = load_protocol(protocol_copy(tmp_path / "protocol", RELABELLED))
    data = read_warehouse(build_report_warehouse(tmp_path / "ivig.duckdb"))
    html = unescape(build_html(data, protocol=protocol))
    assert "Skin thickness score (relabelled)" in html
    assert "Skin score (" in html
    assert "Modified Rodnan skin score (mRSS)" not in html
    assert "1–2" in html and "1–4" not in html
    default = unescape(build_html(data))
    assert "Modified Rodnan skin score (mRSS)" in default and "1–4" in default


def test_the_report_of_a_runs_build_file_follows_the_runs_protocol(tmp_path) -> None:
    protocol = load_protocol(protocol_copy(tmp_path / "protocol", RELABELLED))
    database = build_report_warehouse(tmp_path / "build.duckdb")
    output = render_build_report(database, tmp_path / "report.html", published_name="ivig.duckdb",
                                 run_id="run-x", protocol=protocol)
    html = unescape(output.read_text(encoding="utf-8"))
    assert "Skin thickness score (relabelled)" in html and "1–2" in html
