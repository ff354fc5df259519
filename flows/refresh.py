"""The refresh: every site's deliveries in, one published DuckDB file out.

Reads top to bottom as the process it runs: take the warehouse (one run at a time), clear
what dead runs left, check the key and the inbox, find the deliveries, land each one
(sites in parallel; a broken site is recorded and the others go on), build a new
warehouse file with its report and docs, publish the three together, and leave a summary
for the people who watch the runs. A failure anywhere is one line that says whether
anything was published and which run is live; the details are in the run's log file.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import threading
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import polars as pl
from prefect import flow, get_run_logger, task, unmapped
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff
from prefect.utilities.annotations import quote

from ivig_platform.landing.discovery import Discovery, discover_settled
from ivig_platform.landing.land import Delivery, Manifest, land_delivery, landed_manifests
from ivig_platform.landing.pseudonym import KEY_VARIABLE, key_fingerprint, load_key
from ivig_platform.progress import ProgressEvent, announce_final_states, emit, landed_detail
from ivig_platform.protocol.in_force import run_under
from ivig_platform.run_log import LOGS_DIR, log_path, new_run_id, run_log_handler
from ivig_platform.states import ACCEPTED, DEFERRED, HELD_BACK, LANDED, REJECTED
from ivig_platform.warehouse.build import BuildScope, RunInfo, build_database, delivery_status
from ivig_platform.warehouse.contract_page import write_contract_page
from ivig_platform.warehouse.disk import disk_full_error
from ivig_platform.warehouse.housekeeping import clear_dead_runs
from ivig_platform.warehouse.keys import other_key, retire
from ivig_platform.warehouse.lake import Lake, LakeError, commit_build, configure, lake_of
from ivig_platform.warehouse.lake import current as current_publication
from ivig_platform.warehouse.outcome import RefreshFailed, StageClock, failure_line
from ivig_platform.warehouse.preflight import preflight
from ivig_platform.warehouse.publish import (
    DOCS_NAME,
    PUBLISHED_NAME,
    REPORT_NAME,
    Bundle,
    build_path,
    publish_bundle,
    published_path,
)
from ivig_platform.warehouse.reader import describe_published
from ivig_platform.warehouse.run_lock import WarehouseBusy, run_lock
from ivig_platform.warehouse.state import (
    current_state,
    is_unchanged,
    published_identity,
    read_state,
    write_state,
)
from ivig_platform.warehouse.summary import RefreshSummary, summarise

if TYPE_CHECKING:
    from ivig_platform.modeling import DbtOutcome
    from ivig_platform.protocol.load import Protocol
    from ivig_platform.quality import DriftPools, GateResult

SECRET_BLOCK = "ivig-pseudonym-key"
# Imported when first needed, not with the flow: GX, pandas, scipy, Altair and dbt cost
# seconds to import, which `preload_in_background` overlaps with Prefect's start.
HEAVY_MODULES = (
    "ivig_platform.quality",
    "ivig_platform.quality.cache",
    "ivig_platform.modeling",
    "ivig_platform.report",
    # what `build_marts` imports when it first invokes dbt (ivig_platform.modeling itself
    # imports no dbt): ~6 s of CPU on the loaded 2-core machine, otherwise paid inside the
    # dbt stage (benchmarks/results/fixed-costs-small.md)
    "dbt.cli.main",
    "dbt.adapters.duckdb",
    "prefect_dbt",
    # what the landing tasks import lazily, in several threads at once
    "pyarrow.parquet",
    "fastexcel",
)


_preload: list[threading.Thread] = []


def preload_in_background() -> threading.Thread:
    """Import the heavy modules in a thread while the caller starts the flow.

    A refresh from the CLI spends its first ~10 s waiting for Prefect's temporary server
    (another process); the imports the tasks need anyway run meanwhile. The flow waits for
    them before its first task (`wait_for_preload`).
    """
    def load() -> None:
        for name in HEAVY_MODULES:
            importlib.import_module(name)

    thread = threading.Thread(target=load, name="ivig-preload", daemon=True)
    thread.start()
    _preload.append(thread)
    return thread


def wait_for_preload() -> None:
    """Block until the preload's imports are done (at once when there was none).

    Importing a package from two threads at once is not safe: when its modules import each
    other, Python hands one thread a partially initialised module rather than deadlock
    ("cannot import name 'References' from partially initialized module
    ivig_platform.quality.drift_reference", seen against a running Prefect server, where
    no server start hides the preload). So no task imports them while it runs.
    """
    while _preload:
        _preload.pop().join()


def ensure_key() -> None:
    """The key comes from the environment or, on a Prefect server, from a Secret block.

    A worker started without `IVIG_PSEUDONYM_KEY` looks for the Secret block
    `ivig-pseudonym-key`; the value is put in this process's environment only, never in
    a parameter, a result or a log. Without either, the run fails before any work.
    """
    if not os.environ.get(KEY_VARIABLE) and os.environ.get("PREFECT_API_URL"):
        from prefect.blocks.system import Secret

        with contextlib.suppress(ValueError):  # no block: load_key() says what is missing
            os.environ[KEY_VARIABLE] = Secret.load(SECRET_BLOCK).get()
    load_key()


@task(name="find-deliveries")
def find_deliveries(inbox: Path, settle_seconds: float) -> Discovery:
    found = discover_settled(inbox, settle_seconds)
    for d in found.ready:
        emit(ProgressEvent(d.site_id, d.delivery_id, "queued"))
    for d in found.waiting:
        emit(ProgressEvent(d.site_id, d.delivery_id, "waiting",
                           f"still being written (unchanged < {settle_seconds:.0f} s, no _READY)"))
    return found


def _transient(task, task_run, state) -> bool:
    """Retry only what waiting can fix: files changing or briefly unreadable (a full disk
    is not: it fails the run, see `land_all`)."""
    error = state.result(raise_on_failure=False)
    return isinstance(error, OSError) and disk_full_error(error) is None


@task(
    name="land-delivery",
    task_run_name="land-{delivery.site_id}-{delivery.delivery_id}",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    retry_condition_fn=_transient,
    # No per-task timeout: mapped tasks run in worker threads, where Prefect cannot
    # interrupt them; the flow's own timeout bounds the run instead.
    cache_policy=NO_CACHE,  # landing's own manifest is the cache, keyed on content hash
)
def land(delivery: Delivery, warehouse: Path) -> Manifest:
    """Land one delivery; a failure that retrying cannot fix rejects this delivery only."""
    emit(ProgressEvent(delivery.site_id, delivery.delivery_id, "landing"))
    key = load_key()
    try:
        manifest = land_delivery(delivery, warehouse, key)
    except OSError:
        raise  # transient (changing files, I/O): retried with backoff, then deferred
    except Exception as exc:  # a bug must not stop the other sites
        # Only the exception type and the code path are logged: messages from parsers can
        # quote cell values, and cell values can be identifiers (§6).
        get_run_logger().error(
            "landing %s failed with %s\n%s", delivery.label, type(exc).__name__,
            "".join(traceback.format_tb(exc.__traceback__)),
        )
        now = datetime.now(UTC)
        manifest = Manifest(
            site_id=delivery.site_id, delivery_id=delivery.delivery_id, status="rejected",
            reason=f"landing_error: {type(exc).__name__} while landing (see the run log)",
            content_sha256="", landing_version="", key_fingerprint=key_fingerprint(key),
            delivery_date=now.date().isoformat(), landed_at=now.isoformat(),
        )
    stage = REJECTED if manifest.status == "rejected" else LANDED
    detail = manifest.reason or landed_detail(manifest.rows_landed, manifest.rows_quarantined)
    emit(ProgressEvent(delivery.site_id, delivery.delivery_id, stage, detail))
    return manifest


@task(
    name="gate-deliveries",
    task_run_name="gate-{label}",
    timeout_seconds=1800,
    cache_policy=NO_CACHE,
)
def gate_deliveries(deliveries: list[tuple[str, str, str]], warehouse: Path, pool: DriftPools,
                    run_id: str, fingerprint: str, label: str,
                    read: dict[tuple[str, str], dict] | None = None) -> list[GateResult]:
    """The landing suites on each site's delivery: error checks decide whether it is used.

    One task for the whole round: verdicts stay per delivery, but GX validates every
    uncached delivery of the round together, one validation per suite (see
    quality/pooled.py: GX's cost is per expectation, so 200 separate validations cost
    minutes, one pooled validation seconds). A verdict is cached with its delivery, keyed
    on the content hash, the suites and the delivery's fixed drift references (other sites
    cannot move them): an unchanged site costs a file read.
    """
    from ivig_platform.quality import landed_tables
    from ivig_platform.quality.cache import cached_landing_gates

    read = read or {}
    tables = {(site, delivery): read.get((site, delivery))
              or landed_tables(warehouse, site, delivery) for site, delivery, _ in deliveries}
    gated = cached_landing_gates(warehouse, deliveries, tables, pool, run_id, fingerprint)
    for result, cached in gated:
        detail = (result.reason or result.verdict) + (" (cached)" if cached else "")
        emit(ProgressEvent(result.site_id, result.delivery_id,
                           ACCEPTED if result.passed_errors else HELD_BACK, detail))
    fresh = sum(not cached for _, cached in gated)
    get_run_logger().info("gated %d deliveries: %d validated (pooled), %d from the cache",
                          len(gated), fresh, len(gated) - fresh)
    return [result for result, _ in gated]


def gate_sites(manifests: list[Manifest], warehouse: Path,
               run_id: str) -> tuple[dict[tuple[str, str], str], list[GateResult]]:
    """Gate each site's newest landed delivery, one `gate-deliveries` task per round; a
    held-back site falls back to its older deliveries (quality/rounds.py)."""
    from ivig_platform.quality.rounds import gate_sites as gate_in_rounds

    return gate_in_rounds(manifests, warehouse, run_id, gate_deliveries)


@task(name="plan-build", cache_policy=NO_CACHE)
def plan_build(warehouse: Path, state: dict[str, str], manifests: list[Manifest],
               held_back: dict[tuple[str, str], str], full_refresh: bool,
               rekey: bool) -> BuildScope:
    """Full, or from the published file rebuilding only the changed sites: an incremental
    build needs the published file to be the one the recorded state describes, built by
    this very code, protocol, plans, libraries and key (warehouse/changes.py)."""
    from ivig_platform.warehouse.changes import build_scope, full_build_reason
    from ivig_platform.warehouse.live import published_site_delivery

    reason = full_build_reason(state, read_state(warehouse), published_identity(warehouse),
                               full_refresh=full_refresh, rekey=rekey)
    published = published_site_delivery(warehouse) if reason is None else None
    scope = build_scope(reason, published_path(warehouse), published,
                        delivery_status(manifests, held_back))
    get_run_logger().info("%s", scope.describe())
    return scope


@task(name="build-warehouse", timeout_seconds=1800, cache_policy=NO_CACHE)
def build_warehouse(warehouse: Path, manifests: list[Manifest], run: RunInfo,
                    held_back: dict[tuple[str, str], str],
                    gate_results: list[GateResult],
                    inbox_issues: list[tuple[str, str]] | None = None,
                    scope: BuildScope | None = None) -> Path:
    """A new DuckDB file from every landed delivery (the warehouse is the record), or a
    copy of the published one with the changed sites' rows replaced (`scope`)."""
    from ivig_platform.quality import check_results_frame

    built = build_path(warehouse, run.run_id)
    build_database(built, warehouse, manifests, run, held_back=held_back,
                   check_results=check_results_frame(gate_results), inbox_issues=inbox_issues,
                   scope=scope)
    return built


