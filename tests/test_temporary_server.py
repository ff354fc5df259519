"""Prefect's temporary server leaves nothing behind and never holds the key (issue 10, 5).

A real parent process starts the real server (the CLI's `start_temporary_prefect_server`)
and is then killed with SIGKILL: the server must go with it. Its environment is read
from `/proc/<pid>/environ`. A broken SQLite database under PREFECT_HOME is moved aside
before a start, with one line saying so.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from ivig_platform.orchestration.processes import MARKER_VARIABLE, processes_marked
from ivig_platform.orchestration.temporary_server import (
    database_problem,
    reset_broken_database,
    server_environment,
)

pytestmark = [pytest.mark.skipif(not Path("/proc/self/environ").exists(),
                                 reason="needs /proc (Linux)"),
              pytest.mark.timeout(300)]

KEY = "server-env-test-key-0123456789"

PARENT = r"""
import os, sys
from ivig_platform.orchestration.temporary_server import start_temporary_prefect_server

server = start_temporary_prefect_server()
print(server.popen.pid, flush=True)
sys.stdin.readline()  # stays alive, server running, until killed
"""


def test_the_server_dies_with_its_parent_on_kill_9_and_never_sees_the_key(tmp_path: Path):
    marker = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"PREFECT_HOME": str(tmp_path / "prefect"), "DO_NOT_TRACK": "1",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "IVIG_PSEUDONYM_KEY": KEY,
                MARKER_VARIABLE: marker})
    parent = subprocess.Popen([sys.executable, "-c", PARENT], env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        server_pid = int(parent.stdout.readline())
        environ = Path(f"/proc/{server_pid}/environ").read_bytes().split(b"\0")
        assert f"{MARKER_VARIABLE}={marker}".encode() in environ  # it is our server...
        assert not [v for v in environ if v.startswith(b"IVIG_PSEUDONYM_KEY=")]
        assert KEY.encode() not in b"\0".join(environ)  # ...and the key is not in it
        assert sorted(processes_marked(marker)) == sorted([parent.pid, server_pid])
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while processes_marked(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert processes_marked(marker) == []
    finally:
        for pid in processes_marked(marker):
            os.kill(pid, signal.SIGKILL)
        parent.stdin.close()
        parent.stdout.close()


def test_the_server_environment_drops_only_the_key():
    env = server_environment({"IVIG_PSEUDONYM_KEY": KEY, "PATH": "/bin", "PREFECT_HOME": "/x"})
    assert "IVIG_PSEUDONYM_KEY" not in env
    assert env["PATH"] == "/bin" and env["PREFECT_HOME"] == "/x"
    assert env["PREFECT__SERVER_EPHEMERAL"] == "1"


def test_a_broken_server_database_is_moved_aside_with_one_line(tmp_path: Path):
    database = tmp_path / "prefect.db"
    database.write_bytes(b"this is not a SQLite database" * 200)
    (tmp_path / "prefect.db-wal").write_bytes(b"\0" * 100)
    note = reset_broken_database(tmp_path)
    assert note is not None and "\n" not in note
    assert note.startswith(f"Prefect's local database {database} was unreadable (")
    assert "started afresh" in note
    assert not database.exists() and not (tmp_path / "prefect.db-wal").exists()
    assert len(list(tmp_path.glob("prefect.db.broken-*"))) == 1  # kept, for a post-mortem


def test_a_sound_or_missing_database_is_left_alone(tmp_path: Path):
    import sqlite3

    assert reset_broken_database(tmp_path) is None  # none yet: Prefect creates it
    con = sqlite3.connect(tmp_path / "prefect.db")
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    assert database_problem(tmp_path / "prefect.db") is None
    assert reset_broken_database(tmp_path) is None
    assert (tmp_path / "prefect.db").exists()
