"""XLSX cells the reader shows as empty (issue 10, point 9, and "rows, not deliveries").

fastexcel reads the value a formula had when the workbook was last calculated; a tool
that writes formulas without calculating them leaves none, and the cell used to land as
NULL with no quarantine row. Such a row is quarantined as `formula_without_value`, under
the cell's column, with the formula as the value (never for an identifier). Cells the
reader cannot convert (error values, dates outside its calendar) also read as empty:
their XML text is judged like the same text in a CSV.
"""

from __future__ import annotations

import zipfile

import fastexcel
import polars as pl
import pytest
from conftest import DateSerial, Formula, write_xlsx

from ivig_platform.landing.xlsx_cells import sheet_cells, sheet_parts

SITE = "h-la-paz"
DELIVERY = "2026-11-24"


def land(warehouse, make_delivery, tmp_path, sheets):
    delivery = make_delivery(tmp_path, SITE, DELIVERY, sheets, xlsx=True)
    manifest = warehouse.land(delivery)  # checks that landed + quarantined = source rows
    assert manifest.status == "landed", manifest.reason
    return delivery, manifest


def quarantined(warehouse, delivery, table: str) -> list[tuple]:
    return sorted(
        warehouse.quarantine(delivery).filter(pl.col("table_name") == table)
        .select("source_row", "column_name", "rule", "value").iter_rows()
    )


def test_formula_without_value_quarantines_its_row(extract, make_delivery, warehouse,
                                                   tmp_path):
    sheets = extract.xlsx_tables()
    sheets["ivig_cycles"][2][3] = Formula("D2*1")  # cycle 2's dose
    delivery, manifest = land(warehouse, make_delivery, tmp_path, sheets)
    assert quarantined(warehouse, delivery, "ivig_cycles") == [
        (2, "dose_g", "formula_without_value", "=D2*1")]
    record = warehouse.quarantine(delivery).row(0, named=True)
    assert record["detail"].startswith("dose_g: formula_without_value")
    assert manifest.tables["ivig_cycles"] == {"source_rows": 3, "landed": 2, "quarantined": 1}


def test_formula_without_value_in_an_identifier_column_shows_no_value(
        extract, make_delivery, warehouse, tmp_path):
    sheets = extract.xlsx_tables()
    sheets["patients"][2][2] = Formula('DATE(1955,11,2)')  # 100781's birth date
    delivery, _ = land(warehouse, make_delivery, tmp_path, sheets)
    assert quarantined(warehouse, delivery, "patients") == [
        (2, "birth_date", "formula_without_value", None)]
    assert "DATE(1955" not in str(warehouse.quarantine(delivery).to_dicts())


def test_formula_with_a_cached_value_lands_that_value(extract, make_delivery, warehouse,
                                                      tmp_path):
    sheets = extract.xlsx_tables()
    sheets["ivig_cycles"][2][3] = Formula("60*2", cached=120)
    sheets["ivig_cycles"][2][4] = Formula('IF(1,"","")', cached="")  # blank on purpose
    delivery, manifest = land(warehouse, make_delivery, tmp_path, sheets)
    assert manifest.rows_quarantined == 0
    row = warehouse.table(delivery, "ivig_cycles").filter(pl.col("source_row") == 2)
    assert row.select("dose_g", "weight_kg").row(0) == (120.0, None)


def test_row_holding_only_a_formula_without_value_is_a_source_row(extract, make_delivery,
                                                                  warehouse, tmp_path):
    sheets = extract.xlsx_tables()
    sheets["treatments"].insert(2, [None, Formula("B2"), None, None])  # between the two rows
    sheets["treatments"].append([Formula("A2"), None, None, None])  # below the last value
    delivery, manifest = land(warehouse, make_delivery, tmp_path, sheets)
    assert quarantined(warehouse, delivery, "treatments") == [
        (2, "drug", "formula_without_value", "=B2"),
        (4, "patient_id", "formula_without_value", None),
    ]
    assert warehouse.table(delivery, "treatments").get_column("source_row").to_list() == [1, 3]
    assert manifest.tables["treatments"]["source_rows"] == 4


def test_formula_cells_are_placed_when_the_table_does_not_start_at_a1(
        extract, make_delivery, warehouse, tmp_path):
    """The reader's table starts at the first cell with a value (here C3)."""
    sheets = extract.xlsx_tables()
    for name, rows in sheets.items():
        sheets[name] = [[], [], *[[None, None, *row] for row in rows]]
    sheets["assessments"][5][5] = Formula("F4+1")  # row 3 of the table, column value
    delivery, _ = land(warehouse, make_delivery, tmp_path, sheets)
    assert quarantined(warehouse, delivery, "assessments") == [
        (3, "value", "formula_without_value", "=F4+1")]


def test_formula_in_a_dropped_column_quarantines_nothing_by_itself(
        extract, make_delivery, warehouse, tmp_path):
    extract.add_column("patients", "nombre", ["Ana", "Luis", "Eva"])
    sheets = extract.xlsx_tables()
    sheets["patients"][1][7] = Formula('"Ana"')
    delivery, manifest = land(warehouse, make_delivery, tmp_path, sheets)
    assert manifest.rows_quarantined == 0
    assert manifest.dropped_columns == ["nombre"]


SHEET = """<?xml version="1.0" encoding="UTF-8"?>
<worksheet xmlns="http://purl.oclc.org/ooxml/spreadsheetml/main"><sheetData>
<row><c t="s"><v>0</v></c><c t="s"><v>1</v></c></row>
<row><c><f t="shared" ref="A2:A4" si="0">B2*2</f></c><c><v>1</v></c></row>
<row r="4"><c><f t="shared" si="0"/></c><c><f>1/0</f><v></v></c></row>
<row><c r="A5"><f>7</f><v>7</v></c></row>
</sheetData></worksheet>"""


