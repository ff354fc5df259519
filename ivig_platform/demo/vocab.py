"""How the demo hospitals write: header and category styles, drug names, AE terms, names.

Everything here is demo data, kept apart from the code that uses it.  The words the protocol
defines (headers and their aliases, codes and their spellings) are not here: wording.py
takes them from the contract and applies the styles below, so only spellings the protocol
accepts are used for valid rows; invalid spellings live with the faults (``faults.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class HeaderStyle:
    """How a header set writes a column: from its name (English) or its first alias
    (Spanish), words cased (``None``: as the contract spells it; "title"; "upper") and
    joined by ``separator`` (per column: ``separators``); the id column may be written as
    another alias (``id_alias``, an index into its aliases), in capitals (``id_upper``)."""

    source: str  # "name" | "alias"
    case: str | None = None
    separator: str = "_"
    separators: dict[str, str] = field(default_factory=dict)
    orthography: dict[str, str] = field(default_factory=dict)  # word -> how it is written
    id_field: str = "patient_id"
    id_alias: int | None = None
    id_upper: bool = False


# Header sets (a site format's ``headers``).  Every header folds (case, accents, spaces,
# hyphens, underscores ignored) to the English name or a Spanish alias of protocol §3;
# wording.py checks it.
HEADER_STYLES: dict[str, HeaderStyle] = {
    "en": HeaderStyle("name"),
    "en_title": HeaderStyle(
        "name",
        "title",
        " ",
        orthography={"id": "ID", "ssc": "SSc", "ivig": "IVIG", "g": "g", "kg": "kg"},
    ),
    "es": HeaderStyle("alias"),
    "es_nhc": HeaderStyle("alias", id_alias=-1),
    "es_title": HeaderStyle(
        "alias",
        "title",
        " ",
        separators={"ssc_subtype": "-", "weight_kg": "-"},
        orthography={"ssc": "SSc"},
        id_alias=-1,
        id_upper=True,
    ),
    "es_upper": HeaderStyle(
        "alias",
        "upper",
        "_",
        separators={
            "patient_id": "-",
            "ssc_subtype": " ",
            "start_date": " ",
            "onset_date": " ",
        },
    ),
}

# Spanish words as hospitals write them, with their accents (applied to the contract's
# folded spellings and aliases whose word matches; see wording.accented).
ACCENTED: tuple[str, ...] = (
    "acción",
    "cutánea",
    "fármaco",
    "indicación",
    "miopatía",
    "sí",
    "sjögren",
    "suspensión",
    "término",
)

# Where a recipe takes its word when it names none (see wording.py): English sites write
# the code, Spanish ones the code's first spelling in the contract.
DEFAULT_SOURCE = {"en": "code", "es": "s0"}

# Written forms of category values, as recipes (wording.py): (language, column) -> code ->
# recipes.  The first form is what a tidy site writes; "odd" sites cycle through all of them
# (case, accents, spaces, abbreviations), all of which protocol §3/§4 accept.  A code with
# no recipe is written in the language's default form.  For list columns (overlap,
# indication) the first form is the tidy one and the second the odd one.
FORM_RECIPES: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
    ("en", "sex"): {"F": ("", "s0", "s0 title", "lower"), "M": ("", "s0", "s0 title trail")},
    ("es", "sex"): {
        "F": ("s1", "s1 title pad", "s1 upper", "s1 title"),
        "M": ("s1", "s1 title trail", "s1 upper"),
    },
    ("en", "ssc_subtype"): {
        "diffuse": ("", "title", "s1 m:llUUl", "upper"),
        "limited": ("", "title", "s1 m:llUUl"),
    },
    ("es", "ssc_subtype"): {
        "diffuse": ("", "upper", "title trail", "s1 m:llUUl"),
        "limited": ("", "title", "upper", "s1 m:llUUl"),
    },
    ("en", "ivig_stop_reason"): {
        "adverse_event": ("", "title"),
        "inefficacy": ("", "title"),
        "other": ("", "title trail"),
    },
    ("es", "ivig_stop_reason"): {
        "adverse_event": ("", "title"),
        "inefficacy": ("", "upper", "title"),
        "other": ("", "title"),
    },
    ("en", "severity"): {
        "mild": ("", "title"),
        "moderate": ("", "title", "upper"),
        "severe": ("", "title"),
    },
    ("es", "severity"): {
        "mild": ("", "title", "upper"),
        "moderate": ("s1", "s0", "s1 title"),
        "severe": ("", "title"),
    },
    ("en", "serious"): {"yes": ("", "title", "upper"), "no": ("", "title")},
    ("es", "serious"): {
        "yes": ("", "title accent", "accent", "upper"),
        "no": ("", "title", "upper"),
    },
    ("en", "related"): {"yes": ("", "title"), "no": ("", "title"), "unknown": ("", "title")},
    ("es", "related"): {
        "yes": ("", "accent", "title accent"),
        "no": ("", "title"),
        "unknown": ("", "title"),
    },
    ("en", "action"): {
        "none": ("", "title"),
        "interrupted": ("", "title"),
        "discontinued": ("", "title"),
    },
    ("es", "action"): {
        "none": ("", "title"),
        "interrupted": ("", "title"),
        "discontinued": ("", "title", "upper"),
    },
    ("en", "measure"): {
        "mrc": ("", "upper"),
        "ck": ("", "upper"),
        "mrss": ("", "m:lUUU"),
        "ucla_git": ("", "upper"),
    },
    ("es", "measure"): {
        "mrc": ("", "m:Ulllll.UUU", "code"),
        "ck": ("", "upper", "code"),
        "mrss": ("", "title", "code"),
        "ucla_git": ("", "upper"),
    },
    ("en", "overlap"): {
        "iim": ("", "upper"),
        "sjogren": ("", "title accent"),
        "sle": ("", "upper"),
        "ra": ("", "upper"),
        "other": ("", "title"),
    },
    ("es", "overlap"): {
        "iim": ("", "title accent"),
        "sjogren": ("", "title accent"),
        "sle": ("", "upper"),
        "ra": ("", "upper"),
        "other": ("", "title"),
    },
    ("en", "indication"): {
        "myositis": ("", "title"),
        "gastrointestinal": ("", "title"),
        "skin": ("", "title"),
        "other": ("", "title"),
    },
    ("es", "indication"): {
        "myositis": ("", "title"),
        "gastrointestinal": ("", "title"),
        "skin": ("", "title accent"),
        "other": ("", "title"),
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
