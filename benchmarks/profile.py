"""Profile one refresh child under py-spy and name what dominates.

    .venv/bin/python -m benchmarks.profile --size medium --scenario cold [--rate 20] [--idle]

Prepares the scenario like `benchmarks.run` (a hard-linked copy of the cached inbox; for
`one_site`/`no_change` a cold refresh first, not profiled), then runs
`benchmarks._refresh_child` under `py-spy record --subprocesses` (every thread of the
refresh and of Prefect's server process). Without `--idle` only samples of threads that
are running count, so the profile is where the CPU goes. The summary goes to
`--out` (default `benchmarks/results/`) as `profile-<size>-<scenario>.txt`; the raw
collapsed stacks (input for flamegraph.pl or speedscope, megabytes) stay in
`WORK/<size>/profile-<scenario>/profile.collapsed`. py-spy is not a project dependency:
`uv pip install --python .venv/bin/python py-spy`.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

from benchmarks import run as bench

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
PACKAGES = ("ivig_platform", "flows", "great_expectations", "dbt", "prefect_dbt", "prefect",
            "duckdb", "polars", "pandas", "pyarrow", "sqlalchemy", "pydantic", "jinja2",
            "altair", "vl_convert", "fastexcel", "numpy", "scipy", "uvicorn", "starlette",
            "fastapi", "httpx", "httpcore", "anyio", "asyncio", "aiosqlite", "sqlite3",
            "rich", "typer", "importlib", "concurrent", "threading", "json", "logging")


def parse_frame(frame: str) -> tuple[str, str]:
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip(), ""
    return m.group("func"), m.group("file")


def package_of(file: str) -> str:
    path = file.replace("\\", "/")
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif "/lib/python3" in path:
        path = path.split("/lib/python3", 1)[1].split("/", 1)[-1]
    else:
        for root in ("ivig_platform", "flows", "benchmarks"):
            if f"/{root}/" in path or path.startswith(f"{root}/"):
                path = root + "/" + path.split(f"{root}/", 1)[1]
                break
    head = path.split("/", 1)[0].removesuffix(".py")
    return head or "?"


def _main_step(names: list[str]) -> str:
    """What the refresh's main thread is doing: the flow function's callee, or before it."""
    if "refresh (flows)" in names:
        i = names.index("refresh (flows)")
        callee = names[i + 1] if i + 1 < len(names) else "(its own code)"
        if callee.startswith("Task.__call__"):  # a task called in the flow's thread
            task = next((n for n in names[i + 2:] if n.endswith("(flows)")), None)
            return f"flow: task {task}" if task else "flow: a task (Prefect's engine)"
        return "flow: " + callee
    if "Flow.__call__ (prefect)" in names:
        if any(n.startswith("SubprocessASGIServer.start") for n in names):
            return "before the flow body: starting Prefect's temporary server"
        return "before/after the flow body: flow-run set-up, state, teardown"
    if any("_find_and_load" in n for n in names):
        return "importing modules"
    return "other: " + names[min(3, len(names) - 1)]


def summarise(collapsed: Path, top: int = 40) -> str:
    self_by_func: Counter[str] = Counter()
    incl_by_func: Counter[str] = Counter()
    incl_platform: Counter[str] = Counter()
    leaf_package: Counter[str] = Counter()
    by_process: Counter[str] = Counter()
    main_steps: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        stack, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        frames = stack.split(";")
        total += count
        # with --subprocesses a child's stack starts with its parents' `process` frames
        process = [f for f in frames if f.startswith("process ")] or ["process ?"]
        by_process[process[-1].split(":", 1)[-1][:100]] += count
        parsed = [parse_frame(f) for f in frames
                  if not f.startswith(("process ", "thread "))]
        if not parsed:
            continue
        if parsed[0][0] == "_run_module_as_main" and "uvicorn" not in process[-1]:
            main_steps[_main_step([f"{fn} ({package_of(fl)})" for fn, fl in parsed])] += count
        func, file = parsed[-1]
        self_by_func[f"{func} ({package_of(file)})"] += count
        leaf_package[package_of(file)] += count
        seen = set()
        for func, file in parsed:
            key = f"{func} ({package_of(file)})"
            if key not in seen:
                seen.add(key)
                incl_by_func[key] += count
        # the innermost platform frame: which of our functions the time is spent under
        platform = [f"{fn} ({package_of(fl)})" for fn, fl in parsed
                    if package_of(fl) in ("ivig_platform", "flows")]
        incl_platform[platform[-1] if platform else "(outside ivig_platform/flows)"] += count

    def table(title: str, counter: Counter[str], n: int = top) -> list[str]:
        rows = [f"## {title}", ""]
        rows += [f"{c / total:6.1%}  {c:7d}  {k}" for k, c in counter.most_common(n)]
        return rows + [""]

    lines = [f"samples: {total} (each 1/rate s of one running thread)", ""]
    lines += table("by process", by_process, 5)
    lines += table("main thread of the refresh, by step of the flow (with --idle: its wall "
                   "time, waits included)", main_steps, 20)
    lines += table("leaf package (where the CPU is, by library)", leaf_package, 25)
    lines += table("innermost platform function on the stack", incl_platform, 30)
    lines += table("inclusive, by function", incl_by_func, top)
    lines += table("self, by function", self_by_func, top)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="medium", choices=list(bench.SIZES))
    parser.add_argument("--scenario", default="cold", choices=["cold", "no_change", "one_site"])
    parser.add_argument("--rate", type=int, default=20, help="samples per second")
    parser.add_argument("--idle", action="store_true", help="count idle (waiting) threads too")
    parser.add_argument("--out", type=Path, default=bench.BENCH / "results")
    parser.add_argument("--work", type=Path, default=bench.BENCH / "work")
    parser.add_argument("--inboxes", type=Path, default=bench.BENCH / "inboxes")
    parser.add_argument("--timeout", type=float, default=4 * 3600)
    parser.add_argument("--live-code", action="store_true",
                        help="profile the working tree itself, not a frozen copy of it")
    parser.add_argument("--summarise", type=Path, metavar="COLLAPSED",
                        help="only summarise an existing .collapsed file (to stdout)")
    args = parser.parse_args(argv)
    if args.summarise:
        print(summarise(args.summarise))
        return 0
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        parser.error("py-spy not found: uv pip install --python .venv/bin/python py-spy")

    if not args.live_code:
        info = bench.snapshot_code(args.work.resolve())
        print(f"code: snapshot {info['code_fingerprint']} in {info['snapshot']}", flush=True)
    inbox_cache, _ = bench.ensure_inbox(args.size, args.inboxes.resolve())
    folder = args.work.resolve() / args.size / f"profile-{args.scenario}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    inbox, warehouse, logs = folder / "inbox", folder / "warehouse", folder / "logs"
    bench.link_copy(inbox_cache, inbox)
    if args.scenario != "cold":
        print("cold refresh first (not profiled)…", flush=True)
        cold = bench.refresh_sample(inbox, warehouse, logs / "cold", args.timeout)
        if not cold["ok"]:
            raise SystemExit(f"the cold refresh failed: {cold.get('error')}")
        if args.scenario == "one_site":
            print(json.dumps(bench.redeliver_one_site(inbox, cold)), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out.resolve() / f"profile-{args.size}-{args.scenario}"
    collapsed = folder / "profile.collapsed"  # megabytes: kept with the work, not results
    summary_json = logs / "profiled.json"
    cmd = [py_spy, "record", "--subprocesses", "--rate", str(args.rate), "--format", "raw",
           "--output", str(collapsed), *(["--idle"] if args.idle else []), "--",
           sys.executable, "-m", "benchmarks._refresh_child", str(inbox), str(warehouse),
           str(summary_json)]
    print("profiling:", " ".join(cmd), flush=True)
    sample = bench.measure(cmd, env=bench.child_env(), cwd=bench.CODE["root"],
                           log_base=logs / "profiled", timeout=args.timeout)
    refresh = json.loads(summary_json.read_text()) if summary_json.exists() else {}
    header = [f"# py-spy profile: {args.size} {args.scenario}"
              f"{' (idle threads included)' if args.idle else ' (running threads only)'}",
              "", f"wall {sample['wall_s']:.1f} s (under py-spy), exit {sample['exit_code']}, "
              f"load average {sample['loadavg_1m_before']}",
              f"stages: {json.dumps(refresh.get('timings', {}))}",
              f"marks: {json.dumps(refresh.get('bench_marks', {}))}", ""]
    body = summarise(collapsed) if collapsed.exists() else "no samples written"
    stem.with_suffix(".txt").write_text("\n".join(header) + body + "\n")
    print(stem.with_suffix(".txt"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
