"""Write a deterministic demo inbox (protocol §2) and return what a correct platform must find.

Pipeline, each step a pure function except the last:
  cohort (clean canonical rows) -> + injected faults -> + extra deliveries (a superseded older
  one, a broken newest one, a newer one the quality gate holds back) -> source rows numbered in
  file order -> rendered per site format -> written as CSV/XLSX files.
Two scenarios are aimed at the quality gate (issue 4) rather than at landing: the held-back
site's newer delivery writes CK in µkat/L but labels it U/L (it lands cleanly, then fails the
site drift check, severity error, so its older delivery stays in force), and at the sparse
``warn`` site most patients lack a post MRC (measure completeness, severity warn).
The truth (clean rows, §1 figures, identifiers, expected quarantine and delivery outcomes) is
derived from the same frames, never read back from the files, and never written to the inbox.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import polars as pl

from ivig_platform.demo import faults, files, identity, render, truth
from ivig_platform.demo.cohort import Cohort, build_cohort, rules, site_sizes
from ivig_platform.demo.figures import compute_figures
from ivig_platform.demo.rand import child_rng
from ivig_platform.demo.sites import (
    MISLABELLED_CK_UNIT,
    WARN_MEASURE,
    WARN_TIMEPOINT,
    Site,
    SiteFormat,
    make_sites,
    special_positions,
)
from ivig_platform.demo.wording import Wording, wording
from ivig_platform.protocol.load import Protocol, load_protocol

_SCHEMA: dict[str, dict[str, pl.DataType]] = {
    "patients": {
        "patient_id": pl.String(),
        "sex": pl.String(),
        "birth_date": pl.Date(),
        "ssc_subtype": pl.String(),
        "overlap": pl.List(pl.String()),
        "indication": pl.List(pl.String()),
        "ivig_stop_reason": pl.String(),
        "first_name": pl.String(),
        "surnames": pl.String(),
        "national_id": pl.String(),
        "phone": pl.String(),
    },
    "ivig_cycles": {
        "patient_id": pl.String(),
        "cycle_number": pl.Int32(),
        "start_date": pl.Date(),
        "dose_g": pl.Float64(),
        "weight_kg": pl.Float64(),
    },
    "treatments": {
        "patient_id": pl.String(),
        "drug": pl.String(),
        "drug_class": pl.String(),
        "start_date": pl.Date(),
        "end_date": pl.Date(),
    },
    "assessments": {
        "patient_id": pl.String(),
        "assessment_date": pl.Date(),
        "measure": pl.String(),
        "value": pl.Float64(),
        "grade": pl.String(),
    },
    "adverse_events": {
        "patient_id": pl.String(),
        "onset_date": pl.Date(),
        "term": pl.String(),
        "severity": pl.String(),
        "serious": pl.Boolean(),
        "related": pl.String(),
        "action": pl.String(),
    },
}
_BOOK: dict[str, pl.DataType] = {
    "site_id": pl.String(),
    "delivery_id": pl.String(),
    "_anchor": pl.Float64(),
    "_rule": pl.String(),
    "_clean": pl.Boolean(),
    "_malformed": pl.String(),
}
# The landing gate's site drift check on CK (expectations/checks/field_checks.csv): the site's
# median against the geometric median of the other sites' medians fails at >= 10x or <= 0.1x,
# judged with >= 3 values at the site and >= 3 other sites having as many.
DRIFT_FACTOR = 10.0
DRIFT_MIN_VALUES = 3
DRIFT_MIN_SITES = 3


def write_demo_inbox(
    inbox: Path,
    *,
    n_sites: int = 18,
    n_patients: int = 78,
    seed: int = 20261124,
    protocol: Protocol | None = None,
) -> truth.DemoTruth:
    """Write ``inbox/<site_id>/<delivery_id>/`` for a demo of ``n_sites`` and ``n_patients``.

    What the protocol defines (tables, columns and their aliases, vocabularies and their
    spellings, measures, windows) is read from ``protocol`` (default: the repository's),
    loaded here once and handed down; the generator keeps only demo data (names, drug
    brands, site formats, faults).  Same arguments, same bytes.  The default 78/18
    reproduces protocol §1 exactly (see ``DemoTruth.figures``); larger demos keep its
    proportions and every format variant.
    Existing files of the same names are overwritten; nothing else in ``inbox`` is touched.
    """
    inbox = Path(inbox)
    protocol = protocol if protocol is not None else load_protocol()
    words = wording(protocol.contract)
    spec = special_positions(n_sites, words)
    sites = make_sites(n_sites, words)
    rng = child_rng(seed, "cohort")
    sizes = site_sizes(n_patients, n_sites, rng)
    cohort = build_cohort(
        sites, sizes, rng, warn_candidates=spec.warn_candidates, rules=rules(protocol)
    )
    warn = cohort.warn_site
    base = _base_tables(cohort, sites, words)
    held = spec.held_back
    if held is not None and not _drift_would_fail(base, sites[held], words):
        sites, held = make_sites(n_sites, words, held_back=False), None
    reserved = {s.site_id: cohort.spare_ids[s.site_id][-1] for s in sites}
    fault_rows, kinds = _fault_rows(base, cohort, sites, words, child_rng(seed, "faults"))
    extra_frames, extra_rows = _extra_deliveries(
        base, sites, words, reserved, child_rng(seed, "deliveries")
    )
    combined = _combine(base, extra_frames, fault_rows + extra_rows, words)
    written, reported = _render_all(combined, sites, words)
    _write_files(inbox, written, sites, words)

    clean = truth.clean_tables(
        combined, reported, words, protocol.contract.derived.age_at_index.days_per_year
    )
    return truth.DemoTruth(
        seed=seed,
        n_sites=n_sites,
        n_patients=n_patients,
        clean=clean,
        figures=compute_figures(clean, protocol),
        identifiers=truth.identifiers(written, sites, words),
        expected_quarantine=truth.expected_quarantine(combined, words.tables),
        expected_deliveries=truth.expected_deliveries(written, sites, words.tables),
        delivery_dates={(s.site_id, d.isoformat()): d for s in sites for d in s.deliveries},
        site_formats={s.site_id: s.fmt for s in sites},
        dropped_columns={
            (s.site_id, d.isoformat()): tuple(h for h, _ in s.fmt.identifier_columns)
            for s in sites
            for d in s.deliveries
        },
        drug_classes=dict(
            combined["treatments"]
            .filter("_clean")
            .select("drug", "drug_class")
            .unique()
            .iter_rows()
        ),
        fault_kinds={s.site_id: tuple(k.name for k in kinds[s.index]) for s in sites},
        two_delivery_site=sites[spec.two].site_id,
        broken_newest_site=sites[spec.broken].site_id,
        held_back_site=sites[held].site_id if held is not None else None,
        held_back_delivery=sites[held].deliveries[-1].isoformat() if held is not None else None,
        warn_site=sites[warn].site_id if warn is not None else None,
        warn_measure=WARN_MEASURE if warn is not None else None,
        warn_timepoint=WARN_TIMEPOINT if warn is not None else None,
    )


# --- the quality-gate scenarios -----------------------------------------------------------


def _drift_would_fail(base: dict[str, pl.DataFrame], site: Site, words: Wording) -> bool:
    """Whether the gate's CK site drift check fails on ``site``'s newer delivery (its
    µkat/L values read as U/L), and can judge it at all: a small separate reading of the check,
    so the truth never promises a hold-back the gate cannot make (tiny demos)."""
    ck = (
        base["assessments"]
        .filter(pl.col("measure") == "ck")
        .group_by("site_id")
        .agg(n=pl.len(), median=pl.col("value").median())
        .filter(pl.col("n") >= DRIFT_MIN_VALUES)
    )
    mine = ck.filter(pl.col("site_id") == site.site_id)
    others = ck.filter(pl.col("site_id") != site.site_id)["median"]
    if mine.is_empty() or others.len() < DRIFT_MIN_SITES or not (others > 0).all():
        return False
    pooled = math.exp(float(others.log().median()))
    as_labelled = float(mine["median"][0]) * render.per_canonical(site.fmt.ck_unit, words)
    return as_labelled / pooled <= 1 / DRIFT_FACTOR


# --- building the rows ------------------------------------------------------------------


def _base_tables(cohort: Cohort, sites: list[Site], words: Wording) -> dict[str, pl.DataFrame]:
    """Clean rows in canonical form with bookkeeping: the accepted delivery of their site,
    ``_anchor`` (file position among the site's clean rows), no rule, clean.

    CK of sites writing µkat/L is rounded to what 3 decimals of µkat/L can say, so the clean
    value is exactly what landing computes from the written text."""
    accepted = {s.site_id: s.accepted_delivery.isoformat() for s in sites}
    per = {s.site_id: render.per_canonical(s.fmt.ck_unit, words) for s in sites}
    ukat = [sid for sid, p in per.items() if p != 1]
    out = {}
    for t in words.tables:
        df = cohort.table(t)
        if t == "assessments":
            per_ul = pl.col("site_id").replace_strict(per, return_dtype=pl.Float64)
            factor = pl.col("site_id").replace_strict(
                {s.site_id: words.factor("ck", s.fmt.ck_unit) for s in sites},
                return_dtype=pl.Float64,
            )
            quantised = (pl.col("value") * per_ul).round(3) * factor
            df = df.with_columns(
                value=pl.when((pl.col("measure") == "ck") & pl.col("site_id").is_in(ukat))
                .then(quantised)
                .otherwise(pl.col("value"))
            )
        out[t] = df.select(
            "site_id",
            pl.col("site_id").replace_strict(accepted, return_dtype=pl.String).alias("delivery_id"),
            pl.int_range(pl.len()).over("site_id").cast(pl.Float64).alias("_anchor"),
            pl.lit(None, dtype=pl.String).alias("_rule"),
            pl.lit(True).alias("_clean"),
            pl.lit(None, dtype=pl.String).alias("_malformed"),
            *[pl.col(c).cast(d) for c, d in _SCHEMA[t].items()],
        )
    return out


def _fault_rows(
    base: dict[str, pl.DataFrame],
    cohort: Cohort,
    sites: list[Site],
    words: Wording,
    rng: np.random.Generator,
) -> tuple[list[faults.Row], dict[int, list[faults.Kind]]]:
    """Run each site's fault scenarios against a small summary of its clean rows."""
    kinds = faults.assign_kinds(sites)
    heads = _by_site(
        cohort.patients.group_by("site_id", maintain_order=True)
        .head(8)
        .select("site_id", "patient_id", "sex", "index_date", "last_cycle_date", "n_cycles")
    )
    counts = {t: dict(base[t].group_by("site_id").len().iter_rows()) for t in words.tables}
    first_cycle = _by_site(base["ivig_cycles"].group_by("site_id", maintain_order=True).first())
    mrss = _by_site(
        base["assessments"]
        .filter(pl.col("measure") == "mrss")
        .group_by("site_id", maintain_order=True)
        .first()
    )
    rows: list[faults.Row] = []
    for s in sites:
        sid = s.site_id
        ctx = faults.SiteContext(
            site=s,
            delivery_id=s.accepted_delivery.isoformat(),
            delivery_date=s.accepted_delivery,
            patients=heads[sid],
            n_rows={t: counts[t].get(sid, 0) for t in words.tables},
            first_cycle=_pos(first_cycle[sid][0]),
            some_assessment=_pos(mrss[sid][0]) if sid in mrss else None,
            spare_ids=iter(cohort.spare_ids[sid][:-1]),
            rng=rng,
            words=words,
        )
        for kind in kinds[s.index]:
            kind.build(ctx)
        rows.extend(ctx.rows)
    return rows, kinds


def _by_site(df: pl.DataFrame) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for row in df.iter_rows(named=True):
        out[row["site_id"]].append(row)
    return out


def _pos(row: dict) -> dict:
    return {**row, "_pos": row["_anchor"]}


def _extra_deliveries(
    base: dict[str, pl.DataFrame],
    sites: list[Site],
    words: Wording,
    reserved: dict[str, str],
    rng: np.random.Generator,
) -> tuple[dict[str, list[pl.DataFrame]], list[faults.Row]]:
    """The older delivery of the two-delivery site (an earlier snapshot: one patient fewer,
    each patient's last cycle not yet given), the broken newest delivery of another site
    (a fuller snapshot with one more patient, but no assessments file) and the held-back
    newer delivery of a third (its clean snapshot again, CK in µkat/L labelled U/L)."""
    spec = special_positions(len(sites), words)
    two, broken = sites[spec.two], sites[spec.broken]
    frames: dict[str, list[pl.DataFrame]] = defaultdict(list)

    older = two.deliveries[0].isoformat()
    last_patient = base["patients"].filter(pl.col("site_id") == two.site_id)["patient_id"][-1]
    for t in words.tables:
        df = base[t].filter(
            (pl.col("site_id") == two.site_id) & (pl.col("patient_id") != last_patient)
        )
        if t == "ivig_cycles":
            n = pl.len().over("patient_id")
            df = df.filter(
                ~(
                    (pl.col("cycle_number") == pl.col("cycle_number").max().over("patient_id"))
                    & (n >= 2)
                )
            )
        frames[t].append(df.with_columns(delivery_id=pl.lit(older), _clean=pl.lit(False)))

    newest = broken.deliveries[-1].isoformat()
    for t in words.tables:
        df = base[t].filter(pl.col("site_id") == broken.site_id)
        frames[t].append(df.with_columns(delivery_id=pl.lit(newest), _clean=pl.lit(False)))
    person = identity.person_columns(np.array(["F"]), rng).row(0, named=True)
    anchor = float(base["patients"].filter(pl.col("site_id") == broken.site_id).height)
    common = {
        "site_id": broken.site_id,
        "delivery_id": newest,
        "_rule": None,
        "_clean": False,
        "_malformed": None,
        "_anchor": anchor,
        "_raw": {},
    }
    pid = reserved[broken.site_id]
    rows: list[faults.Row] = []
    rows.append(
        {
            "table": "patients",
            **common,
            "patient_id": pid,
            "sex": "F",
            "birth_date": dt.date(1968, 5, 17),
            "ssc_subtype": "limited",
            "overlap": [],
            "indication": ["skin"],
            "ivig_stop_reason": None,
            **person,
        }
    )
    rows.append(
        {
            "table": "ivig_cycles",
            **common,
            "patient_id": pid,
            "cycle_number": 1,
            "start_date": dt.date(2023, 1, 10),
            "dose_g": 120.0,
            "weight_kg": 60.0,
        }
    )

    held = next((s for s in sites if s.held_back_newest), None)
    if held is not None:
        newer = held.deliveries[-1].isoformat()
        for t in words.tables:
            df = base[t].filter(pl.col("site_id") == held.site_id)
            df = df.with_columns(delivery_id=pl.lit(newer), _clean=pl.lit(False))
            if t == "assessments":  # the unit error: values as before, the unit cell says U/L
                is_ck = pl.col("measure") == "ck"
                label = words.unit_form("ck", MISLABELLED_CK_UNIT)
                mislabelled = pl.when(is_ck).then(pl.lit(label))
                df = df.with_columns(unit__raw=mislabelled.otherwise(pl.lit(None)))
            frames[t].append(df)
    return frames, rows


def _rows_frame(table: str, rows: list[faults.Row]) -> pl.DataFrame:
    """Dict rows (faults, extra patients) -> a frame shaped like the base table, with
    ``<column>__raw`` text overrides."""
    schema = {**_BOOK, **_SCHEMA[table]}
    data = {c: [r.get(c) for r in rows] for c in schema}
    raw_cols = sorted({k for r in rows for k in r["_raw"]})
    for k in raw_cols:
        data[f"{k}__raw"] = [r["_raw"].get(k) for r in rows]
        schema[f"{k}__raw"] = pl.String()
    return pl.DataFrame(data, schema=schema)


def _combine(
    base: dict[str, pl.DataFrame],
    extra_frames: dict[str, list[pl.DataFrame]],
    rows: list[faults.Row],
    words: Wording,
) -> dict[str, pl.DataFrame]:
    """All rows of every delivery, in file order, with ``source_row`` and a unique ``_uid``.

    Faults sit between clean rows (``_anchor`` x.5 / x.25), so file order is the sort by
    (site, delivery, anchor, uid)."""
    frames: dict[str, list[pl.DataFrame]] = {t: [base[t], *extra_frames[t]] for t in words.tables}
    dict_rows: dict[str, list[faults.Row]] = defaultdict(list)
    for r in rows:
        dict_rows[r["table"]].append(r)
    for t in words.tables:
        if dict_rows[t]:
            frames[t].append(_rows_frame(t, dict_rows[t]))
    out = {}
    for t, parts in frames.items():
        df = pl.concat(parts, how="diagonal_relaxed").with_columns(_uid=pl.int_range(pl.len()))
        df = df.sort(["site_id", "delivery_id", "_anchor", "_uid"])
        out[t] = df.with_columns(
            source_row=(pl.int_range(pl.len()).over(["site_id", "delivery_id"]) + 1).cast(pl.Int32)
        )
    return out


# --- rendering and writing --------------------------------------------------------------


def _render_all(
    combined: dict[str, pl.DataFrame], sites: list[Site], words: Wording
) -> tuple[dict[truth.Key, dict[str, pl.DataFrame]], pl.DataFrame]:
    """Written text of every delivery's tables (one Polars pass per format and table), and
    the assessments' value/unit as reported, keyed by ``_uid``."""
    by_fmt: dict[SiteFormat, list[str]] = defaultdict(list)
    for s in sites:
        by_fmt[s.fmt].append(s.site_id)
    written: dict[truth.Key, dict[str, pl.DataFrame]] = defaultdict(dict)
    reported = []
    for fmt, ids in by_fmt.items():
        for t in words.tables:
            part = combined[t].filter(pl.col("site_id").is_in(ids))
            w = render.render(part, t, fmt, words)
            empty = w.clear()
            groups = w.partition_by(["site_id", "delivery_id"], as_dict=True, maintain_order=True)
            for s in (s for s in sites if s.fmt == fmt):
                for d in s.deliveries:
                    key = (s.site_id, d.isoformat())
                    written[key][t] = groups.get(key, empty)
            if t == "assessments":
                h = words.headers[fmt.headers][t]
                reported.append(
                    w.select(
                        "_uid",
                        value_as_reported=pl.col(h["value"]).str.strip_chars(),
                        unit_as_reported=pl.col(h["unit"]).str.strip_chars().replace("", None),
                    )
                )
    return written, pl.concat(reported)


def _write_files(
    inbox: Path,
    written: dict[truth.Key, dict[str, pl.DataFrame]],
    sites: list[Site],
    words: Wording,
) -> None:
    for s in sites:
        for d in s.deliveries:
            folder = inbox / s.site_id / d.isoformat()
            folder.mkdir(parents=True, exist_ok=True)
            tables = written[(s.site_id, d.isoformat())]
            names = s.tables_written(d, words.tables)
            if s.fmt.container == "xlsx":
                sheets = {
                    t: (
                        tables[t],
                        render.headers(t, s.fmt, words),
                        render.cell_kinds(t, s.fmt, words),
                    )
                    for t in names
                }
                (folder / "extract.xlsx").write_bytes(files.xlsx_bytes(sheets, d))
            else:
                for t in names:
                    data = files.csv_bytes(tables[t], render.headers(t, s.fmt, words), s.fmt)
                    (folder / f"{t}.csv").write_bytes(data)
