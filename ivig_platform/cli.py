"""`ivig`: the command line of the platform (demo, refresh, status, sql, ...).

Prefect is imported only inside the commands that run a flow, after the environment is
set, so `ivig status` and `--help` stay instant and a local run never touches the user's
own Prefect profile.

Help texts are click's plain ones (`rich_markup_mode=None`): paragraphs re-wrapped to the
terminal's width, flags without a `<bool>` type or a `--no-...` twin, and each command's
`short_help` written to fit an 80-column listing.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from ivig_platform.protocol.cli import app as protocol_app
from ivig_platform.run_log import (
    Terminal,
    console_to_log,
    log_path,
    new_run_id,
    run_log_handler,
)
from ivig_platform.wall_clock import format_duration, wall_seconds

# The platform's modules are imported inside the commands that use them: they bring Polars
# and the protocol's models (about a second), which `ivig --help`, `ivig status` and the
# other quick commands do not need.


class WrappedCommandList(TyperGroup):
    """Command lists whose descriptions wrap instead of being cut with `...`: a command's
    `short_help`, else its docstring's first paragraph (click cuts at the first full stop,
    which in `(e.g. ...)` is mid-sentence)."""

    def format_commands(self, ctx, formatter) -> None:  # noqa: ANN001 - click's signature
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                first = (command.help or "").split("\n\n", 1)[0]
                rows.append((name, command.short_help or " ".join(first.split())))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


app = typer.Typer(
    cls=WrappedCommandList,
    add_completion=False,
    rich_markup_mode=None,
    no_args_is_help=True,
    help="IVIG-in-SSc study platform: land site extracts, build the marts, publish DuckDB.",
)

app.add_typer(protocol_app, name="protocol", cls=WrappedCommandList,
              short_help="Show, compare, check and document the study protocol (protocol/).")

#: --warehouse, as every command takes it
Warehouse = Annotated[Path, typer.Option(
    "--warehouse", help="Folder where ivig.duckdb is published.", metavar="DIR")]

DEMO_KEY_FILE = ".pseudonym_key"

# Once a refresh's output goes to its log (`console_to_log`), the terminal streams: what
# the CLI says itself (the live display, the last line) goes there.
_terminal: Terminal | None = None


def say(message: str, err: bool = False) -> None:
    stream = None if _terminal is None else _terminal.err if err else _terminal.out
    typer.echo(message, err=err, file=stream)


def require_published(warehouse: Path) -> None:
    """Fail in one line when WAREHOUSE has nothing published (or its lake cannot be read)."""
    from ivig_platform.warehouse.lake import LakeError
    from ivig_platform.warehouse.publish import published_path
    from ivig_platform.warehouse.reader import describe_published, published_exists

    try:
        if not published_exists(published_path(warehouse)):
            fail(f"no published warehouse at {describe_published(warehouse)} "
                 "(run `ivig refresh` first)")
    except LakeError as exc:
        fail(str(exc))


def fail(message: str, code: int = 1) -> None:
    say(f"error: {message}", err=True)
    raise typer.Exit(code)


def configure_local_prefect(warehouse: Path) -> None:
    """Run without a server: Prefect's temporary one, isolated under the warehouse.

    When `PREFECT_API_URL` points at a real server nothing is changed. Analytics and
    telemetry stay off, and the temporary server's SQLite "database is locked" chatter is
    kept out of the terminal.
    """
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Run logs stay at INFO for the Prefect UI and the run's log file; the console handler
    # shows warnings and errors only (the CLI sends even those to the log file).
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    if not os.environ.get("PREFECT_API_URL"):
        os.environ.setdefault("PREFECT_HOME", str((warehouse / ".prefect").resolve()))
        os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")
        os.environ.setdefault("PREFECT_UI_ENABLED", "false")


def prepare_refresh(warehouse: Path, tell: Callable[[str], None] | None = None
                    ) -> Callable[..., dict]:
    """Everything a refresh process does before the flow runs; returns the flow.

    Prefect's temporary server (when no server is configured) is launched first and the
    heavy modules are imported in a thread, so both overlap the import of the flow: a
    refresh spends its first ~10 s waiting for that server otherwise. A temporary-server
    database left broken (by a full disk, say) is moved aside first; `tell` gets the line.
    """
    from ivig_platform.orchestration.temporary_server import (
        reset_broken_database,
        start_temporary_prefect_server,
    )
    from ivig_platform.progress import step

    warehouse.mkdir(parents=True, exist_ok=True)
    configure_local_prefect(warehouse)
    if not os.environ.get("PREFECT_API_URL"):
        note = reset_broken_database(Path(os.environ["PREFECT_HOME"]))
        if note and tell is not None:
            tell(note)
    server = start_temporary_prefect_server()
    step("loading the refresh flow (Prefect's temporary server is starting)" if server
         else f"loading the refresh flow (Prefect server {os.environ.get('PREFECT_API_URL')})")
    from flows.refresh import preload_in_background, refresh

    preload_in_background()
    if server is not None:
        step("waiting for Prefect's temporary server to answer")
        server.wait_until_healthy()
    step("starting the flow run")
    return refresh


def run_refresh(inbox: Path, warehouse: Path, *, settle_seconds: float = 0,
                force: bool = False, wait_seconds: float = 0, rekey: bool = False,
                plans: list[Path] | None = None, full_refresh: bool = False,
                catalog: str = "", data_path: str = "") -> dict:
    """Run the refresh flow in this process with a live display; return its summary.

    The order keeps the cheap answers cheap: the unchanged case is decided before
    anything else (milliseconds on a quiet night), a second refresh of the warehouse is
    refused (or waits) before Prefect starts, and so are a changed key, an impossible
    re-keying and an empty inbox. Only then does the run's output go to its log file.
    """
    from ivig_platform.landing.pseudonym import MissingKeyError, key_fingerprint, load_key
    from ivig_platform.warehouse.housekeeping import clear_dead_runs
    from ivig_platform.warehouse.lake import LakeError, configure
    from ivig_platform.warehouse.outcome import RefreshFailed, failure_line
    from ivig_platform.warehouse.preflight import preflight
    from ivig_platform.warehouse.reader import describe_published
    from ivig_platform.warehouse.run_lock import WarehouseBusy, run_lock
    from ivig_platform.warehouse.state import current_state, is_unchanged

    if not inbox.is_dir():
        fail(f"inbox {inbox} is not a folder")
    plans = [p.resolve() for p in plans or []]
    if plans:  # a bad amendment fails here, before Prefect starts, with the protocol's error
        from ivig_platform.protocol.errors import ProtocolError
        from ivig_platform.protocol.in_force import with_plan_files

        try:
            with_plan_files(plans)
        except (ProtocolError, OSError) as exc:
            fail(f"--plan: {exc}")
    try:
        fingerprint = key_fingerprint(load_key())
    except MissingKeyError as exc:
        fail(str(exc))
    state = current_state(inbox, fingerprint, settle_seconds, amendments=plans)
    force = force or full_refresh

    def unchanged() -> dict:
        return {"unchanged": True, "published": describe_published(warehouse)}

    try:
        configure(warehouse, catalog, data_path)
        if not force and not rekey and is_unchanged(warehouse, state):
            return unchanged()
    except LakeError as exc:
        fail(f"refresh failed during start: {exc}; nothing published")
    try:
        with run_lock(warehouse, wait_seconds):
            # Waiting may have let the other run publish this very inbox.
            if not force and not rekey and is_unchanged(warehouse, state):
                return unchanged()
            for note in clear_dead_runs(warehouse).notes():
                typer.echo(f"[refresh] note {note}")
            preflight(inbox, warehouse, fingerprint, settle_seconds, rekey)
            return _run_logged(inbox, warehouse, settle_seconds, force, rekey, plans,
                               full_refresh, catalog, data_path)
    except (WarehouseBusy, RefreshFailed) as exc:
        fail(str(exc))
    except LakeError as exc:
        fail(f"refresh failed during start: {exc}; nothing published")
    except Exception as exc:  # before Prefect started, e.g. a full disk: still one line
        fail(str(failure_line(exc, stage="start", warehouse=warehouse, run_id=None, log=None)))
    raise AssertionError("unreachable")  # pragma: no cover - fail() exits


def _run_logged(inbox: Path, warehouse: Path, settle_seconds: float, force: bool,
                rekey: bool, plans: list[Path], full_refresh: bool = False,
                catalog: str = "", data_path: str = "") -> dict:
    """Prefect and the flow, with this process's output in the run's log file."""
    from ivig_platform.console import progress_display
    from ivig_platform.warehouse.outcome import RefreshFailed, failure_line

    run_id = new_run_id()
    log = log_path(warehouse, run_id)
    # Tracebacks and Prefect's logs go to the log file; even the console handler's
    # warnings, which the flow's log handler records there already.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    stage = "start"
    global _terminal
    _terminal = terminal = console_to_log(log)
    first = ("starting Prefect's temporary server…" if not os.environ.get("PREFECT_API_URL")
             else "connecting to the Prefect server…")
    # The display starts before Prefect does: its first seconds say what they wait for.
    with run_log_handler(log), progress_display(terminal.out.isatty(), terminal.out, first):
        try:
            refresh = prepare_refresh(warehouse, tell=_note(terminal))
            stage = "orchestration"  # Prefect's own calls, at any point of the run
            return refresh(inbox=str(inbox.resolve()), warehouse=str(warehouse.resolve()),
                           settle_seconds=settle_seconds, force=force, rekey=rekey,
                           run_id=run_id, plans=[str(p) for p in plans],
                           full_refresh=full_refresh, catalog=catalog, data_path=data_path)
        except RefreshFailed:
            raise
        except Exception as exc:  # Prefect itself failed (server, API): still one line
            logging.getLogger("ivig.cli").error("run %s failed during %s", run_id, stage,
                                                exc_info=exc)
            raise failure_line(exc, stage=stage, warehouse=warehouse, run_id=run_id,
                               log=log) from exc


def _note(terminal: Terminal) -> Callable[[str], None]:
    def note(line: str) -> None:
        print(f"[refresh] note {line}", file=terminal.out, flush=True)
    return note


def print_summary(summary: dict) -> None:
    """The last line. Deliveries by their final state (ivig_platform/states.py); the time
    is the command's wall time, from the start of its process."""
    took = format_duration(wall_seconds())
    if summary.get("unchanged"):
        say(f"nothing changed since the last publish; {summary['published']} is current "
            f"({took})")
        return
    from ivig_platform.warehouse.summary import build_words  # after the no-change return

    extra = ""
    issues = summary.get("inbox_issues") or []
    if issues:
        extra += (f"; {len(issues)} inbox folder(s) not read (not a site id): "
                  f"{', '.join(repr(i['folder']) for i in issues)}")
    if summary.get("relanded") or summary.get("retired"):
        extra += f"; re-keyed: {len(summary.get('relanded') or [])} deliveries landed again"
        if summary.get("retired"):
            extra += (f", {len(summary['retired'])} superseded without inbox files retired: "
                      f"{', '.join(summary['retired'])}")
    say(
        f"published {summary['published']}: {summary['accepted']} sites accepted, "
        f"{summary['superseded']} superseded, {summary['held_back']} held back by the "
        f"quality gate, {summary['rejected']} rejected by landing; "
        f"{summary['rows_landed']} rows landed, {summary['rows_quarantined']} quarantined; "
        f"checks failed: {summary['checks']['error']['failed']} error, "
        f"{summary['checks']['warn']['failed']} warn{extra}; "
        f"{build_words(summary.get('build') or {})} ({took})"
    )


