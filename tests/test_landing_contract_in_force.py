"""Landing applies the contract in force, whatever it says: an amendment's new spelling,
changed range or new measure lands the next delivery accordingly, and a landing made under
another contract is not current (it is landed again)."""

from __future__ import annotations

import polars as pl
import pytest
from protocol_helpers import HAND_GRIP, amended

from ivig_platform.landing.contract import landing_contract
from ivig_platform.landing.land import is_current, read_manifest

SITE, DELIVERY = "hu-test", "2026-11-24"

NEW_SPELLING = """\
    version: v1-a
    extends: v1
    effective_date: 2026-12-01
    rationale: a site writes the subtype as dcs
    contract:
      vocabularies:
        ssc_subtype:
          codes:
            diffuse: {spellings: [difusa, dcssc, dcs]}
"""

HIGHER_DOSE = """\
    version: v1-b
    extends: v1
    effective_date: 2026-12-01
    rationale: doses up to 500 g per cycle
    contract:
      tables:
        ivig_cycles:
          fields:
            - name: dose_g
              constraints: {required: true, exclusiveMinimum: 0, maximum: 500}
"""


def _rules(warehouse, delivery, table: str) -> list[str]:
    q = warehouse.quarantine(delivery).filter(pl.col("table_name") == table)
    return q.get_column("rule").to_list()


def test_new_spelling_of_an_amendment_lands_what_v1_quarantines(
        extract, make_delivery, warehouse, tmp_path):
    extract.append("patients", ssc_subtype="DCS")
    delivery = make_delivery(tmp_path, SITE, DELIVERY, extract.csv_tables())
    v1 = warehouse.land(delivery)
    assert "invalid_category" in _rules(warehouse, delivery, "patients")

    contract = landing_contract(amended(tmp_path / "amend", NEW_SPELLING))
    again = warehouse.land(delivery, contract=contract)
    assert again.contract_fingerprint == contract.fingerprint != v1.contract_fingerprint
    assert again.rows_quarantined == v1.rows_quarantined - 1
    subtypes = warehouse.table(delivery, "patients").get_column("ssc_subtype").to_list()
    assert subtypes.count("diffuse") == 3  # two of the base rows and the amended spelling


def test_a_landing_under_another_contract_is_not_current(
        extract, make_delivery, warehouse, tmp_path):
    delivery = make_delivery(tmp_path, SITE, DELIVERY, extract.csv_tables())
    first = warehouse.land(delivery)
    manifest = read_manifest(warehouse.folder(delivery))
    amended_contract = landing_contract(amended(tmp_path / "amend", NEW_SPELLING))
    assert is_current(manifest, first.content_sha256, first.key_fingerprint,
                      contract_fingerprint=first.contract_fingerprint)
    assert not is_current(manifest, first.content_sha256, first.key_fingerprint,
                          contract_fingerprint=amended_contract.fingerprint)
    again = warehouse.land(delivery, contract=amended_contract)
    assert again.landed_at == first.landed_at  # same clock; but a new landing:
    assert read_manifest(warehouse.folder(delivery)).contract_fingerprint \
        == amended_contract.fingerprint
    same = warehouse.land(delivery, contract=amended_contract)
    assert same == again  # current now: reused as is


@pytest.mark.parametrize(("dose", "v1_rule", "amended_rule"), [
    ("400", None, None), ("450", "out_of_range", None), ("500", "out_of_range", None),
    ("501", "out_of_range", "out_of_range"),
])
def test_a_changed_range_moves_the_limit(dose, v1_rule, amended_rule, extract, make_delivery,
                                         warehouse, tmp_path):
    extract.append("ivig_cycles", dose_g=dose)
    delivery = make_delivery(tmp_path, SITE, DELIVERY, extract.csv_tables())
    warehouse.land(delivery)
    assert _rules(warehouse, delivery, "ivig_cycles") == ([v1_rule] if v1_rule else [])
    warehouse.land(delivery, contract=landing_contract(amended(tmp_path / "a", HIGHER_DOSE)))
    assert _rules(warehouse, delivery, "ivig_cycles") == ([amended_rule] if amended_rule
                                                          else [])


def test_a_new_measure_lands_by_its_range_and_units(extract, make_delivery, warehouse,
                                                   tmp_path):
    rows = {
        extract.append("assessments", measure="hand_grip", value="30", unit="kg"): 30.0,
        extract.append("assessments", measure="Fuerza_Prension", value="66.5", unit="LB"):
            round(66.5 * 0.45359237, 9),
        extract.append("assessments", measure="hand_grip", value="95", unit="kg"):
            "out_of_range",
        extract.append("assessments", measure="hand_grip", value="30", unit=""): "required",
        extract.append("assessments", measure="hand_grip", value="30", unit="N"):
            "invalid_unit",
        extract.append("assessments", measure="hand_grip", value="fuerte", unit="kg"):
            "invalid_number",
    }
    delivery = make_delivery(tmp_path, SITE, DELIVERY, extract.csv_tables())
    warehouse.land(delivery)
    assert set(_rules(warehouse, delivery, "assessments")) == {"invalid_category"}

    warehouse.land(delivery, contract=landing_contract(amended(tmp_path / "a", HAND_GRIP)))
    landed = warehouse.table(delivery, "assessments").filter(pl.col("measure") == "hand_grip")
    quarantine = warehouse.quarantine(delivery).filter(pl.col("table_name") == "assessments")
    by_row = {r: rule for r, rule in quarantine.select("source_row", "rule").iter_rows()}
    for row, expected in rows.items():
        if isinstance(expected, str):
            assert by_row.get(row) == expected, row
        else:
            value = landed.filter(pl.col("source_row") == row).get_column("value").to_list()
            assert [round(v, 9) for v in value] == [expected], row
    assert landed.get_column("unit_as_reported").to_list() == ["kg", "LB"]
