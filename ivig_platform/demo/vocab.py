"""Words the demo hospitals write: headers, category spellings, drug names, AE terms, names.

Everything here is data, kept apart from the code that uses it, so a reviewer can check the
spellings against protocol §3 and §4 in one place. Only spellings the protocol accepts are used
for valid rows; invalid spellings live with the faults (``faults.py``).
"""

from __future__ import annotations

TABLES: tuple[str, ...] = (
    "patients",
    "ivig_cycles",
    "treatments",
    "assessments",
    "adverse_events",
)

# Canonical columns of each table, in the order the demo writes them (protocol §3).
COLUMNS: dict[str, tuple[str, ...]] = {
    "patients": (
        "patient_id",
        "sex",
        "birth_date",
        "ssc_subtype",
        "overlap",
        "indication",
        "ivig_stop_reason",
    ),
    "ivig_cycles": ("patient_id", "cycle_number", "start_date", "dose_g", "weight_kg"),
    "treatments": ("patient_id", "drug", "start_date", "end_date"),
    "assessments": ("patient_id", "assessment_date", "measure", "value", "unit"),
    "adverse_events": (
        "patient_id",
        "onset_date",
        "term",
        "severity",
        "serious",
        "related",
        "action",
    ),
}

DATE_COLUMNS: dict[str, tuple[str, ...]] = {
    "patients": ("birth_date",),
    "ivig_cycles": ("start_date",),
    "treatments": ("start_date", "end_date"),
    "assessments": ("assessment_date",),
    "adverse_events": ("onset_date",),
}

# Header spellings.  Every one normalises (case, accents, spaces, hyphens, underscores
# ignored) to the English name or the Spanish alias of protocol §3.
_EN = {t: {c: c for c in cols} for t, cols in COLUMNS.items()}

_EN_TITLE_WORDS = {
    "patient_id": "Patient ID",
    "sex": "Sex",
    "birth_date": "Birth Date",
    "ssc_subtype": "SSc Subtype",
    "overlap": "Overlap",
    "indication": "Indication",
    "ivig_stop_reason": "IVIG Stop Reason",
    "cycle_number": "Cycle Number",
    "start_date": "Start Date",
    "dose_g": "Dose g",
    "weight_kg": "Weight kg",
    "drug": "Drug",
    "end_date": "End Date",
    "assessment_date": "Assessment Date",
    "measure": "Measure",
    "value": "Value",
    "unit": "Unit",
    "onset_date": "Onset Date",
    "term": "Term",
    "severity": "Severity",
    "serious": "Serious",
    "related": "Related",
    "action": "Action",
}

_ES_SNAKE = {
    "patients": {
        "patient_id": "id_paciente",
        "sex": "sexo",
        "birth_date": "fecha_nacimiento",
        "ssc_subtype": "subtipo_ssc",
        "overlap": "solapamiento",
        "indication": "indicacion",
        "ivig_stop_reason": "motivo_suspension",
    },
    "ivig_cycles": {
        "patient_id": "id_paciente",
        "cycle_number": "ciclo",
        "start_date": "fecha_inicio",
        "dose_g": "dosis_g",
        "weight_kg": "peso_kg",
    },
    "treatments": {
        "patient_id": "id_paciente",
        "drug": "farmaco",
        "start_date": "fecha_inicio",
        "end_date": "fecha_fin",
    },
    "assessments": {
        "patient_id": "id_paciente",
        "assessment_date": "fecha",
        "measure": "medida",
        "value": "valor",
        "unit": "unidad",
    },
    "adverse_events": {
        "patient_id": "id_paciente",
        "onset_date": "fecha_inicio",
        "term": "termino",
        "severity": "gravedad",
        "serious": "evento_grave",
        "related": "relacionado",
        "action": "accion",
    },
}