@task(name="gate-marts", timeout_seconds=1800, cache_policy=NO_CACHE)
def gate_marts(built: Path, run_id: str) -> GateResult:
    """The mart suites on what dbt built; the results join quality.check_result."""
    from ivig_platform.quality import check_results_frame, read_marts, run_mart_gate

    emit(ProgressEvent("*", "*", "step", "quality gate on the marts"))
    con = duckdb.connect(str(built))
    try:
        result = run_mart_gate(read_marts(con), run_id)
        con.register("mart_checks", check_results_frame([result]))
        con.execute("INSERT INTO quality.check_result SELECT * FROM mart_checks")
        con.unregister("mart_checks")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return result


@task(name="data-docs", timeout_seconds=1800, cache_policy=NO_CACHE)
def publish_quality_docs(results: list[GateResult], docs_dir: Path,
                         deltas: pl.DataFrame | None = None) -> Path:
    """The run's Data Docs (published with its file), and the gate summary as artifacts.

    `deltas`: the check deltas against the previous published run, summarised in the docs.
    """
    from ivig_platform.quality import build_data_docs, failure_rows, gate_markdown

    index = build_data_docs(results, docs_dir, deltas=deltas)
    create_markdown_artifact(key="quality-gate", markdown=gate_markdown(results, index),
                             description="Data-quality gates of this refresh")
    failures = failure_rows(results)
    if failures:
        create_table_artifact(key="quality-failures", table=failures,
                              description="Failed quality checks")
    return index


