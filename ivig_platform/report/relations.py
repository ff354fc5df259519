"""Every count the report shows, and the additive relations between them (protocol §6).

``report_counts(frames)`` declares each displayed count as a cell of one
``privacy.CountSystem`` (a count shown in two tables is one cell: the published-figures
table repeats cells of table 1 and of the safety table) and the relations a reader can use
to work a hidden count out, only those that really hold:

- table 1 (``mart_cohort``), a grid of characteristics x {overall, diffuse, limited, not
  recorded}: within a row, overall = diffuse + limited + the patients of no recorded
  subtype (never displayed: a hidden cell); within a column, the categories of sex and of
  the subtype add up to the column's patients, the stop reasons to "IVIG stopped", each
  characteristic and its complement (hidden) to the patients, a drug within its class and an
  overlap within "any overlap". Sites (distinct, per column) and indications and overlaps
  among themselves (a patient counts in several) do not add up.
- efficacy (``mart_efficacy``), per measure: paired + baseline only + post only + neither
  (hidden) = the subgroup's patients (table 1's cells), responders within their
  denominator within the paired, and overall = diffuse + limited + not recorded for every
  count. Indication subgroups overlap: only their own decomposition.
- safety (``mart_safety``): the events of each section's categories = all events; the
  patients of a category within those with any event and within its events; stop reasons =
  stopped (any); stopped for an adverse event within "stopped after an adverse event"; the
  patients within the analysed; and the same counts of table 1 (analysed, stopped, reasons).
- sites: a site's patients landed = analysed + without a cycle (hidden); the sites' analysed
  patients, patients without a cycle, cycles and adverse events add up to the study's (table
  1, the header, the safety facts); an accepted delivery's quarantined rows = its rows by
  rule; a site's checks run = failed by severity + passed (hidden).

Cells shown in the report header and the plot subtitles (outside any table's suppression)
are ``fixed``: never hidden as partners. The sections display every count through the
``Disclosure`` that ``privacy.protect`` makes of this system.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from ivig_platform.report.privacy import CountSystem
from ivig_platform.report.reference import Source

ALL = ("all", "all")
DIFFUSE = ("ssc_subtype", "diffuse")
LIMITED = ("ssc_subtype", "limited")
#: The never-displayed column of table 1: patients of no recorded SSc subtype.
NOT_RECORDED = ("ssc_subtype", "not_recorded")
SUBTYPE_COLUMNS = (ALL, DIFFUSE, LIMITED, NOT_RECORDED)

#: Exclusive categories of table 1 adding up to a column's total.
COHORT_PARTITIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("patients", ("sex_female", "sex_male", "sex_unknown")),
    ("patients", ("ssc_subtype_diffuse", "ssc_subtype_limited", "ssc_subtype_unknown")),
    ("ivig_stopped", ("ivig_stop_adverse_event", "ivig_stop_inefficacy", "ivig_stop_other")),
)
#: Characteristics within a larger one of table 1 (a drug within its class is found by order).
COHORT_SUBSETS: tuple[tuple[str, str], ...] = tuple(
    ("overlap_any", f"overlap_{o}") for o in ("iim", "sjogren", "sle", "ra", "other")
)
#: Characteristics of table 1 that do not add across columns (a site treats both subtypes).
NOT_ADDITIVE = frozenset({"sites"})
EFFICACY_PARTS = ("n_paired", "n_baseline_only", "n_post_only")
EFFICACY_COUNTS = (*EFFICACY_PARTS, "n_responder_denominator", "n_responders")
SITE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("landed", "Patients landed"),
    ("analysed", "Patients analysed"),
    ("cycles", "IVIG cycles"),
    ("assessments", "Assessments"),
    ("adverse_events", "Adverse events"),
)
SAFETY_FACTS = ("n_patients_analysed", "n_cycles")


# --------------------------------------------------------------------------- cell ids


def cohort_cell(column: tuple[str, str], characteristic: str) -> str:
    return f"cohort|{column[0]}/{column[1]}|{characteristic}"


def efficacy_cell(column: tuple[str, str], measure: str, count: str) -> str:
    return f"efficacy|{column[0]}/{column[1]}|{measure}|{count}"


def plan_cell(plan: str, measure: str, count: str) -> str:
    """A count of ``marts.mart_efficacy_by_plan`` (overall, one plan), for the amendments
    section."""
    return f"plan|{plan}|{measure}|{count}"


def safety_cell(section: str, category: str, count: str) -> str:
    return f"safety|{section}/{category}|{count}"


def safety_fact(name: str) -> str:
    return f"safety|facts|{name}"


def site_cell(site: str, column: str) -> str:
    return f"site|{site}|{column}"


def delivery_cell(site: str, delivery: str, column: str) -> str:
    return f"delivery|{site}|{delivery}|{column}"


def quarantine_cell(site: str, rule: str) -> str:
    return f"quarantine|{site}|{rule}"


def checks_cell(site: str, what: str) -> str:
    return f"checks|{site}|{what}"


def source_cells(source: Source) -> tuple[str | None, str | None]:
    """The cells of the count and the denominator a published figure rests on."""
    where = dict(source.where)
    if source.table == "mart_cohort":
        column = (where["subgroup"], where["subgroup_value"])
        return (cohort_cell(column, where["characteristic"]) if source.count_column else None,
                cohort_cell(column, "patients") if source.denominator_column else None)
    if source.table == "mart_efficacy":
        column = (where["subgroup"], where["subgroup_value"])

        def cell(count: str | None) -> str | None:
            return efficacy_cell(column, where["measure"], count) if count else None

        return cell(source.count_column), cell(source.denominator_column)
    return (safety_cell(where["section"], where["category"], source.count_column)
            if source.count_column else None, None)


# --------------------------------------------------------------------------- shared frames


def analysed_patients(patients: pl.DataFrame) -> pl.DataFrame:
    return patients.filter(pl.col("n_cycles").fill_null(0) > 0)


def per_site_counts(frame: pl.DataFrame | None) -> dict[str, int] | None:
    """Rows per site of a frame with ``site_id`` (None when there is no such frame)."""
    if frame is None or "site_id" not in frame.columns:
        return None
    counted = frame.group_by(pl.col("site_id").cast(pl.String)).agg(pl.len())
    return {site: n for site, n in counted.iter_rows() if site}


def site_counts(frames: dict[str, pl.DataFrame | None]) -> dict[str, dict[str, int]]:
    """Per column of the site table (``SITE_COLUMNS``): site -> count, for the columns whose
    frame the warehouse has."""
    patients = frames.get("marts.dim_patient")
    analysed = None
    if patients is not None and "n_cycles" in patients.columns:
        analysed = analysed_patients(patients)
    sources = {
        "landed": patients,
        "analysed": analysed,
        "cycles": frames.get("marts.fct_ivig_cycle"),
        "assessments": frames.get("marts.fct_assessment"),
        "adverse_events": frames.get("marts.fct_adverse_event"),
    }
    out = {}
    for name, frame in sources.items():
        counts = per_site_counts(frame)
        if counts is not None:
            out[name] = counts
    return out


def accepted_quarantine(site_delivery: pl.DataFrame | None,
                        quarantine: pl.DataFrame | None) -> pl.DataFrame | None:
    """Quarantined rows of each site's accepted delivery, by rule: site_id, rule, len."""
    if quarantine is None or not {"site_id", "rule"} <= set(quarantine.columns):
        return None
    q = quarantine.with_columns(pl.col("site_id", "delivery_id").cast(pl.String))
    if site_delivery is not None and "status" in site_delivery.columns:
        accepted = site_delivery.filter(pl.col("status") == "accepted").select(
            pl.col("site_id", "delivery_id").cast(pl.String)
        )
        q = q.join(accepted, on=["site_id", "delivery_id"], how="semi")
    return (
        q.group_by("site_id", "rule")
        .len()
        .sort(["site_id", "len", "rule"], descending=[False, True, False])
    )


