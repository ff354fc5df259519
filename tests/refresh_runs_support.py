"""Real `ivig refresh` processes for the run-level tests (issue 10): one small inbox and one
published warehouse per session, copied (hard links and Prefect's migrated database
included) by each test that changes them, so the suite pays for one cold refresh only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ivig_platform.demo import write_demo_inbox
from ivig_platform.orchestration.processes import MARKER_VARIABLE, processes_marked

IVIG = str(Path(sys.executable).parent / "ivig")
KEY_A = "run-test-key-A-0123456789abcdef"
KEY_B = "run-test-key-B-fedcba9876543210"
UNUSABLE = ("..evil", "bad name")


def cli_env(key: str = KEY_A, marker: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"IVIG_PSEUDONYM_KEY": key, "DO_NOT_TRACK": "1",
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
                MARKER_VARIABLE: marker or uuid.uuid4().hex})
    return env


@contextmanager
def running_prefect_server(home: Path) -> Iterator[dict[str, str]]:
    """One `prefect server` for a module's refreshes (none pays the temporary server's
    start): the variables that point a child `ivig refresh` at it."""
    from ivig_platform.orchestration.processes import start_prefect_server

    server_env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    server_env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
                      DO_NOT_TRACK="1", PREFECT_UI_ENABLED="false")
    server = start_prefect_server(server_env, home / "server.log")
    try:
        yield {"PREFECT_API_URL": server.api_url, "PREFECT_HOME": str(home)}
    finally:
        server.process.stop()


def refresh_args(inbox: Path, warehouse: Path, *extra: str) -> list[str]:
    return [IVIG, "refresh", "--inbox", str(inbox), "--warehouse", str(warehouse), *extra]


def run_cli(args: list[str], env: dict[str, str], timeout: float = 600
            ) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)


def copy_tree(source: Path, target: Path) -> Path:
    """`cp -a`: hard links (versions/) and Prefect's database come along as they are."""
    subprocess.run(["cp", "-a", str(source), str(target)], check=True)
    return target


@dataclass(frozen=True)
class Published:
    """What is live in a warehouse: the run of the file, of the report, of the docs."""

    database: str
    report: str
    docs: str

    @property
    def consistent(self) -> bool:
        return self.database == self.report == self.docs


def live(warehouse: Path) -> Published:
    import json
    import re

    con = duckdb.connect(str(warehouse / "ivig.duckdb"), read_only=True)
    try:
        database = con.execute("SELECT run_id FROM quality.refresh_run").fetchone()[0]
        con.execute("SELECT count(*) FROM marts.dim_patient").fetchone()  # intact
    finally:
        con.close()
    found = re.search(r"<!-- ivig run: (\S+) -->", (warehouse / "report.html").read_text())
    docs = json.loads((warehouse / "docs" / "_run.json").read_text())["run_id"]
    assert (warehouse / "docs" / "dbt" / "static_index.html").exists()
    assert (warehouse / "docs" / "data-docs" / "index.html").exists()
    return Published(database, found.group(1) if found else "", docs)


def wait_until_gone(marker: str, seconds: float = 15) -> list[int]:
    deadline = time.monotonic() + seconds
    while processes_marked(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    return processes_marked(marker)


def write_small_inbox(inbox: Path) -> Path:
    """Three hospitals (every format variant and fault, a superseded and a rejected
    delivery) and two folders that cannot be sites."""
    write_demo_inbox(inbox, n_sites=3, n_patients=12, seed=20261124)
    for name in UNUSABLE:
        (inbox / name / "2026-11-01").mkdir(parents=True)
        (inbox / name / "2026-11-01" / "patients.csv").write_text("patient_id\n1\n")
    return inbox


def publish_first(inbox: Path, warehouse: Path) -> subprocess.CompletedProcess:
    """A cold `ivig refresh` of `inbox` with key A: the previous run of the tests."""
    first = run_cli(refresh_args(inbox, warehouse), cli_env())
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    return first
