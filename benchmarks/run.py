"""The benchmark suite of issues 7 and 12: whole-process refresh timings at registry scale.

    .venv/bin/python -m benchmarks.run [--sizes small,medium,large] [--runs 3]
                                       [--modes cli,server]
                                       [--out benchmarks/results] [--work benchmarks/work]

For each size (small 18 sites / 78 patients, medium 200 / 20,000, large 500 / 100,000):

1. the demo inbox is generated once with `write_demo_inbox` and cached under
   `benchmarks/inboxes/<size>/` (git-ignored; regenerated when the parameters differ);
2. each run `i` works in a fresh folder `WORK/<size>/run-<i>/` holding a hard-linked copy of
   the cached inbox (the cache itself is never touched) and a new warehouse, and times as
   whole processes, in this order:
   - `floor`: DuckDB alone reading every CSV/XLSX file into tables (`_floor_child.py`);
   - `cold`: a full refresh into the empty warehouse (`_refresh_child.py`, which runs the
     CLI's `run_refresh` steps and prints the flow's summary with per-stage timings);
   - `script`: the plain-script baseline of issue 12 (`_script_child.py`: the platform's
     landing rules, pseudonyms, windows and efficacy table in one plain process, on the
     cold refresh's in-force deliveries — a script cannot hold a delivery back); its
     efficacy rows are then checked, untimed, against `marts.mart_efficacy` of the cold
     warehouse (`_efficacy_check.py`): `matches` and the first difference;
   - `no_change`: the same refresh again (the CLI's fast path: nothing new in the inbox);
   - `one_site`: one site re-delivers — its newest accepted CSV delivery is copied to a new
     delivery id (the next day) with one row changed (the case of one cell) — and refresh;
   - `five_site`: the same for five sites at once (around the median size), then refresh;
3. after each run the results are saved to `OUT/<size>.json`, so an interrupted benchmark
   resumes with the first run not yet done (`--fresh` starts a size over);
4. once per invocation, on the smallest size asked for, the fixed overhead: `-X importtime`
   of `flows.refresh`, and a data-free process that imports everything and runs an empty
   Prefect flow twice (`_overhead_child.py`).

`--modes` runs all of it once per mode, one mode after the other: `cli` (each refresh
starts Prefect's temporary server, as `ivig refresh` with nothing running; results in OUT)
and `server` (one `prefect server` started for the mode, every refresh reporting to it, as
the nightly deployment runs; results in OUT/prefect-server/, work in WORK/server/). Each
mode's run has its own floor and script, so each file stands alone. `--prefect-server` is
the older form of `--modes server` with the results in OUT itself.

The children run a frozen copy of the platform's code, `WORK/code/<fingerprint>/`, taken
once per invocation (`--live-code` runs the working tree instead): others edit the tree
while a benchmark runs, and an edit between the cold and the no-change run would turn the
latter into a full refresh (the fast path fingerprints the code). Every sample records the
snapshot's fingerprint and the git commit it was taken from.

`OUT/README.md` is rewritten from every `OUT/*.json` (and OUT/prefect-server/*.json for
issue 12's targets table) after every size (`benchmarks/report.py`).
The children get a fixed benchmark pseudonym key, no `PREFECT_API_URL` / `PREFECT_HOME`
from the caller (so they use the CLI's isolated local Prefect under the warehouse, or in
mode `server` the benchmark's running server), and run with the interpreter running this
script.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._measure import last_summary, measure

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
SEED = 20261124
BENCH_KEY = "ivig-benchmark-pseudonym-key-not-a-secret-0123456789abcdef"
SIZES: dict[str, dict[str, int]] = {
    "small": {"sites": 18, "patients": 78},
    "medium": {"sites": 200, "patients": 20_000},
    "large": {"sites": 500, "patients": 100_000},
}
SCENARIOS = ("floor", "cold", "script", "no_change", "one_site", "five_site")
#: The scenarios that are not refreshes: plain processes, no Prefect.
PLAIN = ("floor", "script")
#: The scenarios that are refreshes.
REFRESHES = tuple(s for s in SCENARIOS if s not in PLAIN)
STAGES = ("landing", "gate", "build", "dbt", "publish", "report", "total")
SCHEMA_VERSION = 1
#: How the refreshes reach Prefect (--modes), as the results say it.
MODES = {
    "cli": "each refresh starts Prefect's temporary server",
    "server": "a running `prefect server` (one for the whole benchmark)",
}
#: Where --modes puts the results of each mode, under --out.
MODE_FOLDERS = {"cli": ".", "server": "prefect-server"}
# mode `server`: the running server the children use (api_url, home), else empty.
SERVER: dict[str, str] = {}


# --- the machine and the code ----------------------------------------------------------

def machine_info() -> dict:
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    # versions from the installed metadata: importing the libraries would grow this
    # process, and a child's max RSS (wait4) starts at its parent's size at the fork
    from importlib import metadata

    versions = {}
    for name in ("duckdb", "polars", "prefect", "dbt-core", "dbt-duckdb", "great-expectations",
                 "pyarrow", "pandas"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    cpu_model = None
    with contextlib.suppress(OSError, StopIteration):
        cpu_model = next(line.split(":", 1)[1].strip()
                         for line in Path("/proc/cpuinfo").read_text().splitlines()
                         if line.startswith("model name"))
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_total_gb": round(mem_kb / 2**20, 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def code_info() -> dict:
    from ivig_platform.warehouse.state import code_fingerprint

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  check=False, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    return {
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "code_fingerprint": code_fingerprint()[:16],
    }


# The code the children run: a frozen copy of the working tree, taken once per invocation.
# Other people edit the tree while a benchmark runs; the no-change fast path compares a
# fingerprint of ivig_platform/, flows/, dbt_project/ and expectations/, so an edit between
# the cold and the no-change run would turn the latter into a full refresh, and a run
# would measure a mix of versions.
CODE: dict = {"root": ROOT}
SNAPSHOT_DIRS = ("ivig_platform", "flows", "dbt_project", "expectations", "protocol", "benchmarks")
_GENERATED = shutil.ignore_patterns("target", "logs", "__pycache__", "*.pyc", "*.duckdb",
                                    "*.duckdb.wal")


def SNAPSHOT_IGNORE(folder: str, names: list[str]) -> set[str]:  # noqa: N802 - like the stdlib's
    ignored = set(_GENERATED(folder, names))
    if Path(folder).resolve() == BENCH:  # the harness's own data, not code
        ignored |= {"inboxes", "work", "results"} & set(names)
    return ignored


def snapshot_code(work: Path) -> dict:
    """Copy the platform's code to WORK/code/<fingerprint>/ and run the children there."""
    from ivig_platform.warehouse.state import code_fingerprint

    live = code_info()
    staging = work / "code" / f".staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in SNAPSHOT_DIRS:
        shutil.copytree(ROOT / name, staging / name, ignore=SNAPSHOT_IGNORE)
    shutil.copy2(ROOT / "pyproject.toml", staging / "pyproject.toml")
    fingerprint = code_fingerprint(staging)[:16]
    dest = work / "code" / fingerprint
    if dest.exists():  # the same code as an earlier invocation: keep its dbt parse cache,
        # take this invocation's harness (not part of the fingerprint)
        shutil.rmtree(dest / "benchmarks")
        (staging / "benchmarks").rename(dest / "benchmarks")
        shutil.rmtree(staging)
    else:
        staging.rename(dest)
    CODE.update(root=dest, info={**live, "code_fingerprint": fingerprint,
                                 "snapshot": str(dest)})
    return CODE["info"]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_PROFILE")}
    if SERVER.get("api_url"):  # --prefect-server: the children report to a running server
        env["PREFECT_API_URL"] = SERVER["api_url"]
        env["PREFECT_HOME"] = SERVER["home"]
    env["IVIG_PSEUDONYM_KEY"] = BENCH_KEY
    env["PYTHONUNBUFFERED"] = "1"
    if CODE["root"] != ROOT:  # the snapshot comes before the editable install's /work/main
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CODE["root"]),
                                                          env.get("PYTHONPATH")]))
    return env


