"""The data contract of protocol §2–§5 as validated, frozen pydantic models.

Tables follow the Frictionless Table Schema (`fields` with `name`, `title`,
`description`, `type`, `constraints`; `primaryKey`, `foreignKeys`), with this study's
extensions as `x-` properties, which tools that do not know them ignore:

- `x-aliases`: other accepted column names (Spanish);
- `x-kind`: how landing reads the text where `type` alone does not say it (`id` for
  the identifier that is pseudonymised, `value` for the assessment value whose rule
  depends on its measure); otherwise derived from `type` (and `x-vocabulary`);
- `x-vocabulary`: the vocabulary of a category, list or yes/no field;
- `x-identifier`: a direct identifier (never stored in clear, never shown in quarantine);
- `x-column-optional`: a delivery without the column is usable;
- `x-duplicates`: which copies of a duplicated primary key are quarantined.

`constraints.required` is Table Schema's: every row needs a value. Ranges use `minimum`,
`exclusiveMinimum` and `maximum` (inclusive); landing has no exclusive maximum, so the
schema refuses one rather than ignore it.

Mappings are read-only (`MappingProxyType`) and models frozen: the loaded protocol is
cached and shared, so no consumer may change it for the others.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from types import MappingProxyType
from typing import Annotated, Any, Literal, TypeVar

import polars as pl
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WrapSerializer,
    field_validator,
    model_validator,
)

from ivig_platform.landing.parsing import fold, fold_header, fold_unit
from ivig_platform.protocol.errors import PATTERN_TEXT

K = TypeVar("K")
V = TypeVar("V")


def _freeze(mapping: Mapping[Any, Any]) -> Mapping[Any, Any]:
    return MappingProxyType(dict(mapping))


def _ordered(value: Mapping[Any, Any], handler: Any, info: Any) -> Any:
    data = handler(dict(value))
    if (info.context or {}).get("canonical"):
        return [[k, v] for k, v in data.items()]
    return data


#: A read-only mapping whose order does not matter; serialises as a plain dict.
FrozenMap = Annotated[
    Mapping[K, V], AfterValidator(_freeze), WrapSerializer(lambda v, handler: handler(dict(v)))
]
#: A read-only mapping whose order means something (a vocabulary's codes are the order of
#: its subgroups); in the canonical form of fingerprints it is a list of pairs, so sorting
#: keys cannot hide a change of order.
OrderedMap = Annotated[Mapping[K, V], AfterValidator(_freeze), WrapSerializer(_ordered)]

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_]*$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
PATTERN_TEXT[NAME_PATTERN] = "lower-case letters, digits and _, starting with a letter"
PATTERN_TEXT[CODE_PATTERN] = "letters, digits and _"
PATTERN_TEXT[VERSION_PATTERN] = "a version name of letters, digits, '.', '-' and '_' (e.g. v2)"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Code = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]
Version = Annotated[str, StringConstraints(pattern=VERSION_PATTERN)]
Text = Annotated[str, StringConstraints(min_length=1)]


def _folded_spelling(spelling: str) -> str:
    if fold(spelling) != spelling:
        raise ValueError(
            f"spelling {spelling!r} must be written folded, as {fold(spelling)!r} "
            "(values are matched ignoring case, accents and surrounding spaces)"
        )
    return spelling


def _folded_unit(spelling: str) -> str:
    folded = pl.select(fold_unit(pl.lit(spelling))).item()
    if folded != spelling:
        raise ValueError(
            f"unit {spelling!r} must be written folded, as {folded!r} (units are matched "
            "in lower case, without spaces, with µ/μ written u)"
        )
    return spelling


#: A category value's spelling, written as landing folds it (lower case, no accents).
Spelling = Annotated[str, StringConstraints(min_length=1), AfterValidator(_folded_spelling)]
UnitSpelling = Annotated[str, StringConstraints(min_length=1), AfterValidator(_folded_unit)]

#: How landing reads a column's text (`ivig_platform.landing.rules`).
Kind = Literal["id", "text", "date", "decimal", "integer", "category", "list", "yesno", "value"]
FieldType = Literal["string", "number", "integer", "date", "boolean", "list"]

#: The Table Schema type of each kind; a kind not given is the first whose type matches.
KIND_TYPE: dict[str, str] = {
    "text": "string", "id": "string", "value": "string", "category": "string",
    "date": "date", "decimal": "number", "integer": "integer", "list": "list",
    "yesno": "boolean",
}  # fmt: skip
_VOCABULARY_KINDS = {"category", "list", "yesno"}
_NUMERIC_KINDS = {"decimal", "integer"}


class Model(BaseModel):
    """Base of every protocol model: unknown keys refused, instances frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ItemT = TypeVar("ItemT")


