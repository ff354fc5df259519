"""Amendment files: the issue's v2 example, chains, contract amendments, and refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ivig_platform.protocol.errors import ProtocolError
from ivig_platform.protocol.fingerprint import plain
from ivig_platform.protocol.load import load_protocol, plans_in_force
from ivig_platform.protocol.merge import merge

REPO = Path(__file__).resolve().parents[1]
CASES = Path(__file__).parent / "cases/protocol"
V2 = CASES / "amendment_v2.yaml"
V3 = CASES / "amendment_v3_chain.yaml"
CONTRACT_AMENDMENT = CASES / "amendment_contract.yaml"
HEADER = ("version", "title", "extends", "effective_date", "rationale")


@pytest.fixture(scope="module")
def base():
    return load_protocol(REPO / "protocol")


def amendment(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(base, *files: Path) -> list[str]:
    with pytest.raises(ProtocolError) as caught:
        base.with_amendments(files)
    return [str(i) for i in caught.value.issues]


def test_v2_changes_the_windows_and_inherits_everything_else(base) -> None:
    v1, v2 = base.with_amendments([V2]).plans
    w = v2.windows
    assert (w.baseline_days_before, w.post_target_days, w.post_min_days, w.post_max_days,
            w.post_tie) == (60, 180, 120, 240, "later")
    assert (v2.version, v2.extends, str(v2.effective_date)) == ("v2", "v1", "2026-12-01")
    assert v2.rationale == "post-treatment value at six months instead of three"
    assert not v2.is_primary and v1.is_primary
    inherited = {k: v for k, v in plain(v1).items() if k not in (*HEADER, "windows")}
    assert {k: v for k, v in plain(v2).items() if k not in (*HEADER, "windows")} == inherited
    assert v1 == base.primary_plan  # the primary plan is untouched


def test_an_analysis_amendment_leaves_the_contract_alone(base) -> None:
    amended = base.with_amendments([V2])
    assert amended.contract == base.contract
    assert amended.contract_version == "v1"
    assert amended.contract_fingerprint == base.contract_fingerprint


def test_plans_in_force_lists_v1_first_then_the_amendments() -> None:
    assert [p.version for p in plans_in_force([V3, V2])] == ["v1", "v2", "v3"]


def test_a_chain_applies_each_amendment_on_its_base(base) -> None:
    v1, v2, v3 = base.with_amendments([V2, V3]).plans
    assert v3.extends == "v2"
    assert v3.windows == v2.windows  # from v2
    assert v3.measure("mrss").responder.responder.value == 8
    assert v3.measure("mrss").responder.text == "baseline - post >= 8 points; denominator: n_paired"
    assert v2.measure("mrss").responder == v1.measure("mrss").responder
    assert v3.measure("mrss").label == v1.measure("mrss").label  # merged by name, not replaced
    assert v3.measure_names == v1.measure_names


def test_a_contract_amendment_makes_the_contract_in_force(base) -> None:
    amended = base.with_amendments([CONTRACT_AMENDMENT])
    c = amended.contract
    assert amended.contract_version == "v1.1"
    assert c.vocabulary("sex").spellings["varon"] == "M"
    assert c.vocabulary("sex").label("M") == "male"  # the rest of the code is inherited
    weight = c.table("ivig_cycles").field("weight_kg")
    assert (weight.aliases, weight.constraints.minimum, weight.constraints.maximum) == (
        ("peso_kg", "peso"), 20, 300)
    assert weight.column_optional and weight.title == "Weight (kg)"
    grip = c.measure("grip")
    assert (grip.unit, grip.value.type, grip.valid_range.text()) == ("kg", "number", "0–100")
    assert c.vocabulary("measure").spellings["fuerza_prension"] == "grip"
    assert c.measure_names == ("mrc", "ck", "mrss", "ucla_git", "grip")
    assert amended.contract_fingerprint != base.contract_fingerprint
    assert base.contract_of("v1") == amended.contract_of("v1") == base.contract


def test_a_new_measure_reaches_the_amendments_plan_only(base) -> None:
    v1, v11 = base.with_amendments([CONTRACT_AMENDMENT]).plans
    assert v11.measure_names == ("mrc", "ck", "mrss", "ucla_git", "grip")
    grip = v11.measure("grip")
    assert (grip.short_label, grip.axis_title, grip.plot_domain) == (
        "Grip (kg)", "Grip strength, kg (0–100)", (0, 100))
    assert v1.measure_names == ("mrc", "ck", "mrss", "ucla_git")


def test_a_contract_only_amendment_makes_no_plan(base, tmp_path) -> None:
    path = amendment(tmp_path, "spelling.yaml", """
