"""A small synthetic warehouse for the report tests: 21 landed patients (20 analysed) at 3
sites, written to a DuckDB file with the marts and quality tables shaped as the refresh
publishes them (protocol §8, landing/CONTRACT.md).

Built to exercise the report: 3 men, 3 patients at hospital-c, quarantine rules with 1-4
rows (all must show as ``<5``), a rejected and a superseded delivery, failed checks of both
severities, a site whose freshness is 'warn'. mart_cohort follows mart_cohort.sql's columns
(computed here in Polars, not by dbt); mart_efficacy and mart_safety come from the real
stats functions. Everything is deterministic.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from ivig_platform.stats import efficacy_table, safety_table

SITES: dict[str, tuple[str, int]] = {  # site_id: (hospital, analysed patients)
    "hospital-a": ("Hospital A (fixture)", 10),
    "hospital-b": ("Hospital B (fixture)", 7),
    "hospital-c": ("Hospital C (fixture)", 3),
}
RUN_ID = "run-fixture-2"
BUILT_AT = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
INDICATIONS = ("myositis", "gastrointestinal", "skin", "other")
OVERLAPS = ("iim", "sjogren", "sle", "ra", "other")


def patient_key(site: str, i: int) -> str:
    """A 64-hex pseudonym like landing's HMAC (never to appear in the report)."""
    return hashlib.sha256(f"report-fixture|{site}|{i}".encode()).hexdigest()


def _patients(rng: random.Random) -> pl.DataFrame:
    rows = []
    index = 0
    for site, (hospital, n) in SITES.items():
        extra = 1 if site == "hospital-b" else 0  # one landed patient with no cycle
        for i in range(n + extra):
            analysed = i < n
            n_cycles = rng.randint(1, 9) if analysed else 0
            first = date(2022, 1, 3) + timedelta(days=17 * index)
            indications = {INDICATIONS[index % 4]}
            if index % 6 == 0:
                indications.add("skin")
            overlaps = {"iim"} if index % 5 < 2 else set()
            if index in (4, 11):
                overlaps.add("sjogren")
            rows.append(
                {
                    "patient_key": patient_key(site, i),
                    "site_id": site,
                    "sex": "M" if index in (2, 9, 15) else "F",
                    "age_at_index": round(rng.uniform(35, 78), 1) if analysed else None,
                    "ssc_subtype": None
                    if index == 7
                    else ("limited" if index % 3 == 1 else "diffuse"),
                    **{f"overlap_{o}": o in overlaps for o in OVERLAPS},
                    **{f"indication_{v}": v in indications for v in INDICATIONS},
                    "n_cycles": n_cycles,
                    "index_date": first if analysed else None,
                    "last_cycle_date": first + timedelta(days=28 * (n_cycles - 1))
                    if analysed
                    else None,
                    "ivig_stop_reason": {3: "adverse_event", 12: "inefficacy"}.get(index),
                    "on_corticosteroid": analysed and index % 4 != 0,
                    "on_immunosuppressant": analysed and index % 3 != 0,
                    "on_biologic": analysed and index in (1, 6, 13),
                    "on_other_therapy": False,
                    "has_overlap": bool(overlaps),
                    "n_indications": len(indications),
                    "ivig_stopped": index in (3, 12),
                    "total_dose_g": 130.0 * n_cycles,
                    "is_analysed": analysed,
                    "hospital": hospital,
                    "region": "Fixture region",
                    "delivery_id": "2026-11-20",
                }
            )
            index += 1
    return pl.DataFrame(rows)


def _cycles(patients: pl.DataFrame, rng: random.Random) -> pl.DataFrame:
    rows = []
    for p in patients.filter(pl.col("n_cycles") > 0).iter_rows(named=True):
        weight = round(rng.uniform(50, 90), 1)
        for c in range(1, p["n_cycles"] + 1):
            dose = float(rng.choice([100, 120, 140, 160]))
            rows.append(
                {
                    "patient_key": p["patient_key"],
                    "site_id": p["site_id"],
                    "cycle_number": c,
                    "start_date": p["index_date"] + timedelta(days=28 * (c - 1)),
                    "dose_g": dose,
                    "dose_g_per_kg": dose / weight,
                    "weight_kg": weight,
                    "days_from_index": 28 * (c - 1),
                    "delivery_id": "2026-11-20",
                }
            )
    return pl.DataFrame(rows)