_ES_TITLE_WORDS = {
    "id_paciente": "NHC",
    "sexo": "Sexo",
    "fecha_nacimiento": "Fecha Nacimiento",
    "subtipo_ssc": "Subtipo-SSc",
    "solapamiento": "Solapamiento",
    "indicacion": "Indicación",
    "motivo_suspension": "Motivo Suspensión",
    "ciclo": "Ciclo",
    "fecha_inicio": "Fecha Inicio",
    "dosis_g": "Dosis G",
    "peso_kg": "Peso-Kg",
    "farmaco": "Fármaco",
    "fecha_fin": "Fecha Fin",
    "fecha": "Fecha",
    "medida": "Medida",
    "valor": "Valor",
    "unidad": "Unidad",
    "termino": "Término",
    "gravedad": "Gravedad",
    "evento_grave": "Evento Grave",
    "relacionado": "Relacionado",
    "accion": "Acción",
}

_ES_UPPER_WORDS = {
    "id_paciente": "ID-PACIENTE",
    "sexo": "SEXO",
    "fecha_nacimiento": "FECHA_NACIMIENTO",
    "subtipo_ssc": "SUBTIPO SSC",
    "solapamiento": "SOLAPAMIENTO",
    "indicacion": "INDICACIÓN",
    "motivo_suspension": "MOTIVO_SUSPENSIÓN",
    "ciclo": "CICLO",
    "fecha_inicio": "FECHA INICIO",
    "dosis_g": "DOSIS_G",
    "peso_kg": "PESO_KG",
    "farmaco": "FÁRMACO",
    "fecha_fin": "FECHA_FIN",
    "fecha": "FECHA",
    "medida": "MEDIDA",
    "valor": "VALOR",
    "unidad": "UNIDAD",
    "termino": "TÉRMINO",
    "gravedad": "GRAVEDAD",
    "evento_grave": "EVENTO_GRAVE",
    "relacionado": "RELACIONADO",
    "accion": "ACCIÓN",
}


def _spanish(words: dict[str, str], id_header: str | None = None) -> dict[str, dict[str, str]]:
    out = {t: {c: words[a] for c, a in m.items()} for t, m in _ES_SNAKE.items()}
    if id_header is not None:
        for m in out.values():
            m["patient_id"] = id_header
    return out


HEADERS: dict[str, dict[str, dict[str, str]]] = {
    "en": _EN,
    "en_title": {t: {c: _EN_TITLE_WORDS[c] for c in cols} for t, cols in COLUMNS.items()},
    "es": _ES_SNAKE,
    "es_nhc": _spanish({a: a for a in _ES_TITLE_WORDS}, id_header="nhc"),
    "es_title": _spanish(_ES_TITLE_WORDS),
    "es_upper": _spanish(_ES_UPPER_WORDS),
}

