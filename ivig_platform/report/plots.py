"""Per-measure paired plots (Altair -> Vega-Lite -> SVG via vl-convert, offline).

Each plot shows every paired patient's baseline -> post line, light, and the median at
each timepoint as a bold line with points. Patients are numbered anonymously within the
plot; no patient key reaches the chart's data, hence none reaches the SVG.
"""

from __future__ import annotations

import html
import re

import altair as alt
import polars as pl
import vl_convert

from ivig_platform.report.model import Figure
from ivig_platform.report.privacy import is_small, mask_count

MEASURES: tuple[str, ...] = ("mrc", "ck", "mrss", "ucla_git")
MEASURE_LABELS: dict[str, str] = {
    "mrc": "Muscle strength (modified MRC)",
    "ck": "Creatine kinase (CK)",
    "mrss": "Modified Rodnan skin score (mRSS)",
    "ucla_git": "UCLA SCTC GIT 2.0 total",
}
AXIS_TITLES: dict[str, str] = {
    "mrc": "MRC grade (0–5)",
    "ck": "CK, U/L (log scale)",
    "mrss": "mRSS (0–51)",
    "ucla_git": "UCLA GIT 2.0 total (0–2.83)",
}
TIMEPOINTS: tuple[str, str] = ("Baseline", "Post")
PATIENT_COLOUR = "#7b8794"
MEDIAN_COLOUR = "#b03a2e"


def paired_values(assessments: pl.DataFrame, patients: pl.DataFrame | None = None) -> pl.DataFrame:
    """Long frame ``measure``, ``pair``, ``timepoint`` ('Baseline'/'Post'), ``value``.

    Rows of ``assessments`` (``fct_assessment``) flagged baseline/post with a value, for the
    patients having both for the measure; with ``patients`` (``dim_patient``), only the
    analysed ones (``n_cycles`` > 0), as in mart_efficacy. ``pair`` numbers the patients
    1..n within a measure by their values, so the frame carries no patient key.
    """
    flagged = assessments.select(
        pl.col("patient_key").cast(pl.String),
        pl.col("measure").cast(pl.String),
        pl.col("analysis_timepoint").cast(pl.String).alias("timepoint"),
        pl.col("value").cast(pl.Float64).fill_nan(None),
    ).filter(pl.col("timepoint").is_in(["baseline", "post"]) & pl.col("value").is_not_null())
    if patients is not None:
        analysed = patients.filter(pl.col("n_cycles").fill_null(0) > 0).select(
            pl.col("patient_key").cast(pl.String)
        )
        flagged = flagged.join(analysed, on="patient_key", how="semi")
    timepoint, value = pl.col("timepoint"), pl.col("value")
    wide = (
        flagged.group_by("measure", "patient_key")
        .agg(
            baseline=value.filter(timepoint == "baseline").first(),
            post=value.filter(timepoint == "post").first(),
        )
        .drop_nulls(["baseline", "post"])
        .sort("measure", "baseline", "post", "patient_key")
        .with_columns(pair=pl.int_range(1, pl.len() + 1).over("measure"))
        .drop("patient_key")
    )
    return (
        wide.unpivot(index=["measure", "pair"], on=["baseline", "post"], variable_name="timepoint")
        .with_columns(
            pl.col("timepoint").replace_strict({"baseline": TIMEPOINTS[0], "post": TIMEPOINTS[1]})
        )
        .sort("measure", "pair", "timepoint")
    )


def medians(pairs: pl.DataFrame) -> pl.DataFrame:
    """Median of each measure at each timepoint (``measure``, ``timepoint``, ``value``)."""
    return (
        pairs.group_by("measure", "timepoint")
        .agg(pl.col("value").median())
        .sort("measure", "timepoint")
    )


def paired_chart(pairs: pl.DataFrame, measure: str) -> alt.LayerChart:
    """The Altair chart of one measure from ``paired_values`` rows of that measure."""
    data = pairs.filter(pl.col("measure") == measure).select("pair", "timepoint", "value")
    middle = medians(pairs.filter(pl.col("measure") == measure)).select("timepoint", "value")
    if measure == "ck":
        scale = alt.Scale(type="log")
    elif measure == "mrc":
        scale = alt.Scale(domain=[0, 5])
    else:
        scale = alt.Scale(zero=True, nice=True)
    x = alt.X(
        "timepoint:N",
        sort=list(TIMEPOINTS),
        title=None,
        scale=alt.Scale(padding=0.35),
        axis=alt.Axis(labelAngle=0, labelFontSize=12),
    )
    y = alt.Y("value:Q", title=AXIS_TITLES[measure], scale=scale)
    patients = alt.Chart(alt.Data(values=data.to_dicts())).encode(x=x, y=y)
    median = alt.Chart(alt.Data(values=middle.to_dicts())).encode(x=x, y=y)
    return (
        alt.layer(
            patients.mark_line(color=PATIENT_COLOUR, opacity=0.35, strokeWidth=1).encode(
                detail="pair:N"
            ),
            patients.mark_circle(color=PATIENT_COLOUR, opacity=0.45, size=16),
            median.mark_line(color=MEDIAN_COLOUR, strokeWidth=3.5),
            median.mark_point(color=MEDIAN_COLOUR, filled=True, size=90, opacity=1),
        )
        .properties(
            width=190,
            height=240,
            title=alt.Title(
                MEASURE_LABELS[measure],
                subtitle=f"{mask_count(data.height // 2)} patients with both values",
                fontSize=13,
                subtitleFontSize=11,
                anchor="start",
            ),
        )
        .configure(aria=False, font="DejaVu Sans, Arial, sans-serif")
        .configure_view(stroke="#ccc")
    )


def to_svg(chart: alt.TopLevelMixin, scope: str, label: str) -> str:
    """SVG markup of ``chart``, its element ids (if any) prefixed with ``scope`` so several
    SVGs can share one HTML document, labelled ``label`` for screen readers."""
    svg = vl_convert.vegalite_to_svg(chart.to_dict())
    svg = re.sub(r"^<\?xml[^>]*>\s*", "", svg)
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    for old in sorted(ids, key=len, reverse=True):
        new = f"{scope}-{old}"
        svg = svg.replace(f'id="{old}"', f'id="{new}"').replace(f"#{old})", f"#{new})")
        svg = svg.replace(f'href="#{old}"', f'href="#{new}"')
    return svg.replace("<svg ", f'<svg role="img" aria-label="{html.escape(label)}" ', 1)


def paired_figures(assessments: pl.DataFrame, patients: pl.DataFrame | None = None) -> list[Figure]:
    """One figure per measure; a plot of 1-4 patients is replaced by a message (§6)."""
    pairs = paired_values(assessments, patients)
    figures = []
    for measure in MEASURES:
        n = pairs.filter(pl.col("measure") == measure).height // 2
        caption = f"{MEASURE_LABELS[measure]}: baseline and post value of each patient"
        if n == 0:
            figures.append(
                Figure(f"plot-{measure}", caption, message="No patient has both values.")
            )
        elif is_small(n):
            figures.append(
                Figure(
                    f"plot-{measure}",
                    caption,
                    message="Fewer than 5 patients have both values: not plotted (protocol §6).",
                )
            )
        else:
            svg = to_svg(paired_chart(pairs, measure), f"plot-{measure}", caption)
            figures.append(Figure(f"plot-{measure}", caption, svg=svg))
    return figures