def by_name(items: tuple[ItemT, ...], name: str, what: str) -> ItemT:
    """The item whose `name` is `name`; KeyError saying `what` has none."""
    for item in items:
        if getattr(item, "name", None) == name:
            return item
    raise KeyError(f"{what} has no {name!r}")


# --------------------------------------------------------------------------- ranges


class Range(Model):
    """A numeric range in Table Schema terms; the maximum is inclusive."""

    minimum: float | None = None
    exclusive_minimum: float | None = Field(None, alias="exclusiveMinimum")
    maximum: float | None = None

    @model_validator(mode="after")
    def _one_lower_bound(self) -> Range:
        if self.minimum is not None and self.exclusive_minimum is not None:
            raise ValueError("give minimum or exclusiveMinimum, not both")
        low = self.low
        if low is not None and self.maximum is not None and low > self.maximum:
            raise ValueError(f"the lower bound {low:g} is above the maximum {self.maximum:g}")
        return self

    @property
    def low(self) -> float | None:
        return self.minimum if self.minimum is not None else self.exclusive_minimum

    @property
    def low_inclusive(self) -> bool:
        return self.exclusive_minimum is None

    @property
    def is_set(self) -> bool:
        return self.low is not None or self.maximum is not None

    def text(self) -> str:
        """`> 0 and ≤ 400`, `25–250`, `≥ 1`: the range as the contract document says it."""
        low, high = self.low, self.maximum
        if low is not None and high is not None and self.low_inclusive:
            return f"{number_text(low)}–{number_text(high)}"
        parts = []
        if low is not None:
            parts.append(f"{'≥' if self.low_inclusive else '>'} {number_text(low)}")
        if high is not None:
            parts.append(f"≤ {number_text(high)}")
        return " and ".join(parts)


def number_text(x: float) -> str:
    """1 for 1.0, 2.83 for 2.83, 100,000 for 100000.0 (thousands grouped)."""
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,}"


class Constraints(Range):
    """Table Schema constraints of a field (`required`: every row needs a value)."""

    required: bool = False


# --------------------------------------------------------------------------- tables


