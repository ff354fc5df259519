"""Quality over time: each site's failing checks compared with the previous published run.

As OHDSI's Data Quality Dashboard compares two releases, every check that fails now or
failed then is one row of `quality.check_delta`:

* `new` — fails in this run, did not in the previous published run;
* `persisting` — fails in both;
* `resolved` — failed in the previous published run, passes (or is no longer run) now.

Decisions where the issue is silent:

* A site is judged by its newest delivery gated in the run (a held-back delivery
  included: its failures are the news), not by the older one that stays in force after
  it was held back. The marts are one more "site" (`gate` = `marts`, `site_id` NULL).
* A check is identified by its check id (`suite/column[condition]/check_type/severity`,
  quality/registry.py): four `valid_range` checks on `value`, one per measure, are four
  checks.
* "The previous published run" is the file live when this run started (after a rollback:
  the rolled-back-to file). Its failing checks are its own `check_delta` rows marked new
  or persisting; a file without `check_delta` (published before this existed, or none
  published yet) gives no comparison: `previous_run_id` is NULL and every failure is new.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from ivig_platform.quality.gate import GateResult

CHANGES = ("new", "persisting", "resolved")
DELTA_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.Utf8(),
    "previous_run_id": pl.Utf8(),
    "gate": pl.Utf8(),
    "site_id": pl.Utf8(),
    "delivery_id": pl.Utf8(),
    "previous_delivery_id": pl.Utf8(),
    "check_id": pl.Utf8(),
    "suite": pl.Utf8(),
    "column_name": pl.Utf8(),
    "severity": pl.Utf8(),
    "change": pl.Utf8(),
    "unexpected_percent": pl.Float64(),
    "previous_unexpected_percent": pl.Float64(),
}
# What one failing check is, on either side of the comparison.
FAILURE_COLUMNS = ("gate", "site_id", "delivery_id", "check_id", "suite", "column_name",
                   "severity", "unexpected_percent")


def current_failures(results: Iterable[GateResult]) -> pl.DataFrame:
    """This run's failing checks: of each site's newest gated delivery, and of the marts."""
    newest: dict[tuple[str, str | None], GateResult] = {}
    for gate in results:
        key = (gate.gate, gate.site_id)
        if key not in newest or (gate.delivery_id or "") > (newest[key].delivery_id or ""):
            newest[key] = gate
    rows = [
        {"gate": g.gate, "site_id": g.site_id, "delivery_id": g.delivery_id,
         "check_id": o.check_id, "suite": o.suite, "column_name": o.column,
         "severity": o.severity, "unexpected_percent": o.unexpected_percent}
        for g in newest.values() for o in g.failures
    ]
    schema = {c: DELTA_SCHEMA[c] for c in FAILURE_COLUMNS}
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(
        schema=schema)


def compare(current: pl.DataFrame, previous: pl.DataFrame | None, run_id: str,
            previous_run_id: str | None) -> pl.DataFrame:
    """`quality.check_delta` rows: new, persisting and resolved failures (see the module)."""
    def keyed(frame: pl.DataFrame) -> dict[tuple, dict]:
        return {(r["gate"], r["site_id"], r["check_id"]): r for r in frame.iter_rows(named=True)}

    now = keyed(current)
    before = keyed(previous) if previous is not None else {}
    rows = []
    for key in sorted(now.keys() | before.keys(), key=lambda k: (k[0], k[1] or "", k[2])):
        cur, old = now.get(key), before.get(key)
        change = "resolved" if cur is None else "persisting" if old is not None else "new"
        base = cur or old
        rows.append({
            "run_id": run_id, "previous_run_id": previous_run_id,
            "gate": base["gate"], "site_id": base["site_id"],
            "delivery_id": cur["delivery_id"] if cur else None,
            "previous_delivery_id": old["delivery_id"] if old else None,
            "check_id": base["check_id"], "suite": base["suite"],
            "column_name": base["column_name"], "severity": base["severity"],
            "change": change,
            "unexpected_percent": cur["unexpected_percent"] if cur else None,
            "previous_unexpected_percent": old["unexpected_percent"] if old else None,
        })
    return pl.DataFrame(rows, schema=DELTA_SCHEMA, orient="row") if rows else pl.DataFrame(
        schema=DELTA_SCHEMA)


def previous_failures(published: Path) -> tuple[pl.DataFrame | None, str | None]:
    """The failing checks of the published file and its run id (None, None: no record)."""
    from ivig_platform.warehouse.reader import open_if_published

    con = open_if_published(published)
    if con is None:
        return None, None
    try:
        tables = {t for (t,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'quality'"
        ).fetchall()}
        if "check_delta" not in tables:
            return None, None
        run = con.execute("SELECT max(run_id) FROM quality.refresh_run").fetchone()[0]
        failing = con.execute(
            f"SELECT {', '.join(FAILURE_COLUMNS)} FROM quality.check_delta "
            "WHERE change IN ('new', 'persisting')"
        ).pl()
    finally:
        con.close()
    return failing, run


def check_deltas(results: Iterable[GateResult], published: Path, run_id: str) -> pl.DataFrame:
    """This run's `quality.check_delta` against the file published now."""
    previous, previous_run = previous_failures(published)
    return compare(current_failures(results), previous, run_id, previous_run)


def site_summary(deltas: pl.DataFrame) -> pl.DataFrame:
    """Per gate and site: the check ids new, persisting and resolved (for the report, docs)."""
    if deltas.is_empty():
        return pl.DataFrame(schema={"gate": pl.Utf8, "site_id": pl.Utf8,
                                    **{c: pl.List(pl.Utf8) for c in CHANGES}})
    return (
        deltas.group_by("gate", "site_id")
        .agg(pl.col("check_id").filter(pl.col("change") == c).sort().alias(c) for c in CHANGES)
        .sort("gate", "site_id", nulls_last=True)
    )
