"""What an operator reads: `ivig status` at 80 columns, one vocabulary of delivery states
(live display, plain lines, summary line, Prefect artifact, status), the first line of a
refresh at once, the command's wall time, and no colour codes in a file."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from ivig_platform import states
from ivig_platform.cli import app, print_summary
from ivig_platform.console import StatusRow, plain_line, progress_display, status_layout
from ivig_platform.landing.land import Manifest
from ivig_platform.progress import ProgressEvent, announce_final_states, emit
from ivig_platform.wall_clock import wall_seconds
from ivig_platform.warehouse.build import delivery_status
from ivig_platform.warehouse.summary import summarise

IVIG = str(Path(sys.executable).parent / "ivig")
README = Path(__file__).resolve().parents[1] / "README.md"
ANSI = re.compile(r"\x1b\[")
TODAY = date(2026, 12, 1)
GATE_REASON = ("quality_gate: 1 error check(s) failed: landed.assessments value site_drift; "
               "landed.assessments value valid_range")


def manifest(site: str, delivery: str, status: str = "landed", **fields) -> Manifest:
    values = dict(
        site_id=site, delivery_id=delivery, status=status,
        reason="missing_table: missing assessments.csv" if status == "rejected" else None,
        content_sha256="0" * 64, landing_version="2", key_fingerprint="f" * 16,
        delivery_date=delivery, landed_at="2026-11-25T09:30:00+00:00", source_rows=78,
        rows_landed=75, rows_quarantined=3)
    values.update(fields)
    return Manifest(**values)


#: One site of each final state: accepted + superseded, rejected by landing, held back.
MANIFESTS = [
    manifest("hgu-gregorio-maranon", "2026-09-13"),
    manifest("hu-marques-valdecilla", "2026-06-30"),
    manifest("hu-marques-valdecilla", "2026-11-09"),
    manifest("hu-cruces", "2026-07-15"),
    manifest("hu-cruces", "2026-10-18", "rejected", rows_landed=0, rows_quarantined=0),
    manifest("hu-donostia", "2026-11-11"),
    manifest("hu-donostia", "2026-11-14"),
]
HELD_BACK = {("hu-donostia", "2026-11-14"): GATE_REASON}


def status_rows() -> list[StatusRow]:
    frame = delivery_status(MANIFESTS, HELD_BACK)
    return [StatusRow(r["site_id"], r["delivery_id"],
                      states.delivery_state(r["status"], r["rejected_by"]), r["reason"],
                      r["rows_landed"], r["rows_quarantined"], r["delivery_date"],
                      "fresh" if r["status"] == "accepted" else None)
            for r in frame.to_dicts()]


def text(lines: list[list[tuple[str, str]]]) -> list[str]:
    return ["".join(piece for piece, _ in line) for line in lines]


# --- ivig status ----------------------------------------------------------------------------


def test_status_at_80_columns_puts_reasons_under_their_delivery_and_cuts_no_name():
    lines = text(status_layout(status_rows(), TODAY, 80))
    assert max(map(len, lines)) <= 80
    assert lines[0].split() == ["site", "delivery", "state", "landed", "quar.", "age", "fresh"]
    held = next(i for i, line in enumerate(lines) if "held_back" in line)
    assert lines[held].split()[:3] == ["hu-donostia", "2026-11-14", "held_back"]
    reason = " ".join(line.strip() for line in lines[held + 1:held + 3])
    assert reason == GATE_REASON  # wrapped at word boundaries, nothing lost
    assert lines[held + 1].startswith("    quality_gate:")
    assert any(line.split()[0] == "hu-marques-valdecilla" for line in lines[1:])


def test_status_on_a_narrow_terminal_drops_row_counts_first_then_age():
    assert text(status_layout(status_rows(), TODAY, 60))[0].split() == [
        "site", "delivery", "state", "age", "fresh"]
    assert text(status_layout(status_rows(), TODAY, 55))[0].split() == [
        "site", "delivery", "state", "fresh"]


def test_status_wide_has_every_column_and_the_reason_on_one_line():
    lines = text(status_layout(status_rows(), TODAY, None))
    assert lines[0].split()[-1] == "reason" and len(lines) == len(MANIFESTS) + 1
    assert next(line for line in lines if "held_back" in line).endswith(GATE_REASON)


def published_status_file(warehouse: Path) -> None:
    """quality.site_delivery and refresh_run as a refresh writes them (delivery_status)."""
    warehouse.mkdir()
    frame = delivery_status(MANIFESTS, HELD_BACK)  # noqa: F841 (read by DuckDB by name)
    con = duckdb.connect(str(warehouse / "ivig.duckdb"))
    con.execute("CREATE SCHEMA quality; CREATE TABLE quality.site_delivery AS SELECT * FROM frame;"
                "CREATE TABLE quality.refresh_run AS SELECT 'r1' AS run_id, now() AS built_at")
    con.close()


def test_status_to_a_file_has_no_colour_codes_and_fits_80_columns(tmp_path: Path):
    published_status_file(tmp_path / "wh")
    out = tmp_path / "status.txt"
    with out.open("w") as stream:
        result = subprocess.run([IVIG, "status", "--warehouse", str(tmp_path / "wh")],
                                stdout=stream, stderr=subprocess.PIPE, text=True, timeout=60,
                                env={**os.environ, "COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    written = out.read_text()
    assert not ANSI.search(written)
    assert max(map(len, written.splitlines())) <= 80
    assert {"held_back", "rejected", "superseded", "accepted"} <= set(written.split())


def test_status_wide_puts_each_reason_on_its_deliverys_line(tmp_path: Path):
    published_status_file(tmp_path / "wh")
    result = CliRunner().invoke(app, ["status", "--warehouse", str(tmp_path / "wh"), "--wide"],
                                env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    held = next(line for line in result.output.splitlines() if "held_back" in line)
    assert held.endswith(GATE_REASON)


# --- one vocabulary -------------------------------------------------------------------------


def test_readme_documents_exactly_the_states_of_states_py():
    assert states.markdown_table() in README.read_text(encoding="utf-8")


def test_a_held_back_delivery_is_counted_once_in_the_summary_and_the_artifact(capsys):
    summary = summarise("r1", MANIFESTS, Path("/wh/ivig.duckdb"), {"total": 1.0},
                        held_back=HELD_BACK)
    counts = summary.as_dict()
    assert {k: counts[k] for k in ("accepted", "superseded", "held_back", "rejected")} == {
        "accepted": 4, "superseded": 1, "held_back": 1, "rejected": 1}
    artifact = {(r["site_id"], r["delivery_id"]): r["state"] for r in summary.delivery_rows()}
    assert artifact[("hu-donostia", "2026-11-14")] == "held_back"
    assert artifact[("hu-cruces", "2026-10-18")] == "rejected"
    assert "`hu-donostia/2026-11-14` held_back: quality_gate:" in summary.markdown()
    print_summary(counts)
    line = capsys.readouterr().out
    assert ("4 sites accepted, 1 superseded, 1 held back by the quality gate, 1 rejected by "
            "landing; 300 rows landed, 12 quarantined") in line


def test_final_states_end_the_display_with_what_the_file_records():
    seen: list[ProgressEvent] = []
    from ivig_platform.progress import set_listener

    set_listener(seen.append)
    try:
        announce_final_states(delivery_status(MANIFESTS, HELD_BACK))
    finally:
        set_listener(None)
    final = {(e.site_id, e.delivery_id): (e.stage, e.detail) for e in seen}
    assert final[("hu-marques-valdecilla", "2026-06-30")] == ("superseded", "by 2026-11-09")
    assert final[("hu-donostia", "2026-11-14")] == ("held_back", GATE_REASON)
    assert final[("hgu-gregorio-maranon", "2026-09-13")] == (
        "accepted", "75 rows landed, 3 quarantined")
    assert {stage for stage, _ in final.values()} <= set(states.FINAL)


def test_plain_progress_starts_at_once_and_prints_a_state_once():
    stream = io.StringIO()
    with progress_display(False, stream, "starting Prefect's temporary server…"):
        emit(ProgressEvent("h-a", "2026-11-24", "landed", "75 rows landed, 3 quarantined"))
        emit(ProgressEvent("h-a", "2026-11-24", "accepted", "passed"))
        emit(ProgressEvent("h-a", "2026-11-24", "accepted", "75 rows landed, 3 quarantined"))
    assert stream.getvalue().splitlines() == [
        "[refresh] step starting Prefect's temporary server…",
        "[h-a/2026-11-24] landed 75 rows landed, 3 quarantined",
        "[h-a/2026-11-24] accepted passed",
    ]
    assert not ANSI.search(stream.getvalue())


def test_every_state_the_flow_emits_is_in_the_vocabulary():
    flow = (Path(__file__).resolve().parents[1] / "flows" / "refresh.py").read_text()
    # stages are passed as the constants of states.py, never as literals
    assert not re.search(r'ProgressEvent\([^)]*"(held|failed|landed|accepted|rejected)"', flow)
    for name in ("ACCEPTED", "DEFERRED", "HELD_BACK", "LANDED", "REJECTED"):
        assert getattr(states, name) in states.BY_NAME
    assert plain_line(ProgressEvent("*", "*", "step", "dbt build")) == "[refresh] step dbt build"


# --- time -----------------------------------------------------------------------------------


def test_wall_seconds_count_from_the_start_of_the_process():
    script = ("import time; time.sleep(1.5); from ivig_platform.wall_clock import wall_seconds;"
              " print(wall_seconds())")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert 1.5 <= float(out) < 60  # the sleep before the module was imported counts


def test_the_last_line_prints_the_wall_time_not_the_flows_total(capsys):
    summary = summarise("r1", MANIFESTS, Path("/wh/ivig.duckdb"), {"total": 0.001},
                        held_back=HELD_BACK).as_dict()
    before = wall_seconds()
    print_summary(summary)
    shown = re.search(r"\((\d+\.\d) s\)$|\((\d+) min (\d+) s\)$",
                      capsys.readouterr().out.strip())
    seconds = (float(shown.group(1)) if shown.group(1)
               else int(shown.group(2)) * 60 + int(shown.group(3)))
    assert seconds >= round(before, 1) - 0.5 > 0.001


def test_states_of_an_old_file_without_rejected_by_come_from_the_reason():
    assert states.delivery_state("rejected", None, GATE_REASON) == "held_back"
    assert states.delivery_state("rejected", None, "missing_table: x") == "rejected"
    assert states.delivery_state("rejected", "landing", GATE_REASON) == "rejected"


def test_the_report_shows_a_held_back_delivery_as_held_back(tmp_path: Path):
    from dataclasses import replace

    import polars as pl
    from report_fixtures import build_report_warehouse

    from ivig_platform.report import build_html, read_warehouse

    data = read_warehouse(build_report_warehouse(tmp_path / "ivig.duckdb"))
    deliveries = data.frames["quality.site_delivery"]
    held = deliveries.head(1).with_columns(
        delivery_id=pl.lit("2026-11-30"), status=pl.lit("rejected"), reason=pl.lit(GATE_REASON))
    frames = {**data.frames, "quality.site_delivery": pl.concat([deliveries, held])}
    html = build_html(replace(data, frames=frames))
    table = html[html.index('id="site-deliveries"'):]
    table = table[:table.index("</table>")]
    assert '<th scope="col">State</th>' in table or ">State<" in table
    assert 'class="status-held_back">held_back<' in table
    assert 'class="status-rejected">rejected<' in table  # hospital-c's landing rejection


def _command_paths(group, prefix=()):
    import click

    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _command_paths(command, (*prefix, name))


def test_every_help_screen_reads_at_80_columns_without_type_noise():
    """Issue 14: `--help <bool>` and `--force --no-force <bool>` on every screen; help that
    did not fit 80 columns."""
    import typer

    from ivig_platform.cli import app

    root = typer.main.get_command(app)
    paths = [(), *_command_paths(root)]
    assert len(paths) > 6
    for path in paths:
        result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"},
                                    terminal_width=80)
        assert result.exit_code == 0, (path, result.output)
        lines = result.output.splitlines()
        assert max(map(len, lines)) <= 80, (path, result.output)
        for noise in ("<bool>", "--no-force", "--no-help", "--help <", "\x1b["):
            assert noise not in result.output, (path, noise, result.output)
