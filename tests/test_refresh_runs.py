"""Real `ivig refresh` processes against one warehouse (issue 10): kills, two at once,
a changed key, a full disk, an empty inbox, unusable folders; a --plan file (issue 11).

One cold refresh of a three-hospital inbox (`base`, key A) is the previous run of every
test; each test works on a copy (`cp -a`). Stages are detected from the plain progress
lines the CLI prints when stdout is not a terminal.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import duckdb
import pytest
from protocol_helpers import V2, amendment_file
from refresh_runs_support import (
    IVIG,
    KEY_A,
    KEY_B,
    UNUSABLE,
    cli_env,
    copy_tree,
    live,
    publish_first,
    refresh_args,
    run_cli,
    wait_until_gone,
    write_small_inbox,
)

from ivig_platform.landing.discovery import discover_deliveries
from ivig_platform.landing.land import land_delivery, landed_manifests
from ivig_platform.landing.pseudonym import key_fingerprint
from ivig_platform.protocol.in_force import with_plan_files
from ivig_platform.warehouse.publish import recover_interrupted_publish
from ivig_platform.warehouse.rollback import list_versions
from ivig_platform.warehouse.state import is_unchanged, read_state

# Each test runs real refreshes (Prefect's temporary server, GX, dbt): about a minute each
# on an idle two-core machine, several on a busy one; the bounds allow for the latter.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_inbox(tmp_path_factory) -> Path:
    return write_small_inbox(tmp_path_factory.mktemp("runs") / "inbox")


@pytest.fixture(scope="module")
def base(small_inbox: Path, tmp_path_factory):
    warehouse = tmp_path_factory.mktemp("base") / "warehouse"
    return warehouse, publish_first(small_inbox, warehouse)


@pytest.fixture
def warehouse(base, tmp_path: Path) -> Path:
    return copy_tree(base[0], tmp_path / "warehouse")


def last_line(result: subprocess.CompletedProcess) -> str:
    return (result.stdout + result.stderr).strip().splitlines()[-1]


# --- unusable folders and the summary line ------------------------------------------------


def test_unusable_site_folders_are_in_the_summary_status_and_file(base):
    warehouse, first = base
    assert re.search(r"2 inbox folder\(s\) not read \(not a site id\): '\.\.evil', 'bad name'",
                     first.stdout), first.stdout
    status = run_cli([IVIG, "status", "--warehouse", str(warehouse)], cli_env())
    for name in UNUSABLE:
        assert f"inbox folder {name!r} not read: not a site id" in status.stdout
    con = duckdb.connect(str(warehouse / "ivig.duckdb"), read_only=True)
    try:
        assert [f for (f,) in con.execute(
            "SELECT folder FROM quality.inbox_issue ORDER BY folder").fetchall()] == list(UNUSABLE)
        sites = {s for (s,) in con.execute("SELECT site_id FROM quality.site_delivery")
                 .fetchall()}
    finally:
        con.close()
    assert not sites & set(UNUSABLE)  # not landed as rejected deliveries either
    assert "Traceback" not in first.stdout + first.stderr


def test_an_empty_inbox_into_a_new_warehouse_publishes_nothing(tmp_path: Path):
    (tmp_path / "inbox").mkdir()
    result = run_cli(refresh_args(tmp_path / "inbox", tmp_path / "wh"), cli_env())
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: inbox {tmp_path / 'inbox'} holds no deliveries and {tmp_path / 'wh'} has "
        "none landed: nothing to publish")
    assert not (tmp_path / "wh" / "ivig.duckdb").exists()


# --- kill -9 at each stage ------------------------------------------------------------------

# (the stats marts are dbt Python models: the "dbt" stage computes them, no stage of its own)
STAGES = {  # stage → the plain progress line that says the run is in it
    "landing": re.compile(r"^\[[^\]]+/[^\]]+\] landing"),
    "gate": re.compile(r"^\[refresh\] step quality gate on each site"),
    "build": re.compile(r"^\[refresh\] step building the warehouse file"),
    "dbt": re.compile(r"^\[refresh\] step dbt build"),
    "report": re.compile(r"^\[refresh\] step study report"),
    "publish": re.compile(r"^\[refresh\] step publishing"),
}


def kill_at(stage: str, inbox: Path, warehouse: Path, marker: str, force: bool = True) -> str:
    """Start a (forced) refresh, SIGKILL it when it reaches `stage`; return its output."""
    process = subprocess.Popen(refresh_args(inbox, warehouse, *(["--force"] if force else [])),
                               env=cli_env(marker=marker), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = []
    for line in process.stdout:
        seen.append(line)
        if STAGES[stage].search(line):
            os.kill(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=60)
    process.stdout.close()
    assert process.returncode == -signal.SIGKILL, f"never reached {stage}:\n{''.join(seen)}"
    return "".join(seen)


def test_kill_9_at_each_stage_leaves_the_previous_run_live_and_nothing_running(
        base, warehouse: Path, small_inbox: Path):
    previous = live(warehouse)
    assert previous.consistent
    dead_runs = []
    for stage in STAGES:
        marker = uuid.uuid4().hex
        kill_at(stage, small_inbox, warehouse, marker)
        assert wait_until_gone(marker) == [], f"a process outlived the kill at {stage}"
        if stage == "publish" and list((warehouse / ".build").glob("*/publish.journal")):
            recover_interrupted_publish(warehouse)  # killed mid-swap: what the next start does
        now = live(warehouse)
        if stage == "publish" and now != previous:
            assert now.consistent  # killed after the swaps: the killed run is wholly live
            previous = now
        else:
            assert now == previous, stage
        builds = warehouse / ".build"
        dead_runs += [p.name for p in builds.iterdir()] if builds.is_dir() else []
    assert dead_runs, "killed runs leave their build folders behind..."
    again = run_cli(refresh_args(small_inbox, warehouse, "--force"), cli_env())
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert last_line(again).startswith(f"published {warehouse / 'ivig.duckdb'}: 3 sites")
    assert not (warehouse / ".build").exists() or list((warehouse / ".build").iterdir()) == []
    after = live(warehouse)
    assert after.consistent and after != previous


# --- rollback, then refresh -------------------------------------------------------------------


def test_after_rollback_the_next_refresh_does_not_say_nothing_changed(
        warehouse: Path, small_inbox: Path):
    unchanged = run_cli(refresh_args(small_inbox, warehouse), cli_env())
    assert "nothing changed since the last publish" in unchanged.stdout
    (current,) = list_versions(warehouse)
    older = current.with_name("ivig-20200101T000000000000Z.duckdb")
    shutil.copy(current, older)  # an earlier version: another file, written at another time
    rolled = run_cli([IVIG, "rollback", "--warehouse", str(warehouse)], cli_env())
    assert rolled.returncode == 0, rolled.stderr
    state = {k: v for k, v in read_state(warehouse).items() if k != "published_file"}
    assert not is_unchanged(warehouse, state)
    output = kill_at("landing", small_inbox, warehouse, uuid.uuid4().hex, force=False)
    assert "nothing changed" not in output


# --- two refreshes at once --------------------------------------------------------------------


def start(inbox: Path, warehouse: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(refresh_args(inbox, warehouse, *extra), env=cli_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def deliveries(warehouse: Path) -> list[tuple]:
    con = duckdb.connect(str(warehouse / "ivig.duckdb"), read_only=True)
    try:
        return con.execute(
            "SELECT site_id, delivery_id, status, rows_landed, rows_quarantined "
            "FROM quality.site_delivery ORDER BY ALL").fetchall() + con.execute(
            "SELECT count(*), count(DISTINCT patient_key) FROM marts.dim_patient").fetchall()
    finally:
        con.close()


def test_two_refreshes_at_once_one_runs_the_other_is_refused_or_waits(
        base, warehouse: Path, small_inbox: Path):
    single = deliveries(base[0])
    busy = re.compile(rf"^error: another refresh of {re.escape(str(warehouse))} is running "
                      r"\(pid \d+, started [0-9T:+-]+\)$")
    for trial in range(3):
        if trial < 2:  # both forced, neither waits: one is refused at once
            pair = [start(small_inbox, warehouse, "--force") for _ in range(2)]
        else:  # the inbox touched, both wait: the second finds nothing left to do
            for path in small_inbox.rglob("*.csv"):
                os.utime(path)
            pair = [start(small_inbox, warehouse, "--wait", "600") for _ in range(2)]
        done = {}
        while len(done) < 2:
            for process in pair:
                if process not in done and process.poll() is not None:
                    done[process] = process.communicate()
            if trial < 2 and done:  # the refused one is out: no need to finish the other
                break
            time.sleep(0.2)
        if trial < 2:
            (loser, (out, err)), = done.items()
            assert loser.returncode == 1, out + err
            assert busy.match(err.strip()), err
            winner = next(p for p in pair if p is not loser)
            winner.kill()
            winner.communicate()
        else:
            codes = sorted(p.returncode for p in pair)
            outputs = [out + err for out, err in done.values()]
            assert codes == [0, 0], outputs
            assert sum("nothing changed since the last publish" in o for o in outputs) == 1
            assert sum("published " in o.strip().splitlines()[-1] for o in outputs) == 1
    assert deliveries(warehouse) == single


# --- the real flow, a full disk injected in each stage -------------------------------------

# stage → (module, attribute) whose call raises ENOSPC in that stage
INJECTIONS = {
    "landing": ("flows.refresh", "land_delivery"),
    "gate": ("ivig_platform.quality.cache", "cached_landing_gates"),
    "build": ("flows.refresh", "build_database"),
    "dbt": ("ivig_platform.modeling", "build_marts"),
    "mart gate": ("ivig_platform.quality", "run_mart_gate"),
    "report": ("ivig_platform.report", "render_build_report"),
    "publish": ("ivig_platform.warehouse.publish", "_swap"),
}

FAULTS = textwrap.dedent(
    """
    import errno, importlib, json, os, sys
    from pathlib import Path

    inbox, warehouse, injections = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
    from ivig_platform.cli import prepare_refresh
    refresh = prepare_refresh(warehouse)
    from ivig_platform.warehouse.outcome import RefreshFailed

    def run(**kw):
        return refresh(inbox=str(inbox), warehouse=str(warehouse), **kw)

    out = {"stages": {}}
    for stage, (module, name) in injections.items():
        target = importlib.import_module(module)
        real = getattr(target, name)

        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(warehouse / "x"))

        setattr(target, name, full)
        try:
            run(force=True)
            out["stages"][stage] = "no failure"
        except RefreshFailed as failed:
            out["stages"][stage] = str(failed)
        finally:
            setattr(target, name, real)

    import ivig_platform.quality as quality  # the marts broken: the mart gate blocks
    real_gate = quality.run_mart_gate

    def on_broken_marts(marts, run_id, **kwargs):
        marts["mart_cohort"] = marts["mart_cohort"].clear()
        return real_gate(marts, run_id, **kwargs)

    quality.run_mart_gate = on_broken_marts
    try:
        run(force=True)
    except RefreshFailed as failed:
        out["blocked"] = str(failed)
    print("RESULT " + json.dumps(out))
    """
)


def test_disk_full_in_each_stage(warehouse: Path, small_inbox: Path):
    """ENOSPC in any stage, injected in the real flow in-process: one line (where, how
    much is needed, how much is free), nothing published: the previous run stays live.
    Then marts the mart gate blocks: the line names that run's Data Docs, kept."""
    first = live(warehouse)
    child = subprocess.run(
        [sys.executable, "-c", FAULTS, str(small_inbox), str(warehouse),
         json.dumps(INJECTIONS)],
        capture_output=True, text=True, env=cli_env(), cwd=REPO, timeout=880,
    )
    result_line = [line for line in child.stdout.splitlines() if line.startswith("RESULT ")]
    assert result_line, child.stdout[-3000:] + child.stderr[-3000:]
    result = json.loads(result_line[0].removeprefix("RESULT "))
    assert list(result["stages"]) == list(INJECTIONS)
    for stage, line in result["stages"].items():
        assert line.startswith(f"refresh failed during {stage}: disk full at {warehouse / 'x'}"
                               ": the run needs about "), (stage, line)
        assert f" free; nothing published; live: run {first.database}" in line, (stage, line)
        assert "\n" not in line and "Traceback" not in line
    blocked = re.fullmatch(r"refresh failed during mart gate: the mart quality gate blocked "
                           r"the publish: .*; this run's Data Docs: (\S+); nothing published; "
                           rf"live: run {first.database}.*", result["blocked"])
    assert blocked, result["blocked"]
    docs = Path(blocked.group(1))
    assert docs.exists() and docs.parent.parent == warehouse / "logs"
    assert live(warehouse) == first


