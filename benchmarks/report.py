"""`benchmarks/results/README.md` from the `<size>.json` files next to it.

    .venv/bin/python -m benchmarks.report [--out benchmarks/results]

The targets are those of issue 7, on a 2-core, 24 GB machine: at 20,000 patients a full
refresh ≤ 60 s and ≤ 4 × the floor + 15 s of fixed overhead; a no-change refresh ≤ 5 s; a
one-site refresh ≤ 25 % of the full one; at 100,000 patients a peak RSS ≤ 4 GB and no
cost growing faster than linearly with the rows. A verdict needs the size it is stated at;
until then it reads `n/a`.

And those of issue 12, as ratios to the plain-script baseline of the same run (scenario
`script`, `_script_child.py`), at 200 sites / 20,000 patients: against a running Prefect
server (mode `server`, results in `prefect-server/` beside the command line's) a full
refresh ≤ 1.0 ×, a one-site refresh ≤ 0.25 × and a no-change refresh ≤ 1 s; on the
command line with nothing running (mode `cli`) a full refresh ≤ 1.5 ×. Results written
before the modes and the script existed still read: a file's mode is its `mode`, else what
its `prefect` line says; a size without a script run has no ratio.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ORDER = ("small", "medium", "large")
STAGES = ("landing", "gate", "build", "dbt", "publish", "report")
SCENARIOS = ("floor", "cold", "script", "no_change", "one_site", "five_site")
#: Where the results of each mode are, under the folder of the command line's.
MODE_FOLDERS = {"cli": ".", "server": "prefect-server"}
MODE_NAMES = {"cli": "command line", "server": "running server"}
#: Issue 12's targets: (scenario, mode, limit, unit) — unit "×" is a ratio to the script's
#: wall time, "s" seconds; all stated at TARGET_SIZE.
SCRIPT_TARGETS = (("cold", "server", 1.0, "×"), ("one_site", "server", 0.25, "×"),
                  ("no_change", "server", 1.0, "s"), ("cold", "cli", 1.5, "×"))
TARGET_SIZE = "medium"
SCENARIO_NAMES = {"cold": "full refresh", "one_site": "one-site refresh",
                  "five_site": "five-site refresh", "no_change": "no-change refresh"}
FULL_LIMIT_S = 60.0
FLOOR_FACTOR, FIXED_OVERHEAD_S = 4.0, 15.0
NO_CHANGE_LIMIT_S = 5.0
ONE_SITE_SHARE = 0.25
RSS_LIMIT_MB = 4096.0
# a segment's marginal cost per row may exceed the previous segment's by this much and
# still count as linear (timings on a shared 2-core machine are noisy)
LINEAR_TOLERANCE = 1.25


def load(out: Path) -> dict[str, dict]:
    results = {}
    for size in ORDER:
        path = out / f"{size}.json"
        if path.exists():
            results[size] = json.loads(path.read_text())
    return results


def mode_of(result: dict) -> str:
    """`cli` or `server`: the file's `mode`, else (older files) its `prefect` line."""
    if result.get("mode") in MODE_FOLDERS:
        return result["mode"]
    return "server" if str(result.get("prefect", "")).startswith("a running") else "cli"


def load_modes(out: Path) -> dict[str, dict[str, dict]]:
    """mode → size → result: the files in `out` (their own mode) and in its mode folders."""
    modes: dict[str, dict[str, dict]] = {}
    folders = dict.fromkeys([out, *(out / f for f in MODE_FOLDERS.values())])
    for folder in folders:
        for size, result in load(folder).items():
            modes.setdefault(mode_of(result), {}).setdefault(size, result)
    return {m: modes[m] for m in MODE_FOLDERS if m in modes}


def _get(result: dict, scenario: str, key: str = "median_s"):
    return result.get("aggregate", {}).get(scenario, {}).get(key)


def _s(value) -> str:
    return "–" if value is None else f"{value:.1f} s"


def _spread(entry: dict | None) -> str:
    if not entry or "median_s" not in entry:
        return "–"
    if entry.get("n", 1) == 1:
        return f"{entry['median_s']:.1f} s"
    return f"{entry['median_s']:.1f} s ({entry['min_s']:.1f}–{entry['max_s']:.1f}, n={entry['n']})"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**PASS**" if ok else "**MISS**")


def rows_of(result: dict) -> int | None:
    return result.get("aggregate", {}).get("floor", {}).get("rows_total")


