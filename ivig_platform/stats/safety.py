"""Safety table (``marts.mart_safety``, protocol §1 safety figures and §8) — no I/O."""

from __future__ import annotations

import polars as pl

from ivig_platform.stats._frames import analysed_patients, require_columns
from ivig_platform.stats.spec import SafetySpec

NOT_RECORDED = "not_recorded"


def event_sections(spec: SafetySpec) -> tuple[tuple[str, pl.Expr, tuple[str, ...]], ...]:
    """Event-level sections: (section, category expression, fixed categories shown even at
    0: the contract's codes, in order). Values outside the fixed list (should dbt let one
    through) get their own row, after the fixed ones, rather than being dropped. The
    ``serious`` flag reads as the codes of its yes/no vocabulary (which must be yes, no)."""
    serious = pl.col("serious")
    yes_no = pl.when(serious).then(pl.lit("yes")).when(~serious).then(pl.lit("no"))
    return (
        ("term", pl.col("term").cast(pl.String), ()),
        ("severity", pl.col("severity").cast(pl.String), spec.severity),
        ("seriousness", yes_no, spec.seriousness),
        ("related", pl.col("related").cast(pl.String), spec.related),
        ("action", pl.col("action").cast(pl.String), spec.action),
    )


def default_spec() -> SafetySpec:
    """The codes of the contract in force and the primary plan's safety definitions."""
    from ivig_platform.protocol.in_force import protocol_in_force

    return SafetySpec.from_protocol(protocol_in_force())

#: Output schema of ``safety_table``.
SAFETY_SCHEMA: dict[str, pl.DataType] = {
    "section": pl.String(),
    "category": pl.String(),
    "n_events": pl.Int64(),
    "n_patients": pl.Int64(),
    "pct_patients": pl.Float64(),
    "events_per_100_cycles": pl.Float64(),
    "n_patients_analysed": pl.Int64(),
    "n_cycles": pl.Int64(),
}

_AE_COLUMNS = ("patient_key", "term", "severity", "serious", "related", "action")
_PATIENT_COLUMNS = ("patient_key", "n_cycles", "ivig_stop_reason")
_CYCLE_COLUMNS = ("patient_key",)


def safety_table(
    adverse_events: pl.DataFrame, patients: pl.DataFrame, cycles: pl.DataFrame,
    spec: SafetySpec | None = None,
) -> pl.DataFrame:
    """Adverse events and discontinuations (mart_safety), long format.

    ``spec``: the fixed categories (the contract's codes) and the codes of "discontinued
    after an adverse event" (the plan's ``safety``); default: the protocol in force. The
    categories below are v1's.

    Inputs: ``adverse_events`` like ``marts.fct_adverse_event`` (uses ``patient_key``,
    ``term``, ``severity``, ``serious``, ``related``, ``action``), ``patients`` like
    ``marts.dim_patient`` (``patient_key``, ``n_cycles``, ``ivig_stop_reason``), ``cycles``
    like ``marts.fct_ivig_cycle`` (``patient_key``; one row per landed cycle).

    Population: the analysed patients, those with ``n_cycles`` > 0 (at least one landed
    cycle, §7). Their number is the denominator of ``pct_patients``; their rows in
    ``cycles`` are the denominator of ``events_per_100_cycles``. Events and cycles of other
    patients (or of keys absent from ``patients``) are ignored.

    Grain: one row per ``section`` x ``category``, in this order:

    ======================  ===============================================================
    section                 categories
    ======================  ===============================================================
    ``overall``             ``any`` — every event
    ``term``                each preferred term (by n_events descending, then term)
    ``severity``            ``mild``, ``moderate``, ``severe``
    ``seriousness``         ``yes``, ``no`` (the ``serious`` flag)
    ``related``             ``yes``, ``no``, ``unknown``
    ``action``              ``none``, ``interrupted``, ``discontinued``
    ``discontinuation``     ``any`` (IVIG stopped for any reason), ``adverse_event``,
                            ``inefficacy``, ``other`` (by ``ivig_stop_reason``), and
                            ``followed_adverse_event``: stopped for ``adverse_event`` or
                            with an event whose ``action`` is ``discontinued``
    ======================  ===============================================================

    Fixed categories appear even when 0. In every event section, a null value is the
    category ``not_recorded`` (shown only when it occurs) and an unexpected value gets
    its own row, so the event counts of a section add up to the ``overall`` one.

    Columns (``SAFETY_SCHEMA``):
      * ``n_events``: events in the category (null in ``discontinuation``, which counts
        patients).
      * ``n_patients``: distinct patients with >= 1 event in the category (a patient can
        count in several categories of a section); in ``discontinuation``, patients.
      * ``pct_patients``: 100 x n_patients / n_patients_analysed (null when no patient).
      * ``events_per_100_cycles``: 100 x n_events / n_cycles (null when no cycle or in
        ``discontinuation``).
      * ``n_patients_analysed``, ``n_cycles``: the two denominators, repeated on every row.

    Counts are exact (BIGINT); small-count masking (§6) is the report's job.
    """
    spec = spec or default_spec()
    require_columns(adverse_events, _AE_COLUMNS, "adverse_events")
    require_columns(patients, _PATIENT_COLUMNS, "patients")
    require_columns(cycles, _CYCLE_COLUMNS, "cycles")
    analysed = analysed_patients(patients).select(
        "patient_key", pl.col("ivig_stop_reason").cast(pl.String)
    )
    keys = analysed.select("patient_key")
    n_analysed = analysed.height
    n_cycles = (
        cycles.select(pl.col("patient_key").cast(pl.String)).join(
            keys, on="patient_key", how="semi"
        )
    ).height
    events = adverse_events.with_columns(pl.col("patient_key").cast(pl.String)).join(
        keys, on="patient_key", how="semi"
    )

    parts = [
        events.select(
            section=pl.lit("overall"),
            category=pl.lit("any"),
            n_events=pl.len(),
            n_patients=pl.col("patient_key").n_unique(),
        )
    ]
    for section, category, fixed in event_sections(spec):
        counts = events.group_by(category.fill_null(NOT_RECORDED).alias("category")).agg(
            n_events=pl.len(), n_patients=pl.col("patient_key").n_unique()
        )
        ordered = _with_fixed(counts, fixed, by_size=not fixed)
        parts.append(
            ordered.select(pl.lit(section).alias("section"), "category", "n_events", "n_patients")
        )
    parts.append(_discontinuation(analysed, events, spec))

    return (
        pl.concat(
            [p.with_columns(pl.col("n_events", "n_patients").cast(pl.Int64)) for p in parts],
            how="vertical",
        )
        .with_columns(
            pct_patients=_percent(pl.col("n_patients"), n_analysed),
            events_per_100_cycles=_percent(pl.col("n_events"), n_cycles),
            n_patients_analysed=pl.lit(n_analysed, dtype=pl.Int64),
            n_cycles=pl.lit(n_cycles, dtype=pl.Int64),
        )
        .select(pl.col(c).cast(dtype) for c, dtype in SAFETY_SCHEMA.items())
    )


