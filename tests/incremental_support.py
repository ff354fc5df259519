"""Support of tests/test_incremental_equals_full.py (issue 12, point 2): what "the
incrementally published warehouse equals a full rebuild" means, as a pure comparison of
two published files' tables, and the deliveries the state machine puts in its inbox.

Equal means: the same schemas and tables (views included: they are part of what an
analyst reads), the same columns, and the same rows as multisets. Left out are only the
values that name the run or the moment (`RUN_OR_MOMENT`, `NOT_COMPARED`, each with why)
and `quality.build_scope`, which says how the file was built (the one thing that must
differ). A run's own id inside a text (a drift reference's "fixed …, run <id>", a log
line) is replaced by a placeholder, so the text around it is still compared. Floats are
compared at 10 significant digits: an incremental build sums the same values in another
order (per-site partial aggregates, DuckDB's parallel hash aggregation), and floating-point
addition is not associative, so the last bits may differ while every figure shown agrees.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
from conftest import Extract, make_delivery

#: Columns (in any table) that name the run or the moment, never compared; every other
#: column of every table is. Both refreshes of a step start from the same published file,
#: so what earlier runs wrote (their ids and moments) is equal and only this run's differs.
RUN_OR_MOMENT: dict[str, str] = {
    "run_id": "each refresh is its own run: W's and W_full's differ by construction",
    "started_at": "when the run started (quality.refresh_run, run_record)",
    "built_at": "when the file was built (quality.refresh_run)",
    "recorded_at": "when the run record was written (quality.run_record)",
    "measured_at": "the moment freshness was measured (marts.mart_site_freshness)",
    "loaded_at": "when landing wrote the step's new delivery: W and W_full land it each "
                 "in its own run (landed.*, staging.stg_landed__*)",
    "landed_at": "the same moment in quality.site_delivery and its staging view",
    "accepted_loaded_at": "the same moment in marts.mart_site_freshness",
    "event_time": "when a delivery event happened (quality.delivery_event)",
}

#: Columns of one table left out, with why.
NOT_COMPARED: dict[tuple[str, str], str] = {
    ("quality.run_record", "parameters"):
        "the run's invocation: the warehouse folder and the full-refresh flag differ by "
        "construction",
    ("quality.run_record", "outputs"):
        "row counts and hashes of the published tables, which are compared here directly "
        "(mart_site_freshness's hash covers its measured_at)",
}

#: Tables left out of the row comparison (they must still exist in both files), with why.
NOT_COMPARED_TABLES: dict[str, str] = {
    "quality.build_scope":
        "how the file was built: one row per site the build wrote, with the mode and its "
        "reason — every site of a full build, the changed ones of an incremental one; "
        "the one table that must differ (the test checks it against changes.py instead)",
}
BUILD_SCOPE = "quality.build_scope"

RUN_PLACEHOLDER = "<this run>"
SIGNIFICANT_DIGITS = 10
SHOWN_ROWS = 5


def published_tables(warehouse: Path) -> tuple[dict[str, pl.DataFrame], str]:
    """Every table and view of `warehouse/ivig.duckdb` (read-only) by `schema.name`, and
    the run id of the file (`quality.refresh_run`)."""
    con = duckdb.connect(str(warehouse / "ivig.duckdb"), read_only=True)
    try:
        names = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database() ORDER BY 1, 2").fetchall()
        frames = {f"{schema}.{name}": con.sql(f'SELECT * FROM "{schema}"."{name}"').pl()
                  for schema, name in names}
        run_id = con.execute("SELECT run_id FROM quality.refresh_run").fetchone()[0]
    finally:
        con.close()
    return frames, run_id


def normalised(frame: pl.DataFrame, table: str, run_id: str) -> pl.DataFrame:
    """`frame` as compared: run/moment columns dropped, the run's id replaced in texts,
    floats rounded to `SIGNIFICANT_DIGITS`, columns in name order, rows sorted by all."""
    dropped = set(RUN_OR_MOMENT) | {c for t, c in NOT_COMPARED if t == table}
    kept = sorted(c for c in frame.columns if c not in dropped)
    frame = frame.select(kept).with_columns(
        [pl.col(c).str.replace_all(run_id, RUN_PLACEHOLDER, literal=True)
         for c in kept if frame.schema[c] == pl.String]
        + [pl.col(c).round_sig_figs(SIGNIFICANT_DIGITS)
           for c in kept if frame.schema[c].is_float()])
    return frame.sort(kept, nulls_last=True) if kept else frame


@dataclass(frozen=True)
class Published:
    """One published file's tables and the id of the run that built it."""

    tables: Mapping[str, pl.DataFrame]
    run_id: str