def marginal(points: list[tuple[str, int, float]]) -> list[tuple[str, float]]:
    """µs per extra row between consecutive (size, rows, seconds) points."""
    out = []
    for (a, ra, ta), (b, rb, tb) in zip(points, points[1:], strict=False):
        if rb > ra:
            out.append((f"{a}→{b}", (tb - ta) / (rb - ra) * 1e6))
    return out


def targets(results: dict[str, dict]) -> list[tuple[str, str, str, str]]:
    """(target, where, measured, verdict) rows."""
    rows = []
    med = results.get("medium")
    cold_m = _get(med, "cold") if med else None
    rows.append(("full refresh ≤ 60 s", "20,000 patients", _s(cold_m),
                 _verdict(None if cold_m is None else cold_m <= FULL_LIMIT_S)))
    for size, result in results.items():
        cold, floor = _get(result, "cold"), _get(result, "floor", "load")
        floor_m = floor.get("median_s") if floor else None
        if cold is None or floor_m is None:
            continue
        bound = FLOOR_FACTOR * floor_m + FIXED_OVERHEAD_S
        rows.append((f"full ≤ 4 × floor + 15 s (= {bound:.1f} s)",
                     f"{size}{' (the target)' if size == 'medium' else ''}",
                     f"{cold:.1f} s (floor {floor_m:.2f} s)",
                     _verdict(cold <= bound) if size == "medium" else
                     ("(pass)" if cold <= bound else "(miss)")))
    for size, result in results.items():
        nochange = _get(result, "no_change")
        if nochange is not None:
            rows.append(("no-change refresh ≤ 5 s", size, _s(nochange),
                         _verdict(nochange <= NO_CHANGE_LIMIT_S)))
    for size, result in results.items():
        one, cold = _get(result, "one_site"), _get(result, "cold")
        if one is not None and cold:
            share = one / cold
            rows.append(("one-site refresh ≤ 25 % of full", size,
                         f"{one:.1f} s = {share:.0%} of {cold:.1f} s",
                         _verdict(share <= ONE_SITE_SHARE) if size != "small" else
                         ("(pass)" if share <= ONE_SITE_SHARE else "(miss)")))
    peak = {size: max((_get(r, s, "peak_rss_mb") or 0) for s in ("cold", "no_change",
                                                                   "one_site"))
            for size, r in results.items()}
    for size, mb in peak.items():
        if mb:
            rows.append(("peak RSS ≤ 4 GB", size + (" (the target)" if size == "large" else ""),
                         f"{mb:,.0f} MB",
                         _verdict(mb <= RSS_LIMIT_MB) if size == "large" else
                         ("(pass)" if mb <= RSS_LIMIT_MB else "(miss)")))
    points = [(size, rows_of(r), _get(r, "cold")) for size, r in results.items()
              if rows_of(r) and _get(r, "cold") is not None]
    seg = marginal(points)
    text = "; ".join(f"{name}: {cost:.0f} µs/row" for name, cost in seg) or "–"
    linear = None
    if len(seg) == 2 and {p[0] for p in points} == set(ORDER):
        linear = seg[1][1] <= LINEAR_TOLERANCE * max(seg[0][1], 1e-9)
    rows.append(("growth no faster than linear", "3 sizes", text, _verdict(linear)))
    return rows


def _ratio(result: dict, scenario: str) -> float | None:
    value, script = _get(result, scenario), _get(result, "script")
    return None if value is None or not script else value / script


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} ×"


def baseline_table(modes: dict[str, dict[str, dict]]) -> list[str]:
    """Per size and mode: the script's wall time and each refresh as a ratio to it."""
    lines = ["| at | Prefect | plain script | efficacy = mart_efficacy | full | one-site | "
             "five-site | no-change |", "|---|---|---:|---|---:|---:|---:|---:|"]
    for size in ORDER:
        for mode, results in modes.items():
            result = results.get(size)
            if result is None:
                continue
            script = result.get("aggregate", {}).get("script", {})
            matches = script.get("matches")
            cells = [f"{_s(_get(result, s))} = {_x(_ratio(result, s))}" if _ratio(result, s)
                     is not None else _s(_get(result, s)) if _get(result, s) is not None
                     else "failed" if _failed(result, s) else "–"
                     for s in ("cold", "one_site", "five_site", "no_change")]
            shown = "failed" if not script and _failed(result, "script") else _spread(
                script or None)
            lines.append(f"| {size} | {MODE_NAMES[mode]} | {shown} | "
                         + ("–" if matches is None else "yes" if matches else "**NO**")
                         + " | " + " | ".join(cells) + " |")
    return lines


