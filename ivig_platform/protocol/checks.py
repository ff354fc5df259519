"""Checks across the files of a contract, once each file is valid on its own.

Each check returns (key path in the tree, message) pairs; the loader turns them into
issues naming the file. What is checked: the delivery's tables are the table files,
each named as its file; every x-vocabulary exists; yes/no fields have the codes yes and
no; foreign keys point at existing fields; a `value` field has a measure field beside
it; measure spellings do not collide; the age's source is a date field; names are
unique where they are keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pydantic import ValidationError

from ivig_platform.protocol.errors import Loc
from ivig_platform.protocol.schema import MEASURE_VOCABULARY, Contract, TableField

Finding = tuple[Loc, str]
C: Loc = ("contract",)


def contract_findings(contract: Contract) -> list[Finding]:
    return [
        *_tables_are_the_delivery(contract),
        *_vocabularies_exist(contract),
        *_foreign_keys(contract),
        *_measures(contract),
        *_unique(contract.rules, "rule", ("rules",)),
        *_unique(contract.rejections, "code", ("rejections",)),
        *_age_source(contract),
    ]


def _tables_are_the_delivery(contract: Contract) -> Iterator[Finding]:
    listed = contract.delivery.tables
    for name in listed:
        if name not in contract.tables:
            yield (*C, "delivery", "tables"), f"table {name!r} has no file tables/{name}.yaml"
    for name, table in contract.tables.items():
        if name not in listed:
            yield (*C, "tables", name), f"table {name!r} is not listed in delivery.tables"
        if table.name != name:
            yield (*C, "tables", name, "name"), (
                f"must be {name!r}, the name of its file (found {table.name!r})")
    twice = sorted({n for n in listed if listed.count(n) > 1})
    if twice:
        yield (*C, "delivery", "tables"), f"listed twice: {', '.join(twice)}"


def _fields(contract: Contract) -> Iterator[tuple[Loc, str, TableField]]:
    for name, table in contract.tables.items():
        for i, field in enumerate(table.fields):
            yield (*C, "tables", name, "fields", i), name, field


def _vocabularies_exist(contract: Contract) -> Iterator[Finding]:
    if MEASURE_VOCABULARY in contract.vocabularies:
        yield (*C, "vocabularies", MEASURE_VOCABULARY), (
            f"{MEASURE_VOCABULARY!r} is made of the measures (measures.yaml); define its "
            "spellings there")
    known = set(contract.vocabularies) | {MEASURE_VOCABULARY}
    for loc, _, field in _fields(contract):
        vocabulary = field.vocabulary
        if vocabulary is None:
            continue
        if vocabulary not in known:
            yield (*loc, "x-vocabulary"), (
                f"unknown vocabulary {vocabulary!r} (known: {', '.join(sorted(known))})")
        elif field.kind == "yesno":
            codes = set(contract.vocabulary(vocabulary).codes)
            if codes != {"yes", "no"}:
                yield (*loc, "x-vocabulary"), (
                    f"a boolean field's vocabulary needs exactly the codes yes and no "
                    f"({vocabulary} has {', '.join(sorted(codes))})")


def _foreign_keys(contract: Contract) -> Iterator[Finding]:
    for name, table in contract.tables.items():
        for i, fk in enumerate(table.foreign_keys):
            loc = (*C, "tables", name, "foreignKeys", i, "reference")
            target = contract.tables.get(fk.reference.resource)
            if target is None:
                yield loc, f"unknown table {fk.reference.resource!r}"
                continue
            missing = [f for f in fk.reference.fields if f not in target.field_names]
            if missing:
                yield loc, f"{target.name} has no field(s) {', '.join(missing)}"
            if len(fk.reference.fields) != len(fk.fields):
                yield loc, "fields and reference.fields must be as many"
        kinds = {f.kind for f in table.fields}
        measure_fields = [f for f in table.fields if f.vocabulary == MEASURE_VOCABULARY]
        if "value" in kinds and not measure_fields:
            yield (*C, "tables", name), (
                "a field of kind value needs a field with x-vocabulary measure beside it "
                "(the value's rule depends on its measure)")


def _measures(contract: Contract) -> Iterator[Finding]:
    yield from _unique(contract.measures, "name", ("measures",))
    try:
        contract.measure_vocabulary  # noqa: B018 - built to validate the spellings
    except ValidationError as exc:
        for error in exc.errors():
            yield (*C, "measures"), str((error.get("ctx") or {}).get("error", error["msg"]))


def _age_source(contract: Contract) -> Iterator[Finding]:
    source = contract.derived.age_at_index.from_
    dates = [f.name for _, _, f in _fields(contract) if f.kind == "date"]
    if source not in dates:
        yield (*C, "derived", "age_at_index", "from"), (
            f"must name a date field (found {source!r})")


def _unique(items: Iterable[object], key: str, path: Loc) -> Iterator[Finding]:
    seen: set[str] = set()
    for i, item in enumerate(items):
        name = getattr(item, key)
        if name in seen:
            yield (*C, *path, i, key), f"{name!r} is defined twice"
        seen.add(name)