def first_difference(incremental: Published, full: Published) -> str | None:
    """Where the two files differ first (table set, a table's columns, its rows), as a
    message with a few rows of each side; None when they are equal."""
    names_i, names_f = set(incremental.tables), set(full.tables)
    if names_i != names_f:
        return (f"tables only in the incremental file: {sorted(names_i - names_f)}; "
                f"only in the full one: {sorted(names_f - names_i)}")
    for name in sorted(names_i - set(NOT_COMPARED_TABLES)):
        a = normalised(incremental.tables[name], name, incremental.run_id)
        b = normalised(full.tables[name], name, full.run_id)
        if a.schema != b.schema:
            return f"{name}: columns differ: {dict(a.schema)} vs {dict(b.schema)}"
        if not a.equals(b, null_equal=True):
            only_a = a.join(b, on=a.columns, how="anti", nulls_equal=True)
            only_b = b.join(a, on=b.columns, how="anti", nulls_equal=True)
            return (f"{name}: rows differ ({a.height} incremental, {b.height} full); "
                    f"only incremental:\n{only_a.head(SHOWN_ROWS)}\n"
                    f"only full:\n{only_b.head(SHOWN_ROWS)}")
    return None


# ------------------------------------------------------------------ the inbox's deliveries

#: The demo's sites beyond the four of the background inbox: in the study's site registry
#: (dbt's `reference.site_registry`), so they are sites the marts know.
FIRST_DELIVERY_ID = date(2026, 11, 20)  # after every delivery of the background demo inbox


@dataclass
class Site:
    """A site the machine delivers for: its `Extract` (the data in force) and whether its
    folder is still in the inbox."""

    site_id: str
    extract: Extract
    present: bool = True


def ck_site_extract() -> Extract:
    """The conftest delivery with a third CK value, so the gate's drift check judges the
    site (it needs 3 values) and the site counts in the others' pooled reference."""
    extract = Extract()
    extract.append("assessments", patient_id="100234", measure="ck", value="640", unit="U/L")
    return extract


def mislabelled_ck(extract: Extract) -> Extract:
    """The held-back scenario of the demo (ivig_platform/demo/generator.py): CK written in
    µkat/L (U/L ÷ 60) under the label U/L. Landing accepts it; the gate's site drift check
    (error) holds it back, and the delivery before it stays in force."""
    wrong = copy.deepcopy(extract)
    header = wrong.header("assessments")
    measure, value = header.index("measure"), header.index("value")
    for row in wrong.rows("assessments"):
        if row[measure] == "ck":
            row[value] = f"{float(row[value]) / 60:.2f}"
    return wrong


def changed_cell(extract: Extract, n: int) -> Extract:
    """The same delivery with one cell changed: the mRSS of patient 100781 (15 + n)."""
    changed = copy.deepcopy(extract)
    header = changed.header("assessments")
    measure, value = header.index("measure"), header.index("value")
    row = next(r for r in changed.rows("assessments") if r[measure] == "mrss")
    row[value] = str(15 + n)
    return changed


class Inbox:
    """The machine's inbox: a background demo inbox plus the sites it delivers for.

    Delivery ids are consecutive days from FIRST_DELIVERY_ID, so each new one is the
    site's newest.
    """

    def __init__(self, root: Path) -> None:
        self.root = root  # make_delivery writes root/inbox/<site>/<delivery>/
        self.path = root / "inbox"
        self._next = 0

    def next_delivery_id(self) -> str:
        self._next += 1
        return (FIRST_DELIVERY_ID + timedelta(days=self._next)).isoformat()

    def deliver(self, site_id: str, extract: Extract, *, without: str | None = None) -> str:
        """Write a delivery of `extract` (CSV), without the table `without` if given."""
        delivery_id = self.next_delivery_id()
        tables = {name: text for name, text in extract.csv_tables().items() if name != without}
        make_delivery(self.root, site_id, delivery_id, tables)
        return delivery_id

    def remove(self, site_id: str) -> None:
        shutil.rmtree(self.path / site_id)