# --- inboxes ---------------------------------------------------------------------------

def inbox_stats(inbox: Path) -> dict:
    files = [p for p in inbox.rglob("*") if p.is_file()]
    deliveries = {p.parent for p in files}
    return {
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "csv_files": sum(p.suffix.lower() == ".csv" for p in files),
        "xlsx_files": sum(p.suffix.lower() == ".xlsx" for p in files),
        "deliveries": len(deliveries),
        "sites": len({d.parent for d in deliveries}),
    }


def generator_fingerprint() -> str:
    """The demo generator's code: an inbox made by other code is not the same inbox."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((CODE["root"] / "ivig_platform" / "demo").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_inbox(size: str, inboxes: Path, regenerate: bool = False) -> tuple[Path, dict]:
    """The cached demo inbox of `size`, generated in this process if missing.

    A cache made by a different version of the demo generator is kept (runs of one size
    stay comparable) but flagged `generator_changed`; `--regenerate` replaces it.
    """
    spec = {**SIZES[size], "seed": SEED}
    folder = inboxes / size
    meta_path = folder / "_generated.json"
    inbox = folder / "inbox"
    if meta_path.exists() and inbox.is_dir() and not regenerate:
        meta = json.loads(meta_path.read_text())
        if meta.get("spec") == spec:
            meta["generator_changed"] = meta.get("generator") != generator_fingerprint()
            if meta["generator_changed"]:
                print(f"[{size}] note: the demo generator changed since this inbox was "
                      "generated; kept (use --regenerate to replace it)", flush=True)
            return inbox, meta
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    print(f"[{size}] generating the demo inbox ({spec['sites']} sites, "
          f"{spec['patients']} patients)…", flush=True)
    partial = folder / "inbox.partial"
    started = time.perf_counter()
    # in a child, so that the generator is the code snapshot's, like everything measured
    code = ("import sys; from pathlib import Path; from ivig_platform.demo import "
            "write_demo_inbox; write_demo_inbox(Path(sys.argv[1]), n_sites=int(sys.argv[2]), "
            "n_patients=int(sys.argv[3]), seed=int(sys.argv[4]))")
    subprocess.run([sys.executable, "-c", code, str(partial), str(spec["sites"]),
                    str(spec["patients"]), str(spec["seed"])], env=child_env(),
                   cwd=CODE["root"], check=True)
    seconds = time.perf_counter() - started
    partial.rename(inbox)
    meta = {"spec": spec, "generator": generator_fingerprint(),
            "generate_seconds": round(seconds, 2), **inbox_stats(inbox),
            "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    meta_path.write_text(json.dumps(meta, indent=2))
    return inbox, meta


def link_copy(src: Path, dst: Path) -> None:
    """A hard-linked copy (same bytes, sizes and mtimes); a plain copy across devices."""
    try:
        shutil.copytree(src, dst, copy_function=os.link)
    except OSError:
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)


# --- the one-site re-delivery ----------------------------------------------------------

def _sniff(header: str) -> str:
    counts = {d: header.count(d) for d in ("\t", ";", ",")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _fold(text: str) -> str:
    import unicodedata

    text = unicodedata.normalize("NFKD", text.strip().lower().lstrip("\ufeff"))
    return re.sub(r"[^a-z0-9]+", "_", "".join(c for c in text if not unicodedata.combining(c)))


def change_one_row(path: Path) -> str:
    """Swap the case of the sex cell of the first unquoted data row of a patients.csv.

    Only that line's bytes change (landing folds case, so the delivery lands the same
    rows); the line ending, delimiter and encoding of the file are kept. Returns what
    was changed, for the record.
    """
    raw = path.read_bytes()
    try:
        text, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = raw.decode("cp1252"), "cp1252"
    lines = text.split("\n")
    delimiter = _sniff(lines[0])
    headers = [_fold(h) for h in lines[0].rstrip("\r").split(delimiter)]
    sex = next((i for i, h in enumerate(headers) if h in ("sex", "sexo", "gender", "genero")),
               None)
    if sex is None:
        raise ValueError(f"{path}: no sex column among {headers}")
    for number, line in enumerate(lines[1:], start=1):
        body, cr = (line[:-1], "\r") if line.endswith("\r") else (line, "")
        if '"' in body:
            continue
        cells = body.split(delimiter)
        if len(cells) != len(headers) or not cells[sex].strip():
            continue
        swapped = cells[sex].swapcase()
        if swapped == cells[sex]:
            continue
        cells[sex] = swapped
        lines[number] = delimiter.join(cells) + cr
        path.write_bytes("\n".join(lines).encode(encoding))
        return f"{path.name} line {number + 1}: sex cell case swapped"
    raise ValueError(f"{path}: no row whose sex cell can be changed")


def redeliver_sites(inbox: Path, summary: dict, count: int) -> list[dict]:
    """Copy `count` accepted CSV sites' newest deliveries to the next day's id, one row
    changed in each.

    The sites are, among the sites whose newest delivery is an accepted CSV one, the `count`
    around the median number of source rows (sites in the demo are uneven; the median ones
    are the typical re-deliveries). `summary` is a refresh's summary (its `deliveries`).
    """
    deliveries = summary.get("deliveries", [])
    newest: dict[str, str] = {}
    for d in deliveries:
        newest[d["site_id"]] = max(newest.get(d["site_id"], ""), d["delivery_id"])
    candidates = []
    for d in deliveries:
        folder = inbox / d["site_id"] / d["delivery_id"]
        # the site's newest delivery must be the accepted one: a re-delivery then sorts
        # last, as a hospital's next extract would
        if (d["state"] == "accepted" and d["delivery_id"] == newest[d["site_id"]]
                and (folder / "patients.csv").is_file()):
            candidates.append((d.get("source_rows") or 0, d["site_id"], d["delivery_id"]))
    if len(candidates) < count:
        raise RuntimeError(f"{len(candidates)} accepted CSV deliveries, {count} to re-deliver")
    candidates.sort()
    first = max(0, min(len(candidates) // 2 - count // 2, len(candidates) - count))
    return [_redeliver(inbox, rows, site, delivery)
            for rows, site, delivery in candidates[first:first + count]]


def _redeliver(inbox: Path, rows: int, site: str, delivery: str) -> dict:
    try:
        new_id = (dt.date.fromisoformat(delivery) + dt.timedelta(days=1)).isoformat()
    except ValueError:
        new_id = delivery + "-bench"
    source, target = inbox / site / delivery, inbox / site / new_id
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)  # real copies: the change must not reach the cache
    change = change_one_row(target / "patients.csv")
    return {"site_id": site, "from_delivery": delivery, "delivery_id": new_id,
            "source_rows": rows, "change": change}


def redeliver_one_site(inbox: Path, cold_summary: dict) -> dict:
    """The `one_site` re-delivery: the median accepted CSV site (redeliver_sites)."""
    return redeliver_sites(inbox, cold_summary, 1)[0]


# --- one scenario ----------------------------------------------------------------------

def run_child(module: str, args: list[str], *, log_base: Path, timeout: float) -> dict:
    """Run `python -m module *args SUMMARY_JSON` measured; the child writes its result to
    SUMMARY_JSON (`log_base` with a .json suffix), returned as the sample's `summary`."""
    summary_path = log_base.with_suffix(".json")
    summary_path.unlink(missing_ok=True)
    args = [*args, str(summary_path)]
    sample = measure([sys.executable, "-m", module, *args], env=child_env(), cwd=CODE["root"],
                     log_base=log_base, timeout=timeout)
    summary = None
    if summary_path.exists():
        try:
            summary = json.loads(summary_path.read_text())
        except json.JSONDecodeError:
            summary = None
    if summary is None:
        summary = last_summary(Path(sample["stdout"]))
    sample["ok"] = sample["exit_code"] == 0 and summary is not None
    if not sample["ok"]:
        err = Path(sample["stderr"]).read_text(errors="replace").strip().splitlines()
        sample["error"] = err[-1][:500] if err else f"exit code {sample['exit_code']}"
    return sample | {"summary": summary}


