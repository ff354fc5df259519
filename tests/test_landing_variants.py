"""Format variants of protocol §4 (and the header/column rules of §3), one test each.

Every variant is the same small extract written another way; each test lands it and looks
at what came out: the dialect landing recorded, the typed values, the text that must
survive the encoding, and — for the extra identifier columns — that their values are
nowhere under the warehouse folder.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

from ivig_platform.warehouse.build import RunInfo, build_database
from ivig_platform.warehouse.publish import build_path

SITE = "h-la-paz"
DELIVERY = "2026-11-24"


def land(warehouse, make_delivery, tmp_path, tables, *, xlsx=False, site=SITE):
    delivery = make_delivery(tmp_path, site, DELIVERY, tables, xlsx=xlsx)
    manifest = warehouse.land(delivery)
    assert manifest.status == "landed", manifest.reason
    return delivery, manifest


def by_row(frame: pl.DataFrame, column: str) -> dict[int, object]:
    return dict(zip(frame.get_column("source_row").to_list(), frame.get_column(column).to_list(),
                    strict=True))


def content(warehouse, delivery, table: str) -> list[dict]:
    """Landed rows without provenance that depends on the file (names, hashes)."""
    frame = warehouse.table(delivery, table).drop(
        "site_id", "delivery_id", "source_file", "file_sha256", "loaded_at", "patient_key")
    return frame.sort("source_row").to_dicts()


@pytest.fixture(scope="module")
def english(tmp_path_factory, new_extract, make_delivery, new_warehouse):
    """The base extract as written in conftest (English, `,`, UTF-8), landed once."""
    tmp = tmp_path_factory.mktemp("english")
    warehouse = new_warehouse(tmp / "warehouse", b"test-pseudonym-key-0123456789abcdef")
    delivery = make_delivery(tmp, "h-en", DELIVERY, new_extract().csv_tables())
    assert warehouse.land(delivery).rows_quarantined == 0
    return warehouse, delivery


def test_comma_utf8_file_reads_dot_decimals_and_accents(extract, make_delivery, warehouse,
                                                        tmp_path):
    extract.tables["adverse_events"][1][2] = "Reacción infusional — cefalea"
    delivery, manifest = land(warehouse, make_delivery, tmp_path, extract.csv_tables())
    assert set(manifest.formats.values()) == {"comma, utf-8"}
    assert manifest.rows_quarantined == 0
    cycles = warehouse.table(delivery, "ivig_cycles")
    assert by_row(cycles, "weight_kg") == {1: 60.0, 2: 60.5, 3: 70.0}
    assert by_row(warehouse.table(delivery, "assessments"), "value")[5] == 0.78
    assert warehouse.table(delivery, "adverse_events").get_column("term").to_list() == [
        "Reacción infusional — cefalea"]


def spanish_extract(extract):
    """The base extract as a `;` hospital writes it: decimal comma, thousands dot."""
    cycles = extract.tables["ivig_cycles"]
    cycles[1][3], cycles[2][4] = "120,5", "60,5"
    assessments = extract.tables["assessments"]
    assessments[2][3] = "1.149"
    assessments[3][3:5] = ["3,62", "µkat/L"]
    assessments[5][3] = "0,78"
    extract.tables["treatments"][1][1] = "Ácido micofenólico"
    extract.tables["adverse_events"][1][2:4] = ["Reacción infusional", "Leve"]
    extract.tables["patients"][1][1] = "Mujer"
    extract.tables["patients"][2][5] = "Digestiva|Cutánea"
    return extract


def test_semicolon_file_reads_decimal_comma_and_thousands_dot(extract, make_delivery,
                                                              warehouse, tmp_path):
    spanish_extract(extract)
    tables = {name: text.encode("cp1252")
              for name, text in extract.csv_tables(delimiter=";").items()}
    assert "µ".encode("cp1252") in tables["assessments"]  # one byte, not UTF-8
    delivery, manifest = land(warehouse, make_delivery, tmp_path, tables)

    # ASCII-only files are valid UTF-8 too; the others can only be Windows-1252.
    assert manifest.formats == {
        name: "semicolon, " + ("utf-8" if data.isascii() else "windows-1252")
        for name, data in tables.items()
    }
    assert manifest.formats["assessments"] == "semicolon, windows-1252"
    assert manifest.rows_quarantined == 0
    cycles = warehouse.table(delivery, "ivig_cycles")
    assert by_row(cycles, "dose_g")[1] == 120.5
    assert by_row(cycles, "weight_kg")[2] == 60.5
    values = by_row(warehouse.table(delivery, "assessments"), "value")
    assert values[2] == 1149.0
    assert values[3] == pytest.approx(3.62 * 60)
    assert values[5] == 0.78
    assert warehouse.table(delivery, "treatments").get_column("drug").to_list()[0] == (
        "Ácido micofenólico")
    events = warehouse.table(delivery, "adverse_events").row(0, named=True)
    assert (events["term"], events["severity"]) == ("Reacción infusional", "mild")
    assert warehouse.table(delivery, "patients").get_column("sex").to_list()[0] == "F"


def test_semicolon_file_quarantines_dot_decimal(extract, make_delivery, warehouse, tmp_path):
    row = spanish_extract(extract).append("ivig_cycles", dose_g="120.5")
    delivery, _ = land(warehouse, make_delivery, tmp_path, extract.csv_tables(delimiter=";"))
    record = warehouse.quarantine(delivery).row(0, named=True)
    assert (record["source_row"], record["column_name"], record["rule"], record["value"]) == (
        row, "dose_g", "invalid_number", "120.5")


def test_semicolon_file_quarantines_dot_decimal_with_three_places(extract, make_delivery,
                                                                   warehouse, tmp_path):
    row = spanish_extract(extract).append("assessments", measure="ck", value="0.250",
                                          unit="µkat/L")
    delivery, _ = land(warehouse, make_delivery, tmp_path, extract.csv_tables(delimiter=";"))
    records = warehouse.quarantine(delivery).select(
        "source_row", "column_name", "rule", "value").rows()
    assert records == [(row, "value", "invalid_number", "0.250")]


def test_tab_file_with_utf8_bom_and_crlf(extract, make_delivery, warehouse, tmp_path):
    extract.tables["adverse_events"][1][2] = "Náuseas"
    tables = {name: b"\xef\xbb\xbf" + text.encode("utf-8")
              for name, text in extract.csv_tables(delimiter="\t", line_end="\r\n").items()}
    delivery, manifest = land(warehouse, make_delivery, tmp_path, tables)

    assert set(manifest.formats.values()) == {"tab, utf-8-sig, CRLF"}
    assert manifest.rows_quarantined == 0
    # The BOM is not part of the first header, the CR not part of the last field.
    patients = warehouse.table(delivery, "patients")
    assert patients.height == 3
    assert by_row(warehouse.table(delivery, "ivig_cycles"), "weight_kg")[2] == 60.5
    event = warehouse.table(delivery, "adverse_events").row(0, named=True)
    assert (event["term"], event["action"]) == ("Náuseas", "none")


def test_xlsx_workbook_with_real_date_and_number_cells(extract, make_delivery, warehouse,
                                                       tmp_path):
    bad = extract.append("ivig_cycles", dose_g="0")
    extract.append("assessments", measure="mrc", value="4+")
    sheets = extract.xlsx_tables()
    assert isinstance(sheets["patients"][1][2], date)  # a real date cell
    assert isinstance(sheets["patients"][1][0], int)  # the NHC as a number cell
    assert isinstance(sheets["ivig_cycles"][2][4], float)
    # Spreadsheet padding: an empty row, then a row typed as text in a date column.
    sheets["ivig_cycles"].append([None] * 5)
    text_date = len(sheets["ivig_cycles"])
    sheets["ivig_cycles"].append([100781, 2, "10/06/2021", 140, None])
    delivery, manifest = land(warehouse, make_delivery, tmp_path, sheets, xlsx=True)

    assert set(manifest.formats.values()) == {"xlsx"}
    cycles = warehouse.table(delivery, "ivig_cycles")
    assert cycles.get_column("source_file").unique().to_list() == ["extract.xlsx[ivig_cycles]"]
    assert by_row(cycles, "start_date") == {
        1: date(2021, 3, 1), 2: date(2021, 4, 1), 3: date(2021, 5, 10),
        text_date: date(2021, 6, 10)}
    assert by_row(cycles, "weight_kg")[2] == 60.5
    assert by_row(cycles, "cycle_number")[1] == 1
    record = warehouse.quarantine(delivery).row(0, named=True)
    assert (record["table_name"], record["source_file"], record["source_row"], record["rule"]) \
        == ("ivig_cycles", "extract.xlsx[ivig_cycles]", bad, "out_of_range")
    assert manifest.tables["ivig_cycles"]["source_rows"] == 5  # the empty row is not a record

    # Numeric patient ids join across sheets: ages, events, assessments all land.
    patients = warehouse.table(delivery, "patients")
    assert by_row(patients, "age_at_index")[1] == round(
        (date(2021, 3, 1) - date(1961, 4, 17)).days / 365.25, 1)
    assessments = warehouse.table(delivery, "assessments")
    assert sorted(assessments.get_column("value").to_list()) == [
        0.78, 3.0, 4.33, 15.0, 217.0, 1149.0]
    assert warehouse.table(delivery, "adverse_events").height == 1


def test_xlsx_sheet_names_match_ignoring_case(extract, make_delivery, warehouse, tmp_path):
    sheets = {name.upper(): rows for name, rows in extract.xlsx_tables().items()}
    _, manifest = land(warehouse, make_delivery, tmp_path, sheets, xlsx=True)
    assert manifest.rows_landed == 14


def test_xlsx_and_csv_land_the_same_rows(english, extract, make_delivery, warehouse, tmp_path):
    from_xlsx, _ = land(warehouse, make_delivery, tmp_path, extract.xlsx_tables(), xlsx=True)
    for table in extract.tables:
        assert content(warehouse, from_xlsx, table) == content(*english, table), table


def test_day_first_dates_with_slash_and_dash_and_never_month_first(extract, make_delivery,
                                                                   warehouse, tmp_path):
    slash = extract.append("ivig_cycles", start_date="05/06/2021")
    dash = extract.append("ivig_cycles", start_date="5-6-2021")
    iso = extract.append("ivig_cycles", start_date="2021-6-5")
    month_first = extract.append("ivig_cycles", start_date="12/25/2020")
    delivery, _ = land(warehouse, make_delivery, tmp_path, extract.csv_tables())
    starts = by_row(warehouse.table(delivery, "ivig_cycles"), "start_date")
    assert starts[slash] == starts[dash] == starts[iso] == date(2021, 6, 5)
    record = warehouse.quarantine(delivery).row(0, named=True)
    assert (record["source_row"], record["rule"], record["value"]) == (
        month_first, "invalid_date", "12/25/2020")


CK_UNITS = [  # unit as written, value as written, value in U/L
    ("µkat/L", "19.15", 1149.0),  # micro sign U+00B5
    ("μkat/L", "19.15", 1149.0),  # Greek mu U+03BC
    ("ukat/L", "3.5", 210.0),
    ("UKAT/L", "1", 60.0),
    ("U/L", "1149", 1149.0),
    ("UI/L", "1149", 1149.0),
    ("IU/L", "1149", 1149.0),
    (" u/l ", "217", 217.0),
]


def test_ck_in_ukat_converted_times_60_and_in_u_per_litre_kept(extract, make_delivery,
                                                                warehouse, tmp_path):
    rows = [extract.append("assessments", measure="ck", value=value, unit=unit)
            for unit, value, _ in CK_UNITS]
    delivery, manifest = land(warehouse, make_delivery, tmp_path, extract.csv_tables())
    assert manifest.rows_quarantined == 0
    landed = warehouse.table(delivery, "assessments")
    values, units = by_row(landed, "value"), by_row(landed, "unit_as_reported")
    for row, (unit, _, expected) in zip(rows, CK_UNITS, strict=True):
        assert values[row] == pytest.approx(expected), unit
        assert units[row] == unit.strip(), unit


SPANISH_HEADERS = {
    "patients": {"patient_id": "ID-Paciente", "sex": "SEXO", "birth_date": "Fecha Nacimiento",
                 "ssc_subtype": "Subtipo SSc", "overlap": "Solapamiento",
                 "indication": "Indicación", "ivig_stop_reason": "Motivo Suspensión"},
    "ivig_cycles": {"patient_id": "NHC", "cycle_number": "Ciclo",
                    "start_date": "fecha-inicio", "dose_g": "Dosis G", "weight_kg": "PESO_KG"},
    "treatments": {"patient_id": "id paciente", "drug": "Fármaco",
                   "start_date": "Fecha Inicio", "end_date": "Fecha Fin"},
    "assessments": {"patient_id": "Id_Paciente", "assessment_date": "Fecha",
                    "measure": "Medida", "value": "Valor", "unit": "Unidad"},
    "adverse_events": {"patient_id": "nhc", "onset_date": "FECHA INICIO",
                       "term": "Término", "severity": "Gravedad",
                       "serious": "Evento Grave", "related": "Relacionado",
                       "action": "Acción"},
}

SPANISH_VALUES = {
    ("patients", 1): {"sex": " mujer ", "ssc_subtype": "DIFUSA", "overlap": "Miopatia_Inflamatoria",
                      "indication": "Miositis"},
    ("patients", 2): {"sex": "Hombre", "ssc_subtype": " Limitada", "indication":
                      "Digestiva | CUTÁNEA"},
    ("patients", 3): {"overlap": "miopatia_inflamatoria|Sjögren", "indication": "miositis",
                      "ivig_stop_reason": "Efecto_Adverso"},
    ("assessments", 1): {"measure": "Fuerza_MRC"},
    ("assessments", 2): {"measure": " CPK "},
    ("assessments", 4): {"measure": "Rodnan"},
    ("adverse_events", 1): {"severity": "LEVE", "serious": "No", "related": "Sí",
                            "action": "Ninguna"},
}


def test_spanish_headers_and_category_values_land_like_english(english, new_extract,
                                                               make_delivery, warehouse, tmp_path):
    spanish = new_extract()
    for (table, row), values in SPANISH_VALUES.items():
        header = spanish.header(table)
        for column, value in values.items():
            spanish.tables[table][row][header.index(column)] = value
    for table, names in SPANISH_HEADERS.items():
        spanish.rename(table, names)
    folder, manifest = land(warehouse, make_delivery, tmp_path, spanish.csv_tables())
    assert manifest.dropped_columns == []
    assert manifest.rows_quarantined == 0
    for table in spanish.tables:
        assert content(warehouse, folder, table) == content(*english, table), table


NAMES = ["María José García Pérez", "Joaquín Fernández Núñez", "Lucía Martín Sáez"]
DNIS = ["12345678Z", "87654321X", "11223344B"]
PHONES = ["+34 612 345 678", "913 456 789", "600111222"]


def everything_under(folder: Path) -> str:
    """All text the warehouse folder holds: Parquet and DuckDB files decoded row by row
    (their bytes may be compressed), and every file's raw bytes as well."""
    parts: list[str] = []
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        parts.append(path.read_bytes().decode("utf-8", errors="replace"))
        if path.suffix == ".parquet":
            parts.append(repr(pl.read_parquet(path).to_dicts()))
        if path.suffix == ".duckdb":
            con = duckdb.connect(str(path), read_only=True)
            try:
                tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables()")
                for schema, table in tables.fetchall():
                    parts.append(repr(con.execute(f"FROM {schema}.{table}").fetchall()))
            finally:
                con.close()
    return "\n".join(parts)


