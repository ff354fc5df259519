"""Protocol §1's published figures as data, where each is computed from, and the tolerance.

Tolerance (issue 5): counts exactly; means (and the median number of cycles) within 1% of
the published value; percentages within 2 percentage points (the paper rounds them to
whole percents).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import polars as pl

from ivig_platform.report.privacy import is_small

Kind = Literal["count", "mean", "median", "percent"]
MEAN_RELATIVE_TOLERANCE = 0.01
PERCENT_POINTS_TOLERANCE = 2.0


@dataclass(frozen=True)
class Source:
    """A value of a mart: the row matching ``where`` (column -> value), its ``column``.

    ``count_column`` (and ``denominator_column``) name the count(s) the value rests on,
    for the §6 rule: a value resting on 1-4 patients is not shown.
    """

    table: Literal["mart_cohort", "mart_efficacy", "mart_safety"]
    where: tuple[tuple[str, str], ...]
    column: str
    count_column: str | None = None
    denominator_column: str | None = None


@dataclass(frozen=True)
class PublishedFigure:
    key: str
    label: str
    published: float
    kind: Kind
    source: Source
    decimals: int = 0
    #: How the paper states it, when that is not just the number.
    published_text: str | None = None


def _cohort(characteristic: str, column: str) -> Source:
    return Source(
        "mart_cohort",
        (("subgroup", "all"), ("subgroup_value", "all"), ("characteristic", characteristic)),
        column,
        count_column="n",
        denominator_column="group_n" if column == "percent" else None,
    )


def _efficacy(measure: str, column: str, count: str, denominator: str | None = None) -> Source:
    return Source(
        "mart_efficacy",
        (("subgroup", "all"), ("subgroup_value", "all"), ("measure", measure)),
        column,
        count_column=count,
        denominator_column=denominator,
    )


def _safety(section: str, category: str, column: str) -> Source:
    return Source(
        "mart_safety", (("section", section), ("category", category)), column, count_column=column
    )


#: Protocol §1, in its order.
PUBLISHED_FIGURES: tuple[PublishedFigure, ...] = (
    PublishedFigure("n_patients", "Patients", 78, "count", _cohort("patients", "n")),
    PublishedFigure("n_sites", "Hospitals", 18, "count", _cohort("sites", "n")),
    PublishedFigure("n_women", "Women", 64, "count", _cohort("sex_female", "n")),
    PublishedFigure("n_men", "Men", 14, "count", _cohort("sex_male", "n")),
    PublishedFigure(
        "mean_age", "Mean age (years)", 58.5, "mean", _cohort("age_at_index", "mean"), 1
    ),
    PublishedFigure("n_diffuse", "Diffuse SSc", 46, "count", _cohort("ssc_subtype_diffuse", "n")),
    PublishedFigure(
        "pct_diffuse", "Diffuse SSc (%)", 59, "percent",
        _cohort("ssc_subtype_diffuse", "percent"), 1,
    ),
    PublishedFigure("n_limited", "Limited SSc", 32, "count", _cohort("ssc_subtype_limited", "n")),
    PublishedFigure(
        "pct_limited", "Limited SSc (%)", 41, "percent",
        _cohort("ssc_subtype_limited", "percent"), 1,
    ),
    PublishedFigure(
        "pct_overlap_any", "Overlap connective tissue disease (%)", 50, "percent",
        _cohort("overlap_any", "percent"), 1, published_text="about half",
    ),
    PublishedFigure(
        "pct_overlap_iim", "Overlap: idiopathic inflammatory myopathy (%)", 41, "percent",
        _cohort("overlap_iim", "percent"), 1,
    ),
    PublishedFigure(
        "pct_overlap_sjogren", "Overlap: Sjögren (%)", 6, "percent",
        _cohort("overlap_sjogren", "percent"), 1,
    ),
    PublishedFigure(
        "pct_indication_myositis", "Indication: myositis (%)", 49, "percent",
        _cohort("indication_myositis", "percent"), 1,
    ),
    PublishedFigure(
        "pct_indication_gastrointestinal", "Indication: gastrointestinal (%)", 31, "percent",
        _cohort("indication_gastrointestinal", "percent"), 1,
    ),
    PublishedFigure(
        "pct_indication_skin", "Indication: skin (%)", 22, "percent",
        _cohort("indication_skin", "percent"), 1,
    ),
    PublishedFigure(
        "n_multi_indication", "More than one indication", 7, "count",
        _cohort("indication_more_than_one", "n"),
    ),
    PublishedFigure(
        "pct_multi_indication", "More than one indication (%)", 9, "percent",
        _cohort("indication_more_than_one", "percent"), 1,
    ),
    PublishedFigure(
        "median_cycles", "Median IVIG cycles per patient", 5, "median",
        _cohort("n_cycles", "median"), 1,
    ),
    PublishedFigure(
        "pct_on_corticosteroid", "Concomitant corticosteroids (%)", 69, "percent",
        _cohort("on_corticosteroid", "percent"), 1,
    ),
    PublishedFigure(
        "pct_on_immunosuppressant", "Concomitant immunosuppressants (%)", 67, "percent",
        _cohort("on_immunosuppressant", "percent"), 1,
    ),
    PublishedFigure(
        "pct_on_biologic", "Concomitant biologics (%)", 18, "percent",
        _cohort("on_biologic", "percent"), 1,
    ),
    PublishedFigure(
        "pct_mrc_post_ge3", "MRC grade 3–5 after treatment (%)", 92, "percent",
        _efficacy("mrc", "pct_responders", "n_responders", "n_responder_denominator"), 1,
    ),
    PublishedFigure(
        "ck_baseline_mean", "CK before, mean (U/L)", 1149, "mean",
        _efficacy("ck", "baseline_mean", "n_paired"),
    ),
    PublishedFigure(
        "ck_post_mean", "CK after, mean (U/L)", 217, "mean",
        _efficacy("ck", "post_mean", "n_paired"),
    ),
    PublishedFigure(
        "mrss_baseline_mean", "mRSS before, mean", 15, "mean",
        _efficacy("mrss", "baseline_mean", "n_paired"), 1,
    ),
    PublishedFigure(
        "mrss_post_mean", "mRSS after, mean", 13, "mean",
        _efficacy("mrss", "post_mean", "n_paired"), 1,
    ),
    PublishedFigure(
        "ucla_git_baseline_mean", "UCLA GIT 2.0 before, mean", 1.06, "mean",
        _efficacy("ucla_git", "baseline_mean", "n_paired"), 2,
    ),
    PublishedFigure(
        "ucla_git_post_mean", "UCLA GIT 2.0 after, mean", 0.78, "mean",
        _efficacy("ucla_git", "post_mean", "n_paired"), 2,
    ),
    PublishedFigure(
        "n_adverse_events", "Adverse events", 12, "count", _safety("overall", "any", "n_events")
    ),
    PublishedFigure(
        "n_patients_with_ae", "Patients with an adverse event", 10, "count",
        _safety("overall", "any", "n_patients"),
    ),
    PublishedFigure(
        "n_stopped", "IVIG stopped (patients)", 4, "count",
        _safety("discontinuation", "any", "n_patients"),
    ),
    PublishedFigure(
        "n_stopped_adverse_event", "IVIG stopped for an adverse event (patients)", 1, "count",
        _safety("discontinuation", "adverse_event", "n_patients"),
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Computed:
    """A computed figure and the counts it rests on (None when not computable)."""

    value: float | None
    count: int | None = None
    denominator: int | None = None

    @property
    def masked(self) -> bool:
        """True when §6 forbids showing it: it rests on a count of 1-4."""
        return is_small(self.count) or is_small(self.denominator)


def _as_float(x: object) -> float | None:
    if x is None:
        return None
    value = float(x)  # type: ignore[arg-type]
    return None if math.isnan(value) else value


def _as_int(x: object) -> int | None:
    return None if x is None else int(x)  # type: ignore[call-overload]


def computed_value(source: Source, marts: dict[str, pl.DataFrame | None]) -> Computed:
    """The value ``source`` points at in ``marts`` (mart name -> frame or None)."""
    frame = marts.get(source.table)
    needed = {c for c, _ in source.where} | {source.column}
    if frame is None or not needed <= set(frame.columns):
        return Computed(None)
    match = frame
    for column, value in source.where:
        match = match.filter(pl.col(column).cast(pl.String) == value)
    if match.height != 1:
        return Computed(None)
    row = match.row(0, named=True)
    return Computed(
        _as_float(row[source.column]),
        _as_int(row.get(source.count_column)) if source.count_column else None,
        _as_int(row.get(source.denominator_column)) if source.denominator_column else None,
    )


def within_tolerance(kind: Kind, published: float, computed: float | None) -> bool | None:
    """Counts exact, means and medians within 1%, percentages within 2 points; None if no
    computed value."""
    if computed is None:
        return None
    if kind == "count":
        return round(computed) == round(published) and computed == round(computed)
    if kind == "percent":
        return abs(computed - published) <= PERCENT_POINTS_TOLERANCE + 1e-9
    return abs(computed - published) <= MEAN_RELATIVE_TOLERANCE * abs(published) + 1e-12


TOLERANCE_TEXT: dict[str, str] = {
    "count": "exact",
    "mean": "±1%",
    "median": "±1%",
    "percent": "±2 points",
}


@dataclass(frozen=True)
class Comparison:
    figure: PublishedFigure
    computed: Computed
    #: True / False; None when not computable or not shown (§6).
    within: bool | None


def compare(marts: dict[str, pl.DataFrame | None]) -> list[Comparison]:
    """Every published figure beside its computed value, with the tolerance verdict.

    A computed value resting on 1-4 patients gets no verdict (``within`` None): with the
    published value beside it, a verdict on an exact count would disclose it.
    """
    out = []
    for figure in PUBLISHED_FIGURES:
        computed = computed_value(figure.source, marts)
        verdict = (
            None
            if computed.masked
            else within_tolerance(figure.kind, figure.published, computed.value)
        )
        out.append(Comparison(figure, computed, verdict))
    return out
