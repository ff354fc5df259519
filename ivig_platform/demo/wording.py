"""What the demo sites write, derived from the protocol's contract (issue 11).

The contract says which headers and category spellings a site may write (§3, §4); the demo
says only *how* its hospitals style them (``vocab``: capitals, accents, padding, a separator),
by recipes applied to the contract's words.  So an amended spelling, alias or code reaches
the demo files with no change here, and the demo never writes a word the contract does not
accept: every form folds back to an accepted spelling (checked as it is built).

A recipe is space-separated tokens: a source (``code``; ``s0``, ``s1``: the code's first or
second spelling in the contract, the code itself when it has no such spelling; default:
``code`` for English sites, ``s0`` for Spanish ones), then styles in order: ``lower``,
``upper``, ``title``, ``m:<mask>`` (per character: U upper, l lower, anything else kept),
``accent`` (Spanish orthography, ``vocab.ACCENTED``), ``pad`` (a space each side), ``trail``
(a trailing space), ``micro`` (a leading u as µ). A site's CK unit is a recipe too, whose
source is ``u<i>``: the contract's i-th accepted unit of the measure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ivig_platform.demo import vocab
from ivig_platform.landing.parsing import fold, fold_header
from ivig_platform.protocol.schema import Contract, TableField, Vocabulary

Forms = dict[str, tuple[str, ...]]  # code (or "true"/"false" of a yes/no field) -> forms


@dataclass(frozen=True)
class Wording:
    """The contract as the demo writes it: tables, columns, header sets, category forms."""

    tables: tuple[str, ...]
    columns: dict[str, tuple[str, ...]]
    date_columns: dict[str, tuple[str, ...]]
    headers: dict[str, dict[str, dict[str, str]]]  # header set -> table -> column -> header
    category_forms: dict[tuple[str, str], Forms]  # (language, column) -> forms
    list_forms: dict[tuple[str, str], Forms]
    measure_units: dict[str, str]  # measure -> canonical unit
    unit_factors: dict[str, dict[str, float]]  # measure -> folded unit -> to canonical
    value_types: dict[str, str]  # measure -> grade | number | integer
    unit_spellings: dict[str, tuple[str, ...]]  # measure -> its accepted units, contract order

    def unit_form(self, measure: str, recipe: str) -> str:
        """The unit a site writes by `recipe`: ``u<i>`` (the contract's i-th accepted unit of
        `measure`) then styles; it must fold back to an accepted unit."""
        source, *tokens = recipe.split()
        text = self.unit_spellings[measure][int(source.removeprefix("u"))]
        for token in tokens:
            text = _style(text, token)
        self.factor(measure, text)  # KeyError: not a unit the contract accepts
        return text

    def factor(self, measure: str, unit: str) -> float:
        """The contract's factor from `unit` (as a site writes it) to `measure`'s canonical
        unit, the unit folded as landing folds it (case, spaces, µ/μ as u)."""
        folded = re.sub(r"\s", "", unit).replace("µ", "u").replace("μ", "u").lower()
        return self.unit_factors[measure][folded]


def wording(contract: Contract) -> Wording:
    tables = contract.delivery.tables
    fields = {t: contract.table(t).fields for t in tables}
    by_name = {f.name: f for fs in fields.values() for f in fs}
    category_forms: dict[tuple[str, str], Forms] = {}
    list_forms: dict[tuple[str, str], Forms] = {}
    for (language, column), recipes in vocab.FORM_RECIPES.items():
        f = by_name[column]
        forms = _forms(contract.vocabulary(f.vocabulary), recipes, language, f.type == "boolean")
        (list_forms if f.type == "list" else category_forms)[(language, column)] = forms
    return Wording(
        tables=tables,
        columns={t: tuple(f.name for f in fs) for t, fs in fields.items()},
        date_columns={t: tuple(f.name for f in fs if f.type == "date") for t, fs in fields.items()},
        headers={
            name: {t: {f.name: _header(f, style) for f in fs} for t, fs in fields.items()}
            for name, style in vocab.HEADER_STYLES.items()
        },
        category_forms=category_forms,
        list_forms=list_forms,
        measure_units={m.name: m.unit for m in contract.measures},
        unit_factors={m.name: dict(m.units.factors) for m in contract.measures if m.units},
        value_types={m.name: m.value.type for m in contract.measures},
        unit_spellings={m.name: tuple(m.units.factors) for m in contract.measures if m.units},
    )


# --- category values --------------------------------------------------------------------


def _forms(
    v: Vocabulary, recipes: dict[str, tuple[str, ...]], language: str, boolean: bool
) -> Forms:
    """Every code's written forms; a code without a recipe is written as the language's
    default source alone.  A boolean field's codes are keyed "true"/"false" (its
    vocabulary's first and second code), as the canonical rows hold them."""
    out: Forms = {}
    for i, code in enumerate(v.code_list):
        forms = tuple(_apply(r, v, code, language) for r in recipes.get(code, ("",)))
        for form in forms:
            if v.spellings.get(fold(form)) != code:
                raise ValueError(f"demo form {form!r} is not a spelling of {code!r}")
        out[("true", "false")[i] if boolean else code] = forms
    return out