version: v1.0.1
extends: v1
effective_date: 2027-02-01
rationale: a site writes ninguno
contract:
  vocabularies:
    action: {codes: {none: {spellings: [ninguna, ninguno]}}}
""")
    amended = base.with_amendments([path])
    assert [p.version for p in amended.plans] == ["v1"]
    assert amended.contract.vocabulary("action").spellings["ninguno"] == "none"
    assert amended.versions == ("v1", "v1.0.1")


def test_amendments_in_the_protocol_folder_are_in_force(tmp_path) -> None:
    root = tmp_path / "protocol"
    shutil.copytree(REPO / "protocol", root)
    shutil.copy(V2, root / "amendments" / "v2.yaml")
    protocol = load_protocol(root)
    assert [p.version for p in protocol.plans] == ["v1", "v2"]
    assert protocol.source_of("v2") == "protocol/amendments/v2.yaml"
    # the same file given at run time too is one amendment, not a duplicate
    assert [p.version for p in protocol.with_amendments([root / "amendments" / "v2.yaml"]).plans
            ] == ["v1", "v2"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: v5\nextends: v9\neffective_date: 2027-01-01\nrationale: r\n"
         "analysis: {windows: {post_target_days: 100}}\n",
         "a.yaml: extends: unknown version 'v9' (known: v1)"),
        ("version: v5\nextends: v1\neffective_date: 2027-01-01\nrationale: r\n",
         "a.yaml: an amendment changes `analysis`, `contract` or both; it has neither"),
        ("version: v5\nextends: v1\neffective_date: 2027-01-01\nrationale: r\n"
         "privacy: {small_cells: {threshold: 3}}\n",
         "a.yaml: privacy: is not a known key (known: version, extends, effective_date, "
         "rationale, title, analysis, contract)"),
        ("version: v5\nextends: v1\neffective_date: 2027-01-01\nrationale: r\n"
         "analysis: {version: v7}\n",
         "a.yaml: analysis: version is set by the amendment's own header keys"),
        ("version: v1\nextends: v1\neffective_date: 2027-01-01\nrationale: r\n"
         "analysis: {windows: {post_target_days: 100}}\n",
         "a.yaml: version v1 cannot extend itself"),
        ("version: v5\nextends: v1\neffective_date: soon\nrationale: r\n"
         "analysis: {windows: {post_target_days: 100}}\n",
         "a.yaml: effective_date: must be a date (YYYY-MM-DD), got 'soon'"),
        ("version: v5\nextends: v1\neffective_date: 2027-01-01\nrationale: r\n"
         "analysis: {measures: [{decimals: 1}]}\n",
         "a.yaml: analysis.measures[0]: an item of this list must name its name"),
        ("version: v5\nextends: v1\neffective_date: 2027-01-01\nrationale: r\n"
         "analysis: {windows: {post_target_days: 500}}\n",
         "a.yaml: analysis.windows: post_min_days (30) ≤ post_target_days (500) ≤ "
         "post_max_days (180) must hold"),
        ("version: v5\nextends: v1\neffective_date: 2027-01-01\nrationale: r\n"
         "analysis: {measures: [{name: ck, decimals: -1}]}\n",
         "a.yaml: analysis.measures[0].decimals: must be ≥ 0, got -1"),
        ("version: v5\nextends: v1\neffective_date: 2027-01-01\nrationale: r\n"
         "contract: {tables: {ivig_cycles: {fields: [{name: dose_g, "
         "constraints: {maximum: lots}}]}}}\n",
         "a.yaml: contract.tables.ivig_cycles.fields[0].constraints.maximum: must be a "
         "number, got 'lots'"),
        ("version: v5\nextends: v1\neffective_date: 2027-01-01\nrationale: r\n"
         "contract: {measures: [{name: grip, title: Grip, unit: kg, "
         "value: {type: number}}]}\n"
         "analysis: {measures: [{name: gripp, label: G, short_label: G, axis_title: G, "
         "decimals: 1, plot: from_zero}]}\n",
         "a.yaml: analysis.measures[0]: 'gripp' is not a measure of the contract"),
        ("- just\n- a list\n", "a.yaml: an amendment must be a mapping"),
    ],
    ids=["unknown_base", "changes_nothing", "privacy_not_amendable", "header_key_in_analysis",
         "extends_itself", "effective_date_not_a_date", "list_item_without_name",
         "merged_windows_out_of_order", "bad_value", "contract_value", "plan_unknown_measure",
         "not_a_mapping"],
)
def test_a_broken_amendment_is_refused_naming_its_key(base, tmp_path, text, expected) -> None:
    messages = problems(base, amendment(tmp_path, "a.yaml", text))
    assert any(m.startswith(f"{tmp_path}/{expected}") for m in messages), messages


def test_a_cycle_of_amendments_is_refused(base, tmp_path) -> None:
    head = "effective_date: 2027-01-01\nrationale: r\nanalysis: {windows: {post_target_days: 99}}\n"
    a = amendment(tmp_path, "a.yaml", f"version: v6\nextends: v7\n{head}")
    b = amendment(tmp_path, "b.yaml", f"version: v7\nextends: v6\n{head}")
    assert f"{a}: extends: amendments extend each other in a cycle: v6 → v7 → v6" in problems(
        base, a, b)


def test_a_version_defined_twice_is_refused(base, tmp_path) -> None:
    copy = amendment(tmp_path, "copy.yaml", V2.read_text())
    assert f"{copy}: version: version v2 is also defined in {V2}" in problems(base, V2, copy)


def test_two_contract_amendments_must_form_one_chain(base, tmp_path) -> None:
    other = amendment(tmp_path, "other.yaml", """