STEP_LINE = re.compile(r"^\[\+\s*([0-9.]+)s\] \[refresh\] step (.*)$")
STEP_PHASES = (  # the flow's progress lines (ivig_platform.progress) -> the stage they open
    ("quality gate on each site", "gate"), ("building the warehouse", "build"),
    ("dbt build", "dbt"), ("quality gate on the marts", "gate_marts"),
    ("study report", "report"), ("published", "finish"),
)


def phases_of(stdout: Path, marks: dict) -> list[tuple[str, float]]:
    """(phase, start second) from the child's timestamped progress lines."""
    starts: list[tuple[str, float]] = [("startup", 0.0)]
    if "first_flow_event" in marks:
        starts.append(("landing", marks["first_flow_event"]))
    try:
        lines = stdout.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        m = STEP_LINE.match(line)
        if m:
            phase = next((name for text, name in STEP_PHASES if m.group(2).startswith(text)),
                         None)
            if phase and phase not in {p for p, _ in starts}:
                starts.append((phase, float(m.group(1))))
    return sorted(starts, key=lambda ps: ps[1])


def rss_by_phase(timeline: list[list[float]], phases: list[tuple[str, float]]) -> dict:
    """Peak tree RSS (MiB) within each phase of the run."""
    peaks: dict[str, float] = {}
    for t, mb in timeline:
        phase = phases[0][0]
        for name, start in phases:
            if t >= start:
                phase = name
        peaks[phase] = max(peaks.get(phase, 0.0), mb)
    return peaks


