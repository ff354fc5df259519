"""`ivig protocol show | diff | check | document`, through the real `ivig` command group."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ivig_platform.cli import app
from ivig_platform.protocol.document import render_contract_html, render_contract_markdown
from ivig_platform.protocol.load import load_protocol

REPO = Path(__file__).resolve().parents[1]
CASES = Path(__file__).parent / "cases/protocol"
V2 = CASES / "amendment_v2.yaml"


def run(*args: str):  # noqa: ANN201 - click's Result
    return CliRunner().invoke(app, ["protocol", *args])


def assert_fits_80_columns(text: str) -> None:
    """At most 80 characters a line, and no table cut at the edge (rows end in a border)."""
    lines = text.splitlines()
    assert not [line for line in lines if len(line) > 80]
    cut = [line for line in lines if line[:1] in "|+" and line.rstrip()[-1:] not in "|+"]
    assert not cut, cut


def test_show_prints_contract_and_plan_as_80_column_tables() -> None:
    result = run("show")
    assert result.exit_code == 0, result.output
    assert_fits_80_columns(result.output)
    for expected in ("table patients", "table ivig_cycles", "id_paciente, nhc",
                     "> 0 and", "≤ 400", "accepted values", "miopatia_inflamatoria",
                     "ukat/l ×60", "plan v1: Primary analysis", "latest from index - 90",
                     "nearest to last cycle + 90, among 30 to 180", "shown as <5"):
        assert expected in result.output, expected
    assert "\x1b[" not in result.output  # plain off a terminal


def test_show_with_a_plan_file_shows_that_plan_too() -> None:
    result = run("show", "--plan", str(V2))
    assert result.exit_code == 0, result.output
    assert_fits_80_columns(result.output)
    assert "plans in force: v1, v2" in result.output
    assert "plan v2:" in result.output
    assert "nearest to last cycle + 180, among 120 to 240" in result.output


def test_diff_v1_v2_shows_the_changed_windows_key_by_key() -> None:
    result = run("diff", "v1", str(V2))
    assert result.exit_code == 0, result.output
    assert_fits_80_columns(result.output)
    assert "v1 → v2: 9 change(s)" in result.output
    rows = {tuple(c.strip() for c in line.strip("|").split("|"))
            for line in result.output.splitlines() if line.startswith("| analysis.")}
    assert ("analysis.windows.post_target_days", "90", "180") in rows
    assert ("analysis.windows.baseline_days_before", "90", "60") in rows
    assert not any("measures" in row[0] or "contract" in row[0] for row in rows)


def test_diff_by_version_names_from_the_protocol_folder(tmp_path) -> None:
    root = tmp_path / "protocol"
    shutil.copytree(REPO / "protocol", root)
    shutil.copy(V2, root / "amendments" / "v2.yaml")
    result = run("diff", "v1", "v2", "--protocol", str(root))
    assert result.exit_code == 0, result.output
    assert "analysis.windows.post_min_days" in result.output.replace("|", "")


def test_diff_of_an_unknown_version_fails() -> None:
    result = run("diff", "v1", "v9")
    assert result.exit_code == 1
    assert "unknown version(s) v9 (known: v1" in result.output


@pytest.mark.parametrize("target", [V2, REPO / "protocol", REPO / "protocol/privacy.yaml"],
                         ids=["amendment", "protocol_folder", "file_in_the_protocol"])
def test_check_accepts_a_valid_file(target) -> None:
    result = run("check", str(target))
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_check_refuses_a_broken_amendment_listing_every_problem(tmp_path) -> None:
    broken = tmp_path / "v5.yaml"
    broken.write_text("version: v5\nextends: v1\neffective_date: 2027-01-01\nrationale: r\n"
                      "analysis:\n  windows: {post_target_days: 500}\n"
                      "  measures: [{name: ck, decimals: -1}]\n")
    result = run("check", str(broken))
    assert result.exit_code == 1
    assert (f"{broken}: analysis.windows: post_min_days (30) ≤ post_target_days (500) ≤ "
            "post_max_days (180) must hold") in result.output
    assert f"{broken}: analysis.measures[0].decimals: must be ≥ 0, got -1" in result.output
    assert f"2 problem(s) in {broken}" in result.output


def test_check_refuses_a_broken_protocol_folder(tmp_path) -> None:
    root = tmp_path / "protocol"
    shutil.copytree(REPO / "protocol", root)
    (root / "privacy.yaml").write_text((root / "privacy.yaml").read_text()
                                       .replace("threshold: 5", "threshold: -1"))
    result = run("check", str(root))
    assert result.exit_code == 1
    assert "protocol/privacy.yaml: small_cells.threshold: must be ≥ 1, got -1" in result.output


def test_check_of_a_missing_file_fails(tmp_path) -> None:
    result = run("check", str(tmp_path / "nothing.yaml"))
    assert result.exit_code == 1
    assert "no such file or folder" in result.output


def test_document_writes_the_markdown_and_the_html(tmp_path) -> None:
    protocol = load_protocol()
    md, page = tmp_path / "contract.md", tmp_path / "docs" / "contract.html"
    assert run("document", "--out", str(md)).exit_code == 0
    assert md.read_text(encoding="utf-8") == render_contract_markdown(protocol)
    assert run("document", "--html", "--out", str(page)).exit_code == 0
    assert page.read_text(encoding="utf-8") == render_contract_html(protocol)


def test_protocol_group_is_listed_in_ivig_help() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "protocol" in result.output
    sub = run("--help")
    assert all(c in sub.output for c in ("show", "diff", "check", "document"))
