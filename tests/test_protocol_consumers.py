"""The protocol definition holds every number and vocabulary the consumers still repeat.

Until each consumer reads the protocol (the wiring step of issue 11), these modules, the
dbt project, the check tables and the seeds keep their own copies. Each test here pins
one copy to the definition, so the definition is known to reproduce today's code, and a
copy changed on one side only fails here instead of silently disagreeing. When a
consumer is wired to the protocol, its test becomes a tautology and can go.
"""

from __future__ import annotations

import csv
import importlib.util
import inspect
from pathlib import Path

import pytest
import yaml

from ivig_platform.landing.parsing import fold, fold_header
from ivig_platform.protocol.load import load_protocol

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def protocol():
    return load_protocol(REPO / "protocol")


@pytest.fixture(scope="module")
def plan(protocol):
    return protocol.primary_plan


def module_file(relative: str):  # noqa: ANN201 - a module
    """A module loaded from its file, without its package's __init__ (quality's imports GX,
    which takes seconds; the module itself needs only Polars)."""
    spec = importlib.util.spec_from_file_location(relative.replace("/", "_"), REPO / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quality_windows_repeat_the_plans_windows(plan) -> None:
    windows = module_file("ivig_platform/quality/windows.py")

    w = plan.windows
    repeated = (windows.BASELINE_DAYS_BEFORE_INDEX, windows.POST_TARGET_DAYS,
                windows.POST_MIN_DAYS, windows.POST_MAX_DAYS)
    assert (w.baseline_days_before, w.post_target_days, w.post_min_days,
            w.post_max_days) == repeated
    assert plan.measure_names == windows.MEASURES


def test_dbt_vars_repeat_the_windows_and_freshness(protocol, plan) -> None:
    variables = yaml.safe_load((REPO / "dbt_project/dbt_project.yml").read_text())["vars"]
    w, fresh = plan.windows, protocol.monitoring.freshness
    assert {k: variables[k] for k in ("baseline_days_before", "post_target_days",
                                      "post_min_days", "post_max_days")} == {
        "baseline_days_before": w.baseline_days_before, "post_target_days": w.post_target_days,
        "post_min_days": w.post_min_days, "post_max_days": w.post_max_days}
    assert (variables["freshness_warn_after_days"], variables["freshness_error_after_days"]) == (
        fresh.warn_after_days, fresh.error_after_days)


def test_efficacy_repeats_measures_subgroups_and_responders(plan) -> None:
    from ivig_platform.stats import efficacy

    assert plan.measure_names == efficacy.MEASURES
    assert plan.subgroup_pairs == efficacy.SUBGROUPS
    responders = plan.responders
    assert {m: r.text for m, r in efficacy.RESPONDER_RULES.items()} == {
        m: r.text for m, r in responders.items()}
    assert responders["mrc"].responder.value == efficacy.MRC_GRADE_3
    assert efficacy.CK_NORMAL_LIMIT_U_L == responders["ck"].responder.value \
        == responders["ck"].eligible.value
    assert responders["mrss"].responder.value == efficacy.MRSS_MCID


def test_paired_tests_repeat_the_summary_conventions(plan) -> None:
    from ivig_platform.stats import summaries, tests_paired

    s = plan.summaries
    assert s.round_decimals == tests_paired.ROUND_DECIMALS
    assert s.min_pairs == tests_paired.MIN_PAIRS
    assert s.tests.wilcoxon.exact_below == tests_paired.EXACT_N_LIMIT
    conf = inspect.signature(tests_paired.paired_t_test).parameters["conf_level"].default
    assert conf == s.ci_level
    assert summaries.QUANTILE_INTERPOLATION == "linear" and s.quantile_type == 7


def test_safety_repeats_the_vocabularies(protocol) -> None:
    from ivig_platform.stats import safety

    c = protocol.contract
    assert c.vocabulary("ivig_stop_reason").code_list == safety.STOP_REASONS
    fixed = {section: categories for section, _, categories in safety.EVENT_SECTIONS}
    for section, vocabulary in (("severity", "severity"), ("related", "related"),
                                ("action", "action"), ("seriousness", "yesno")):
        assert fixed[section] == c.vocabulary(vocabulary).code_list, section


def test_report_repeats_labels_decimals_and_the_small_cell_rule(protocol, plan) -> None:
    import importlib

    from ivig_platform.report import formatting, plots, privacy

    # the report package exports a function called `sections`: import the module by name
    sections = importlib.import_module("ivig_platform.report.sections")
    assert plan.measure_names == plots.MEASURES
    assert {m.name: m.label for m in plan.measures} == plots.MEASURE_LABELS
    assert {m.name: m.axis_title for m in plan.measures} == plots.AXIS_TITLES
    assert {m.name: m.short_label for m in plan.measures} == sections.MEASURE_SHORT
    assert {m.name: m.decimals for m in plan.measures} == formatting.MEASURE_DECIMALS
    titles = {(s.name, v.value): v.title for s in plan.subgroups for v in s.values}
    assert titles == sections.SUBGROUP_TITLES
    cells = protocol.privacy.small_cells
    assert cells.mask == privacy.MASK
    assert [n for n in range(10) if privacy.is_small(n)] == [n for n in range(10)
                                                             if cells.is_small(n)]


def test_terminology_seed_of_measures_repeats_the_contract(protocol) -> None:
    with (REPO / "dbt_project/seeds/terminology/measures.csv").open(encoding="utf-8") as fh:
        rows = {r["measure"]: r for r in csv.DictReader(fh)}
    assert list(rows) == list(protocol.contract.measure_names)
    value_type = {"grade": "grade", "number": "decimal", "integer": "integer"}
    for m in protocol.contract.measures:
        r = rows[m.name]
        assert (r["label"], r["canonical_unit"], float(r["valid_min"]), float(r["valid_max"]),
                r["value_type"], r["higher_is_better"] == "true") == (
            m.title, m.unit, m.valid_range.low, m.valid_range.maximum,
            value_type[m.value.type], m.higher_is_better), m.name


def _field_checks() -> list[dict[str, str]]:
    with (REPO / "expectations/checks/field_checks.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_check_tables_repeat_vocabularies_and_ranges(protocol) -> None:
    c = protocol.contract
    column_vocabulary = {f.name: f.vocabulary for t in c.tables.values() for f in t.fields
                         if f.vocabulary}
    column_vocabulary |= {"overlap_text": "overlap", "indication_text": "indication"}
    column_range = {f.name: f.constraints for t in c.tables.values() for f in t.fields
                    if f.constraints.is_set}
    checked = 0
    for row in _field_checks():
        if row["check_type"] in ("value_in_set", "list_values_in_set") \
                and row["column"] in column_vocabulary:
            codes = c.vocabulary(column_vocabulary[row["column"]]).code_list
            assert tuple(row["value"].split("|")) == codes, row
            checked += 1
        elif row["check_type"] == "valid_range":
            measure = (row["condition"].removeprefix("measure=") if row["condition"]
                       else next((m for m in c.measure_names
                                  if row["column"].endswith(f"_{m}")), None))
            bounds = (c.measure(measure).valid_range if measure
                      else column_range.get(row["column"]))
            if bounds is None:
                continue  # a derived column (n_cycles >= 0): not a contract range
            expected = (bounds.low, None if bounds.maximum is None else bounds.maximum,
                        not bounds.low_inclusive)
            got = (float(row["min_value"]), float(row["max_value"]) if row["max_value"] else None,
                   row["value"] == "strict_min")
            assert got == expected, row
            checked += 1
    assert checked >= 30


def test_demo_writes_only_what_the_contract_accepts(protocol) -> None:
    from ivig_platform.demo import cohort, vocab

    c = protocol.contract
    assert c.delivery.tables == vocab.TABLES
    assert {t: c.table(t).field_names for t in c.delivery.tables} == vocab.COLUMNS
    assert c.measure_names == cohort.MEASURES
    for table, headers in vocab._ES_SNAKE.items():
        for column, alias in headers.items():
            assert alias in c.table(table).field(column).aliases, (table, column)
    field_vocabulary = {"serious": "yesno"} | {
        f.name: f.vocabulary for t in c.tables.values() for f in t.fields if f.vocabulary}
    for (_, column), forms in {**vocab.CATEGORY_FORMS, **vocab.LIST_FORMS}.items():
        spellings = c.vocabulary(field_vocabulary[column]).spellings
        for code, written in forms.items():
            canonical = {"true": "yes", "false": "no"}.get(code, code)
            assert {spellings.get(fold(w)) for w in written} == {canonical}, (column, code)


def test_demo_efficacy_figures_repeat_the_windows(plan) -> None:
    """demo/figures.py's independent §7 computation holds the windows as literals."""
    source = inspect.getsource(__import__("ivig_platform.demo.figures", fromlist=["_"]))
    w = plan.windows
    assert f"is_between(-{w.baseline_days_before}, 0)" in source
    assert f"is_between({w.post_min_days}, {w.post_max_days})" in source
    assert f'pl.col("from_last") - {w.post_target_days}' in source


def test_header_aliases_fold_to_their_column(protocol) -> None:
    for t in protocol.contract.tables.values():
        folded = {fold_header(s) for f in t.fields for s in (f.name, *f.aliases)}
        assert len(folded) == sum(1 + len(f.aliases) for f in t.fields), t.name