# Written forms of category values: (language, field) -> canonical -> forms.  The first form is
# what a tidy site writes; "odd" sites cycle through all of them (case, accents, spaces,
# abbreviations), all of which protocol §3/§4 accept.
CATEGORY_FORMS: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
    ("en", "sex"): {"F": ("F", "female", "Female", "f"), "M": ("M", "male", "Male ")},
    ("es", "sex"): {
        "F": ("mujer", " Mujer ", "MUJER", "Mujer"),
        "M": ("hombre", "Hombre ", "HOMBRE"),
    },
    ("en", "ssc_subtype"): {
        "diffuse": ("diffuse", "Diffuse", "dcSSc", "DIFFUSE"),
        "limited": ("limited", "Limited", "lcSSc"),
    },
    ("es", "ssc_subtype"): {
        "diffuse": ("difusa", "DIFUSA", "Difusa ", "dcSSc"),
        "limited": ("limitada", "Limitada", "LIMITADA", "lcSSc"),
    },
    ("en", "ivig_stop_reason"): {
        "adverse_event": ("adverse_event", "Adverse_Event"),
        "inefficacy": ("inefficacy", "Inefficacy"),
        "other": ("other", "Other "),
    },
    ("es", "ivig_stop_reason"): {
        "adverse_event": ("efecto_adverso", "Efecto_Adverso"),
        "inefficacy": ("ineficacia", "INEFICACIA", "Ineficacia"),
        "other": ("otro", "Otro"),
    },
    ("en", "severity"): {
        "mild": ("mild", "Mild"),
        "moderate": ("moderate", "Moderate", "MODERATE"),
        "severe": ("severe", "Severe"),
    },
    ("es", "severity"): {
        "mild": ("leve", "Leve", "LEVE"),
        "moderate": ("moderada", "moderado", "Moderada"),
        "severe": ("grave", "Grave"),
    },
    ("en", "serious"): {"true": ("yes", "Yes", "YES"), "false": ("no", "No")},
    ("es", "serious"): {"true": ("si", "Sí", "sí", "SI"), "false": ("no", "No", "NO")},
    ("en", "related"): {
        "yes": ("yes", "Yes"),
        "no": ("no", "No"),
        "unknown": ("unknown", "Unknown"),
    },
    ("es", "related"): {
        "yes": ("si", "sí", "Sí"),
        "no": ("no", "No"),
        "unknown": ("desconocido", "Desconocido"),
    },
    ("en", "action"): {
        "none": ("none", "None"),
        "interrupted": ("interrupted", "Interrupted"),
        "discontinued": ("discontinued", "Discontinued"),
    },
    ("es", "action"): {
        "none": ("ninguna", "Ninguna"),
        "interrupted": ("interrumpido", "Interrumpido"),
        "discontinued": ("suspendido", "Suspendido", "SUSPENDIDO"),
    },
    ("en", "measure"): {
        "mrc": ("mrc", "MRC"),
        "ck": ("ck", "CK"),
        "mrss": ("mrss", "mRSS"),
        "ucla_git": ("ucla_git", "UCLA_GIT"),
    },
    ("es", "measure"): {
        "mrc": ("fuerza_mrc", "Fuerza_MRC", "mrc"),
        "ck": ("cpk", "CPK", "ck"),
        "mrss": ("rodnan", "Rodnan", "mrss"),
        "ucla_git": ("ucla_git", "UCLA_GIT"),
    },
}

# List elements (overlap, indication): a tidy spelling and an odd one (capitals, accents).
LIST_FORMS: dict[tuple[str, str], dict[str, tuple[str, str]]] = {
    ("en", "overlap"): {
        "iim": ("iim", "IIM"),
        "sjogren": ("sjogren", "Sjögren"),
        "sle": ("sle", "SLE"),
        "ra": ("ra", "RA"),
        "other": ("other", "Other"),
    },
    ("es", "overlap"): {
        "iim": ("miopatia_inflamatoria", "Miopatía_Inflamatoria"),
        "sjogren": ("sjogren", "Sjögren"),
        "sle": ("les", "LES"),
        "ra": ("ar", "AR"),
        "other": ("otra", "Otra"),
    },
    ("en", "indication"): {
        "myositis": ("myositis", "Myositis"),
        "gastrointestinal": ("gastrointestinal", "Gastrointestinal"),
        "skin": ("skin", "Skin"),
        "other": ("other", "Other"),
    },
    ("es", "indication"): {
        "myositis": ("miositis", "Miositis"),
        "gastrointestinal": ("digestiva", "Digestiva"),
        "skin": ("cutanea", "Cutánea"),
        "other": ("otra", "Otra"),
    },
}