@app.command(short_help="Land every site's deliveries and publish WAREHOUSE/ivig.duckdb.")
def refresh(
    inbox: Annotated[Path, typer.Option(
        help="Folder of <site_id>/<delivery_id>/ deliveries.", metavar="DIR")],
    warehouse: Warehouse,
    settle_seconds: Annotated[float, typer.Option(
        help="Take a delivery without a _READY marker only once unchanged this long.",
        metavar="SECONDS")] = 0,
    force: Annotated[bool, typer.Option(
        "--force", help="Rebuild even if nothing changed.")] = False,
    wait: Annotated[float, typer.Option(
        help="Wait up to SECONDS for another refresh of WAREHOUSE to end (default: do not "
             "wait, exit 1 naming it).", metavar="SECONDS")] = 0,
    rekey: Annotated[bool, typer.Option(
        "--rekey",
        help="The pseudonymisation key has changed: land every delivery again with the new "
             "key (refused, changing nothing, if a delivery in force has no inbox files).")
    ] = False,
    plan: Annotated[list[Path] | None, typer.Option(
        "--plan", metavar="FILE",
        help="An amendment file in force for this run (repeatable); its plan is computed "
             "side by side in marts.mart_efficacy_by_plan.")] = None,
    full_refresh: Annotated[bool, typer.Option(
        "--full-refresh",
        help="Rebuild every site's rows into a new file (implies --force). Without it, a "
             "refresh under the published file's code, protocol and key rebuilds only the "
             "sites whose deliveries changed.")] = False,
    catalog: Annotated[str, typer.Option(
        help="Keep the warehouse in a DuckLake whose catalog is this PostgreSQL database "
             "(postgresql://USER@HOST:PORT/DB; the password from PGPASSWORD or ~/.pgpass). "
             "Needed the first time only: WAREHOUSE/lake.json remembers it.",
        metavar="URL", show_default=False)] = "",
    data_path: Annotated[str, typer.Option(
        help="Where the lake's data files go (a folder every reader can reach, e.g. a "
             "shared mount; object storage is not supported yet); default WAREHOUSE/lake/.",
        metavar="PATH", show_default=False)] = "",
) -> None:
    """Land every site's deliveries and publish WAREHOUSE/ivig.duckdb (or, with --catalog,
    a snapshot of a DuckLake).

    Needs IVIG_PSEUDONYM_KEY in the environment. Exit code 0 when a warehouse was
    published (or nothing changed since the last publish), 1 with a one-line reason
    otherwise; the last line always says what is live. Details (Prefect's logs,
    tracebacks) go to WAREHOUSE/logs/refresh-<run_id>.log. The protocol is the
    repository's protocol/ folder, or the folder IVIG_PROTOCOL_DIR names.
    """
    print_summary(run_refresh(inbox, warehouse, settle_seconds=settle_seconds, force=force,
                              wait_seconds=wait, rekey=rekey, plans=plan,
                              full_refresh=full_refresh, catalog=catalog,
                              data_path=data_path))


