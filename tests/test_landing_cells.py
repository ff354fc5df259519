"""`<table>.cells.parquet`: each landed row's cells as the site wrote them (landing/cells.py).

They are the evidence `ivig explain` shows, so they must be the file's text (not the
typed value), only for rows that landed, and never an identifier (protocol §6).
"""

from __future__ import annotations

import polars as pl

from ivig_platform.landing.cells import cells_file, reported_columns


def _cells(warehouse, delivery, table: str) -> pl.DataFrame:
    return pl.read_parquet(warehouse.folder(delivery) / cells_file(table))


def test_cells_keep_the_text_as_written_in_a_semicolon_file(extract, make_delivery, tmp_path,
                                                            warehouse):
    row = extract.append("assessments", measure="CK", value="1.149,5", unit="µkat/L")
    delivery = make_delivery(tmp_path, "h-one", "2026-11-24", extract.csv_tables(";"))
    warehouse.land(delivery)
    cells = _cells(warehouse, delivery, "assessments").filter(pl.col("source_row") == row)
    assert cells.select("measure", "value", "unit").row(0) == ("CK", "1.149,5", "µkat/L")
    landed = warehouse.table(delivery, "assessments").filter(pl.col("source_row") == row)
    assert landed["value"].item() == 1149.5 * 60  # the typed value is the converted one
    assert cells["file_sha256"].item() == landed["file_sha256"].item()


def test_cells_hold_no_identifier_column(extract, make_delivery, tmp_path, warehouse):
    delivery = make_delivery(tmp_path, "h-one", "2026-11-24", extract.csv_tables())
    warehouse.land(delivery)
    patients = _cells(warehouse, delivery, "patients")
    assert "patient_id" not in patients.columns and "birth_date" not in patients.columns
    assert reported_columns("patients") == [c for c in patients.columns if c not in (
        "site_id", "delivery_id", "source_file", "source_row", "file_sha256")]
    texts = set(patients.drop("source_row").unpivot().get_column("value").drop_nulls())
    assert not texts & {"100234", "100781", "101502", "1961-04-17"}


def test_cells_only_for_rows_that_landed(extract, make_delivery, tmp_path, warehouse):
    bad = extract.append("ivig_cycles", dose_g="abc")
    delivery = make_delivery(tmp_path, "h-one", "2026-11-24", extract.csv_tables())
    warehouse.land(delivery)
    cells = _cells(warehouse, delivery, "ivig_cycles")
    landed = warehouse.table(delivery, "ivig_cycles")
    assert sorted(cells["source_row"]) == sorted(landed["source_row"])
    assert bad not in cells["source_row"].to_list()


def test_xlsx_cells_name_the_sheet(extract, make_delivery, tmp_path, warehouse):
    delivery = make_delivery(tmp_path, "h-one", "2026-11-24", extract.xlsx_tables(), xlsx=True)
    warehouse.land(delivery)
    cells = _cells(warehouse, delivery, "treatments")
    assert set(cells["source_file"]) == {"extract.xlsx[treatments]"}
    assert cells.sort("source_row")["drug"].to_list() == ["Prednisona 5 mg", "CellCept"]
