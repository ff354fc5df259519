"""The refresh deployed on a real Prefect server, run by a process worker (deploy/README.md).

Follows the README's steps with an isolated PREFECT_HOME on a free loopback port:
server, work pool, Secret block, `prefect deploy --all`, worker, `prefect deployment
run`. The worker's environment has no IVIG_PSEUDONYM_KEY, so a completed run proves the
key came from the Secret block. Everything started is stopped, and checked to be gone.

It runs twice: on the server's default SQLite database, and on PostgreSQL (a throw-away
cluster, the README's production set-up), where the runs must be in PostgreSQL and the
server's log free of tracebacks (on SQLite, `database is locked` errors with their
tracebacks were logged during the first run).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import asyncpg
import duckdb
import pytest
from postgres_cluster import Cluster, postgres_bin, throwaway_cluster

from ivig_platform.demo import write_demo_inbox
from ivig_platform.orchestration.processes import (
    ManagedProcess,
    free_port,
    isolated_env,
    port_is_free,
    prefect_cli,
    processes_marked,
    start_prefect_server,
    start_process,
)
from ivig_platform.warehouse.publish import published_path

pytestmark = [pytest.mark.server, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[1]
PREFECT_FILE = "deploy/prefect.yaml"  # relative to REPO, where `prefect deploy` runs
POOL = "ivig-process"
FLOW = "ivig-refresh"
RUN_TIMEOUT = 300.0  # a run takes ~1 min; a loaded 2-core machine can triple it
TEST_KEY = "server-test-key-5f0c2a9e41d7b3c8"  # only ever in the Secret block


def write_inbox(inbox: Path) -> list[str]:
    """A small demo inbox (3 hospitals, every format variant and fault); its site ids."""
    write_demo_inbox(inbox, n_sites=3, n_patients=12, seed=20261124)
    return sorted(p.name for p in inbox.iterdir() if p.is_dir() and not p.name.startswith("."))


def run_cli(env: dict[str, str], *args: str, stdin: str | None = None,
            timeout: float = 180) -> str:
    result = subprocess.run(
        list(args), env=env, cwd=REPO, input=stdin, capture_output=True, text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, (
        f"{' '.join(args)} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


async def wait_for_run(api_url: str, run_id: UUID, worker: ManagedProcess) -> dict:
    """Poll the API until the flow run is final; gather what the test checks."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        async with get_client() as client:
            deadline = time.monotonic() + RUN_TIMEOUT
            while True:
                run = await client.read_flow_run(run_id)
                if run.state is not None and run.state.is_final():
                    break
                if worker.popen.poll() is not None:
                    raise AssertionError(f"the worker exited:\n{worker.tail()}")
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"flow run still {run.state.name if run.state else None} after "
                        f"{RUN_TIMEOUT:.0f} s; worker log:\n{worker.tail()}"
                    )
                await asyncio.sleep(2)
            logs = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
            )
            nightly = await client.read_deployment_by_name(f"{FLOW}/nightly")
            on_demand = await client.read_deployment_by_name(f"{FLOW}/on-demand")
            return {"run": run, "logs": [entry.message for entry in logs],
                    "nightly": nightly, "on_demand": on_demand}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    postgres_bin() is None, reason="PostgreSQL is not installed"))])
def server_database(request) -> Iterator[Cluster | None]:
    """None for the server's own SQLite file, else a running throw-away PostgreSQL."""
    if request.param == "sqlite":
        yield None
    else:
        with throwaway_cluster() as cluster:
            yield cluster


async def flow_runs_in(cluster: Cluster) -> int:
    connection = await asyncpg.connect(cluster.dsn)
    try:
        return await connection.fetchval("SELECT count(*) FROM flow_run")
    finally:
        await connection.close()


