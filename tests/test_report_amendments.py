"""The report's "Protocol amendments" section (issue 11, point 3), rendered from a file whose
efficacy marts dbt built under the issue's v2 amendment (tests/dbt_fixtures.py): the
amendment's header, what it changes, and per measure the primary plan beside v2, read from
marts.mart_efficacy_by_plan under the §6 small-cell rule. The fixture's pairs are few (1-4),
so every n paired shows as <5 and its statistics are withheld; the numbers themselves are
checked against the mart on a real refresh in tests/test_refresh_plans.py.
"""

from __future__ import annotations

import re
from html import unescape

import duckdb
import pytest
from dbt_fixtures import build_by_plan_marts
from protocol_helpers import V2

from ivig_platform.protocol.load import load_protocol
from ivig_platform.report import build_html, read_warehouse
from ivig_platform.report.privacy import is_small, mask, suppressed


@pytest.fixture(scope="module")
def amended(tmp_path_factory):
    """(file, protocol with v2, by-plan rows of the overall column) of one dbt build."""
    path, protocol = build_by_plan_marts(tmp_path_factory.mktemp("report-v2"), V2)
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(
            "SELECT analysis_plan, measure, n_paired FROM marts.mart_efficacy_by_plan "
            "WHERE subgroup = 'all' AND subgroup_value = 'all'").fetchall()
    finally:
        con.close()
    return path, protocol, {(plan, measure): n for plan, measure, n in rows}


def table_rows(html: str, table_id: str) -> list[list[str]]:
    """The body rows of `<table id=table_id>` as cell texts."""
    found = re.search(rf'<table id="{re.escape(table_id)}">(.*?)</table>', html, re.S)
    assert found, f"no table {table_id}"
    body = found.group(1).split("<tbody>", 1)[1]
    return [[unescape(re.sub(r"<[^>]+>", "", c)).strip()
             for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def test_the_section_names_the_amendment_and_what_it_changes(amended) -> None:
    path, protocol, _ = amended
    html = build_html(read_warehouse(path), protocol=protocol)
    assert 'id="amendments"' in html and "Protocol amendments" in html
    caption = re.search(r'<table id="amendment-v2-changes">\s*<caption>(.*?)</caption>',
                        html, re.S).group(1)
    assert "extends v1" in caption and "effective 2026-12-01" in caption
    assert "post-treatment value at six months instead of three" in unescape(caption)
    changes = {row[0]: (row[1], row[2]) for row in table_rows(html, "amendment-v2-changes")}
    windows = {k.rsplit(".", 1)[1]: v for k, v in changes.items() if ".windows." in k}
    assert windows == {"baseline_days_before": ("90", "60"), "post_target_days": ("90", "180"),
                       "post_min_days": ("30", "120"), "post_max_days": ("180", "240")}


def test_each_measure_compares_the_primary_plan_with_the_amendment_under_the_small_cell_rule(
        amended) -> None:
    path, protocol, counts = amended
    html = build_html(read_warehouse(path), protocol=protocol)
    for measure in protocol.plan("v2").measure_names:
        rows = table_rows(html, f"amendment-v2-{measure}")
        assert [r[0] for r in rows] == ["v1", "v2"]
        for plan, n_text, *statistics in rows:
            n = counts[(plan, measure)]
            if is_small(n):
                assert n_text == mask() and set(statistics) == {suppressed()}, (plan, measure)
            else:
                assert n_text == f"{n:,}", (plan, measure)
    assert any(is_small(n) for n in counts.values())  # the rule was exercised


def test_no_section_when_the_primary_plan_is_the_only_one(amended) -> None:
    path, _, _ = amended
    html = build_html(read_warehouse(path), protocol=load_protocol())
    assert 'id="amendments"' not in html


def test_the_report_links_the_contract_page_of_the_docs_site(amended) -> None:
    path, protocol, _ = amended
    assert 'href="docs/contract.html"' in build_html(read_warehouse(path), protocol=protocol)