MARTS_GATE = "marts (all sites)"


def failed_checks(check_result: pl.DataFrame | None,
                  refresh_run: pl.DataFrame | None) -> pl.DataFrame | None:
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


# --------------------------------------------------------------------------- the system


def report_counts(frames: dict[str, pl.DataFrame | None]) -> CountSystem:
    """Every count of the report's tables and the relations between them."""
    system = CountSystem()
    get = frames.get
    _cohort(system, get("marts.mart_cohort"))
    _efficacy(system, get("marts.mart_efficacy"))
    _plans(system, get("marts.mart_efficacy_by_plan"))
    _safety(system, get("marts.mart_safety"))
    _sites(system, frames)
    _deliveries(system, get("quality.site_delivery"), get("quality.quarantine"))
    _checks(system, frames)
    return system


def _has(system: CountSystem, *cells: str) -> bool:
    return all(c in system.values for c in cells)


def _relate(system: CountSystem, total: str, parts: Iterable[str], *,
            remainder: str | None = None) -> None:
    """``CountSystem.relate`` when every cell is declared (a table may lack a row)."""
    parts = tuple(parts)
    if _has(system, total, *parts):
        system.relate(total, parts, remainder=remainder)


def _cohort(system: CountSystem, cohort: pl.DataFrame | None) -> None:
    if cohort is None or not {"subgroup", "subgroup_value", "characteristic", "n",
                              "statistic_type"} <= set(cohort.columns):
        return
    rows = cohort.with_columns(pl.col("subgroup", "subgroup_value").cast(pl.String))
    counted = rows.filter(pl.col("statistic_type").is_in(["binary", "count"]))
    kinds = dict(counted.select("characteristic", "statistic_type").unique().iter_rows())
    if not kinds:
        return
    for r in counted.iter_rows(named=True):
        column = (r["subgroup"], r["subgroup_value"])
        if column in SUBTYPE_COLUMNS:
            system.add(cohort_cell(column, r["characteristic"]), r["n"])
    for name in kinds:  # a drug row is absent from a column where nobody took the drug
        for column in (ALL, DIFFUSE, LIMITED):
            if cohort_cell(column, name) not in system.values:
                system.add(cohort_cell(column, name), 0)
    system.fixed |= {cohort_cell(ALL, c) for c in ("patients", "sites",
                                                   "excluded_no_landed_cycle")}
    additive = [c for c in kinds if c not in NOT_ADDITIVE]
    for name in additive:  # within a row
        system.relate(cohort_cell(ALL, name),
                      (cohort_cell(DIFFUSE, name), cohort_cell(LIMITED, name)),
                      remainder=cohort_cell(NOT_RECORDED, name))
    _relate(system, cohort_cell(NOT_RECORDED, "patients"),
            (cohort_cell(ALL, "ssc_subtype_unknown"),))
    for column in SUBTYPE_COLUMNS:  # within a column
        total = cohort_cell(column, "patients")
        for name in additive:
            if kinds[name] == "binary":
                _relate(system, total, (cohort_cell(column, name),),
                        remainder=cohort_cell(column, f"not:{name}"))
        for whole, parts in COHORT_PARTITIONS:
            _relate(system, cohort_cell(column, whole),
                    (cohort_cell(column, p) for p in parts))
        for whole, part in [*COHORT_SUBSETS, *_drug_classes(rows)]:
            _relate(system, cohort_cell(column, whole), (cohort_cell(column, part),),
                    remainder=cohort_cell(column, f"{whole}-{part}"))