def refresh_sample(inbox: Path, warehouse: Path, log_base: Path, timeout: float) -> dict:
    sample = run_child("benchmarks._refresh_child", [str(inbox), str(warehouse)],
                       log_base=log_base, timeout=timeout)
    summary = sample.pop("summary") or {}
    marks = summary.get("bench_marks", {})
    sample["unchanged"] = bool(summary.get("unchanged"))
    sample["stages"] = summary.get("timings", {})
    sample["marks"] = marks
    sample["phases"] = phases_of(Path(sample["stdout"]), marks)
    sample["peak_rss_mb_by_phase"] = rss_by_phase(sample["rss_timeline"], sample["phases"])
    # how long each phase lasted (the flow's `gate` timing lumps the landing gate with the
    # mart gate and Data Docs; the progress lines tell them apart)
    ends = [start for _, start in sample["phases"][1:]] + [marks.get("refresh_returned")]
    sample["phase_seconds"] = {name: round(end - start, 3)
                               for (name, start), end in zip(sample["phases"], ends, strict=True)
                               if end is not None}
    # the memory timeline stays with the logs; the results keep the peaks per phase
    timeline = log_base.with_suffix(".rss.json")
    timeline.write_text(json.dumps({"phases": sample["phases"],
                                    "rss_mb": sample.pop("rss_timeline")}))
    sample["rss_timeline_file"] = str(timeline)
    if "refresh_returned" in marks:
        # after the flow returned: interpreter teardown, Prefect's server shutting down
        sample["teardown_s"] = max(0.0, sample["wall_s"] - marks["refresh_returned"])
    if "flow_called" in marks and "total" in sample["stages"]:
        # the flow call minus its own `total`: flow-run set-up, the flow's second
        # fingerprint of the inbox, artifacts and state after `total` (Prefect's temporary
        # server is started and waited for before the call, by `cli.prepare_refresh`)
        sample["flow_overhead_s"] = (marks["refresh_returned"] - marks["flow_called"]
                                     - sample["stages"]["total"])
    for key in ("accepted", "superseded", "rejected", "rows_landed", "rows_quarantined",
                "held_back", "run_id"):
        if key in summary:
            sample[key] = summary[key]
    if "checks" in summary:
        sample["checks_failed"] = {k: v.get("failed") for k, v in summary["checks"].items()}
    sample["deliveries"] = summary.get("deliveries", [])
    return sample


