"""Reading the GX suites from `expectations/*.json` (a fresh checkout is enough).

The files are plain GX 1.x suite JSON written by `generate.py`; loading needs no GX project
folder and no stored state: each suite is built in memory from its file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import great_expectations as gx

from ivig_platform.quality.registry import expectations_dir


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
