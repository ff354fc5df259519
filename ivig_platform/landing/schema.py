"""Column order and types of what landing writes (see CONTRACT.md beside this file).

One definition serves the Parquet files, the empty tables of a warehouse with no accepted
delivery, and the tests, so the three cannot drift apart.
"""

from __future__ import annotations

import polars as pl

PROVENANCE: dict[str, pl.DataType] = {
    "site_id": pl.Utf8(),
    "delivery_id": pl.Utf8(),
    "source_file": pl.Utf8(),
    "source_row": pl.Int32(),
    "file_sha256": pl.Utf8(),
    "loaded_at": pl.Datetime("us", "UTC"),
}

LANDED: dict[str, dict[str, pl.DataType]] = {
    "patients": {
        "patient_key": pl.Utf8(),
        "sex": pl.Utf8(),
        "age_at_index": pl.Float64(),
        "ssc_subtype": pl.Utf8(),
        "overlap": pl.List(pl.Utf8()),
        "indication": pl.List(pl.Utf8()),
        "ivig_stop_reason": pl.Utf8(),
    },
    "ivig_cycles": {
        "patient_key": pl.Utf8(),
        "cycle_number": pl.Int32(),
        "start_date": pl.Date(),
        "dose_g": pl.Float64(),
        "weight_kg": pl.Float64(),
    },
    "treatments": {
        "patient_key": pl.Utf8(),
        "drug": pl.Utf8(),
        "start_date": pl.Date(),
        "end_date": pl.Date(),
    },
    "assessments": {
        "patient_key": pl.Utf8(),
        "assessment_date": pl.Date(),
        "measure": pl.Utf8(),
        "value": pl.Float64(),
        "value_as_reported": pl.Utf8(),
        "unit_as_reported": pl.Utf8(),
    },
    "adverse_events": {
        "patient_key": pl.Utf8(),
        "onset_date": pl.Date(),
        "term": pl.Utf8(),
        "severity": pl.Utf8(),
        "serious": pl.Boolean(),
        "related": pl.Utf8(),
        "action": pl.Utf8(),
    },
}

QUARANTINE: dict[str, pl.DataType] = {
    "site_id": pl.Utf8(),
    "delivery_id": pl.Utf8(),
    "table_name": pl.Utf8(),
    "source_file": pl.Utf8(),
    "source_row": pl.Int32(),
    "column_name": pl.Utf8(),
    "rule": pl.Utf8(),
    "value": pl.Utf8(),
    "detail": pl.Utf8(),
}


def landed_schema(table: str) -> dict[str, pl.DataType]:
    return {**LANDED[table], **PROVENANCE}
