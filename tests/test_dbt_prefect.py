"""build_marts inside a Prefect flow runs dbt through PrefectDbtRunner: one task per node.

Runs in a subprocess with its own PREFECT_HOME, so Prefect's temporary local server (about
10 s to start) and its settings stay out of the other tests. The build is limited to one
staging model and its tests: every node becomes a Prefect task, which is what is checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path

    sys.path[:0] = [sys.argv[2], sys.argv[3]]
    from dbt_fixtures import build_fixture_database

    root = Path(sys.argv[1])
    fixture = build_fixture_database(root / "build.duckdb")

    from prefect import flow
    from prefect.context import get_run_context

    from ivig_platform.modeling import build_marts

    @flow(name="dbt-in-a-flow")
    def refresh():
        outcome = build_marts(
            fixture.path, target_dir=root / "target", docs_dir=None,
            select=["stg_quality__site_delivery"], parse_cache_dir=root / "parse-cache",
        )
        return outcome, str(get_run_context().flow_run.id)

    outcome, flow_run_id = refresh()

    import duckdb
    duckdb.connect(str(fixture.path)).close()  # read-write: the file is not locked

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterTaskRunId,
    )

    async def task_runs_and_logs():
        async with get_client() as client:
            runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                limit=200,
            )
            names = {run.name: run for run in runs}
            model = names.get("model stg_quality__site_delivery")
            logs = []
            if model is not None:
                logs = await client.read_logs(
                    log_filter=LogFilter(task_run_id=LogFilterTaskRunId(any_=[model.id]))
                )
            return (
                {name: run.state_type.value for name, run in names.items()},
                [log.message for log in logs],
            )

    # Prefect ships log lines to the server in background batches: drain them, then read
    # again for a while, so a loaded machine does not make the check race the log worker.
    import time
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=60)
    deadline = time.monotonic() + 60
    while True:
        tasks, model_logs = asyncio.run(task_runs_and_logs())
        found = any("stg_quality__site_delivery" in message for message in model_logs)
        if found or time.monotonic() > deadline:
            break
        time.sleep(1)
    dbt_log = (root / "target" / "logs" / "dbt.log").read_text()
    print("RESULT " + json.dumps({
        "success": outcome.success,
        # one parse serves every command: none of them parses again
        "full_parses": dbt_log.count("Unable to do partial parsing"),
        "runner": outcome.runner,
        "failures": [str(f) for f in outcome.failures],
        "counts": outcome.counts,
        "tasks": tasks,
        "model_logs": model_logs,
    }))
    """
)


@pytest.mark.server
def test_build_marts_in_a_flow_runs_each_model_as_a_task(tmp_path):
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        # a fresh PREFECT_HOME migrates its database first: allow more than the 20 s default
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    }
    env.pop("PREFECT_API_URL", None)  # always the temporary local server
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), str(REPO / "tests"), str(REPO)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))

    assert result["success"], result["failures"]
    assert result["runner"] == "PrefectDbtRunner"
    # the first parse finds no saved one (an empty cache); PrefectDbtRunner's build then
    # runs on that parse instead of parsing the project again
    assert result["full_parses"] == 1
    tasks = result["tasks"]
    assert tasks.get("model stg_quality__site_delivery") == "COMPLETED", tasks
    # Data tests run in one plain dbt invocation, not as ~200 tasks (see dbt_build.py);
    # they still ran and count in the outcome.
    assert not any(name.startswith("test ") for name in tasks), tasks
    assert result["counts"].get("pass", 0) >= 5
    # the model's dbt log lines are attached to its own task run
    assert any("stg_quality__site_delivery" in message for message in result["model_logs"])
