"""The report's sections: pure functions from warehouse frames to table models (no I/O).

Every count of a table is displayed through one ``privacy.Disclosure`` made of all the
report's counts and their relations (``relations.report_counts``): ``<5`` for 1-4, ``≥5``
for a count hidden so that no ``<5`` can be worked out by subtraction, and every statistic
resting on a hidden count is left out. No function here emits a patient key: the inputs
that carry one (dim_patient, fct_*) are only ever counted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime

import polars as pl

from ivig_platform.protocol.in_force import protocol_in_force
from ivig_platform.protocol.load import Protocol
from ivig_platform.report import formatting as fmt
from ivig_platform.report import reference
from ivig_platform.report.amendments import amendments_section
from ivig_platform.report.model import Cell, Row, Section, Table, group_row
from ivig_platform.report.plots import MAX_LINES, measures, paired_figures
from ivig_platform.report.privacy import (
    HIDDEN,
    MISSING,
    Disclosure,
    hidden_note,
    mask,
    mask_count,
    protect,
    small_range,
    suppressed,
    threshold,
)
from ivig_platform.report.relations import (
    MARTS_GATE,
    SITE_COLUMNS,
    accepted_quarantine,
    analysed_patients,
    checks_cell,
    cohort_cell,
    delivery_cell,
    efficacy_cell,
    failed_checks,
    quarantine_cell,
    report_counts,
    safety_cell,
    safety_fact,
    site_cell,
    site_counts,
    source_cells,
)
from ivig_platform.states import delivery_state

NOT_AVAILABLE = "not available in this warehouse"

SECTION_TITLES: dict[str, str] = {
    "table1": "1. Characteristics of the cohort (table 1)",
    "efficacy": "2. Efficacy: baseline and post values",
    "safety": "3. Safety",
    "paired-plots": "4. Paired values per measure",
    "sites": "5. Site contribution and data quality",
    "published": "6. Published figures beside the computed ones",
}

#: The primary plan's short measure labels and subgroup titles (the report presents the
#: primary analysis; protocol/analysis/v1.yaml and the amendments in force).
#: Read at call time, so a report built under a given protocol takes them from it.
def measure_short() -> dict[str, str]:
    return {m.name: m.short_label for m in protocol_in_force().primary_plan.measures}


def subgroup_titles() -> dict[tuple[str, str], str]:
    plan = protocol_in_force().primary_plan
    return {(g.name, v.value): v.title for g in plan.subgroups for v in g.values}


def _unavailable(section_id: str, what: str) -> Section:
    return Section(
        section_id,
        SECTION_TITLES[section_id],
        unavailable=f"{what}: {NOT_AVAILABLE}.",
    )


def _missing_columns(frame: pl.DataFrame, columns: Iterable[str]) -> list[str]:
    return [c for c in columns if c not in frame.columns]


def _disclosure_of(frames: dict[str, pl.DataFrame | None]) -> Disclosure:
    """The disclosure of a section rendered on its own (its own tables' relations)."""
    return protect(report_counts(frames))


def _count(disclosure: Disclosure, cell: str) -> Cell:
    return Cell(disclosure.count(cell), "count", keys=(cell,))


def _count_percent(disclosure: Disclosure, cell: str, pct: float | None,
                   denominator: str | None) -> Cell:
    """``n (x%)``; the percentage is left out when the count or its denominator is hidden
    (a percentage beside its denominator gives the count back)."""
    text = disclosure.count(cell)
    if not disclosure.hides(cell, denominator) and not fmt.is_missing(pct):
        text = f"{text} ({fmt.percent(pct)})"
    return Cell(text, "count", keys=(cell,))


# --------------------------------------------------------------------------- header


def header_facts(
    patients: pl.DataFrame | None,
    refresh_run: pl.DataFrame | None,
    cohort: pl.DataFrame | None,
    generated_at: datetime,
) -> tuple[tuple[str, str], ...]:
    """(label, value) pairs of the report header: build time and the size of the study."""
    built = MISSING
    if refresh_run is not None and "built_at" in refresh_run.columns and refresh_run.height:
        value = refresh_run.get_column("built_at").max()
        built = _timestamp(value) if value is not None else MISSING
    facts = [("Warehouse built", built), ("Report generated", _timestamp(generated_at))]
    if patients is not None and {"site_id", "n_cycles"} <= set(patients.columns):
        analysed = analysed_patients(patients)
        facts += [
            ("Hospitals contributing patients", mask_count(analysed["site_id"].n_unique())),
            ("Patients analysed (≥ 1 IVIG cycle)", mask_count(analysed.height)),
            (
                "Patients landed without a cycle (excluded)",
                mask_count(patients.height - analysed.height),
            ),
        ]
    elif cohort is not None:
        for characteristic, label in (("sites", "Hospitals"), ("patients", "Patients analysed")):
            row = cohort.filter(
                (pl.col("subgroup") == "all") & (pl.col("characteristic") == characteristic)
            )
            facts.append((label, mask_count(row["n"][0]) if row.height else MISSING))
    return tuple(facts)


def run_line(run_record: pl.DataFrame | None) -> str:
    """The run, protocol and code a report was made by (quality.run_record's last row), so
    a printed report can be matched to its data; empty when the file has no record."""
    if run_record is None or not run_record.height or "run_id" not in run_record.columns:
        return ""
    last = run_record.sort("recorded_at").row(-1, named=True) if "recorded_at" in \
        run_record.columns else run_record.row(-1, named=True)
    protocol = f"protocol {last.get('protocol_version') or MISSING}"
    if last.get("protocol_fingerprint"):
        protocol += f" (fingerprint {str(last['protocol_fingerprint'])[:12]})"
    code = f"code ivig-platform {last.get('package_version') or MISSING}"
    if last.get("git_commit"):
        code += f", commit {str(last['git_commit'])[:12]}"
        if last.get("git_dirty"):
            code += " with uncommitted changes"
    return f"Run {last['run_id']} · {protocol} · {code}"


def _timestamp(value: object) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


# --------------------------------------------------------------------------- table 1

_COHORT_COLUMNS = (
    "subgroup", "subgroup_value", "characteristic", "label", "statistic_type", "group_n", "n",
    "percent", "mean", "sd", "median", "q1", "q3",
)  # fmt: skip
_COHORT_GROUPS: tuple[tuple[str, str, str], ...] = (
    ("all", "all", "Overall"),
    ("ssc_subtype", "diffuse", "Diffuse"),
    ("ssc_subtype", "limited", "Limited"),
)
_CONTINUOUS_DECIMALS = {"age_at_index": 1, "n_cycles": 1}


def table1_section(cohort: pl.DataFrame | None, disclosure: Disclosure | None = None
                   ) -> Section:
    """Table 1 from ``marts.mart_cohort`` (long format): overall, diffuse, limited."""
    if cohort is None:
        return _unavailable("table1", "marts.mart_cohort")
    missing = _missing_columns(cohort, _COHORT_COLUMNS)
    if missing:
        return _unavailable("table1", f"marts.mart_cohort (lacks {', '.join(missing)})")
    disclosure = disclosure or _disclosure_of({"marts.mart_cohort": cohort})
    cohort = cohort.with_columns(pl.col("subgroup", "subgroup_value").cast(pl.String))
    order = (
        pl.col("characteristic_order").min()
        if "characteristic_order" in cohort.columns
        else pl.lit(0)
    )
    characteristics = (
        cohort.group_by("characteristic", maintain_order=True)
        .agg(
            pl.col("label").first(),
            pl.col("statistic_type").first(),
            pl.col("n").max().alias("max_n"),
            order.alias("_order"),
        )
        .sort("_order", maintain_order=True)
    )
    by_key: dict[tuple[str, str, str], dict] = {
        (r["subgroup"], r["subgroup_value"], r["characteristic"]): r
        for r in cohort.iter_rows(named=True)
    }
    group_n: dict[tuple[str, str], int | None] = {}
    for subgroup, value, _ in _COHORT_GROUPS:
        sizes = cohort.filter(
            (pl.col("subgroup") == subgroup) & (pl.col("subgroup_value") == value)
        )["group_n"]
        largest = sizes.max() if sizes.len() else None
        group_n[(subgroup, value)] = None if largest is None else int(largest)  # type: ignore[arg-type]

    rows: list[Row] = []
    for ch in characteristics.iter_rows(named=True):
        name, kind, label = ch["characteristic"], ch["statistic_type"], ch["label"]
        if name.endswith("_unknown") and not ch["max_n"]:
            continue  # "not recorded" rows only when something is missing
        indent = 1 if name.startswith("on_drug_") else 0
        values = [by_key.get((s, v, name)) for s, v, _ in _COHORT_GROUPS]
        if kind == "continuous":
            d = _CONTINUOUS_DECIMALS.get(name, 1)
            rows.append(
                _row(
                    f"{label}, mean (SD)",
                    [fmt.mean_sd(r["mean"], r["sd"], r["n"], d) if r else MISSING for r in values],
                    "num",
                )
            )
            rows.append(
                _row(
                    "median [IQR]",
                    [
                        fmt.median_iqr(r["median"], r["q1"], r["q3"], r["n"], d) if r else MISSING
                        for r in values
                    ],
                    "num",
                    indent=1,
                )
            )
        elif kind == "binary":
            # a drug row is absent from a subgroup where nobody took the drug: 0
            cells = [
                _count_percent(disclosure, cohort_cell((s, v), name), r["percent"] if r else None,
                               cohort_cell((s, v), "patients"))
                for (s, v, _), r in zip(_COHORT_GROUPS, values, strict=True)
            ]
            rows.append(Row((Cell(label, "label", indent=indent), *cells)))
        else:
            cells = [
                _count(disclosure, cohort_cell((s, v), name)) if r else Cell(MISSING, "count")
                for (s, v, _), r in zip(_COHORT_GROUPS, values, strict=True)
            ]
            rows.append(Row((Cell(label, "label", indent=indent), *cells)))

    def size(s: str, v: str) -> str:
        cell = cohort_cell((s, v), "patients")
        return disclosure.count(cell) if cell in disclosure.values else mask_count(group_n[(s, v)])

    columns = (
        "Characteristic",
        *(f"{title} (N = {size(s, v)})" for s, v, title in _COHORT_GROUPS),
    )
    return Section(
        "table1",
        SECTION_TITLES["table1"],
        intro=(
            "Patients with at least one landed IVIG cycle, overall and by SSc subtype. "
            "n (%) of the column's patients; continuous characteristics as mean (SD) and "
            "median [interquartile range, R type 7]."
        ),
        tables=(Table("table1-table", columns, tuple(rows)),),
        notes=_privacy_notes(rows),
    )


def _row(label: str, texts: list[str], kind: str, *, indent: int = 0) -> Row:
    return Row((Cell(label, "label", indent=indent), *(Cell(t, kind) for t in texts)))


def _privacy_note() -> str:
    return (
        f"Protocol §6: counts of {small_range()} are shown as {mask()}, percentages of such "
        f"counts are left out, and statistics of fewer than {threshold()} patients are shown "
        f"as {suppressed()}."
    )


def _privacy_notes(rows: Iterable[Row]) -> tuple[str, ...]:
    """The §6 note, and the secondary-suppression one when a table hides a count."""
    hidden = any(HIDDEN in c.text for r in rows for c in r.cells)
    return (_privacy_note(), hidden_note()) if hidden else (_privacy_note(),)


# --------------------------------------------------------------------------- efficacy

_EFFICACY_COLUMNS = (
    "subgroup", "subgroup_value", "measure", "n_paired", "baseline_mean", "baseline_sd",
    "post_mean", "post_sd", "mean_change", "change_ci_low", "change_ci_high", "ttest_p",
    "wilcoxon_p",
)  # fmt: skip


def efficacy_section(efficacy: pl.DataFrame | None, disclosure: Disclosure | None = None
                     ) -> Section:
    """The efficacy table from ``marts.mart_efficacy``: overall first, then subgroups."""
    if efficacy is None:
        return _unavailable("efficacy", "marts.mart_efficacy")
    missing = _missing_columns(efficacy, _EFFICACY_COLUMNS)
    if missing:
        return _unavailable("efficacy", f"marts.mart_efficacy (lacks {', '.join(missing)})")
    disclosure = disclosure or _disclosure_of({"marts.mart_efficacy": efficacy})
    has_responders = {"n_responders", "n_responder_denominator", "pct_responders"} <= set(
        efficacy.columns
    )
    has_left_out = {"n_baseline_only", "n_post_only"} <= set(efficacy.columns)
    columns = [
        "Measure",
        "n paired",
        "Baseline, mean (SD)",
        "Post, mean (SD)",
        "Change, mean (95% CI)",
        "Paired t p",
        "Wilcoxon p",
    ]
    if has_responders:
        columns.append("Responders n/N (%)")
    if has_left_out:
        columns.append("Not paired: no post / no baseline")

    frame = efficacy.with_columns(pl.col("subgroup", "subgroup_value", "measure").cast(pl.String))
    titles, short = subgroup_titles(), measure_short()
    groups = list(titles) + [
        key
        for key in frame.select("subgroup", "subgroup_value").unique(maintain_order=True).rows()
        if key not in titles
    ]
    rows: list[Row] = []
    for subgroup, value in groups:
        part = frame.filter((pl.col("subgroup") == subgroup) & (pl.col("subgroup_value") == value))
        if not part.height:
            continue
        rows.append(group_row(titles.get((subgroup, value), f"{subgroup}: {value}")))
        order = {m: i for i, m in enumerate(measures())}
        for r in sorted(part.iter_rows(named=True), key=lambda r: order.get(r["measure"], 99)):
            rows.append(_efficacy_row(r, (subgroup, value), disclosure, has_responders,
                                      has_left_out, short))
    notes = [
        "Paired analysis (protocol §7): patients with both a baseline and a post value. "
        "Change = post − baseline with a t-based 95% CI; two-sided paired t-test and "
        "Wilcoxon signed-rank test as R's wilcox.test(paired = TRUE). p < 0.001 shown as "
        "<0.001.",
    ]
    if has_responders and "responder_rule" in frame.columns:
        rules = (
            frame.filter(pl.col("responder_rule").is_not_null())
            .select("measure", "responder_rule")
            .unique(maintain_order=True)
            .unique("measure", keep="first", maintain_order=True)
        )
        if rules.height:
            notes.append(
                "Responders: "
                + "; ".join(f"{short.get(m, m)}: {rule}" for m, rule in rules.iter_rows())
                + "."
            )
    notes.extend(_privacy_notes(rows))
    return Section(
        "efficacy",
        SECTION_TITLES["efficacy"],
        intro="Baseline and post values of each measure, overall and by subgroup.",
        tables=(Table("efficacy-table", tuple(columns), tuple(rows)),),
        notes=tuple(notes),
    )


def _efficacy_row(r: dict, column: tuple[str, str], disclosure: Disclosure,
                  has_responders: bool, has_left_out: bool, short: dict[str, str]) -> Row:
    """One measure of one subgroup. Its statistics rest on n paired: not shown when that
    count is hidden (a CI or a p-value gives n back)."""
    measure = r["measure"]
    n_cell = efficacy_cell(column, measure, "n_paired")
    n = r["n_paired"]
    d = fmt.measure_decimals().get(measure, 2)
    withheld = disclosure.withheld(n_cell)
    statistics = [
        fmt.mean_sd(r["baseline_mean"], r["baseline_sd"], n, d),
        fmt.mean_sd(r["post_mean"], r["post_sd"], n, d),
        fmt.estimate_ci(r["mean_change"], r["change_ci_low"], r["change_ci_high"], n, d),
        fmt.p_value(r["ttest_p"], n),
        fmt.p_value(r["wilcoxon_p"], n),
    ]
    cells = [
        Cell(short.get(measure, measure), "label", indent=1),
        _count(disclosure, n_cell),
        *(Cell(withheld or text, "num") for text in statistics),
    ]
    if has_responders:
        cells.append(_responders(r, column, disclosure))
    if has_left_out:
        only = [efficacy_cell(column, measure, c) for c in ("n_baseline_only", "n_post_only")]
        cells.append(Cell(" / ".join(disclosure.count(c) for c in only), "count",
                          keys=tuple(only)))
    return Row(tuple(cells))


def _responders(r: dict, column: tuple[str, str], disclosure: Disclosure) -> Cell:
    """``23/25 (92.0%)``; the percentage is left out when either count is hidden."""
    if r["n_responders"] is None or r["n_responder_denominator"] is None:
        return Cell(MISSING, "count")
    n, of = (efficacy_cell(column, r["measure"], c)
             for c in ("n_responders", "n_responder_denominator"))
    text = f"{disclosure.count(n)}/{disclosure.count(of)}"
    if not disclosure.hides(n, of) and not fmt.is_missing(r["pct_responders"]):
        text += f" ({fmt.percent(r['pct_responders'])})"
    return Cell(text, "count", keys=(n, of))


# --------------------------------------------------------------------------- safety

_SAFETY_COLUMNS = ("section", "category", "n_events", "n_patients", "pct_patients")
SAFETY_SECTION_TITLES: dict[str, str] = {
    "overall": "All adverse events",
    "term": "By term",
    "severity": "By severity",
    "seriousness": "Serious adverse event",
    "related": "Related to IVIG",
    "action": "Action taken with IVIG",
    "discontinuation": "IVIG discontinuation (patients)",
}
_CATEGORY_LABELS: dict[tuple[str, str], str] = {
    ("overall", "any"): "Any adverse event",
    ("seriousness", "yes"): "Serious",
    ("seriousness", "no"): "Not serious",
    ("discontinuation", "any"): "Stopped, any reason",
    ("discontinuation", "adverse_event"): "Stopped for an adverse event",
    ("discontinuation", "inefficacy"): "Stopped for inefficacy",
    ("discontinuation", "other"): "Stopped for another reason",
    ("discontinuation", "followed_adverse_event"): (
        "Stopped after an adverse event (stop reason or event action)"
    ),
}


def _humanise(text: str) -> str:
    text = text.replace("_", " ")
    return text[:1].upper() + text[1:]


def safety_section(safety: pl.DataFrame | None, disclosure: Disclosure | None = None
                   ) -> Section:
    """The safety table from ``marts.mart_safety`` (long: section x category)."""
    if safety is None:
        return _unavailable("safety", "marts.mart_safety")
    missing = _missing_columns(safety, _SAFETY_COLUMNS)
    if missing:
        return _unavailable("safety", f"marts.mart_safety (lacks {', '.join(missing)})")
    disclosure = disclosure or _disclosure_of({"marts.mart_safety": safety})
    has_rate = "events_per_100_cycles" in safety.columns
    facts: list[tuple[str, str]] = []
    analysed, cycles = safety_fact("n_patients_analysed"), safety_fact("n_cycles")
    if analysed in disclosure.values:
        facts.append(("Patients analysed", disclosure.count(analysed)))
    if cycles in disclosure.values:
        facts.append(("IVIG cycles", disclosure.count(cycles)))
    columns = ["Category", "Events", "Patients (% of analysed)"]
    if has_rate:
        columns.append("Events per 100 cycles")
    rows: list[Row] = []
    present = safety.get_column("section").unique(maintain_order=True).to_list()
    ordered = [s for s in SAFETY_SECTION_TITLES if s in present]
    for section in ordered + [s for s in present if s not in SAFETY_SECTION_TITLES]:
        rows.append(group_row(SAFETY_SECTION_TITLES.get(section, _humanise(section))))
        for r in safety.filter(pl.col("section") == section).iter_rows(named=True):
            category = r["category"]
            label = _CATEGORY_LABELS.get((section, category)) or (
                category if section == "term" else _humanise(category)
            )
            events, patients = (safety_cell(section, category, c)
                                for c in ("n_events", "n_patients"))
            cells = [
                Cell(label, "label", indent=1),
                _count(disclosure, events) if r["n_events"] is not None
                else Cell(MISSING, "count"),
                _count_percent(disclosure, patients, r["pct_patients"],
                               analysed if analysed in disclosure.values else None)
                if r["n_patients"] is not None else Cell(MISSING, "count"),
            ]
            if has_rate:  # events / cycles: shown beside the cycles, it gives the events
                hidden = disclosure.withheld(events if r["n_events"] is not None else None,
                                             cycles if cycles in disclosure.values else None)
                cells.append(Cell(hidden or fmt.number(r["events_per_100_cycles"], 1), "num"))
            rows.append(Row(tuple(cells)))
    return Section(
        "safety",
        SECTION_TITLES["safety"],
        intro=(
            "Adverse events of the analysed patients and IVIG discontinuations. A patient "
            "counts once per category and may count in several categories of a section."
        ),
        tables=(Table("safety-table", tuple(columns), tuple(rows)),),
        facts=tuple(facts),
        notes=_privacy_notes(rows),
    )


# --------------------------------------------------------------------------- plots


def plots_section(assessments: pl.DataFrame | None, patients: pl.DataFrame | None) -> Section:
    """The four paired plots from ``marts.fct_assessment`` (baseline/post rows)."""
    if assessments is None:
        return _unavailable("paired-plots", "marts.fct_assessment")
    missing = _missing_columns(
        assessments, ("patient_key", "measure", "value", "analysis_timepoint")
    )
    if missing:
        return _unavailable("paired-plots", f"marts.fct_assessment (lacks {', '.join(missing)})")
    if patients is not None and _missing_columns(patients, ("patient_key", "n_cycles")):
        patients = None
    return Section(
        "paired-plots",
        SECTION_TITLES["paired-plots"],
        intro=(
            "Each grey line joins one patient's baseline and post value (patients with both); "
            "the bold red line and points are the medians at each timepoint. CK on a log "
            f"scale. A measure of more than {MAX_LINES} such patients draws the lines of a "
            f"random sample of {MAX_LINES} of them (said under the plot) and shades the "
            "interquartile range of all of them at each timepoint."
        ),
        figures=tuple(paired_figures(assessments, patients)),
        notes=(f"Measures of fewer than {threshold()} paired patients are not plotted "
               "(protocol §6).",),
    )


# --------------------------------------------------------------------------- sites


def sites_section(
    *,
    patients: pl.DataFrame | None,
    cycles: pl.DataFrame | None,
    assessments: pl.DataFrame | None,
    adverse_events: pl.DataFrame | None,
    site_delivery: pl.DataFrame | None,
    quarantine: pl.DataFrame | None,
    check_result: pl.DataFrame | None,
    freshness: pl.DataFrame | None,
    refresh_run: pl.DataFrame | None = None,
    disclosure: Disclosure | None = None,
    check_delta: pl.DataFrame | None = None,
) -> Section:
    """Per-site contribution (counts only), deliveries, quarantine, checks and freshness,
    and the checks whose verdict changed since the previous published run."""
    frames = {
        "marts.dim_patient": patients,
        "marts.fct_ivig_cycle": cycles,
        "marts.fct_assessment": assessments,
        "marts.fct_adverse_event": adverse_events,
        "quality.site_delivery": site_delivery,
        "quality.quarantine": quarantine,
        "quality.check_result": check_result,
        "quality.refresh_run": refresh_run,
    }
    disclosure = disclosure or _disclosure_of(frames)
    notes: list[str] = []
    tables = [_contribution_table(frames, freshness, disclosure, notes)]
    if site_delivery is not None:
        tables.append(_deliveries_table(site_delivery, disclosure))
    else:
        notes.append(f"Deliveries (quality.site_delivery): {NOT_AVAILABLE}.")
    quality = _quality_table(site_delivery, quarantine, check_result, refresh_run, disclosure,
                             notes)
    if quality is not None:
        tables.append(quality)
    if check_delta is not None:
        tables.append(_check_delta_table(check_delta))
    notes.extend(_privacy_notes(r for t in tables for r in t.rows))
    return Section(
        "sites",
        SECTION_TITLES["sites"],
        intro=(
            "What each site contributes to the analysis and how its deliveries fared. "
            "Counts only; no row-level data."
        ),
        tables=tuple(tables),
        notes=tuple(notes),
    )


def _all_sites(*frames: pl.DataFrame | None) -> list[str]:
    sites: set[str] = set()
    for frame in frames:
        if frame is not None and "site_id" in frame.columns:
            sites |= {s for s in frame.get_column("site_id").cast(pl.String).to_list() if s}
    return sorted(sites)


def _lookup(frame: pl.DataFrame | None, column: str) -> dict[str, object]:
    if frame is None or column not in frame.columns:
        return {}
    return dict(frame.select(pl.col("site_id").cast(pl.String), column).iter_rows())


def _contribution_table(
    frames: dict[str, pl.DataFrame | None],
    freshness: pl.DataFrame | None,
    disclosure: Disclosure,
    notes: list[str],
) -> Table:
    patients, site_delivery = frames["marts.dim_patient"], frames["quality.site_delivery"]
    sites = _all_sites(patients, site_delivery, freshness)
    counts = site_counts(frames)
    shown = [(name, title) for name, title in SITE_COLUMNS if name in counts]
    hospital: dict[str, object] = {}
    for frame in (freshness, patients):
        if frame is not None and "hospital" in frame.columns:
            hospital = _lookup(frame.unique("site_id", keep="first"), "hospital") | hospital
    columns = ["Site"]
    if hospital:
        columns.append("Hospital")
    columns += [title for _, title in shown]
    has_freshness = freshness is not None and {"site_id", "freshness_status"} <= set(
        freshness.columns
    )
    if has_freshness:
        columns.append("Freshness")
    else:
        notes.append(f"Freshness (marts.mart_site_freshness): {NOT_AVAILABLE}.")
    if has_freshness:
        notes.append(
            "Freshness: days since the date of the site's accepted delivery (its delivery id "
            "when that is a date, else the day it was received); 'warn' and 'error' past the "
            "thresholds of marts.mart_site_freshness, 'error' also when no delivery of the "
            "site was ever accepted."
        )
    status = _lookup(freshness, "freshness_status") if has_freshness else {}
    days = _lookup(freshness, "days_since_accepted_delivery") if has_freshness else {}
    rows = []
    for site in sites:
        cells = [Cell(site, "label")]
        if hospital:
            cells.append(Cell(str(hospital.get(site) or MISSING)))
        for name, _ in shown:
            cell = site_cell(site, name)
            cells.append(_count(disclosure, cell) if cell in disclosure.values
                         else Cell(mask_count(0), "count"))
        if has_freshness:
            text = str(status.get(site) or MISSING)
            if days.get(site) is not None:
                text += f" ({int(days[site])} d)"  # type: ignore[call-overload]
            cells.append(Cell(text, f"fresh-{status.get(site) or 'na'}"))
        rows.append(Row(tuple(cells)))
    return Table(
        "site-contribution",
        tuple(columns),
        tuple(rows),
        caption="Contribution of each site (data in force: its accepted delivery)",
    )


def _deliveries_table(site_delivery: pl.DataFrame, disclosure: Disclosure) -> Table:
    frame = site_delivery.sort("site_id", "delivery_id")
    rows = []
    for r in frame.iter_rows(named=True):
        site, delivery = str(r["site_id"]), str(r["delivery_id"])
        # the refresh's vocabulary (ivig_platform/states.py): held_back, not "rejected"
        state = delivery_state(r.get("status"), r.get("rejected_by"), r.get("reason"))
        counts = [
            _count(disclosure, delivery_cell(site, delivery, column))
            if r.get(column) is not None else Cell(MISSING, "count")
            for column in ("rows_landed", "rows_quarantined")
        ]
        rows.append(
            Row(
                (
                    Cell(site, "label"),
                    Cell(delivery),
                    Cell(state or MISSING, f"status-{state}"),
                    Cell(str(r.get("reason") or "")),
                    *counts,
                )
            )
        )
    return Table(
        "site-deliveries",
        ("Site", "Delivery", "State", "Reason", "Rows landed", "Rows quarantined"),
        tuple(rows),
        caption="Every delivery seen (quality.site_delivery)",
    )


def _quality_table(
    site_delivery: pl.DataFrame | None,
    quarantine: pl.DataFrame | None,
    check_result: pl.DataFrame | None,
    refresh_run: pl.DataFrame | None,
    disclosure: Disclosure,
    notes: list[str],
) -> Table | None:
    by_rule: dict[str, Cell] = {}
    counted = accepted_quarantine(site_delivery, quarantine)
    if counted is not None:
        for site, part in counted.group_by("site_id", maintain_order=True):
            keys = tuple(quarantine_cell(str(site[0]), str(rule)) for rule in part["rule"])
            by_rule[str(site[0])] = Cell(
                "; ".join(f"{rule} {disclosure.count(key)}"
                          for rule, key in zip(part["rule"], keys, strict=True)),
                keys=keys,
            )
    else:
        notes.append(f"Quarantine (quality.quarantine): {NOT_AVAILABLE}.")

    checks = failed_checks(check_result, refresh_run)
    if checks is None:
        notes.append(f"Data-quality checks (quality.check_result): {NOT_AVAILABLE}.")
    severities: list[str] = []
    if checks is not None:
        present = set(checks.columns) - {"site", "checks_run"}
        severities = [s for s in ("error", "warn") if s in present] + sorted(
            present - {"error", "warn"}
        )
        severities = severities or ["error", "warn"]
    sites = sorted(
        set(by_rule)
        | set(_all_sites(site_delivery))
        | (set(checks["site"].to_list()) - {MARTS_GATE} if checks is not None else set())
    )
    if checks is not None and MARTS_GATE in checks["site"].to_list():
        sites.append(MARTS_GATE)
    if not sites:
        return None
    checked = set(checks["site"].to_list()) if checks is not None else set()
    columns = ["Site", "Quarantined rows by rule (accepted delivery)"]
    if checks is not None:
        columns += ["Checks run", *(f"Failed checks: {s}" for s in severities)]
    rows = []
    for site in sites:
        cells = [
            Cell(site, "label"),
            by_rule.get(site, Cell("none")) if site != MARTS_GATE else Cell(MISSING),
        ]
        if checks is not None:
            if site in checked:
                cells.append(_count(disclosure, checks_cell(site, "run")))
                cells += [_count(disclosure, checks_cell(site, f"failed:{s}"))
                          if checks_cell(site, f"failed:{s}") in disclosure.values
                          else Cell(mask_count(0), "count") for s in severities]
            else:
                cells += [Cell(MISSING, "count")] * (1 + len(severities))
        rows.append(Row(tuple(cells)))
    return Table(
        "site-quality",
        tuple(columns),
        tuple(rows),
        caption="Quarantine and data-quality checks per site",
    )


def _check_delta_table(check_delta: pl.DataFrame) -> Table:
    """Per site, the failing checks new, persisting and resolved (quality.check_delta).

    Check ids, not counts: nothing here is about patients, and the ids say what to fix."""
    from ivig_platform.provenance.check_delta import site_summary

    rows = []
    for r in site_summary(check_delta).iter_rows(named=True):
        site = MARTS_GATE if r["gate"] == "marts" else str(r["site_id"])
        rows.append(Row((Cell(site, "label"),
                         *(Cell("; ".join(r[k]) or "none") for k in
                           ("new", "persisting", "resolved")))))
    previous = check_delta.get_column("previous_run_id").drop_nulls().unique().to_list() \
        if "previous_run_id" in check_delta.columns else []
    against = (f"compared with run {', '.join(previous)}" if previous else
               "no earlier published run recorded its checks, so every failing check is new")
    if not rows:
        rows.append(Row((Cell("all sites", "label"), *(Cell("none") for _ in range(3)))))
    return Table(
        "site-check-delta",
        ("Site", "New failing checks", "Still failing", "Resolved"),
        tuple(rows),
        caption=("Data-quality checks since the previous published run (quality.check_delta; "
                 f"{against}; each site by its newest delivery gated)"),
    )


# --------------------------------------------------------------------------- published


def _published_text(figure: reference.PublishedFigure) -> str:
    if figure.kind == "count":
        text = mask_count(figure.published)
    elif figure.kind == "percent":
        text = f"{fmt.number(figure.published, 0)}%"
    else:
        decimals = 0 if float(figure.published).is_integer() else figure.decimals
        text = fmt.number(figure.published, decimals)
    return f"{figure.published_text} ({text})" if figure.published_text else text


def _computed_text(comparison: reference.Comparison, disclosure: Disclosure) -> str:
    figure, computed = comparison.figure, comparison.computed
    if computed.value is None:
        return "not available"
    count, denominator = source_cells(figure.source)
    if figure.kind == "count":
        return (disclosure.count(count) if count in disclosure.values
                else mask_count(computed.value))
    withheld = disclosure.withheld(count, denominator)
    if withheld or computed.masked:
        return withheld or suppressed()
    if figure.kind == "percent":
        return fmt.percent(computed.value, figure.decimals)
    return fmt.number(computed.value, figure.decimals)


def published_section(
    cohort: pl.DataFrame | None,
    efficacy: pl.DataFrame | None,
    safety: pl.DataFrame | None,
    disclosure: Disclosure | None = None,
) -> Section:
    """Protocol §1's figures beside the computed ones, with a within-tolerance mark.

    The computed counts are cells of table 1 and of the safety table, shown as there; a
    figure resting on a hidden count gets no mark (beside the published value, a mark on
    an exact count would disclose it)."""
    disclosure = disclosure or _disclosure_of(
        {"marts.mart_cohort": cohort, "marts.mart_efficacy": efficacy, "marts.mart_safety": safety}
    )
    comparisons = [
        dataclasses.replace(c, within=None) if disclosure.hides(*source_cells(c.figure.source))
        else c
        for c in reference.compare(
            {"mart_cohort": cohort, "mart_efficacy": efficacy, "mart_safety": safety}
        )
    ]
    rows = []
    for c in comparisons:
        hidden = c.computed.masked or disclosure.hides(*source_cells(c.figure.source))
        if c.within is True:
            mark = Cell("✓ within", "ok")
        elif c.within is False:
            mark = Cell("✗ outside", "bad")
        elif c.computed.value is not None and hidden:
            mark = Cell("not shown (§6)", "na")
        else:
            mark = Cell(MISSING, "na")
        count, _ = source_cells(c.figure.source)
        kind = "count" if c.figure.kind == "count" else "num"
        rows.append(
            Row(
                (
                    Cell(c.figure.label, "label"),
                    Cell(_published_text(c.figure), kind),
                    Cell(_computed_text(c, disclosure), kind,
                         keys=(count,) if kind == "count" and count in disclosure.values
                         else ()),
                    Cell(reference.TOLERANCE_TEXT[c.figure.kind]),
                    mark,
                )
            )
        )
    n_ok = sum(c.within is True for c in comparisons)
    n_bad = sum(c.within is False for c in comparisons)
    n_na = len(comparisons) - n_ok - n_bad
    facts = (
        ("Within tolerance", f"{n_ok} of {len(comparisons)}"),
        ("Outside tolerance", str(n_bad)),
        ("Not assessed (not available, or not shown under §6)", str(n_na)),
    )
    return Section(
        "published",
        SECTION_TITLES["published"],
        intro=(
            "The figures of the reference publication (protocol §1: 78 patients, 18 Spanish "
            "hospitals) beside the ones computed from this warehouse. Tolerance: counts "
            "exact, means and medians within 1%, percentages within 2 points."
        ),
        tables=(
            Table(
                "published-table",
                ("Figure", "Published", "Computed", "Tolerance", "Within tolerance"),
                tuple(rows),
            ),
        ),
        facts=facts,
        notes=(
            "Computed from marts.mart_cohort (overall column), marts.mart_efficacy (all "
            "patients, paired means; MRC grade 3–5 = post ≥ 3) and marts.mart_safety.",
            f"Counts of {small_range()} are shown as {mask()} in both columns (protocol §6), and a "
            f"computed value resting on {small_range()} patients, or on a count hidden to "
            "protect one (§6), gets "
            "no mark, since the mark would disclose it.",
        ),
    )


def sections(
    frames: dict[str, pl.DataFrame | None], *, published_figures: bool = True,
    protocol: Protocol | None = None,
) -> list[Section]:
    """Every section of the report, in order, from ``schema.table`` -> frame (or None).

    One disclosure serves every section: a count shown in two tables is hidden in both,
    and relations across tables (sites adding up to the study) are honoured.
    ``protocol``: the one the run worked under (its plans in force); default the protocol
    in force now (``protocol.in_force``). With a plan besides the primary, the last section
    compares each amendment with the primary plan."""
    get = frames.get
    disclosure = protect(report_counts(frames))
    out = [
        table1_section(get("marts.mart_cohort"), disclosure),
        efficacy_section(get("marts.mart_efficacy"), disclosure),
        safety_section(get("marts.mart_safety"), disclosure),
        plots_section(get("marts.fct_assessment"), get("marts.dim_patient")),
        sites_section(
            patients=get("marts.dim_patient"),
            cycles=get("marts.fct_ivig_cycle"),
            assessments=get("marts.fct_assessment"),
            adverse_events=get("marts.fct_adverse_event"),
            site_delivery=get("quality.site_delivery"),
            quarantine=get("quality.quarantine"),
            check_result=get("quality.check_result"),
            freshness=get("marts.mart_site_freshness"),
            refresh_run=get("quality.refresh_run"),
            disclosure=disclosure,
            check_delta=get("quality.check_delta"),
        ),
    ]
    if published_figures:
        out.append(
            published_section(
                get("marts.mart_cohort"), get("marts.mart_efficacy"), get("marts.mart_safety"),
                disclosure,
            )
        )
    amended = amendments_section(get("marts.mart_efficacy_by_plan"),
                                 protocol or protocol_in_force(), disclosure, len(out) + 1)
    if amended is not None:
        out.append(amended)
    return out