def _assessments(patients: pl.DataFrame, rng: random.Random) -> pl.DataFrame:
    rows = []
    analysed = patients.filter(pl.col("n_cycles") > 0)
    for k, p in enumerate(analysed.iter_rows(named=True)):
        for measure in ("mrc", "ck", "mrss", "ucla_git"):
            if measure == "mrc":
                base = rng.choice([2.67, 3.0, 3.33, 3.67, 4.0])
                post = min(5.0, base + rng.choice([0.0, 0.33, 0.67, 1.0]))
            elif measure == "ck":
                base = round(rng.lognormvariate(6.8, 0.6))
                post = round(base * rng.uniform(0.1, 0.5))
            elif measure == "mrss":
                base = float(rng.randint(6, 28))
                post = max(0.0, base - rng.randint(-1, 6))
            else:
                base = round(rng.uniform(0.4, 1.7), 2)
                post = round(max(0.0, base - rng.uniform(-0.1, 0.5)), 2)
            has_base = (k + len(measure)) % 9 != 0
            has_post = (k + 2 * len(measure)) % 8 != 0
            when = [
                ("baseline", p["index_date"] - timedelta(days=10), base, has_base),
                ("post", p["last_cycle_date"] + timedelta(days=90), post, has_post),
                (None, p["index_date"] - timedelta(days=200), base, True),  # outside windows
            ]
            for timepoint, day, value, present in when:
                if present:
                    rows.append(
                        {
                            "patient_key": p["patient_key"],
                            "site_id": p["site_id"],
                            "measure": measure,
                            "assessment_date": day,
                            "value": float(value),
                            "days_from_index": (day - p["index_date"]).days,
                            "analysis_timepoint": timepoint,
                        }
                    )
    return pl.DataFrame(rows)


def _adverse_events(patients: pl.DataFrame) -> pl.DataFrame:
    analysed = patients.filter(pl.col("n_cycles") > 0).rows(named=True)
    spec = [  # (patient index, term, severity, serious, related, action)
        (0, "headache", "mild", False, "yes", "none"),
        (0, "headache", "moderate", False, "yes", "interrupted"),
        (3, "anaphylaxis", "severe", True, "yes", "discontinued"),
        (5, "headache", "mild", False, "unknown", "none"),
        (8, "rash", "mild", False, "yes", "none"),
        (11, "fever", "moderate", False, "no", "none"),
        (14, "headache", "mild", False, "yes", "none"),
        (16, "headache", "mild", False, "yes", "none"),
    ]
    return pl.DataFrame(
        [
            {
                "patient_key": analysed[i]["patient_key"],
                "site_id": analysed[i]["site_id"],
                "onset_date": analysed[i]["index_date"] + timedelta(days=3),
                "term": term,
                "severity": severity,
                "serious": serious,
                "related": related,
                "action": action,
            }
            for i, term, severity, serious, related, action in spec
        ]
    )


# mart_cohort.sql's characteristics: (name, label, kind, expression over dim_patient)
_CHARACTERISTICS: list[tuple[str, str, str, pl.Expr]] = [
    ("patients", "Patients", "count", pl.col("patient_key")),
    ("sites", "Hospitals", "count", pl.col("site_id")),
    ("sex_female", "Women", "binary", pl.col("sex") == "F"),
    ("sex_male", "Men", "binary", pl.col("sex") == "M"),
    ("sex_unknown", "Sex not recorded", "binary", pl.col("sex").is_null()),
    ("age_at_index", "Age at first IVIG cycle (years)", "continuous", pl.col("age_at_index")),
    ("ssc_subtype_diffuse", "Diffuse cutaneous SSc", "binary", pl.col("ssc_subtype") == "diffuse"),
    ("ssc_subtype_limited", "Limited cutaneous SSc", "binary", pl.col("ssc_subtype") == "limited"),
    ("ssc_subtype_unknown", "SSc subtype not recorded", "binary", pl.col("ssc_subtype").is_null()),
    ("overlap_any", "Overlap connective tissue disease", "binary", pl.col("has_overlap")),
    ("overlap_iim", "Overlap: idiopathic inflammatory myopathy", "binary", pl.col("overlap_iim")),
    ("overlap_sjogren", "Overlap: Sjögren's syndrome", "binary", pl.col("overlap_sjogren")),
    ("overlap_sle", "Overlap: systemic lupus erythematosus", "binary", pl.col("overlap_sle")),
    ("indication_myositis", "IVIG indication: myositis", "binary", pl.col("indication_myositis")),
    (
        "indication_gastrointestinal", "IVIG indication: gastrointestinal", "binary",
        pl.col("indication_gastrointestinal"),
    ),
    ("indication_skin", "IVIG indication: skin", "binary", pl.col("indication_skin")),
    ("indication_other", "IVIG indication: other", "binary", pl.col("indication_other")),
    (
        "indication_more_than_one", "More than one IVIG indication", "binary",
        pl.col("n_indications") > 1,
    ),
    ("n_cycles", "IVIG cycles per patient", "continuous", pl.col("n_cycles")),
    ("on_corticosteroid", "Concomitant corticosteroids", "binary", pl.col("on_corticosteroid")),
    (
        "on_immunosuppressant", "Concomitant immunosuppressants", "binary",
        pl.col("on_immunosuppressant"),
    ),
    ("on_biologic", "Concomitant biologics", "binary", pl.col("on_biologic")),
    ("ivig_stopped", "IVIG stopped", "binary", pl.col("ivig_stopped")),
    (
        "ivig_stop_adverse_event", "IVIG stopped: adverse event", "binary",
        pl.col("ivig_stop_reason") == "adverse_event",
    ),
]  # fmt: skip