def run_dbt(built: Path) -> DbtOutcome:
    """dbt build in-process on the build file: each model and seed shows as a task.

    Called from the flow itself (not from a task) so dbt's node tasks sit at the top of
    the run in the Prefect UI. A failing model or error test fails the run: nothing is
    published and the previous file stays.
    """
    from ivig_platform.modeling import build_marts

    emit(ProgressEvent("*", "*", "step", "dbt build (models, tests, docs)"))
    run_dir = built.parent
    outcome = build_marts(built, target_dir=run_dir / "dbt",
                          docs_dir=run_dir / DOCS_NAME / "dbt")
    create_markdown_artifact(key="dbt-build", markdown=outcome.summary(),
                             description="dbt build of this refresh")
    if not outcome.success:
        first = outcome.error or "; ".join(str(f) for f in outcome.failures[:3])
        raise RuntimeError(f"dbt build failed: {first}")
    return outcome


@task(name="record-inputs", timeout_seconds=1800, cache_policy=NO_CACHE)
def record_inputs(built: Path, warehouse: Path, manifests: list[Manifest],
                  held_back: dict[tuple[str, str], str], gate_results: list[GateResult],
                  run_id: str) -> list[dict]:
    """The cells as reported and the delivery log (with this run's events) into the build."""
    from ivig_platform.provenance.steps import record_inputs as write_inputs

    return write_inputs(built, warehouse, manifests, held_back, gate_results, run_id)


