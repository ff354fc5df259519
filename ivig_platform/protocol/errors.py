"""Errors of a protocol definition: which file, which key, what is wrong.

Every problem found while reading, validating or amending the protocol becomes an
`Issue`; the loader collects all of them before it gives up, so one run of
`ivig protocol check` lists everything to fix. pydantic's messages are rewritten into
short ones that say what was expected and what was found
(`fields[3].constraints.maximum: must be a number, got 'abc'`).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

Loc = tuple[str | int, ...]

#: Descriptions of the name patterns of the schema, for "must be …" messages.
PATTERN_TEXT: dict[str, str] = {}


@dataclass(frozen=True)
class Issue:
    """One problem: the file it is in, where in the file, and what is wrong."""

    file: str
    where: str
    message: str

    def __str__(self) -> str:
        place = f"{self.file}: {self.where}: " if self.where else f"{self.file}: "
        return place + self.message


class ProtocolError(ValueError):
    """The protocol (or an amendment) cannot be used; `issues` says everything wrong."""

    def __init__(self, issues: Sequence[Issue]):
        self.issues = tuple(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


@dataclass(frozen=True)
class Origin:
    """Where a subtree of the definition was written: a file, the key path in it, and for
    a CSV row its line."""

    file: str
    path: Loc = ()
    line: int | None = None

    def where(self, rest: Loc = ()) -> str:
        keys = format_loc(self.path + rest)
        if self.line is None:
            return keys
        return f"line {self.line}: {keys}" if keys else f"line {self.line}"


def format_loc(loc: Iterable[str | int]) -> str:
    """`fields[3].constraints.maximum`: keys joined by dots, list positions in brackets."""
    text = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker of a mapping key's own error
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def locate(loc: Loc, origins: Mapping[Loc, Origin], default: str) -> tuple[str, str]:
    """The file and in-file key path of a location in the merged definition.

    The longest recorded prefix of `loc` names the file (an amendment's own keys point at
    the amendment, everything else at the file it was read from).
    """
    for cut in range(len(loc), -1, -1):
        origin = origins.get(loc[:cut])
        if origin is not None:
            return origin.file, origin.where(loc[cut:])
    return default, format_loc(loc)


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    if isinstance(value, Mapping):
        text = "a mapping"
    elif isinstance(value, list | tuple):
        text = "a list"
    return text if len(text) <= 60 else text[:57] + "..."


def _expected(error: Mapping[str, Any]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    simple = {
        "missing": "is required",
        "extra_forbidden": "is not a known key",
        "float_parsing": "must be a number",
        "float_type": "must be a number",
        "finite_number": "must be a finite number",
        "int_parsing": "must be a whole number",
        "int_type": "must be a whole number",
        "int_from_float": "must be a whole number",
        "bool_parsing": "must be true or false",
        "bool_type": "must be true or false",
        "string_type": "must be text",
        "date_parsing": "must be a date (YYYY-MM-DD)",
        "date_type": "must be a date (YYYY-MM-DD)",
        "date_from_datetime_parsing": "must be a date (YYYY-MM-DD)",
        "list_type": "must be a list",
        "tuple_type": "must be a list",
        "dict_type": "must be a mapping (key: value)",
        "mapping_type": "must be a mapping (key: value)",
        "model_type": "must be a mapping (key: value)",
        "model_attributes_type": "must be a mapping (key: value)",
        "string_too_short": "must not be empty",
    }
    if kind in simple:
        return simple[kind]
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '?')}"
    bounds = {"greater_than": ">", "greater_than_equal": "≥", "less_than": "<",
              "less_than_equal": "≤"}
    if kind in bounds:
        limit = next(iter(ctx.values()), "?")
        if isinstance(limit, float) and limit.is_integer():
            limit = int(limit)
        return f"must be {bounds[kind]} {limit}"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        return f"must be {PATTERN_TEXT.get(pattern, f'text matching {pattern}')}"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length', 1)} item(s)"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", error["msg"]))
    message = str(error["msg"])
    return message[:1].lower() + message[1:]


def _unwrap(annotation: Any) -> Any:
    """The type inside Annotated[...] and `X | None`."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation


def known_keys(model: type[BaseModel] | None, loc: Sequence[str | int]) -> list[str]:
    """The keys the model at `loc` (inside `model`) accepts, for an unknown key's message."""
    annotation: Any = model
    for part in loc:
        annotation = _unwrap(annotation)
        origin = typing.get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = {f.alias or n: f for n, f in annotation.model_fields.items()}
            if part not in fields:
                return []
            annotation = fields[part].annotation
        elif origin in (tuple, list) and isinstance(part, int):
            annotation = typing.get_args(annotation)[0]
        elif origin in (dict, Mapping) and isinstance(part, str):
            annotation = typing.get_args(annotation)[1]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or n for n, f in annotation.model_fields.items()]
    return []


def issues_from_pydantic(
    errors: Iterable[Mapping[str, Any]], prefix: Loc, origins: Mapping[Loc, Origin],
    default: str, model: type[BaseModel] | None = None,
) -> list[Issue]:
    """pydantic's errors of the subtree at `prefix` (validated as `model`), as Issues
    naming their files."""
    found: list[Issue] = []
    for error in errors:
        loc = prefix + tuple(error["loc"])
        file, where = locate(loc, origins, default)
        message = _expected(error)
        custom = error["type"] in ("value_error", "assertion_error")
        if error["type"] == "extra_forbidden":
            known = known_keys(model, tuple(error["loc"])[:-1])
            if known:
                message += f" (known: {', '.join(known)})"
        elif not custom and error["type"] != "missing":
            message += f", got {_shown(error.get('input'))}"
        found.append(Issue(file, where, message))
    return found
