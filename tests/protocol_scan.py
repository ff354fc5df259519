"""Find copies of the protocol's numbers and spellings outside `protocol/` (issue 11).

The tokens are taken from the protocol itself, so the scan follows an amendment: the
windows and freshness thresholds, the measures' ranges, unit factors and responder
thresholds, the fields' bounds, the age rule and the date limit (numbers), and every
spelling a site may write that is not the code itself: vocabulary spellings, header
aliases, measure and unit spellings (words). Whole numbers below 10 are not scanned (0, 1,
2, 3, 5 are everywhere: indexes, decimals, thresholds of other kinds); fractions (2.83) are.

What is read, by kind of file, is what could hold a rule:
- Python: the constants of the code (numbers and strings), not comments or docstrings,
  which may describe v1 by way of example;
- SQL: the text without `--` and `{# #}` comments;
- YAML: every value except those of `unit_tests` (they are tests, with their own plan);
- CSV: every cell.
"""

from __future__ import annotations

import ast
import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from ivig_platform.landing.parsing import fold
from ivig_platform.protocol.load import Protocol

#: Whole numbers below this are not scanned (see the module docstring).
SMALLEST_SCANNED = 10


@dataclass(frozen=True)
class Copy:
    path: str
    token: str
    where: str  # the constant or line holding it, shortened

    def __str__(self) -> str:
        return f"{self.path}: {self.token!r} in {self.where!r}"


def protocol_numbers(p: Protocol) -> set[float]:
    c = p.contract
    numbers: set[float] = set()
    for plan in p.plans:
        w = plan.windows
        numbers |= {w.baseline_days_before, w.post_target_days, w.post_min_days,
                    w.post_max_days}
        for rule in plan.responders.values():
            numbers |= {cond.value for cond in (rule.eligible, rule.responder) if cond}
    fresh = p.monitoring.freshness
    numbers |= {fresh.warn_after_days, fresh.error_after_days}
    for m in c.measures:
        numbers |= {m.valid_range.low, m.valid_range.maximum}
        if m.units:
            numbers |= set(m.units.factors.values())
    for t in c.tables.values():
        for f in t.fields:
            if f.constraints is not None:
                numbers |= {v for v in (f.constraints.low, f.constraints.maximum)
                            if v is not None}
    numbers.add(c.derived.age_at_index.days_per_year)
    numbers.add(c.earliest_date.year)
    return {float(n) for n in numbers
            if n is not None and (abs(float(n)) >= SMALLEST_SCANNED or float(n) != int(n))}


def protocol_spellings(p: Protocol) -> set[str]:
    """What sites write that is not a code: the spellings landing folds to a code."""
    c = p.contract
    words: set[str] = set()
    for name in c.vocabularies:
        v = c.vocabulary(name)
        codes = {fold(code) for code in v.code_list}
        labels = {fold(v.label(code) or "") for code in v.code_list}
        words |= {s for s in v.spellings if s not in codes | labels}
    for t in c.tables.values():
        for f in t.fields:
            words |= set(f.aliases)
    for m in c.measures:
        words |= set(m.spellings)
        if m.units:
            words |= {u for u in m.units.factors if u != fold(m.unit)}
    return words


def _number_pattern(n: float) -> re.Pattern[str]:
    forms = {repr(n), f"{n:g}"}
    if n == int(n):
        i = int(n)
        forms |= {str(i), f"{i:_}", f"{i:,}"}
    alternatives = "|".join(sorted((re.escape(f) for f in forms), key=len, reverse=True))
    # not part of a longer number, a time or a name (dates are removed first: _DATES)
    return re.compile(rf"(?<![\w.:/])(?:{alternatives})(?![\w:/]|\.\d)")


#: Dates and times, removed before numbers are looked for (2025-07-30 holds no 30).
_DATES = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?|\d{2}:\d{2}")


def _word_pattern(w: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w/]){re.escape(w)}(?![\w/])", re.IGNORECASE)


def _python_constants(text: str) -> Iterator[object]:
    tree = ast.parse(text)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in docstrings:
            yield node.value


def _yaml_values(node: object) -> Iterator[object]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "unit_tests":
                yield from _yaml_values(value)
    elif isinstance(node, list):
        for item in node:
            yield from _yaml_values(item)
    else:
        yield node


_SQL_COMMENTS = re.compile(r"--[^\n]*|\{#.*?#\}", re.DOTALL)


def _values(path: Path) -> Iterator[object]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        yield from _python_constants(text)
    elif path.suffix == ".sql":
        yield from _SQL_COMMENTS.sub("", text).splitlines()
    elif path.suffix in (".yml", ".yaml"):
        yield from _yaml_values(yaml.safe_load(text))
    elif path.suffix == ".csv":
        for row in csv.reader(text.splitlines()):
            yield from row


def copies(p: Protocol, files: list[tuple[str, Path]]) -> list[Copy]:
    """Every protocol number or spelling found in `files` ((shown path, path) pairs)."""
    numbers = {n: _number_pattern(n) for n in protocol_numbers(p)}
    words = {w: _word_pattern(w) for w in protocol_spellings(p)}
    found: list[Copy] = []
    for shown, path in files:
        for value in _values(path):
            if isinstance(value, bool) or value is None:
                continue
            if isinstance(value, int | float):
                if float(value) in numbers:
                    found.append(Copy(shown, f"{value:g}", str(value)))
                continue
            text = str(value)
            undated = _DATES.sub(" ", text)
            for n, pattern in numbers.items():
                if pattern.search(undated):
                    found.append(Copy(shown, f"{n:g}", text.strip()[:80]))
            for w, pattern in words.items():
                if pattern.search(text):
                    found.append(Copy(shown, w, text.strip()[:80]))
    return found