@app.command(short_help="Write a demo inbox to DIR/inbox and refresh it into DIR/warehouse.")
def demo(
    dir: Annotated[Path, typer.Option(
        "--dir", help="Folder for the demo inbox and warehouse.", metavar="DIR")],
    sites: Annotated[int, typer.Option(help="Number of hospitals.", metavar="N")] = 18,
    patients: Annotated[int, typer.Option(help="Number of patients.", metavar="N")] = 78,
    seed: Annotated[int, typer.Option(help="Seed of the generator.", metavar="N")] = 20261124,
    generate_only: Annotated[
        bool, typer.Option("--generate-only", help="Write the inbox, do not refresh.")
    ] = False,
) -> None:
    """Write the demo inbox to DIR/inbox and refresh it into DIR/warehouse.

    The default 18 hospitals / 78 patients reproduce the published figures of protocol §1;
    --sites/--patients scale the same shape up for benchmarks. A pseudonymisation key is
    generated once for the folder (DIR/.pseudonym_key) unless IVIG_PSEUDONYM_KEY is set.
    """
    from ivig_platform.demo import write_demo_inbox
    from ivig_platform.landing.pseudonym import KEY_VARIABLE

    dir.mkdir(parents=True, exist_ok=True)
    inbox = dir / "inbox"
    shutil.rmtree(inbox, ignore_errors=True)
    write_demo_inbox(inbox, n_sites=sites, n_patients=patients, seed=seed)
    typer.echo(f"demo inbox written to {inbox} ({sites} sites, {patients} patients)")
    if generate_only:
        return
    if not os.environ.get(KEY_VARIABLE):
        key_file = dir / DEMO_KEY_FILE
        if not key_file.exists():
            key_file.write_text(secrets.token_hex(32))
            key_file.chmod(0o600)
        os.environ[KEY_VARIABLE] = key_file.read_text().strip()
    print_summary(run_refresh(inbox, dir / "warehouse"))