# Drug names as hospitals write them: (written, class, ingredient, language, weight within
# class and language).  Language "any" = brand names, written by every site.  Mycophenolate
# mofetil carries most of the immunosuppressant weight (protocol §1: the most common).
DRUGS: tuple[tuple[str, str, str, str, float], ...] = (
    ("prednisona", "corticosteroid", "prednisone", "es", 4.0),
    ("Prednisona 5 mg", "corticosteroid", "prednisone", "es", 4.0),
    ("Prednisona comprimidos", "corticosteroid", "prednisone", "es", 1.0),
    ("metilprednisolona", "corticosteroid", "methylprednisolone", "es", 1.5),
    ("deflazacort 6 mg", "corticosteroid", "deflazacort", "es", 0.7),
    ("Dexametasona 4mg", "corticosteroid", "dexamethasone", "es", 0.5),
    ("prednisone", "corticosteroid", "prednisone", "en", 4.0),
    ("PREDNISONE 10mg", "corticosteroid", "prednisone", "en", 3.0),
    ("methylprednisolone", "corticosteroid", "methylprednisolone", "en", 1.5),
    ("deflazacort", "corticosteroid", "deflazacort", "en", 0.5),
    ("dexamethasone 4 mg", "corticosteroid", "dexamethasone", "en", 0.5),
    ("Urbason", "corticosteroid", "methylprednisolone", "any", 1.0),
    ("Urbason 4 mg", "corticosteroid", "methylprednisolone", "any", 0.8),
    ("micofenolato de mofetilo", "immunosuppressant", "mycophenolate mofetil", "es", 4.0),
    (
        "Micofenolato de mofetilo 500 mg",
        "immunosuppressant",
        "mycophenolate mofetil",
        "es",
        3.0,
    ),
    ("ácido micofenólico", "immunosuppressant", "mycophenolic acid", "es", 0.8),
    ("metotrexato", "immunosuppressant", "methotrexate", "es", 1.2),
    ("Metotrexato 15 mg", "immunosuppressant", "methotrexate", "es", 1.0),
    ("azatioprina", "immunosuppressant", "azathioprine", "es", 0.8),
    ("ciclofosfamida", "immunosuppressant", "cyclophosphamide", "es", 0.4),
    ("ciclosporina", "immunosuppressant", "ciclosporin", "es", 0.3),
    ("leflunomida 20 mg", "immunosuppressant", "leflunomide", "es", 0.3),
    ("mycophenolate mofetil", "immunosuppressant", "mycophenolate mofetil", "en", 4.0),
    ("Mycophenolate mofetil 1 g", "immunosuppressant", "mycophenolate mofetil", "en", 2.5),
    ("mycophenolic acid", "immunosuppressant", "mycophenolic acid", "en", 0.6),
    ("methotrexate", "immunosuppressant", "methotrexate", "en", 1.5),
    ("azathioprine", "immunosuppressant", "azathioprine", "en", 0.8),
    ("cyclophosphamide", "immunosuppressant", "cyclophosphamide", "en", 0.4),
    ("ciclosporin", "immunosuppressant", "ciclosporin", "en", 0.3),
    ("leflunomide", "immunosuppressant", "leflunomide", "en", 0.3),
    ("CellCept", "immunosuppressant", "mycophenolate mofetil", "any", 2.0),
    ("CellCept 500mg", "immunosuppressant", "mycophenolate mofetil", "any", 2.0),
    ("Myfortic 360 mg", "immunosuppressant", "mycophenolic acid", "any", 0.5),
    ("Imurel 50 mg", "immunosuppressant", "azathioprine", "any", 0.6),
    ("tacrolimus 1 mg", "immunosuppressant", "tacrolimus", "any", 0.4),
    ("rituximab", "biologic", "rituximab", "any", 4.0),
    ("Rituximab 1000 mg", "biologic", "rituximab", "any", 2.0),
    ("MabThera", "biologic", "rituximab", "any", 1.5),
    ("Truxima", "biologic", "rituximab", "any", 1.0),
    ("tocilizumab", "biologic", "tocilizumab", "any", 1.5),
    ("RoActemra 162 mg", "biologic", "tocilizumab", "any", 1.0),
    ("abatacept", "biologic", "abatacept", "any", 0.8),
    ("Orencia", "biologic", "abatacept", "any", 0.5),
    ("belimumab", "biologic", "belimumab", "any", 0.5),
    ("Benlysta", "biologic", "belimumab", "any", 0.4),
    ("anifrolumab", "biologic", "anifrolumab", "any", 0.3),
    ("hidroxicloroquina 200 mg", "other", "hydroxychloroquine", "es", 2.0),
    ("hydroxychloroquine", "other", "hydroxychloroquine", "en", 2.0),
    ("Dolquine", "other", "hydroxychloroquine", "any", 1.0),
    ("nintedanib", "other", "nintedanib", "any", 0.8),
    ("Ofev 150 mg", "other", "nintedanib", "any", 0.6),
    ("bosentan", "other", "bosentan", "any", 1.0),
    ("sildenafil 20 mg", "other", "sildenafil", "any", 1.2),
    # Drugs that map to no class: landing keeps them, dbt reports them as unmapped.
    ("omeprazol 20 mg", "unmapped", "omeprazole", "es", 2.0),
    ("omeprazole", "unmapped", "omeprazole", "en", 2.0),
    ("Adiro 100 mg", "unmapped", "acetylsalicylic acid", "any", 1.0),
)

