"""Input checks shared by the table builders."""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl


def require_columns(frame: pl.DataFrame, columns: Iterable[str], name: str) -> None:
    """Raise ``ValueError`` naming the columns ``frame`` (called ``name``) lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks required column(s): {', '.join(missing)}")


def analysed_patients(patients: pl.DataFrame) -> pl.DataFrame:
    """Patients who enter the analyses: ``n_cycles`` > 0 (§7); null counts as 0.

    ``patient_key`` is cast to String and must be unique (it is dim_patient's key).
    """
    keyed = patients.with_columns(pl.col("patient_key").cast(pl.String))
    n_keys = keyed.get_column("patient_key").n_unique()
    if n_keys != keyed.height or keyed.get_column("patient_key").null_count():
        raise ValueError("patients.patient_key must be unique and non-null (dim_patient grain)")
    return keyed.filter(pl.col("n_cycles").fill_null(0) > 0)
