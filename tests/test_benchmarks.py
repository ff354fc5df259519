"""Smoke test of the benchmark harness itself (benchmarks/run.py), on the 18-site demo.

No timing is asserted — the numbers of a shared test machine mean nothing — only that one
run of every scenario completes, that the plain-script baseline computes mart_efficacy's
figures, and that the JSON and the Markdown table carry what the issues ask for. Slow (a
few full refreshes): `-m "not benchmark_smoke"` leaves it out; the comparison of the
script's figures with the mart's is also pinned on its own, fast.
"""

from __future__ import annotations

import json
import sys

import pytest

from benchmarks._efficacy_check import compare_efficacy

ROW = {"subgroup": "all", "subgroup_value": "all", "measure": "mrc", "n_paired": 32,
       "n_baseline_only": 1, "n_post_only": 0, "n_responders": 20, "baseline_mean": 2.1875,
       "baseline_median": 2.0, "post_mean": 3.40625, "post_median": 3.5, "mean_change": 1.21875,
       "ttest_p": 1.2352810280041765e-08, "wilcoxon_p": None, "baseline_sd": 0.5}


@pytest.mark.parametrize(("mart", "matches", "difference"), [
    ([ROW], True, None),
    # float noise of a sum's order is the same figure; a p-value's last digits are not
    ([{**ROW, "mean_change": 1.21875 + 1e-15}], True, None),
    ([{**ROW, "ttest_p": 1.2352810e-08 * 1.001}], False, "ttest_p"),
    ([{**ROW, "n_paired": 31}], False, "n_paired"),
    ([{**ROW, "wilcoxon_p": 0.5}], False, "wilcoxon_p"),
    # columns beyond the key figures are not compared
    ([{**ROW, "baseline_sd": 9.0}], True, None),
    ([{**ROW, "measure": "ck"}], False, "only_in"),
    ([], False, "only_in"),
])
def test_script_figures_are_checked_against_mart_efficacy(mart, matches, difference):
    result = compare_efficacy([ROW], mart)
    assert result["matches"] is matches
    if difference is None:
        assert result["first_difference"] is None
    else:
        first = result["first_difference"]
        assert first.get("column") == difference or difference in first, first


def test_no_rows_is_no_match():
    assert compare_efficacy([], [])["matches"] is False


@pytest.mark.benchmark_smoke
@pytest.mark.timeout(1800)
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
    assert result["mode"] == "cli"
    for scenario in ("floor", "cold", "script", "no_change", "one_site", "five_site"):
        sample = sample_run[scenario]
        assert sample["ok"] and sample["exit_code"] == 0
        assert sample["wall_s"] > 0 and sample["peak_rss_mb"] > 0
    script = sample_run["script"]
    assert script["matches"] is True, script.get("first_difference")
    assert script["efficacy_rows"] > 0 and script["first_difference"] is None
    assert script["rows_landed_total"] == sample_run["cold"]["rows_landed"]
    assert script["deliveries"] == sample_run["cold"]["accepted"]
    assert {"imported", "landed", "windowed", "efficacy"} <= script["steps"].keys()
    assert sample_run["no_change"]["unchanged"] is True
    assert set(run.STAGES) <= sample_run["cold"]["stages"].keys()
    assert sample_run["one_site"]["redelivery"]["status"] == "accepted"
    five = sample_run["five_site"]["redeliveries"]
    assert len({r["site_id"] for r in five}) == 5
    assert all(r["status"] == "accepted" for r in five), five
    assert sample_run["floor"]["rows_total"] > 0

    agg = result["aggregate"]
    for scenario in ("floor", "cold", "script", "no_change", "one_site", "five_site"):
        assert {"median_s", "min_s", "max_s", "n", "peak_rss_mb"} <= agg[scenario].keys()
    assert agg["script"]["matches"] is True
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
                 "## Fixed overhead", "cores", "| (f) plain-script baseline |",
                 "## Targets (issue 12", "| small | command line |",
                 "full refresh ≤ 1.5 × the script, command line"):
        assert text in readme, text


@pytest.mark.parametrize(("result", "mode"), [
    ({"mode": "server", "prefect": "each refresh starts Prefect's temporary server"}, "server"),
    # files written before --modes: the `prefect` line says it
    ({"prefect": "a running `prefect server` (one for the whole benchmark)"}, "server"),
    ({"prefect": "each refresh starts Prefect's temporary server"}, "cli"),
    ({}, "cli"),
])
def test_a_results_file_says_its_mode(result, mode):
    from benchmarks.report import mode_of

    assert mode_of(result) == mode


def _medium(script: float | None, matches: bool = True, **walls: float) -> dict:
    aggregate = {s: {"median_s": v, "n": 1} for s, v in walls.items()}
    if script is not None:
        aggregate["script"] = {"median_s": script, "n": 1, "matches": matches}
    return {"medium": {"aggregate": aggregate, "runs": {}}}


@pytest.mark.parametrize(("modes", "verdicts"), [
    # full 1.5 × on the command line meets its target; the server's are all met
    ({"cli": _medium(20.0, cold=30.0),
      "server": _medium(20.0, cold=20.0, one_site=5.0, no_change=0.9)},
     ["**PASS**", "**PASS**", "**PASS**", "**PASS**"]),
    ({"cli": _medium(20.0, cold=30.1),
      "server": _medium(20.0, cold=20.1, one_site=5.1, no_change=1.1)},
     ["**MISS**", "**MISS**", "**MISS**", "**MISS**"]),
    # a script that computes other figures is no baseline: its ratios meet nothing
    ({"cli": _medium(20.0, False, cold=10.0),
      "server": _medium(20.0, False, cold=10.0, one_site=1.0, no_change=0.5)},
     ["**MISS**", "**MISS**", "**PASS**", "**MISS**"]),
    # results without a script run (before issue 12) or without a server run: no verdict
    ({"cli": _medium(None, cold=30.0)}, ["n/a", "n/a", "n/a", "n/a"]),
])
def test_issue_12_targets_are_ratios_to_the_script(modes, verdicts):
    from benchmarks.report import script_targets

    rows = [r for r in script_targets(modes) if r[1].startswith("medium")]
    assert [r[3] for r in rows] == verdicts, rows