# --- a changed key ----------------------------------------------------------------------------


def fingerprint_of(warehouse: Path) -> dict[str, int]:
    """Everything under the warehouse but logs and Prefect's state: path → mtime."""
    skipped = {"logs", ".prefect", ".refresh.lock"}  # the refusal's own traces
    return {str(p.relative_to(warehouse)): p.stat().st_mtime_ns
            for p in warehouse.rglob("*")
            if p.is_file() and not skipped & set(p.relative_to(warehouse).parts)}


def key_b_pseudonyms(inbox: Path, scratch: Path) -> set[str]:
    """What landing makes of every delivery with key B (real landing, scratch warehouse)."""
    import polars as pl

    keys: set[str] = set()
    for delivery in discover_deliveries(inbox):
        manifest = land_delivery(delivery, scratch, KEY_B.encode())
        if manifest.status == "landed":
            for table in scratch.glob(f"landing/site={delivery.site_id}/"
                                      f"delivery={delivery.delivery_id}/*.parquet"):
                frame = pl.read_parquet(table)
                if "patient_key" in frame.columns:
                    keys |= set(frame["patient_key"].drop_nulls())
    return keys


def test_a_changed_key_is_refused_and_rekeying_never_mixes_keys(
        base, warehouse: Path, small_inbox: Path, tmp_path: Path):
    inbox = copy_tree(small_inbox, tmp_path / "inbox")
    archived_site = "h-clinic-barcelona"  # one delivery, accepted
    superseded = inbox / "hu-vall-hebron" / "2026-06-30"
    archive = tmp_path / "archive"
    archive.mkdir()
    (inbox / archived_site).rename(archive / archived_site)
    superseded.rename(archive / "vall-hebron-2026-06-30")
    before = fingerprint_of(warehouse)

    refused = run_cli(refresh_args(inbox, warehouse), cli_env(KEY_B))
    assert refused.returncode == 1
    line = refused.stderr.strip()
    assert line.startswith(f"error: IVIG_PSEUDONYM_KEY (fingerprint "
                           f"{key_fingerprint(KEY_B.encode())}) is not the key "), line
    assert "--rekey" in line and "\n" not in line
    assert fingerprint_of(warehouse) == before

    refused = run_cli(refresh_args(inbox, warehouse, "--rekey"), cli_env(KEY_B))
    assert refused.returncode == 1
    line = refused.stderr.strip()
    assert line.startswith("error: re-keying refused, nothing was changed: 1 delivery in "
                           "force"), line
    assert re.search(rf"{archived_site}/[0-9-]+ \(accepted\)", line), line
    assert "hu-vall-hebron" not in line  # superseded: retired, not a reason to refuse
    assert fingerprint_of(warehouse) == before

    (archive / archived_site).rename(inbox / archived_site)
    rekeyed = run_cli(refresh_args(inbox, warehouse, "--rekey"), cli_env(KEY_B))
    assert rekeyed.returncode == 0, rekeyed.stdout[-3000:] + rekeyed.stderr[-3000:]
    assert "retired: hu-vall-hebron/2026-06-30" in last_line(rekeyed)
    expected = key_b_pseudonyms(inbox, tmp_path / "scratch")
    con = duckdb.connect(str(warehouse / "ivig.duckdb"), read_only=True)
    try:
        columns = con.execute(
            "SELECT table_schema, table_name FROM information_schema.columns "
            "WHERE column_name = 'patient_key'").fetchall()
        published = set()
        for schema, table in columns:
            published |= {k for (k,) in con.execute(
                f'SELECT DISTINCT patient_key FROM "{schema}"."{table}" '
                "WHERE patient_key IS NOT NULL").fetchall()}
        recorded = con.execute("SELECT key_fingerprint FROM quality.refresh_run").fetchone()[0]
    finally:
        con.close()
    assert published and published <= expected  # every pseudonym is key B's
    assert recorded == key_fingerprint(KEY_B.encode())
    assert json.loads((warehouse / "_last_refresh.json").read_text())["key_fingerprint"] == (
        recorded)
    assert {m.key_fingerprint for m in landed_manifests(warehouse) if m.status == "landed"} == {
        recorded}
    assert (warehouse / "retired" / f"key-{key_fingerprint(KEY_A.encode())}").is_dir()


