"""Per-measure paired plots (Vega-Lite -> SVG via vl-convert, offline).

Each plot shows the patients' baseline -> post lines, light, and the median at each
timepoint as a bold line with points. Patients are numbered anonymously within the plot; no
patient key reaches the chart's data, hence none reaches the SVG.

Up to ``MAX_LINES`` pairs every patient gets a line. Above that a plot draws a faithful
aggregate instead, because thousands of lines are unreadable (one grey blot) and slow to
render (a registry of 20,000 patients took a minute and a gigabyte): the median and the
interquartile range (a band) at each timepoint over *all* the paired patients, and the lines
of a seeded random sample of ``MAX_LINES`` of them, to show the spread of individual change.
The figure's caption and the plot's subtitle say so ("300 of 12,345 patients shown"). The
sample only ever shows fewer patients' values than a plot of every line would; the band and
the median are statistics of more than ``MAX_LINES`` patients.

The Vega-Lite spec is built here as a plain dict (a few layers, fixed by this module) and
handed to vl-convert as it is: going through Altair cost an import of ~1-2 s and a JSON
schema validation of every data row on each ``to_dict()`` (most of the old report's time);
the tests validate these specs against the Vega-Lite schema instead.
"""

from __future__ import annotations

import html
import random
import re
from typing import Any

import polars as pl
import polars.selectors as cs
import vl_convert

from ivig_platform.protocol.in_force import protocol_in_force
from ivig_platform.protocol.plan import Plan
from ivig_platform.report.model import Figure
from ivig_platform.report.privacy import is_small, mask_count, threshold


def _plan() -> Plan:
    """The primary plan of the protocol in force (protocol/analysis/v1.yaml and the
    amendments): the report presents the primary analysis. Read at call time, so a report
    built under a given protocol takes its measures, labels and axis titles from it."""
    return protocol_in_force().primary_plan


def measures() -> tuple[str, ...]:
    """The primary plan's measures, in order."""
    return _plan().measure_names


def measure_labels() -> dict[str, str]:
    return {m.name: m.label for m in _plan().measures}


def axis_titles() -> dict[str, str]:
    return {m.name: m.axis_title for m in _plan().measures}


TIMEPOINTS: tuple[str, str] = ("Baseline", "Post")
PATIENT_COLOUR = "#7b8794"
MEDIAN_COLOUR = "#b03a2e"

#: Most patient lines a plot draws; above this it draws a sample of this many (see above).
MAX_LINES = 300
#: Seed of that sample (fixed: the same warehouse gives the same plot).
SAMPLE_SEED = 20261124
#: Decimals of the patients' values handed to Vega (finer than a plot shows; a small spec).
PLOT_DECIMALS = 2
VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"


def paired_values(assessments: pl.DataFrame, patients: pl.DataFrame | None = None) -> pl.DataFrame:
    """Long frame ``measure``, ``pair``, ``timepoint`` ('Baseline'/'Post'), ``value``.

    Rows of ``assessments`` (``fct_assessment``) flagged baseline/post with a value, for the
    patients having both for the measure; with ``patients`` (``dim_patient``), only the
    analysed ones (``n_cycles`` > 0), as in mart_efficacy. ``pair`` numbers the patients
    1..n within a measure by their values, so the frame carries no patient key.
    """
    flagged = (
        assessments.lazy()
        .select(
            pl.col("patient_key").cast(pl.String),
            pl.col("measure").cast(pl.String),
            pl.col("analysis_timepoint").cast(pl.String).alias("timepoint"),
            pl.col("value").cast(pl.Float64).fill_nan(None),
        )
        .filter(pl.col("timepoint").is_in(["baseline", "post"]) & pl.col("value").is_not_null())
    )
    if patients is not None:
        analysed = (
            patients.lazy()
            .filter(pl.col("n_cycles").fill_null(0) > 0)
            .select(pl.col("patient_key").cast(pl.String))
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
        .collect()
    )


