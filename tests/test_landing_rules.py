"""Row rules of protocol §3/§5: what lands, what is quarantined, under which rule.

Single-row rules are data: `cases/row_rules.csv` holds one line per rule and column (the
raw value, the context the row needs, the expected rule and quarantined value) and
`cases/accepted_values.csv` the values that must land and what they land as. All cases of
a file go into one delivery, landed once per module; each case finds its own row by
`source_row`. Rules that need several rows (duplicates, quarantined patients, adverse
events without a landed cycle, several rules in one row) have their own tests below.
"""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from ivig_platform.landing.contract import CONTRACT, REJECTION_CODES, RULE_ORDER

CASES = Path(__file__).parent / "cases"
SITE = "h-gregorio-maranon"
DELIVERY = "2026-11-24"


def read_cases(name: str) -> list[dict[str, str]]:
    with (CASES / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def context(text: str) -> dict[str, str]:
    """`measure=ck;unit=µkat/L` → the other columns the row needs (values kept verbatim)."""
    pairs = [item.split("=", 1) for item in text.split(";") if item]
    return {name: value for name, value in pairs}


def case_params(rows: list[dict[str, str]]) -> list:
    params = []
    for row in rows:
        marks = (
            [pytest.mark.xfail(reason=row["xfail"], strict=True)] if row.get("xfail") else []
        )
        params.append(pytest.param(row, id=row["case"], marks=marks))
    return params


RULE_CASES = read_cases("row_rules.csv")
# Rows of the base extract (conftest.BASE), all valid.
BASE_ROWS = {"patients": 3, "ivig_cycles": 3, "treatments": 2, "assessments": 5,
             "adverse_events": 1}
# Cases that the code under test gets wrong today land instead of being quarantined.
XFAIL_CASES = sum(1 for c in RULE_CASES if c["xfail"])
VALUE_CASES = read_cases("accepted_values.csv")


def land_cases(cases, tmp_path_factory, new_extract, make_delivery, new_warehouse, key):
    """One delivery holding the base extract plus one appended row per case."""
    extract = new_extract()
    rows: dict[str, int] = {}
    for case in cases:
        values = {**context(case["context"]), case["column"]: case["raw_value"]}
        rows[case["case"]] = extract.append(case["table"], **values)
    tmp = tmp_path_factory.mktemp("cases")
    delivery = make_delivery(tmp, SITE, DELIVERY, extract.csv_tables())
    warehouse = new_warehouse(tmp / "warehouse", key)
    manifest = warehouse.land(delivery)
    assert manifest.status == "landed", manifest.reason
    return warehouse, delivery, manifest, rows


@pytest.fixture(scope="module")
def rule_cases(tmp_path_factory, new_extract, make_delivery, new_warehouse):
    return land_cases(RULE_CASES, tmp_path_factory, new_extract, make_delivery,
                      new_warehouse, b"rules-test-key-0123456789abcdef")


@pytest.fixture(scope="module")
def value_cases(tmp_path_factory, new_extract, make_delivery, new_warehouse):
    return land_cases(VALUE_CASES, tmp_path_factory, new_extract, make_delivery,
                      new_warehouse, b"rules-test-key-0123456789abcdef")


def quarantined_row(warehouse, delivery, table: str, source_row: int) -> dict:
    found = warehouse.quarantine(delivery).filter(
        (pl.col("table_name") == table) & (pl.col("source_row") == source_row)
    )
    assert found.height == 1, f"{table} row {source_row} quarantined {found.height} times"
    return found.row(0, named=True)


def landed_source_rows(warehouse, delivery, table: str) -> set[int]:
    return set(warehouse.table(delivery, table).get_column("source_row").to_list())


@pytest.mark.parametrize("case", case_params(RULE_CASES))
def test_row_rule_quarantines_the_row(case, rule_cases):
    warehouse, delivery, _, rows = rule_cases
    table, source_row = case["table"], rows[case["case"]]
    record = quarantined_row(warehouse, delivery, table, source_row)
    assert record["site_id"] == SITE
    assert record["delivery_id"] == DELIVERY
    assert record["table_name"] == table
    assert record["source_file"] == f"{table}.csv"
    assert record["column_name"] == case["column"]
    assert record["rule"] == case["rule"]
    assert record["value"] == (case["value"] or None)
    assert f"{case['column']}: {case['rule']}" in record["detail"]
    assert (case.get("detail") or "") in record["detail"]
    assert source_row not in landed_source_rows(warehouse, delivery, table)


def test_row_rule_cases_never_quote_an_identifier(rule_cases):
    warehouse, delivery, _, _ = rule_cases
    quarantine = warehouse.quarantine(delivery)
    identifiers = quarantine.filter(pl.col("column_name").is_in(["patient_id", "birth_date"]))
    assert identifiers.height > 0
    assert identifiers.get_column("value").null_count() == identifiers.height


def test_row_rule_cases_leave_the_base_extract_landed(rule_cases):
    """The bad rows take nothing valid down with them: every base row still lands."""
    warehouse, delivery, manifest, _ = rule_cases
    for table, n in BASE_ROWS.items():
        assert set(range(1, n + 1)) <= landed_source_rows(warehouse, delivery, table), table


def test_counts_add_up_in_a_delivery_mixing_many_bad_rows(rule_cases):
    _, _, manifest, _ = rule_cases
    for table, counts in manifest.tables.items():
        appended = sum(1 for c in RULE_CASES if c["table"] == table)
        assert counts["source_rows"] == BASE_ROWS[table] + appended, table
        assert counts["landed"] + counts["quarantined"] == counts["source_rows"], table
    assert manifest.source_rows == sum(BASE_ROWS.values()) + len(RULE_CASES)
    assert manifest.rows_landed + manifest.rows_quarantined == manifest.source_rows
    assert len(RULE_CASES) - XFAIL_CASES <= manifest.rows_quarantined <= len(RULE_CASES)


def test_every_rule_of_the_vocabulary_has_a_test():
    covered_by_cases = {c["rule"] for c in RULE_CASES}
    covered_below = {"malformed_row", "duplicate_key", "quarantined_patient", "no_landed_cycle",
                     "formula_without_value"}  # the last in test_landing_xlsx_formulas.py
    assert covered_by_cases | covered_below == set(RULE_ORDER)


def test_contract_md_documents_every_rule_and_rejection_code():
    text = (Path(__file__).parents[1] / "ivig_platform" / "landing" / "CONTRACT.md").read_text()
    assert [code for code in (*RULE_ORDER, *REJECTION_CODES) if f"`{code}`" not in text] == []


def expected_landed(column: str, table: str, text: str):
    kind = CONTRACT[table].column(column).kind if column != "value" else "value"
    if kind == "list":
        return sorted(text.split("|")) if text else []
    if text == "":
        return None
    if kind == "date":
        return date.fromisoformat(text)
    if kind == "yesno":
        return text == "true"
    if kind == "integer":
        return int(text)
    if kind in ("decimal", "value"):
        return float(text)
    return text


@pytest.mark.parametrize("case", case_params(VALUE_CASES))
def test_accepted_value_lands_canonical(case, value_cases):
    warehouse, delivery, _, rows = value_cases
    table, source_row = case["table"], rows[case["case"]]
    quarantine = warehouse.quarantine(delivery).filter(
        (pl.col("table_name") == table) & (pl.col("source_row") == source_row)
    )
    assert quarantine.is_empty(), quarantine.to_dicts()
    landed = warehouse.table(delivery, table).filter(pl.col("source_row") == source_row)
    assert landed.height == 1
    got = landed.get_column(case["column"]).to_list()[0]
    expected = expected_landed(case["column"], table, case["landed_value"])
    if isinstance(expected, float):
        assert got == pytest.approx(expected)
    else:
        assert got == expected


def test_accepted_value_cases_quarantine_nothing(value_cases):
    _, _, manifest, _ = value_cases
    assert manifest.rows_quarantined == 0


def test_assessment_keeps_value_and_unit_as_reported(value_cases):
    warehouse, delivery, _, rows = value_cases
    assessments = warehouse.table(delivery, "assessments")
    ukat = assessments.filter(pl.col("source_row") == rows["ck_micro_sign_ukat"]).row(
        0, named=True)
    assert (ukat["value"], ukat["value_as_reported"], ukat["unit_as_reported"]) == (
        1200.0, "20", "µkat/L")
    mrc = assessments.filter(pl.col("source_row") == rows["mrc_unit_ignored"]).row(0, named=True)
    assert (mrc["value_as_reported"], mrc["unit_as_reported"]) == ("4", None)


# --- rules that need more than one row ---------------------------------------------------


def land(extract, make_delivery, warehouse, tmp_path, delivery=DELIVERY, **kwargs):
    folder = make_delivery(tmp_path, SITE, delivery, extract.csv_tables())
    manifest = warehouse.land(folder, **kwargs)
    assert manifest.status == "landed", manifest.reason
    return folder, warehouse.quarantine(folder)


def records(quarantine: pl.DataFrame, table: str) -> list[tuple]:
    return sorted(
        quarantine.filter(pl.col("table_name") == table)
        .select("source_row", "column_name", "rule", "value").iter_rows()
    )


def test_quarantine_duplicated_patient_id_every_copy_and_rows_referring_to_it(
        extract, make_delivery, warehouse, tmp_path):
    first = extract.append("patients", patient_id="300001")
    second = extract.append("patients", patient_id=" 300001 ", sex="M")
    cycle = extract.append("ivig_cycles", patient_id="300001", cycle_number="1")
    treatment = extract.append("treatments", patient_id="300001")
    assessment = extract.append("assessments", patient_id="300001")
    event = extract.append("adverse_events", patient_id="300001")
    delivery, quarantine = land(extract, make_delivery, warehouse, tmp_path)

    assert records(quarantine, "patients") == [
        (first, "patient_id", "duplicate_key", None),
        (second, "patient_id", "duplicate_key", None),
    ]
    for table, row in [("ivig_cycles", cycle), ("treatments", treatment),
                       ("assessments", assessment), ("adverse_events", event)]:
        assert records(quarantine, table) == [(row, "patient_id", "quarantined_patient", None)]
    assert warehouse.table(delivery, "patients").height == 3


def test_quarantine_duplicated_cycle_second_copy_only(extract, make_delivery, warehouse,
                                                       tmp_path):
    second = extract.append("ivig_cycles", patient_id="100234", cycle_number="2",
                            start_date="2021-05-01")
    third = extract.append("ivig_cycles", patient_id="100234", cycle_number="2.0")
    other_patient = extract.append("ivig_cycles", patient_id="100781", cycle_number="2")
    delivery, quarantine = land(extract, make_delivery, warehouse, tmp_path)

    assert records(quarantine, "ivig_cycles") == [
        (second, "patient_id,cycle_number", "duplicate_key", None),
        (third, "patient_id,cycle_number", "duplicate_key", None),
    ]
    cycles = warehouse.table(delivery, "ivig_cycles")
    kept = cycles.filter(pl.col("source_row") == 2).row(0, named=True)
    assert (kept["cycle_number"], kept["start_date"]) == (2, date(2021, 4, 1))
    assert other_patient in cycles.get_column("source_row").to_list()


def test_quarantine_duplicated_assessment_second_copy_only(extract, make_delivery, warehouse,
                                                            tmp_path):
    # Same patient, measure (alias) and day (other date format): the same key as base row 2.
    copy = extract.append("assessments", patient_id="100234", measure=" CPK ",
                          assessment_date="20/02/2021", value="1150", unit="U/L")
    other_day = extract.append("assessments", patient_id="100234", measure="ck",
                               assessment_date="21/02/2021", value="1150", unit="U/L")
    delivery, quarantine = land(extract, make_delivery, warehouse, tmp_path)

    assert records(quarantine, "assessments") == [
        (copy, "patient_id,measure,assessment_date", "duplicate_key", None),
    ]
    landed = warehouse.table(delivery, "assessments")
    assert landed.filter(pl.col("source_row") == 2).get_column("value").to_list() == [1149.0]
    assert other_day in landed.get_column("source_row").to_list()


def test_duplicate_key_is_judged_among_rows_that_pass_their_field_rules(
        extract, make_delivery, warehouse, tmp_path):
    """A first copy broken on a field does not take the good second copy down with it."""
    broken = extract.append("ivig_cycles", patient_id="100781", cycle_number="2", dose_g="0")
    good = extract.append("ivig_cycles", patient_id="100781", cycle_number="2")
    delivery, quarantine = land(extract, make_delivery, warehouse, tmp_path)
    assert records(quarantine, "ivig_cycles") == [(broken, "dose_g", "out_of_range", "0")]
    assert good in warehouse.table(delivery, "ivig_cycles").get_column("source_row").to_list()


def test_first_rule_wins_and_detail_lists_every_broken_rule(extract, make_delivery,
                                                             warehouse, tmp_path):
    row = extract.append("ivig_cycles", patient_id="999999", cycle_number="0",
                         start_date="2021-02-30", dose_g="401", weight_kg="24")
    _, quarantine = land(extract, make_delivery, warehouse, tmp_path)
    record = quarantine.filter(pl.col("table_name") == "ivig_cycles").row(0, named=True)
    assert record["source_row"] == row
    assert (record["rule"], record["column_name"], record["value"]) == (
        "invalid_date", "start_date", "2021-02-30")
    assert record["detail"].split("; ") == [
        "start_date: invalid_date",
        "cycle_number: out_of_range (≥ 1)",
        "dose_g: out_of_range (> 0 and ≤ 400)",
        "weight_kg: out_of_range (25–250)",
        "patient_id: unknown_patient",
    ]


def test_first_rule_wins_by_column_order_within_a_rule(extract, make_delivery, warehouse,
                                                       tmp_path):
    row = extract.append("adverse_events", severity="fatal", serious="tal vez",
                         related="quizá", action="otra")
    _, quarantine = land(extract, make_delivery, warehouse, tmp_path)
    assert records(quarantine, "adverse_events") == [
        (row, "severity", "invalid_category", "fatal")]


def test_quarantine_rows_of_a_patient_quarantined_for_a_field(extract, make_delivery,
                                                             warehouse, tmp_path):
    patient = extract.append("patients", patient_id="300002", birth_date="1850-01-01")
    cycle = extract.append("ivig_cycles", patient_id="300002", cycle_number="1")
    assessment = extract.append("assessments", patient_id="300002")
    _, quarantine = land(extract, make_delivery, warehouse, tmp_path)
    assert records(quarantine, "patients") == [
        (patient, "birth_date", "date_out_of_range", None)]
    assert records(quarantine, "ivig_cycles") == [
        (cycle, "patient_id", "quarantined_patient", None)]
    assert records(quarantine, "assessments") == [
        (assessment, "patient_id", "quarantined_patient", None)]


def test_quarantine_adverse_event_of_patient_whose_cycles_are_all_quarantined(
        extract, make_delivery, warehouse, tmp_path):
    extract.append("ivig_cycles", patient_id="101502", cycle_number="1", dose_g="0")
    extract.append("ivig_cycles", patient_id="101502", cycle_number="2", start_date="")
    event = extract.append("adverse_events", patient_id="101502", onset_date="2022-03-01")
    _, quarantine = land(extract, make_delivery, warehouse, tmp_path)
    assert records(quarantine, "adverse_events") == [
        (event, "patient_id", "no_landed_cycle", None)]


def test_quarantine_adverse_event_of_patient_without_any_cycle(extract, make_delivery,
                                                               warehouse, tmp_path):
    event = extract.append("adverse_events", patient_id="101502")
    _, quarantine = land(extract, make_delivery, warehouse, tmp_path)
    assert records(quarantine, "adverse_events") == [
        (event, "patient_id", "no_landed_cycle", None)]


def test_onset_compared_with_first_landed_cycle(extract, make_delivery, warehouse, tmp_path):
    """100781's earliest cycle is quarantined; her first landed cycle is 2021-05-10."""
    extract.append("ivig_cycles", patient_id="100781", cycle_number="7",
                   start_date="2021-01-01", dose_g="0")
    before = extract.append("adverse_events", patient_id="100781", onset_date="2021-05-09")
    on_day = extract.append("adverse_events", patient_id="100781", onset_date="2021-05-10")
    delivery, quarantine = land(extract, make_delivery, warehouse, tmp_path)
    assert records(quarantine, "adverse_events") == [
        (before, "onset_date", "onset_before_first_cycle", "2021-05-09")]
    assert on_day in warehouse.table(delivery, "adverse_events").get_column(
        "source_row").to_list()


def test_quarantine_malformed_row_keeps_no_value(extract, make_delivery, warehouse, tmp_path):
    short = extract.add_row("patients", ["300003", "F", "1960-01-01"])
    long = extract.add_row("ivig_cycles", ["100234", "9", "2021-07-01", "120", "60", "María"])
    after = extract.append("ivig_cycles", cycle_number="10")
    delivery, quarantine = land(extract, make_delivery, warehouse, tmp_path)
    assert records(quarantine, "patients") == [(short, None, "malformed_row", None)]
    assert records(quarantine, "ivig_cycles") == [(long, None, "malformed_row", None)]
    assert after in warehouse.table(delivery, "ivig_cycles").get_column("source_row").to_list()
    assert "María" not in str(quarantine.to_dicts())


def test_dates_bounded_by_landing_day_when_delivery_id_is_not_an_iso_date(
        extract, make_delivery, warehouse, tmp_path):
    on_landing_day = extract.append("ivig_cycles", start_date="2026-11-25")
    day_after = extract.append("ivig_cycles", start_date="2026-11-26")
    now = datetime(2026, 11, 25, 23, 59, tzinfo=UTC)
    folder, quarantine = land(extract, make_delivery, warehouse, tmp_path,
                              delivery="entrega-noviembre", now=now)
    assert records(quarantine, "ivig_cycles") == [
        (day_after, "start_date", "date_out_of_range", "2026-11-26")]
    assert on_landing_day in warehouse.table(folder, "ivig_cycles").get_column(
        "source_row").to_list()
    assert warehouse.manifest_json(folder)["delivery_date"] == "2026-11-25"


def test_dates_bounded_by_delivery_id_when_it_is_an_iso_date(extract, make_delivery,
                                                             warehouse, tmp_path):
    on_delivery_day = extract.append("ivig_cycles", start_date="24/11/2026")
    day_after = extract.append("ivig_cycles", start_date="25/11/2026")
    folder, quarantine = land(extract, make_delivery, warehouse, tmp_path,
                              now=datetime(2027, 1, 1, tzinfo=UTC))
    assert records(quarantine, "ivig_cycles") == [
        (day_after, "start_date", "date_out_of_range", "25/11/2026")]
    assert on_delivery_day in warehouse.table(folder, "ivig_cycles").get_column(
        "source_row").to_list()


def test_birth_date_on_1900_01_01_lands(extract, make_delivery, warehouse, tmp_path):
    row = extract.append("patients", birth_date="01/01/1900")
    folder, quarantine = land(extract, make_delivery, warehouse, tmp_path)
    assert records(quarantine, "patients") == []
    assert row in warehouse.table(folder, "patients").get_column("source_row").to_list()