@task(name="check-deltas", cache_policy=NO_CACHE)
def compute_check_deltas(gate_results: list[GateResult], warehouse: Path,
                         run_id: str) -> pl.DataFrame:
    """Each site's failing checks against the published file: new, persisting, resolved."""
    from ivig_platform.provenance.check_delta import check_deltas

    return check_deltas(gate_results, published_path(warehouse), run_id)


@task(name="record-run", timeout_seconds=1800, cache_policy=NO_CACHE)
def record_run(built: Path, warehouse: Path, run: RunInfo, deltas: pl.DataFrame) -> dict:
    """marts.ard, quality.check_delta and quality.run_record; the record as an artifact."""
    from prefect.runtime import flow_run

    from ivig_platform.provenance.run_record import record_markdown
    from ivig_platform.provenance.steps import record_outputs

    emit(ProgressEvent("*", "*", "step", "run record, analysis results data, check deltas"))
    record = record_outputs(built, warehouse, run.run_id, run.started_at, deltas,
                            dict(flow_run.parameters or {}))
    create_markdown_artifact(key="run-record", markdown=record_markdown(record),
                             description="What this run was made from, by what, and its outputs")
    return record


@task(name="record-provenance", cache_policy=NO_CACHE)
def record_provenance(warehouse: Path, events: list[dict], record: dict) -> None:
    """After the publish: the run's delivery events and record into WAREHOUSE/audit/,
    WAREHOUSE/ard.json from the published file."""
    from ivig_platform.provenance.steps import after_publish

    after_publish(warehouse, events, record)


@task(name="commit-snapshot", timeout_seconds=1800, cache_policy=NO_CACHE,
      retries=2, retry_delay_seconds=5)
def commit_snapshot(built: Path, lake: Lake, run_id: str) -> int:
    """A lake warehouse: the built file as one new snapshot, not yet published (analysts
    read the snapshot the publish names). Retried: a commit can meet a concurrent one."""
    emit(ProgressEvent("*", "*", "step", "committing the build to the lake (unpublished)"))
    return commit_build(lake, built, run_id)


