"""The GX suites the gates run: generated from the protocol in force, or read from files.

`protocol_suites()` generates them from the check tables and the protocol in force (the
run's, with its amendments): what the gates validate. `load_suites()` reads the generated
files `expectations/*.json` (the repository protocol's, for review and tests). Neither
needs a GX project folder or stored state: each suite is built in memory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import great_expectations as gx

from ivig_platform.quality.registry import checks_dir, expectations_dir

if TYPE_CHECKING:
    from ivig_platform.protocol.load import Protocol


def suite_files(folder: Path | None = None) -> list[Path]:
    return sorted((folder or expectations_dir()).glob("*.json"))


def load_suite_dicts(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    suites = {}
    for path in suite_files(folder):
        data = json.loads(path.read_text(encoding="utf-8"))
        suites[data["name"]] = data
    return suites


def build_suite(data: dict[str, Any]) -> gx.ExpectationSuite:
    """An ExpectationSuite from its JSON; refuses a file GX would silently shorten."""
    suite = gx.ExpectationSuite(
        name=data["name"],
        expectations=data["expectations"],
        meta=dict(data.get("meta") or {}),
        notes=data.get("notes"),
    )
    if len(suite.expectations) != len(data["expectations"]):
        raise ValueError(
            f"suite {data['name']}: {len(data['expectations']) - len(suite.expectations)} "
            "expectation(s) are not valid GX 1.x configurations"
        )
    return suite


def load_suites(folder: Path | None = None) -> dict[str, gx.ExpectationSuite]:
    """Every suite of `expectations/`, by name (e.g. `landed.assessments`)."""
    return {name: build_suite(data) for name, data in load_suite_dicts(folder).items()}


_GENERATED: dict[tuple[str, str], dict[str, gx.ExpectationSuite]] = {}


def protocol_suites(protocol: Protocol | None = None, folder: Path | None = None
                    ) -> dict[str, gx.ExpectationSuite]:
    """Every suite generated for `protocol` (default: the protocol in force), by name."""
    from ivig_platform.quality.generate import suite_dicts

    if protocol is None:
        from ivig_platform.protocol.in_force import protocol_in_force

        protocol = protocol_in_force()
    folder = folder or checks_dir()
    key = (str(folder.resolve()), protocol.fingerprint)
    if key not in _GENERATED:
        _GENERATED[key] = {name: build_suite(data)
                           for name, data in suite_dicts(folder, protocol).items()}
    return _GENERATED[key]