class TableField(Model):
    """One column of a delivered table (a Table Schema field with `x-` extensions)."""

    name: Name
    title: Text | None = None
    description: Text | None = None
    type: FieldType
    delimiter: Annotated[str, StringConstraints(min_length=1)] | None = None
    x_kind: Kind | None = Field(None, alias="x-kind")
    aliases: tuple[Text, ...] = Field((), alias="x-aliases")
    vocabulary: Name | None = Field(None, alias="x-vocabulary")
    identifier: bool = Field(False, alias="x-identifier")
    column_optional: bool = Field(False, alias="x-column-optional")
    constraints: Constraints = Constraints()

    @model_validator(mode="after")
    def _consistent(self) -> TableField:
        kind = self.kind
        if KIND_TYPE[kind] != self.type:
            raise ValueError(f"x-kind {kind!r} needs type {KIND_TYPE[kind]!r}, not {self.type!r}")
        if kind in _VOCABULARY_KINDS and self.vocabulary is None:
            raise ValueError(f"a {self.type} field needs x-vocabulary (its accepted values)")
        if kind not in _VOCABULARY_KINDS and self.vocabulary is not None:
            raise ValueError(f"x-vocabulary does not apply to a field of kind {kind!r}")
        if (self.delimiter is None) == (self.type == "list"):
            raise ValueError("a list field needs a delimiter, and only a list field has one")
        if self.constraints.is_set and kind not in _NUMERIC_KINDS:
            raise ValueError("minimum, exclusiveMinimum and maximum apply to numbers only")
        return self

    @property
    def kind(self) -> Kind:
        """`x-kind` where given; else from `type`: string with a vocabulary is a category."""
        if self.x_kind is not None:
            return self.x_kind
        if self.type == "string":
            return "category" if self.vocabulary else "text"
        return next(k for k, t in KIND_TYPE.items() if t == self.type and k != "category")

    @property
    def required_column(self) -> bool:
        """The file must have the column (else the delivery is rejected, §2)."""
        return not self.column_optional

    @property
    def not_null(self) -> bool:
        return self.constraints.required


class Reference(Model):
    resource: Name
    fields: tuple[Name, ...] = Field(min_length=1)


class ForeignKey(Model):
    fields: tuple[Name, ...] = Field(min_length=1)
    reference: Reference


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class TableSchema(Model):
    """One delivered table (Table Schema descriptor)."""

    name: Name
    title: Text | None = None
    description: Text | None = None
    fields: tuple[TableField, ...] = Field(min_length=1)
    primary_key: tuple[Name, ...] = Field((), alias="primaryKey")
    duplicates: Literal["every_copy", "later_copies"] | None = Field(None, alias="x-duplicates")
    foreign_keys: tuple[ForeignKey, ...] = Field((), alias="foreignKeys")

    _primary_key_as_list = field_validator("primary_key", mode="before")(_as_list)

    @model_validator(mode="after")
    def _keys_name_fields(self) -> TableSchema:
        names = [f.name for f in self.fields]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"field(s) defined twice: {', '.join(twice)}")
        headers: dict[str, str] = {}
        for f in self.fields:
            for spelling in (f.name, *f.aliases):
                folded = fold_header(spelling)
                other = headers.setdefault(folded, f.name)
                if other != f.name:
                    raise ValueError(
                        f"column names are ambiguous: {spelling!r} ({f.name}) and {other} "
                        "read as the same header"
                    )
        for key in (self.primary_key, *(fk.fields for fk in self.foreign_keys)):
            unknown = [k for k in key if k not in names]
            if unknown:
                raise ValueError(f"key names unknown field(s): {', '.join(unknown)}")
        if bool(self.primary_key) != (self.duplicates is not None):
            raise ValueError("x-duplicates is needed with a primaryKey, and only with one")
        return self

    def field(self, name: str) -> TableField:
        return by_name(self.fields, name, f"table {self.name}")

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


# --------------------------------------------------------------------------- vocabularies


class Category(Model):
    """One accepted value: its label and the other spellings that mean it."""

    label: Text | None = None
    spellings: tuple[Spelling, ...] = ()


class Vocabulary(Model):
    """Canonical codes (in order) and every spelling that maps to each."""

    codes: OrderedMap[Code, Category] = Field(min_length=1)

    @model_validator(mode="after")
    def _unambiguous(self) -> Vocabulary:
        seen: dict[str, str] = {}
        for code, category in self.codes.items():
            for spelling in dict.fromkeys((fold(code), *category.spellings)):
                other = seen.setdefault(spelling, code)
                if other != code:
                    raise ValueError(f"spelling {spelling!r} would mean both {other} and {code}")
        return self

    @property
    def spellings(self) -> dict[str, str]:
        """Folded spelling → code; every code is also accepted as itself (folded)."""
        out: dict[str, str] = {}
        for code, category in self.codes.items():
            out[fold(code)] = code
            for spelling in category.spellings:
                out[spelling] = code
        return out

    @property
    def code_list(self) -> tuple[str, ...]:
        return tuple(self.codes)

    def label(self, code: str) -> str:
        return self.codes[code].label or code


