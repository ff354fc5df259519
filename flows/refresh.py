"""The refresh: every site's deliveries in, one published DuckDB file out.

Reads top to bottom as the process it runs: find the deliveries, land each one (sites in
parallel; a broken site is recorded and the others go on), build a new warehouse file,
publish it by rename, and leave a summary for the people who watch the runs.
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
import uuid
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task, unmapped
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from ivig_platform.landing.discovery import discover_deliveries
from ivig_platform.landing.land import Delivery, Manifest, land_delivery
from ivig_platform.landing.pseudonym import KEY_VARIABLE, key_fingerprint, load_key
from ivig_platform.progress import ProgressEvent, emit
from ivig_platform.warehouse.build import RunInfo, build_database
from ivig_platform.warehouse.publish import build_path, publish
from ivig_platform.warehouse.summary import RefreshSummary, summarise

SECRET_BLOCK = "ivig-pseudonym-key"


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
def find_deliveries(inbox: Path) -> list[Delivery]:
    deliveries = discover_deliveries(inbox)
    for d in deliveries:
        emit(ProgressEvent(d.site_id, d.delivery_id, "queued"))
    return deliveries


@task(name="land-delivery", task_run_name="land-{delivery.site_id}-{delivery.delivery_id}")
def land(delivery: Delivery, warehouse: Path) -> Manifest:
    """Land one delivery; any failure becomes a rejection of this delivery only."""
    emit(ProgressEvent(delivery.site_id, delivery.delivery_id, "landing"))
    key = load_key()
    try:
        manifest = land_delivery(delivery, warehouse, key)
    except Exception as exc:  # a bug or an I/O error must not stop the other sites
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
    stage = "rejected" if manifest.status == "rejected" else "landed"
    detail = manifest.reason or f"{manifest.rows_landed} landed, {manifest.rows_quarantined} " \
        "quarantined"
    emit(ProgressEvent(delivery.site_id, delivery.delivery_id, stage, detail))
    return manifest


@task(name="build-warehouse")
def build_warehouse(warehouse: Path, manifests: list[Manifest], run: RunInfo) -> Path:
    built = build_path(warehouse, run.run_id)
    build_database(built, warehouse, manifests, run)
    return built


@task(name="publish")
def publish_warehouse(built: Path, warehouse: Path) -> Path:
    return publish(built, warehouse)


@task(name="summarise-run")
def report_run(summary: RefreshSummary) -> None:
    create_markdown_artifact(
        key="refresh-summary", markdown=summary.markdown(), description="ivig refresh summary"
    )
    create_table_artifact(
        key="refresh-deliveries", table=summary.delivery_rows(),
        description="Every delivery seen by the refresh",
    )


@flow(name="ivig-refresh", task_runner=ThreadPoolTaskRunner(max_workers=4))
def refresh(inbox: str, warehouse: str) -> dict:
    """Land every site's deliveries from `inbox` and publish `warehouse/ivig.duckdb`."""
    ensure_key()  # fail the whole run at once, before any work, when the key is missing
    started = time.perf_counter()
    run = RunInfo(
        run_id=datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6],
        started_at=datetime.now(UTC),
        inbox=str(inbox),
    )
    inbox_path, warehouse_path = Path(inbox), Path(warehouse)
    warehouse_path.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    deliveries = find_deliveries(inbox_path)
    manifests = [f.result() for f in land.map(deliveries, unmapped(warehouse_path))]
    timings["landing"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    emit(ProgressEvent("*", "*", "step", "building the warehouse file"))
    built = build_warehouse(warehouse_path, manifests, run)
    timings["build"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    published = publish_warehouse(built, warehouse_path)
    timings["publish"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started

    summary = summarise(run.run_id, manifests, published, timings)
    report_run(summary)
    emit(ProgressEvent("*", "*", "step", f"published {published}"))
    return summary.as_dict()