def test_formula_cells_found_in_sheet_xml_without_references_and_with_shared_formulas(
        tmp_path):
    """Cells and rows without `r`, a shared formula, a blank cached value, a strict
    namespace: only the two formulas with no `<v>` at all count."""
    path = tmp_path / "book.xlsx"
    _workbook_with_sheet(path, SHEET)
    sheet = cells_of(path, "patients")
    assert sheet.origin == (0, 0)
    assert sheet.formulas == [(1, 0, "=B2*2"), (3, 0, "=B2*2")]
    assert sheet.relative(sheet.formulas) == [(1, 0, "=B2*2"), (3, 0, "=B2*2")]
    assert sheet.raw == [(1, 1, "1"), (4, 0, "7")]


def cells_of(path, sheet: str, *, converted: bool = True):
    return sheet_cells(path, sheet_parts(path).get(sheet), converted=converted)


def test_a_sheet_is_parsed_only_when_it_has_a_formula_or_unconverted_cells(extract, tmp_path):
    path = tmp_path / "book.xlsx"
    sheets = extract.xlsx_tables()
    sheets["treatments"][1][1] = Formula("A1")
    write_xlsx(path, sheets)
    assert cells_of(path, "patients", converted=False).origin is None  # not parsed
    assert cells_of(path, "patients").origin == (0, 0)
    assert cells_of(path, "treatments", converted=False).formulas == [(1, 1, "=A1")]
    assert cells_of(path, "nonexistent").origin is None


# (sheet, row, column, cell, rule, value shown)
UNCONVERTED = [
    ("ivig_cycles", 2, 3, float("nan"), "invalid_number", "#NUM!"),
    ("ivig_cycles", 3, 4, float("inf"), "invalid_number", "#DIV/0!"),
    ("ivig_cycles", 1, 2, DateSerial(1e10), "invalid_date", "10000000000"),
    ("treatments", 1, 2, DateSerial(1e9), "invalid_date", "1000000000"),  # optional column
    ("treatments", 2, 2, DateSerial(3e6), "invalid_date", "+10113-09-19 00:00:00"),
    ("treatments", 2, 3, DateSerial(-5), "date_out_of_range", "1899-12-26 00:00:00"),
]


@pytest.mark.parametrize(("sheet", "row", "column", "cell", "rule", "shown"), UNCONVERTED,
                         ids=[f"{c[0]}_{c[4]}_{c[5]}" for c in UNCONVERTED])
def test_cell_the_reader_cannot_convert_is_judged_by_its_text(
        sheet, row, column, cell, rule, shown, extract, make_delivery, warehouse, tmp_path):
    sheets = extract.xlsx_tables()
    sheets[sheet][row][column] = cell
    delivery, _ = land(warehouse, make_delivery, tmp_path, sheets)
    name = extract.header(sheet)[column]
    assert quarantined(warehouse, delivery, sheet) == [(row, name, rule, shown)]


def test_row_holding_only_an_error_cell_is_a_source_row(extract, make_delivery, warehouse,
                                                        tmp_path):
    sheets = extract.xlsx_tables()
    sheets["ivig_cycles"].insert(2, [None, None, None, float("nan"), None])
    delivery, manifest = land(warehouse, make_delivery, tmp_path, sheets)
    assert manifest.tables["ivig_cycles"]["source_rows"] == 4
    assert [r[:3] for r in quarantined(warehouse, delivery, "ivig_cycles")] == [
        (2, "patient_id", "required")]


def _workbook_with_sheet(path, sheet_xml: str) -> None:
    write_xlsx(path, {"patients": [["x"]]})
    with zipfile.ZipFile(path) as archive:
        parts = {info.filename: archive.read(info.filename) for info in archive.infolist()}
    parts["xl/worksheets/sheet1.xml"] = sheet_xml.encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)


# The first cell decides where the reader's table starts when it counts as a value for
# calamine: empty strings do, an empty number or a styled empty cell does not. The test
# asks fastexcel too, so a reader that changes its mind fails here.
ORIGIN = [
    ('<c r="A1" t="str"><v></v></c>', (0, 0)),
    ('<c r="A1" t="inlineStr"><is><t></t></is></c>', (0, 0)),
    ('<c r="A1" t="s"><v>0</v></c>', (0, 0)),
    ('<c r="A1" t="e"><v>#N/A</v></c>', (0, 0)),
    ('<c r="A1" t="b"><v>0</v></c>', (0, 0)),
    ('<c r="A1"><v></v></c>', (2, 2)),
    ('<c r="A1" s="1"/>', (2, 2)),
    ('<c r="A1"><f>1+1</f></c>', (2, 2)),
]


@pytest.mark.parametrize(("first", "origin"), ORIGIN, ids=[o[0] for o in ORIGIN])
def test_table_origin_follows_what_the_reader_counts_as_a_value(first, origin, tmp_path):
    path = tmp_path / "book.xlsx"
    _workbook_with_sheet(path, (
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<sheetData><row r="1">{first}</row><row r="3"><c r="C3" t="s"><v>0</v></c>'
        '<c r="D3"><v>5</v></c></row></sheetData></worksheet>'))
    assert cells_of(path, "patients").origin == origin
    read = fastexcel.read_excel(str(path)).load_sheet_by_name(
        "patients", header_row=None, dtypes="string").to_polars()
    assert read.shape == (3 - origin[0], 4 - origin[1])
