"""Invisible characters and Unicode spaces in cells (issue 10, point 9).

A zero-width space pasted after a medical record number made a second patient and turned
her other rows into `unknown_patient`. Identifiers and codes are matched without
invisible characters and with every Unicode space read as a space; free text keeps its
characters and loses only the invisible ones around it. Cases are data: one row per cell
as written and what it must land as.
"""

from __future__ import annotations

import polars as pl
import pytest

from ivig_platform.landing.parsing import fold_header
from ivig_platform.landing.pseudonym import pseudonym

SITE = "h-la-paz"
DELIVERY = "2026-11-24"
KEY = b"invisible-test-key-0123456789abcdef"

ZWSP, ZWNJ, ZWJ, WJ, BOM, SHY = "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"
NBSP, THIN, IDEOGRAPHIC = "\u00a0", "\u2009", "\u3000"
INVISIBLE = [ZWSP, ZWNJ, ZWJ, WJ, BOM, SHY]

# (case, table, column, cell as written, other columns, column read back, value it lands as)
CASES = [
    *[(f"cycle_patient_id_ends_with_u{ord(ch):04x}", "ivig_cycles", "patient_id",
       f"100781{ch}", {"cycle_number": str(20 + i)}, "patient_key",
       pseudonym(KEY, SITE, "100781"))
      for i, ch in enumerate(INVISIBLE)],
    ("cycle_patient_id_zwsp_inside", "ivig_cycles", "patient_id", f"100{ZWSP}781",
     {"cycle_number": "3"}, "patient_key", pseudonym(KEY, SITE, "100781")),
    ("cycle_patient_id_nbsp_around", "ivig_cycles", "patient_id", f"{NBSP}100781{NBSP}",
     {"cycle_number": "4"}, "patient_key", pseudonym(KEY, SITE, "100781")),
    ("cycle_patient_id_bom_first", "ivig_cycles", "patient_id", f"{BOM}100781",
     {"cycle_number": "5"}, "patient_key", pseudonym(KEY, SITE, "100781")),
    ("sex_with_zwsp", "patients", "sex", f"Mujer{ZWSP}", {}, "sex", "F"),
    ("sex_with_nbsp", "patients", "sex", f"{NBSP}M{NBSP}", {}, "sex", "M"),
    ("subtype_with_soft_hyphen", "patients", "ssc_subtype", f"difu{SHY}sa", {},
     "ssc_subtype", "diffuse"),
    ("overlap_items_with_invisibles", "patients", "overlap", f"iim{ZWJ} |{WJ}les", {},
     "overlap", ["iim", "sle"]),
    ("indication_item_only_invisible_is_no_item", "patients", "indication",
     f"skin|{ZWSP}", {}, "indication", ["skin"]),
    ("serious_si_with_ideographic_space", "adverse_events", "serious", f"Sí{IDEOGRAPHIC}", {},
     "serious", True),
    ("measure_with_zwsp_inside", "assessments", "measure", f"c{ZWSP}k",
     {"value": "300", "unit": "U/L"}, "measure", "ck"),
    ("unit_with_thin_space_and_zwnj", "assessments", "unit", f"U{THIN}/{ZWNJ}L",
     {"measure": "ck", "value": "301"}, "value", 301.0),
    ("number_with_zwsp", "ivig_cycles", "dose_g", f"125{ZWSP}", {"cycle_number": "6"},
     "dose_g", 125.0),
    ("date_with_word_joiner", "ivig_cycles", "start_date", f"2021-06-02{WJ}",
     {"cycle_number": "7"}, "start_date", "2021-06-02"),
    ("drug_trimmed_of_invisibles_around", "treatments", "drug",
     f"{ZWSP}{NBSP}Rituximab{BOM} ", {}, "drug", "Rituximab"),
    ("drug_keeps_characters_inside", "treatments", "drug", f"Ritu{SHY}ximab", {}, "drug",
     f"Ritu{SHY}ximab"),
    ("term_keeps_nbsp_inside", "adverse_events", "term", f"Reacción{NBSP}infusional{ZWSP}",
     {}, "term", f"Reacción{NBSP}infusional"),
]


