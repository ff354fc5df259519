"""Faults a refresh meets, each said in one true line (issue 10, points 3, 5 and 9).

The pieces in-process and fast: recognising a full disk wherever it surfaces, the
failure line (what failed, whether anything was published, which run is live), the
refusals before any work (empty inbox), unusable inbox folders, and the clean-up of dead
runs. test_refresh_runs.py then runs the real flow (Prefect, GX, dbt) with an injected
`OSError(ENOSPC)` in each stage in turn, and on a real full disk.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from ivig_platform.landing.discovery import discover_settled
from ivig_platform.warehouse.build import RunInfo, build_database
from ivig_platform.warehouse.disk import describe_disk_full, disk_full_error
from ivig_platform.warehouse.housekeeping import clear_dead_runs
from ivig_platform.warehouse.outcome import RefreshFailed, failure_line
from ivig_platform.warehouse.preflight import preflight
from ivig_platform.warehouse.publish import build_path, publish

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/somewhere/ivig_build.duckdb")


def published_run(warehouse: Path, run_id: str) -> Path:
    """A published warehouse file that says it was built by `run_id`."""
    built = build_path(warehouse, run_id)
    build_database(built, warehouse, [], RunInfo(run_id, datetime.now(UTC), "inbox", "fp"))
    return publish(built, warehouse)


def _wrapped(inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise RuntimeError("task failed") from exc
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize("error", [
    ENOSPC,
    OSError(errno.EDQUOT, "Disk quota exceeded"),
    duckdb.IOException('IO Error: Could not write file "x.duckdb": No space left on device'),
    RuntimeError("dbt build failed: [Errno 28] No space left on device: 'target/x.json'"),
    _wrapped(ENOSPC),
    ExceptionGroup("tasks", [ValueError("other"), ENOSPC]),
], ids=["oserror", "quota", "duckdb", "dbt-text", "chained", "group"])
def test_a_full_disk_is_recognised_wherever_it_surfaces(error):
    assert disk_full_error(error) is not None


def test_other_errors_are_not_a_full_disk():
    assert disk_full_error(OSError(errno.EACCES, "Permission denied")) is None
    assert disk_full_error(RuntimeError("dbt build failed: model x")) is None


def test_disk_full_says_where_how_much_is_needed_and_how_much_is_free(tmp_path: Path):
    published_run(tmp_path, "r1")
    (tmp_path / "landing" / "site=hu-a").mkdir(parents=True)
    (tmp_path / "landing" / "site=hu-a" / "x.parquet").write_bytes(b"\0" * 300_000)
    error = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / ".build" / "f"))
    line = describe_disk_full(error, tmp_path)
    assert line.startswith(f"disk full at {tmp_path / '.build' / 'f'}: the run needs about ")
    assert "(last build " in line and "+ landing 293.0 KB)" in line and line.endswith(" free")


def test_a_prefect_500_on_a_disk_with_too_little_space_says_so(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch):
    """The next attempt after a disk-full run saw only Prefect's 500 on set_state."""
    import shutil

    from ivig_platform.warehouse import disk

    published_run(tmp_path, "r1")
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(disk.shutil, "disk_usage",
                        lambda path: usage._replace(free=1000))
    error = RuntimeError("Server error '500 Internal Server Error' for url "
                         "'http://127.0.0.1:1/api/flow_runs/x/set_state'")
    failed = failure_line(error, stage="orchestration", warehouse=tmp_path, run_id="r2",
                          log=tmp_path / "logs" / "refresh-r2.log")
    assert str(failed).startswith(f"refresh failed during orchestration: too little disk "
                                  f"space at {tmp_path}: the run needs about ")
    assert "1000 B free (Server error '500" in str(failed)


def test_the_failure_line_says_nothing_was_published_and_which_run_is_live(tmp_path: Path):
    published_run(tmp_path, "20261124T020000-aaaaaa")
    failed = failure_line(RuntimeError("dbt build failed: model x\ndetails"), stage="dbt",
                          warehouse=tmp_path, run_id="20261125T020000-bbbbbb",
                          log=tmp_path / "logs" / "refresh-20261125T020000-bbbbbb.log")
    assert isinstance(failed, RefreshFailed) and not failed.published
    assert str(failed) == (
        "refresh failed during dbt: dbt build failed: model x; nothing published; live: run "
        f"20261124T020000-aaaaaa, built {datetime.now(UTC):%Y-%m-%d} "
        f"{str(failed).split(' UTC')[0][-5:]} UTC (log: "
        f"{tmp_path / 'logs' / 'refresh-20261125T020000-bbbbbb.log'})")