# --- a full disk (a small tmpfs as the warehouse) --------------------------------------------

TMPFS = r"""
set -u
W="$1"; shift
mkdir -p "$W.src" && cp -a "$W/." "$W.src/" && rm -rf "$W" && mkdir -p "$W"
mount -t tmpfs -o size=$1 tmpfs "$W" || exit 77
cp -a "$W.src/." "$W/"
used=$(du -sk "$W" | cut -f1); echo "copied ${used}K"
mount -o remount,size=$(( used + $2 ))k "$W"
"$IVIG" refresh --inbox "$INBOX" --warehouse "$W" --force; echo "rc=$?"
"$IVIG" refresh --inbox "$INBOX" --warehouse "$W" --force; echo "rc=$?"
ls "$W/.build" 2>/dev/null | wc -l | sed 's/^/builds=/'
mount -o remount,size=400m "$W"
"$IVIG" refresh --inbox "$INBOX" --warehouse "$W" --force; echo "rc=$?"
"""


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")
def test_a_full_disk_says_so_and_the_next_run_works_once_there_is_room(
        warehouse: Path, small_inbox: Path):
    """A real full disk: the warehouse on a tmpfs with room for less than a build."""
    env = {**cli_env(), "IVIG": IVIG, "INBOX": str(small_inbox)}
    result = subprocess.run(["unshare", "-rm", "sh", "-c", TMPFS, "tmpfs", str(warehouse),
                             "64m", "6000"],
                            capture_output=True, text=True, env=env, timeout=800)
    if result.returncode == 77 or "Operation not permitted" in result.stderr:
        pytest.skip("cannot mount a tmpfs here")
    out = result.stdout + result.stderr
    rcs = re.findall(r"^rc=(\d+)$", out, re.MULTILINE)
    assert rcs == ["1", "1", "0"], out[-4000:]
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2, out[-4000:]
    for line in errors:
        assert re.search(r"(disk full|too little disk space) at \S+: the run needs about "
                         r"[0-9.]+ [KMG]B \(.*\), [0-9.]+ [KMG]?B free", line), line
        assert "nothing published; live: run " in line
        assert "500 Internal Server Error" not in line.split(" (")[0]
    assert "Traceback" not in out and "Error logging to API" not in out  # in the logs
    assert "builds=1" in out  # the second run's build only: the first run's did not stay