def _percent(count: pl.Expr, denominator: int) -> pl.Expr:
    if denominator == 0:
        return pl.lit(None, dtype=pl.Float64)
    return 100.0 * count.cast(pl.Float64) / denominator


def _with_fixed(counts: pl.DataFrame, fixed: tuple[str, ...], *, by_size: bool) -> pl.DataFrame:
    """``counts`` plus zero rows for absent fixed categories; fixed ones first, in order.

    Other categories follow, by n_events descending (``by_size``) or by name.
    """
    order = pl.DataFrame(
        {"category": list(fixed), "_order": list(range(len(fixed)))},
        schema={"category": pl.String, "_order": pl.Int64},
    )
    merged = order.join(counts, on="category", how="full", coalesce=True).with_columns(
        pl.exclude("category", "_order").fill_null(0)
    )
    keys = ["_order", "n_events", "category"] if by_size else ["_order", "category"]
    descending = [False, True, False] if by_size else [False, False]
    return merged.sort(keys, descending=descending, nulls_last=True)


def _discontinuation(analysed: pl.DataFrame, events: pl.DataFrame,
                     spec: SafetySpec) -> pl.DataFrame:
    """Patients who stopped IVIG: any reason, by reason, and after an adverse event (the
    last row only when the plan defines it)."""
    reason = pl.col("ivig_stop_reason")
    stopped_by_event = (
        events.filter(pl.col("action").cast(pl.String) == spec.discontinued_action)
        .select("patient_key")
        .unique()
        .with_columns(_event_discontinued=pl.lit(True))
    )
    flagged = analysed.join(stopped_by_event, on="patient_key", how="left")
    followed_event = (reason == spec.stopped_for_adverse_event).fill_null(False) | pl.col(
        "_event_discontinued"
    ).fill_null(False)  # stopped for an AE, or an AE's action was to discontinue
    by_reason = _with_fixed(
        analysed.filter(reason.is_not_null())
        .group_by(reason.alias("category"))
        .agg(n_patients=pl.len()),
        spec.stop_reasons,
        by_size=False,
    ).select("category", "n_patients")
    parts = [
        analysed.select(category=pl.lit("any"), n_patients=reason.is_not_null().sum()),
        by_reason,
    ]
    if spec.stopped_for_adverse_event is not None or spec.discontinued_action is not None:
        parts.append(flagged.select(category=pl.lit("followed_adverse_event"),
                                    n_patients=followed_event.sum()))
    return pl.concat(
        [p.with_columns(pl.col("n_patients").cast(pl.Int64)) for p in parts], how="vertical"
    ).select(
        section=pl.lit("discontinuation"),
        category="category",
        n_events=pl.lit(None, dtype=pl.Int64),
        n_patients="n_patients",
    )
