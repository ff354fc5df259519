"""The GX suites as files: generated from the parameter tables, loadable from a fresh checkout."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from protocol_helpers import HAND_GRIP, amendment_file

from ivig_platform.landing.contract import MEASURE_RANGES, VOCABULARIES
from ivig_platform.landing.schema import LANDED, PROVENANCE
from ivig_platform.protocol.load import load_protocol
from ivig_platform.quality import load_suites
from ivig_platform.quality.generate import TEMPLATES, render, stale_files, suite_dicts, write_suites
from ivig_platform.quality.registry import check_types, checks, checks_dir, expectations_dir


def test_suite_files_are_exactly_what_the_generator_writes(tmp_path: Path) -> None:
    assert stale_files() == [], "run: python -m ivig_platform.quality.generate"
    written = write_suites(target=tmp_path)
    on_disk = sorted(p.name for p in expectations_dir().glob("*.json"))
    assert sorted(p.name for p in written) == on_disk
    for path in written:
        assert path.read_bytes() == (expectations_dir() / path.name).read_bytes()


def test_adding_a_check_is_one_row(tmp_path: Path) -> None:
    folder = tmp_path / "checks"
    shutil.copytree(checks_dir(), folder)
    with (folder / "field_checks.csv").open("a", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerow(
            ["landed.ivig_cycles", "weight_kg", "plausible_range", "", "", "35", "180", "", "",
             "", "warn: an example row"])
    suite = suite_dicts(folder)["landed.ivig_cycles"]
    added = [e for e in suite["expectations"]
             if e["meta"]["check_id"] == "landed.ivig_cycles/weight_kg/plausible_range/warn"]
    assert len(added) == 1
    assert added[0]["kwargs"] == {"column": "weight_kg", "min_value": 35.0, "max_value": 180.0}
    assert added[0]["severity"] == "warning" and added[0]["meta"]["category"] == "plausibility"


def test_suites_load_in_a_fresh_process_from_any_cwd_without_gx_project(tmp_path: Path) -> None:
    """A copy of expectations/ is all it takes; nothing of a GX project is read or written.

    The same process checks, through the generator's CLI entry, that the copy is current.
    """
    copy = tmp_path / "checkout" / "expectations"
    shutil.copytree(expectations_dir(), copy)
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = (
        "import json, os\n"
        "from ivig_platform.quality import load_suites\n"
        "from ivig_platform.quality.generate import main\n"
        "assert main(['--check']) == 0\n"
        "suites = load_suites()\n"
        "print(json.dumps({n: len(s.expectations) for n, s in suites.items()}))\n"
        "print(os.environ['GX_ANALYTICS_ENABLED'])\n"
    )
    env = {**os.environ, "IVIG_EXPECTATIONS_DIR": str(copy)}
    env.pop("GX_ANALYTICS_ENABLED", None)
    done = subprocess.run([sys.executable, "-c", code], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    counts_line, analytics = done.stdout.strip().splitlines()[-2:]
    counts = json.loads(counts_line)
    expected = {json.loads(p.read_text())["name"]: len(json.loads(p.read_text())["expectations"])
                for p in copy.glob("*.json")}
    assert counts == expected and len(counts) == 14
    assert analytics == "false"
    assert list(work.iterdir()) == []  # no gx/ folder, no great_expectations.yml
    assert sorted(p.name for p in copy.parent.iterdir()) == ["expectations"]


def test_every_expectation_carries_category_severity_and_threshold() -> None:
    for name, suite in load_suites().items():
        assert suite.meta["gate"] in ("landing", "marts"), name
        for expectation in suite.expectations:
            meta = expectation.meta
            assert meta["category"] in ("conformance", "completeness", "plausibility")
            assert meta["severity"] in ("error", "warn")
            assert expectation.severity.value == (
                "critical" if meta["severity"] == "error" else "warning")
            threshold = meta["threshold"]
            mostly = getattr(expectation, "mostly", None)
            if threshold:  # a rate check: GX mostly = 1 - threshold / 100
                assert mostly == 1 - threshold / 100
            elif mostly is not None:
                assert mostly == 1


def test_every_check_type_has_a_template_and_a_readme_entry() -> None:
    readme = (expectations_dir() / "README.md").read_text()
    for name in check_types():
        assert f"### `{name}`" in readme, name
        assert name in TEMPLATES or name == "frame_build", name
    used = {c.check_type for c in checks()}
    assert used == set(check_types()) - {"frame_build"}


def _family(dtype: pl.DataType) -> str:
    if dtype == pl.Utf8:
        return "string"
    if dtype.is_integer():
        return "integer"
    if dtype.is_float():
        return "float"
    if isinstance(dtype, pl.List):
        return "list"
    if isinstance(dtype, pl.Datetime):
        return "timestamp"
    return {pl.Date: "date", pl.Boolean: "boolean"}[dtype]


def test_landed_fields_match_the_landing_schema() -> None:
    rows = list(csv.DictReader((checks_dir() / "fields.csv").open()))
    for table, columns in LANDED.items():
        declared = {r["column"]: r["type"] for r in rows if r["suite"] == f"landed.{table}"}
        assert declared == {c: _family(t) for c, t in {**columns, **PROVENANCE}.items()}, table


def test_value_sets_and_ranges_match_the_landing_contract() -> None:
    vocab = {name: sorted(set(values.values())) for name, values in VOCABULARIES.items()}
    vocab["overlap_text"], vocab["indication_text"] = vocab["overlap"], vocab["indication"]
    vocab["serious"] = vocab["yesno"]
    for check in checks():
        if check.check_type in ("value_in_set", "list_values_in_set") and check.column in vocab:
            assert sorted(check.value.split("|")) == vocab[check.column], check.check_id
        if check.check_type == "valid_range" and check.condition_pair and \
                check.condition_pair[1] in MEASURE_RANGES:
            low, high, low_inclusive = MEASURE_RANGES[check.condition_pair[1]]
            assert (float(check.min_value), float(check.max_value)) == (low, high)
            assert ("strict_min" in check.value) == (not low_inclusive), check.check_id


def test_rendered_json_is_stable_and_readable() -> None:
    suite = suite_dicts()["landed.assessments"]
    text = render(suite)
    assert text.endswith("}\n") and "\n  \"expectations\": [\n" in text
    assert "µkat/L" in text  # notes stay readable in a diff (no \\u escapes)


def _expectation(suite: dict, check_id: str) -> dict:
    (found,) = [e for e in suite["expectations"] if e["meta"]["check_id"] == check_id]
    return found


def test_suites_take_ranges_sets_and_measures_from_the_protocol(tmp_path: Path) -> None:
    """An amendment's range and new measure reach the generated suites with no edit of the
    check tables (they refer to protocol fields and measures)."""
    protocol = load_protocol().with_amendments([amendment_file(tmp_path, "grip.yaml", HAND_GRIP),
                                                amendment_file(tmp_path, "dose.yaml", """\
        version: v1-b
        extends: v2-grip
        effective_date: 2026-12-02
        rationale: doses up to 500 g per cycle
        contract:
          tables:
            ivig_cycles:
              fields:
                - name: dose_g
                  constraints: {required: true, exclusiveMinimum: 0, maximum: 500}
        """)])
    suites = suite_dicts(protocol=protocol)
    dose = _expectation(suites["landed.ivig_cycles"],
                        "landed.ivig_cycles/dose_g/valid_range/error")
    assert dose["kwargs"] == {"column": "dose_g", "min_value": 0.0, "max_value": 500.0,
                              "strict_min": True}
    grip = _expectation(suites["landed.assessments"],
                        "landed.assessments/value[measure=hand_grip]/valid_range/error")
    assert (grip["kwargs"]["min_value"], grip["kwargs"]["max_value"]) == (0.0, 90.0)
    measures = _expectation(suites["landed.assessments"],
                            "landed.assessments/measure/value_in_set/error")
    assert measures["kwargs"]["value_set"][-1] == "hand_grip"
    # the primary plan does not analyse the new measure: its completeness is not judged
    windows = {e["kwargs"]["column"] for e in suites["landed.patient_windows"]["expectations"]}
    assert "has_post_hand_grip" not in windows and "has_post_mrc" in windows


def test_a_row_referring_to_the_protocol_cannot_write_the_numbers_too(tmp_path: Path) -> None:
    folder = tmp_path / "checks"
    shutil.copytree(checks_dir(), folder)
    with (folder / "field_checks.csv").open("a", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerow(
            ["marts.fct_ivig_cycle", "weight_kg", "valid_range", "field:ivig_cycles.weight_kg",
             "", "30", "200", "", "", "", "error: both"])
    with pytest.raises(ValueError, match="cannot also write min_value, max_value"):
        checks(folder)
