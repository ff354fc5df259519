"""What one version of the protocol changes against another, key by key.

Both versions are compared as validated (defaults filled in, placeholders resolved), so
the diff shows what is in force, not how it was written. Items of named lists (fields,
measures, rules, subgroups) are compared by name (`analysis.measures[mrss]…`), so an
appended measure is one addition and not a shift of every later one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ivig_platform.protocol.errors import Loc
from ivig_platform.protocol.fingerprint import plain
from ivig_platform.protocol.load import Protocol
from ivig_platform.protocol.merge import list_key

MISSING = "—"


@dataclass(frozen=True)
class Change:
    key: str
    old: str
    new: str


def version_data(protocol: Protocol, version: str) -> dict[str, Any]:
    """The contract and (if the version makes one) the plan of `version`, as plain data."""
    data: dict[str, Any] = {"contract": plain(protocol.contract_of(version))}
    if any(p.version == version for p in protocol.plans):
        data["analysis"] = plain(protocol.plan(version))
    return data


def _leaf(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_leaf(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def flatten(value: Any, path: Loc = (), label: str = "",
            items: set[str] | None = None) -> dict[str, str]:
    """`key path → value text` of every leaf; named list items are keyed by their name
    (and their key paths collected in `items`)."""
    items = set() if items is None else items
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for k, v in value.items():
            out |= flatten(v, (*path, k), f"{label}.{k}" if label else str(k), items)
        return out
    key = list_key(path)
    if isinstance(value, list) and (key or any(isinstance(v, dict) for v in value)):
        out = {}
        for i, item in enumerate(value):
            name = item.get(key) if key and isinstance(item, dict) else i
            items.add(f"{label}[{name}]")
            out |= flatten(item, (*path, i), f"{label}[{name}]", items)
        return out
    return {label: _leaf(value)}


def _summary(leaves: dict[str, str], prefix: str) -> str:
    """A whole item in one cell: its set keys and values."""
    return "; ".join(f"{k[len(prefix) + 1:]}: {v}" for k, v in leaves.items()
                     if k.startswith(prefix) and v not in ("null", "[]"))


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every key whose value differs, was added or removed, in the new version's order.

    A named item only one side has (a new measure) is one change, summarised.
    """
    old_items: set[str] = set()
    new_items: set[str] = set()
    a, b = flatten(old, items=old_items), flatten(new, items=new_items)
    whole = sorted((new_items ^ old_items), key=len)
    changes: list[Change] = []
    done: set[str] = set()
    for k in list(b) + [k for k in a if k not in b]:
        item = next((w for w in whole if k.startswith(w)), None)
        if item is not None:
            if item not in done:
                done.add(item)
                changes.append(Change(item, _summary(a, item) or MISSING,
                                      _summary(b, item) or MISSING))
        elif a.get(k, MISSING) != b.get(k, MISSING):
            changes.append(Change(k, a.get(k, MISSING), b.get(k, MISSING)))
    return changes


def diff_versions(protocol: Protocol, old: str, new: str) -> list[Change]:
    """The changes from version `old` to `new`; plans are compared when both make one."""
    a, b = version_data(protocol, old), version_data(protocol, new)
    if ("analysis" in a) != ("analysis" in b):
        a.pop("analysis", None)
        b.pop("analysis", None)
    return diff(a, b)