def summary(pairs: pl.DataFrame) -> pl.DataFrame:
    """Median and quartiles (R type 7) of each measure at each timepoint, over every pair:
    ``measure``, ``timepoint``, ``median``, ``q1``, ``q3``."""
    value = pl.col("value")
    return (
        pairs.group_by("measure", "timepoint")
        .agg(
            median=value.median(),
            q1=value.quantile(0.25, interpolation="linear"),
            q3=value.quantile(0.75, interpolation="linear"),
        )
        .sort("measure", "timepoint")
    )


def medians(pairs: pl.DataFrame) -> pl.DataFrame:
    """Median of each measure at each timepoint (``measure``, ``timepoint``, ``value``)."""
    return summary(pairs).select("measure", "timepoint", pl.col("median").alias("value"))


def sample_pairs(n: int, k: int = MAX_LINES, seed: int = SAMPLE_SEED) -> list[int]:
    """The pair numbers (1..n) a plot of ``n`` pairs draws: all of them up to ``k``, else a
    random sample of ``k`` drawn with ``seed`` (pairs are numbered by value, so the same
    data always gives the same sample)."""
    if n <= k:
        return list(range(1, n + 1))
    return sorted(random.Random(seed).sample(range(1, n + 1), k))


def _rows(frame: pl.DataFrame, decimals: int | None = PLOT_DECIMALS) -> list[dict[str, Any]]:
    """Rows for Vega's inline data, floats rounded to ``decimals`` (None: as they are)."""
    if decimals is not None:
        frame = frame.with_columns(cs.float().round(decimals))
    return frame.to_dicts()


def _scale(measure: str) -> dict[str, Any]:
    """The y scale the plan asks for: the valid range, a log scale or from zero."""
    m = {m.name: m for m in _plan().measures}.get(measure)
    if m is not None and m.plot == "log":
        return {"type": "log"}
    if m is not None and m.plot_domain is not None and None not in m.plot_domain:
        return {"domain": [int(x) if x == int(x) else x for x in m.plot_domain]}
    return {"zero": True, "nice": True}

def paired_spec(pairs: pl.DataFrame, measure: str) -> dict[str, Any]:
    """The Vega-Lite spec of one measure's plot from ``paired_values`` rows.

    Every pair's line up to ``MAX_LINES`` pairs; above that a sample of ``MAX_LINES`` lines
    and the interquartile band (see the module's docstring). The median is of every pair.
    """
    data = pairs.filter(pl.col("measure") == measure).select("pair", "timepoint", "value")
    stats = summary(data.with_columns(measure=pl.lit(measure))).drop("measure")
    n = data.height // 2
    shown = sample_pairs(n)
    sampled = len(shown) < n
    if sampled:
        data = data.filter(pl.col("pair").is_in(shown))
    else:  # every line is drawn: no band, so no quartiles in the spec
        stats = stats.select("timepoint", "median")

    scale = _scale(measure)
    x = {
        "field": "timepoint",
        "type": "nominal",
        "sort": list(TIMEPOINTS),
        "title": None,
        "scale": {"padding": 0.35},
        "axis": {"labelAngle": 0, "labelFontSize": 12},
    }
    y = {"type": "quantitative", "title": axis_titles()[measure], "scale": scale}

    def layer(data: str, mark: dict[str, Any], **encoding: Any) -> dict[str, Any]:
        return {"data": {"name": data}, "mark": mark, "encoding": {"x": x, **encoding}}

    value, pair = y | {"field": "value"}, {"field": "pair", "type": "nominal"}
    if sampled:  # context lines only: fainter, without the endpoints' circles
        layers = [
            layer("patients", _mark("line", PATIENT_COLOUR, opacity=0.2, strokeWidth=1),
                  y=value, detail=pair),
            layer("summary", _mark("area", MEDIAN_COLOUR, opacity=0.2),
                  y=y | {"field": "q1"}, y2={"field": "q3"}),
        ]  # fmt: skip
    else:
        layers = [
            layer("patients", _mark("line", PATIENT_COLOUR, opacity=0.35, strokeWidth=1),
                  y=value, detail=pair),
            layer("patients", _mark("circle", PATIENT_COLOUR, opacity=0.45, size=16), y=value),
        ]  # fmt: skip
    median = y | {"field": "median"}
    layers += [
        layer("summary", _mark("line", MEDIAN_COLOUR, strokeWidth=3.5), y=median),
        layer("summary", _mark("point", MEDIAN_COLOUR, filled=True, size=90, opacity=1),
              y=median),
    ]  # fmt: skip
    subtitle: str | list[str] = f"{mask_count(n)} patients with both values"
    if sampled:
        subtitle = [subtitle, f"lines: {sample_text(len(shown), n)}; band: IQR"]
    return {
        "$schema": VEGA_LITE_SCHEMA,
        "width": 190,
        "height": 240,
        "title": {
            "text": measure_labels()[measure],
            "subtitle": subtitle,
            "fontSize": 13,
            "subtitleFontSize": 11,
            "anchor": "start",
        },
        # the patients' values rounded (hundreds of rows); the 2-6 statistics exact
        "datasets": {"patients": _rows(data), "summary": _rows(stats, None)},
        "layer": layers,
        "config": {
            "aria": False,
            "font": "DejaVu Sans, Arial, sans-serif",
            "view": {"stroke": "#ccc"},
        },
    }


