"""One refresh at a time per warehouse (issue 10, point 1): the run lock.

The holder is a real second process; its death (even `kill -9`) frees the lock. The
concurrent-CLI case (two real `ivig refresh` processes) is in test_refresh_runs.py.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ivig_platform.warehouse.rollback import RollbackError, rollback
from ivig_platform.warehouse.run_lock import WarehouseBusy, is_held_here, run_lock

pytestmark = pytest.mark.timeout(60)

HOLDER = r"""
import sys
from pathlib import Path
from ivig_platform.warehouse.run_lock import run_lock

with run_lock(Path(sys.argv[1]), command=sys.argv[2]):
    print("held", flush=True)
    sys.stdin.readline()
"""


def hold(warehouse: Path, command: str = "refresh") -> subprocess.Popen:
    """A process holding the warehouse's run lock until its stdin gets a line."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(warehouse), command],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def release(holder: subprocess.Popen) -> None:
    if holder.poll() is None:
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=10)
    holder.stdin.close()
    holder.stdout.close()


def test_second_run_is_refused_naming_the_holder(tmp_path: Path):
    holder = hold(tmp_path)
    try:
        with pytest.raises(WarehouseBusy) as refused, run_lock(tmp_path):
            pass
        message = str(refused.value)
        assert re.fullmatch(
            rf"another refresh of {re.escape(str(tmp_path))} is running "
            rf"\(pid {holder.pid}, started \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d\)",
            message), message
    finally:
        release(holder)


def test_second_run_waits_for_the_first_within_its_bound(tmp_path: Path):
    holder = hold(tmp_path)
    started = time.monotonic()
    try:
        subprocess.Popen(["sh", "-c", f"sleep 1; kill -TERM {holder.pid}"]).wait()
        with run_lock(tmp_path, wait_seconds=20):
            waited = time.monotonic() - started
    finally:
        release(holder)
    assert 0.9 < waited < 15


def test_a_wait_that_runs_out_is_refused(tmp_path: Path):
    holder = hold(tmp_path)
    started = time.monotonic()
    try:
        with pytest.raises(WarehouseBusy), run_lock(tmp_path, wait_seconds=0.6):
            pass
    finally:
        release(holder)
    assert time.monotonic() - started >= 0.6


def test_a_lock_held_by_a_killed_process_is_free(tmp_path: Path):
    holder = hold(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    with run_lock(tmp_path):  # no stale-lock handling needed: flock died with its holder
        assert is_held_here(tmp_path)
    release(holder)


def test_the_lock_nests_within_one_process(tmp_path: Path):
    with run_lock(tmp_path), run_lock(tmp_path):  # the CLI, then the flow it runs
        assert is_held_here(tmp_path)
    assert not is_held_here(tmp_path)
    holder = hold(tmp_path)  # released for others once the outer block ends
    release(holder)


def test_rollback_refuses_while_a_refresh_holds_the_warehouse(tmp_path: Path):
    from tests.test_rollback import publish_marked, published_mark

    publish_marked(tmp_path, 1)
    publish_marked(tmp_path, 2)
    holder = hold(tmp_path)
    try:
        with pytest.raises(RollbackError, match=rf"another refresh of .* \(pid {holder.pid}, "
                                                r".*nothing rolled back"):
            rollback(tmp_path)
    finally:
        release(holder)
    assert published_mark(tmp_path) == 2
    rollback(tmp_path)
    assert published_mark(tmp_path) == 1


def test_a_refresh_meeting_a_rollback_says_rollback(tmp_path: Path):
    holder = hold(tmp_path, command="rollback")
    try:
        with pytest.raises(WarehouseBusy, match="another rollback of"), run_lock(tmp_path):
            pass
    finally:
        release(holder)
