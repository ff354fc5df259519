"""The upgrade check's own logic: which pins it relaxes, how it reports (deploy/upgrade_check.py).

The whole procedure (a scratch copy, `uv lock --upgrade`, `uv sync`, the tests, the demo,
the benchmark) needs the network and half an hour; it is run by hand (README, "Upgrading").
"""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path

import pytest

from ivig_platform.private_interfaces import PINNED, UPGRADE_RANGES

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("upgrade_check", ROOT / "deploy/upgrade_check.py")
upgrade_check = importlib.util.module_from_spec(_spec)
sys.modules["upgrade_check"] = upgrade_check  # dataclasses look their module up
_spec.loader.exec_module(upgrade_check)


def test_relax_pins_lets_exactly_the_private_interface_libraries_move():
    text = (ROOT / "pyproject.toml").read_text()
    relaxed = tomllib.loads(upgrade_check.relax_pins(text))["project"]["dependencies"]
    original = tomllib.loads(text)["project"]["dependencies"]
    changed = {a: b for a, b in zip(original, relaxed, strict=True) if a != b}
    assert changed == {f"{name}=={PINNED[name]}": f"{name}{UPGRADE_RANGES[name]}"
                       for name in PINNED}
    assert all(version in UPGRADE_RANGES[name] for name, version in PINNED.items())


def test_relax_pins_refuses_a_library_that_is_not_pinned_exactly():
    with pytest.raises(ValueError, match="does not pin prefect with =="):
        upgrade_check.relax_pins('dependencies = ["prefect>=3.6,<4"]', {"prefect": ">=3"})


def test_lock_changes_lists_moved_new_and_removed_packages():
    before = {"prefect": "3.9.1", "babel": "2.18.0", "gone": "1.0"}
    after = {"prefect": "3.9.2", "babel": "2.18.0", "new": "0.1"}
    assert upgrade_check.lock_changes(before, after) == [
        "gone: 1.0 -> (removed)", "new: (new) -> 0.1", "prefect: 3.9.1 -> 3.9.2"]


def test_locked_versions_reads_the_repositorys_lock():
    versions = upgrade_check.locked_versions((ROOT / "uv.lock").read_text())
    assert {name: versions[name] for name in PINNED} == PINNED


def test_failures_are_pytests_summary_lines_or_the_last_lines():
    output = "x\nFAILED tests/a.py::test_one - AssertionError\nERROR tests/b.py\n2 failed\n"
    assert upgrade_check.failures(output) == ["FAILED tests/a.py::test_one - AssertionError",
                                              "ERROR tests/b.py"]
    assert upgrade_check.failures("one\ntwo\n\nTraceback\nboom\n") == [
        "one", "two", "Traceback", "boom"]


def run(ok: bool, wall: float, landed: int) -> dict:
    return {"cold": {"ok": ok, "exit_code": 0 if ok else 1, "wall_s": wall,
                     "rows_landed": landed},
            "no_change": {"ok": True, "wall_s": 0.4},
            "one_site": {"ok": True, "wall_s": wall - 5, "rows_landed": landed}}


def test_benchmark_comparison_fails_a_failed_scenario_and_notes_other_figures():
    problems, notes = upgrade_check.benchmark_comparison([run(True, 35, 1420)],
                                                         [run(False, 40, 1419)])
    assert problems == ["cold: failed (exit 1)"]
    assert "one_site: rows_landed 1419, recorded 1420" in notes
    assert not any(note.startswith("cold: ") for note in notes)  # a failed run has no figures
    assert "cold 40.0 s (recorded 35.0 s)" in notes
    assert upgrade_check.benchmark_comparison([], [])[0] == [
        "cold: no result", "no_change: no result", "one_site: no result"]


def test_summary_says_not_safe_when_a_check_failed():
    checks = [upgrade_check.Check("interfaces", ["pytest", "x"], True, 3.0),
              upgrade_check.Check("demo", ["pytest", "y"], False, 9.0, ["FAILED y::t"])]
    text = upgrade_check.summary(["prefect: 3.9.1 -> 3.9.2"], checks, [])
    assert "- prefect: 3.9.1 -> 3.9.2" in text
    assert "- demo: FAILED (9 s) — `pytest y`\n    - FAILED y::t" in text
    assert text.endswith("Result: NOT safe to adopt as is\n")
    checks[1].passed = True
    assert "every check passed" in upgrade_check.summary([], checks, [])


def test_the_pin_tests_the_check_leaves_out_exist_under_that_name():
    source = (ROOT / "tests/test_private_interfaces.py").read_text()
    assert f"def {upgrade_check.PIN_TESTS}(" in source
