"""Terminal output: a live per-site view of a refresh, and the status table.

On a terminal the refresh shows one line per delivery that updates in place (rich), from
the command's first second: before Prefect's temporary server answers, the title says
that this is what it waits for, and the elapsed time ticks. When output goes to a file or
a CI log, each change is one plain line without colour codes, so logs stay greppable.
States are the words of ivig_platform/states.py.
"""

from __future__ import annotations

import logging
import os
import sys
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ivig_platform.progress import ProgressEvent, set_listener
from ivig_platform.states import colour
from ivig_platform.wall_clock import wall_seconds

FIRST_STEP = "starting Prefect's temporary server…"


def _clock(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}:{rest:02d}"


def _progress_table(state: dict[tuple[str, str], ProgressEvent], step: str) -> Table:
    title = Text(f"ivig refresh · {_clock(wall_seconds())} · {step}")
    table = Table(title=title, title_justify="left")
    for column in ("site", "delivery", "state", "detail"):
        table.add_column(column)
    for (site, delivery), event in sorted(state.items()):
        table.add_row(Text(site), Text(delivery), Text(event.stage, style=colour(event.stage)),
                      Text(event.detail))
    return table


def plain_line(event: ProgressEvent) -> str:
    where = "refresh" if event.site_id == "*" else f"{event.site_id}/{event.delivery_id}"
    return f"[{where}] {event.stage} {event.detail}".rstrip()


_log = logging.getLogger("ivig.progress")
_log.setLevel(logging.INFO)  # into the run's log even where the root logger says WARNING


def _is_news(event: ProgressEvent, stages: dict[tuple[str, str], str]) -> bool:
    """A delivery's event is shown when its state changes (the final states announced
    after the gate repeat what the gate said for most deliveries)."""
    if event.site_id == "*":
        return True
    key = (event.site_id, event.delivery_id)
    if stages.get(key) == event.stage:
        return False
    stages[key] = event.stage
    return True


@contextmanager
def progress_display(live: bool, stream: TextIO | None = None,
                     first_step: str = FIRST_STEP) -> Iterator[None]:
    """Listen to refresh events for the duration of the block, showing them on `stream`
    (default stdout) and recording each in the run's log as a plain line. The display
    starts at once with `first_step`, so nothing is blank while Prefect starts."""
    stream = stream or sys.stdout
    stages: dict[tuple[str, str], str] = {}
    if not live:
        def plain(event: ProgressEvent) -> None:
            if _is_news(event, stages):
                line = plain_line(event)
                print(line, file=stream, flush=True)
                _log.info(line)

        plain(ProgressEvent("*", "*", "step", first_step))
        set_listener(plain)
        try:
            yield
        finally:
            set_listener(None)
        return

    state: dict[tuple[str, str], ProgressEvent] = {}
    step = [first_step]
    _log.info(plain_line(ProgressEvent("*", "*", "step", first_step)))
    # get_renderable: redrawn 4 times a second, so the elapsed time moves while a step runs.
    # sys.stdout and sys.stderr are left alone: what libraries print (dbt, Prefect) goes to
    # the run's log, not through the display onto the terminal.
    with Live(get_renderable=lambda: _progress_table(state, step[0]), refresh_per_second=4,
              transient=False, console=Console(file=stream), redirect_stdout=False,
              redirect_stderr=False):
        def update(event: ProgressEvent) -> None:
            if not _is_news(event, stages):
                return
            _log.info(plain_line(event))
            if event.site_id == "*":
                step[0] = event.detail
            else:
                state[(event.site_id, event.delivery_id)] = event

        set_listener(update)
        try:
            yield
        finally:
            set_listener(None)


# --------------------------------------------------------------------------- ivig status


@dataclass(frozen=True)
class Column:
    header: str
    drop_order: int  # 0: always shown; dropped highest first when the width is short
    right: bool = False


#: `ivig status`, in display order. The reason goes last, or under its row when narrow.
STATUS_COLUMNS: tuple[Column, ...] = (
    Column("site", 0), Column("delivery", 0), Column("state", 0),
    Column("landed", 3, right=True), Column("quar.", 3, right=True),
    Column("age", 2, right=True), Column("fresh", 1),
)
GAP = "  "
REASON_INDENT = "    "