@task(name="render-report", timeout_seconds=1800, cache_policy=NO_CACHE)
def write_report(built: Path, run_id: str, protocol: Protocol,
                 published_name: str = PUBLISHED_NAME) -> Path:
    """The study report of the file about to be published, into the run's folder, under
    the run's protocol (the plans dbt computed); it names what analysts will read: the
    file, or the lake's snapshot."""
    from ivig_platform.report import render_build_report

    emit(ProgressEvent("*", "*", "step", "study report"))
    return render_build_report(built, built.parent / REPORT_NAME,
                               published_name=published_name, run_id=run_id,
                               protocol=protocol)


@task(name="publish", cache_policy=NO_CACHE)
def publish_warehouse(bundle: Bundle, warehouse: Path, snapshot: int | None = None,
                      run_id: str = "") -> str:
    """The file (or the lake's snapshot), the report and the docs swapped in together, or
    none of them; what is published, as people are told."""
    emit(ProgressEvent("*", "*", "step", "publishing the file, report and docs"))
    published = publish_bundle(bundle, warehouse, snapshot=snapshot, run_id=run_id)
    lake = lake_of(warehouse)
    return str(published) if lake is None else lake.name(snapshot, run_id)


@task(name="summarise-run")
def report_run(summary: RefreshSummary) -> None:
    create_markdown_artifact(
        key="refresh-summary", markdown=summary.markdown(), description="ivig refresh summary"
    )
    create_table_artifact(
        key="refresh-deliveries", table=summary.delivery_rows(),
        description="Every delivery seen by the refresh",
    )


def absolute_folder(value: str, name: str) -> Path:
    """Deployments fill paths from the environment: an empty one must not mean `.`."""
    if not value or not value.strip():
        raise ValueError(f"the {name} parameter is empty")
    path = Path(value).expanduser()
    if not path.is_absolute():
        raise ValueError(f"the {name} parameter must be an absolute path, got {value!r}")
    return path


def land_all(deliveries: list[Delivery], warehouse: Path) -> tuple[list[Manifest], list[str]]:
    """Land deliveries concurrently; those still failing after retries are deferred.

    A deferred delivery writes no manifest, so the next refresh tries it again and the
    site's previous accepted delivery stays in force meanwhile.
    """
    futures = land.map(deliveries, unmapped(warehouse))
    manifests: list[Manifest] = []
    deferred: list[str] = []
    for delivery, future in zip(deliveries, futures, strict=True):
        state = future.wait() or future.state
        if state.is_completed():
            manifests.append(future.result())
        else:
            error = state.result(raise_on_failure=False)
            if isinstance(error, BaseException) and disk_full_error(error) is not None:
                raise error  # nothing else will fit either: the run fails, in one line
            deferred.append(delivery.label)
            emit(ProgressEvent(delivery.site_id, delivery.delivery_id, DEFERRED,
                               "transient error after retries: tried again next refresh"))
    return manifests, deferred