def _drug_classes(cohort: pl.DataFrame) -> list[tuple[str, str]]:
    """(class, drug) of table 1's drug rows: a drug row comes right after its class row
    (``characteristic_order`` = the class's + 1, mart_cohort.sql)."""
    if "characteristic_order" not in cohort.columns:
        return []
    order = dict(cohort.select("characteristic", "characteristic_order").unique().iter_rows())
    by_order = {o: c for c, o in order.items() if not c.startswith("on_drug_")}
    return [(by_order[o - 1], c) for c, o in order.items()
            if c.startswith("on_drug_") and o - 1 in by_order]


def _efficacy(system: CountSystem, efficacy: pl.DataFrame | None) -> None:
    if efficacy is None or not {"subgroup", "subgroup_value", "measure", "n_paired"} <= set(
            efficacy.columns):
        return
    frame = efficacy.with_columns(pl.col("subgroup", "subgroup_value", "measure").cast(pl.String))
    counts = [c for c in EFFICACY_COUNTS if c in frame.columns]
    measures: list[str] = []
    columns: list[tuple[str, str]] = []
    for r in frame.iter_rows(named=True):
        column, measure = (r["subgroup"], r["subgroup_value"]), r["measure"]
        measures += [measure] if measure not in measures else []
        columns += [column] if column not in columns else []
        for count in counts:
            if r[count] is not None:
                system.add(efficacy_cell(column, measure, count), r[count])
    for measure in measures:
        system.fixed.add(efficacy_cell(ALL, measure, "n_paired"))  # the plots show it
        present = [c for c in counts if _has(system, efficacy_cell(ALL, measure, c))]
        for count in present:  # overall = diffuse + limited + not recorded
            _relate(system, efficacy_cell(ALL, measure, count),
                    (efficacy_cell(DIFFUSE, measure, count),
                     efficacy_cell(LIMITED, measure, count)),
                    remainder=efficacy_cell(NOT_RECORDED, measure, count))
        for column in [*columns, NOT_RECORDED]:
            _efficacy_column(system, column, measure)


