"""Run the dbt project in-process against a build file: seeds, models, tests, docs.

The refresh flow calls :func:`build_marts` once per refresh, on the *build file* (a DuckDB
file that already holds ``landed.*`` and ``quality.*``, see
``ivig_platform/landing/CONTRACT.md``). It runs, in this process:

0. the protocol in force is written into the build file as schema ``protocol`` (its plans
   with their windows, measures, ranges, vocabularies: ``ivig_platform.protocol.tables``),
   which the models read as the documented source ``protocol``; what dbt needs while
   compiling (the vocabularies' codes, the therapy classes, the freshness thresholds) goes
   in as vars (``dbt_vars``), so nothing of the protocol is written in ``dbt_project/``;
1. ``dbt parse`` - once; every command below runs on this parsed manifest (dbtRunner's
   ``manifest``): no command parses again or reloads manifest.json;
2. ``dbt source freshness`` - source freshness; stale sources become warnings, never failures;
3. ``dbt build`` - seeds, the staging / intermediate / marts models (the stats marts are dbt
   Python models calling ``ivig_platform.stats``), unit tests and data tests in DAG order; a
   failing model or an error-severity test makes the outcome unsuccessful, and the caller
   then keeps the previous published file. The unit tests run only when they can change:
   their result depends on the project's code alone (their fixtures are inline), so once
   they passed for a parse-cache key (see :class:`_ParseCache`) and selection, later builds
   with that key exclude them (``DbtOutcome.unit_tests_skipped``); any change to the project,
   its driving code, versions, vars or protocol is a new key and runs them again;
4. ``dbt docs generate --static`` (only after a successful build, when ``docs_dir`` is given)
   and copies ``index.html``, ``static_index.html``, ``manifest.json`` and ``catalog.json``
   into ``docs_dir``. After a full build the manifest already holds every node's compiled
   SQL: it is written as is and docs run with ``--no-compile`` (only the catalog is read).

Inside a Prefect flow or task run, dbt runs through ``prefect_dbt.PrefectDbtRunner``: every
model and seed shows as a Prefect task carrying its own dbt logs (data and unit tests run in
one plain ``dbt test`` right after). Elsewhere (CLI, tests) it runs through dbt's own
``dbtRunner``.

The DuckDB file is released when :func:`build_marts` returns: the profile sets
``keep_open: false``, the adapter's connections are closed at the end, and the one connection
this module holds open during the run (so that dbt's ~280 opens and closes of the file reuse
the open database instead of re-reading and checkpointing it each time) is closed last. The
caller can open the file read-write at once, e.g. to publish it.

dbt's partial parsing stays on: the parse (``partial_parse.msgpack``) of a run is cached and
handed to the next run only when the whole project (every file under ``dbt_project/``), the
dbt / adapter versions, the vars and the database name are byte-for-byte the same. Any change
to the project therefore means a full parse; an unchanged project skips it. dbt also rejects
a saved parse made for another DuckDB path, and every refresh builds a new file, so the parse
sees a fixed stand-in path with the build file's name (see :func:`_parse`). The database name
is the build file's stem: a build file with the same name on every refresh (e.g.
``.build/<run_id>/ivig.duckdb``, named as the published file so the docs name relations as
analysts find them: ``ivig.marts.dim_patient``) lets refreshes reuse the parse (a full parse costs
about 3-5 s, a partial one under 1 s). ``DbtOutcome.partial_parse_reused`` says whether dbt
actually took it.

dbt's in-process API is not thread-safe: one build at a time per process (a lock enforces it).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ivig_platform.protocol.load import Protocol

#: The dbt project (dbt_project.yml, profiles.yml). ``IVIG_DBT_PROJECT_DIR`` overrides it for
#: installs where the project does not sit next to the package.
DBT_PROJECT_DIR = Path(
    os.environ.get("IVIG_DBT_PROJECT_DIR")
    or Path(__file__).resolve().parent.parent.parent / "dbt_project"
)

DOCS_FILES = ("index.html", "static_index.html", "manifest.json", "catalog.json")

_PARSE_CACHE_KEEP = 8
_SKIP_DIRS = {"target", "logs", "dbt_packages", "__pycache__", ".user.yml"}
_FAILURE_STATUSES = {"error", "fail", "runtime error"}
_log = logging.getLogger("ivig.dbt")
_BUILD_LOCK = threading.Lock()

RunnerChoice = Literal["auto", "dbt", "prefect"]


@dataclass(frozen=True)
class NodeOutcome:
    """One dbt node (model, seed, test, unit test, source) that did not simply pass."""

    unique_id: str
    resource_type: str
    name: str
    status: str  # error, fail, runtime error, warn, skipped
    message: str

    def __str__(self) -> str:
        return f"{self.resource_type} {self.name}: {self.status} - {self.message}"


@dataclass(frozen=True)
class DbtOutcome:
    """What a :func:`build_marts` run did. ``success`` False = do not publish."""

    success: bool
    failures: tuple[NodeOutcome, ...] = ()
    warnings: tuple[NodeOutcome, ...] = ()
    skipped: tuple[str, ...] = ()
    error: str | None = None  # an invocation-level error (parse, compile, connection)
    counts: dict[str, int] = field(default_factory=dict)  # build: node status -> nodes
    timings: dict[str, float] = field(default_factory=dict)  # step (parse, build...) -> s
    node_timings: dict[str, float] = field(default_factory=dict)  # unique_id -> seconds
    target_dir: Path | None = None
    docs_dir: Path | None = None
    docs_generated: bool = False
    runner: str = "dbt"
    partial_parse_reused: bool = False  # dbt took the saved parse instead of a full parse
    unit_tests_skipped: bool = False  # they passed before for this very project (see module)

    def summary(self) -> str:
        """A short markdown summary for the run report or a Prefect artifact."""
        state = "succeeded" if self.success else "FAILED"
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        lines = [
            f"**dbt build {state}** ({self.runner}; {self.timings.get('total', 0):.1f} s"
            + (f"; {counts}" if counts else "")
            + ")"
        ]
        if self.error:
            lines.append(f"- error: {self.error}")
        lines += [f"- failed: {node}" for node in self.failures]
        lines += [f"- warning: {node}" for node in self.warnings]
        if self.skipped:
            lines.append(f"- skipped after a failure: {len(self.skipped)} nodes")
        if self.unit_tests_skipped:
            lines.append("- unit tests not run: they passed for this unchanged dbt project")
        if self.docs_generated and self.docs_dir is not None:
            lines.append(f"- docs: {self.docs_dir / 'static_index.html'}")
        return "\n".join(lines)


def build_marts(
    database: Path,
    *,
    target_dir: Path,
    docs_dir: Path | None,
    vars: dict[str, Any] | None = None,
    runner: RunnerChoice = "auto",
    parse_cache_dir: Path | None = None,
    check_source_freshness: bool = True,
    select: list[str] | None = None,
    protocol: Protocol | None = None,
) -> DbtOutcome:
    """Build the marts of protocol §8 inside ``database`` (the build file), in-process.

    Args:
        database: the build file, holding ``landed.*`` and ``quality.*``. dbt writes the
            schemas staging, intermediate (views), marts (tables), terminology and reference
            (seeds) into it.
        target_dir: dbt's target path for this run (compiled SQL, run_results.json, logs);
            use a fresh directory per run. Created if missing.
        docs_dir: where the static docs site goes (index.html, static_index.html,
            manifest.json, catalog.json); None = no docs. Written only after a successful
            build.
        vars: dbt vars over the protocol's (``dbt_vars``) and dbt_project.yml's, e.g.
            ``{"freshness_as_of": "2026-01-01 00:00:00"}``.
        runner: "auto" (Prefect's runner inside a flow or task run, dbt's otherwise),
            "dbt" or "prefect".
        parse_cache_dir: where parses are kept for reuse; default
            ``dbt_project/target/parse-cache``. Unwritable = no reuse.
        check_source_freshness: run ``dbt source freshness`` first (warnings only).
        select: dbt node selection for the build (e.g. ``["+dim_patient"]``), with only the
            tests whose parents are all selected; None = everything. A refresh that
            publishes must build everything.
        protocol: the protocol to build under (its contract in force and every plan);
            default ``protocol_in_force()``. Written into the build file as schema
            ``protocol`` and passed as vars.

    Returns:
        The outcome. ``success`` is False when a model, seed or unit test errored, an
        error-severity data test failed, or dbt could not run at all; the caller must then
        keep the previous published file.
    """
    started = time.perf_counter()
    from ivig_platform.protocol.in_force import protocol_in_force
    from ivig_platform.protocol.tables import dbt_vars

    database = Path(database).resolve()
    target_dir = Path(target_dir).resolve()
    docs_dir = Path(docs_dir).resolve() if docs_dir is not None else None
    protocol = protocol or protocol_in_force()
    vars = {**dbt_vars(protocol), **(vars or {})}
    use_prefect = _choose_prefect(runner)
    runner_name = "PrefectDbtRunner" if use_prefect else "dbtRunner"

    if not database.is_file():
        return DbtOutcome(
            success=False, error=f"build file not found: {database}", runner=runner_name
        )
    target_dir.mkdir(parents=True, exist_ok=True)
    write_protocol_tables(database, protocol)

    with _BUILD_LOCK, _environment(_dbt_variables(database)):
        cache = _ParseCache(parse_cache_dir, database, vars)
        restored = cache.restore(target_dir)
        skip_unit_tests = cache.unit_tests_passed(select)
        timings: dict[str, float] = {}
        try:
            with _database_held_open(database):
                t0 = time.perf_counter()
                manifest, parse_error, rejected = _parse(target_dir, vars, cache.parse_path)
                timings["parse"] = time.perf_counter() - t0
                if manifest is None:
                    outcome = _read_build(None)
                    outcome["error"] = f"dbt could not parse the project: {parse_error}"
                    outcome["docs_generated"] = False
                else:
                    outcome = _run_commands(
                        manifest,
                        use_prefect=use_prefect,
                        target_dir=target_dir,
                        docs_dir=docs_dir,
                        vars=vars,
                        check_source_freshness=check_source_freshness,
                        select=select,
                        skip_unit_tests=skip_unit_tests,
                        timings=timings,
                    )
        finally:
            cache.save(target_dir)
        if outcome["success"] and not skip_unit_tests:
            cache.record_unit_tests_passed(select)

    warnings = outcome.pop("warnings")
    if outcome["success"]:
        warnings += _mart_warnings(database)
    timings["total"] = time.perf_counter() - started
    return DbtOutcome(
        warnings=tuple(warnings),
        timings=timings,
        target_dir=target_dir,
        docs_dir=docs_dir,
        runner=runner_name,
        partial_parse_reused=restored and manifest is not None and not rejected,
        unit_tests_skipped=skip_unit_tests and manifest is not None,
        **outcome,
    )


def _run_commands(
    manifest: Any,
    *,
    use_prefect: bool,
    target_dir: Path,
    docs_dir: Path | None,
    vars: dict[str, Any],
    check_source_freshness: bool,
    select: list[str] | None,
    skip_unit_tests: bool,
    timings: dict[str, float],
) -> dict[str, Any]:
    """Source freshness, build, tests and docs on one parsed manifest (see build_marts)."""
    # Every command runs on this one parse (no re-parse, no manifest reload); the build and
    # the tests compile the nodes into it.
    invoke = _make_invoker(use_prefect, target_dir, vars, manifest)
    # Tests and freshness always run through plain dbt: as Prefect tasks, ~200 data tests
    # cost ~40 s of API round trips per refresh and show nothing a failure list does not.
    # Models and seeds keep one Prefect task each, with their logs.
    invoke_plain = _make_invoker(False, target_dir, vars, manifest) if use_prefect else invoke
    warnings: list[NodeOutcome] = []

    if check_source_freshness:
        t0 = time.perf_counter()
        # dbt prints a stale source as a red "ERROR STALE" line; here staleness is a
        # warning, never a failure, so its console output is off and the warnings are
        # logged below in those words.
        freshness = invoke_plain(["source", "freshness"], console="none")
        timings["source_freshness"] = time.perf_counter() - t0
        stale = _freshness_warnings(freshness)
        for node in stale:
            _log.warning("warning: dbt source freshness of %s: %s (a warning only: the "
                         "refresh goes on)", node.name, node.message)
        warnings += stale

    t0 = time.perf_counter()
    # a partial selection runs only the tests whose parents are all selected
    selection = ["--select", *select, "--indirect-selection", "cautious"] if select else []
    no_unit_tests = ["--exclude", "resource_type:unit_test"] if skip_unit_tests else []
    if use_prefect:
        # One flag with several values: PrefectDbtRunner keeps only the last of a repeated
        # flag. `dbt test` then runs the data and unit tests of the same selection
        # (excluding models from a build would drop their tests too).
        models = ["--exclude", "resource_type:test", "resource_type:unit_test"]
        outcome = _read_build(invoke(["build", *selection, *models]))
        if outcome["success"]:
            tests = _read_build(invoke_plain(["test", *selection, *no_unit_tests]))
            outcome = _merge_builds(outcome, tests)
    else:
        outcome = _read_build(invoke(["build", *selection, *no_unit_tests]))
    timings["build"] = time.perf_counter() - t0
    _keep_copy(target_dir / "run_results.json", target_dir / "build_run_results.json")
    outcome["warnings"] = warnings + outcome["warnings"]

    outcome["docs_generated"] = False
    if outcome["success"] and docs_dir is not None:
        t0 = time.perf_counter()
        docs = _generate_docs(invoke_plain, manifest, target_dir, compiled=not select)
        timings["docs_generate"] = time.perf_counter() - t0
        outcome["docs_generated"] = bool(getattr(docs, "success", False)) and _copy_docs(
            target_dir, docs_dir
        )
        if not outcome["docs_generated"]:
            text = _exception_text(docs) or "see dbt log"
            outcome["warnings"].append(
                NodeOutcome("docs", "docs", "docs generate", "warn", f"docs not generated: {text}")
            )
    return outcome


def write_protocol_tables(database: Path, protocol: Protocol) -> None:
    """The protocol in force as schema ``protocol`` of the build file (replaced if there)."""
    import duckdb

    from ivig_platform.protocol.tables import SCHEMA, protocol_tables

    con = duckdb.connect(str(database))
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        for name, frame in protocol_tables(protocol).items():
            con.register("protocol_frame", frame)
            con.execute(f"CREATE OR REPLACE TABLE {SCHEMA}.{name} AS SELECT * FROM protocol_frame")
            con.unregister("protocol_frame")
        con.execute("CHECKPOINT")
    finally:
        con.close()


# --------------------------------------------------------------------------- invocation


def _colour_flags(use_prefect: bool) -> list[str]:
    """ANSI colours only on a terminal: never in dbt's log file, in a refresh's log (the
    CLI sends stdout there) or in the Prefect UI's logs (PrefectDbtRunner's messages)."""
    flags = ["--no-use-colors-file"]
    if use_prefect or not sys.stdout.isatty():
        flags.append("--no-use-colors")
    return flags


def _choose_prefect(runner: RunnerChoice) -> bool:
    if runner != "auto":
        return runner == "prefect"
    if "prefect" not in sys.modules:  # not imported = certainly not inside a flow
        return False
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def _make_invoker(use_prefect: bool, target_dir: Path, vars: dict[str, Any], manifest: Any = None):
    """A function running one dbt command (list of args) and returning dbt's result.

    ``manifest``: a parsed dbt Manifest to run on (no parse, no reading of
    partial_parse.msgpack or manifest.json); None = dbt parses the project itself.
    """
    common = [
        "--vars",
        json.dumps(vars, sort_keys=True, default=str),
        "--log-path",
        str(target_dir / "logs"),
        *_colour_flags(use_prefect),
    ]

    if use_prefect:
        from dbt_common.events.base_types import EventLevel
        from prefect_dbt import PrefectDbtRunner, PrefectDbtSettings

        settings = PrefectDbtSettings(
            project_dir=DBT_PROJECT_DIR,
            profiles_dir=DBT_PROJECT_DIR,
            target_path=target_dir,
            # explicit: derived from Prefect's level, 'WARNING' is no dbt EventLevel ('warn')
            log_level=EventLevel.INFO,
        )

        def invoke(args: list[str]):
            # A fresh runner per command (it keeps per-command state). Given the parsed
            # manifest, it neither reads manifest.json nor lets dbt parse again.
            runner = PrefectDbtRunner(
                manifest=manifest, settings=settings, raise_on_failure=False, disable_assets=True
            )
            try:
                with _prefect_dbt_runs_on(manifest):
                    return runner.invoke([*args, *common])
            except Exception as exc:  # parse or compile errors surface as exceptions here
                return _Crashed(exc)

        return invoke

    from dbt.cli.main import dbtRunner

    paths = [
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(target_dir),
    ]

    # The full log goes to the file under the target path; the console (a refresh's live
    # display, a CI log) only hears about warnings and errors, or nothing (`console`
    # "none": a command whose findings this module reports itself, such as freshness).
    def invoke(args: list[str], callbacks: list | None = None, console: str = "warn"):
        quiet = ["--log-level", console, "--log-level-file", "info"]
        try:
            runner = dbtRunner(manifest=manifest, callbacks=callbacks)
            return runner.invoke([*args, *paths, *common, *quiet])
        except Exception as exc:
            return _Crashed(exc)

    return invoke


@contextlib.contextmanager
def _prefect_dbt_runs_on(manifest: Any) -> Iterator[None]:
    """Hand ``manifest`` to the dbtRunner that PrefectDbtRunner.invoke creates.

    PrefectDbtRunner's own ``manifest`` only serves its node lookups; the dbtRunner it builds
    for the command gets none and would parse the project again (a full parse: the parse's
    profile differs, see :func:`_parse`). Safe under ``_BUILD_LOCK``: no other dbt command
    runs in this process meanwhile. Should prefect-dbt stop building it under this name, the
    command only parses again (slower, same result).
    """
    import prefect_dbt.core.runner as prefect_runner

    original = getattr(prefect_runner, "dbtRunner", None)
    if manifest is None or original is None:
        yield
        return
    prefect_runner.dbtRunner = functools.partial(original, manifest=manifest)
    try:
        yield
    finally:
        prefect_runner.dbtRunner = original


#: dbt events telling that dbt did not (entirely) use the saved parse.
_FULL_PARSE_EVENTS = {
    "UnableToPartialParse",
    "PartialParsingNotEnabled",
    "ParsedFileLoadFailed",
    "PartialParsingError",
}


def _parse(
    target_dir: Path, vars: dict[str, Any], parse_path: Path
) -> tuple[Any, str | None, bool]:
    """Parse the project once for the whole build.

    Returns the manifest (None if the project does not parse), the error, and whether dbt
    rejected the saved parse (partial_parse.msgpack) and parsed in full.

    The parse sees ``parse_path`` as the DuckDB path, not the build file: dbt keys its
    partial parse on the profile's connection details, the path included, and every refresh
    builds a new file (``.build/<run_id>/...``), so the real path would force a full parse
    each time. ``parse_path`` is fixed and has the build file's name (dbt-duckdb names the
    catalog, hence every relation, after it); nothing else of the path reaches the parse
    (the project reads no ``target.path``). The commands then run on the parsed manifest
    against the build file.
    """
    events: set[str] = set()

    def listen(event: Any) -> None:
        name = event.info.name
        if name in _FULL_PARSE_EVENTS:
            events.add(name)

    invoke = _make_invoker(False, target_dir, vars)
    with _environment({"IVIG_DUCKDB_PATH": str(parse_path)}):
        result = invoke(["parse"], callbacks=[listen])
    manifest = getattr(result, "result", None)
    if not getattr(result, "success", False) or manifest is None:
        return None, _exception_text(result) or "see the dbt log in the target directory", True
    return manifest, None, bool(events)


def _generate_docs(invoke: Any, manifest: Any, target_dir: Path, *, compiled: bool) -> Any:
    """``dbt docs generate --static``; without re-compiling when the build compiled it all.

    After a full build and test run, every node of ``manifest`` carries its compiled SQL:
    the manifest is written as is and the docs only add the catalog (compiling ~240 nodes
    a third time costs seconds). After a partial selection, docs compile everything.
    """
    if compiled:
        try:
            from dbt.parser.manifest import write_manifest

            write_manifest(manifest, str(target_dir))
        except Exception:  # pragma: no cover - fall back to dbt writing it while compiling
            compiled = False
    return invoke(["docs", "generate", "--static", *([] if not compiled else ["--no-compile"])])


@dataclass
class _Crashed:
    """Stands for a dbt invocation that raised instead of returning a result."""

    exception: BaseException
    success: bool = False
    result: Any = None


def _dbt_variables(database: Path) -> dict[str, str]:
    """Point the profile at the build file; keep dbt offline and quiet about tracking."""
    return {
        "IVIG_DUCKDB_PATH": str(database),
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


@contextlib.contextmanager
def _environment(wanted: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration; restore the previous values after."""
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _database_held_open(database: Path) -> Iterator[None]:
    """Keep one DuckDB connection to the build file open while dbt runs; release it all after.

    With ``keep_open: false`` dbt-duckdb opens and closes the database around every node
    (~280 times per build: reading the catalog and checkpointing each time, ~30 ms apiece).
    While this connection is open, DuckDB hands those opens a connection to the same
    in-process database instead, and closes the file only when the last one (this) closes.
    When the build returns, dbt's handles and this one are closed: no lock outlives it.
    """
    import duckdb

    try:
        # the same configuration as dbt-duckdb's (none), or DuckDB refuses the second one
        held = duckdb.connect(str(database), read_only=False, config={})
    except duckdb.Error:  # dbt will report why it cannot open the file
        held = None
    try:
        yield
    finally:
        _release_database()
        if held is not None:
            held.close()