def test_refresh_deployment_runs_on_a_real_server(tmp_path: Path,
                                                  server_database: Cluster | None):
    marker = uuid.uuid4().hex  # inherited by every process this test starts
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = isolated_env(tmp_path / "prefect-home", api_url, IVIG_PROCESS_MARKER=marker)
    assert "IVIG_PSEUDONYM_KEY" not in env
    inbox, warehouse = tmp_path / "inbox", tmp_path / "warehouse"
    sites = write_inbox(inbox)
    prefect = prefect_cli()
    timings: dict[str, float] = {}

    started = time.monotonic()
    server_env = env if server_database is None else {  # the README's step 1, production
        **env, "PREFECT_API_DATABASE_CONNECTION_URL": server_database.prefect_url}
    server = start_prefect_server(server_env, tmp_path / "logs" / "server.log", port=port)
    worker: ManagedProcess | None = None
    try:
        timings["server start"] = time.monotonic() - started
        run_cli(env, prefect, "work-pool", "create", POOL, "--type", "process")
        run_cli(env, prefect, "work-pool", "set-concurrency-limit", POOL, "1")
        run_cli(env, sys.executable, "-m", "ivig_platform.orchestration.secret",
                stdin=TEST_KEY + "\n")
        deploy_env = {
            **env,
            "IVIG_REPO": str(REPO),
            "IVIG_INBOX": str(tmp_path / "nightly" / "inbox"),
            "IVIG_WAREHOUSE": str(tmp_path / "nightly" / "warehouse"),
        }
        run_cli(deploy_env, prefect, "deploy", "--all", "--prefect-file", PREFECT_FILE,
                "--no-prompt")
        worker = start_process(
            "prefect worker", [prefect, "worker", "start", "--pool", POOL, "--limit", "1"],
            env, tmp_path / "logs" / "worker.log",
        )
        t0 = time.monotonic()
        out = run_cli(env, prefect, "deployment", "run", f"{FLOW}/on-demand",
                      "--param", f"inbox={inbox}", "--param", f"warehouse={warehouse}")
        run_id = UUID(re.search(r"UUID: ([0-9a-f-]{36})", out).group(1))
        seen = asyncio.run(wait_for_run(api_url, run_id, worker))
        timings["flow run"] = time.monotonic() - t0
    finally:
        stops: dict[str, str] = {}
        try:
            if worker is not None:
                stops["worker"] = worker.stop(timeout=10)
        finally:
            stops["server"] = server.process.stop()
    timings["total"] = time.monotonic() - started
    print("timings:", {k: round(v, 1) for k, v in timings.items()}, "stops:", stops)

    # Nothing left behind: no process of ours (flow runs have their own session), no port.
    deadline = time.monotonic() + 10
    while processes_marked(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_marked(marker) == []
    assert port_is_free(port)

    if server_database is not None:  # the runs went to PostgreSQL, no SQLite file beside
        assert asyncio.run(flow_runs_in(server_database)) >= 1
        assert not (tmp_path / "prefect-home" / "prefect.db").exists()
        assert "Traceback" not in server.process.log.read_text(), server.process.tail()

    run = seen["run"]
    assert run.state.is_completed(), (
        f"flow run ended {run.state.name}: {run.state.message}\n" + "\n".join(seen["logs"][-30:])
    )
    assert run.parameters == {"inbox": str(inbox), "warehouse": str(warehouse)}

    # The published file opens read-only and knows every site.
    con = duckdb.connect(str(published_path(warehouse)), read_only=True)
    try:
        site_rows = con.execute(
            "SELECT site_id, status FROM quality.site_delivery ORDER BY site_id"
        ).fetchall()
    finally:
        con.close()
    assert sorted({site for site, _ in site_rows}) == sites
    assert any(status == "accepted" for _, status in site_rows)

    # The key came from the Secret block and went nowhere else.
    assert seen["logs"], "the flow run left no logs to check"
    for text in (*seen["logs"], worker.log.read_text(), server.process.log.read_text()):
        assert TEST_KEY not in text

    # The deployments are the ones deploy/prefect.yaml describes.
    nightly, on_demand = seen["nightly"], seen["on_demand"]
    assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in nightly.schedules] == [
        ("0 2 * * *", "Europe/Madrid", True)
    ]
    assert nightly.parameters == {
        "inbox": deploy_env["IVIG_INBOX"], "warehouse": deploy_env["IVIG_WAREHOUSE"]
    }
    assert on_demand.schedules == [] and on_demand.parameters == {}
    for deployment in (nightly, on_demand):
        assert deployment.work_pool_name == POOL
        assert deployment.entrypoint == "flows/refresh.py:refresh"
        assert deployment.pull_steps == [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}
        ]