def _efficacy_column(system: CountSystem, column: tuple[str, str], measure: str) -> None:
    """Within one subgroup: paired + baseline only + post only + neither = its patients
    (table 1's), and responders within their denominator within the paired."""
    def cell(count: str) -> str:
        return efficacy_cell(column, measure, count)

    patients = (cohort_cell(ALL, f"indication_{column[1]}") if column[0] == "indication"
                else cohort_cell(column, "patients"))
    _relate(system, patients, (cell(c) for c in EFFICACY_PARTS), remainder=cell("neither"))
    _relate(system, cell("n_paired"), (cell("n_responder_denominator"),),
            remainder=cell("paired_not_eligible"))
    _relate(system, cell("n_responder_denominator"), (cell("n_responders"),),
            remainder=cell("not_responders"))


def overall_by_plan(by_plan: pl.DataFrame) -> pl.DataFrame:
    """The whole-cohort rows (subgroup ``all``) of ``marts.mart_efficacy_by_plan``, its key
    columns as strings: what the amendments section shows and its counts are built from."""
    return by_plan.with_columns(
        pl.col("analysis_plan", "subgroup", "subgroup_value", "measure").cast(pl.String)
    ).filter((pl.col("subgroup") == ALL[0]) & (pl.col("subgroup_value") == ALL[1]))


def _plans(system: CountSystem, by_plan: pl.DataFrame | None) -> None:
    """Each plan's overall n paired per measure, within the study's patients (the rest,
    unpaired under that plan, is not shown). Only n paired is displayed: the unpaired
    counts of a plan beside the primary's would let a reader subtract across plans."""
    if by_plan is None or not {"analysis_plan", "subgroup", "subgroup_value", "measure",
                               "n_paired"} <= set(by_plan.columns):
        return
    overall = overall_by_plan(by_plan)
    patients = cohort_cell(ALL, "patients")
    for plan, measure, n in overall.select("analysis_plan", "measure", "n_paired").rows():
        if n is None:
            continue
        cell = system.add(plan_cell(plan, measure, "n_paired"), n)
        _relate(system, patients, (cell,), remainder=plan_cell(plan, measure, "unpaired"))


