"""Smoke test of the benchmark harness itself (benchmarks/run.py), on the 18-site demo.

No timing is asserted — the numbers of a shared test machine mean nothing — only that one
run of every scenario completes and that the JSON and the Markdown table carry what the
issue asks for. Slow (a few full refreshes): `-m "not benchmark_smoke"` leaves it out.
"""

from __future__ import annotations

import json
import sys

import pytest

pytestmark = [pytest.mark.benchmark_smoke, pytest.mark.timeout(1800)]


def test_harness_writes_json_and_markdown(tmp_path, monkeypatch):
    from benchmarks import run

    out, work, inboxes = tmp_path / "results", tmp_path / "work", tmp_path / "inboxes"
    monkeypatch.setattr(sys, "argv", ["benchmarks.run"])
    assert run.main(["--sizes", "small", "--runs", "1", "--out", str(out), "--work", str(work),
                     "--inboxes", str(inboxes)]) == 0

    result = json.loads((out / "small.json").read_text())
    assert result["spec"] == {"sites": 18, "patients": 78, "seed": run.SEED}
    machine = result["machine"]
    assert machine["cpu_count"] >= 1 and machine["memory_total_gb"] > 0
    assert {"python", "date", "versions"} <= machine.keys()
    assert {"duckdb", "polars"} <= machine["versions"].keys()

    sample_run = result["runs"]["0"]
    assert sample_run["complete"], {k: v.get("error") for k, v in sample_run.items()
                                    if isinstance(v, dict)}
    for scenario in ("floor", "cold", "no_change", "one_site", "five_site"):
        sample = sample_run[scenario]
        assert sample["ok"] and sample["exit_code"] == 0
        assert sample["wall_s"] > 0 and sample["peak_rss_mb"] > 0
    assert sample_run["no_change"]["unchanged"] is True
    assert set(run.STAGES) <= sample_run["cold"]["stages"].keys()
    assert sample_run["one_site"]["redelivery"]["status"] == "accepted"
    five = sample_run["five_site"]["redeliveries"]
    assert len({r["site_id"] for r in five}) == 5
    assert all(r["status"] == "accepted" for r in five), five
    assert sample_run["floor"]["rows_total"] > 0

    agg = result["aggregate"]
    for scenario in ("floor", "cold", "no_change", "one_site", "five_site"):
        assert {"median_s", "min_s", "max_s", "n", "peak_rss_mb"} <= agg[scenario].keys()
    assert agg["cold"]["rows_landed"] > 0
    assert set(run.STAGES) <= agg["cold"]["stages"].keys()
    assert {"median_s", "min_s", "max_s"} <= agg["floor"]["load"].keys()

    overhead = result["overhead"]
    for kind in ("new_prefect_home", "existing_prefect_home"):
        assert {"import_flows_refresh", "first_flow_run_incl_server_start"} <= \
            overhead[kind].keys()
    assert overhead["importtime"]["by_package_self_ms"]

    readme = (out / "README.md").read_text()
    for text in ("| (a) cold full refresh |", "| (b) no-change refresh |",
                 "| (c) one-site refresh |", "| (e) five-site refresh |",
                 "Five-site refresh, same stages:", "## Targets (issue 7)",
                 "no-change refresh ≤ 5 s", "peak RSS ≤ 4 GB",
                 "## (d) Stages of the cold refresh", "| landing |",
                 "## Fixed overhead", "cores"):
        assert text in readme, text