# --------------------------------------------------------------------------- measures


class MeasureValue(Range):
    """How an assessment value of a measure is read and checked (see measures.yaml)."""

    type: Literal["grade", "number", "integer"]
    modifiers: FrozenMap[Annotated[str, StringConstraints(min_length=1)], float] = {}
    not_allowed: tuple[Text, ...] = ()
    decimals: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _grade_or_number(self) -> MeasureValue:
        if self.type == "grade":
            if self.minimum is None or self.maximum is None or self.exclusive_minimum is not None:
                raise ValueError("a grade needs minimum and maximum (whole grades)")
            if not (float(self.minimum).is_integer() and float(self.maximum).is_integer()):
                raise ValueError("a grade's minimum and maximum must be whole numbers")
            if self.decimals is None:
                raise ValueError("a grade needs decimals (the rounding of grade + modifier)")
        elif self.modifiers or self.not_allowed or self.decimals is not None:
            raise ValueError("modifiers, not_allowed and decimals apply to type grade only")
        return self


class MeasureUnits(Model):
    """Accepted unit spellings of a measure → factor to its canonical unit."""

    required: bool = True
    factors: FrozenMap[UnitSpelling, Annotated[float, Field(gt=0)]] = Field(min_length=1)


class Measure(Model):
    """A measure of the assessments table (§1, §3)."""

    name: Name
    title: Text
    description: Text | None = None
    spellings: tuple[Spelling, ...] = ()
    unit: Text
    higher_is_better: bool | None = None
    value: MeasureValue
    units: MeasureUnits | None = None

    @property
    def valid_range(self) -> Range:
        return Range.model_validate(
            self.value.model_dump(by_alias=True, include={"minimum", "exclusive_minimum",
                                                          "maximum"})
        )

    @property
    def numeric(self) -> bool:
        """Read as a number (not by the grade grammar)."""
        return self.value.type != "grade"


# --------------------------------------------------------------------------- delivery


class SiteId(Model):
    pattern: Text
    description: Text

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression ({exc})") from None
        return pattern


class Described(Model):
    description: Text


class ReadyMarker(Model):
    file: Text
    description: Text


def _with_table_placeholder(template: str) -> str:
    if "{table}" not in template:
        raise ValueError(f"{template!r} must contain {{table}} (the table's name)")
    return template


class CsvFormat(Model):
    file: Annotated[str, AfterValidator(_with_table_placeholder)]
    delimiters: FrozenMap[Annotated[str, StringConstraints(min_length=1, max_length=1)],
                          Literal["dot", "spanish"]] = Field(min_length=1)
    encodings: tuple[Text, ...] = Field(min_length=1)
    line_endings: tuple[Literal["LF", "CRLF"], ...] = Field(min_length=1)


class XlsxFormat(Model):
    file: Text
    sheet: Annotated[str, AfterValidator(_with_table_placeholder)]


class Dates(Model):
    formats: tuple[Literal["YYYY-MM-DD", "DD/MM/YYYY", "DD-MM-YYYY"], ...] = Field(min_length=1)
    earliest: date
    latest: Literal["delivery_date"]


class Matching(Model):
    headers: Text
    categories: Text
    dropped_columns: Text


class Delivery(Model):
    """§2 and §4: the delivery layout, the file formats and the date limits of §5."""

    layout: Text
    tables: tuple[Name, ...] = Field(min_length=1)
    site_id: SiteId
    delivery_id: Described
    ready_marker: ReadyMarker
    csv: CsvFormat
    xlsx: XlsxFormat
    dates: Dates
    matching: Matching

    def csv_file(self, table: str) -> str:
        return self.csv.file.format(table=table)

    def xlsx_sheet(self, table: str) -> str:
        return self.xlsx.sheet.format(table=table)


