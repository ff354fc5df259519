"""The hospitals' side of the data contract (protocol §3), as landing reads it.

The contract is defined once, in the repository's `protocol/` folder (tables, aliases,
kinds, vocabularies, units, ranges, rule order), and loaded by
`ivig_platform.protocol`; this module hands it to landing in the shapes landing has
always used, so a protocol amendment is an edit to `protocol/` and not to the code.
What is built here is the contract in force: the protocol's, with the contract changes of
the amendments in `protocol/amendments/`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ivig_platform.protocol.load import load_protocol
from ivig_platform.protocol.schema import Contract, Kind, TableField

__all__ = [
    "CK_UNITS", "CONTRACT", "MEASURE_RANGES", "RULE_ORDER", "TABLES", "VOCABULARIES",
    "Column", "Kind", "Table",
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
        identifier=f.identifier,
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


_CONTRACT = load_protocol().contract

TABLES: tuple[str, ...] = _CONTRACT.delivery.tables

# Canonical value ← accepted spellings (already folded: lower case, no accents, trimmed).
VOCABULARIES: dict[str, dict[str, str]] = {
    name: vocabulary.spellings for name, vocabulary in _CONTRACT.all_vocabularies().items()
}

# CK units (folded: lower case, µ/μ written as u) → factor to U/L. 1 µkat/L = 60 U/L (§1).
CK_UNITS: dict[str, float] = dict(_CONTRACT.measure("ck").units.factors)

# Per-measure validity of the reported value (§3). MRC is parsed by its own grammar.
MEASURE_RANGES: dict[str, tuple[float, float, bool]] = measure_ranges_of(_CONTRACT)

CONTRACT: dict[str, Table] = tables_of(_CONTRACT)

# The order in which rules are reported when a row breaks several: the first wins.
RULE_ORDER: tuple[str, ...] = _CONTRACT.rule_order

# The codes a rejected delivery's reason starts with (`quality.site_delivery.reason`),
# documented in CONTRACT.md. Any other reason is not landing's: `landing_error` is the
# flow's, for a bug (an exception out of landing), and the gate's reasons are the gate's.
REJECTION_CODES: tuple[str, ...] = tuple(r.code for r in _CONTRACT.rejections)
