"""`ivig_platform.landing.contract` keeps its public names and today's values, now built
from the protocol definition (`protocol/`).

The expected values below are the literal tables the module held before the protocol
moved to `protocol/` (copied verbatim), so any drift of the definition from what landing
applied shows here.
"""

from __future__ import annotations

from typing import get_args

from ivig_platform.landing import contract
from ivig_platform.landing.contract import Column, Table

EXPECTED_TABLES: tuple[str, ...] = (
    "patients",
    "ivig_cycles",
    "treatments",
    "assessments",
    "adverse_events",
)

EXPECTED_KINDS = ("id", "text", "date", "decimal", "integer", "category", "list", "yesno", "value")


def _patient_id() -> Column:
    return Column(
        "patient_id", "id", ("id_paciente", "nhc"), not_null=True, identifier=True
    )


# Canonical value ← accepted spellings (already folded: lower case, no accents, trimmed).
EXPECTED_VOCABULARIES: dict[str, dict[str, str]] = {
    "sex": {"f": "F", "female": "F", "mujer": "F", "m": "M", "male": "M", "hombre": "M"},
    "ssc_subtype": {
        "diffuse": "diffuse", "difusa": "diffuse", "dcssc": "diffuse",
        "limited": "limited", "limitada": "limited", "lcssc": "limited",
    },
    "overlap": {
        "iim": "iim", "miopatia_inflamatoria": "iim", "sjogren": "sjogren", "sle": "sle",
        "les": "sle", "ra": "ra", "ar": "ra", "other": "other", "otra": "other",
    },
    "indication": {
        "myositis": "myositis", "miositis": "myositis",
        "gastrointestinal": "gastrointestinal", "digestiva": "gastrointestinal",
        "skin": "skin", "cutanea": "skin", "other": "other", "otra": "other",
    },
    "ivig_stop_reason": {
        "adverse_event": "adverse_event", "efecto_adverso": "adverse_event",
        "inefficacy": "inefficacy", "ineficacia": "inefficacy",
        "other": "other", "otro": "other",
    },
    "measure": {
        "mrc": "mrc", "fuerza_mrc": "mrc", "ck": "ck", "cpk": "ck", "mrss": "mrss",
        "rodnan": "mrss", "ucla_git": "ucla_git",
    },
    "severity": {
        "mild": "mild", "leve": "mild", "moderate": "moderate", "moderado": "moderate",
        "moderada": "moderate", "severe": "severe", "grave": "severe",
    },
    "yesno": {"yes": "yes", "si": "yes", "no": "no"},
    "related": {"yes": "yes", "si": "yes", "no": "no", "unknown": "unknown",
                "desconocido": "unknown"},
    "action": {
        "none": "none", "ninguna": "none", "interrupted": "interrupted",
        "interrumpido": "interrupted", "discontinued": "discontinued",
        "suspendido": "discontinued",
    },
}

# CK units (folded: lower case, µ/μ written as u) → factor to U/L. 1 µkat/L = 60 U/L (§1).
EXPECTED_CK_UNITS: dict[str, float] = {"u/l": 1.0, "ui/l": 1.0, "iu/l": 1.0, "ukat/l": 60.0}

# Per-measure validity of the reported value (§3). MRC is parsed by its own grammar.
EXPECTED_MEASURE_RANGES: dict[str, tuple[float, float, bool]] = {
    # measure: (low, high, low_inclusive)
    "ck": (0.0, 100_000.0, False),
    "mrss": (0.0, 51.0, True),
    "ucla_git": (0.0, 2.83, True),
}