@app.command(short_help="Each site's deliveries in the published file: state, reason, age.")
def status(
    warehouse: Warehouse,
    wide: Annotated[bool, typer.Option(
        "--wide", help="Every column on one line per delivery, whatever the width.")] = False,
    history: Annotated[str | None, typer.Option(
        help="Show this site's delivery events (the audit trail, WAREHOUSE/audit/) instead.",
        metavar="SITE")] = None,
) -> None:
    """Every delivery the published warehouse has seen: its state, reason, rows, age.

    States are those of the refresh (accepted, held_back, rejected, superseded; README
    "Delivery states"). The table fits the terminal: when the reasons do not, each goes
    under its delivery, and on a very narrow terminal the row counts, then the age and
    the freshness are left out (--wide shows them all). Output to a file or pipe without
    COLUMNS gets every column. The report and docs paths follow the table. With
    --history SITE: that site's delivery events instead, oldest first.
    """
    from ivig_platform.console import print_status
    from ivig_platform.warehouse.publish import published_path

    if history is not None:
        print_history(warehouse, history)
        return
    path = published_path(warehouse)
    require_published(warehouse)
    rows, built, issues = read_status(path)
    from ivig_platform.warehouse.reader import describe_published

    print_status(rows, today=datetime.now(UTC).date(), built=built,
                 path=describe_published(warehouse), wide=wide)
    for folder, reason in issues:
        typer.echo(f"inbox folder {folder!r} not read: {reason}")
    for label, where in (("study report", warehouse / "report.html"),
                         ("data contract", warehouse / "docs" / "contract.html"),
                         ("dbt docs", warehouse / "docs" / "dbt" / "static_index.html"),
                         ("data docs (GX)", warehouse / "docs" / "data-docs" / "index.html")):
        if where.exists():
            typer.echo(f"{label}: {where.resolve()}")


