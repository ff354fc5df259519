"""Per-delivery progress events, for whoever is watching a refresh.

The refresh emits small events (site, delivery, stage, detail); the CLI turns them into a
live table on a terminal or plain lines in a log. Tasks run in threads of one process,
so a module-level listener is enough; with no listener (a Prefect worker) events are
dropped and the Prefect UI is the place to watch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivig_platform.states import ACCEPTED, SUPERSEDED, state_column

if TYPE_CHECKING:
    import polars as pl


@dataclass(frozen=True)
class ProgressEvent:
    site_id: str
    delivery_id: str
    stage: str  # a state of ivig_platform/states.py, or "step" (site "*": the run's step)
    detail: str = ""


Listener = Callable[[ProgressEvent], None]
_listener: Listener | None = None
_lock = threading.Lock()


def set_listener(listener: Listener | None) -> None:
    global _listener
    _listener = listener


def step(detail: str) -> None:
    """What the run as a whole is doing now (the live display's title)."""
    emit(ProgressEvent("*", "*", "step", detail))


def emit(event: ProgressEvent) -> None:
    listener = _listener
    if listener is not None:
        with _lock:
            listener(event)


def announce_final_states(site_delivery: pl.DataFrame) -> None:
    """Each delivery's final state once the gate has decided (states.py), so a display
    ends with what the published file records: the gate judges only each site's newest
    delivery, and an older one is superseded without an event of its own otherwise."""
    import polars as pl

    frame = site_delivery.with_columns(state_column(site_delivery))
    accepted = dict(frame.filter(pl.col("state") == ACCEPTED)
                    .select("site_id", "delivery_id").iter_rows())
    for row in frame.iter_rows(named=True):
        state = row["state"]
        if state == SUPERSEDED:
            detail = f"by {accepted.get(row['site_id'], 'a newer delivery')}"
        elif state == ACCEPTED:
            detail = landed_detail(row["rows_landed"], row["rows_quarantined"])
        else:
            detail = row["reason"] or ""
        emit(ProgressEvent(row["site_id"], row["delivery_id"], state, detail))


def landed_detail(rows_landed: int, rows_quarantined: int) -> str:
    return f"{rows_landed} rows landed, {rows_quarantined} quarantined"
