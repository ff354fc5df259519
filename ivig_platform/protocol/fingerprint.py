"""Fingerprints of the protocol: sha256 of a canonical JSON of the parsed definition.

They are taken of what was parsed and validated, not of file bytes, so comments, layout,
quoting and the order of keys in a mapping do not matter, while any value does (`5` and
`5.0` of a number are the same value). Order that means something is kept: lists (the
fields of a table, the measures, the rules) and the codes of a vocabulary, whose order is
the order of its subgroups.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel


def plain(value: Any, canonical: bool = False) -> Any:
    """JSON-ready data: models by their aliases (as written in the files), dates as ISO.

    `canonical` writes order-significant mappings as lists of pairs (see `OrderedMap`).
    """
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, context={"canonical": canonical})
    if isinstance(value, Mapping):
        return {str(k): plain(v, canonical) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, canonical) for v in value]
    return value


def canonical_json(value: Any) -> str:
    return json.dumps(plain(value, canonical=True), ensure_ascii=False, sort_keys=True,
                      separators=(",", ":"), allow_nan=False)


def fingerprint(value: Any) -> str:
    """The sha256 (hex) of `value`'s canonical JSON."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
