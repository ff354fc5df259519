"""Analysis results data: every statistic of mart_efficacy and mart_safety, one row each.

The shape follows the ARD of R's `cards` (what `gtsummary` builds tables from): `group1`
/ `group1_level` (the subgroup), `variable` / `variable_level` (the measure and the
timepoint, or the safety section and category), `context` (the kind of analysis),
`stat_name`, `stat_label`, `stat` — with `cards`' statistic names where it has one (`N`,
`mean`, `sd`, `median`, `p25`, `p75`, `conf.low`, `conf.high`, `p.value`). Added for
this study: `analysis` (efficacy | safety), the analysis `plan` and its fingerprint, the
`method` in words, the `reference` implementation the figure is checked against, and
`mart_column`, the mart column the value is (so the ARD can be pivoted back and compared
with the mart cell for cell). One statistic per (analysis, plan, group1, group1_level,
variable, variable_level, context, stat_name). A statistic that cannot be computed
(fewer than two pairs, say) is a row with a NULL `stat`, as it is a NULL cell in the mart.

Percentages stay percentages (0–100, `stat_name` `pct`), not `cards`' proportion `p`, so
the numbers are the marts'. `responder_rule` is text, not a statistic: it is the `method`
of the responder rows.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

ARD_JSON = "ard.json"

T_TEST = "R stats::t.test(post, baseline, paired = TRUE)"
WILCOXON = "R stats::wilcox.test(post, baseline, paired = TRUE), exact when possible"
SUMMARY = "R mean(), sd() (n - 1), quantile(type = 7)"
COUNTS = "counts and percentages of the analysed patients (no model)"


@dataclass(frozen=True)
class Stat:
    """How one mart column is written as ARD rows."""

    column: str
    variable_level: str
    context: str
    stat_name: str
    stat_label: str
    method: str
    reference: str


def _describe(level: str) -> list[Stat]:
    what = f"{level} value of the paired patients"
    return [
        Stat(f"{level}_mean", level, "continuous", "mean", "Mean", f"mean of the {what}",
             SUMMARY),
        Stat(f"{level}_sd", level, "continuous", "sd", "SD", f"SD (n - 1) of the {what}",
             SUMMARY),
        Stat(f"{level}_median", level, "continuous", "median", "Median",
             f"median of the {what}", SUMMARY),
        Stat(f"{level}_q1", level, "continuous", "p25", "Q1",
             f"first quartile (type 7) of the {what}", SUMMARY),
        Stat(f"{level}_q3", level, "continuous", "p75", "Q3",
             f"third quartile (type 7) of the {what}", SUMMARY),
    ]


EFFICACY_STATS: tuple[Stat, ...] = (
    Stat("n_paired", "paired", "paired", "N", "N paired",
         "patients with both a baseline and a post value (protocol §7)", COUNTS),
    Stat("n_baseline_only", "baseline", "paired", "n_unpaired", "Baseline only",
         "patients of the subgroup with a baseline value and no post value", COUNTS),
    Stat("n_post_only", "post", "paired", "n_unpaired", "Post only",
         "patients of the subgroup with a post value and no baseline value", COUNTS),
    *_describe("baseline"),
    *_describe("post"),
    Stat("mean_change", "change", "paired_t_test", "estimate", "Mean change",
         "mean of post - baseline", T_TEST),
    Stat("change_ci_low", "change", "paired_t_test", "conf.low", "95% CI lower",
         "t-based 95% confidence interval of the mean change", T_TEST),
    Stat("change_ci_high", "change", "paired_t_test", "conf.high", "95% CI upper",
         "t-based 95% confidence interval of the mean change", T_TEST),
    Stat("ttest_p", "change", "paired_t_test", "p.value", "p (paired t-test)",
         "two-sided paired t-test", T_TEST),
    Stat("sd_change", "change", "paired_t_test", "sd", "SD of change",
         "SD (n - 1) of post - baseline", SUMMARY),
    Stat("cohens_dz", "change", "paired_t_test", "cohens_dz", "Cohen's dz",
         "mean change / SD of change", "effectsize::cohens_d(post, baseline, paired = TRUE)"),
    Stat("wilcoxon_p", "change", "wilcoxon_signed_rank", "p.value", "p (Wilcoxon)",
         "two-sided Wilcoxon signed-rank test, differences rounded to 9 decimals", WILCOXON),
    Stat("n_responders", "post", "responders", "n", "Responders", "", COUNTS),
    Stat("n_responder_denominator", "post", "responders", "N", "Responder denominator", "",
         COUNTS),
    Stat("pct_responders", "post", "responders", "pct", "% responders", "", COUNTS),
)

SAFETY_STATS: tuple[Stat, ...] = (
    Stat("n_events", "", "tabulate", "n_events", "Events", "events in the category", COUNTS),
    Stat("n_patients", "", "tabulate", "n", "Patients",
         "analysed patients with at least one event in the category", COUNTS),
    Stat("pct_patients", "", "tabulate", "pct", "% of patients",
         "n / analysed patients x 100", COUNTS),
    Stat("events_per_100_cycles", "", "tabulate", "rate_per_100_cycles",
         "Events per 100 cycles", "events / landed cycles of the analysed patients x 100",
         COUNTS),
    Stat("n_patients_analysed", "", "tabulate", "N", "Analysed patients",
         "patients with at least one landed cycle (protocol §7)", COUNTS),
    Stat("n_cycles", "", "tabulate", "N_cycles", "Cycles",
         "landed cycles of the analysed patients", COUNTS),
)

ARD_SCHEMA: dict[str, pl.DataType] = {
    "analysis": pl.Utf8(),
    "plan": pl.Utf8(),
    "plan_fingerprint": pl.Utf8(),
    "group1": pl.Utf8(),
    "group1_level": pl.Utf8(),
    "variable": pl.Utf8(),
    "variable_level": pl.Utf8(),
    "context": pl.Utf8(),
    "stat_name": pl.Utf8(),
    "stat_label": pl.Utf8(),
    "stat": pl.Float64(),
    "method": pl.Utf8(),
    "reference": pl.Utf8(),
    "mart_column": pl.Utf8(),
}
ARD_KEY = ("analysis", "plan", "group1", "group1_level", "variable", "variable_level",
           "context", "stat_name")


def _specs(stats: tuple[Stat, ...]) -> pl.DataFrame:
    return pl.DataFrame([s.__dict__ for s in stats]).rename({"column": "mart_column"})


def _long(mart: pl.DataFrame, index: dict[str, pl.Expr], stats: tuple[Stat, ...]
          ) -> pl.DataFrame:
    columns = [s.column for s in stats]
    return (
        mart.select(*(e.alias(k) for k, e in index.items()),
                    *(pl.col(c).cast(pl.Float64) for c in columns))
        .with_row_index("_row")
        .unpivot(index=["_row", *index], on=columns, variable_name="mart_column",
                 value_name="stat")
        .join(_specs(stats), on="mart_column", how="left")
    )


def ard_frame(efficacy: pl.DataFrame, safety: pl.DataFrame, plan: str,
              plan_fingerprint: str) -> pl.DataFrame:
    """`marts.ard` from the two stats marts (pure; the order: efficacy rows, then safety)."""
    eff = _long(efficacy, {"group1": pl.col("subgroup"), "group1_level": pl.col("subgroup_value"),
                           "variable": pl.col("measure"),
                           "_rule": pl.col("responder_rule")}, EFFICACY_STATS)
    eff = eff.with_columns(
        pl.when(pl.col("context") == "responders")
        .then(pl.coalesce(pl.col("_rule"), pl.lit("no responder rule in the protocol")))
        .otherwise(pl.col("method")).alias("method"),
        pl.lit("efficacy").alias("analysis"),
    )
    saf = _long(safety, {"group1": pl.lit("all"), "group1_level": pl.lit("all"),
                         "variable": pl.col("section"), "variable_level": pl.col("category")},
                SAFETY_STATS)
    saf = saf.with_columns(pl.lit("safety").alias("analysis"))
    order = pl.col("_row"), pl.col("_stat")
    parts = []
    for frame, stats in ((eff, EFFICACY_STATS), (saf, SAFETY_STATS)):
        position = {s.column: i for i, s in enumerate(stats)}
        parts.append(
            frame.with_columns(
                pl.col("mart_column").replace_strict(position, return_dtype=pl.Int64)
                .alias("_stat"),
                pl.lit(plan).alias("plan"), pl.lit(plan_fingerprint).alias("plan_fingerprint"),
                pl.col("stat").fill_nan(None),
            ).sort(*order).select(
                pl.col(c).cast(dtype) if c in frame.columns or c in ("plan", "plan_fingerprint")
                else pl.lit(None, dtype).alias(c)
                for c, dtype in ARD_SCHEMA.items()
            )
        )
    return pl.concat(parts, how="vertical")


def write_ard(con: duckdb.DuckDBPyConnection, plan: str, plan_fingerprint: str) -> int:
    """`marts.ard` in a build file, from its `mart_efficacy` and `mart_safety`."""
    efficacy = con.execute("SELECT * FROM marts.mart_efficacy").pl()
    safety = con.execute("SELECT * FROM marts.mart_safety").pl()
    frame = ard_frame(efficacy, safety, plan, plan_fingerprint)  # noqa: F841
    con.execute("CREATE OR REPLACE TABLE marts.ard AS SELECT * FROM frame")
    return con.execute("SELECT count(*) FROM marts.ard").fetchone()[0]


def export_ard_json(published: Path, output: Path) -> Path | None:
    """`WAREHOUSE/ard.json` from a published file's `marts.ard` (None: the file has none).

    `{"run_id": …, "ard": [row, …]}`; in R, `jsonlite::fromJSON("ard.json")$ard` is the
    data frame. Written beside and renamed over, so a reader never sees half of it.
    """
    from ivig_platform.warehouse.reader import open_if_published

    con = open_if_published(Path(published))
    if con is None:
        return None
    try:
        present = con.execute("SELECT count(*) FROM information_schema.tables "
                              "WHERE table_schema = 'marts' AND table_name = 'ard'").fetchone()[0]
        if not present:
            return None
        rows = con.execute("SELECT * FROM marts.ard").pl().to_dicts()
        run = con.execute("SELECT max(run_id) FROM quality.refresh_run").fetchone()[0]
    finally:
        con.close()
    text = json.dumps({"run_id": run, "ard": rows}, ensure_ascii=False, indent=1,
                      allow_nan=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return output