# Adverse-event terms: (code, English, Spanish, serious?).
AE_TERMS: tuple[tuple[str, str, str, bool], ...] = (
    ("headache", "headache", "cefalea", False),
    ("fever", "fever", "fiebre", False),
    ("rash", "rash", "erupción cutánea", False),
    ("nausea", "nausea", "náuseas", False),
    ("chills", "chills", "escalofríos", False),
    ("hypertension", "hypertension", "hipertensión arterial", False),
    ("fatigue", "fatigue", "astenia", False),
    ("infusion_reaction", "infusion reaction", "reacción infusional", False),
    ("myalgia", "myalgia", "mialgias", False),
    ("dvt", "deep vein thrombosis", "trombosis venosa profunda", True),
    ("pe", "pulmonary embolism", "tromboembolismo pulmonar", True),
    ("aki", "acute kidney injury", "insuficiencia renal aguda", True),
    ("meningitis", "aseptic meningitis", "meningitis aséptica", True),
)

# Direct identifiers.  Names are long enough (and Spanish enough) that a privacy scan for
# them in the warehouse does not trip over ordinary words.  All encodable in Windows-1252.
FIRST_NAMES_F: tuple[str, ...] = (
    "María José",
    "Carmen",
    "Dolores",
    "Pilar",
    "Isabel",
    "Mercedes",
    "Montserrat",
    "Rosario",
    "Concepción",
    "Inmaculada",
    "Begoña",
    "Nuria",
    "Ainhoa",
    "Remedios",
    "Encarnación",
    "Esperanza",
    "Asunción",
    "Milagros",
    "Francisca",
    "Antonia",
    "María Ángeles",
    "Gemma",
    "Rocío",
    "Yolanda",
    "Amparo",
    "Consuelo",
)
FIRST_NAMES_M: tuple[str, ...] = (
    "José Luis",
    "Francisco",
    "Antonio",
    "Manuel",
    "Joaquín",
    "Jesús",
    "Ignacio",
    "Fernando",
    "Andrés",
    "Ramón",
    "Jordi",
    "Iñaki",
    "Álvaro",
    "Sebastián",
)
SURNAMES: tuple[str, ...] = (
    "García",
    "Fernández",
    "González",
    "Rodríguez",
    "López",
    "Martínez",
    "Sánchez",
    "Pérez",
    "Gómez",
    "Martín",
    "Jiménez",
    "Ruiz",
    "Hernández",
    "Díaz",
    "Moreno",
    "Muñoz",
    "Álvarez",
    "Romero",
    "Alonso",
    "Gutiérrez",
    "Navarro",
    "Torres",
    "Domínguez",
    "Vázquez",
    "Ramos",
    "Serrano",
    "Blanco",
    "Castaño",
    "Ibáñez",
    "Peña",
    "Etxeberria",
    "Puigdemunt",
    "Villalba",
    "Cañizares",
    "Olmedo",
    "Echevarría",
)

DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"

MRC_GRADES: tuple[str, ...] = (
    # index = thirds of a grade (value = thirds / 3); index 1 would be "0+", which is invalid.
    "0",
    "",
    "1-",
    "1",
    "1+",
    "2-",
    "2",
    "2+",
    "3-",
    "3",
    "3+",
    "4-",
    "4",
    "4+",
    "5-",
    "5",
)