def read_status(path: Path) -> tuple[list, datetime | None, list[tuple[str, str]]]:
    """Deliveries (as StatusRow), build time and inbox issues of a published file; files
    older than a table or column read without it."""

    from ivig_platform.console import StatusRow
    from ivig_platform.states import delivery_state
    from ivig_platform.warehouse.reader import open_read_only

    con = open_read_only(path)
    try:
        present = {name for (name,) in con.execute(
            "SELECT table_schema || '.' || table_name || '.' || column_name "
            "FROM information_schema.columns").fetchall()}
        freshness = (
            "(SELECT freshness_status FROM marts.mart_site_freshness f "
            " WHERE f.site_id = d.site_id AND d.status = 'accepted')"
            if "marts.mart_site_freshness.freshness_status" in present else "NULL")
        rejected_by = ("rejected_by" if "quality.site_delivery.rejected_by" in present
                       else "NULL")
        found = con.execute(
            f"SELECT site_id, delivery_id, status, {rejected_by}, reason, rows_landed, "
            f"rows_quarantined, delivery_date, {freshness} FROM quality.site_delivery d "
            "ORDER BY site_id, delivery_id"
        ).fetchall()
        built = con.execute("SELECT max(built_at) FROM quality.refresh_run").fetchone()[0]
        issues = con.execute(
            "SELECT folder, reason FROM quality.inbox_issue ORDER BY folder").fetchall() \
            if "quality.inbox_issue.folder" in present else []
    finally:
        con.close()
    rows = [StatusRow(site, delivery, delivery_state(st, by, reason), reason, landed,
                      quarantined, delivered, fresh)
            for site, delivery, st, by, reason, landed, quarantined, delivered, fresh in found]
    return rows, built, issues


