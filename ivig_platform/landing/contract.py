"""The hospitals' side of the data contract (protocol §3), as data.

Everything landing knows about a table — its columns, their Spanish aliases, their kind,
whether a delivery without them is usable, and the category vocabularies — lives here,
so a protocol amendment is an edit to these tables and not to the landing code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["id", "text", "date", "decimal", "integer", "category", "list", "yesno", "value"]

TABLES: tuple[str, ...] = (
    "patients",
    "ivig_cycles",
    "treatments",
    "assessments",
    "adverse_events",
)


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    aliases: tuple[str, ...] = ()
    # A required column must be present in the file (else the delivery is rejected);
    # `not_null` says whether each row needs a value in it.
    required: bool = True
    not_null: bool = False
    vocabulary: str | None = None
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    identifier: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _patient_id() -> Column:
    return Column(
        "patient_id", "id", ("id_paciente", "nhc"), not_null=True, identifier=True
    )


# Canonical value ← accepted spellings (already folded: lower case, no accents, trimmed).
VOCABULARIES: dict[str, dict[str, str]] = {
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
CK_UNITS: dict[str, float] = {"u/l": 1.0, "ui/l": 1.0, "iu/l": 1.0, "ukat/l": 60.0}

# Per-measure validity of the reported value (§3). MRC is parsed by its own grammar.
MEASURE_RANGES: dict[str, tuple[float, float, bool]] = {
    # measure: (low, high, low_inclusive)
    "ck": (0.0, 100_000.0, False),
    "mrss": (0.0, 51.0, True),
    "ucla_git": (0.0, 2.83, True),
}

CONTRACT: dict[str, Table] = {
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
RULE_ORDER: tuple[str, ...] = (
    "malformed_row",
    "formula_without_value",  # XLSX: a formula cell with no cached value
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

# The codes a rejected delivery's reason starts with (`quality.site_delivery.reason`),
# documented in CONTRACT.md. Any other reason is not landing's: `landing_error` is the
# flow's, for a bug (an exception out of landing), and the gate's reasons are the gate's.
REJECTION_CODES: tuple[str, ...] = (
    "invalid_site_id",
    "unsafe_file",
    "empty_delivery",
    "mixed_formats",
    "unreadable_file",
    "missing_table",
    "missing_column",
    "ambiguous_column",
    "no_valid_patient",
    "damaged_landing",
)