def test_extra_identifier_columns_are_dropped_listed_and_stored_nowhere(
        extract, make_delivery, warehouse, tmp_path):
    extract.add_column("patients", "Nombre", NAMES)
    extract.add_column("patients", "DNI", DNIS)
    extract.add_column("patients", "Teléfono", PHONES)
    extract.add_column("adverse_events", "Nombre y apellidos", NAMES[:1])
    # Quarantined rows: their dropped values, ids and birth dates are not kept either.
    extract.append("patients", patient_id="377001", Nombre="Pilar Ruiz Ortega",
                   DNI="99887766K", **{"Teléfono": "699000111"}, sex="X")
    extract.append("patients", patient_id="377002", birth_date="31/02/1962")
    delivery, manifest = land(warehouse, make_delivery, tmp_path, extract.csv_tables())
    build_database(build_path(warehouse.path, "privacy"), warehouse.path, [manifest],
                   RunInfo("privacy", datetime.now(UTC), "inbox"))

    assert manifest.dropped_columns == sorted(["Nombre", "DNI", "Teléfono", "Nombre y apellidos"])
    assert manifest.rows_quarantined == 2
    stored = everything_under(warehouse.path)
    assert "Teléfono" in stored and "sex: invalid_category" in stored  # the search works
    for value in [*NAMES, *DNIS, *PHONES, "Pilar Ruiz Ortega", "99887766K", "699000111"]:
        assert value not in stored, value
    # The patients' direct identifiers do not reach the warehouse either (§6).
    for clear_id in ["100234", "100781", "101502", "377001", "377002"]:
        assert clear_id not in stored, clear_id
    for birth in ["1961-04-17", "1955-11-02", "1970-08-23", "1965-01-10", "31/02/1962"]:
        assert birth not in stored, birth
    assert set(warehouse.table(delivery, "patients").columns).isdisjoint(
        {"patient_id", "birth_date", "nombre", "dni", "telefono"})