def _release_database() -> None:
    """Close whatever DuckDB handle the adapter may still hold (keep_open is already false)."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
        from dbt.adapters.factory import reset_adapters
    except ImportError:  # pragma: no cover - dbt-duckdb is a dependency
        return
    reset_adapters()
    env = DuckDBConnectionManager._ENV
    if env is not None:
        with contextlib.suppress(Exception):
            env.close()
    DuckDBConnectionManager.close_all_connections()


# --------------------------------------------------------------------------- results


def _exception_text(result: Any) -> str | None:
    exc = getattr(result, "exception", None)
    return f"{type(exc).__name__}: {exc}" if exc is not None else None


def _node_outcome(node_result: Any) -> NodeOutcome:
    node = node_result.node
    return NodeOutcome(
        unique_id=node.unique_id,
        resource_type=str(getattr(node.resource_type, "value", node.resource_type)),
        name=node.name,
        status=str(getattr(node_result.status, "value", node_result.status)),
        message=str(node_result.message or ""),
    )


def _read_build(result: Any) -> dict[str, Any]:
    """success, failures, warnings, skipped, counts, node_timings, error of a build."""
    node_results = list(getattr(getattr(result, "result", None), "results", None) or [])
    failures, warnings, skipped = [], [], []
    counts: dict[str, int] = {}
    node_timings: dict[str, float] = {}
    for node_result in node_results:
        outcome = _node_outcome(node_result)
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
        node_timings[outcome.unique_id] = float(node_result.execution_time or 0.0)
        if outcome.status in _FAILURE_STATUSES:
            failures.append(outcome)
        elif outcome.status == "warn":
            warnings.append(outcome)
        elif outcome.status == "skipped":
            skipped.append(outcome.unique_id)
    error = _exception_text(result)
    if error is None and not getattr(result, "success", False) and not failures:
        error = "dbt build did not succeed (see the dbt log in the target directory)"
    return {
        "success": bool(getattr(result, "success", False)) and not failures and error is None,
        "failures": tuple(failures),
        "warnings": warnings,
        "skipped": tuple(skipped),
        "counts": counts,
        "node_timings": node_timings,
        "error": error,
    }


def _merge_builds(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """One outcome for a build run as two invocations (models, then tests)."""
    counts = dict(first["counts"])
    for status, n in second["counts"].items():
        counts[status] = counts.get(status, 0) + n
    return {
        "success": first["success"] and second["success"],
        "failures": first["failures"] + second["failures"],
        "warnings": first["warnings"] + second["warnings"],
        "skipped": first["skipped"] + second["skipped"],
        "counts": counts,
        "node_timings": {**first["node_timings"], **second["node_timings"]},
        "error": first["error"] or second["error"],
    }


def _freshness_warnings(result: Any) -> list[NodeOutcome]:
    """Stale sources (warn or error) and freshness errors, all as warnings."""
    warnings = []
    error = _exception_text(result)
    if error:
        return [NodeOutcome("source_freshness", "source", "freshness", "warn", error)]
    for node_result in getattr(getattr(result, "result", None), "results", None) or []:
        status = str(getattr(node_result.status, "value", node_result.status))
        if status == "pass":
            continue
        node = node_result.node
        age = getattr(node_result, "age", None)
        message = (
            f"newest loaded_at {age / 86400:.0f} days old{_thresholds(node)}"
            if age is not None
            else str(getattr(node_result, "message", "") or "")
        )
        warnings.append(
            NodeOutcome(
                node.unique_id,
                "source",
                f"{node.source_name}.{node.name}",
                f"freshness {status}",
                message,
            )
        )
    return warnings


def _thresholds(node: Any) -> str:
    """` (warn after 45 days, error after 120 days)` from a source's freshness config."""
    freshness = getattr(node, "freshness", None)
    parts = []
    for word in ("warn", "error"):
        after = getattr(freshness, f"{word}_after", None)
        count, period = getattr(after, "count", None), getattr(after, "period", None)
        if count and period:
            parts.append(f"{word} after {count} {getattr(period, 'value', period)}s")
    return f" ({', '.join(parts)})" if parts else ""


