"""The truth about a demo inbox: what a correct platform lands, quarantines and publishes.

Derived from the generator's frames (never read back from the files) and never written into
the inbox.  ``DemoTruth`` is what tests of landing, dbt and the stats compare against.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from ivig_platform.demo.sites import Site, SiteFormat
from ivig_platform.demo.wording import Wording

Key = tuple[str, str]  # (site_id, delivery_id)

# Canonical columns of the truth's clean tables (landed form, with real ids and birth dates).
CLEAN_COLUMNS: dict[str, tuple[str, ...]] = {
    "patients": (
        "patient_id",
        "sex",
        "birth_date",
        "age_at_index",
        "ssc_subtype",
        "overlap",
        "indication",
        "ivig_stop_reason",
    ),
    "ivig_cycles": ("patient_id", "cycle_number", "start_date", "dose_g", "weight_kg"),
    "treatments": ("patient_id", "drug", "start_date", "end_date"),
    "assessments": (
        "patient_id",
        "assessment_date",
        "measure",
        "value",
        "value_as_reported",
        "unit_as_reported",
    ),
    "adverse_events": (
        "patient_id",
        "onset_date",
        "term",
        "severity",
        "serious",
        "related",
        "action",
    ),
}


@dataclass(frozen=True)
class DemoTruth:
    """What landing, dbt and the stats must reproduce from the demo inbox (never in the inbox).

    ``clean``: per table, the rows landing must land for the accepted deliveries, canonical
    (real ``patient_id``, canonical categories, CK in U/L, dates as dates), with ``site_id``,
    ``delivery_id`` and ``source_row`` (1 = first data row of the file/sheet).
    ``figures``: protocol §1's figures computed from ``clean`` per §7 (``figures.py``).
    ``identifiers``: every direct identifier written anywhere in the inbox, as written.
    ``expected_quarantine``: (site_id, delivery_id, table, source_row, rule) per bad row.
    ``expected_deliveries``: (site_id, delivery_id, status, reason code or None, source_rows);
    source_rows counts the data rows of the files present.
    ``held_back_site`` / ``held_back_delivery``: the site whose newer delivery lands cleanly but
    writes CK in µkat/L labelled U/L, and that delivery: the quality gate's site drift check
    (severity error) fails on it, so it is rejected with reason ``quality_gate`` and the site's
    older delivery stays in force (its rows are the site's rows in ``clean``; none of the newer
    delivery's rows is in ``expected_quarantine``).
    ``warn_site`` / ``warn_measure`` / ``warn_timepoint``: the sparse site where more than half
    of the patients followed for the measure lack a value in that §7 window, so the gate's
    measure completeness check (severity warn) fails; those patients leave the pairing and the
    §1 figures still hold.  Each is None in demos too small for the gate to judge it.
    """

    seed: int
    n_sites: int
    n_patients: int
    clean: dict[str, pl.DataFrame]
    figures: dict[str, float]
    identifiers: list[str]
    expected_quarantine: list[tuple[str, str, str, int, str]]
    expected_deliveries: list[tuple[str, str, str, str | None, int]]
    delivery_dates: dict[Key, dt.date]
    site_formats: dict[str, SiteFormat]
    dropped_columns: dict[Key, tuple[str, ...]]
    drug_classes: dict[str, str]
    fault_kinds: dict[str, tuple[str, ...]]
    two_delivery_site: str
    broken_newest_site: str
    held_back_site: str | None = None
    held_back_delivery: str | None = None
    warn_site: str | None = None
    warn_measure: str | None = None
    warn_timepoint: str | None = None


def clean_tables(
    combined: dict[str, pl.DataFrame],
    reported: pl.DataFrame,
    words: Wording,
    days_per_year: float,
) -> dict[str, pl.DataFrame]:
    """The clean rows of the accepted deliveries in landed form: age at index from the first
    clean cycle (NULL without one), value/unit of assessments as the files report them."""
    book = ["site_id", "delivery_id", "source_row"]
    clean = {t: combined[t].filter(pl.col("_clean")) for t in words.tables}
    index = (
        clean["ivig_cycles"]
        .group_by("site_id", "patient_id")
        .agg(index_date=pl.col("start_date").min())
    )
    clean["patients"] = (
        clean["patients"]
        .join(index, on=["site_id", "patient_id"], how="left", maintain_order="left")
        .with_columns(
            age_at_index=(
                (pl.col("index_date") - pl.col("birth_date")).dt.total_days() / days_per_year
            ).round(1)
        )
    )
    clean["assessments"] = clean["assessments"].join(
        reported, on="_uid", how="left", maintain_order="left"
    )
    return {t: clean[t].select(*book, *CLEAN_COLUMNS[t]) for t in words.tables}


def identifiers(
    written: dict[Key, dict[str, pl.DataFrame]], sites: list[Site], words: Wording
) -> list[str]:
    """Every record number, birth date (as written; ISO for XLSX date cells) and value of an
    extra identifier column, in any delivery (accepted, superseded or rejected)."""
    values: list[pl.Series] = []
    for site in sites:
        h = words.headers[site.fmt.headers]
        for d in site.deliveries:
            tables = written[(site.site_id, d.isoformat())]
            values.extend(
                tables[t][h[t]["patient_id"]] for t in site.tables_written(d, words.tables)
            )
            pts = tables["patients"]
            values.append(pts[h["patients"]["birth_date"]])
            values.extend(pts[col] for col, _ in site.fmt.identifier_columns)
    s = pl.concat([v.cast(pl.String) for v in values]).drop_nulls().unique()
    return sorted(v for v in s.to_list() if v.strip())


def expected_quarantine(
    combined: dict[str, pl.DataFrame], tables: tuple[str, ...]
) -> list[tuple[str, str, str, int, str]]:
    """(site_id, delivery_id, table, source_row, rule) of every injected bad row, sorted."""
    out = []
    for t in tables:
        q = combined[t].filter(pl.col("_rule").is_not_null())
        out.extend(
            (s, d, t, int(r), rule)
            for s, d, r, rule in q.select(
                "site_id", "delivery_id", "source_row", "_rule"
            ).iter_rows()
        )
    return sorted(out)


def expected_deliveries(
    written: dict[Key, dict[str, pl.DataFrame]], sites: list[Site], tables: tuple[str, ...]
) -> list[tuple[str, str, str, str | None, int]]:
    """(site_id, delivery_id, status, reason code, source_rows) of every delivery: the newest
    usable one accepted, older ones superseded, the broken newest rejected (missing_table), the
    held-back newest rejected by the quality gate (quality_gate)."""
    out = []
    for s in sites:
        for d in s.deliveries:
            rows = sum(
                written[(s.site_id, d.isoformat())][t].height for t in s.tables_written(d, tables)
            )
            if s.rejected_newest and d == s.deliveries[-1]:
                status, reason = "rejected", "missing_table"
            elif s.held_back_newest and d == s.deliveries[-1]:
                status, reason = "rejected", "quality_gate"
            elif d == s.accepted_delivery:
                status, reason = "accepted", None
            else:
                status, reason = "superseded", None
            out.append((s.site_id, d.isoformat(), status, reason, rows))
    return out
