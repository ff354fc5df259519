"""`ivig`: the command line of the platform (demo, refresh, status).

Prefect is imported only inside the commands that run a flow, after the environment is
set, so `ivig status` and `--help` stay instant and a local run never touches the user's
own Prefect profile.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from ivig_platform.landing.pseudonym import (
    KEY_VARIABLE,
    MissingKeyError,
    key_fingerprint,
    load_key,
)
from ivig_platform.protocol.cli import app as protocol_app
from ivig_platform.warehouse.publish import published_path
from ivig_platform.warehouse.state import current_state, is_unchanged

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="IVIG-in-SSc study platform: land site extracts, build the marts, publish DuckDB.",
)

app.add_typer(protocol_app, name="protocol")

DEMO_KEY_FILE = ".pseudonym_key"


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def configure_local_prefect(warehouse: Path) -> None:
    """Run without a server: Prefect's temporary one, isolated under the warehouse.

    When `PREFECT_API_URL` points at a real server nothing is changed. Analytics and
    telemetry stay off, and the temporary server's SQLite "database is locked" chatter is
    kept out of the terminal.
    """
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Run logs stay at INFO for the Prefect UI; the terminal shows warnings and errors only,
    # next to the live per-site display.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    if not os.environ.get("PREFECT_API_URL"):
        os.environ.setdefault("PREFECT_HOME", str((warehouse / ".prefect").resolve()))
        os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
        os.environ.setdefault("PREFECT_UI_ENABLED", "false")


def prepare_refresh(warehouse: Path) -> Callable[..., dict]:
    """Everything a refresh process does before the flow runs; returns the flow.

    Prefect's temporary server (when no server is configured) is launched first and the
    heavy modules are imported in a thread, so both overlap the import of the flow: a
    refresh spends its first ~10 s waiting for that server otherwise.
    """
    from ivig_platform.orchestration.temporary_server import start_temporary_prefect_server

    warehouse.mkdir(parents=True, exist_ok=True)
    configure_local_prefect(warehouse)
    server = start_temporary_prefect_server()
    from flows.refresh import preload_in_background, refresh

    preload_in_background()
    if server is not None:
        server.wait_until_healthy()
    return refresh


def run_refresh(inbox: Path, warehouse: Path, *, settle_seconds: float = 0,
                force: bool = False, plans: list[Path] | None = None) -> dict:
    """Run the refresh flow in this process with a live display; return its summary."""
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
        key = load_key()
    except MissingKeyError as exc:
        fail(str(exc))
    # The unchanged case is decided before Prefect starts: a quiet night costs milliseconds.
    state = current_state(inbox, key_fingerprint(key), settle_seconds)
    if not force and is_unchanged(warehouse, state):
        return {"unchanged": True, "published": str(published_path(warehouse))}
    from ivig_platform.console import progress_display

    try:
        refresh = prepare_refresh(warehouse)
    except RuntimeError as exc:  # the temporary server would not start
        fail(f"refresh failed, nothing published: {exc}")
    with progress_display(sys.stdout.isatty()):
        try:
            summary = refresh(inbox=str(inbox.resolve()), warehouse=str(warehouse.resolve()),
                              settle_seconds=settle_seconds, force=force,
                              plans=[str(p) for p in plans])
        except Exception as exc:  # the flow's own failure, reported in one line
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if "nothing published" not in reason:
                reason = f"refresh failed, nothing published: {reason}"
            fail(reason)
    return summary


def print_summary(summary: dict) -> None:
    if summary.get("unchanged"):
        typer.echo(f"nothing changed since the last publish; {summary['published']} is current")
        return
    typer.echo(
        f"published {summary['published']}: {summary['accepted']} sites accepted, "
        f"{summary['superseded']} superseded, {summary['rejected']} rejected; "
        f"{summary['rows_landed']} rows landed, {summary['rows_quarantined']} quarantined; "
        f"{summary['held_back']} held back by the quality gate; checks failed: "
        f"{summary['checks']['error']['failed']} error, {summary['checks']['warn']['failed']} "
        f"warn ({summary['timings'].get('total', 0):.1f} s)"
    )


@app.command()
def refresh(
    inbox: Annotated[Path, typer.Option(help="Folder of <site_id>/<delivery_id>/ deliveries.")],
    warehouse: Annotated[Path, typer.Option(help="Folder where ivig.duckdb is published.")],
    settle_seconds: Annotated[float, typer.Option(
        help="Take a delivery without a _READY marker only once unchanged this long.")] = 0,
    force: Annotated[bool, typer.Option(help="Rebuild even if nothing changed.")] = False,
    plan: Annotated[list[Path] | None, typer.Option(
        "--plan", help="An amendment file in force for this run (repeatable); its plan is "
        "computed side by side in marts.mart_efficacy_by_plan.")] = None,
) -> None:
    """Land every site's deliveries and publish WAREHOUSE/ivig.duckdb.

    Needs IVIG_PSEUDONYM_KEY in the environment. Exit code 0 when a warehouse was
    published (or nothing changed since the last publish), 1 with a one-line reason
    otherwise.
    """
    print_summary(run_refresh(inbox, warehouse, settle_seconds=settle_seconds, force=force,
                              plans=plan))


@app.command()
def demo(
    dir: Annotated[Path, typer.Option("--dir", help="Folder for the demo inbox and warehouse.")],
    sites: Annotated[int, typer.Option(help="Number of hospitals.")] = 18,
    patients: Annotated[int, typer.Option(help="Number of patients.")] = 78,
    seed: Annotated[int, typer.Option(help="Seed of the generator.")] = 20261124,
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


@app.command()
def status(
    warehouse: Annotated[Path, typer.Option(help="Folder where ivig.duckdb is published.")],
) -> None:
    """Every site's deliveries in the published warehouse: status, reason, rows, age."""
    from ivig_platform.console import status_table

    path = published_path(warehouse)
    if not path.exists():
        fail(f"no published warehouse at {path} (run `ivig refresh` first)")
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        has_freshness = con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = 'marts' AND table_name = 'mart_site_freshness'"
        ).fetchone()[0]
        freshness = (
            "(SELECT freshness_status FROM marts.mart_site_freshness f "
            " WHERE f.site_id = d.site_id AND d.status = 'accepted')"
            if has_freshness else "NULL"
        )
        rows = con.execute(
            "SELECT site_id, delivery_id, status, reason, rows_landed, rows_quarantined, "
            f"delivery_date, {freshness} FROM quality.site_delivery d "
            "ORDER BY site_id, delivery_id"
        ).fetchall()
        built = con.execute("SELECT max(built_at) FROM quality.refresh_run").fetchone()[0]
    finally:
        con.close()
    today = datetime.now(UTC).date()
    status_table(rows, today=today, built=built, path=path)
    for label, where in (("study report", warehouse / "report.html"),
                         ("dbt docs", warehouse / "docs" / "dbt" / "static_index.html"),
                         ("data docs (GX)", warehouse / "docs" / "data-docs" / "index.html")):
        if where.exists():
            typer.echo(f"{label}: {where.resolve()}")