def _mart_warnings(database: Path) -> list[NodeOutcome]:
    """Per-site freshness and unmapped drugs, read back from the marts just built."""
    import duckdb

    warnings = []
    try:
        con = duckdb.connect(str(database), read_only=True)
    except duckdb.Error as exc:  # pragma: no cover - the build just wrote the file
        return [NodeOutcome("marts", "model", "marts", "warn", f"cannot read marts: {exc}")]
    try:
        stale = _fetch_or_empty(
            con,
            "select site_id, freshness_status, days_since_accepted_delivery, "
            "warn_after_days, error_after_days from marts.mart_site_freshness "
            "where freshness_status <> 'fresh' order by site_id",
        )
        for site, status, age, warn_after, error_after in stale:
            text = "no accepted delivery" if age is None else f"accepted delivery {age} days old"
            warnings.append(
                NodeOutcome(
                    "model.ivig.mart_site_freshness",
                    "site",
                    site,
                    f"freshness {status}",
                    f"{text} (warn after {warn_after}, error after {error_after} days)",
                )
            )
        unmapped = _fetch_or_empty(
            con,
            "select site_id, count(*), string_agg(names_as_reported, '; ') "
            "from marts.mart_unmapped_drugs group by site_id order by site_id",
        )
        for site, n, names in unmapped:
            warnings.append(
                NodeOutcome(
                    "model.ivig.mart_unmapped_drugs",
                    "site",
                    site,
                    "unmapped drugs",
                    f"{n} drug name(s) not in the terminology: {names}",
                )
            )
    finally:
        con.close()
    return warnings


