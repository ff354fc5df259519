"""The checks as data: the parameter tables under `expectations/checks/`.

- `check_types.csv`: the registry of check types (GX expectation, Kahn category and
  subcategory, default severity and threshold, definition), as DataQualityDashboard's
  check descriptions;
- `suites.csv`: one row per suite (gate, the frame it validates, its grain);
- `fields.csv`: one row per suite × column of the contract (type family, required): each
  row yields the checks column_type and, when required, required_value; the rows of a
  suite together yield its columns_present check;
- `field_checks.csv`: one row per further check (suite × column × check type, parameters,
  severity and threshold when not the type's default, and the reasoning in `notes`). A
  row whose `protocol` cell is set takes its range, set or measures from the protocol in
  force instead of writing them (`protocol_refs.py`), so the suites follow an amendment.

Adding a check is one row; adding a check type is one row in check_types.csv, one template
in `generate.py` and one entry in `expectations/README.md`.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivig_platform.protocol.load import Protocol

SEVERITIES = ("error", "warn")
CATEGORIES = ("conformance", "completeness", "plausibility")


def expectations_dir() -> Path:
    """`expectations/` of the checkout this package sits in (IVIG_EXPECTATIONS_DIR overrides)."""
    override = os.environ.get("IVIG_EXPECTATIONS_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "expectations"


def checks_dir() -> Path:
    return expectations_dir() / "checks"


@dataclass(frozen=True)
class CheckType:
    check_type: str
    level: str
    gx_expectation: str
    category: str
    subcategory: str
    default_severity: str
    default_threshold: float | None
    definition: str


@dataclass(frozen=True)
class SuiteSpec:
    suite: str
    gate: str  # landing | marts
    frame: str
    grain: str
    description: str


@dataclass(frozen=True)
class Check:
    """One check: what a row of the parameter tables says, defaults resolved."""

    suite: str
    column: str
    check_type: str
    value: str
    min_value: str
    max_value: str
    condition: str
    severity: str
    threshold: float | None
    category: str
    subcategory: str
    notes: str
    source: str
    #: The protocol reference the row was resolved from (`protocol_refs.py`), if any.
    protocol: str = ""

    @property
    def check_id(self) -> str:
        column = self.column or "*"
        condition = f"[{self.condition}]" if self.condition else ""
        return f"{self.suite}/{column}{condition}/{self.check_type}/{self.severity}"

    @property
    def condition_pair(self) -> tuple[str, str] | None:
        if not self.condition:
            return None
        name, _, value = self.condition.partition("=")
        return name.strip(), value.strip()


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(handle)]


def _number(text: str) -> float | None:
    return float(text) if text else None


def check_types(folder: Path | None = None) -> dict[str, CheckType]:
    folder = folder or checks_dir()
    types = {}
    for row in _read(folder / "check_types.csv"):
        if row["default_severity"] not in SEVERITIES:
            raise ValueError(f"check type {row['check_type']}: bad severity")
        if row["kahn_category"] not in CATEGORIES:
            raise ValueError(f"check type {row['check_type']}: bad Kahn category")
        types[row["check_type"]] = CheckType(
            check_type=row["check_type"],
            level=row["level"],
            gx_expectation=row["gx_expectation"],
            category=row["kahn_category"],
            subcategory=row["kahn_subcategory"],
            default_severity=row["default_severity"],
            default_threshold=_number(row["default_threshold"]),
            definition=row["definition"],
        )
    return types


def suite_specs(folder: Path | None = None) -> dict[str, SuiteSpec]:
    rows = _read((folder or checks_dir()) / "suites.csv")
    return {r["suite"]: SuiteSpec(**r) for r in rows}


def _check(types: dict[str, CheckType], suites: dict[str, SuiteSpec], source: str,
           row: dict[str, str]) -> Check:
    kind = types.get(row["check_type"])
    if kind is None:
        raise ValueError(f"{source}: unknown check type {row['check_type']!r}")
    if row["suite"] not in suites:
        raise ValueError(f"{source}: unknown suite {row['suite']!r}")
    severity = row.get("severity") or kind.default_severity
    if severity not in SEVERITIES:
        raise ValueError(f"{source}: bad severity {severity!r}")
    threshold = _number(row.get("threshold", "")) if row.get("threshold") else None
    if threshold is None:
        threshold = kind.default_threshold
    return Check(
        suite=row["suite"],
        column=row.get("column", ""),
        check_type=kind.check_type,
        value=row.get("value", ""),
        min_value=row.get("min_value", ""),
        max_value=row.get("max_value", ""),
        condition=row.get("condition", ""),
        severity=severity,
        threshold=threshold,
        category=kind.category,
        subcategory=kind.subcategory,
        notes=row.get("notes", ""),
        source=source,
        protocol=row.get("protocol", ""),
    )


def checks(folder: Path | None = None, protocol: Protocol | None = None) -> list[Check]:
    """Every check of every suite, in the order of the tables (fields first), with the
    rows that refer to the protocol resolved against `protocol` (default: the protocol in
    force)."""
    if protocol is None:
        from ivig_platform.protocol.in_force import protocol_in_force

        protocol = protocol_in_force()
    folder = (folder or checks_dir()).resolve()
    stamps = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                   for p in sorted(folder.glob("*.csv")))
    key = (str(folder), stamps, protocol.fingerprint)
    found = _RESOLVED.get(key)
    if found is None:
        found = _RESOLVED[key] = _checks(folder, protocol)
    return list(found)


#: Resolved checks by folder (and its files' stamps) and protocol fingerprint: the tables
#: are read once per protocol.
_RESOLVED: dict[tuple[str, tuple, str], tuple[Check, ...]] = {}


def _checks(folder: Path, protocol: Protocol) -> tuple[Check, ...]:
    from ivig_platform.quality.protocol_refs import resolve_row

    types, suites = check_types(folder), suite_specs(folder)
    found: list[Check] = []
    fields = _read(folder / "fields.csv")
    for suite in dict.fromkeys(row["suite"] for row in fields):
        columns = "|".join(row["column"] for row in fields if row["suite"] == suite)
        found.append(_check(types, suites, "fields.csv", {
            "suite": suite, "check_type": "columns_present", "value": columns,
            "notes": "error: the columns of the contract; a missing one breaks every use of it",
        }))
    for row in fields:
        base = {"suite": row["suite"], "column": row["column"], "notes": row["notes"]}
        found.append(_check(types, suites, "fields.csv",
                            {**base, "check_type": "column_type", "value": row["type"]}))
        if row["required"] == "yes":
            found.append(_check(types, suites, "fields.csv",
                                {**base, "check_type": "required_value"}))
    for line, row in enumerate(_read(folder / "field_checks.csv"), start=2):
        for resolved in resolve_row(row, protocol, f"field_checks.csv line {line}"):
            found.append(_check(types, suites, "field_checks.csv", resolved))
    seen: set[str] = set()
    for check in found:
        if check.check_id in seen:
            raise ValueError(f"duplicate check {check.check_id}")
        seen.add(check.check_id)
    return tuple(found)