@app.command()
def report(
    warehouse: Annotated[Path, typer.Option(help="Folder where ivig.duckdb is published.")],
) -> None:
    """Write the study report WAREHOUSE/report.html from the published file."""
    from ivig_platform.report import render_warehouse_report

    if not published_path(warehouse).exists():
        fail(f"no published warehouse at {published_path(warehouse)} (run `ivig refresh` first)")
    typer.echo(f"report written to {render_warehouse_report(warehouse)}")


@app.command()
def rollback(
    warehouse: Annotated[Path, typer.Option(help="Folder where ivig.duckdb is published.")],
    to: Annotated[str | None, typer.Option(
        help="Version to publish (a name from WAREHOUSE/versions/); default: the previous.")
    ] = None,
) -> None:
    """Re-publish an earlier version of WAREHOUSE/ivig.duckdb (kept under versions/).

    The swap is the same atomic rename as a refresh: open read-only connections keep what
    they had, new ones see the rolled-back file. The version that was current stays
    among the versions, so a rollback can be undone with --to.
    """
    from ivig_platform.warehouse.rollback import RollbackError, current_version
    from ivig_platform.warehouse.rollback import rollback as roll_back

    try:
        roll_back(warehouse, to=to)
    except RollbackError as exc:
        fail(str(exc))
    current = current_version(warehouse)
    typer.echo(f"published {current.name if current else '?'} as {published_path(warehouse)}")


def main() -> None:  # pragma: no cover - console script entry
    app()
