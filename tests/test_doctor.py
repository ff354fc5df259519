"""`ivig doctor` in a healthy set-up and in the broken ones an operator meets (issue 16, 3).

One delivery is landed once (a real landing, so the warehouse records a key fingerprint);
each test works on a copy of that warehouse and breaks one thing.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
import textwrap
from collections import namedtuple
from pathlib import Path

import pytest
from conftest import KEY, NOW, Extract, make_delivery
from typer.testing import CliRunner

from ivig_platform import doctor
from ivig_platform.cli import app
from ivig_platform.doctor import (
    Finding,
    blocks_refresh,
    check_libraries,
    check_python,
    diagnose,
)
from ivig_platform.landing.land import land_delivery
from ivig_platform.landing.pseudonym import KEY_VARIABLE
from ivig_platform.orchestration.processes import LOOPBACK, free_port
from ivig_platform.warehouse.run_lock import LOCK_NAME

ROOT = Path(__file__).resolve().parents[1]
DiskUsage = namedtuple("DiskUsage", "total used free")


@pytest.fixture(scope="module")
def landed(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("doctor")
    delivery = make_delivery(root, "es-doctor", "2026-11-24", Extract().csv_tables())
    warehouse = root / "warehouse"
    assert land_delivery(delivery, warehouse, KEY, now=NOW).status == "landed"
    (warehouse / "ivig.duckdb").write_bytes(b"\0" * 200_000)  # the last run's build
    return warehouse, delivery.path.parents[1]


@pytest.fixture
def setup(landed, tmp_path, monkeypatch) -> tuple[Path, Path]:
    warehouse = tmp_path / "warehouse"
    shutil.copytree(landed[0], warehouse)
    monkeypatch.setenv(KEY_VARIABLE, KEY.decode())
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_HOME", raising=False)
    return warehouse, landed[1]


def by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


def test_doctor_healthy_setup_passes_every_check_and_exits_zero(setup):
    warehouse, inbox = setup
    result = CliRunner().invoke(app, ["doctor", "--warehouse", str(warehouse),
                                      "--inbox", str(inbox)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line[7:].split()[0] for line in lines[:-1]] == [
        "python", "libraries", "key", "warehouse", "space", "lock", "builds", "prefect",
        "chromium", "postgresql", "inbox"]
    assert not any(line.startswith(("[FAIL]", "[WARN]")) for line in lines), result.output
    assert "the warehouse's" in by_check(diagnose(warehouse, inbox))["key"].detail
    assert "temporary server" in by_check(diagnose(warehouse))["prefect"].detail
    assert lines[-1] == f"ready for a refresh of {warehouse}"


def test_doctor_missing_key_blocks_and_says_which_variable(setup, monkeypatch):
    warehouse, _ = setup
    monkeypatch.delenv(KEY_VARIABLE)
    result = CliRunner().invoke(app, ["doctor", "--warehouse", str(warehouse)])
    assert result.exit_code == 1
    assert f"[FAIL] key          {KEY_VARIABLE} is not set -> set {KEY_VARIABLE}" in result.output


def test_doctor_other_key_than_the_warehouses_blocks_and_names_rekey(setup, monkeypatch):
    warehouse, _ = setup
    monkeypatch.setenv(KEY_VARIABLE, "another-key-of-enough-length")
    key = by_check(diagnose(warehouse))["key"]
    assert key.status == "fail"
    assert "landed with" in key.detail and "--rekey" in key.fix
    assert "another-key" not in key.line()  # only fingerprints are shown


def test_doctor_unwritable_warehouse_blocks(setup, tmp_path):
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    findings = diagnose(not_a_folder / "warehouse")
    assert by_check(findings)["warehouse"].status == "fail"
    assert blocks_refresh(findings)


def test_doctor_full_disk_blocks_with_the_space_a_run_needs(setup, monkeypatch):
    warehouse, _ = setup
    monkeypatch.setattr(shutil, "disk_usage", lambda path: DiskUsage(10**9, 10**9 - 1000, 1000))
    space = by_check(diagnose(warehouse))["space"]
    assert space.status == "fail"
    assert "1000 B free, a run needs about" in space.detail and "free " in space.fix


def test_doctor_stale_build_folders_count_as_free_space_and_only_warn(setup, monkeypatch):
    warehouse, _ = setup
    build = warehouse / ".build" / "20261124T010203-dead01"
    build.mkdir(parents=True)
    (build / "ivig_build.duckdb").write_bytes(b"\0" * 1_000_000)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: DiskUsage(10**9, 10**9 - 1000, 1000))
    findings = by_check(diagnose(warehouse))
    assert findings["builds"].status == "warn"
    assert "1 build folder(s) of ended runs" in findings["builds"].detail
    assert "next refresh removes them" in findings["builds"].fix
    assert findings["space"].status == "ok"  # the refresh clears them before it needs room
    assert build.exists()  # the doctor only looks


def test_doctor_unreachable_prefect_api_blocks(setup, monkeypatch):
    warehouse, _ = setup
    url = f"http://{LOOPBACK}:{free_port()}/api"
    monkeypatch.setenv("PREFECT_API_URL", url)
    prefect = by_check(diagnose(warehouse))["prefect"]
    assert prefect.status == "fail"
    assert url in prefect.detail and "unset PREFECT_API_URL" in prefect.fix


def test_doctor_broken_temporary_server_database_only_warns(setup):
    warehouse, _ = setup
    (warehouse / ".prefect").mkdir()
    (warehouse / ".prefect" / "prefect.db").write_bytes(b"not a database" * 100)
    prefect = by_check(diagnose(warehouse))["prefect"]
    assert prefect.status == "warn" and "moves it aside" in prefect.fix


def test_doctor_live_lock_holder_blocks_and_names_it(setup):
    warehouse, _ = setup
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from ivig_platform.warehouse.run_lock import run_lock
        with run_lock({str(warehouse)!r}):
            print("held", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        findings = diagnose(warehouse)
        lock = by_check(findings)["lock"]
        assert lock.status == "fail" and f"pid {holder.pid}" in lock.detail
        assert "--wait" in lock.fix and blocks_refresh(findings)
    finally:
        holder.kill()
        holder.wait()
    assert by_check(diagnose(warehouse))["lock"].status == "ok"  # freed with its holder


def test_doctor_lock_file_of_a_dead_process_is_free(setup):
    warehouse, _ = setup
    (warehouse / LOCK_NAME).write_text(json.dumps({"pid": 999_999_999, "host": "here",
                                                   "started": "yesterday"}))
    lock = by_check(diagnose(warehouse))["lock"]
    assert lock.status == "ok" and "999999999, which has ended" in lock.detail


@pytest.mark.parametrize(("make", "status", "text"), [
    (lambda inbox: inbox / "missing", "fail", "does not exist"),
    (lambda inbox: inbox / "es-doctor" / "2026-11-24" / "patients.csv", "fail",
     "does not exist or is not a folder"),
])
def test_doctor_inbox_that_cannot_be_read_blocks(setup, make, status, text):
    warehouse, inbox = setup
    finding = by_check(diagnose(warehouse, make(inbox)))["inbox"]
    assert (finding.status, text in finding.detail) == (status, True)


def test_doctor_inbox_folder_that_is_not_a_site_only_warns(setup, tmp_path):
    warehouse, inbox = setup
    copy = tmp_path / "inbox"
    shutil.copytree(inbox, copy)
    (copy / "Bad Name").mkdir()
    finding = by_check(diagnose(warehouse, copy))["inbox"]
    assert finding.status == "warn" and "1 folder(s) that are not site ids" in finding.detail


def test_doctor_library_other_than_the_lock_blocks():
    lock = doctor._lock(ROOT)
    installed = doctor._installed()
    assert check_libraries(lock, installed).status == "ok"
    changed = {**installed, "great-expectations": "1.99.0"}
    finding = check_libraries(lock, changed)
    assert finding.status == "fail"
    assert "great-expectations 1.99.0 (lock " in finding.detail and "uv sync" in finding.fix
    missing = {k: v for k, v in installed.items() if k != "polars"}
    assert "missing: polars" in check_libraries(lock, missing).detail


def test_doctor_python_other_than_the_lock_allows_blocks():
    lock = doctor._lock(ROOT)
    assert check_python(lock).status == "ok"
    assert check_python(lock, (3, 12, 1)).status == "fail"
    assert importlib.metadata.version("ivig-platform")  # the checks ran on an installed tree
