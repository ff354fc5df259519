"""Try an upgrade of the dependencies in a scratch copy and say what changed and what broke.

    bash deploy/bootstrap.sh upgrade [--tests "PYTEST ARGS"] [--no-demo] [--no-benchmark]
                                     [--scratch DIR]

Nothing of the repository is changed. In a scratch copy of the working tree (tracked and
new files, not ignored ones): the exact pins of ivig_platform/private_interfaces.py are
relaxed to their upgrade ranges, `uv lock --upgrade` resolves the newest versions, `uv sync
--frozen` installs them into the copy's own .venv, and the checks that matter run there:

1. `interfaces` — tests/test_private_interfaces.py without its pin tests (the pins are
   relaxed here; the summary lists what moved): whether each private use still holds;
2. `tests` — the test suite (default: all of it but the end-to-end demo, as CI runs it;
   `--tests` for a selection);
3. `demo` — tests/test_demo_end_to_end.py: the demo against its truth, i.e. the published
   figures of protocol §1 and every row landed or quarantined;
4. `benchmark` — `python -m benchmarks.run --sizes small --runs 1` (cold, no-change and
   one-site refreshes of the 18-site demo), timed against benchmarks/results/small.json.

The summary (printed, and written to SCRATCH/upgrade-summary.md with each check's log in
SCRATCH/logs/) lists the versions that changed and each check's failures. Exit 0 only when
every check passed. To adopt the upgrade: re-read each private use whose library moved,
update the versions in private_interfaces.py and pyproject.toml, copy SCRATCH/uv.lock.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ivig_platform.private_interfaces import UPGRADE_RANGES  # noqa: E402

DEFAULT_TESTS = "tests --deselect tests/test_demo_end_to_end.py -x"
ENVIRONMENT = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "UV_PYTHON_DOWNLOADS": "never"}
PIN_TESTS = "test_private_interface_library_is_pinned_exactly_to_the_version_written_for"
#: test files that read the repository's exact pins, left out of `tests` in the scratch copy
PINNED_TESTS = ("tests/test_private_interfaces.py", "tests/test_upgrade_check.py")
FAILURE_LINE = re.compile(r"^(FAILED|ERROR) ")


# --------------------------------------------------------------------------- pure parts


def relax_pins(pyproject: str, ranges: dict[str, str] = UPGRADE_RANGES) -> str:
    """pyproject.toml's text with each `"name==version"` of `ranges` made `"name<range>"`."""
    for name, allowed in ranges.items():
        pin = re.compile(rf'"{re.escape(name)}==[^"]+"')
        if not pin.search(pyproject):
            raise ValueError(f"pyproject.toml does not pin {name} with ==")
        pyproject = pin.sub(f'"{name}{allowed}"', pyproject)
    return pyproject


def locked_versions(lock_text: str) -> dict[str, str]:
    lock = tomllib.loads(lock_text)
    return {p["name"]: p["version"] for p in lock.get("package", []) if "version" in p}


def lock_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """One line per package whose locked version changed, appeared or went."""
    lines = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old != new:
            lines.append(f"{name}: {old or '(new)'} -> {new or '(removed)'}")
    return lines


def failures(output: str, limit: int = 30) -> list[str]:
    """pytest's FAILED/ERROR summary lines, or the output's last lines when it has none."""
    found = [line for line in output.splitlines() if FAILURE_LINE.match(line)]
    if not found:
        found = [line for line in output.splitlines() if line.strip()][-5:]
    return found[:limit]


@dataclass
class Check:
    name: str
    command: list[str]
    passed: bool | None = None  # None: not run
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


def summary(changes: list[str], checks: list[Check], notes: list[str]) -> str:
    lines = ["# Upgrade check", "", "## Versions that changed in uv.lock", ""]
    lines += [f"- {c}" for c in changes] or ["- none (everything is at its newest allowed)"]
    lines += ["", "## Checks", ""]
    for check in checks:
        state = {True: "passed", False: "FAILED", None: "not run"}[check.passed]
        lines.append(f"- {check.name}: {state} ({check.seconds:.0f} s) — "
                     f"`{shlex.join(check.command)}`")
        lines += [f"    - {p}" for p in check.problems]
    lines += ["", *notes] if notes else []
    ok = all(c.passed for c in checks)
    lines += ["", "Result: " + ("every check passed; the upgrade may be adopted (see the "
                                "docstring of deploy/upgrade_check.py)" if ok else
                                "NOT safe to adopt as is")]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- steps


def copy_tree(target: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, check=True, capture_output=True).stdout.split(b"\0")
    for raw in filter(None, files):
        source = ROOT / os.fsdecode(raw)
        if source.is_file():
            (target / os.fsdecode(raw)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / os.fsdecode(raw))


def run(command: list[str], cwd: Path, log: Path, timeout: float) -> tuple[int, str, float]:
    started = time.monotonic()
    env = {**os.environ, **ENVIRONMENT}
    env.pop("VIRTUAL_ENV", None)
    try:
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        code = -1
        output = f"{exc.stdout or ''}{exc.stderr or ''}\ntimed out after {timeout:.0f} s"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(output)
    return code, output, time.monotonic() - started


SCENARIOS = ("cold", "no_change", "one_site")
#: figures of the recorded runs worth comparing (a difference is noted, not failed: the
#: recorded runs may be of older code; the demo check holds the figures to the truth)
SAME_FIGURES = ("accepted", "superseded", "rejected", "rows_landed", "rows_quarantined",
                "held_back", "checks_failed")


