"""The report's sections: pure functions from warehouse frames to table models (no I/O).

Every count goes through ``privacy.mask_count`` (via ``formatting``), every statistic of
1-4 patients is suppressed, and no function here emits a patient key: the inputs that
carry one (dim_patient, fct_*) are only ever counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import polars as pl

from ivig_platform.report import formatting as fmt
from ivig_platform.report import reference
from ivig_platform.report.model import Cell, Row, Section, Table, group_row
from ivig_platform.report.plots import MAX_LINES, MEASURES, paired_figures
from ivig_platform.report.privacy import MISSING, is_small, mask_count

NOT_AVAILABLE = "not available in this warehouse"

SECTION_TITLES: dict[str, str] = {
    "table1": "1. Characteristics of the cohort (table 1)",
    "efficacy": "2. Efficacy: baseline and post values",
    "safety": "3. Safety",
    "paired-plots": "4. Paired values per measure",
    "sites": "5. Site contribution and data quality",
    "published": "6. Published figures beside the computed ones",
}

MEASURE_SHORT: dict[str, str] = {
    "mrc": "MRC (0–5)",
    "ck": "CK (U/L)",
    "mrss": "mRSS (0–51)",
    "ucla_git": "UCLA GIT 2.0 (0–2.83)",
}
SUBGROUP_TITLES: dict[tuple[str, str], str] = {
    ("all", "all"): "All patients",
    ("ssc_subtype", "diffuse"): "Diffuse cutaneous SSc",
    ("ssc_subtype", "limited"): "Limited cutaneous SSc",
    ("indication", "myositis"): "Indication: myositis",
    ("indication", "gastrointestinal"): "Indication: gastrointestinal",
    ("indication", "skin"): "Indication: skin",
    ("indication", "other"): "Indication: other",
}


def _unavailable(section_id: str, what: str) -> Section:
    return Section(
        section_id,
        SECTION_TITLES[section_id],
        unavailable=f"{what}: {NOT_AVAILABLE}.",
    )


def _missing_columns(frame: pl.DataFrame, columns: Iterable[str]) -> list[str]:
    return [c for c in columns if c not in frame.columns]


def _n_analysed(patients: pl.DataFrame) -> pl.DataFrame:
    return patients.filter(pl.col("n_cycles").fill_null(0) > 0)


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
        analysed = _n_analysed(patients)
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


def table1_section(cohort: pl.DataFrame | None) -> Section:
    """Table 1 from ``marts.mart_cohort`` (long format): overall, diffuse, limited."""
    if cohort is None:
        return _unavailable("table1", "marts.mart_cohort")
    missing = _missing_columns(cohort, _COHORT_COLUMNS)
    if missing:
        return _unavailable("table1", f"marts.mart_cohort (lacks {', '.join(missing)})")
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
    cells: dict[tuple[str, str, str], dict] = {
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
        values = [cells.get((s, v, name)) for s, v, _ in _COHORT_GROUPS]
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
            texts = [
                fmt.count_percent(r["n"], r["percent"], r["group_n"]) if r else mask_count(0)
                for r in values
            ]
            rows.append(_row(label, texts, "count", indent=indent))
        else:
            texts = [mask_count(r["n"]) if r else MISSING for r in values]
            rows.append(_row(label, texts, "count", indent=indent))
    columns = (
        "Characteristic",
        *(f"{title} (N = {mask_count(group_n[(s, v)])})" for s, v, title in _COHORT_GROUPS),
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
        notes=(_PRIVACY_NOTE,),
    )


def _row(label: str, texts: list[str], kind: str, *, indent: int = 0) -> Row:
    return Row((Cell(label, "label", indent=indent), *(Cell(t, kind) for t in texts)))


_PRIVACY_NOTE = (
    "Protocol §6: counts of 1–4 are shown as <5, percentages of such counts are left out, "
    "and statistics of fewer than 5 patients are shown as n<5."
)


# --------------------------------------------------------------------------- efficacy

_EFFICACY_COLUMNS = (
    "subgroup", "subgroup_value", "measure", "n_paired", "baseline_mean", "baseline_sd",
    "post_mean", "post_sd", "mean_change", "change_ci_low", "change_ci_high", "ttest_p",
    "wilcoxon_p",
)  # fmt: skip


def efficacy_section(efficacy: pl.DataFrame | None) -> Section:
    """The efficacy table from ``marts.mart_efficacy``: overall first, then subgroups."""
    if efficacy is None:
        return _unavailable("efficacy", "marts.mart_efficacy")
    missing = _missing_columns(efficacy, _EFFICACY_COLUMNS)
    if missing:
        return _unavailable("efficacy", f"marts.mart_efficacy (lacks {', '.join(missing)})")
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
    groups = list(SUBGROUP_TITLES) + [
        key
        for key in frame.select("subgroup", "subgroup_value").unique(maintain_order=True).rows()
        if key not in SUBGROUP_TITLES
    ]
    rows: list[Row] = []
    for subgroup, value in groups:
        part = frame.filter((pl.col("subgroup") == subgroup) & (pl.col("subgroup_value") == value))
        if not part.height:
            continue
        rows.append(group_row(SUBGROUP_TITLES.get((subgroup, value), f"{subgroup}: {value}")))
        order = {m: i for i, m in enumerate(MEASURES)}
        for r in sorted(part.iter_rows(named=True), key=lambda r: order.get(r["measure"], 99)):
            n = r["n_paired"]
            d = fmt.MEASURE_DECIMALS.get(r["measure"], 2)
            cells = [
                Cell(MEASURE_SHORT.get(r["measure"], r["measure"]), "label", indent=1),
                Cell(mask_count(n), "count"),
                Cell(fmt.mean_sd(r["baseline_mean"], r["baseline_sd"], n, d), "num"),
                Cell(fmt.mean_sd(r["post_mean"], r["post_sd"], n, d), "num"),
                Cell(
                    fmt.estimate_ci(
                        r["mean_change"], r["change_ci_low"], r["change_ci_high"], n, d
                    ),
                    "num",
                ),
                Cell(fmt.p_value(r["ttest_p"], n), "num"),
                Cell(fmt.p_value(r["wilcoxon_p"], n), "num"),
            ]
            if has_responders:
                cells.append(
                    Cell(
                        fmt.fraction_percent(
                            r["n_responders"], r["n_responder_denominator"], r["pct_responders"]
                        ),
                        "count",
                    )
                )
            if has_left_out:
                cells.append(
                    Cell(
                        f"{mask_count(r['n_baseline_only'])} / {mask_count(r['n_post_only'])}",
                        "count",
                    )
                )
            rows.append(Row(tuple(cells)))
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
                + "; ".join(f"{MEASURE_SHORT.get(m, m)}: {rule}" for m, rule in rules.iter_rows())
                + "."
            )
    notes.append(_PRIVACY_NOTE)
    return Section(
        "efficacy",
        SECTION_TITLES["efficacy"],
        intro="Baseline and post values of each measure, overall and by subgroup.",
        tables=(Table("efficacy-table", tuple(columns), tuple(rows)),),
        notes=tuple(notes),
    )


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


def safety_section(safety: pl.DataFrame | None) -> Section:
    """The safety table from ``marts.mart_safety`` (long: section x category)."""
    if safety is None:
        return _unavailable("safety", "marts.mart_safety")
    missing = _missing_columns(safety, _SAFETY_COLUMNS)
    if missing:
        return _unavailable("safety", f"marts.mart_safety (lacks {', '.join(missing)})")
    has_rate = "events_per_100_cycles" in safety.columns
    facts: list[tuple[str, str]] = []
    n_analysed = None
    if "n_patients_analysed" in safety.columns and safety.height:
        n_analysed = safety["n_patients_analysed"][0]
        facts.append(("Patients analysed", mask_count(n_analysed)))
    if "n_cycles" in safety.columns and safety.height:
        facts.append(("IVIG cycles", mask_count(safety["n_cycles"][0])))
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
            cells = [
                Cell(label, "label", indent=1),
                Cell(mask_count(r["n_events"]), "count"),
                Cell(fmt.count_percent(r["n_patients"], r["pct_patients"], n_analysed), "count"),
            ]
            if has_rate:
                rate = r["events_per_100_cycles"]
                cells.append(
                    Cell(
                        fmt.SUPPRESSED if is_small(r["n_events"]) else fmt.number(rate, 1),
                        "num",
                    )
                )
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
        notes=(_PRIVACY_NOTE,),
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
        notes=("Measures of fewer than 5 paired patients are not plotted (protocol §6).",),
    )


# --------------------------------------------------------------------------- sites

MARTS_GATE = "marts (all sites)"


def _per_site_counts(frame: pl.DataFrame | None, name: str) -> pl.DataFrame | None:
    if frame is None or "site_id" not in frame.columns:
        return None
    return frame.group_by(pl.col("site_id").cast(pl.String)).agg(pl.len().alias(name))


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
) -> Section:
    """Per-site contribution (counts only), deliveries, quarantine, checks and freshness."""
    notes: list[str] = []
    tables = [
        _contribution_table(
            patients, cycles, assessments, adverse_events, site_delivery, freshness, notes
        ),
    ]
    if site_delivery is not None:
        tables.append(_deliveries_table(site_delivery))
    else:
        notes.append(f"Deliveries (quality.site_delivery): {NOT_AVAILABLE}.")
    quality = _quality_table(site_delivery, quarantine, check_result, refresh_run, notes)
    if quality is not None:
        tables.append(quality)
    notes.append(_PRIVACY_NOTE)
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
    patients: pl.DataFrame | None,
    cycles: pl.DataFrame | None,
    assessments: pl.DataFrame | None,
    adverse_events: pl.DataFrame | None,
    site_delivery: pl.DataFrame | None,
    freshness: pl.DataFrame | None,
    notes: list[str],
) -> Table:
    sites = _all_sites(patients, site_delivery, freshness)
    counts: list[tuple[str, dict[str, object]]] = []
    analysed = None
    if patients is not None and "n_cycles" in patients.columns:
        analysed = _n_analysed(patients)
    for title, frame in (
        ("Patients landed", patients),
        ("Patients analysed", analysed),
        ("IVIG cycles", cycles),
        ("Assessments", assessments),
        ("Adverse events", adverse_events),
    ):
        per_site = _per_site_counts(frame, "n")
        if per_site is not None:
            counts.append((title, _lookup(per_site, "n")))
    hospital: dict[str, object] = {}
    for frame in (freshness, patients):
        if frame is not None and "hospital" in frame.columns:
            hospital = _lookup(frame.unique("site_id", keep="first"), "hospital") | hospital
    columns = ["Site"]
    if hospital:
        columns.append("Hospital")
    columns += [title for title, _ in counts]
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
        cells += [Cell(mask_count(int(c.get(site, 0) or 0)), "count") for _, c in counts]
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


def _deliveries_table(site_delivery: pl.DataFrame) -> Table:
    frame = site_delivery.sort("site_id", "delivery_id")
    rows = []
    for r in frame.iter_rows(named=True):
        rows.append(
            Row(
                (
                    Cell(str(r["site_id"]), "label"),
                    Cell(str(r["delivery_id"])),
                    Cell(str(r.get("status") or MISSING), f"status-{r.get('status')}"),
                    Cell(str(r.get("reason") or "")),
                    Cell(mask_count(r.get("rows_landed")), "count"),
                    Cell(mask_count(r.get("rows_quarantined")), "count"),
                )
            )
        )
    return Table(
        "site-deliveries",
        ("Site", "Delivery", "Status", "Reason", "Rows landed", "Rows quarantined"),
        tuple(rows),
        caption="Every delivery seen (quality.site_delivery)",
    )


def _quality_table(
    site_delivery: pl.DataFrame | None,
    quarantine: pl.DataFrame | None,
    check_result: pl.DataFrame | None,
    refresh_run: pl.DataFrame | None,
    notes: list[str],
) -> Table | None:
    by_rule: dict[str, str] = {}
    if quarantine is not None and {"site_id", "rule"} <= set(quarantine.columns):
        q = quarantine.with_columns(pl.col("site_id", "delivery_id").cast(pl.String))
        if site_delivery is not None and "status" in site_delivery.columns:
            accepted = site_delivery.filter(pl.col("status") == "accepted").select(
                pl.col("site_id", "delivery_id").cast(pl.String)
            )
            q = q.join(accepted, on=["site_id", "delivery_id"], how="semi")
        counted = (
            q.group_by("site_id", "rule")
            .len()
            .sort(["site_id", "len", "rule"], descending=[False, True, False])
        )
        for site, part in counted.group_by("site_id", maintain_order=True):
            by_rule[str(site[0])] = "; ".join(
                f"{rule} {mask_count(n)}" for rule, n in part.select("rule", "len").iter_rows()
            )
    else:
        notes.append(f"Quarantine (quality.quarantine): {NOT_AVAILABLE}.")

    checks = _failed_checks(check_result, refresh_run)
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
    check_rows = {r["site"]: r for r in checks.iter_rows(named=True)} if checks is not None else {}
    columns = ["Site", "Quarantined rows by rule (accepted delivery)"]
    if checks is not None:
        columns += ["Checks run", *(f"Failed checks: {s}" for s in severities)]
    rows = []
    for site in sites:
        cells = [
            Cell(site, "label"),
            Cell(by_rule.get(site, "none") if site != MARTS_GATE else MISSING),
        ]
        if checks is not None:
            r = check_rows.get(site)
            cells.append(Cell(mask_count(r["checks_run"]) if r else MISSING, "count"))
            cells += [
                Cell(mask_count(int(r.get(s) or 0)) if r else MISSING, "count") for s in severities
            ]
        rows.append(Row(tuple(cells)))
    return Table(
        "site-quality",
        tuple(columns),
        tuple(rows),
        caption="Quarantine and data-quality checks per site",
    )


def _failed_checks(
    check_result: pl.DataFrame | None, refresh_run: pl.DataFrame | None
) -> pl.DataFrame | None:
    """Per site (``site``; the mart gate as MARTS_GATE): checks run, failed by severity.

    Only the checks of the refresh that built the file when its run_id is known."""
    if check_result is None or not {"site_id", "severity", "success"} <= set(check_result.columns):
        return None
    frame = check_result
    if (
        refresh_run is not None
        and "run_id" in refresh_run.columns
        and "run_id" in frame.columns
        and refresh_run.height
    ):
        current = frame.filter(pl.col("run_id").is_in(refresh_run["run_id"].to_list()))
        if current.height:
            frame = current
    frame = frame.with_columns(
        site=pl.col("site_id").cast(pl.String).fill_null(MARTS_GATE),
        severity=pl.col("severity").cast(pl.String).fill_null("unknown"),
    )
    run = frame.group_by("site").agg(checks_run=pl.len())
    failed = frame.filter(~pl.col("success").fill_null(False)).group_by("site", "severity").len()
    if failed.height:
        wide = failed.pivot(on="severity", index="site", values="len")
        run = run.join(wide, on="site", how="left")
    return run.sort("site")


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


def _computed_text(comparison: reference.Comparison) -> str:
    figure, computed = comparison.figure, comparison.computed
    if computed.value is None:
        return "not available"
    if figure.kind == "count":
        return mask_count(computed.value)
    if computed.masked:
        return fmt.SUPPRESSED
    if figure.kind == "percent":
        return fmt.percent(computed.value, figure.decimals)
    return fmt.number(computed.value, figure.decimals)


def published_section(
    cohort: pl.DataFrame | None,
    efficacy: pl.DataFrame | None,
    safety: pl.DataFrame | None,
) -> Section:
    """Protocol §1's figures beside the computed ones, with a within-tolerance mark."""
    comparisons = reference.compare(
        {"mart_cohort": cohort, "mart_efficacy": efficacy, "mart_safety": safety}
    )
    rows = []
    for c in comparisons:
        if c.within is True:
            mark = Cell("✓ within", "ok")
        elif c.within is False:
            mark = Cell("✗ outside", "bad")
        elif c.computed.value is not None and c.computed.masked:
            mark = Cell("not shown (§6)", "na")
        else:
            mark = Cell(MISSING, "na")
        rows.append(
            Row(
                (
                    Cell(c.figure.label, "label"),
                    Cell(_published_text(c.figure), "count" if c.figure.kind == "count" else "num"),
                    Cell(_computed_text(c), "count" if c.figure.kind == "count" else "num"),
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
            "Counts of 1–4 are shown as <5 in both columns (protocol §6), and a computed "
            "value resting on 1–4 patients gets no mark, since the mark would disclose it.",
        ),
    )


def sections(
    frames: dict[str, pl.DataFrame | None], *, published_figures: bool = True
) -> list[Section]:
    """Every section of the report, in order, from ``schema.table`` -> frame (or None)."""
    get = frames.get
    out = [
        table1_section(get("marts.mart_cohort")),
        efficacy_section(get("marts.mart_efficacy")),
        safety_section(get("marts.mart_safety")),
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
        ),
    ]
    if published_figures:
        out.append(
            published_section(
                get("marts.mart_cohort"), get("marts.mart_efficacy"), get("marts.mart_safety")
            )
        )
    return out