def script_targets(modes: dict[str, dict[str, dict]]) -> list[tuple[str, str, str, str]]:
    """(target, at, measured, verdict) of issue 12; verdicts only at TARGET_SIZE."""
    rows = []
    for scenario, mode, limit, unit in SCRIPT_TARGETS:
        target = (f"{SCENARIO_NAMES[scenario]} ≤ {limit:g} {unit}"
                  + (" the script" if unit == "×" else "") + f", {MODE_NAMES[mode]}")
        stated = False
        for size in ORDER:
            result = modes.get(mode, {}).get(size)
            value = None if result is None else (
                _ratio(result, scenario) if unit == "×" else _get(result, scenario))
            if value is None:
                continue
            matches = result.get("aggregate", {}).get("script", {}).get("matches")
            measured = (f"{_x(value)} ({_s(_get(result, scenario))} / "
                        f"{_s(_get(result, 'script'))})" if unit == "×" else _s(value))
            if unit == "×" and not matches:
                measured += " — the script's figures differ from mart_efficacy"
            ok = value <= limit and (matches or unit != "×")
            stated |= size == TARGET_SIZE
            rows.append((target, size + (" (the target)" if size == TARGET_SIZE else ""),
                         measured, _verdict(ok) if size == TARGET_SIZE else
                         ("(met)" if ok else "(not met)")))
        if not stated:
            why = (f"not run in mode {mode}" if TARGET_SIZE not in modes.get(mode, {})
                   else "no plain-script run in these results")
            rows.append((target, f"{TARGET_SIZE} (the target)", why, _verdict(None)))
    return rows


def run_notes(size: str, result: dict) -> list[str]:
    """Failed samples, samples' notes and a script whose figures differ from the mart's."""
    notes = []
    for key, run in sorted(result.get("runs", {}).items()):
        for scenario in SCENARIOS:
            sample = run.get(scenario)
            if sample and not sample.get("ok"):
                notes.append(f"{size} run {key} {scenario} failed: {sample.get('error')}")
            if sample and sample.get("note"):
                notes.append(f"{size} run {key} {scenario}: {sample['note']}")
            if sample and sample.get("ok") and sample.get("matches") is False:
                notes.append(f"**{size} run {key}: the plain script's figures differ from "
                             f"marts.mart_efficacy** — first difference: "
                             f"`{json.dumps(sample.get('first_difference'), default=str)}`")
    return notes


def _failed(result: dict, scenario: str) -> bool:
    return any(not r[scenario].get("ok") for r in result.get("runs", {}).values()
               if isinstance(r.get(scenario), dict))


