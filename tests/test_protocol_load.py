"""Loading the shipped protocol: every number and vocabulary of §2–§7 is reachable, with
today's values, from the loaded object (the next step wires each consumer to these)."""

from __future__ import annotations

import csv
import shutil
from datetime import date
from pathlib import Path

import pytest

from ivig_platform.protocol import load
from ivig_platform.protocol.load import ENV_VARIABLE, default_root, load_protocol, plans_in_force

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def protocol():
    return load_protocol(REPO / "protocol")


def test_the_default_protocol_is_the_repositorys(monkeypatch) -> None:
    monkeypatch.delenv(ENV_VARIABLE, raising=False)
    assert default_root() == REPO / "protocol"
    assert load_protocol() is load_protocol(REPO / "protocol")  # cached per folder


def test_the_environment_variable_points_at_another_protocol(tmp_path, monkeypatch) -> None:
    other = tmp_path / "protocol"
    shutil.copytree(REPO / "protocol", other)
    (other / "monitoring.yaml").write_text(
        "freshness: {warn_after_days: 10, error_after_days: 20}\n")
    monkeypatch.setenv(ENV_VARIABLE, str(other))
    assert default_root() == other
    assert load_protocol().monitoring.freshness.warn_after_days == 10
    assert load_protocol().root == other.resolve()


def test_shipped_protocol_is_v1_with_only_the_primary_plan(protocol) -> None:
    assert protocol.version == "v1"
    assert protocol.contract_version == "v1"
    assert [p.version for p in protocol.plans] == ["v1"]
    assert protocol.primary_plan.is_primary
    assert protocol.amendments == ()


def test_delivery_layout(protocol) -> None:
    d = protocol.contract.delivery
    assert d.tables == ("patients", "ivig_cycles", "treatments", "assessments", "adverse_events")
    assert [d.csv_file(t) for t in d.tables][:2] == ["patients.csv", "ivig_cycles.csv"]
    assert d.xlsx.file == "extract.xlsx"
    assert d.xlsx_sheet("treatments") == "treatments"
    assert d.site_id.pattern == "^[a-z0-9_-]{2,32}$"
    assert dict(d.csv.delimiters) == {",": "dot", ";": "spanish", "\t": "dot"}
    assert d.ready_marker.file == "_READY"
    assert d.dates.earliest == date(1900, 1, 1)
    assert d.dates.latest == "delivery_date"
    assert d.dates.formats == ("YYYY-MM-DD", "DD/MM/YYYY", "DD-MM-YYYY")


@pytest.mark.parametrize(
    ("table", "column", "low", "low_inclusive", "high"),
    [
        ("ivig_cycles", "cycle_number", 1, True, None),
        ("ivig_cycles", "dose_g", 0, False, 400),
        ("ivig_cycles", "weight_kg", 25, True, 250),
    ],
)
def test_column_ranges(protocol, table, column, low, low_inclusive, high) -> None:
    c = protocol.contract.table(table).field(column).constraints
    assert (c.low, c.low_inclusive, c.maximum) == (low, low_inclusive, high)


def test_keys_and_duplicate_policies(protocol) -> None:
    tables = protocol.contract.tables
    assert tables["patients"].primary_key == ("patient_id",)
    assert tables["patients"].duplicates == "every_copy"
    assert tables["ivig_cycles"].primary_key == ("patient_id", "cycle_number")
    assert tables["ivig_cycles"].duplicates == "later_copies"
    assert tables["assessments"].primary_key == ("patient_id", "measure", "assessment_date")
    assert tables["assessments"].duplicates == "later_copies"
    assert tables["treatments"].primary_key == tables["adverse_events"].primary_key == ()
    for name in ("ivig_cycles", "treatments", "assessments", "adverse_events"):
        (fk,) = tables[name].foreign_keys
        assert (fk.fields, fk.reference.resource) == (("patient_id",), "patients")


def test_identifiers_are_the_direct_identifiers_of_section_6(protocol) -> None:
    identifiers = {(t.name, f.name) for t in protocol.contract.tables.values()
                   for f in t.fields if f.identifier}
    assert identifiers == {(t, "patient_id") for t in protocol.contract.delivery.tables} | {
        ("patients", "birth_date")}


def test_measures_value_rules(protocol) -> None:
    c = protocol.contract
    assert c.measure_names == ("mrc", "ck", "mrss", "ucla_git")
    mrc = c.measure("mrc").value
    assert (mrc.type, mrc.minimum, mrc.maximum, mrc.decimals) == ("grade", 0, 5, 2)
    assert dict(mrc.modifiers) == {"-": -0.33, "+": 0.33}
    assert mrc.not_allowed == ("0-", "0+", "5+")
    ck = c.measure("ck")
    assert (ck.value.type, ck.value.low, ck.value.low_inclusive, ck.value.maximum) == (
        "number", 0, False, 100_000)
    assert ck.unit == "U/L"
    assert ck.units.required
    assert dict(ck.units.factors) == {"u/l": 1, "ui/l": 1, "iu/l": 1, "ukat/l": 60}
    assert (c.measure("mrss").value.type, c.measure("mrss").value.maximum) == ("integer", 51)
    assert c.measure("ucla_git").value.maximum == 2.83
    assert [m.units is None for m in c.measures] == [True, False, True, True]