def cohort_table(patients: pl.DataFrame) -> pl.DataFrame:
    """mart_cohort's rows (columns and meaning of mart_cohort.sql) from dim_patient."""
    analysed = patients.filter(pl.col("is_analysed"))
    groups = [
        ("all", "all", 1, analysed),
        ("ssc_subtype", "diffuse", 2, analysed.filter(pl.col("ssc_subtype") == "diffuse")),
        ("ssc_subtype", "limited", 3, analysed.filter(pl.col("ssc_subtype") == "limited")),
    ]
    rows = []
    for subgroup, value, order, members in groups:
        n_group = members.height
        for k, (name, label, kind, expr) in enumerate(_CHARACTERISTICS, start=1):
            row = {
                "subgroup": subgroup, "subgroup_value": value, "characteristic": name,
                "label": label, "statistic_type": kind, "group_n": n_group, "n": 0,
                "percent": None, "mean": None, "sd": None, "median": None, "q1": None,
                "q3": None, "min": None, "max": None, "n_missing": None,
                "subgroup_order": order, "characteristic_order": 10 * k,
            }  # fmt: skip
            series = members.select(expr.alias("x"))["x"]
            if kind == "count":
                row["n"] = series.n_unique() if n_group else 0
            elif kind == "binary":
                row["n"] = int(series.fill_null(False).sum())
                row["percent"] = 100.0 * row["n"] / n_group if n_group else None
            else:
                values = series.drop_nulls().cast(pl.Float64)
                row["n"] = values.len()
                row["n_missing"] = n_group - values.len()
                if values.len():
                    row.update(
                        mean=values.mean(), sd=values.std(), median=values.median(),
                        q1=values.quantile(0.25, "linear"), q3=values.quantile(0.75, "linear"),
                        min=values.min(), max=values.max(),
                    )  # fmt: skip
            rows.append(row)
        rows.append(
            {
                "subgroup": subgroup,
                "subgroup_value": value,
                "characteristic": "excluded_no_landed_cycle",
                "label": "Excluded: no landed IVIG cycle (not in the rows above)",
                "statistic_type": "count",
                "group_n": n_group,
                "n": patients.filter(~pl.col("is_analysed")).height if subgroup == "all" else 0,
                "subgroup_order": order,
                "characteristic_order": 9990,
            }  # fmt: skip
        )
    return pl.DataFrame(rows, infer_schema_length=None).with_columns(
        pl.col("percent", "mean", "sd", "median", "q1", "q3", "min", "max").cast(pl.Float64),
        pl.col("group_n", "n", "n_missing").cast(pl.Int64),
    )


def _site_delivery() -> pl.DataFrame:
    rows = [
        ("hospital-a", "2026-10-01", "superseded", None, 170, 1),
        ("hospital-a", "2026-11-20", "accepted", None, 180, 3),
        ("hospital-b", "2026-11-18", "accepted", None, 120, 12),
        ("hospital-c", "2026-09-01", "accepted", None, 40, 0),
        (
            "hospital-c", "2026-11-22", "rejected",
            "missing_column: assessments.csv lacks the column measure (medida)", 0, 0,
        ),
    ]  # fmt: skip
    return pl.DataFrame(
        rows,
        schema=["site_id", "delivery_id", "status", "reason", "rows_landed", "rows_quarantined"],
        orient="row",
    ).with_columns(
        landed_at=pl.lit(BUILT_AT),
        delivery_date=pl.col("delivery_id").str.to_date(),
        dropped_columns=pl.lit(None, dtype=pl.String),
    )


def _quarantine() -> pl.DataFrame:
    spec = [  # (site, delivery, table, column, rule, rows)
        ("hospital-a", "2026-10-01", "assessments", "value", "out_of_range", 1),
        ("hospital-a", "2026-11-20", "assessments", "value", "out_of_range", 2),
        ("hospital-a", "2026-11-20", "ivig_cycles", "start_date", "invalid_date", 1),
        ("hospital-b", "2026-11-18", "assessments", "assessment_date", "duplicate_key", 7),
        ("hospital-b", "2026-11-18", "treatments", "patient_id", "unknown_patient", 5),
    ]
    rows = []
    for site, delivery, table, column, rule, n in spec:
        for k in range(n):
            rows.append(
                {
                    "site_id": site,
                    "delivery_id": delivery,
                    "table_name": table,
                    "source_file": f"{table}.csv",
                    "source_row": 10 + k,
                    "column_name": column,
                    "rule": rule,
                    "value": None,
                    "detail": None,
                }
            )
    return pl.DataFrame(rows, schema_overrides={"value": pl.String, "detail": pl.String})


