"""The audit trail: an append-only log of what happened to every delivery, across refreshes.

`WAREHOUSE/audit/delivery_events.jsonl`, one JSON object a line, only ever appended to,
under the run lock (a refresh after it published, `ivig rollback` after it swapped). It
is the record, never recomputed from the inbox or from a published file; each build
copies it into `quality.delivery_event` together with the events of the run itself.

Events and the status each leaves the delivery in (`status`):

| event         | when                                                        | status    |
|---------------|-------------------------------------------------------------|-----------|
| `received`    | a delivery (site, delivery id) with content not seen before | received  |
| `landed`      | landing wrote its rows (after `received`, or after damage)  | landed    |
| `rejected`    | landing refused it or its landing is damaged (`detail`)      | rejected  |
| `accepted`    | it became its site's delivery in force in a published file  | accepted  |
| `held_back`   | the quality gate held it back (`failed_checks`)             | held_back |
| `superseded`  | a newer delivery of the site took over                      | superseded|
|               | (a held-back one too, once a newer delivery is accepted)    |           |
| `rolled_back` | `ivig rollback` changed its status in the live file         | (below)   |

A `rolled_back` event leaves the status the delivery has in the rolled-back-to file
(`not_published` when that file does not know it).

Only state changes are events: a delivery that stays accepted night after night has one
`accepted` event. A change is a new status, a new content hash (the site sent the same
delivery id again with other files: `received` again), or a held-back or rejected
delivery whose reason changed (other checks failing). Publication statuses (`accepted`,
`held_back`, `superseded`) are recorded only by a run that published: a run that failed
records nothing, and the next one records what it publishes. A run killed after its
publish but before its append leaves the events to the next run, which finds the same
changes (against the log) and records them under its own run id.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

AUDIT_DIR = "audit"
EVENTS_FILE = "delivery_events.jsonl"
EVENTS = ("received", "landed", "rejected", "accepted", "held_back", "superseded",
          "rolled_back")
EVENT_SCHEMA: dict[str, pl.DataType] = {
    "event_time": pl.Datetime("us", "UTC"),
    "run_id": pl.Utf8(),
    "site_id": pl.Utf8(),
    "delivery_id": pl.Utf8(),
    "event": pl.Utf8(),
    "status": pl.Utf8(),
    "content_sha256": pl.Utf8(),
    "detail": pl.Utf8(),
    "failed_checks": pl.List(pl.Utf8()),
}
PUBLICATION = ("accepted", "held_back", "superseded")
HELD_BACK_REASON = "quality_gate:"  # how site_delivery.reason starts for a held-back delivery


def events_path(warehouse: Path) -> Path:
    return Path(warehouse) / AUDIT_DIR / EVENTS_FILE


@dataclass(frozen=True)
class Observed:
    """What one run found for a delivery: its landing and where the run put it."""

    site_id: str
    delivery_id: str
    content_sha256: str
    landing: str  # landed | rejected
    reason: str | None
    # accepted | held_back | superseded for a landed delivery; None when rejected
    publication: str | None = None
    failed_checks: tuple[str, ...] = ()
    rows_landed: int = 0
    rows_quarantined: int = 0


def read_jsonl(path: Path) -> list[dict]:
    """Every object of an append-only JSONL log, oldest first. A last line cut short by a
    crash is skipped (its write never finished, so as far as anyone knows it never
    happened)."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def append_jsonl(path: Path, objects: Iterable[dict]) -> int:
    """Append objects to a JSONL log (call under the run lock); returns how many.

    Each is one line; the file is flushed to disk before returning. A line left without
    its newline by a crash is ended first, so the new objects start on lines of their own.
    """
    lines = [json.dumps(o, ensure_ascii=False, sort_keys=True) for o in objects]
    if not lines:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell():
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                handle.write(b"\n")
        handle.write(("\n".join(lines) + "\n").encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    return len(lines)


def read_events(warehouse: Path) -> list[dict]:
    return read_jsonl(events_path(warehouse))


def append_events(warehouse: Path, events: Iterable[dict]) -> int:
    return append_jsonl(events_path(warehouse), events)


def _event(when: datetime, run_id: str, site: str, delivery: str, event: str, status: str,
           content: str, detail: str | None = None,
           failed_checks: Iterable[str] = ()) -> dict:
    return {"event_time": when.astimezone(UTC).isoformat(), "run_id": run_id,
            "site_id": site, "delivery_id": delivery, "event": event, "status": status,
            "content_sha256": content, "detail": detail,
            "failed_checks": sorted(failed_checks)}


def last_states(events: Iterable[dict]) -> dict[tuple[str, str], dict]:
    """(site, delivery) → its latest event, plus the content of its latest `received`."""
    states: dict[tuple[str, str], dict] = {}
    for e in events:
        key = (e["site_id"], e["delivery_id"])
        state = dict(e)
        state["received_content"] = e["content_sha256"] if e["event"] == "received" else (
            states.get(key, {}).get("received_content"))
        states[key] = state
    return states


def derive_events(history: Iterable[dict], observed: Iterable[Observed], run_id: str,
                  when: datetime) -> list[dict]:
    """The events this run adds: every change from each delivery's last logged state."""
    states = last_states(history)
    out: list[dict] = []
    for o in sorted(observed, key=lambda o: (o.site_id, o.delivery_id)):
        last = states.get((o.site_id, o.delivery_id))

        def add(event: str, status: str, detail: str | None = None,
                checks: Iterable[str] = (), o: Observed = o) -> None:
            out.append(_event(when, run_id, o.site_id, o.delivery_id, event, status,
                              o.content_sha256, detail, checks))

        fresh = last is None or last.get("received_content") != o.content_sha256
        if fresh:
            add("received", "received")
        last_status = None if fresh else last["status"]
        counts = f"{o.rows_landed} rows landed, {o.rows_quarantined} quarantined"
        if o.landing == "rejected":
            if last_status != "rejected" or last.get("detail") != o.reason:
                add("rejected", "rejected", o.reason)
            continue
        if last_status in (None, "received", "rejected"):
            add("landed", "landed", counts)
            last_status = "landed"
        if o.publication is None:
            continue
        detail = o.reason if o.publication == "held_back" else None
        changed = last_status != o.publication or (
            o.publication == "held_back" and last is not None and not fresh
            and sorted(last.get("failed_checks") or []) != sorted(o.failed_checks))
        if changed:
            add(o.publication, o.publication, detail,
                o.failed_checks if o.publication == "held_back" else ())
    return out


def observe(manifests: Iterable, status: pl.DataFrame, held_back: dict[tuple[str, str], str],
            failed_checks: dict[tuple[str, str], list[str]]) -> list[Observed]:
    """What the run found, from its manifests and `delivery_status` (warehouse/build.py)."""
    published = {(r["site_id"], r["delivery_id"]): r["status"]
                 for r in status.iter_rows(named=True)}
    out = []
    for m in manifests:
        key = (m.site_id, m.delivery_id)
        landed = m.status == "landed"
        publication = None
        if landed:
            publication = "held_back" if key in held_back else published.get(key)
            publication = publication if publication in PUBLICATION else None
        out.append(Observed(
            site_id=m.site_id, delivery_id=m.delivery_id, content_sha256=m.content_sha256,
            landing="landed" if landed else "rejected",
            reason=held_back.get(key) if key in held_back else m.reason,
            publication=publication, failed_checks=tuple(failed_checks.get(key, ())),
            rows_landed=m.rows_landed, rows_quarantined=m.rows_quarantined,
        ))
    return out


def events_frame(events: Iterable[dict]) -> pl.DataFrame:
    rows = [{**e, "event_time": datetime.fromisoformat(e["event_time"])} for e in events]
    return pl.DataFrame(rows, schema=EVENT_SCHEMA, orient="row") if rows else pl.DataFrame(
        schema=EVENT_SCHEMA)


def write_event_table(con: duckdb.DuckDBPyConnection, events: list[dict]) -> None:
    """`quality.delivery_event` in a build file: the log so far plus this run's events."""
    frame = events_frame(events)  # noqa: F841  (scanned by name)
    con.execute("CREATE OR REPLACE TABLE quality.delivery_event AS SELECT * FROM frame "
                "ORDER BY event_time, site_id, delivery_id")


# --------------------------------------------------------------------------- rollback


def delivery_statuses(path: Path) -> dict[tuple[str, str], str]:
    """(site, delivery) → status in a published file's `quality.site_delivery`, with the
    deliveries the quality gate held back as `held_back` (site_delivery files them as
    `rejected` with the gate's reason, `quality_gate: …`, quality/gate.py)."""
    from ivig_platform.warehouse.reader import open_if_published

    con = open_if_published(Path(path))
    if con is None:
        return {}
    try:
        present = con.execute("SELECT count(*) FROM information_schema.tables WHERE "
                              "table_schema = 'quality' AND table_name = 'site_delivery'"
                              ).fetchone()[0]
        rows = con.execute(
            "SELECT site_id, delivery_id, CASE WHEN status = 'rejected' AND "
            f"starts_with(coalesce(reason, ''), '{HELD_BACK_REASON}') THEN 'held_back' "
            "ELSE status END FROM quality.site_delivery").fetchall() if present else []
    finally:
        con.close()
    return {(s, d): status for s, d, status in rows}


def rollback_events(history: Iterable[dict], before: dict[tuple[str, str], str],
                    after: dict[tuple[str, str], str], replaced: str, restored: str,
                    when: datetime, run_id: str) -> list[dict]:
    """`rolled_back` events for the deliveries whose status the rollback changed.

    `before`/`after`: `delivery_statuses` of the file taken down (named `replaced`) and
    of the one put back (`restored`). A delivery the rolled-back-to file does not know
    becomes `not_published`; a `rejected` one that the log last saw held back stays
    `held_back` (for statuses read without the reason that tells the two apart).
    """
    states = last_states(history)
    out = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key, "not_published"), after.get(key, "not_published")
        if old == new:
            continue
        last = states.get(key, {})
        status = "held_back" if new == "rejected" and last.get("status") == "held_back" else new
        out.append(_event(when, run_id, key[0], key[1], "rolled_back", status,
                          last.get("content_sha256") or "",
                          f"{old} in {replaced} -> {status} in {restored}"))
    return out


def site_history(warehouse: Path, site_id: str) -> list[dict]:
    """A site's events from the log, oldest first (`ivig status --history SITE`)."""
    return [e for e in read_events(warehouse) if e["site_id"] == site_id]
