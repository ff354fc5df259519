"""Terminal output: a live per-site view of a refresh, and the status table.

On a terminal the refresh shows one line per delivery that updates in place (rich);
when output goes to a file or CI log, each change is one plain line, so logs stay
greppable.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ivig_platform.progress import ProgressEvent, set_listener

STYLE = {"accepted": "green", "landed": "green", "reused": "cyan", "superseded": "yellow",
         "rejected": "red", "failed": "red", "held": "red", "landing": "blue", "queued": "dim"}


def _progress_table(state: dict[tuple[str, str], ProgressEvent], step: str) -> Table:
    table = Table(title=Text(f"ivig refresh — {step}"), title_justify="left")
    for column in ("site", "delivery", "state", "detail"):
        table.add_column(column)
    for (site, delivery), event in sorted(state.items()):
        table.add_row(Text(site), Text(delivery),
                      Text(event.stage, style=STYLE.get(event.stage, "")), Text(event.detail))
    return table


def plain_line(event: ProgressEvent) -> str:
    where = "refresh" if event.site_id == "*" else f"{event.site_id}/{event.delivery_id}"
    return f"[{where}] {event.stage} {event.detail}".rstrip()


_log = logging.getLogger("ivig.progress")
_log.setLevel(logging.INFO)  # into the run's log even where the root logger says WARNING


@contextmanager
def progress_display(live: bool, stream: TextIO | None = None) -> Iterator[None]:
    """Listen to refresh events for the duration of the block, showing them on `stream`
    (default stdout) and recording each in the run's log as a plain line."""
    stream = stream or sys.stdout
    if not live:
        def plain(event: ProgressEvent) -> None:
            line = plain_line(event)
            print(line, file=stream, flush=True)
            _log.info(line)

        set_listener(plain)
        try:
            yield
        finally:
            set_listener(None)
        return

    state: dict[tuple[str, str], ProgressEvent] = {}
    step = ["starting (Prefect's local server takes a few seconds)"]
    with Live(_progress_table(state, step[0]), refresh_per_second=8, transient=False,
              console=Console(file=stream)) as view:
        def update(event: ProgressEvent) -> None:
            _log.info(plain_line(event))
            if event.site_id == "*":
                step[0] = event.detail
            else:
                state[(event.site_id, event.delivery_id)] = event
            view.update(_progress_table(state, step[0]))

        set_listener(update)
        try:
            yield
        finally:
            set_listener(None)


def status_table(rows: list[tuple], *, today: date, built, path: Path) -> None:
    """`ivig status`: one row per delivery seen, newest first within a site."""
    table = Table(title=f"{path} — built {built:%Y-%m-%d %H:%M} UTC" if built else str(path),
                  title_justify="left")
    for column in ("site", "delivery", "status", "reason", "landed", "quarantined", "age",
                   "freshness"):
        table.add_column(column, justify="right" if column in ("landed", "quarantined", "age")
                         else "left")
    for site, delivery, status, reason, landed, quarantined, delivered, fresh in rows:
        age = f"{(today - delivered).days} d" if delivered else ""
        fresh_style = {"fresh": "green", "warn": "yellow", "error": "red"}.get(fresh or "", "")
        # Text, not markup: a reason may hold brackets that rich would read as tags.
        table.add_row(Text(site), Text(delivery), Text(status, style=STYLE.get(status, "")),
                      Text(reason or ""), str(landed), str(quarantined), age,
                      Text(fresh or "", style=fresh_style))
    Console(width=200 if not Console().is_terminal else None).print(table)
