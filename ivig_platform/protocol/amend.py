"""Amendment files: what each one changes, and in which order they apply.

An amendment names its base and states only what changes:

    version: v2
    extends: v1                 # the protocol's version or another amendment's
    effective_date: 2026-12-01
    rationale: post-treatment value at six months instead of three
    title: …                    # optional; the plan's title (default: version: rationale)
    analysis: {…}               # changes to the analysis plan → an additional plan
    contract: {…}               # changes to the data contract → a new effective contract

`analysis` and `contract` have the shape of the protocol tree (`files.py`) and are
merged into the base's (`merge.py`). An amendment with `analysis` makes a plan computed
beside the primary one; one with only `contract` makes no plan. The effective date is
recorded with the plan (and shown), but does not switch anything on or off: an amendment
is in force when its file is in `protocol/amendments/` or given at run time.

Chains are allowed (v3 extends v2); an unknown base, a version defined twice and a cycle
are refused. Privacy and monitoring are not amendable by a file: they change with a new
version of the protocol itself.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError, model_validator

from ivig_platform.protocol.errors import Issue, issues_from_pydantic
from ivig_platform.protocol.files import read_yaml
from ivig_platform.protocol.schema import Model, Text, Version

#: Keys of a plan that an amendment sets through its own header, not through `analysis`.
HEADER_KEYS = ("version", "extends", "effective_date", "rationale")


class AmendmentHeader(Model):
    version: Version
    extends: Version
    effective_date: date
    rationale: Text
    title: Text | None = None
    analysis: dict[str, Any] | None = None
    contract: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> AmendmentHeader:
        if not self.analysis and not self.contract:
            raise ValueError("an amendment changes `analysis`, `contract` or both; it has neither")
        if self.version == self.extends:
            raise ValueError(f"version {self.version} cannot extend itself")
        given = [k for k in HEADER_KEYS if k in (self.analysis or {})]
        if given:
            raise ValueError(
                f"analysis: {', '.join(given)} is set by the amendment's own header keys"
            )
        return self


@dataclass(frozen=True)
class Amendment:
    """An amendment file, read and checked on its own (not yet applied)."""

    header: AmendmentHeader
    file: str  # as named in messages
    path: Path

    @property
    def version(self) -> str:
        return self.header.version

    @property
    def extends(self) -> str:
        return self.header.extends

    @property
    def plan_title(self) -> str:
        return self.header.title or f"{self.version}: {self.header.rationale}"


def read_amendment(path: Path, shown: str, issues: list[Issue]) -> Amendment | None:
    """The amendment in `path`, or None with the issues that make it unusable."""
    data = read_yaml(path, shown, issues)
    if data is None:
        return None
    if not isinstance(data, dict):
        issues.append(Issue(shown, "", "an amendment must be a mapping (version, extends, …)"))
        return None
    try:
        header = AmendmentHeader.model_validate(data)
    except ValidationError as exc:
        issues.extend(issues_from_pydantic(exc.errors(), (), {}, shown, AmendmentHeader))
        return None
    return Amendment(header, shown, path)


def order_amendments(amendments: list[Amendment], base_version: str,
                     issues: list[Issue]) -> list[Amendment]:
    """The amendments that can apply, each after its base (ties: effective date, version).

    A version defined twice, an unknown base and a cycle are issues; the amendments they
    touch (and those built on them) are left out.
    """
    by_version: dict[str, Amendment] = {}
    for a in amendments:
        if a.version == base_version:
            issues.append(Issue(a.file, "version",
                                f"{a.version} is the protocol's own version; choose another"))
        elif a.version in by_version:
            issues.append(Issue(a.file, "version", f"version {a.version} is also defined in "
                                                   f"{by_version[a.version].file}"))
        else:
            by_version[a.version] = a
    known = {base_version, *by_version}
    for a in by_version.values():
        if a.extends not in known:
            others = ", ".join(sorted(known - {a.version}))
            issues.append(Issue(a.file, "extends",
                                f"unknown version {a.extends!r} (known: {others})"))
    for cycle in _cycles(by_version):
        files = by_version[cycle[0]].file
        issues.append(Issue(files, "extends",
                            f"amendments extend each other in a cycle: {' → '.join(cycle)}"))

    children: dict[str, list[Amendment]] = {}
    for a in by_version.values():
        children.setdefault(a.extends, []).append(a)
    ordered: list[Amendment] = []
    ready = [(_sort_key(a), a.version) for a in children.get(base_version, [])]
    heapq.heapify(ready)
    while ready:
        _, version = heapq.heappop(ready)
        ordered.append(by_version[version])
        for child in children.get(version, []):
            heapq.heappush(ready, (_sort_key(child), child.version))
    return ordered


def _sort_key(a: Amendment) -> tuple[date, str]:
    return (a.header.effective_date, a.version)


def _cycles(by_version: dict[str, Amendment]) -> list[list[str]]:
    """Each cycle of `extends` once, as the versions along it (first repeated at the end)."""
    found: list[list[str]] = []
    seen: set[str] = set()
    for start in sorted(by_version):
        path: list[str] = []
        version = start
        while version in by_version and version not in seen and version not in path:
            path.append(version)
            version = by_version[version].extends
        if version in path:
            cycle = path[path.index(version):]
            found.append([*cycle, version])
        seen.update(path)
    return found


def ancestors(version: str, amendments: dict[str, Amendment]) -> list[str]:
    """The versions `version` is built on, nearest first (the base version last)."""
    chain = []
    while version in amendments:
        version = amendments[version].extends
        chain.append(version)
    return chain