@dataclass(frozen=True)
class StatusRow:
    site: str
    delivery: str
    state: str
    reason: str | None
    rows_landed: int | None
    rows_quarantined: int | None
    delivered: date | None
    freshness: str | None

    def cells(self, today: date) -> tuple[str, ...]:
        age = f"{(today - self.delivered).days} d" if self.delivered else ""
        return (self.site, self.delivery, self.state,
                "" if self.rows_landed is None else str(self.rows_landed),
                "" if self.rows_quarantined is None else str(self.rows_quarantined),
                age, self.freshness or "")


def status_layout(rows: Sequence[StatusRow], today: date, width: int | None
                  ) -> list[list[tuple[str, str]]]:
    """The status table as lines of (text, style) pieces, fitting `width` columns.

    Everything on one line per delivery when it fits (`width` None: always). Otherwise
    the reason goes on its own indented line under its delivery, wrapped at the width,
    and if the rest still does not fit, columns are dropped: the row counts first, then
    the age, then the freshness; site, delivery and state always stay.
    """
    cells = [row.cells(today) for row in rows]
    widths = [max([len(c.header), *(len(r[i]) for r in cells)])
              for i, c in enumerate(STATUS_COLUMNS)]
    reasons = [row.reason or "" for row in rows]
    reason_width = max([len("reason"), *map(len, reasons)])
    shown = list(range(len(STATUS_COLUMNS)))

    def line_width(columns: list[int]) -> int:
        return sum(widths[i] for i in columns) + len(GAP) * (len(columns) - 1)

    inline = width is None or line_width(shown) + len(GAP) + reason_width <= width
    if not inline:
        for order in sorted({c.drop_order for c in STATUS_COLUMNS if c.drop_order},
                            reverse=True):
            if line_width(shown) <= width:
                break
            shown = [i for i in shown if STATUS_COLUMNS[i].drop_order != order]

    def pad(text: str, i: int) -> str:
        return text.rjust(widths[i]) if STATUS_COLUMNS[i].right else text.ljust(widths[i])

    def join(pieces: list[tuple[str, str]]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for n, piece in enumerate(pieces):
            out += [(GAP, "")] if n else []
            out.append(piece)
        return out

    header = join([(pad(STATUS_COLUMNS[i].header, i), "bold") for i in shown]
                  + ([("reason", "bold")] if inline else []))
    lines = [_rstrip(header)]
    for row, row_cells, reason in zip(rows, cells, reasons, strict=True):
        styles = {2: colour(row.state), 6: _FRESH_STYLE.get(row.freshness or "", "")}
        pieces = [(pad(row_cells[i], i), styles.get(i, "")) for i in shown]
        lines.append(_rstrip(join(pieces + ([(reason, "")] if inline else []))))
        if reason and not inline:
            wrap = max(20, (width or 80) - len(REASON_INDENT))
            lines += [[(REASON_INDENT + part, "dim")]
                      for part in textwrap.wrap(reason, wrap, break_on_hyphens=False)]
    return lines


_FRESH_STYLE = {"fresh": "green", "warn": "yellow", "error": "red"}


def _rstrip(pieces: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """No trailing blanks: a file of the table diffs cleanly."""
    while pieces and not pieces[-1][0].strip():
        pieces = pieces[:-1]
    if pieces:
        pieces[-1] = (pieces[-1][0].rstrip(), pieces[-1][1])
    return pieces


def print_status(rows: Sequence[StatusRow], *, today: date, built, path: Path | str,
                 wide: bool, stream: TextIO | None = None) -> None:
    """`ivig status`: one line per delivery seen, to the terminal's width (`wide`: all
    columns on one line whatever the width). Colour on a terminal only."""
    console = Console(file=stream or sys.stdout, soft_wrap=True)
    width = None if wide else _width(console)
    console.print(Text(str(path), style="bold"))
    if built:
        console.print(f"built {built:%Y-%m-%d %H:%M} UTC")
    for line in status_layout(rows, today, width):
        console.print(Text.assemble(*line))


def _width(console: Console) -> int | None:
    """The terminal's width, or $COLUMNS; a file or pipe without $COLUMNS gets every
    column (one greppable line per delivery)."""
    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    return console.width if console.is_terminal else None