# ------------------------------------------------------------------- --plan files (issue 11)


@pytest.fixture(scope="module")
def plan_runs(base, small_inbox: Path, tmp_path_factory):
    """On a copy of the base warehouse (a plain refresh of the small inbox): a refresh with
    the issue's v2 as a --plan file, then the same again (issue 11)."""
    root = tmp_path_factory.mktemp("plan-runs")
    inbox, warehouse = small_inbox, copy_tree(base[0], root / "warehouse")
    plan = amendment_file(root / "plans", "v2.yaml", V2)
    second = run_cli(refresh_args(inbox, warehouse, "--plan", str(plan)), cli_env())
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    third = run_cli(refresh_args(inbox, warehouse, "--plan", str(plan)), cli_env())
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
    return warehouse, plan, second, third


def _by_plan(warehouse: Path) -> dict[tuple[str, str], dict]:
    con = duckdb.connect(str(warehouse / "ivig.duckdb"), read_only=True)
    try:
        cursor = con.execute("SELECT * FROM marts.mart_efficacy_by_plan WHERE subgroup = 'all' "
                             "AND subgroup_value = 'all'")
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    finally:
        con.close()
    return {(r["analysis_plan"], r["measure"]): r for r in rows}


def test_a_new_plan_file_alone_is_a_change_and_a_repeat_is_not(plan_runs) -> None:
    warehouse, _, second, third = plan_runs
    assert "nothing changed" not in second.stdout
    assert {plan for plan, _ in _by_plan(warehouse)} == {"v1", "v2"}
    assert "nothing changed since the last publish" in third.stdout