def in_force_of(summary: dict) -> dict[str, str]:
    """site → its accepted delivery, from a refresh's summary (its `deliveries`)."""
    return {d["site_id"]: d["delivery_id"] for d in summary.get("deliveries", [])
            if d.get("state") == "accepted"}


def script_sample(inbox: Path, warehouse: Path, cold: dict, log_base: Path,
                  timeout: float) -> dict:
    """The plain-script baseline (`_script_child.py`) on the cold refresh's in-force
    deliveries, timed like a refresh; then, untimed, its efficacy rows checked against
    `marts.mart_efficacy` of the cold warehouse (`_efficacy_check.py`, in a process of its
    own) and its landed rows against the cold refresh's: `matches` and the first
    difference. A mismatch is printed loudly and stays in the results."""
    in_force = log_base.with_suffix(".in_force.json")
    in_force.parent.mkdir(parents=True, exist_ok=True)
    in_force.write_text(json.dumps(in_force_of(cold), indent=1, sort_keys=True))
    sample = run_child("benchmarks._script_child", [str(inbox), str(in_force)],
                       log_base=log_base, timeout=timeout)
    summary = sample.pop("summary") or {}
    sample.pop("rss_timeline", None)
    sample["in_force_from"] = "the cold refresh's accepted deliveries"
    sample["steps"] = steps_of(summary.get("marks", {}))
    for key in ("deliveries", "rows_landed", "rows_landed_total", "analysis_plan"):
        if key in summary:
            sample[key] = summary[key]
    sample["efficacy_rows"] = len(summary.get("efficacy", []))
    if not sample["ok"]:
        sample["matches"] = False
        return sample
    check = log_base.with_suffix(".check.json")
    check.unlink(missing_ok=True)
    proc = subprocess.run([sys.executable, "-m", "benchmarks._efficacy_check", str(warehouse),
                           str(log_base.with_suffix(".json")), str(check)],
                          env=child_env(), cwd=CODE["root"], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode or not check.exists():
        result = {"matches": False, "first_difference": {
            "check_failed": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])
            [-1][:500]}}
    else:
        result = json.loads(check.read_text())
    rows_landed = sample.get("rows_landed_total")
    if result["matches"] and rows_landed != cold.get("rows_landed"):
        result = {**result, "matches": False, "first_difference": {
            "rows_landed": {"script": rows_landed, "cold refresh": cold.get("rows_landed")}}}
    sample.update(result)
    if not sample["matches"]:
        message = ("!!! THE PLAIN SCRIPT'S FIGURES DIFFER FROM marts.mart_efficacy: "
                   f"{json.dumps(sample['first_difference'], default=str)}")
        print(message, flush=True)
        print(message, file=sys.stderr, flush=True)
    return sample


def steps_of(marks: dict[str, float]) -> dict[str, float]:
    """Seconds of each step from a child's cumulative marks (the first from the start)."""
    steps, before = {}, 0.0
    for name, at in marks.items():
        steps[name] = round(at - before, 3)
        before = at
    return steps


def floor_sample(inbox: Path, database: Path, log_base: Path, timeout: float) -> dict:
    sample = run_child("benchmarks._floor_child", [str(inbox), str(database)],
                       log_base=log_base, timeout=timeout)
    summary = sample.pop("summary") or {}
    sample.update(summary)
    sample.pop("rss_timeline", None)
    return sample


# --- the fixed overhead ----------------------------------------------------------------

IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$")


def importtime(work: Path, timeout: float) -> dict:
    """`python -X importtime -c "import flows.refresh"`: where start-up time goes."""
    env = child_env()
    env["PREFECT_HOME"] = str(work / ".prefect-importtime")
    best: list[tuple[int, int, int, str]] | None = None
    wall = []
    for _ in range(2):  # the first run warms the page cache; the faster run is kept
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import flows.refresh"],
                              env=env, cwd=CODE["root"], capture_output=True, text=True,
                              timeout=timeout, check=False)
        wall.append(time.perf_counter() - started)
        entries = []
        for line in proc.stderr.splitlines():
            m = IMPORT_LINE.match(line)
            if m:
                entries.append((int(m.group(1)), int(m.group(2)), len(m.group(3)) // 2,
                                m.group(4)))
        if entries and (best is None or sum(e[0] for e in entries) < sum(e[0] for e in best)):
            best = entries
    best = best or []
    by_package: dict[str, int] = {}
    for self_us, _, _, name in best:
        root = name.split(".")[0]
        by_package[root] = by_package.get(root, 0) + self_us
    total_us = sum(e[0] for e in best)
    # direct imports of flows.refresh: depth-1 entries listed before it (children print
    # before their parent in -X importtime output)
    direct = []
    for i, (_, _, depth, name) in enumerate(best):
        if name == "flows.refresh":
            j = i - 1
            while j >= 0 and best[j][2] > depth:
                if best[j][2] == depth + 1:
                    direct.append({"module": best[j][3], "cumulative_ms": best[j][1] / 1000})
                j -= 1
            break
    return {
        "command": 'python -X importtime -c "import flows.refresh"',
        "process_wall_s": [round(w, 3) for w in wall],
        "total_self_ms": round(total_us / 1000, 1),
        "modules": len(best),
        "by_package_self_ms": dict(sorted(((k, round(v / 1000, 1))
                                           for k, v in by_package.items()),
                                          key=lambda kv: -kv[1])[:20]),
        "direct_imports_of_flows_refresh": sorted(direct, key=lambda d: -d["cumulative_ms"])[:15],
        "slowest_single_modules_self_ms": [
            {"module": name, "self_ms": round(s / 1000, 1)}
            for s, _, _, name in sorted(best, key=lambda e: -e[0])[:15]
        ],
    }