def test_delimiter_and_encoding_are_found_per_file(extract, make_delivery, warehouse,
                                                   tmp_path):
    spanish_extract(extract)
    extract.tables["ivig_cycles"][1][3] = "120.5"
    extract.tables["ivig_cycles"][2][4] = "60.5"
    extract.tables["assessments"][3][3] = "3.62"
    extract.tables["assessments"][2][3] = "1149"
    extract.tables["assessments"][5][3] = "0.78"
    tables = {
        "patients": extract.csv("patients", ";").encode("cp1252"),
        "ivig_cycles": extract.csv("ivig_cycles", "\t", "\r\n").encode("utf-8"),
        "treatments": b"\xef\xbb\xbf" + extract.csv("treatments", ";").encode("utf-8"),
        "assessments": extract.csv("assessments", ",").encode("cp1252"),
        "adverse_events": extract.csv("adverse_events", "\t").encode("cp1252"),
    }
    delivery, manifest = land(warehouse, make_delivery, tmp_path, tables)
    assert manifest.formats == {
        "patients": "semicolon, windows-1252",
        "ivig_cycles": "tab, utf-8, CRLF",
        "treatments": "semicolon, utf-8-sig",
        "assessments": "comma, windows-1252",
        "adverse_events": "tab, windows-1252",
    }
    assert manifest.rows_quarantined == 0
    assert by_row(warehouse.table(delivery, "assessments"), "value")[3] == pytest.approx(217.2)
    assert warehouse.table(delivery, "treatments").get_column("drug").to_list()[0] == (
        "Ácido micofenólico")