def _mark(kind: str, colour: str, **properties: Any) -> dict[str, Any]:
    return {"type": kind, "color": colour, **properties}


def sample_text(shown: int, total: int) -> str:
    """``300 of 12,345 patients shown`` (counts through the §6 rule)."""
    return f"{mask_count(shown)} of {mask_count(total)} patients shown"


def to_svg(spec: dict[str, Any], scope: str, label: str) -> str:
    """SVG markup of the Vega-Lite ``spec``, its element ids (if any) prefixed with ``scope``
    so several SVGs can share one HTML document, labelled ``label`` for screen readers."""
    svg = vl_convert.vegalite_to_svg(spec, allowed_base_urls=[])
    svg = re.sub(r"^<\?xml[^>]*>\s*", "", svg)
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    if ids:
        pattern = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
        svg = re.sub(
            rf'(\bid="|href="#|\(#)({pattern})(?=[")])',
            lambda m: f"{m.group(1)}{scope}-{m.group(2)}",
            svg,
        )
    return svg.replace("<svg ", f'<svg role="img" aria-label="{html.escape(label)}" ', 1)


def paired_figures(assessments: pl.DataFrame, patients: pl.DataFrame | None = None) -> list[Figure]:
    """One figure per measure; a plot of 1-4 patients is replaced by a message (§6).

    Above ``MAX_LINES`` pairs the caption says which lines are drawn (a sample) and that
    the median and band are of every pair."""
    pairs = paired_values(assessments, patients)
    counts = dict(pairs.group_by("measure").agg(pl.len() // 2).iter_rows())
    figures = []
    labels = measure_labels()
    for measure in measures():
        n = counts.get(measure, 0)
        caption = f"{labels[measure]}: baseline and post value of each patient"
        if n == 0:
            figures.append(
                Figure(f"plot-{measure}", caption, message="No patient has both values.")
            )
        elif is_small(n):
            figures.append(
                Figure(
                    f"plot-{measure}",
                    caption,
                    message=f"Fewer than {threshold()} patients have both values: not plotted "
                    "(protocol §6).",
                )
            )
        else:
            if n > MAX_LINES:
                caption = (
                    f"{labels[measure]}: median (red) and interquartile range (band) "
                    f"of all {mask_count(n)} patients with both values; grey lines: "
                    f"{sample_text(MAX_LINES, n)} (random sample, seed {SAMPLE_SEED})"
                )
            svg = to_svg(paired_spec(pairs, measure), f"plot-{measure}", caption)
            figures.append(Figure(f"plot-{measure}", caption, svg=svg))
    return figures