OVERHEAD_VERSION = 2


def overhead(work: Path, logs: Path, runs: int, timeout: float) -> dict:
    """The data-free process, `runs` times on a new PREFECT_HOME (Prefect's database is
    created and migrated, as on a cold refresh into a new warehouse) and as many times on
    the one left by the previous process (as on every later refresh of a warehouse)."""
    samples: dict[str, list[dict]] = {"new_prefect_home": [], "existing_prefect_home": []}
    for i in range(runs):
        folder = work / f"overhead-{i}"
        shutil.rmtree(folder, ignore_errors=True)
        for kind in samples:
            log_base = logs / f"overhead-{i}-{kind}"
            sample = run_child("benchmarks._overhead_child", [str(folder / "warehouse")],
                               log_base=log_base, timeout=timeout)
            sample.update(sample.pop("summary") or {})
            sample.pop("rss_timeline", None)
            samples[kind].append(sample)
        shutil.rmtree(folder, ignore_errors=True)
    result: dict = {"version": OVERHEAD_VERSION, "code": CODE.get("info"), "samples": samples}
    keys = ("wall_s", "cpu_s", "peak_rss_mb", "import_cli", "import_flows_refresh",
            "first_flow_run_incl_server_start", "second_flow_run")
    for kind, kind_samples in samples.items():
        medians = {}
        for key in keys:
            values = [s[key] for s in kind_samples if s.get("ok") and key in s]
            if values:
                medians[key] = statistics.median(values)
        result[kind] = medians
    result["median"] = result["new_prefect_home"]
    result["importtime"] = importtime(work, timeout)
    return result


# --- results ---------------------------------------------------------------------------

def spread(values: list[float]) -> dict:
    if not values:
        return {}
    return {"median_s": statistics.median(values), "min_s": min(values), "max_s": max(values),
            "n": len(values)}


def aggregate(result: dict) -> dict:
    runs = [r for _, r in sorted(result["runs"].items(), key=lambda kv: int(kv[0]))]
    agg: dict[str, dict] = {}
    for scenario in SCENARIOS:
        samples = [r[scenario] for r in runs if scenario in r and r[scenario].get("ok")]
        if scenario == "no_change":
            # a "no-change" run that did a full refresh (code or key changed meanwhile) is
            # not a no-change sample
            samples = [s for s in samples if s.get("unchanged")]
        entry = spread([s["wall_s"] for s in samples])
        if not samples:
            agg[scenario] = entry
            continue
        entry["cpu_median_s"] = statistics.median(s["cpu_s"] for s in samples)
        entry["peak_rss_mb"] = max(s["peak_rss_mb"] for s in samples)
        entry["loadavg_1m_median"] = statistics.median(s["loadavg_1m_before"] for s in samples)
        if scenario == "script":
            entry["matches"] = all(s.get("matches") for s in samples)
            steps: dict[str, list[float]] = {}
            for s in samples:
                for name, seconds in s.get("steps", {}).items():
                    steps.setdefault(name, []).append(seconds)
            entry["steps"] = {k: statistics.median(v) for k, v in steps.items()}
            entry["rows_landed"] = samples[-1].get("rows_landed_total")
        elif scenario == "floor":
            entry["load"] = spread([s["load_seconds"] for s in samples])
            entry["rows_total"] = samples[0].get("rows_total")
            entry["rows"] = samples[0].get("rows")
            entry["xlsx_reader"] = samples[0].get("xlsx_reader")
        else:
            stages = {}
            for stage in STAGES:
                values = [s["stages"][stage] for s in samples if stage in s.get("stages", {})]
                if values:
                    stages[stage] = spread(values)
            entry["stages"] = stages
            phases = {}
            for s in samples:
                for name, seconds in s.get("phase_seconds", {}).items():
                    phases.setdefault(name, []).append(seconds)
            entry["phase_seconds"] = {k: statistics.median(v) for k, v in phases.items()}
            rss = {}
            for s in samples:
                for name, mb in s.get("peak_rss_mb_by_phase", {}).items():
                    rss[name] = max(rss.get(name, 0.0), mb)
            entry["peak_rss_mb_by_phase"] = rss
            for key in ("flow_overhead_s", "teardown_s"):
                values = [s[key] for s in samples if key in s]
                if values:
                    entry[key] = statistics.median(values)
            for key in ("rows_landed", "rows_quarantined", "accepted", "rejected",
                        "superseded", "held_back"):
                if key in samples[-1]:
                    entry[key] = samples[-1][key]
        agg[scenario] = entry
    fingerprints = {r[s]["code"]["code_fingerprint"] for r in runs for s in SCENARIOS
                    if s in r and "code" in r[s]}
    agg["code_fingerprints"] = sorted(fingerprints)
    return agg