def benchmark_runs(path: Path) -> list[dict]:
    try:
        runs = json.loads(path.read_text()).get("runs", {})
    except (OSError, ValueError):
        return []
    return list(runs.values()) if isinstance(runs, dict) else list(runs)


def benchmark_comparison(recorded: list[dict], new: list[dict]) -> tuple[list[str], list[str]]:
    """(problems, notes): scenarios that failed; figures that differ from the recorded
    runs and the new wall times beside the recorded medians."""
    problems, notes = [], []
    for scenario in SCENARIOS:
        old = [r[scenario] for r in recorded if isinstance(r.get(scenario), dict)]
        now = [r[scenario] for r in new if isinstance(r.get(scenario), dict)]
        if not now:
            problems.append(f"{scenario}: no result")
            continue
        for sample in now:
            if not sample.get("ok"):
                problems.append(f"{scenario}: failed (exit {sample.get('exit_code')})")
                continue
            for figure in SAME_FIGURES:
                before = {repr(r.get(figure)) for r in old}
                if old and len(before) == 1 and repr(sample.get(figure)) not in before:
                    notes.append(f"{scenario}: {figure} {sample.get(figure)!r}, recorded "
                                 f"{old[0].get(figure)!r}")
        wall = sorted(s["wall_s"] for s in now if isinstance(s.get("wall_s"), int | float))
        was = sorted(s["wall_s"] for s in old if isinstance(s.get("wall_s"), int | float))
        if wall:
            notes.append(f"{scenario} {wall[len(wall) // 2]:.1f} s" +
                         (f" (recorded {was[len(was) // 2]:.1f} s)" if was else ""))
    return problems, notes


def find_uv() -> str:
    for candidate in (os.environ.get("UV"), shutil.which("uv"), str(ROOT / ".tools/uv/bin/uv")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise SystemExit("error: uv not found (set UV=/path/to/uv or run via deploy/bootstrap.sh)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scratch", type=Path, help="folder for the copy (default: a new "
                                                     "temporary folder, kept)")
    parser.add_argument("--tests", default=DEFAULT_TESTS, help="pytest arguments of `tests`")
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument("--no-benchmark", action="store_true")
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="seconds per step")
    args = parser.parse_args(argv)
    uv = find_uv()
    scratch = (args.scratch or Path(tempfile.mkdtemp(prefix="ivig-upgrade-"))).resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    logs = scratch / "logs"
    print(f"scratch copy: {scratch}", flush=True)
    copy_tree(scratch)
    before = locked_versions((scratch / "uv.lock").read_text())
    pyproject = scratch / "pyproject.toml"
    pyproject.write_text(relax_pins(pyproject.read_text()))
    for step in (["lock", "--upgrade"], ["sync", "--frozen"]):
        code, output, _ = run([uv, *step], scratch, logs / f"uv-{step[0]}.log", args.timeout)
        if code != 0:
            print(f"error: uv {' '.join(step)} failed:\n{output[-3000:]}", file=sys.stderr)
            return 2
    changes = lock_changes(before, locked_versions((scratch / "uv.lock").read_text()))
    print("changed: " + ("; ".join(changes) or "nothing"), flush=True)

    python, pytest = str(scratch / ".venv/bin/python"), str(scratch / ".venv/bin/pytest")
    quiet = ["-q", "-p", "no:cacheprovider", "-rfE"]
    # The pin tests fail by design here (the pins are relaxed; `changes` says what moved),
    # and so do this check's own tests of the repository's pins: the interfaces check runs
    # the interface tests, which say whether each private use still holds.
    checks = [Check("interfaces", [pytest, *quiet, "tests/test_private_interfaces.py", "-k",
                                   f"not {PIN_TESTS}"]),
              Check("tests", [pytest, *quiet, *shlex.split(args.tests),
                              *(f"--deselect={test}" for test in PINNED_TESTS)])]
    if not args.no_demo:
        checks.append(Check("demo", [pytest, *quiet, "tests/test_demo_end_to_end.py"]))
    if not args.no_benchmark:
        checks.append(Check("benchmark", [
            python, "-m", "benchmarks.run", "--sizes", "small", "--runs", "1", "--no-overhead",
            "--out", str(scratch / "benchmark-results"), "--work", str(scratch / "benchmark-work"),
            "--inboxes", str(scratch / "benchmark-inboxes")]))
    for check in checks:
        print(f"running {check.name} ...", flush=True)
        code, output, check.seconds = run(check.command, scratch, logs / f"{check.name}.log",
                                          args.timeout)
        check.passed = code == 0
        check.problems = [] if check.passed else failures(output)
    notes = []
    if not args.no_benchmark:
        problems, times = benchmark_comparison(
            benchmark_runs(ROOT / "benchmarks/results/small.json"),
            benchmark_runs(scratch / "benchmark-results/small.json"))
        checks[-1].passed = checks[-1].passed and not problems
        checks[-1].problems += problems
        notes.append("Benchmark (small; wall times depend on the machine's load): "
                     + "; ".join(times))
    text = summary(changes, checks, notes)
    (scratch / "upgrade-summary.md").write_text(text)
    print(text, end="")
    return 0 if all(c.passed for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