@app.command(short_help="Query the published file read-only, or open a SQL prompt on it.")
def sql(
    warehouse: Warehouse,
    query: Annotated[str | None, typer.Argument(
        help="SQL to run; without it, statements are read from a prompt (or stdin).",
        metavar="QUERY", show_default=False)] = None,
    csv: Annotated[Path | None, typer.Option(
        "--csv", help="Write the query's result to OUT as CSV (with a header).",
        metavar="OUT")] = None,
    parquet: Annotated[Path | None, typer.Option(
        "--parquet", help="Write the query's result to OUT as Parquet.", metavar="OUT")] = None,
    max_rows: Annotated[int, typer.Option(
        help="Rows shown of a result (the export has them all).", metavar="N")] = 40,
) -> None:
    """Run SQL on WAREHOUSE/ivig.duckdb, opened read-only (it never blocks a refresh).

    With QUERY: the result is printed as a table fitted to the terminal, or written
    whole to --csv/--parquet OUT. Without QUERY: a prompt that runs each statement ending
    in `;` (.tables lists the tables, .quit or Ctrl-D ends it); statements piped on stdin
    run the same way. Writes are refused: the file is the published record.
    """
    from ivig_platform.sql_shell import SqlError, export, open_read_only, run_query, shell
    from ivig_platform.warehouse.publish import published_path

    if (csv or parquet) and query is None:
        fail("--csv/--parquet need a QUERY")
    if csv and parquet:
        fail("give one of --csv and --parquet")
    path = published_path(warehouse)
    require_published(warehouse)
    try:
        con = open_read_only(path)
    except SqlError as exc:
        fail(str(exc))
    try:
        if query is None:
            raise typer.Exit(shell(con, path))
        if csv or parquet:
            out = csv or parquet
            n = export(con, query, out, "csv" if csv else "parquet")
            say(f"{n} rows written to {out}")
            return
        run_query(con, query, max_rows=max_rows)
    except SqlError as exc:
        fail(str(exc))
    finally:
        con.close()


def print_history(warehouse: Path, site: str) -> None:
    """`ivig status --history SITE`: the site's events, oldest first, one a line."""
    from ivig_platform.provenance.audit import events_path, site_history

    events = site_history(warehouse, site)
    if not events:
        fail(f"no events of site {site!r} in {events_path(warehouse)}")
    for e in events:
        detail = e.get("detail") or ""
        if e.get("failed_checks"):
            detail = f"{detail}; failed: {', '.join(e['failed_checks'])}".lstrip("; ")
        typer.echo(f"{e['event_time'][:19].replace('T', ' ')}  {e['delivery_id']:<12} "
                   f"{e['event']:<11} {e['status']:<13} run {e['run_id']}"
                   + (f"  {detail}" if detail else ""))


@app.command(short_help="Where rows of a table came from: site, delivery, file, source row.")
def explain(
    table: Annotated[str, typer.Argument(
        help="A mart (fct_assessment, dim_patient, mart_efficacy, …) or landed.<table>.",
        metavar="TABLE", show_default=False)],
    where: Annotated[str, typer.Argument(
        help="SQL condition on the table's columns, one expression, e.g. \"measure = 'ck'\".",
        metavar="CONDITION", show_default=False)],
    warehouse: Warehouse,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    depth: Annotated[int, typer.Option(
        help="mart_efficacy: 1 adds each pair's source rows, 2 also the patient's rows.",
        metavar="N")] = 0,
) -> None:
    """Where each matching row came from: site, delivery, file, source row, the file's
    SHA-256 and the cells as the site wrote them (non-identifier columns only)."""
    import json

    from ivig_platform.provenance.explain import ExplainError
    from ivig_platform.provenance.explain import explain as explain_rows

    try:
        records = explain_rows(warehouse, table, where, depth=depth)
    except ExplainError as exc:
        fail(str(exc))
    if json_output:
        typer.echo(json.dumps(records, ensure_ascii=False, indent=1))
        return
    if not records:
        typer.echo("no matching row")
    for record in records:
        _print_record(record, 0)


def _print_record(record: dict, level: int) -> None:
    pad = "  " * level
    row = ", ".join(f"{k}={v}" for k, v in record["row"].items())
    typer.echo(f"{pad}{record['table']} [{record['role']}] {row}")
    if record.get("pair"):
        typer.echo(f"{pad}  pair: {record['pair']}")
    if record.get("source_file"):
        typer.echo(f"{pad}  from {record['site_id']}/{record['delivery_id']}/"
                   f"{record['source_file']} row {record['source_row']} "
                   f"(sha256 {record['file_sha256']})")
        cells = "; ".join(f"{k}: {v!r}" for k, v in record["cells"].items())
        typer.echo(f"{pad}  as reported: {cells or 'not kept (landed before version 3)'}")
    for source in record.get("sources", []):
        _print_record(source, level + 1)