def test_blank_lines_are_not_records(extract, make_delivery, warehouse, tmp_path):
    text = extract.csv("ivig_cycles").replace("\n", "\n\n", 1) + "\n\n"
    delivery, manifest = land(warehouse, make_delivery, tmp_path,
                              {**extract.csv_tables(), "ivig_cycles": text})
    assert manifest.tables["ivig_cycles"] == {"source_rows": 3, "landed": 3, "quarantined": 0}


def test_quoted_fields_keep_delimiters_inside(extract, make_delivery, warehouse, tmp_path):
    row = extract.append("treatments", drug="Micofenolato; 1.000 mg, cada 12 h")
    delivery, _ = land(warehouse, make_delivery, tmp_path, extract.csv_tables(delimiter=";"))
    drugs = by_row(warehouse.table(delivery, "treatments"), "drug")
    assert drugs[row] == "Micofenolato; 1.000 mg, cada 12 h"


def test_delimiter_is_found_on_the_header_line_when_lines_end_in_cr_alone(
        extract, make_delivery, warehouse, tmp_path):
    """Old Mac exports end lines in CR alone (not §4, but seen): the header line is still
    the first line, not the whole file with every comma of the drug names in it."""
    for i in range(6):
        extract.append("treatments", drug=f"Prednisona, 5 mg, día {i}, pauta, descendente, "
                                          "con, comidas, y, control")
    tables = {**extract.csv_tables(), "treatments": extract.csv("treatments", ";", "\r")}
    delivery, manifest = land(warehouse, make_delivery, tmp_path, tables)
    assert manifest.formats["treatments"] == "semicolon, utf-8"
    assert manifest.tables["treatments"] == {"source_rows": 8, "landed": 8, "quarantined": 0}