def test_the_report_compares_the_plan_files_amendment_with_the_mart_numbers(plan_runs) -> None:
    from test_report_amendments import table_rows

    from ivig_platform.report import formatting as fmt
    from ivig_platform.report.privacy import is_small, mask

    warehouse, plan, _, _ = plan_runs
    html = (warehouse / "report.html").read_text()
    assert "Protocol amendments" in html and "six months instead of three" in html
    rows = _by_plan(warehouse)
    shown = 0
    for measure in with_plan_files([plan]).plan("v2").measures:
        for version, n_text, baseline, post, change, _p in table_rows(
                html, f"amendment-v2-{measure.name}"):
            r = rows[(version, measure.name)]
            if is_small(r["n_paired"]):
                assert n_text == mask()
                continue
            shown += 1
            d = measure.decimals
            assert n_text == f"{r['n_paired']:,}"
            assert baseline == fmt.mean_sd(r["baseline_mean"], r["baseline_sd"], 99, d)
            assert post == fmt.mean_sd(r["post_mean"], r["post_sd"], 99, d)
            assert change.startswith(fmt.number(r["mean_change"], d))
    assert shown  # some numbers were compared, not only masks


def test_the_docs_site_has_the_contract_page_of_the_run(plan_runs) -> None:
    from ivig_platform.protocol.document import render_contract_html

    warehouse, plan, _, _ = plan_runs
    page = (warehouse / "docs" / "contract.html").read_text()
    protocol = with_plan_files([plan])
    assert page == render_contract_html(protocol)
    contract = protocol.contract
    for name in contract.delivery.tables:
        table = contract.table(name)
        assert name in page and all(f in page for f in table.field_names)
    assert all(s in page for v in contract.vocabularies.values() for s in v.codes)


def test_ivig_report_renders_the_recorded_plans_again(plan_runs, tmp_path) -> None:
    warehouse, _, _, _ = plan_runs
    copy = copy_tree(warehouse, tmp_path / "warehouse")
    (copy / "report.html").unlink()
    done = run_cli([IVIG, "report", "--warehouse", str(copy)], cli_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'id="amendment-v2-changes"' in (copy / "report.html").read_text()