EXPECTED_CONTRACT: dict[str, Table] = {
    "patients": Table(
        "patients",
        (
            _patient_id(),
            Column("sex", "category", ("sexo",), vocabulary="sex"),
            Column("birth_date", "date", ("fecha_nacimiento",), not_null=True, identifier=True),
            Column("ssc_subtype", "category", ("subtipo_ssc",), vocabulary="ssc_subtype"),
            Column("overlap", "list", ("solapamiento",), vocabulary="overlap"),
            Column("indication", "list", ("indicacion",), not_null=True, vocabulary="indication"),
            Column("ivig_stop_reason", "category", ("motivo_suspension",),
                   vocabulary="ivig_stop_reason"),
        ),
        key=("patient_id",),
    ),
    "ivig_cycles": Table(
        "ivig_cycles",
        (
            _patient_id(),
            Column("cycle_number", "integer", ("ciclo",), not_null=True, low=1),
            Column("start_date", "date", ("fecha_inicio",), not_null=True),
            Column("dose_g", "decimal", ("dosis_g",), not_null=True, low=0, high=400,
                   low_inclusive=False),
            Column("weight_kg", "decimal", ("peso_kg",), required=False, low=25, high=250),
        ),
        key=("patient_id", "cycle_number"),
    ),
    "treatments": Table(
        "treatments",
        (
            _patient_id(),
            # A treatment row without a drug says nothing; we treat drug as required.
            Column("drug", "text", ("farmaco",), not_null=True),
            Column("start_date", "date", ("fecha_inicio",), required=False),
            Column("end_date", "date", ("fecha_fin",), required=False),
        ),
    ),
    "assessments": Table(
        "assessments",
        (
            _patient_id(),
            Column("assessment_date", "date", ("fecha",), not_null=True),
            Column("measure", "category", ("medida",), not_null=True, vocabulary="measure"),
            Column("value", "value", ("valor",), not_null=True),
            Column("unit", "text", ("unidad",)),
        ),
        key=("patient_id", "measure", "assessment_date"),
    ),
    "adverse_events": Table(
        "adverse_events",
        (
            _patient_id(),
            Column("onset_date", "date", ("fecha_inicio",), not_null=True),
            Column("term", "text", ("termino",), not_null=True),
            Column("severity", "category", ("gravedad",), vocabulary="severity"),
            Column("serious", "yesno", ("evento_grave",), vocabulary="yesno"),
            Column("related", "category", ("relacionado",), vocabulary="related"),
            Column("action", "category", ("accion",), vocabulary="action"),
        ),
    ),
}

# The order in which rules are reported when a row breaks several: the first wins.
EXPECTED_RULE_ORDER: tuple[str, ...] = (
    "malformed_row",
    "formula_without_value",
    "required",
    "invalid_date",
    "date_out_of_range",
    "invalid_number",
    "not_integer",
    "out_of_range",
    "invalid_category",
    "invalid_mrc_grade",
    "invalid_unit",
    "duplicate_key",
    "unknown_patient",
    "quarantined_patient",
    "end_before_start",
    "onset_before_first_cycle",
    "no_landed_cycle",
)


def test_tables_are_todays() -> None:
    assert contract.TABLES == EXPECTED_TABLES


def test_kind_is_todays() -> None:
    assert get_args(contract.Kind) == EXPECTED_KINDS


def test_vocabularies_are_todays() -> None:
    assert contract.VOCABULARIES == EXPECTED_VOCABULARIES


def test_ck_units_are_todays() -> None:
    assert contract.landing_contract().measures["ck"].units == EXPECTED_CK_UNITS


def test_measure_ranges_are_todays() -> None:
    assert contract.MEASURE_RANGES == EXPECTED_MEASURE_RANGES


def test_contract_tables_are_todays_column_by_column() -> None:
    assert list(contract.CONTRACT) == list(EXPECTED_CONTRACT)
    for name, expected in EXPECTED_CONTRACT.items():
        table = contract.CONTRACT[name]
        assert table.key == expected.key, name
        for got, want in zip(table.columns, expected.columns, strict=True):
            assert got == want, (name, got.name)
    assert contract.CONTRACT == EXPECTED_CONTRACT


def test_rule_order_is_todays() -> None:
    """A new rule is a row of protocol/contract/rules.csv and a line here, in its place."""
    assert contract.RULE_ORDER == EXPECTED_RULE_ORDER


def test_values_have_todays_types() -> None:
    assert isinstance(contract.VOCABULARIES["sex"], dict)
    assert all(isinstance(c, Column) for t in contract.CONTRACT.values() for c in t.columns)
    assert all(isinstance(t, Table) and isinstance(t.columns, tuple)
               for t in contract.CONTRACT.values())