@flow(
    name="ivig-refresh",
    task_runner=ThreadPoolTaskRunner(max_workers=4),
    timeout_seconds=4 * 3600,
)
def refresh(inbox: str, warehouse: str, settle_seconds: float = 0, force: bool = False,
            wait_seconds: float = 0, rekey: bool = False, run_id: str = "",
            plans: list[str] | None = None, full_refresh: bool = False,
            catalog: str = "", data_path: str = "") -> dict:
    """Land every site's deliveries from `inbox` and publish `warehouse/ivig.duckdb`.

    `settle_seconds`: a delivery folder without `_READY` is taken only once nothing in it
    changed for that long. `force`: rebuild even when nothing changed since the last
    publish. `wait_seconds`: how long to wait for another run of the same warehouse to
    end before giving up. `rekey`: land every delivery again with a new pseudonymisation
    key (refused when a delivery in force has no inbox files; see warehouse/keys.py).
    `run_id`: the run's name, for its build folder and `WAREHOUSE/logs/refresh-<run_id>.log`
    (the CLI passes the one it logs under; empty = a new one). `plans`: amendment files in
    force for this run besides those of `protocol/amendments/` (`ivig refresh --plan
    FILE`); every step (landing, the gates, dbt and its stats marts, the report) works under
    the protocol they make, and each plan is computed side by side in
    `marts.mart_efficacy_by_plan`. `full_refresh`: build every site's rows into a new file
    even when the published one could be the start (`ivig refresh --full-refresh`; it
    implies `force`); otherwise a refresh under the published file's code, protocol, plans
    and key copies it and rebuilds only the sites whose deliveries changed. `catalog`: a
    `postgresql://USER@HOST:PORT/DB` URL keeping the warehouse in a DuckLake (the first
    time; `WAREHOUSE/lake.json` remembers it), its data files under `data_path` (default
    `WAREHOUSE/lake/`); see warehouse/lake.py.

    A failure raises `RefreshFailed`: one line saying what failed, whether anything was
    published and which run is live, and naming the log.
    """
    ensure_key()  # fail the whole run at once, before any work, when the key is missing
    inbox_path, warehouse_path = absolute_folder(inbox, "inbox"), absolute_folder(
        warehouse, "warehouse")
    run_id = run_id or new_run_id()
    plan_files = [Path(f) for f in plans or []]
    log = log_path(warehouse_path, run_id)
    clock = StageClock()
    warehouse_path.mkdir(parents=True, exist_ok=True)
    with run_log_handler(log):
        try:
            with run_lock(warehouse_path, wait_seconds), \
                    run_under(plan_files) as protocol:
                lake = configure(warehouse_path, catalog, data_path)
                return _refresh(inbox_path, warehouse_path, settle_seconds, force, rekey,
                                run_id, clock, protocol, plan_files, full_refresh, lake)
        except WarehouseBusy as busy:
            raise RefreshFailed(str(busy), stage="start", published=False) from None
        except LakeError as unusable:
            # the catalog refused or unreachable: nothing was published, and what is
            # live cannot be asked of it either
            raise RefreshFailed(f"refresh failed during {clock.current}: {unusable}; "
                                f"nothing published (log: {log})", stage=clock.current,
                                published=False) from None
        except RefreshFailed as refused:
            get_run_logger().error("%s", refused)
            raise
        except Exception as exc:
            get_run_logger().error("run %s failed during %s:\n%s", run_id, clock.current,
                                   "".join(traceback.format_exception(exc)))
            raise failure_line(exc, stage=clock.current, warehouse=warehouse_path,
                               run_id=run_id, log=log) from exc