def _safety(system: CountSystem, safety: pl.DataFrame | None) -> None:
    if safety is None or not {"section", "category", "n_events", "n_patients"} <= set(
            safety.columns):
        return
    frame = safety.with_columns(pl.col("section", "category").cast(pl.String))
    sections: dict[str, list[str]] = {}
    for r in frame.iter_rows(named=True):
        sections.setdefault(r["section"], []).append(r["category"])
        for count in ("n_events", "n_patients"):
            if r[count] is not None:
                system.add(safety_cell(r["section"], r["category"], count), r[count])
    for fact in SAFETY_FACTS:
        if fact in frame.columns and frame.height:
            system.add(safety_fact(fact), frame[fact][0])
    any_events, any_patients = (safety_cell("overall", "any", c) for c in ("n_events",
                                                                           "n_patients"))
    _relate(system, any_events, (any_patients,), remainder=safety_cell("overall", "any",
                                                                        "repeat_events"))
    for section, categories in sections.items():
        if section in ("overall", "discontinuation"):
            continue
        _relate(system, any_events, (safety_cell(section, c, "n_events") for c in categories))
        for c in categories:
            _relate(system, any_patients, (safety_cell(section, c, "n_patients"),),
                    remainder=safety_cell(section, c, "patients_without"))
            _relate(system, safety_cell(section, c, "n_events"),
                    (safety_cell(section, c, "n_patients"),),
                    remainder=safety_cell(section, c, "repeat_events"))
    stopped = safety_cell("discontinuation", "any", "n_patients")
    reasons = [c for c in sections.get("discontinuation", ())
               if c not in ("any", "followed_adverse_event")]
    _relate(system, stopped, (safety_cell("discontinuation", c, "n_patients") for c in reasons))
    _relate(system, safety_cell("discontinuation", "followed_adverse_event", "n_patients"),
            (safety_cell("discontinuation", "adverse_event", "n_patients"),),
            remainder=safety_cell("discontinuation", "followed_adverse_event", "by_action"))
    analysed = safety_fact("n_patients_analysed")
    for patients in (any_patients, stopped):
        _relate(system, analysed, (patients,), remainder=f"{patients}|complement")
    for fact, cell in ((analysed, cohort_cell(ALL, "patients")),
                       (stopped, cohort_cell(ALL, "ivig_stopped")),
                       *((safety_cell("discontinuation", r, "n_patients"),
                          cohort_cell(ALL, f"ivig_stop_{r}")) for r in reasons)):
        if _has(system, fact, cell):
            system.equal(fact, cell)


def _sites(system: CountSystem, frames: dict[str, pl.DataFrame | None]) -> None:
    counts = site_counts(frames)
    if not counts:
        return
    sites = sorted({s for per_site in counts.values() for s in per_site})
    for name, per_site in counts.items():
        for site in sites:
            system.add(site_cell(site, name), per_site.get(site, 0))
    if "landed" in counts and "analysed" in counts:
        for site in sites:
            system.relate(site_cell(site, "landed"), (site_cell(site, "analysed"),),
                          remainder=site_cell(site, "without_cycle"))
    totals = {
        "analysed": cohort_cell(ALL, "patients"),
        "without_cycle": cohort_cell(ALL, "excluded_no_landed_cycle"),
        "cycles": safety_fact("n_cycles"),
        "adverse_events": safety_cell("overall", "any", "n_events"),
    }
    for name, total in totals.items():
        _relate(system, total, (site_cell(site, name) for site in sites))


def _deliveries(system: CountSystem, site_delivery: pl.DataFrame | None,
                quarantine: pl.DataFrame | None) -> None:
    if site_delivery is None or not {"site_id", "delivery_id"} <= set(site_delivery.columns):
        return
    accepted: dict[str, str] = {}
    for r in site_delivery.iter_rows(named=True):
        site, delivery = str(r["site_id"]), str(r["delivery_id"])
        for column in ("rows_landed", "rows_quarantined"):
            if r.get(column) is not None:
                system.add(delivery_cell(site, delivery, column), r[column])
        if r.get("status") == "accepted":
            accepted[site] = delivery
    by_rule = accepted_quarantine(site_delivery, quarantine)
    if by_rule is None:
        return
    rules: dict[str, list[str]] = {}
    for site, rule, n in by_rule.iter_rows():
        system.add(quarantine_cell(str(site), str(rule)), n)
        rules.setdefault(str(site), []).append(str(rule))
    for site, delivery in accepted.items():
        _relate(system, delivery_cell(site, delivery, "rows_quarantined"),
                (quarantine_cell(site, rule) for rule in rules.get(site, [])))


def _checks(system: CountSystem, frames: dict[str, pl.DataFrame | None]) -> None:
    checks = failed_checks(frames.get("quality.check_result"), frames.get("quality.refresh_run"))
    if checks is None:
        return
    severities = [c for c in checks.columns if c not in ("site", "checks_run")]
    for r in checks.iter_rows(named=True):
        site = r["site"]
        system.add(checks_cell(site, "run"), r["checks_run"])
        for severity in severities:
            system.add(checks_cell(site, f"failed:{severity}"), r.get(severity) or 0)
        system.relate(checks_cell(site, "run"),
                      [checks_cell(site, f"failed:{s}") for s in severities],
                      remainder=checks_cell(site, "passed"))