# --------------------------------------------------------------------------- the rest


class Rule(Model):
    """A quarantine rule (`quality.quarantine.rule`); the file order is the report order."""

    rule: Name
    applies_to: Text
    description: Text


class Rejection(Model):
    """A delivery rejection reason (`quality.site_delivery.reason` starts with the code)."""

    code: Name
    description: Text


class DrugTerminology(Model):
    seed: Text
    classes: tuple[Name, ...] = Field(min_length=1)
    unmapped: Name
    matching: Text


class Seed(Model):
    seed: Text


class Terminology(Model):
    """§3: the terminology seeds the protocol names, and the drug classes."""

    drugs: DrugTerminology
    adverse_event_terms: Seed


class AgeAtIndex(Model):
    from_: Name = Field(alias="from")
    days_per_year: Annotated[float, Field(gt=0)]
    decimals: Annotated[int, Field(ge=0)]


class Derived(Model):
    age_at_index: AgeAtIndex


#: The vocabulary made of the measures' names and spellings (not in vocabularies.csv).
MEASURE_VOCABULARY = "measure"


class Contract(Model):
    """The data contract (§2–§5): what landing applies and the contract document says."""

    delivery: Delivery
    tables: FrozenMap[Name, TableSchema]
    vocabularies: FrozenMap[Name, Vocabulary]
    measures: tuple[Measure, ...] = Field(min_length=1)
    rules: tuple[Rule, ...] = Field(min_length=1)
    rejections: tuple[Rejection, ...] = Field(min_length=1)
    terminology: Terminology
    derived: Derived

    def table(self, name: str) -> TableSchema:
        return self.tables[name]

    def measure(self, name: str) -> Measure:
        return by_name(self.measures, name, "the contract's measures")

    @property
    def measure_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.measures)

    @property
    def measure_vocabulary(self) -> Vocabulary:
        return Vocabulary.model_validate(
            {"codes": {m.name: {"label": m.title, "spellings": m.spellings}
                       for m in self.measures}}
        )

    def vocabulary(self, name: str) -> Vocabulary:
        if name == MEASURE_VOCABULARY:
            return self.measure_vocabulary
        return self.vocabularies[name]

    def all_vocabularies(self) -> dict[str, Vocabulary]:
        """Every vocabulary a field may name, the measures' one included."""
        return {**self.vocabularies, MEASURE_VOCABULARY: self.measure_vocabulary}

    @property
    def rule_order(self) -> tuple[str, ...]:
        return tuple(r.rule for r in self.rules)

    @property
    def earliest_date(self) -> date:
        return self.delivery.dates.earliest


# --------------------------------------------------------------------------- §6, monitoring


class Pseudonym(Model):
    algorithm: Literal["HMAC-SHA256"]
    of: tuple[Name, ...] = Field(min_length=1)


class SmallCells(Model):
    """§6: counts from 1 to threshold - 1 are shown as `<threshold`."""

    threshold: Annotated[int, Field(ge=1)]
    secondary_suppression: bool

    @property
    def mask(self) -> str:
        return f"<{self.threshold}"

    def is_small(self, count: int) -> bool:
        return 0 < count < self.threshold


class Privacy(Model):
    pseudonym: Pseudonym
    small_cells: SmallCells


class Freshness(Model):
    warn_after_days: Annotated[int, Field(gt=0)]
    error_after_days: Annotated[int, Field(gt=0)]

    @model_validator(mode="after")
    def _warn_first(self) -> Freshness:
        if self.warn_after_days >= self.error_after_days:
            raise ValueError(
                f"warn_after_days ({self.warn_after_days}) must be below error_after_days "
                f"({self.error_after_days})"
            )
        return self


class Monitoring(Model):
    freshness: Freshness


class ProtocolInfo(Model):
    study: Text
    title: Text
    version: Version
    document: Text | None = None
