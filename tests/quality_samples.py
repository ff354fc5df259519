"""Small, realistic landed deliveries and marts for testing the gates (no demo needed).

Test data, written for the repository protocol (its codes, measures and windows).

`landed_site` writes what landing would hand over for one clean site delivery (CONTRACT.md
columns and types, provenance included); its knobs produce the faults the checks catch:
`sparse` (post assessments mostly missing), `ck_scale` (a unit error: every CK × factor).
`marts_from_sites` is a stand-in for dbt: the marts of §8 that the mart gate reads, built
with the §7 windows of `windows.py`. Values are drawn from ranges typical of the study
(monthly 2 g/kg cycles, CK falling, mRSS and UCLA GIT improving slightly).
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, date, datetime, timedelta

import polars as pl

from ivig_platform.landing.schema import landed_schema
from ivig_platform.quality.windows import analysis_windows, cycle_span

LOADED_AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def pseudonym(site_id: str, number: int) -> str:
    return hashlib.sha256(f"{site_id}:{number}".encode()).hexdigest()


def _frame(table: str, rows: list[dict], site_id: str, delivery_id: str) -> pl.DataFrame:
    schema = landed_schema(table)
    for i, row in enumerate(rows, start=1):
        row.update(
            site_id=site_id, delivery_id=delivery_id, source_file=f"{table}.csv",
            source_row=i, file_sha256="0" * 64, loaded_at=LOADED_AT,
        )
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(
        schema=schema
    )


def landed_site(site_id: str, delivery_id: str = "2026-11-24", *, n_patients: int = 8,
                seed: int = 1, sparse: bool = False, ck_scale: float = 1.0
                ) -> dict[str, pl.DataFrame]:
    """The five landed tables of one clean site delivery."""
    rng = random.Random(f"{site_id}:{seed}")
    patients, cycles, treatments, assessments, events = [], [], [], [], []
    for n in range(1, n_patients + 1):
        key = pseudonym(site_id, n)
        index = date(2022, 1, 10) + timedelta(days=rng.randrange(0, 900))
        n_cycles = rng.randint(3, 9)
        weight = round(rng.uniform(48, 92), 1)
        myositis = n % 2 == 1
        indication = ["myositis"] if myositis else rng.choice(
            [["gastrointestinal"], ["skin"], ["skin", "gastrointestinal"]])
        patients.append({
            "patient_key": key, "sex": "F" if rng.random() < 0.82 else "M",
            "age_at_index": round(rng.uniform(32, 78), 1),
            "ssc_subtype": rng.choice(["diffuse", "limited"]),
            "overlap": ["iim"] if myositis and rng.random() < 0.7 else [],
            "indication": indication,
            "ivig_stop_reason": "inefficacy" if rng.random() < 0.05 else None,
        })
        starts = [index + timedelta(days=28 * i) for i in range(n_cycles)]
        for number, start in enumerate(starts, start=1):
            cycles.append({
                "patient_key": key, "cycle_number": number, "start_date": start,
                "dose_g": round(2.0 * weight, 0),
                "weight_kg": weight if rng.random() < 0.9 else None,
            })
        treatments.append({"patient_key": key, "drug": "prednisona 5 mg",
                           "start_date": index - timedelta(days=200), "end_date": None})
        last = starts[-1]
        baseline_day = index - timedelta(days=rng.randint(0, 60))
        post_day = last + timedelta(days=rng.randint(75, 110))
        values = {
            "ck": (rng.uniform(400, 4000) if myositis else rng.uniform(60, 180)),
            "mrss": float(rng.randint(6, 28)),
            "mrc": rng.choice([3.0, 3.33, 3.67, 4.0]),
            "ucla_git": round(rng.uniform(0.3, 1.8), 2),
        }
        after = {
            "ck": values["ck"] * rng.uniform(0.15, 0.6),
            "mrss": max(0.0, values["mrss"] - rng.randint(-2, 5)),
            "mrc": min(5.0, values["mrc"] + rng.choice([0.0, 0.33, 0.67, 1.0])),
            "ucla_git": round(max(0.0, values["ucla_git"] - rng.uniform(0, 0.5)), 2),
        }
        followed = ["ck", "mrss"] + (["mrc"] if myositis else []) + (
            ["ucla_git"] if "gastrointestinal" in indication else [])
        for measure in followed:
            has_post = not sparse or n == 1
            when = [(baseline_day, values[measure])]
            if has_post:
                when.append((post_day, after[measure]))
            elif sparse:  # an assessment far outside the windows, so the patient is followed
                when.append((last + timedelta(days=400), after[measure]))
            for day, value in when:
                scaled = value * ck_scale if measure == "ck" else value
                assessments.append({
                    "patient_key": key, "assessment_date": day, "measure": measure,
                    "value": round(scaled, 2), "value_as_reported": f"{scaled:.2f}",
                    "unit_as_reported": "U/L" if measure == "ck" else None,
                })
        if rng.random() < 0.2:
            events.append({
                "patient_key": key, "onset_date": starts[0] + timedelta(days=2),
                "term": "headache", "severity": "mild", "serious": False,
                "related": "yes", "action": "none",
            })
    return {
        "patients": _frame("patients", patients, site_id, delivery_id),
        "ivig_cycles": _frame("ivig_cycles", cycles, site_id, delivery_id),
        "treatments": _frame("treatments", treatments, site_id, delivery_id),
        "assessments": _frame("assessments", assessments, site_id, delivery_id),
        "adverse_events": _frame("adverse_events", events, site_id, delivery_id),
    }


def marts_from_sites(per_site: dict[str, dict[str, pl.DataFrame]]) -> dict[str, pl.DataFrame]:
    """A stand-in for the dbt marts of §8 (the columns the mart gate reads)."""
    def cat(table: str) -> pl.DataFrame:
        return pl.concat([t[table] for _, t in sorted(per_site.items())], how="vertical")

    patients, cycles, assessments, events = (
        cat("patients"), cat("ivig_cycles"), cat("assessments"), cat("adverse_events"))
    span = cycle_span(cycles)
    flags = [
        pl.col(column).list.contains(value).alias(f"{column}_{value}")
        for column, values in (("overlap", ("iim", "sjogren", "sle", "ra", "other")),
                               ("indication", ("myositis", "gastrointestinal", "skin",
                                               "other")))
        for value in values
    ]
    dim_patient = patients.join(span, on="patient_key", how="left").select(
        "patient_key", "site_id", "sex", "age_at_index", "ssc_subtype", *flags,
        pl.col("n_cycles").fill_null(0), "index_date", "last_cycle_date", "ivig_stop_reason",
        pl.col("n_cycles").is_not_null().alias("on_corticosteroid"),
        pl.lit(False).alias("on_immunosuppressant"), pl.lit(False).alias("on_biologic"),
    )
    fct_ivig_cycle = cycles.select(
        "patient_key", "site_id", "cycle_number", "start_date", "dose_g",
        (pl.col("dose_g") / pl.col("weight_kg")).alias("dose_g_per_kg"),
    )
    windows = analysis_windows(cycles, assessments)
    labels = pl.concat([
        windows.filter(pl.col(f"{tp}_date").is_not_null()).select(
            "patient_key", "measure", pl.col(f"{tp}_date").alias("assessment_date"),
            pl.lit(tp).alias("analysis_timepoint"))
        for tp in ("baseline", "post")
    ])
    fct_assessment = (
        assessments.join(span, on="patient_key", how="left")
        .join(labels, on=["patient_key", "measure", "assessment_date"], how="left")
        .select(
            "patient_key", "site_id", "measure", "assessment_date", "value",
            (pl.col("assessment_date") - pl.col("index_date")).dt.total_days()
            .alias("days_from_index"),
            "analysis_timepoint",
        )
    )
    fct_adverse_event = events.select(
        "patient_key", "site_id", "onset_date", "term", "severity", "serious", "related",
        "action",
    )
    mart_cohort = pl.DataFrame({
        "characteristic": ["patients", "women"],
        "subgroup": ["all", "all"],
        "n": [dim_patient.height, dim_patient.filter(pl.col("sex") == "F").height],
    })
    # the stats marts as dbt's Python models compute them, from these stand-ins
    from ivig_platform.stats.efficacy import efficacy_table
    from ivig_platform.stats.safety import safety_table

    return {
        "dim_patient": dim_patient, "fct_ivig_cycle": fct_ivig_cycle,
        "fct_assessment": fct_assessment, "fct_adverse_event": fct_adverse_event,
        "mart_cohort": mart_cohort,
        "mart_efficacy": efficacy_table(fct_assessment, dim_patient),
        "mart_safety": safety_table(fct_adverse_event, dim_patient, fct_ivig_cycle),
    }


__all__ = ["landed_site", "marts_from_sites", "pseudonym"]