def _refresh(inbox: Path, warehouse: Path, settle_seconds: float, force: bool, rekey: bool,
             run_id: str, clock: StageClock, protocol: Protocol,
             plan_files: list[Path], full_refresh: bool = False,
             lake: Lake | None = None) -> dict:
    """The run itself, with the warehouse held (see `refresh`), under `protocol` (the
    repository's with `plan_files` in force), into `lake` when the warehouse is kept in
    one."""
    started = time.perf_counter()
    fingerprint = key_fingerprint(load_key())
    with clock.stage("start", timing=None):
        if lake is not None:
            current_publication(lake)  # an unreachable catalog fails here, in one line
        cleared = clear_dead_runs(warehouse)
        for note in cleared.notes():
            get_run_logger().info(note)
        # the --plan files' bytes are part of what the publish is made from: a new or
        # edited plan file alone is a change (protocol/amendments/ is in the code's)
        state = current_state(inbox, fingerprint, settle_seconds, amendments=plan_files)
        if not (force or full_refresh or rekey) and is_unchanged(warehouse, state):
            emit(ProgressEvent("*", "*", "step", "nothing changed since the last publish"))
            return {"unchanged": True, "published": describe_published(warehouse)}
        checked = preflight(inbox, warehouse, fingerprint, settle_seconds, rekey)
        if checked.rekey.reland:
            emit(ProgressEvent("*", "*", "step", f"re-keying: {len(checked.rekey.reland)} "
                               "deliveries landed again with the new key"))
        retire(warehouse, checked.rekey.retire)
    run = RunInfo(run_id=run_id, started_at=datetime.now(UTC), inbox=str(inbox),
                  key_fingerprint=fingerprint)

    wait_for_preload()  # the tasks import what the preload imports: not while it runs
    with clock.stage("landing"):
        found = find_deliveries(inbox, settle_seconds)
        manifests, deferred = land_all(found.ready, warehouse)

    with clock.stage("gate"):
        unrecorded = [m for m in manifests if m.status == "rejected" and not m.content_sha256]
        recorded = landed_manifests(warehouse) + unrecorded
        refuse_mixed_keys(recorded, fingerprint)
        emit(ProgressEvent("*", "*", "step", "quality gate on each site's delivery"))
        held_back, gate_results = gate_sites(recorded, warehouse, run.run_id)
        announce_final_states(delivery_status(recorded, held_back))

    issues = [(issue.folder, issue.reason) for issue in found.issues]
    with clock.stage("build"):
        scope = plan_build(warehouse, state, recorded, held_back, full_refresh, rekey)
        emit(ProgressEvent("*", "*", "step", f"building the warehouse file ({scope.describe()})"))
        built = build_warehouse(warehouse, recorded, run, held_back, gate_results, issues,
                                scope)
        events = record_inputs(built, warehouse, recorded, held_back, gate_results, run.run_id)
    run_dir = built.parent

    with clock.stage("dbt"):
        run_dbt(built)

    with clock.stage("mart gate", timing="gate"):
        mart_gate = gate_marts(built, run.run_id)
        gate_results.append(mart_gate)
        deltas = compute_check_deltas(gate_results, warehouse, run.run_id)
        index = publish_quality_docs(gate_results, run_dir / DOCS_NAME / "data-docs", deltas)
        if not mart_gate.passed_errors:
            kept = keep_blocked_docs(index.parent, warehouse, run.run_id)
            raise RuntimeError(f"the mart quality gate blocked the publish: {mart_gate.reason}"
                               f"; this run's Data Docs: {kept / 'index.html'}")

    with clock.stage("report"):
        # the stats marts are dbt nodes now; the ARD and the run record are read from them
        record = record_run(built, warehouse, run, deltas)
        snapshot = commit_snapshot(built, lake, run.run_id) if lake is not None else None
        report = write_report(built, run.run_id, quote(protocol),
                              PUBLISHED_NAME if lake is None else lake.name(snapshot))
        write_contract_page(run_dir / DOCS_NAME, protocol)
        mark_docs(run_dir / DOCS_NAME, run.run_id)

    with clock.stage("publish"):
        published = publish_warehouse(Bundle(built, report, run_dir / DOCS_NAME), warehouse,
                                      snapshot, run.run_id)

    with clock.stage("record", timing=None):
        record_provenance(warehouse, events, record)
        shutil.rmtree(run_dir, ignore_errors=True)  # failed runs' go at the next start
        clock.timings["total"] = time.perf_counter() - started
        summary = summarise(run.run_id, recorded, published, clock.timings,
                            waiting=[d.label for d in found.waiting], deferred=deferred,
                            held_back=held_back, gates=gate_results,
                            inbox_issues=issues, retired=checked.rekey.retired_labels,
                            relanded=checked.rekey.reland, scope=scope)
        report_run(summary)
        if not found.waiting and not deferred:
            write_state(warehouse, state)
    emit(ProgressEvent("*", "*", "step", f"published {published}"))
    return summary.as_dict()


def refuse_mixed_keys(recorded: list[Manifest], fingerprint: str) -> None:
    """No publish mixes two keys: a delivery left with another key's pseudonyms (its
    re-keying deferred by a transient error) stops the run before the build."""
    stale = other_key(recorded, fingerprint)
    if stale:
        labels = ", ".join(f"{m.site_id}/{m.delivery_id}" for m in stale)
        raise RuntimeError(f"{len(stale)} landed deliveries still carry another key's "
                           f"pseudonyms (landing them again failed): {labels}; run again")


def keep_blocked_docs(docs: Path, warehouse: Path, run_id: str) -> Path:
    """A blocked run's Data Docs, where the operator reads why (next to the run's log)."""
    kept = warehouse / LOGS_DIR / f"refresh-{run_id}-data-docs"
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(kept, ignore_errors=True)
    docs.rename(kept)
    return kept


def mark_docs(docs: Path, run_id: str) -> None:
    """`docs/_run.json`: which run the published docs belong to."""
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "_run.json").write_text(json.dumps({"run_id": run_id}))
