"""Fingerprints of what produced a cached result: code closure, library versions, protocol.

The code hash is computed on a small package written here (same layout as the real one:
`ivig_platform/<folder>/…`), so each property is shown on a change of one file.
"""

from __future__ import annotations

import ast
import importlib.metadata
import textwrap
import threading
import time
from pathlib import Path

import pytest

from ivig_platform import fingerprints
from ivig_platform.fingerprints import DBT, GATE, LANDING, code_hash, source_closure
from ivig_platform.protocol import load_protocol

MODULES = {
    "__init__.py": "",
    "rules/__init__.py": "",
    "rules/check.py": '''
        """Rules."""
        from ivig_platform.shared.limits import HIGH
        from . import helper


        def check(value):
            """Is it in range?"""
            return value <= HIGH  # the contract's limit
    ''',
    "rules/helper.py": '''
        def lazy():
            from ivig_platform.late import LATE
            return LATE
    ''',
    "shared/__init__.py": "",
    "shared/limits.py": "HIGH = 400\n",
    "late.py": "LATE = 1\n",
    "unrelated/__init__.py": "",
    "unrelated/other.py": "X = 1\n",
}


@pytest.fixture
def package(tmp_path: Path) -> Path:
    root = tmp_path / "ivig_platform"
    for name, text in MODULES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


@pytest.fixture
def versions():
    """Library versions looked up again (code hashes are kept: they did not change)."""
    fingerprints.clear_caches(["versions"])
    yield
    fingerprints.clear_caches(["versions"])


def edit(package: Path, name: str, old: str, new: str) -> None:
    path = package / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    fingerprints.clear_caches(["code"])


def test_code_closure_follows_absolute_relative_and_function_level_imports(package):
    found = {p.relative_to(package).as_posix() for p in source_closure(["rules"], package)}
    assert found == {"__init__.py", "rules/__init__.py", "rules/check.py", "rules/helper.py",
                     "shared/__init__.py", "shared/limits.py", "late.py"}


def test_code_hash_changes_with_the_code_of_a_module_the_folder_imports(package):
    before = code_hash(["rules"], package)
    edit(package, "shared/limits.py", "400", "401")
    assert code_hash(["rules"], package) != before


def test_code_hash_changes_with_a_lazily_imported_module(package):
    before = code_hash(["rules"], package)
    edit(package, "late.py", "1", "2")
    assert code_hash(["rules"], package) != before


def test_code_hash_ignores_modules_the_folder_does_not_import(package):
    before = code_hash(["rules"], package)
    edit(package, "unrelated/other.py", "1", "2")
    assert code_hash(["rules"], package) == before


def test_code_hash_ignores_docstrings_comments_and_layout(package):
    before = code_hash(["rules"], package)
    edit(package, "rules/check.py", '"""Is it in range?"""', '"""Whether it is in range."""')
    edit(package, "rules/check.py", "# the contract's limit", "# §3")
    edit(package, "rules/check.py", "return value <= HIGH", "return (value\n            <= HIGH)")
    assert code_hash(["rules"], package) == before
    edit(package, "rules/check.py", "<= HIGH", "< HIGH")
    assert code_hash(["rules"], package) != before


def test_code_hash_is_computed_once_per_process(package):
    before = code_hash(["rules"], package)
    (package / "shared/limits.py").write_text("HIGH = 999\n")  # no clear_caches()
    assert code_hash(["rules"], package) == before  # the code this process runs


def test_code_hash_from_parallel_threads_parses_one_module_at_a_time(package, monkeypatch):
    """Sites land in threads and each asks for landing's fingerprint; Python 3.11's `ast`
    fails ("SystemError: AST constructor recursion depth mismatch") when two threads parse
    at once, which rejected a benchmark delivery as a landing_error."""
    fingerprints.clear_caches(["code"])
    real_parse, inside, most = ast.parse, [0], [0]
    guard = threading.Lock()

    def watched_parse(*args, **kwargs):
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.01)  # wide enough for another thread to enter, were it allowed
        try:
            return real_parse(*args, **kwargs)
        finally:
            with guard:
                inside[0] -= 1

    monkeypatch.setattr(ast, "parse", watched_parse)
    hashes: list[str] = []
    threads = [threading.Thread(target=lambda f=f: hashes.append(code_hash([f], package)))
               for f in ("rules", "shared", "unrelated", "rules", "late.py", "shared")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fingerprints.clear_caches(["code"])
    assert len(hashes) == len(threads) and most[0] == 1
    assert len(set(hashes)) == 4  # one per distinct folder, the same for each asker


def test_the_real_recipes_cover_what_they_import():
    landing = {p.relative_to(fingerprints.PACKAGE_DIR).as_posix()
               for p in source_closure(LANDING.code)}
    assert {"landing/rules.py", "landing/pseudonym.py", "landing/readers.py",
            "protocol/load.py", "fingerprints.py"} <= landing
    assert not any(p.startswith(("quality/", "modeling/", "report/")) for p in landing)
    gate = {p.relative_to(fingerprints.PACKAGE_DIR).as_posix() for p in source_closure(GATE.code)}
    assert {"quality/gate.py", "quality/pooled.py", "quality/_gx.py",
            "quality/drift_reference.py"} <= gate


@pytest.mark.parametrize(("library", "changed"), [
    ("fastexcel", {"landing"}),
    ("great-expectations", {"gate"}),
    ("polars", {"landing", "gate"}),
    ("dbt-duckdb", {"dbt"}),
    ("duckdb", {"dbt"}),
    ("scipy", set()),
])
def test_a_library_version_changes_exactly_the_recipes_that_name_it(monkeypatch, versions,
                                                                    library, changed):
    recipes = {"landing": LANDING, "gate": GATE, "dbt": DBT}
    before = {name: r.fingerprint() for name, r in recipes.items()}
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "999.0" if name == library else real(name))
    fingerprints.clear_caches(["versions"])
    after = {name: r.fingerprint() for name, r in recipes.items()}
    assert {name for name in recipes if after[name] != before[name]} == changed


def test_a_missing_library_is_named_not_an_error(monkeypatch, versions):
    def version(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    assert fingerprints.library_version("fastexcel") == fingerprints.NOT_INSTALLED


def test_protocol_parts_follow_the_protocol_in_force():
    protocol = load_protocol()
    assert fingerprints.protocol_fingerprint("contract", protocol) == (
        protocol.contract_fingerprint)
    both = fingerprints.protocol_fingerprint("contract+plans", protocol)
    assert both not in (protocol.contract_fingerprint, protocol.fingerprint)
    assert LANDING.parts(protocol)["protocol"] == protocol.contract_fingerprint
    assert GATE.parts(protocol)["protocol"] == DBT.parts(protocol)["protocol"] == both
