"""The hospitals' side of the data contract (protocol §3), as landing reads it.

The contract is defined once, in the repository's `protocol/` folder (tables, aliases,
kinds, vocabularies, units, ranges, rule order), and loaded by
`ivig_platform.protocol`; this module hands it to landing in the shapes landing has
always used, so a protocol amendment is an edit to `protocol/` and not to the code.
`LandingContract` is one contract in force as landing applies it; `landing_contract()`
builds it for a protocol (default: `protocol_in_force()`, the run's, with the contract
changes of `protocol/amendments/` and of the run's `--plan` files) and caches it by the
contract's fingerprint, which also goes into every manifest: a landing made under another
contract is not current and is landed again. The module-level names (`CONTRACT`,
`VOCABULARIES`, …) are the repository protocol's, for the readers and tests that name them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import polars as pl

from ivig_platform.landing.parsing import parse_grade
from ivig_platform.protocol.load import Protocol, load_protocol
from ivig_platform.protocol.schema import Contract, Kind, Measure, TableField

__all__ = [
    "CONTRACT", "MEASURE_RANGES", "RULE_ORDER", "TABLES", "VOCABULARIES",
    "Column", "Kind", "LandingContract", "MeasureRule", "Table", "landing_contract",
]  # fmt: skip


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
    #: The range as the contract document says it (`> 0 and ≤ 400`), for quarantine
    #: details; None without a range. Derived from low/high, so not compared.
    range_text: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def column_of(f: TableField) -> Column:
    """A protocol field as landing's `Column`."""
    c = f.constraints
    return Column(
        f.name, f.kind, f.aliases, required=f.required_column, not_null=f.not_null,
        vocabulary=f.vocabulary, low=c.low, high=c.maximum, low_inclusive=c.low_inclusive,
        identifier=f.identifier, range_text=c.text() if c.is_set else None,
    )


def tables_of(contract: Contract) -> dict[str, Table]:
    return {
        name: Table(name, tuple(column_of(f) for f in contract.table(name).fields),
                    key=contract.table(name).primary_key)
        for name in contract.delivery.tables
    }


def measure_ranges_of(contract: Contract) -> dict[str, tuple[float, float, bool]]:
    """measure → (low, high, low_inclusive) of the numeric measures; MRC has its grammar."""
    return {
        m.name: (m.value.low, m.value.maximum, m.value.low_inclusive)
        for m in contract.measures if m.numeric
    }


@dataclass(frozen=True)
class MeasureRule:
    """How landing reads and checks the value of one measure (protocol measures.yaml)."""

    name: str
    value_type: Literal["grade", "number", "integer"]
    low: float | None
    high: float | None
    low_inclusive: bool
    #: Accepted unit spellings (folded) -> factor to the canonical unit; None: no units.
    units: dict[str, float] | None
    unit_required: bool
    measure: Measure = field(repr=False, compare=False)

    @property
    def range_text(self) -> str | None:
        """The valid range as the contract document says it (`0–2.83`); None without one."""
        return self.measure.value.text() if self.measure.value.is_set else None

    def parse_grade(self, expr: pl.Expr) -> pl.Expr:
        """The value of a `grade` measure read by its grammar (see `parsing.parse_grade`)."""
        v = self.measure.value
        return parse_grade(expr, minimum=int(v.minimum), maximum=int(v.maximum),
                           modifiers=v.modifiers, not_allowed=v.not_allowed,
                           decimals=v.decimals)


def measure_rule(m: Measure) -> MeasureRule:
    v = m.value
    return MeasureRule(
        m.name, v.type, v.low, v.maximum, v.low_inclusive,
        dict(m.units.factors) if m.units else None, bool(m.units and m.units.required), m,
    )


@dataclass(frozen=True)
class LandingContract:
    """One contract in force, in the shapes landing works with."""

    tables: dict[str, Table]
    table_names: tuple[str, ...]
    #: vocabulary -> folded spelling -> code (every code also accepted as itself).
    vocabularies: dict[str, dict[str, str]]
    measures: dict[str, MeasureRule]
    rule_order: tuple[str, ...]
    rejection_codes: tuple[str, ...]
    earliest_date: date
    site_id_pattern: str
    site_id_description: str
    xlsx_name: str
    ready_marker: str
    age_days_per_year: float
    age_decimals: int
    #: The protocol's contract fingerprint (contract and pseudonymisation).
    fingerprint: str

    def measures_where(self, **wanted: object) -> list[str]:
        """Names of the measures whose rule has every attribute as given."""
        return [name for name, rule in self.measures.items()
                if all(getattr(rule, k) == v for k, v in wanted.items())]

    @property
    def measures_with_units(self) -> list[str]:
        return [name for name, rule in self.measures.items() if rule.units is not None]


def landing_contract_of(contract: Contract, fingerprint: str) -> LandingContract:
    d, age = contract.delivery, contract.derived.age_at_index
    return LandingContract(
        tables=tables_of(contract),
        table_names=d.tables,
        vocabularies={name: v.spellings for name, v in contract.all_vocabularies().items()},
        measures={m.name: measure_rule(m) for m in contract.measures},
        rule_order=contract.rule_order,
        rejection_codes=tuple(r.code for r in contract.rejections),
        earliest_date=d.dates.earliest,
        site_id_pattern=d.site_id.pattern,
        site_id_description=d.site_id.description,
        xlsx_name=d.xlsx.file,
        ready_marker=d.ready_marker.file,
        age_days_per_year=age.days_per_year,
        age_decimals=age.decimals,
        fingerprint=fingerprint,
    )


_BUILT: dict[str, LandingContract] = {}
_BUILT_LOCK = threading.Lock()


def landing_contract(protocol: Protocol | None = None) -> LandingContract:
    """The contract in force of `protocol` (default: the protocol in force) for landing."""
    if protocol is None:
        from ivig_platform.protocol.in_force import protocol_in_force

        protocol = protocol_in_force()
    key = protocol.contract_fingerprint
    with _BUILT_LOCK:
        built = _BUILT.get(key)
        if built is None:
            built = _BUILT[key] = landing_contract_of(protocol.contract, key)
    return built


_DEFAULT = landing_contract(load_protocol())

TABLES: tuple[str, ...] = _DEFAULT.table_names

# Canonical value ← accepted spellings (already folded: lower case, no accents, trimmed).
VOCABULARIES: dict[str, dict[str, str]] = _DEFAULT.vocabularies

# Per-measure validity of the reported value (§3). Graded measures have their grammar.
MEASURE_RANGES: dict[str, tuple[float, float, bool]] = measure_ranges_of(
    load_protocol().contract)

CONTRACT: dict[str, Table] = _DEFAULT.tables

# The order in which rules are reported when a row breaks several: the first wins.
RULE_ORDER: tuple[str, ...] = _DEFAULT.rule_order

# The codes a rejected delivery's reason starts with (`quality.site_delivery.reason`),
# documented in CONTRACT.md. Any other reason is not landing's: `landing_error` is the
# flow's, for a bug (an exception out of landing), and the gate's reasons are the gate's.
REJECTION_CODES: tuple[str, ...] = _DEFAULT.rejection_codes
