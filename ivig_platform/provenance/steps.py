"""What the refresh and `ivig rollback` call: the I/O around the provenance modules.

The refresh, in its order:

1. after the build (`record_inputs`): `landed_cells.*` and `quality.delivery_event` (the
   log so far plus the events this run will add if it publishes);
2. at the mart gate (`check_delta.check_deltas`, called by the flow): the check deltas,
   shown in the Data Docs;
3. after the stats (`record_outputs`): `marts.ard`, `quality.check_delta` and
   `quality.run_record` (with the hash of every mart, `marts.ard` included), so the
   report rendered next names the run, the protocol and the code;
4. after the publish (`after_publish`): the events and the run record appended to the
   logs under `WAREHOUSE/audit/`, and `WAREHOUSE/ard.json` from the published file.

`after_rollback`: the `rolled_back` events and `ard.json` of the file put back. All of it
runs under the warehouse's run lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from ivig_platform.provenance import audit, run_record
from ivig_platform.provenance.ard import ARD_JSON, export_ard_json, write_ard
from ivig_platform.provenance.cells import load_landed_cells
from ivig_platform.provenance.check_delta import DELTA_SCHEMA

if TYPE_CHECKING:
    from ivig_platform.landing.manifest import Manifest
    from ivig_platform.quality.gate import GateResult


def held_back_checks(results: Iterable[GateResult]) -> dict[tuple[str, str], list[str]]:
    """(site, delivery) → the error checks that held it back (check ids)."""
    return {
        (g.site_id, g.delivery_id): sorted(o.check_id for o in g.failures if o.severity == "error")
        for g in results if g.gate == "landing" and not g.passed_errors
    }


def record_inputs(built: Path, warehouse: Path, manifests: list[Manifest],
                  held_back: dict[tuple[str, str], str], gate_results: list[GateResult],
                  run_id: str, now: datetime | None = None) -> list[dict]:
    """Step 1: cells and `quality.delivery_event` into the build; returns this run's events
    (appended to the log only once the run has published, `after_publish`)."""
    from ivig_platform.warehouse.build import delivery_status

    status = delivery_status(manifests, held_back)
    observed = audit.observe(manifests, status, held_back, held_back_checks(gate_results))
    history = audit.read_events(warehouse)
    pending = audit.derive_events(history, observed, run_id, now or datetime.now(UTC))
    con = duckdb.connect(str(built))
    try:
        load_landed_cells(con, warehouse)
        audit.write_event_table(con, history + pending)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return pending


def record_outputs(built: Path, warehouse: Path, run_id: str, started_at: datetime,
                   deltas: pl.DataFrame | None, parameters: dict[str, Any]) -> dict:
    """Step 3: `marts.ard`, `quality.check_delta`, `quality.run_record`; returns the record."""
    from ivig_platform.protocol import load_protocol, plan_fingerprint

    plan = load_protocol().primary_plan  # mart_efficacy is the primary plan's analysis
    con = duckdb.connect(str(built))
    try:
        write_ard(con, plan.version, plan_fingerprint(plan))
        frame = deltas if deltas is not None else pl.DataFrame(schema=DELTA_SCHEMA)
        con.register("check_delta_frame", frame)
        con.execute("CREATE OR REPLACE TABLE quality.check_delta AS "
                    "SELECT * FROM check_delta_frame")
        con.unregister("check_delta_frame")
        inputs = [dict(zip(("site_id", "delivery_id", "content_sha256", "status"), row,
                           strict=True))
                  for row in con.execute("SELECT site_id, delivery_id, content_sha256, status "
                                         "FROM quality.site_delivery").fetchall()]
        record = run_record.run_record(run_id, started_at, inputs, parameters,
                                       run_record.table_hashes(con))
        run_record.write_record_table(con, run_record.read_records(warehouse) + [record])
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return record


def after_publish(warehouse: Path, events: list[dict], record: dict | None) -> None:
    """Step 4: the run's events and record into the logs; `ard.json` of the live file."""
    from ivig_platform.warehouse.publish import published_path

    audit.append_events(warehouse, events)
    if record is not None:
        run_record.append_record(warehouse, record)
    export_ard_json(published_path(warehouse), Path(warehouse) / ARD_JSON)


def after_rollback(warehouse: Path, before: dict[tuple[str, str], str], replaced: str,
                   restored: Path, now: datetime | None = None) -> list[dict]:
    """`rolled_back` events for what the rollback changed, and `ard.json` of the file put
    back (removed when that file has no ARD, so `ard.json` never describes another file)."""
    from ivig_platform.warehouse.publish import published_path

    now = now or datetime.now(UTC)
    live = published_path(warehouse)
    events = audit.rollback_events(
        audit.read_events(warehouse), before, audit.delivery_statuses(live), replaced,
        restored.stem, now, f"rollback-{now.strftime('%Y%m%dT%H%M%S')}")
    audit.append_events(warehouse, events)
    if export_ard_json(live, Path(warehouse) / ARD_JSON) is None:
        (Path(warehouse) / ARD_JSON).unlink(missing_ok=True)
    return events