@app.command(short_help="Write the study report WAREHOUSE/report.html again.")
def report(
    warehouse: Warehouse,
) -> None:
    """Write the study report WAREHOUSE/report.html from the published file, under the
    protocol and plans its run recorded (the `--plan` files it was refreshed with)."""
    from ivig_platform.report import render_warehouse_report
    from ivig_platform.report.recorded import RecordedProtocolError

    require_published(warehouse)
    try:
        written = render_warehouse_report(warehouse)
    except RecordedProtocolError as exc:
        fail(f"report: {exc}")
    typer.echo(f"report written to {written}")


@app.command(short_help="Publish an earlier version of WAREHOUSE/ivig.duckdb again.")
def rollback(
    warehouse: Warehouse,
    to: Annotated[str | None, typer.Option(
        help="Version to publish (a name from WAREHOUSE/versions/); default: the previous.",
        metavar="NAME", show_default=False)] = None,
    list_versions: Annotated[bool, typer.Option(
        "--list", help="List the kept versions (the current one marked) and change nothing."
    )] = False,
) -> None:
    """Re-publish an earlier version of WAREHOUSE/ivig.duckdb (kept under versions/), or
    of a lake warehouse: an earlier published snapshot.

    The swap is the same as a refresh's (file, report and docs together): open read-only
    connections keep what they had, new ones see the rolled-back file. The version that
    was current stays among the versions, so a rollback can be undone with --to. Refused
    while a refresh of WAREHOUSE is running.
    """
    from ivig_platform.warehouse.lake import LakeError, lake_of
    from ivig_platform.warehouse.publish import published_path
    from ivig_platform.warehouse.reader import describe_published
    from ivig_platform.warehouse.rollback import RollbackError, kept_versions, roll_back

    try:
        if list_versions:
            print_versions(kept_versions(warehouse))
            return
        done = roll_back(warehouse, to=to)
    except (RollbackError, LakeError) as exc:
        fail(str(exc))
    extras = ("with its report and docs" if done.with_report_and_docs else
              f"(its report and docs were not kept: {warehouse / 'report.html'} and "
              f"{warehouse / 'docs'} still describe the replaced file; `ivig report` "
              "rewrites the report)")
    if lake_of(warehouse) is not None:
        typer.echo(f"published {done.version.stem}: {describe_published(warehouse)} {extras}")
    else:
        typer.echo(f"published {done.version.name} as {published_path(warehouse)} {extras}")


def print_versions(versions: list) -> None:
    """`rollback --list`: one line per kept version, oldest first, `*` on the current."""
    if not versions:
        typer.echo("no kept versions: nothing to roll back to")
        return
    for version in versions:
        when = f"{version.published_at:%Y-%m-%d %H:%M:%S} UTC" if version.published_at else ""
        typer.echo(f"{'*' if version.current else ' '} {version.name}  {when}  "
                   f"{version.detail}")


@app.command(short_help="Check this machine and WAREHOUSE for a refresh (changes nothing).")
def doctor(
    warehouse: Warehouse,
    inbox: Annotated[Path | None, typer.Option(
        help="Folder of <site_id>/<delivery_id>/ deliveries (checked when given).",
        metavar="DIR")] = None,
) -> None:
    """Check this machine and WAREHOUSE for a refresh: one line per check, with what to do.

    Looks only (changes nothing). Exit code 1 when something would stop a refresh.
    """
    from ivig_platform.doctor import blocks_refresh, diagnose

    findings = diagnose(warehouse, inbox)
    for finding in findings:
        typer.echo(finding.line())
    failed = sum(f.status == "fail" for f in findings)
    if blocks_refresh(findings):
        typer.echo(f"{failed} problem(s) stop a refresh of {warehouse}", err=True)
        raise typer.Exit(1)
    typer.echo(f"ready for a refresh of {warehouse}")


def main() -> None:  # pragma: no cover - console script entry
    app()
