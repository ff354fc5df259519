"""The "Protocol amendments" section: each amendment in force beside the primary plan.

Issue 11: the analysis plans of the amendments are computed side by side
(``marts.mart_efficacy_by_plan``); this section says, per amendment, what it is (version,
base, effective date, rationale), what it changes (``protocol.diff``: against the version it
extends, as ``ivig protocol diff`` shows it), and per measure the overall paired analysis under
the primary plan and under the amendment. It reads the plans from the protocol the run worked
under (an argument, never the repository's at import), so a ``--plan`` file is reported as
faithfully as one of ``protocol/amendments/``.

Only the overall column (subgroup ``all``) is compared: the subgroups are the primary
analysis's (section 2), and a comparison per subgroup would multiply the small cells without
answering the amendment's question. Counts go through the report's one disclosure
(``relations.plan_cell``), and a statistic resting on a masked n paired is not shown, as in the
efficacy section.
"""

from __future__ import annotations

import polars as pl

from ivig_platform.protocol.amend import HEADER_KEYS
from ivig_platform.protocol.diff import diff_versions
from ivig_platform.protocol.load import Protocol
from ivig_platform.report import formatting as fmt
from ivig_platform.report.model import Cell, Row, Section, Table
from ivig_platform.report.privacy import MISSING, Disclosure, mask, small_range
from ivig_platform.report.relations import overall_by_plan, plan_cell

SECTION_ID = "amendments"
TITLE = "Protocol amendments"
BY_PLAN = "marts.mart_efficacy_by_plan"
COMPARED_COLUMNS = ("Plan", "N paired", "Baseline, mean (SD)", "Post, mean (SD)",
                    "Change, mean (95% CI)", "Paired t-test p")
_NEEDED = ("analysis_plan", "subgroup", "subgroup_value", "measure", "n_paired",
           "baseline_mean", "baseline_sd", "post_mean", "post_sd", "mean_change",
           "change_ci_low", "change_ci_high", "ttest_p")


_HEADER_CHANGES = frozenset(f"analysis.{k}" for k in (*HEADER_KEYS, "title"))


def amendment_plans(protocol: Protocol) -> list[str]:
    """The versions of the plans in force besides the primary, in the protocol's order."""
    return [p.version for p in protocol.plans[1:]]


def amendments_section(by_plan: pl.DataFrame | None, protocol: Protocol,
                       disclosure: Disclosure, number: int) -> Section | None:
    """The section (titled ``<number>. Protocol amendments``), or None when the primary plan
    is the only one in force."""
    versions = amendment_plans(protocol)
    if not versions:
        return None
    title = f"{number}. {TITLE}"
    if by_plan is None:
        return Section(SECTION_ID, title, unavailable=f"{BY_PLAN}: not available in this "
                       "warehouse.")
    missing = [c for c in _NEEDED if c not in by_plan.columns]
    if missing:
        return Section(SECTION_ID, title, unavailable=f"{BY_PLAN} (lacks "
                       f"{', '.join(missing)}): not available in this warehouse.")
    overall = overall_by_plan(by_plan)
    primary = protocol.primary_plan.version
    tables: list[Table] = []
    for version in versions:
        tables.append(_changes_table(protocol, version))
        tables.extend(_measure_tables(overall, protocol, primary, version, disclosure))
    return Section(
        SECTION_ID,
        title,
        intro=(f"Each amendment's analysis plan is computed beside the primary plan "
               f"({primary}; sections 1-6 use it) on the same data: the overall paired "
               "analysis of each measure under both plans "
               "(marts.mart_efficacy_by_plan, subgroup 'all')."),
        tables=tuple(tables),
        notes=(
            "Change = post − baseline with a t-based 95% CI; two-sided paired t-test. "
            "p < 0.001 shown as <0.001.",
            "What an amendment changes is listed against the version it extends "
            "(`ivig protocol diff`).",
            f"Counts of {small_range()} are shown as {mask()} and the statistics resting on them "
            "are not shown (protocol §6).",
        ),
    )


def _changes_table(protocol: Protocol, version: str) -> Table:
    amendment = protocol.nodes[version].amendment
    header = amendment.header if amendment is not None else None
    caption = f"Amendment {version}"
    if header is not None:
        caption += (f" (extends {header.extends}, effective {header.effective_date:%Y-%m-%d}): "
                    f"{header.rationale}")
    base = header.extends if header is not None else protocol.primary_plan.version
    # the header (version, base, date, rationale, the title made of them) is the caption
    changes = [c for c in diff_versions(protocol, base, version)
               if c.key not in _HEADER_CHANGES]
    rows = tuple(Row((Cell(c.key, "label"), Cell(c.old, "text"), Cell(c.new, "text")))
                 for c in changes)
    if not rows:
        rows = (Row((Cell("(no change)", "label"), Cell(MISSING), Cell(MISSING))),)
    return Table(f"amendment-{version}-changes", ("Setting", base, version), rows,
                 caption=caption)


def _measure_tables(overall: pl.DataFrame, protocol: Protocol, primary: str, version: str,
                    disclosure: Disclosure) -> list[Table]:
    """One table per measure of the amendment's plan: the primary plan's row, then the
    amendment's."""
    plan = protocol.plan(version)
    tables = []
    for measure in plan.measures:
        rows = []
        for shown in (primary, version):
            found = overall.filter((pl.col("analysis_plan") == shown)
                                   & (pl.col("measure") == measure.name))
            rows.append(_plan_row(found.row(0, named=True) if found.height else None,
                                  shown, measure.name, measure.decimals, disclosure))
        tables.append(Table(f"amendment-{version}-{measure.name}", COMPARED_COLUMNS,
                            tuple(rows), caption=f"{measure.label}: {primary} and {version}"))
    return tables


def _plan_row(r: dict | None, plan: str, measure: str, decimals: int,
              disclosure: Disclosure) -> Row:
    if r is None or r["n_paired"] is None:
        return Row((Cell(plan, "label"), *(Cell(MISSING, "num") for _ in COMPARED_COLUMNS[1:])))
    cell = plan_cell(plan, measure, "n_paired")
    n = r["n_paired"]
    withheld = disclosure.withheld(cell)
    statistics = (
        fmt.mean_sd(r["baseline_mean"], r["baseline_sd"], n, decimals),
        fmt.mean_sd(r["post_mean"], r["post_sd"], n, decimals),
        fmt.estimate_ci(r["mean_change"], r["change_ci_low"], r["change_ci_high"], n,
                        decimals),
        fmt.p_value(r["ttest_p"], n),
    )
    return Row((Cell(plan, "label"), Cell(disclosure.count(cell), "count", keys=(cell,)),
                *(Cell(withheld or text, "num") for text in statistics)))
