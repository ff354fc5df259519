"""Fingerprints of the protocol: sha256 of a canonical JSON of the parsed definition.

They are taken of what was parsed and validated, not of file bytes, so comments, key
order within a model, quoting and layout do not matter, while any value does (`5` and
`5.0` of a number are the same value). Keys keep the order the models define; the
entries of a mapping keep the order they were written in, since that order means
something where it is used (a vocabulary's codes are its subgroups' order).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel


def plain(value: Any) -> Any:
    """JSON-ready data: models by their aliases (as written in the files), dates as ISO."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    return json.dumps(plain(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def fingerprint(value: Any) -> str:
    """The sha256 (hex) of `value`'s canonical JSON."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