def _fetch_or_empty(con: Any, sql: str) -> list[tuple]:
    """Rows of ``sql``, or none when the mart was not built (a partial selection)."""
    import duckdb

    try:
        return con.execute(sql).fetchall()
    except duckdb.CatalogException:
        return []


# --------------------------------------------------------------------------- files


def _keep_copy(source: Path, destination: Path) -> None:
    if source.is_file():
        shutil.copy2(source, destination)


def _copy_docs(target_dir: Path, docs_dir: Path) -> bool:
    if not all((target_dir / name).is_file() for name in DOCS_FILES):
        return False
    docs_dir.mkdir(parents=True, exist_ok=True)
    for name in DOCS_FILES:
        shutil.copy2(target_dir / name, docs_dir / name)
    return True


class _ParseCache:
    """dbt's partial parse file, reused only for a byte-identical project.

    The key hashes every project file (SQL, YAML, seeds, macros, tests, profiles.yml), the
    vars and the database name (dbt-duckdb names the catalog after the file, and node
    relation names are fixed at parse time), and `fingerprints.DBT`: the code that drives
    dbt (`ivig_platform/modeling/**`), the versions of dbt-core, dbt-duckdb and duckdb,
    and the protocol's contract and plans in force (`protocol`, default `load_protocol()`).

    It also remembers, per key and selection, that a build's unit tests all passed (an empty
    marker file next to the parse): their result is a function of exactly what the key
    hashes, so a build with the same key need not run them again.
    """

    def __init__(self, cache_dir: Path | None, database: Path, vars: dict[str, Any],
                 protocol: Any = None):
        self.dir = Path(cache_dir) if cache_dir else DBT_PROJECT_DIR / "target" / "parse-cache"
        self.key = self._key(database, vars, protocol)
        self.stem = database.stem

    @staticmethod
    def _key(database: Path, vars: dict[str, Any], protocol: Any = None) -> str:
        from ivig_platform.fingerprints import DBT

        digest = hashlib.sha256()
        for part in (DBT.fingerprint(protocol), json.dumps(vars, sort_keys=True, default=str),
                     database.stem):
            digest.update(part.encode() + b"\0")
        for path in sorted(DBT_PROJECT_DIR.rglob("*")):
            relative = path.relative_to(DBT_PROJECT_DIR)
            if path.is_file() and not _SKIP_DIRS.intersection(relative.parts):
                digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()

    @property
    def parse_path(self) -> Path:
        """The DuckDB path the parse sees (see :func:`_parse`): the same on every run, with
        the build file's name. Relative, in a folder that does not exist: parsing never
        opens it, and anything that tried would fail instead of creating a file."""
        return Path("parse-only") / f"{self.stem}.duckdb"

    @property
    def file(self) -> Path:
        return self.dir / f"{self.key}.msgpack"

    def _unit_tests_marker(self, select: list[str] | None) -> Path:
        selection = hashlib.sha256(json.dumps(select or []).encode()).hexdigest()[:16]
        return self.dir / f"{self.key}.{selection}.unit-tests-passed"

    def unit_tests_passed(self, select: list[str] | None) -> bool:
        """Whether a build with this key and selection already passed its unit tests."""
        return self._unit_tests_marker(select).is_file()

    def record_unit_tests_passed(self, select: list[str] | None) -> None:
        """Called after a successful build that ran its unit tests; unwritable = run again."""
        with contextlib.suppress(OSError):
            self.dir.mkdir(parents=True, exist_ok=True)
            self._unit_tests_marker(select).touch()

    def restore(self, target_dir: Path) -> bool:
        destination = target_dir / "partial_parse.msgpack"
        if destination.exists() or not self.file.is_file():
            return False
        try:
            shutil.copy2(self.file, destination)
        except OSError:
            return False
        return True

    def save(self, target_dir: Path) -> None:
        source = target_dir / "partial_parse.msgpack"
        if not source.is_file():
            return
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            partial = self.dir / f".{self.key}.{os.getpid()}.tmp"
            shutil.copy2(source, partial)
            os.replace(partial, self.file)
            older = sorted(self.dir.glob("*.msgpack"), key=lambda p: p.stat().st_mtime)
            for stale in older[:-_PARSE_CACHE_KEEP]:
                stale.unlink(missing_ok=True)
            for marker in self.dir.glob("*.unit-tests-passed"):  # of a parse no longer kept
                if not (self.dir / f"{marker.name.split('.')[0]}.msgpack").is_file():
                    marker.unlink(missing_ok=True)
        except OSError:
            pass  # a cache that cannot be written only costs a full parse next time