@pytest.fixture(scope="module")
def landed(tmp_path_factory, new_extract, make_delivery, new_warehouse):
    extract = new_extract()
    rows = {}
    for case, table, column, cell, others, _, _ in CASES:
        rows[case] = extract.append(table, **{**others, column: cell})
    tmp = tmp_path_factory.mktemp("invisible")
    delivery = make_delivery(tmp, SITE, DELIVERY, extract.csv_tables())
    warehouse = new_warehouse(tmp / "warehouse", KEY)
    manifest = warehouse.land(delivery)
    assert manifest.status == "landed", manifest.reason
    return warehouse, delivery, rows


@pytest.mark.parametrize(("case", "table", "column", "cell", "others", "read", "expected"),
                         CASES, ids=[c[0] for c in CASES])
def test_invisible_characters_do_not_change_what_a_cell_means(
        case, table, column, cell, others, read, expected, landed):
    warehouse, delivery, rows = landed
    quarantined = warehouse.quarantine(delivery).filter(
        (pl.col("table_name") == table) & (pl.col("source_row") == rows[case]))
    assert quarantined.is_empty(), quarantined.to_dicts()
    row = warehouse.table(delivery, table).filter(pl.col("source_row") == rows[case])
    got = row.get_column(read).to_list()[0]
    assert (str(got) if read.endswith("_date") else got) == expected


def test_patient_id_with_a_trailing_zero_width_space_is_one_patient(
        extract, make_delivery, warehouse, tmp_path):
    """The issue's case: her own row with the character, her cycles without it."""
    extract.tables["patients"][1][0] = f"100234{ZWSP}"
    delivery = make_delivery(tmp_path, SITE, DELIVERY, extract.csv_tables())
    manifest = warehouse.land(delivery)
    assert manifest.rows_quarantined == 0, warehouse.quarantine(delivery).to_dicts()
    keys = warehouse.table(delivery, "patients").get_column("patient_key").to_list()
    assert keys[0] == pseudonym(warehouse.key, SITE, "100234")


def test_a_patient_id_of_only_invisible_characters_is_missing(extract, make_delivery,
                                                              warehouse, tmp_path):
    row = extract.append("patients", patient_id=f"{ZWSP}{NBSP}{BOM}")
    delivery = make_delivery(tmp_path, SITE, DELIVERY, extract.csv_tables())
    warehouse.land(delivery)
    record = warehouse.quarantine(delivery).filter(pl.col("source_row") == row).row(
        0, named=True)
    assert (record["table_name"], record["rule"], record["value"]) == (
        "patients", "required", None)


def test_two_ids_that_differ_only_by_an_invisible_character_are_a_duplicate(
        extract, make_delivery, warehouse, tmp_path):
    first = extract.append("patients", patient_id="300001")
    second = extract.append("patients", patient_id=f"3000{ZWJ}01")
    delivery = make_delivery(tmp_path, SITE, DELIVERY, extract.csv_tables())
    warehouse.land(delivery)
    quarantine = warehouse.quarantine(delivery).filter(pl.col("table_name") == "patients")
    assert sorted(quarantine.select("source_row", "rule").iter_rows()) == [
        (first, "duplicate_key"), (second, "duplicate_key")]


@pytest.mark.parametrize(("header", "meant"), [
    (f"patient_id{ZWSP}", "patient_id"), (f"{BOM}patient_id", "patient_id"),
    (f"patient{NBSP}id", "patient_id"), (f"id{SHY}_paciente", "id_paciente"),
    (f"NHC{WJ}", "nhc"), (f"fecha{IDEOGRAPHIC}inicio", "fecha_inicio"),
])
def test_header_names_match_without_invisible_characters_and_with_any_space(header, meant):
    assert fold_header(header) == fold_header(meant)


def test_a_header_with_an_invisible_character_maps_to_its_column(extract, make_delivery,
                                                                 warehouse, tmp_path):
    extract.rename("ivig_cycles", {"dose_g": f"dosis{NBSP}g{ZWSP}", "patient_id": f"NHC{BOM}"})
    delivery = make_delivery(tmp_path, SITE, DELIVERY, extract.csv_tables())
    manifest = warehouse.land(delivery)
    assert (manifest.status, manifest.rows_quarantined, manifest.dropped_columns) == (
        "landed", 0, [])