def _apply(recipe: str, v: Vocabulary, code: str, language: str) -> str:
    tokens = recipe.split()
    source = vocab.DEFAULT_SOURCE[language]
    if tokens and tokens[0] in ("code", "s0", "s1"):
        source, tokens = tokens[0], tokens[1:]
    spellings = v.codes[code].spellings
    text = (
        code if source == "code" or int(source[1]) >= len(spellings) else spellings[int(source[1])]
    )
    for token in tokens:
        text = _style(text, token)
    return text


def _style(text: str, token: str) -> str:
    if token in ("lower", "upper", "title"):
        return getattr(text, token)()
    if token.startswith("m:"):
        mask = token[2:]
        return "".join(
            ch.upper() if m == "U" else ch.lower() if m == "l" else ch
            for ch, m in zip(text, mask.ljust(len(text), "."), strict=False)
        )
    if token == "accent":
        return accented(text)
    if token == "pad":
        return f" {text} "
    if token == "trail":
        return f"{text} "
    if token == "micro":  # a leading u written as the micro sign, as labs print µkat/L
        return re.sub(r"^u", "µ", text)
    raise ValueError(f"unknown demo style {token!r}")


_WORD = re.compile(r"[^\W_]+")
_ACCENTED = {fold(w): w for w in vocab.ACCENTED}


def accented(text: str) -> str:
    """Each word written with its Spanish accents (``vocab.ACCENTED``), in its own case."""

    def one(m: re.Match[str]) -> str:
        word = m.group(0)
        spelled = _ACCENTED.get(word.lower())
        if spelled is None:
            return word
        return "".join(a.upper() if w.isupper() else a for w, a in zip(word, spelled, strict=True))

    return _WORD.sub(one, text)


# --- headers ----------------------------------------------------------------------------


def _header(f: TableField, style: vocab.HeaderStyle) -> str:
    """The header of `f` in `style`; it folds back to the field's name or an alias."""
    if style.source == "name":
        base = f.name
    elif style.id_alias is not None and f.name == style.id_field:
        base = f.aliases[style.id_alias]
    else:
        base = f.aliases[0] if f.aliases else f.name
    header = base
    if style.case is not None:
        words = base.split("_")
        if (
            style.case == "upper"
            or style.id_alias is not None
            and f.name == style.id_field
            and style.id_upper
        ):
            words = [w.upper() for w in words]
        else:
            words = [style.orthography.get(w, w.capitalize()) for w in words]
        header = accented(style.separators.get(f.name, style.separator).join(words))
    if fold_header(header) not in {fold_header(s) for s in (f.name, *f.aliases)}:
        raise ValueError(f"demo header {header!r} is not an accepted name of {f.name!r}")
    return header