def save(path: Path, result: dict) -> None:
    result["updated"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str))
    tmp.replace(path)


def load_result(path: Path, size: str, fresh: bool) -> dict:
    spec = {**SIZES[size], "seed": SEED}
    if path.exists() and not fresh:
        try:
            result = json.loads(path.read_text())
            if result.get("spec") == spec and result.get("schema") == SCHEMA_VERSION:
                return result
        except json.JSONDecodeError:
            pass
        path.replace(path.with_suffix(".json.old"))
    return {"schema": SCHEMA_VERSION, "size": size, "spec": spec, "runs": {}}


# --- one size --------------------------------------------------------------------------

def redelivery_sample(scenario: str, count: int, inbox: Path, warehouse: Path, before: dict,
                      log_base: Path, timeout: float) -> dict:
    """`count` sites re-deliver (redeliver_sites, chosen from the `before` refresh's
    deliveries), then a refresh; the sample records each re-delivery and its state."""
    try:
        redeliveries = redeliver_sites(inbox, {"deliveries": before.get("deliveries", [])},
                                       count)
    except (RuntimeError, ValueError, OSError) as exc:
        return {"ok": False, "error": f"no re-delivery for {scenario}: {exc}", "wall_s": 0.0,
                "peak_rss_mb": 0.0}
    sample = refresh_sample(inbox, warehouse, log_base, timeout)
    states = {(d["site_id"], d["delivery_id"]): d["state"]
              for d in sample.get("deliveries", [])}
    for r in redeliveries:
        r["status"] = states.get((r["site_id"], r["delivery_id"]))
    sample["redeliveries"] = redeliveries
    if count == 1:
        sample["redelivery"] = redeliveries[0]
    return sample


