"""The cells of each landed row as the site wrote them, beside the typed landed table.

`ivig explain` shows where a number came from down to the text in the hospital's file:
`4+` before it became 4.33, `1,5` before it became 1.5, `3 µkat/L` before it became
180 U/L. The landed tables analysts see stay as they are (typed, one column per contract
field); the text goes into a second file per table, `<table>.cells.parquet`, keyed by the
same provenance columns (site, delivery, source file, source row, file hash).

Only non-identifier columns are kept (protocol §6): `patient_id` and `birth_date` never
leave landing, and neither does any dropped column. Only landed rows are kept: a
quarantined row's offending value is in `quality.quarantine` already, and a row that did
not land has no number downstream to explain.
"""

from __future__ import annotations

import polars as pl

from ivig_platform.landing.contract import CONTRACT
from ivig_platform.landing.readers import SOURCE_ROW, RawTable

CELLS_SUFFIX = ".cells.parquet"
#: The columns that say which source row a cells row is (the landed tables' provenance).
CELL_KEYS: dict[str, pl.DataType] = {
    "site_id": pl.Utf8(),
    "delivery_id": pl.Utf8(),
    "source_file": pl.Utf8(),
    "source_row": pl.Int32(),
    "file_sha256": pl.Utf8(),
}


def cells_file(table: str) -> str:
    return f"{table}{CELLS_SUFFIX}"


def reported_columns(table: str) -> list[str]:
    """The contract columns whose text may be shown: every one but the identifiers."""
    return [c.name for c in CONTRACT[table].columns if not c.identifier]


def cells_schema(table: str) -> dict[str, pl.DataType]:
    return {**CELL_KEYS, **{name: pl.Utf8() for name in reported_columns(table)}}


def cells_frame(raw: RawTable, landed_rows: pl.Series, site_id: str,
                delivery_id: str) -> pl.DataFrame:
    """The text of `raw`'s landed rows (`landed_rows`: their source rows), as read.

    The text is the reader's: a CSV cell byte for byte (decoded), an XLSX cell as the
    reader renders it (dates as ISO, numbers with a `.`), the text of the sheet XML where
    the reader could not convert it. Nothing is trimmed or cleaned: this is the evidence.
    """
    columns = reported_columns(raw.name)
    return (
        raw.frame.lazy()
        .join(pl.LazyFrame({SOURCE_ROW: landed_rows.cast(pl.Int32)}), on=SOURCE_ROW,
              how="semi")
        .select(
            pl.lit(site_id).alias("site_id"),
            pl.lit(delivery_id).alias("delivery_id"),
            pl.lit(raw.source_file).alias("source_file"),
            pl.col(SOURCE_ROW).cast(pl.Int32).alias("source_row"),
            pl.lit(raw.file_sha256).alias("file_sha256"),
            *(pl.col(c).cast(pl.Utf8) for c in columns),
        )
        .sort("source_row")
        .collect()
        .cast(cells_schema(raw.name))  # type: ignore[arg-type]
    )
