"""Every cache redoes exactly the work a change affects, and nothing else (issue 16, point 1).

One delivery is landed, gated, given a saved dbt parse and a no-change state; then, one at
a time, a change is made to a rule's code, another module's code, a library's version or
the protocol, and each of the four skips is asked again on a copy of that warehouse:

- landing: `land_delivery` reuses the landing in place, or lands again;
- the gate: `cached_landing_gates` takes the verdict from the cache, or validates again;
- dbt: `_ParseCache.restore` hands the saved parse to dbt, or there is none for the key;
- the whole refresh: `is_unchanged` says "nothing changed", or the refresh runs.

Code changes are made in a copy of the package's source tree that the fingerprints read
(`fingerprints.PACKAGE_DIR`); the code that runs is the real one, so only the keys see
the change. Library versions come from a monkeypatched `importlib.metadata.version`, the
protocol from a temporary protocol folder (`IVIG_PROTOCOL_DIR`).
"""

from __future__ import annotations

import importlib.metadata
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import KEY, NOW, Extract, make_delivery

from ivig_platform import fingerprints
from ivig_platform.landing.land import Delivery, delivery_dir, land_delivery, read_manifest
from ivig_platform.landing.pseudonym import key_fingerprint
from ivig_platform.modeling import dbt_build
from ivig_platform.protocol.load import ENV_VARIABLE, REPOSITORY_ROOT, load_protocol
from ivig_platform.quality import landed_tables, pool_stats
from ivig_platform.quality.cache import cached_landing_gates, suites_fingerprint
from ivig_platform.quality.drift_reference import DriftPools
from ivig_platform.warehouse.publish import PUBLISHED_NAME
from ivig_platform.warehouse.state import (
    CODE_FOLDERS,
    FOLDER_VARIABLES,
    LOCK_FILE,
    current_state,
    is_unchanged,
    write_state,
)

SOURCE_ROOT = fingerprints.PACKAGE_DIR.parent
LATER = NOW + timedelta(days=1)
SITE, DELIVERY_ID = "es-cache", "2026-11-24"
BUILD_FILE = Path("ivig_build.duckdb")
IGNORED = shutil.ignore_patterns("__pycache__", "target", "logs", "*.duckdb", "*.pyc")


@dataclass(frozen=True)
class Baseline:
    root: Path
    source: Path  # the pristine copy of the source tree the fingerprints read
    inbox: Path
    delivery: Delivery
    warehouse: Path
    parse_cache: Path
    landed_at: str


@dataclass(frozen=True)
class Outcome:
    landing: str  # reused | redone
    gate: str  # cached | validated
    dbt_parse: str  # reused | parsed
    refresh: str  # skipped | runs


def copy_sources(target: Path) -> Path:
    for folder in CODE_FOLDERS:
        shutil.copytree(SOURCE_ROOT / folder, target / folder, ignore=IGNORED)
    shutil.copy2(SOURCE_ROOT / LOCK_FILE, target / LOCK_FILE)
    return target


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Iterator[Baseline]:
    root = tmp_path_factory.mktemp("cache-keys")
    source = copy_sources(root / "source")
    with pytest.MonkeyPatch.context() as patch:
        for variable in (*FOLDER_VARIABLES, ENV_VARIABLE):
            patch.delenv(variable, raising=False)
        patch.setattr(fingerprints, "PACKAGE_DIR", source / "ivig_platform")
        fingerprints.clear_caches()
        delivery = make_delivery(root, SITE, DELIVERY_ID, Extract().csv_tables())
        warehouse = root / "warehouse"
        manifest = land_delivery(delivery, warehouse, KEY, now=NOW)
        assert manifest.status == "landed"
        ((_, cached),) = gate(warehouse)
        assert not cached
        parse_cache = root / "parse-cache"
        first_run = root / "dbt-run"
        first_run.mkdir()
        (first_run / "partial_parse.msgpack").write_bytes(b"a saved parse")
        dbt_build._ParseCache(parse_cache, BUILD_FILE, {}).save(first_run)
        (warehouse / PUBLISHED_NAME).write_bytes(b"the published file")
        write_state(warehouse, current_state(delivery.path.parents[1], key_fingerprint(KEY), 0))
        yield Baseline(root, source, delivery.path.parents[1], delivery, warehouse, parse_cache,
                       manifest.landed_at)
    fingerprints.clear_caches()


def gate(warehouse: Path) -> list:
    tables = {(SITE, DELIVERY_ID): landed_tables(warehouse, SITE, DELIVERY_ID)}
    pools = DriftPools(established=pool_stats({}), newest=pool_stats({}), fixed_on="2026-11-25",
                       run_id="run-1")
    content = read_manifest(delivery_dir(warehouse, SITE, DELIVERY_ID)).content_sha256
    return cached_landing_gates(warehouse, [(SITE, DELIVERY_ID, content)], tables, pools,
                                "run-2", suites_fingerprint())


