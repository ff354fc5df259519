"""The fixed costs of a refresh process, without any data: imports and Prefect's start.

Usage: python -m benchmarks._overhead_child WAREHOUSE SUMMARY_JSON

In one process, with the environment the CLI sets (`configure_local_prefect`, PREFECT_HOME
under WAREHOUSE/.prefect): time to import the CLI module, to import `flows.refresh`
(Prefect, dbt's runner, Great Expectations, Polars, …), then to run a flow that does
nothing twice — the first run includes starting Prefect's temporary local server, the
second is what every further flow run costs once the server is up.
"""

from __future__ import annotations

import sys
import time

from benchmarks._summary import write_summary

T0 = time.perf_counter()


def main(argv: list[str]) -> int:
    from pathlib import Path

    warehouse, out = Path(argv[0]), Path(argv[1])
    marks: dict[str, float] = {}
    t = time.perf_counter()
    from ivig_platform import cli

    marks["import_cli"] = time.perf_counter() - t
    warehouse.mkdir(parents=True, exist_ok=True)
    cli.configure_local_prefect(warehouse)
    t = time.perf_counter()
    import flows.refresh  # noqa: F401 - the import is what is measured

    marks["import_flows_refresh"] = time.perf_counter() - t
    from prefect import flow, task

    @task
    def nothing_task() -> int:
        return 1

    @flow(name="bench-noop")
    def noop() -> int:
        return nothing_task()

    t = time.perf_counter()
    noop()
    marks["first_flow_run_incl_server_start"] = time.perf_counter() - t
    t = time.perf_counter()
    noop()
    marks["second_flow_run"] = time.perf_counter() - t
    marks["process_until_here"] = time.perf_counter() - T0
    write_summary(out, marks)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