version: v1.2
extends: v1
effective_date: 2027-02-01
rationale: another spelling
contract:
  vocabularies:
    sex: {codes: {F: {spellings: [female, mujer, fem]}}}
""")
    messages = problems(base, CONTRACT_AMENDMENT, other)
    assert any(m.startswith(f"{other}: contract: v1.1 ({CONTRACT_AMENDMENT}) and v1.2 both "
                            "change the contract, but neither extends the other") for m in messages)
    chained = amendment(tmp_path, "chained.yaml",
                        other.read_text().replace("extends: v1\n", "extends: v1.1\n"))
    amended = base.with_amendments([CONTRACT_AMENDMENT, chained])
    assert amended.contract_version == "v1.2"
    assert amended.contract.vocabulary("sex").spellings["fem"] == "F"
    assert amended.contract.vocabulary("sex").spellings["varon"] == "M"  # from v1.1


def test_a_plan_broken_by_a_contract_amendment_says_which_contract(base, tmp_path) -> None:
    path = amendment(tmp_path, "classes.yaml", """
version: v1.3
extends: v1
effective_date: 2027-02-01
rationale: biologics counted with the immunosuppressants
contract:
  terminology: {drugs: {classes: [corticosteroid, immunosuppressant, other]}}
""")
    assert (
        "protocol/analysis/v1.yaml: concomitant_therapy: unknown drug class(es) biologic (the "
        "contract's classes: corticosteroid, immunosuppressant, other) (checked against the "
        f"contract in force, v1.3 of {path})"
    ) in problems(base, path)


def test_an_inherited_contract_problem_names_the_amendment(base, tmp_path) -> None:
    path = amendment(tmp_path, "table.yaml", """
version: v1.4
extends: v1
effective_date: 2027-02-01
rationale: a new table
contract:
  delivery: {tables: [patients, ivig_cycles, treatments, assessments, adverse_events, visits]}
""")
    assert (f"{path}: contract.delivery.tables: table 'visits' has no file tables/visits.yaml"
            in problems(base, path))


MERGE_CASES = [
    # (base, patch, path, merged)
    ({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"d": 4, "e": 5}}, ("x",),
     {"a": 1, "b": {"c": 2, "d": 4, "e": 5}}),
    ({"aliases": ["a", "b"]}, {"aliases": ["c"]}, ("x",), {"aliases": ["c"]}),
    ([{"name": "m", "v": 1, "w": 1}, {"name": "n", "v": 1}],
     [{"name": "n", "v": 2}, {"name": "o", "v": 3}], ("analysis", "measures"),
     [{"name": "m", "v": 1, "w": 1}, {"name": "n", "v": 2}, {"name": "o", "v": 3}]),
    ([{"name": "f", "x": 1}], [{"name": "f", "x": 2}], ("contract", "tables", "t", "fields"),
     [{"name": "f", "x": 2}]),
    ([{"name": "m"}], [{"name": "n"}], ("analysis", "other_list"), [{"name": "n"}]),
    ({"a": {"b": 1}}, {"a": 7}, ("x",), {"a": 7}),
]


@pytest.mark.parametrize(("old", "patch", "path", "merged"), MERGE_CASES,
                         ids=["mapping_merges", "plain_list_replaced", "named_list_by_name",
                              "table_fields_by_name", "unnamed_list_replaced", "scalar_replaces"])
def test_merge_semantics(old, patch, path, merged) -> None:
    issues: list = []
    before = repr(old)
    assert merge(old, patch, path, {}, "a.yaml", issues) == merged
    assert issues == []
    assert repr(old) == before  # the base is not changed