def run_size(size: str, args: argparse.Namespace, mode: str = "cli",
             out: Path | None = None) -> dict:
    """One size's runs in one mode (MODES); results in `out` (default --out)."""
    out = out or args.out
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{size}.json"
    result = load_result(path, size, args.fresh)
    inbox_cache, meta = ensure_inbox(size, args.inboxes, args.regenerate)
    result["inbox"] = {"cache": str(inbox_cache), **meta}
    result["machine"] = machine_info()
    result["mode"] = mode
    result["prefect"] = MODES[mode]
    work = args.work / size if mode == "cli" else args.work / mode / size
    logs = work / "logs"
    save(path, result)

    for i in range(args.runs):
        key = str(i)
        if result["runs"].get(key, {}).get("complete"):
            print(f"[{size}] run {i}: done earlier, kept", flush=True)
            continue
        run: dict = {}
        rundir = work / f"run-{i}"
        shutil.rmtree(rundir, ignore_errors=True)
        rundir.mkdir(parents=True)
        inbox, warehouse = rundir / "inbox", rundir / "warehouse"
        link_copy(inbox_cache, inbox)
        code = CODE.get("info") or code_info()

        def record(scenario: str, sample: dict, run=run, code=code, key=key, i=i) -> None:
            sample["code"] = code
            sample["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            run[scenario] = sample
            result["runs"][key] = run
            result["aggregate"] = aggregate(result)
            save(path, result)
            wall = sample["wall_s"]
            extra = ""
            parts = sample.get("stages") or sample.get("steps")
            if parts:
                extra = " · " + " ".join(f"{k} {v:.1f}" for k, v in parts.items())
            state = "ok" if sample.get("ok") else f"FAILED ({sample.get('error')})"
            if "matches" in sample:
                state += (", efficacy = mart_efficacy" if sample["matches"] else
                          ", EFFICACY DIFFERS from mart_efficacy")
            print(f"[{size}] run {i} {scenario}: {wall:.1f} s, peak "
                  f"{sample['peak_rss_mb']:.0f} MB, {state}{extra}", flush=True)

        record("floor", floor_sample(inbox, rundir / "floor.duckdb", logs / f"run-{i}-floor",
                                     args.timeout))
        cold = refresh_sample(inbox, warehouse, logs / f"run-{i}-cold", args.timeout)
        record("cold", cold)
        if not cold["ok"]:
            print(f"[{size}] run {i}: the cold refresh failed; see {cold['stderr']}",
                  flush=True)
            continue
        # before anything changes the inbox or the warehouse: the script reads the cold
        # refresh's in-force deliveries and is checked against its mart_efficacy
        record("script", script_sample(inbox, warehouse, cold, logs / f"run-{i}-script",
                                       args.timeout))
        nochange = refresh_sample(inbox, warehouse, logs / f"run-{i}-no_change", args.timeout)
        if not nochange["unchanged"]:
            nochange["note"] = ("not the no-change path: the inbox, code or key differed from "
                                "the cold run's (someone edited the platform meanwhile?)")
        record("no_change", nochange)
        one = redelivery_sample("one_site", 1, inbox, warehouse, cold, logs / f"run-{i}-one_site",
                                args.timeout)
        record("one_site", one)
        if not one["ok"]:
            continue
        five = redelivery_sample("five_site", 5, inbox, warehouse, one,
                                 logs / f"run-{i}-five_site", args.timeout)
        record("five_site", five)
        # keep what the JSON needs, not 200 sites' delivery rows per sample
        for scenario in REFRESHES:
            run.get(scenario, {}).pop("deliveries", None)
        run["complete"] = all(run[s].get("ok") for s in SCENARIOS)
        result["runs"][key] = run
        result["aggregate"] = aggregate(result)
        save(path, result)
        if not args.keep_work:
            shutil.rmtree(rundir, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="small,medium,large",
                        help="comma-separated, of: " + ", ".join(SIZES))
    parser.add_argument("--runs", type=int, default=3, help="runs per size (default 3)")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument("--work", type=Path, default=BENCH / "work",
                        help="scratch folders for warehouses and logs (git-ignored default)")
    parser.add_argument("--inboxes", type=Path, default=BENCH / "inboxes")
    parser.add_argument("--timeout", type=float, default=4 * 3600,
                        help="seconds before a child process is killed")
    parser.add_argument("--fresh", action="store_true",
                        help="discard earlier results of the sizes asked for")
    parser.add_argument("--regenerate", action="store_true",
                        help="generate the cached demo inboxes again")
    parser.add_argument("--keep-work", action="store_true",
                        help="keep each run's inbox copy and warehouse")
    parser.add_argument("--live-code", action="store_true",
                        help="run the working tree itself, not a frozen copy of it")
    parser.add_argument("--no-overhead", action="store_true",
                        help="skip the fixed-overhead measurements")
    parser.add_argument("--modes", default="cli",
                        help="comma-separated, of: cli (each refresh starts Prefect's "
                             "temporary server, as `ivig refresh` with nothing running), "
                             "server (every refresh reports to one running `prefect server`, "
                             "as a deployment runs; results in OUT/prefect-server/). "
                             "Default: cli")
    parser.add_argument("--prefect-server", action="store_true",
                        help="the older form of `--modes server`, its results in --out "
                             "itself; use with another --out")
    args = parser.parse_args(argv)
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown size(s): {', '.join(unknown)}")
    modes = ["server"] if args.prefect_server else list(dict.fromkeys(
        m.strip() for m in args.modes.split(",") if m.strip()))
    if not modes or set(modes) - set(MODES):
        parser.error(f"--modes: of {', '.join(MODES)}")
    args.out, args.work, args.inboxes = (p.resolve() for p in (args.out, args.work,
                                                                args.inboxes))
    sizes.sort(key=list(SIZES).index)
    if args.live_code:
        CODE["info"] = code_info()
    else:
        info = snapshot_code(args.work)
        print(f"code: snapshot {info['code_fingerprint']} of {info['git_commit'][:10]}"
              f"{' (dirty tree)' if info['git_dirty'] else ''} in {info['snapshot']}",
              flush=True)
    for mode in modes:  # one mode after the other: no idle server beside the cli runs
        out = args.out if args.prefect_server else args.out / MODE_FOLDERS[mode]
        with contextlib.ExitStack() as stack:
            if mode == "server":
                stack.enter_context(running_prefect_server(args.work / "prefect-server"))
            for size in sizes:
                run_one_size(size, sizes, args, mode, out.resolve(),
                             overhead_wanted=mode == modes[0])
    print(f"results in {args.out}", flush=True)
    return 0


@contextlib.contextmanager
def running_prefect_server(home: Path):
    """`prefect server start` on loopback for the whole invocation, as in production."""
    from ivig_platform.orchestration.processes import start_prefect_server

    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               DO_NOT_TRACK="1", PREFECT_UI_ENABLED="false")
    t0 = time.monotonic()
    server = start_prefect_server(env, home / "server.log")
    print(f"prefect server at {server.api_url} ({time.monotonic() - t0:.1f} s to start)",
          flush=True)
    SERVER.update(api_url=server.api_url, home=str(home))
    try:
        yield server
    finally:
        SERVER.clear()
        server.process.stop()


def run_one_size(size: str, sizes: list[str], args: argparse.Namespace, mode: str = "cli",
                 out: Path | None = None, overhead_wanted: bool = True) -> None:
    """One size's runs, then (on the first size of the first mode) the fixed overhead,
    then the README of `out` and, when that is a mode's folder under --out, of --out."""
    from benchmarks.report import write_readme

    out = out or args.out
    result = run_size(size, args, mode, out)
    if (overhead_wanted and size == sizes[0] and not args.no_overhead
            and result.get("overhead", {}).get("version") != OVERHEAD_VERSION):
        print(f"[{size}] fixed overhead: imports, Prefect start…", flush=True)
        result["overhead"] = overhead(args.work / size, args.work / size / "logs",
                                      args.runs, args.timeout)
        save(out / f"{size}.json", result)
    write_readme(out)
    if out != args.out:  # the targets table of --out reads every mode's results
        write_readme(args.out)

if __name__ == "__main__":
    sys.exit(main())