def write_readme(out: Path) -> Path:
    results = load(out)
    lines = ["# Benchmark results", "",
             "Written by `benchmarks/report.py` from the `*.json` here; run "
             "`.venv/bin/python -m benchmarks.run` (see `benchmarks/README.md`). "
             "Times are whole processes (median, min–max over the runs); peak RSS is the "
             "whole process tree (the refresh and Prefect's temporary server).", ""]
    if not results:
        lines.append("No results yet.")
        (out / "README.md").write_text("\n".join(lines) + "\n")
        return out / "README.md"
    any_result = next(iter(results.values()))
    machine = any_result.get("machine", {})
    if any_result.get("prefect"):
        lines += [f"Prefect: {any_result['prefect']}.", ""]
    lines += [f"Machine: {machine.get('cpu_count')} cores ({machine.get('cpu_model')}), "
              f"{machine.get('memory_total_gb')} GB; Python {machine.get('python')}, "
              + ", ".join(f"{k} {v}" for k, v in machine.get("versions", {}).items())
              + f"; last run {machine.get('date')}.", ""]
    sizes = list(results)
    header = "| | " + " | ".join(
        f"{s} ({results[s]['spec']['sites']} sites / {results[s]['spec']['patients']:,} patients)"
        for s in sizes) + " |"
    lines += [header, "|---|" + "---:|" * len(sizes)]

    def row(label: str, cells: list[str]) -> None:
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    agg = {s: results[s].get("aggregate", {}) for s in sizes}
    row("inbox: deliveries / files / MB", [
        f"{results[s]['inbox'].get('deliveries')} / {results[s]['inbox'].get('files')} / "
        f"{results[s]['inbox'].get('bytes', 0) / 2**20:.1f}" for s in sizes])
    row("source rows (floor count)", [f"{rows_of(results[s]) or 0:,}" for s in sizes])
    row("rows landed / quarantined", [
        f"{agg[s].get('cold', {}).get('rows_landed', 0):,} / "
        f"{agg[s].get('cold', {}).get('rows_quarantined', 0):,}" for s in sizes])
    floors = {s: agg[s].get("floor", {}) for s in sizes}
    row("floor: DuckDB load (process)", [
        f"{_spread(floors[s].get('load'))} ({_s(floors[s].get('median_s'))})" for s in sizes])
    row("(a) cold full refresh", [_spread(agg[s].get("cold")) for s in sizes])
    row("(b) no-change refresh", [_spread(agg[s].get("no_change")) for s in sizes])
    row("(c) one-site refresh", [_spread(agg[s].get("one_site")) for s in sizes])
    row("(e) five-site refresh", [_spread(agg[s].get("five_site")) for s in sizes])
    row("(f) plain-script baseline", [_spread(agg[s].get("script")) for s in sizes])
    row("cold: CPU time (user+sys)", [_s(agg[s].get("cold", {}).get("cpu_median_s"))
                                      for s in sizes])
    row("peak RSS cold / one-site (MB)", [
        f"{agg[s].get('cold', {}).get('peak_rss_mb', 0):,.0f} / "
        f"{agg[s].get('one_site', {}).get('peak_rss_mb', 0):,.0f}" for s in sizes])
    row("load average (1 min) at start", [
        f"{agg[s].get('cold', {}).get('loadavg_1m_median', 0):.1f}" for s in sizes])

    lines += ["", "## Targets (issue 7)", "", "| target | at | measured | verdict |",
              "|---|---|---|---|"]
    lines += [f"| {t} | {w} | {m} | {v} |" for t, w, m, v in targets(results)]
    lines += ["", "Verdicts in parentheses are at a size the target is not stated for.", ""]

    modes = load_modes(out)
    lines += ["## Targets (issue 12: against the plain-script baseline of the same run)", "",
              "The baseline (`benchmarks/_script_child.py`) is the whole protocol as one "
              "plain Python process — the platform's own landing rules and pseudonyms, "
              "§7 windows and efficacy table, in memory with Polars; no Prefect, dbt, GX "
              "or warehouse. A script cannot hold a delivery back, so it takes each site's "
              "in-force delivery from the cold refresh (its accepted deliveries, as in "
              "`quality.site_delivery`) and reads only those. Its efficacy rows are "
              "checked against `marts.mart_efficacy` of the cold warehouse.", ""]
    lines += baseline_table(modes)
    lines += ["", "| target | at | measured | verdict |", "|---|---|---|---|"]
    lines += [f"| {t} | {w} | {m} | {v} |" for t, w, m, v in script_targets(modes)]
    lines += ["", "The full-refresh targets are against the cold refresh; a ratio counts only "
              "when the script's figures equal mart_efficacy's.", ""]

    lines += ["## (d) Stages of the cold refresh (median seconds)", "",
              "| stage | " + " | ".join(sizes) + " | marginal µs/row |",
              "|---|" + "---:|" * (len(sizes) + 1)]
    for stage in (*STAGES, "total"):
        cells, points = [], []
        for s in sizes:
            entry = agg[s].get("cold", {}).get("stages", {}).get(stage)
            cells.append("–" if not entry else f"{entry['median_s']:.1f}")
            if entry and rows_of(results[s]):
                points.append((s, rows_of(results[s]), entry["median_s"]))
        seg = "; ".join(f"{n} {c:.1f}" for n, c in marginal(points)) or "–"
        lines.append(f"| {stage} | " + " | ".join(cells) + f" | {seg} |")
    for label, key in (("outside the flow's `total` (flow-run set-up, artifacts; Prefect's "
                        "temporary server starts before the flow call, in `startup` below)",
                        "flow_overhead_s"),
                       ("process teardown (server shutdown)", "teardown_s")):
        cells = [_s(agg[s].get("cold", {}).get(key)) for s in sizes]
        lines.append(f"| {label} | " + " | ".join(cells) + " | |")
    phase_names = ("startup", "landing", "gate", "build", "dbt", "gate_marts", "report",
                   "finish")
    lines += ["", "Phases from the refresh's progress lines (cold; `startup` = interpreter, "
              "imports, Prefect's server, flow-run set-up; `gate` = the per-site landing gate; "
              "`gate_marts` = mart gate + Data Docs; `finish` = publish to exit): median "
              "seconds / peak RSS of the process tree in MB", "",
              "| phase | " + " | ".join(sizes) + " |", "|---|" + "---:|" * len(sizes)]
    for phase in phase_names:
        cells = []
        for s in sizes:
            cold = agg[s].get("cold", {})
            sec = cold.get("phase_seconds", {}).get(phase)
            mb = cold.get("peak_rss_mb_by_phase", {}).get(phase)
            cells.append("–" if sec is None and mb is None else
                         f"{sec or 0:.1f} s / {mb or 0:,.0f} MB")
        lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    for scenario, title in (("one_site", "One-site"), ("five_site", "Five-site")):
        lines += ["", f"{title} refresh, same stages:", "",
                  "| stage | " + " | ".join(sizes) + " |", "|---|" + "---:|" * len(sizes)]
        for stage in (*STAGES, "total"):
            cells = []
            for s in sizes:
                entry = agg[s].get(scenario, {}).get("stages", {}).get(stage)
                cells.append("–" if not entry else f"{entry['median_s']:.1f}")
            lines.append(f"| {stage} | " + " | ".join(cells) + " |")

    for s in sizes:
        over = results[s].get("overhead")
        if not over:
            continue
        m = over.get("median", {})
        cold = agg[s].get("cold", {})
        stages_sum = sum(v["median_s"] for k, v in cold.get("stages", {}).items()
                         if k != "total")
        flow_total = cold.get("stages", {}).get("total", {}).get("median_s")
        server = m.get("first_flow_run_incl_server_start")
        lines += ["", f"## Fixed overhead (measured on {s})", "",
                  f"- whole cold refresh {_s(cold.get('median_s'))}; the flow's stages add up "
                  f"to {stages_sum:.1f} s (`total` {_s(flow_total)}); outside the flow's "
                  f"`total`: {_s(cold.get('flow_overhead_s'))} in the flow call, "
                  f"{_s(cold.get('teardown_s'))} of teardown.",
                  f"- a process that only imports and runs an empty flow twice: "
                  f"{_s(m.get('wall_s'))} — import the CLI {_s(m.get('import_cli'))}, import "
                  f"`flows.refresh` {_s(m.get('import_flows_refresh'))}, first flow run "
                  f"(starts Prefect's local server on a new PREFECT_HOME) {_s(server)}, "
                  f"second flow run {_s(m.get('second_flow_run'))}."]
        again = over.get("existing_prefect_home", {})
        if again:
            lines.append(
                f"- the same on the PREFECT_HOME left by the previous process (every refresh "
                f"of an existing warehouse): {_s(again.get('wall_s'))}, first flow run "
                f"{_s(again.get('first_flow_run_incl_server_start'))}.")
        imp = over.get("importtime", {})
        if imp:
            top = ", ".join(f"{k} {v:.0f}" for k, v in
                            list(imp.get("by_package_self_ms", {}).items())[:10])
            lines += [f"- `{imp.get('command')}`: {imp.get('total_self_ms', 0) / 1000:.1f} s "
                      f"over {imp.get('modules')} modules; by package (ms): {top}."]

    notes = []
    missing = [s for s in ORDER if s not in results]
    if missing:
        notes.append(f"not run yet: {', '.join(missing)} — the 100,000-patient targets (peak RSS, "
                     "growth over three points) need `--sizes large`")
    for s in sizes:
        n = agg[s].get("cold", {}).get("n", 0)
        if n < 3:
            notes.append(f"{s}: {n} run(s) only — indicative, no spread")
    profiles = sorted(p.name for p in out.glob("profile-*.txt"))
    if profiles:
        notes.append("profiles (py-spy): " + ", ".join(f"`{n}`" for n in profiles))
    own = mode_of(any_result)
    for mode, mode_results in modes.items():
        where = "" if mode == own else f"{MODE_NAMES[mode]} ({MODE_FOLDERS[mode]}/): "
        for s in (s for s in ORDER if s in mode_results):
            notes += [where + n for n in run_notes(s, mode_results[s])]
    for s in sizes:
        fps = agg[s].get("code_fingerprints", [])
        if len(fps) > 1:
            notes.append(f"{s}: the runs span {len(fps)} versions of the platform code")
        reader = agg[s].get("floor", {}).get("xlsx_reader")
        if reader and reader != "extension":
            notes.append(f"{s}: the floor read XLSX with {reader}, not DuckDB's excel extension")
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    path = out / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    print(write_readme(parser.parse_args().out))


if __name__ == "__main__":
    main()