def _check_result() -> pl.DataFrame:
    rows = []

    def add(run: str, site: str | None, delivery: str | None, n_ok: int, failed: list[str]):
        for k in range(n_ok):
            rows.append((run, site, delivery, f"check_{k}", "warn" if k % 3 else "error", True))
        for k, severity in enumerate(failed):
            rows.append((run, site, delivery, f"failed_{k}", severity, False))

    add(RUN_ID, "hospital-a", "2026-11-20", 12, [])
    add(RUN_ID, "hospital-b", "2026-11-18", 10, ["error", "error", "warn"])
    add(RUN_ID, "hospital-c", "2026-09-01", 12, ["warn"])
    add(RUN_ID, None, None, 30, ["warn"])
    add("run-fixture-1", "hospital-a", "2026-10-01", 5, ["error"] * 6)  # an older run
    return pl.DataFrame(
        [
            {
                "run_id": run,
                "site_id": site,
                "delivery_id": delivery,
                "suite": "fixture",
                "expectation": expectation,
                "column_name": None,
                "category": "conformance",
                "severity": severity,
                "threshold": 0.0,
                "success": success,
                "observed_value": None,
                "unexpected_count": 0 if success else 2,
                "unexpected_percent": 0.0 if success else 1.5,
                "element_count": 100,
            }  # fmt: skip
            for run, site, delivery, expectation, severity, success in rows
        ],
        schema_overrides={"column_name": pl.String, "observed_value": pl.String},
    )


def _freshness(patients: pl.DataFrame) -> pl.DataFrame:
    days = {"hospital-a": 5, "hospital-b": 7, "hospital-c": 85}
    accepted = {"hospital-a": "2026-11-20", "hospital-b": "2026-11-18", "hospital-c": "2026-09-01"}
    counts = dict(patients.group_by("site_id").len().iter_rows())
    return pl.DataFrame(
        [
            {
                "site_id": site,
                "hospital": hospital,
                "region": "Fixture region",
                "accepted_delivery_id": accepted[site],
                "days_since_accepted_delivery": days[site],
                "freshness_status": "warn" if days[site] > 45 else "fresh",
                "warn_after_days": 45,
                "error_after_days": 120,
                "n_patients": counts[site],
                "measured_at": BUILT_AT,
            }
            for site, (hospital, _) in SITES.items()
        ]
    )


def build_report_warehouse(
    path: Path,
    *,
    check_result: bool = True,
    freshness: bool = True,
    refresh_run: bool = True,
    stats_marts: bool = True,
) -> Path:
    """Write the synthetic warehouse to ``path`` (replaced); optional tables can be left
    out to test the report's handling of their absence."""
    rng = random.Random(20261125)
    patients = _patients(rng)
    cycles = _cycles(patients, rng)
    assessments = _assessments(patients, rng)
    events = _adverse_events(patients)
    tables: dict[str, pl.DataFrame] = {
        "marts.dim_patient": patients,
        "marts.fct_ivig_cycle": cycles,
        "marts.fct_assessment": assessments,
        "marts.fct_adverse_event": events,
        "marts.mart_cohort": cohort_table(patients),
        "quality.site_delivery": _site_delivery(),
        "quality.quarantine": _quarantine(),
    }
    if stats_marts:
        tables["marts.mart_efficacy"] = efficacy_table(assessments, patients)
        tables["marts.mart_safety"] = safety_table(events, patients, cycles)
    if freshness:
        tables["marts.mart_site_freshness"] = _freshness(patients)
    if check_result:
        tables["quality.check_result"] = _check_result()
    if refresh_run:
        tables["quality.refresh_run"] = pl.DataFrame(
            {
                "run_id": [RUN_ID],
                "started_at": [BUILT_AT - timedelta(minutes=3)],
                "built_at": [BUILT_AT],
                "inbox": ["/fixture/inbox"],
            }
        )
    path = Path(path)
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA marts; CREATE SCHEMA quality;")
        for name, frame in tables.items():
            con.register("fixture_frame", frame)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM fixture_frame")
            con.unregister("fixture_frame")
    finally:
        con.close()
    return path


def fixture_patient_keys() -> list[str]:
    """Every patient key the fixture writes (landed patients, with or without a cycle)."""
    return [
        patient_key(site, i)
        for site, (_, n) in SITES.items()
        for i in range(n + (1 if site == "hospital-b" else 0))
    ]