def test_age_rule_and_terminology(protocol) -> None:
    age = protocol.contract.derived.age_at_index
    assert (age.from_, age.days_per_year, age.decimals) == ("birth_date", 365.25, 1)
    drugs = protocol.contract.terminology.drugs
    assert drugs.classes == ("corticosteroid", "immunosuppressant", "biologic", "other")
    assert drugs.unmapped == "unmapped"


def test_named_terminology_seeds_exist_and_use_the_protocols_classes(protocol) -> None:
    terminology = protocol.contract.terminology
    drug_seed = REPO / terminology.drugs.seed
    with drug_seed.open(encoding="utf-8") as fh:
        classes = {row["drug_class"] for row in csv.DictReader(fh)}
    assert classes <= set(terminology.drugs.classes)
    assert (REPO / terminology.adverse_event_terms.seed).is_file()


def test_privacy_and_monitoring(protocol) -> None:
    cells = protocol.privacy.small_cells
    assert (cells.threshold, cells.mask, cells.secondary_suppression) == (5, "<5", True)
    assert [n for n in range(7) if cells.is_small(n)] == [1, 2, 3, 4]
    assert protocol.privacy.pseudonym.algorithm == "HMAC-SHA256"
    fresh = protocol.monitoring.freshness
    assert (fresh.warn_after_days, fresh.error_after_days) == (45, 120)


def test_primary_plan_windows_and_conventions(protocol) -> None:
    plan = protocol.primary_plan
    w = plan.windows
    assert (w.baseline_days_before, w.post_target_days, w.post_min_days, w.post_max_days,
            w.post_tie) == (90, 90, 30, 180, "later")
    assert plan.index_date == "first_cycle_start"
    s = plan.summaries
    assert (s.sd_ddof, s.quantile_type, s.ci_level, s.ci_method, s.round_decimals,
            s.min_pairs) == (1, 7, 0.95, "t", 9, 2)
    assert s.tests.paired_t
    assert (s.tests.wilcoxon.exact_below, s.tests.wilcoxon.correct) == (50, True)
    therapy = plan.concomitant_therapy
    assert therapy.classes == ("corticosteroid", "immunosuppressant", "biologic")
    assert therapy.undated_overlaps


def test_primary_plan_measures_as_the_report_shows_them(protocol) -> None:
    plan = protocol.primary_plan
    assert plan.measure_names == ("mrc", "ck", "mrss", "ucla_git")
    shown = {m.name: (m.label, m.short_label, m.axis_title, m.decimals, m.plot_domain)
             for m in plan.measures}
    assert shown == {
        "mrc": ("Muscle strength (modified MRC)", "MRC (0–5)", "MRC grade (0–5)", 2, (0, 5)),
        "ck": ("Creatine kinase (CK)", "CK (U/L)", "CK, U/L (log scale)", 0, None),
        "mrss": ("Modified Rodnan skin score (mRSS)", "mRSS (0–51)", "mRSS (0–51)", 1, None),
        "ucla_git": ("UCLA SCTC GIT 2.0 total", "UCLA GIT 2.0 (0–2.83)",
                     "UCLA GIT 2.0 total (0–2.83)", 2, None),
    }
    assert [m.plot for m in plan.measures] == ["valid_range", "log", "from_zero", "from_zero"]


def test_responder_rules_are_todays(protocol) -> None:
    rules = protocol.primary_plan.responders
    assert list(rules) == ["mrc", "ck", "mrss"]
    as_data = {m: (r.eligible and r.eligible.text(), r.responder.text())
               for m, r in rules.items()}
    assert as_data == {"mrc": (None, "post >= 3"), "ck": ("baseline >= 200", "post < 200"),
                       "mrss": (None, "decrease >= 5")}
    assert rules["ck"].text == ("post < 200 U/L among pairs with baseline >= 200 U/L; "
                                "denominator: pairs with baseline >= 200 U/L")
    assert rules["mrc"].text == (
        "post >= 3 (MRC grade 3-5; 3- = 2.67 is below); denominator: n_paired")
    assert rules["mrss"].text == "baseline - post >= 5 points (mRSS MCID); denominator: n_paired"


def test_subgroups_follow_the_vocabularies(protocol) -> None:
    plan = protocol.primary_plan
    assert plan.subgroup_pairs == (
        ("all", "all"), ("ssc_subtype", "diffuse"), ("ssc_subtype", "limited"),
        ("indication", "myositis"), ("indication", "gastrointestinal"),
        ("indication", "skin"), ("indication", "other"),
    )
    titles = [v.title for s in plan.subgroups for v in s.values]
    assert titles == ["All patients", "Diffuse cutaneous SSc", "Limited cutaneous SSc",
                      "Indication: myositis", "Indication: gastrointestinal",
                      "Indication: skin", "Indication: other"]


def test_plans_in_force_without_amendments_is_v1() -> None:
    assert [p.version for p in plans_in_force()] == ["v1"]


def test_the_loaded_protocol_cannot_be_changed(protocol) -> None:
    with pytest.raises(TypeError):
        protocol.contract.vocabularies["sex"].codes["X"] = None  # type: ignore[index]
    with pytest.raises(ValueError):
        protocol.primary_plan.windows.post_target_days = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        protocol.contract.measure("ck").units.factors["mg/dl"] = 1.0  # type: ignore[index]


def test_packaged_copy_is_used_only_without_the_repository(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(ENV_VARIABLE, raising=False)
    monkeypatch.setattr(load, "REPOSITORY_ROOT", tmp_path / "absent")
    monkeypatch.setattr(load, "PACKAGED_ROOT", tmp_path)
    assert default_root() == tmp_path