def test_a_failure_after_the_publish_says_the_run_is_live(tmp_path: Path):
    published_run(tmp_path, "20261125T020000-bbbbbb")
    failed = failure_line(OSError("state not written"), stage="record", warehouse=tmp_path,
                          run_id="20261125T020000-bbbbbb", log=None)
    assert failed.published
    assert str(failed) == ("refresh failed during record: state not written; run "
                           "20261125T020000-bbbbbb was published and is live")


def test_a_failure_in_a_new_warehouse_says_nothing_is_published_yet(tmp_path: Path):
    failed = failure_line(ENOSPC, stage="landing", warehouse=tmp_path, run_id="r", log=None)
    assert str(failed).endswith(f"; nothing published; {tmp_path} has no published file yet")


def test_an_empty_inbox_into_a_new_warehouse_is_refused(tmp_path: Path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with pytest.raises(RefreshFailed) as refused:
        preflight(inbox, tmp_path / "wh", "fp", 0, rekey=False)
    assert str(refused.value) == (f"inbox {inbox} holds no deliveries and {tmp_path / 'wh'} "
                                  "has none landed: nothing to publish")


def test_an_inbox_of_unusable_folders_only_is_refused_naming_them(tmp_path: Path):
    inbox = tmp_path / "inbox"
    (inbox / "..evil" / "2026-11-01").mkdir(parents=True)
    with pytest.raises(RefreshFailed, match=r"holds no deliveries \(1 folder\(s\) that are "
                                            r"not site ids: '\.\.evil'\)"):
        preflight(inbox, tmp_path / "wh", "fp", 0, rekey=False)


@pytest.mark.parametrize(("name", "usable"), [
    ("hu-la-paz", True), ("h_01", True), ("..evil", False), (".cache", False),
    ("bad name", False), ("HU-PAZ", False), ("h", False), ("h" * 33, False),
    ("hospital-ñ", False),
])
def test_unusable_site_folders_are_listed_not_read(tmp_path: Path, name: str, usable: bool):
    (tmp_path / name / "2026-11-01").mkdir(parents=True)
    (tmp_path / "README.txt").write_text("a file, not a folder: not listed")
    found = discover_settled(tmp_path, 0)
    assert [d.site_id for d in found.ready] == ([name] if usable else [])
    assert [i.folder for i in found.issues] == ([] if usable else [name])


def test_unusable_folders_are_kept_in_the_built_file(tmp_path: Path):
    built = tmp_path / "b.duckdb"
    build_database(built, tmp_path, [], RunInfo("r", datetime.now(UTC), "inbox", "fp1"),
                   inbox_issues=[("..evil", "not a site id")])
    con = duckdb.connect(str(built), read_only=True)
    try:
        assert con.execute("SELECT * FROM quality.inbox_issue").fetchall() == [
            ("..evil", "not a site id")]
        assert con.execute("SELECT key_fingerprint FROM quality.refresh_run").fetchone() == (
            "fp1",)
    finally:
        con.close()


def test_a_new_run_clears_what_dead_runs_left(tmp_path: Path):
    dead = build_path(tmp_path, "20261124T020000-dead00")
    dead.parent.mkdir(parents=True)
    dead.write_bytes(b"\0" * 1000)
    (tmp_path / ".build" / "rollback-x").mkdir()
    partial = tmp_path / "landing" / "site=hu-a" / "delivery=2026-11-01.partial"
    partial.mkdir(parents=True)
    kept = tmp_path / "landing" / "site=hu-a" / "delivery=2026-10-01"
    kept.mkdir()
    cleared = clear_dead_runs(tmp_path)
    assert sorted(cleared.build_folders) == ["20261124T020000-dead00", "rollback-x"]
    assert list((tmp_path / ".build").iterdir()) == []
    assert not partial.exists() and kept.exists()


CONSOLE = r"""
import atexit, subprocess, sys
from pathlib import Path
from ivig_platform.run_log import console_to_log

terminal = console_to_log(Path(sys.argv[1]))
atexit.register(lambda: sys.stderr.write("late: Prefect's exit-time complaint\n"))
print("a library prints")
print("a traceback", file=sys.stderr)
subprocess.run(["echo", "a child process prints"])
print("the last line", file=terminal.out, flush=True)
"""


def test_after_the_last_line_the_console_stays_quiet(tmp_path: Path):
    """Output of the run (libraries, children, exit handlers) goes to the log only."""
    log = tmp_path / "logs" / "refresh-r.log"
    child = subprocess.run([sys.executable, "-c", CONSOLE, str(log)], capture_output=True,
                           text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    assert (child.stdout, child.stderr) == ("the last line\n", "")
    assert log.read_text().splitlines() == [
        "a library prints", "a traceback", "a child process prints",
        "late: Prefect's exit-time complaint"]
