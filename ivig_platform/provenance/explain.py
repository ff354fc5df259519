"""`ivig explain`: where a row of a mart or landed table came from, down to the site's cells.

For each row of TABLE matching a WHERE condition in the published file, the source rows
it rests on: site, delivery, file (relative to the delivery folder; `extract.xlsx[sheet]`
for a workbook), source row (1 = the first data row), the file's SHA-256 and the cells as
the site wrote them (non-identifier columns only, protocol §6; `landed_cells`).

What "came from" means per table:

* `landed.<table>`: the row itself (its provenance columns).
* `fct_assessment`, `fct_ivig_cycle`, `fct_adverse_event`: the landed row of the
  measurement, cycle or event (joined on its key: patient, measure and date; patient and
  cycle number; the event's id, which is made of its provenance).
* `dim_patient`: the patient's row, and in `sources` the rows that set its derived
  columns: every landed cycle (n_cycles, total dose; the first sets the index date and
  age at index, the last the last cycle date) and every treatment overlapping the IVIG
  period whose class sets an `on_<class>` flag.
* `mart_efficacy`: one record per complete (patient, baseline, post) pair the row was
  computed from (the pairs `efficacy_table` counts in `n_paired`); with depth >= 1 each
  pair's `sources` are the landed rows of the baseline and the post measurement, with
  depth >= 2 also the patient's row and the rows that set its subgroup and flags.

The condition is SQL run against the published file opened read-only; anything but a
single expression is refused before the file is opened (no `;`, no comment, balanced
parentheses), so it cannot close the query's `WHERE (…)` and add another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from ivig_platform.provenance.cells import SCHEMA as CELLS_SCHEMA

PROVENANCE = ("site_id", "delivery_id", "source_file", "source_row", "file_sha256")
LANDED_TABLES = ("patients", "ivig_cycles", "treatments", "assessments", "adverse_events")
# Therapy class (intermediate.int_treatments_classified) → the dim_patient flag it sets.
THERAPY_FLAGS = {
    "corticosteroid": "on_corticosteroid",
    "immunosuppressant": "on_immunosuppressant",
    "biologic": "on_biologic",
    "other": "on_other_therapy",
}


class ExplainError(ValueError):
    """The request cannot be answered: unknown table, unsafe condition, no published file."""


@dataclass(frozen=True)
class Mart:
    """How the rows of a mart map to landed rows: the landed table and the join columns."""

    landed: str
    join: tuple[str, ...]
    key: tuple[str, ...]  # the columns that identify the explained row in the output
    via: str | None = None  # a staging view carrying the provenance, when the key is an id


MARTS: dict[str, Mart] = {
    "fct_assessment": Mart("assessments", ("patient_key", "measure", "assessment_date"),
                           ("patient_key", "measure", "assessment_date", "value",
                            "analysis_timepoint")),
    "fct_ivig_cycle": Mart("ivig_cycles", ("patient_key", "cycle_number"),
                           ("patient_key", "cycle_number", "start_date", "dose_g")),
    "fct_adverse_event": Mart("adverse_events", ("adverse_event_id",),
                              ("adverse_event_id", "patient_key", "onset_date", "term"),
                              via="staging.stg_landed__adverse_events"),
    "dim_patient": Mart("patients", ("patient_key",), ("patient_key",)),
}
SUPPORTED = tuple(f"marts.{name}" for name in (*MARTS, "mart_efficacy")) + tuple(
    f"landed.{name}" for name in LANDED_TABLES)


def check_condition(where: str) -> str:
    """The condition, if it is one SQL expression; else `ExplainError` saying why.

    Quoted text ('…' and "…") may hold anything; outside it a `;` (a second statement),
    a comment (`--`, `/*`, which could hide the rest of the query) or a parenthesis
    closing more than was opened (which would close the query's `WHERE (`) is refused.
    """
    text = where.strip()
    if not text:
        raise ExplainError("the WHERE condition is empty (use 'true' for every row)")
    depth, quote, i = 0, "", 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == ";":
            raise ExplainError("the WHERE condition must be a single expression: ';' refused")
        elif text.startswith(("--", "/*"), i):
            raise ExplainError("the WHERE condition must not hold a comment (-- or /*)")
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ExplainError("the WHERE condition closes a parenthesis it did not open")
        i += 1
    if quote:
        raise ExplainError(f"the WHERE condition leaves a {quote} quote open")
    if depth:
        raise ExplainError("the WHERE condition leaves a parenthesis open")
    return text


def resolve_table(name: str) -> str:
    """`schema.table` for a name given with or without its schema (marts first)."""
    wanted = name.strip().lower()
    for full in SUPPORTED:
        if wanted in (full, full.split(".", 1)[1]):
            return full
    raise ExplainError(f"cannot explain {name!r}: explain knows {', '.join(SUPPORTED)}")


def explain(warehouse: str | Path, table: str, where: str = "true", *, depth: int = 0,
            database: str | Path | None = None) -> list[dict[str, Any]]:
    """Where each row of `table` matching `where` came from (see the module's doc).

    `warehouse`: the warehouse folder (its published `ivig.duckdb` is read), or pass the
    file itself as `database`. Returns one dict per explained row (per pair for
    `mart_efficacy`) with `table`, `row` (the explained row's identifying values), `role`,
    `site_id`, `delivery_id`, `source_file`, `source_row`, `file_sha256`, `cells` and,
    where other rows contributed, `sources` (records of the same shape).
    """
    from ivig_platform.warehouse.publish import published_path
    from ivig_platform.warehouse.reader import open_if_published

    full = resolve_table(table)
    condition = check_condition(where)
    if depth < 0:
        raise ExplainError("--depth must be 0 or more")
    path = Path(database) if database is not None else published_path(Path(warehouse))
    con = open_if_published(path)
    if con is None:
        raise ExplainError(f"no published warehouse at {path} (run `ivig refresh` first)")
    # a session setting, not a connect option: a caller's own connection to the same
    # file (other options) must not make explain fail; `--json` output stays JSON only
    con.execute("SET enable_progress_bar = false")
    try:
        return _Explainer(con).explain(full, condition, depth)
    except duckdb.Error as exc:
        raise ExplainError(f"the WHERE condition does not run on {full}: "
                           f"{str(exc).splitlines()[0]}") from None
    finally:
        con.close()


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN: not a JSON number
        return None
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _record(table: str, row: dict[str, Any], role: str, source: dict[str, Any] | None,
            cells: dict[str, str | None] | None) -> dict[str, Any]:
    source = source or {}
    return {
        "table": table,
        "row": {k: _jsonable(v) for k, v in row.items()},
        "role": role,
        **{k: source.get(k) for k in PROVENANCE},
        "cells": cells if cells is not None else {},
    }


class _Explainer:
    """Queries on one read-only connection; each method returns records."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        present = con.execute("SELECT table_schema || '.' || table_name FROM "
                              "information_schema.tables").fetchall()
        self.present = {p for (p,) in present}

    def frame(self, sql: str, params: dict | None = None) -> pl.DataFrame:
        return self.con.execute(sql, params or {}).pl()

    def explain(self, full: str, condition: str, depth: int) -> list[dict[str, Any]]:
        if full not in self.present:
            raise ExplainError(f"{full} is not in this warehouse")
        schema, name = full.split(".", 1)
        if schema == "landed":
            rows = self.frame(f"SELECT * FROM landed.{name} WHERE ({condition})")
            return self.landed_records(name, rows)
        if name == "mart_efficacy":
            return self.efficacy(condition, depth)
        mart = MARTS[name]
        rows = self.frame(f"SELECT * FROM marts.{name} WHERE ({condition})")
        records = self.mart_records(name, mart, rows)
        if name == "dim_patient":
            self.add_patient_sources(records)
        return records

    # ------------------------------------------------------------------ landed rows

    def cells(self, table: str, sources: pl.DataFrame) -> dict[tuple, dict[str, str | None]]:
        """(site, delivery, file, row) → the cells as reported, for the given source rows."""
        if f"{CELLS_SCHEMA}.{table}" not in self.present or sources.is_empty():
            return {}
        self.con.register("explain_keys", sources.select(PROVENANCE[:4]).unique())
        try:
            found = self.frame(
                f"SELECT c.* FROM {CELLS_SCHEMA}.{table} c JOIN explain_keys k "
                "USING (site_id, delivery_id, source_file, source_row)"
            )
        finally:
            self.con.unregister("explain_keys")
        texts = [c for c in found.columns if c not in PROVENANCE]
        return {
            tuple(r[k] for k in PROVENANCE[:4]): {c: r[c] for c in texts}
            for r in found.iter_rows(named=True)
        }

    def landed_records(self, table: str, rows: pl.DataFrame) -> list[dict[str, Any]]:
        """A landed row is its own source: its typed values, provenance and cells."""
        cells = self.cells(table, rows)
        return [
            _record(f"landed.{table}",
                    {k: v for k, v in r.items() if k not in PROVENANCE and k != "loaded_at"},
                    "row", r, cells.get(tuple(r[k] for k in PROVENANCE[:4])))
            for r in rows.iter_rows(named=True)
        ]

    # ------------------------------------------------------------------ marts

    def mart_records(self, name: str, mart: Mart, rows: pl.DataFrame) -> list[dict[str, Any]]:
        """One record per mart row, with the landed row it was made from."""
        if rows.is_empty():
            return []
        source = mart.via or f"landed.{mart.landed}"
        wanted = rows.select(*mart.join, *(c for c in ("site_id", "delivery_id")
                                           if c in rows.columns and c not in mart.join))
        joined = wanted.join(
            self.frame(f"SELECT {', '.join(dict.fromkeys((*mart.join, *PROVENANCE)))} "
                       f"FROM {source}"),
            on=[c for c in wanted.columns], how="left",
        )
        by_key = {tuple(r[c] for c in mart.join): r for r in joined.iter_rows(named=True)}
        cells = self.cells(mart.landed, joined.drop_nulls("source_row"))
        out = []
        for r in rows.iter_rows(named=True):
            found = by_key.get(tuple(r[c] for c in mart.join), {})
            out.append(_record(
                f"marts.{name}", {k: r[k] for k in mart.key if k in r}, "row", found,
                cells.get(tuple(found.get(k) for k in PROVENANCE[:4])) if found else None,
            ))
        return out

    def add_patient_sources(self, records: list[dict[str, Any]]) -> None:
        """The cycles and treatments that set each patient's derived columns."""
        keys = [r["row"]["patient_key"] for r in records]
        if not keys:
            return
        cycles = self.frame(
            "SELECT patient_key, cycle_number, start_date, dose_g, "
            f"{', '.join(PROVENANCE)} FROM landed.ivig_cycles "
            "WHERE patient_key IN (SELECT unnest($keys)) ORDER BY patient_key, start_date, "
            "cycle_number", {"keys": keys},
        ).with_columns(
            (pl.col("start_date") == pl.col("start_date").min().over("patient_key"))
            .alias("_first"),
            (pl.col("start_date") == pl.col("start_date").max().over("patient_key"))
            .alias("_last"),
        )
        treatments = self.therapy_rows(keys)
        sources: dict[str, list[dict[str, Any]]] = {k: [] for k in keys}
        cycle_cells = self.cells("ivig_cycles", cycles)
        for r in cycles.iter_rows(named=True):
            role = "ivig_cycle: n_cycles, total_dose_g" + (
                "; index_date, age_at_index" if r["_first"] else "") + (
                "; last_cycle_date" if r["_last"] else "")
            sources[r["patient_key"]].append(_record(
                "landed.ivig_cycles",
                {k: r[k] for k in ("patient_key", "cycle_number", "start_date", "dose_g")},
                role, r, cycle_cells.get(tuple(r[k] for k in PROVENANCE[:4]))))
        treatment_cells = self.cells("treatments", treatments)
        for r in treatments.iter_rows(named=True):
            sources[r["patient_key"]].append(_record(
                "landed.treatments",
                {k: r[k] for k in ("patient_key", "drug_as_reported", "drug_class",
                                   "start_date", "end_date")},
                f"treatment overlapping the IVIG period: {THERAPY_FLAGS[r['drug_class']]}", r,
                treatment_cells.get(tuple(r[k] for k in PROVENANCE[:4]))))
        for record in records:
            record["sources"] = sources[record["row"]["patient_key"]]

    def therapy_rows(self, keys: list[str]) -> pl.DataFrame:
        needed = {"intermediate.int_treatments_ivig_overlap", "staging.stg_landed__treatments"}
        if not needed <= self.present:
            return pl.DataFrame(schema={"patient_key": pl.Utf8, "drug_class": pl.Utf8})
        return self.frame(
            "SELECT o.patient_key, o.drug_as_reported, o.drug_class, o.start_date, "
            "o.end_date, s.site_id, s.delivery_id, s.source_file, s.source_row, s.file_sha256 "
            "FROM intermediate.int_treatments_ivig_overlap o "
            "JOIN staging.stg_landed__treatments s USING (treatment_id) "
            "WHERE o.overlaps_ivig_period AND o.drug_class IN (SELECT unnest($classes)) "
            "AND o.patient_key IN (SELECT unnest($keys)) ORDER BY o.patient_key, s.source_row",
            {"keys": keys, "classes": list(THERAPY_FLAGS)},
        )

    # ------------------------------------------------------------------ mart_efficacy

    def efficacy(self, condition: str, depth: int) -> list[dict[str, Any]]:
        from ivig_platform.stats.efficacy import efficacy_pairs

        rows = self.frame(
            "SELECT subgroup, subgroup_value, measure FROM marts.mart_efficacy "
            f"WHERE ({condition})")
        if rows.is_empty():
            return []
        patients = self.frame("SELECT * FROM marts.dim_patient")
        assessments = self.frame("SELECT * FROM marts.fct_assessment")
        pairs = efficacy_pairs(assessments, patients).join(
            rows, on=["subgroup", "subgroup_value", "measure"], how="semi"
        ).join(patients.select("patient_key", "site_id", "delivery_id"), on="patient_key",
               how="left")
        flagged = assessments.filter(pl.col("analysis_timepoint").is_in(["baseline", "post"]))
        out = []
        for r in pairs.iter_rows(named=True):
            record = _record(
                "marts.mart_efficacy",
                {k: r[k] for k in ("subgroup", "subgroup_value", "measure")},
                "pair", {"site_id": r["site_id"], "delivery_id": r["delivery_id"]}, None)
            record["pair"] = {"patient_key": r["patient_key"], "baseline": r["baseline"],
                              "post": r["post"]}
            out.append(record)
        if depth >= 1 and out:
            self.add_pair_sources(out, flagged, depth)
        return out

    def add_pair_sources(self, records: list[dict[str, Any]], flagged: pl.DataFrame,
                         depth: int) -> None:
        wanted = pl.DataFrame([{"patient_key": r["pair"]["patient_key"],
                                "measure": r["row"]["measure"]} for r in records]).unique()
        rows = flagged.join(wanted, on=["patient_key", "measure"], how="semi")
        measured = self.mart_records("fct_assessment", MARTS["fct_assessment"], rows)
        by_pair: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for m in measured:
            m["role"] = str(m["row"]["analysis_timepoint"])
            by_pair.setdefault((m["row"]["patient_key"], m["row"]["measure"]), []).append(m)
        patients: dict[str, dict[str, Any]] = {}
        if depth >= 2:
            keys = sorted({r["pair"]["patient_key"] for r in records})
            found = self.frame("SELECT * FROM marts.dim_patient WHERE patient_key IN "
                               "(SELECT unnest($keys))", {"keys": keys})
            patient_records = self.mart_records("dim_patient", MARTS["dim_patient"], found)
            self.add_patient_sources(patient_records)
            for p in patient_records:
                p["role"] = "patient: subgroup membership and analysis flags"
                patients[p["row"]["patient_key"]] = p
        for record in records:
            key = record["pair"]["patient_key"]
            sources = sorted(by_pair.get((key, record["row"]["measure"]), []),
                             key=lambda m: m["role"])  # baseline before post
            if key in patients:
                sources.append(patients[key])
            record["sources"] = sources