def refresh_again(base: Baseline, tmp_path: Path) -> Outcome:
    """The four skips asked again, on a copy of the baseline's warehouse and parse cache."""
    warehouse = tmp_path / "warehouse"
    shutil.copytree(base.warehouse, warehouse)  # keeps times: the same published file
    state = current_state(base.inbox, key_fingerprint(KEY), 0)
    unchanged = is_unchanged(warehouse, state)
    manifest = land_delivery(base.delivery, warehouse, KEY, now=LATER)
    ((_, cached),) = gate(warehouse)
    parse_cache = tmp_path / "parse-cache"
    shutil.copytree(base.parse_cache, parse_cache)
    run = tmp_path / "dbt-run"
    run.mkdir()
    restored = dbt_build._ParseCache(parse_cache, BUILD_FILE, {}).restore(run)
    return Outcome(
        landing="reused" if manifest.landed_at == base.landed_at else "redone",
        gate="cached" if cached else "validated",
        dbt_parse="reused" if restored else "parsed",
        refresh="skipped" if unchanged else "runs",
    )


# --------------------------------------------------------------------------- changes

Change = Callable[[Baseline, Path, pytest.MonkeyPatch], None]


def code_change(module: str) -> Change:
    """A statement added to `module` (a path under the package) in a copy of the sources."""
    def change(base: Baseline, tmp_path: Path, patch: pytest.MonkeyPatch) -> None:
        source = copy_sources(tmp_path / "source")
        path = source / "ivig_platform" / module
        path.write_text(path.read_text() + "\nCHANGED_BY_THE_TEST = True\n")
        patch.setattr(fingerprints, "PACKAGE_DIR", source / "ivig_platform")
        fingerprints.clear_caches(["code"])
    return change


def comment_change(module: str) -> Change:
    def change(base: Baseline, tmp_path: Path, patch: pytest.MonkeyPatch) -> None:
        code_change(module)(base, tmp_path, patch)
        path = tmp_path / "source" / "ivig_platform" / module
        text = path.read_text().replace("\nCHANGED_BY_THE_TEST = True\n", "\n# a comment\n")
        path.write_text(text)
        fingerprints.clear_caches(["code"])
    return change


def version_change(library: str) -> Change:
    def change(base: Baseline, tmp_path: Path, patch: pytest.MonkeyPatch) -> None:
        real = importlib.metadata.version
        patch.setattr(importlib.metadata, "version",
                      lambda name: "999.0.0" if name == library else real(name))
        fingerprints.clear_caches(["versions"])
    return change


def protocol_change(file: str, old: str, new: str) -> Change:
    def change(base: Baseline, tmp_path: Path, patch: pytest.MonkeyPatch) -> None:
        root = tmp_path / "protocol"
        shutil.copytree(REPOSITORY_ROOT, root)
        path = root / file
        text = path.read_text()
        assert old in text, (file, old)
        path.write_text(text.replace(old, new, 1))
        patch.setenv(ENV_VARIABLE, str(root))
        load_protocol.cache_clear()
        fingerprints.clear_caches(["protocol"])
    return change


def no_change(base: Baseline, tmp_path: Path, patch: pytest.MonkeyPatch) -> None:
    """Nothing."""


CASES: dict[str, tuple[Change, Outcome]] = {
    "nothing": (no_change, Outcome("reused", "cached", "reused", "skipped")),
    "a comment in a rule's module": (comment_change("landing/rules.py"),
                                     Outcome("reused", "cached", "reused", "runs")),
    "a landing rule's code": (code_change("landing/rules.py"),
                              Outcome("redone", "validated", "reused", "runs")),
    "the pseudonym code": (code_change("landing/pseudonym.py"),
                           Outcome("redone", "validated", "reused", "runs")),
    "the gate's code": (code_change("quality/gate.py"),
                        Outcome("reused", "validated", "reused", "runs")),
    "the dbt driver's code": (code_change("modeling/dbt_build.py"),
                              Outcome("reused", "cached", "parsed", "runs")),
    "the report's code": (code_change("report/sections.py"),
                          Outcome("reused", "cached", "reused", "runs")),
    "fastexcel's version": (version_change("fastexcel"),
                            Outcome("redone", "validated", "reused", "runs")),
    "great-expectations' version": (version_change("great-expectations"),
                                    Outcome("reused", "validated", "reused", "runs")),
    "dbt-duckdb's version": (version_change("dbt-duckdb"),
                             Outcome("reused", "cached", "parsed", "runs")),
    "scipy's version (the stats)": (version_change("scipy"),
                                    Outcome("reused", "cached", "reused", "runs")),
    "the contract (a new spelling)": (
        protocol_change("contract/vocabularies.csv", "female|mujer", "female|mujer|femenino"),
        Outcome("redone", "validated", "parsed", "runs")),
    "a plan's window": (
        protocol_change("analysis/v1.yaml", "post_target_days: 90", "post_target_days: 91"),
        Outcome("reused", "validated", "parsed", "runs")),
    "the protocol's text only": (
        protocol_change("study-protocol.md", "\n", "\n\n"),
        Outcome("reused", "cached", "reused", "runs")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_change_redoes_exactly_the_work_it_affects(baseline, tmp_path, monkeypatch, case):
    change, expected = CASES[case]
    try:
        change(baseline, tmp_path, monkeypatch)
        assert refresh_again(baseline, tmp_path) == expected
    finally:
        monkeypatch.undo()
        load_protocol.cache_clear()
        fingerprints.clear_caches(["versions", "protocol"])
