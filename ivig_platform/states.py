"""The states of a delivery: one vocabulary for every surface that shows one.

The live display and the plain lines of a refresh, its summary line, the Prefect
artifacts, `ivig status`, the study report and `quality.site_delivery` all name a
delivery's state with the words below, and this module is where they are defined (the
README's table is generated from `STATES` and a test keeps the two equal).

A delivery passes through the *run* states during a refresh and ends in one of the four
*final* states, which are what the published file records.

`quality.site_delivery` keeps the three `status` values protocol §8 promises analysts
(accepted, rejected, superseded): a query such as `WHERE status = 'rejected'` means what
it always meant, every delivery that is not used. The difference between a delivery
landing could not use and one the quality gate held back is the additional column
`rejected_by` ('landing' or 'quality_gate', null unless rejected); the state `held_back`
is `status = 'rejected' AND rejected_by = 'quality_gate'`. A new status value was the
alternative, and was not taken: it would silently drop held-back deliveries from every
analyst query that filters on the §8 values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # polars only where a frame is read: the live display starts at once
    import polars as pl

QUEUED = "queued"
WAITING = "waiting"
LANDING = "landing"
LANDED = "landed"
DEFERRED = "deferred"
ACCEPTED = "accepted"
HELD_BACK = "held_back"
REJECTED = "rejected"
SUPERSEDED = "superseded"

#: quality.site_delivery.rejected_by
BY_LANDING = "landing"
BY_QUALITY_GATE = "quality_gate"


@dataclass(frozen=True)
class State:
    name: str
    final: bool  # recorded in quality.site_delivery (else: only seen during a run)
    meaning: str
    colour: str  # rich style on a terminal; nothing else is coloured


STATES: tuple[State, ...] = (
    State(QUEUED, False, "found in the inbox, ready, waiting for a landing slot", "dim"),
    State(WAITING, False, "still being written (no `_READY`, changed within the settle "
          "time): not taken this run, taken by a later one", "dim"),
    State(LANDING, False, "being read, checked row by row and written as Parquet", "blue"),
    State(LANDED, False, "landed (every row landed or quarantined), not yet judged by the "
          "quality gate", "cyan"),
    State(DEFERRED, False, "a transient error (files changing, I/O) outlasted the retries: "
          "nothing recorded, the next refresh tries again; the site's accepted delivery "
          "stays in force", "yellow"),
    State(ACCEPTED, True, "the site's data in force: its newest delivery that landed and "
          "passed the quality gate's error checks", "green"),
    State(HELD_BACK, True, "landed, but the quality gate failed an error check: not used, "
          "the site's previous delivery stays in force (`status` 'rejected', `rejected_by` "
          "'quality_gate')", "red"),
    State(REJECTED, True, "landing could not use it (a missing table, an unreadable file, "
          "...; the reason starts with its code): nothing of it is used (`status` "
          "'rejected', `rejected_by` 'landing')", "red"),
    State(SUPERSEDED, True, "landed and usable, but a newer delivery of the site is "
          "accepted (a delivery is a complete snapshot, §2)", "yellow"),
)
BY_NAME = {state.name: state for state in STATES}
FINAL = tuple(state.name for state in STATES if state.final)


def delivery_state(status: str | None, rejected_by: str | None = None,
                   reason: str | None = None) -> str:
    """The final state of a `quality.site_delivery` row. A file built before `rejected_by`
    existed (None) is read from the reason: the gate's start with `quality_gate:`."""
    by_gate = rejected_by == BY_QUALITY_GATE or (
        rejected_by is None and (reason or "").startswith(BY_QUALITY_GATE + ":"))
    return HELD_BACK if status == REJECTED and by_gate else (status or "")


def state_column(frame: pl.DataFrame) -> pl.Expr:
    """`delivery_state` of each row of a site_delivery frame, as the expression `state`."""
    import polars as pl

    by_gate = pl.col("reason").fill_null("").str.starts_with(BY_QUALITY_GATE + ":")
    if "rejected_by" in frame.columns:
        by_gate = (pl.col("rejected_by") == BY_QUALITY_GATE) | (
            pl.col("rejected_by").is_null() & by_gate)
    return (pl.when((pl.col("status") == REJECTED) & by_gate).then(pl.lit(HELD_BACK))
            .otherwise(pl.col("status")).alias("state"))


def colour(state: str) -> str:
    known = BY_NAME.get(state)
    return known.colour if known else ""


def markdown_table() -> str:
    """The vocabulary as a Markdown table (README.md carries it; a test compares)."""
    lines = ["| state | recorded | meaning |", "|---|---|---|"]
    lines += [f"| `{s.name}` | {'yes' if s.final else 'run only'} | {s.meaning} |"
              for s in STATES]
    return "\n".join(lines)
