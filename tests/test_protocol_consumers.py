"""No consumer keeps a copy of a protocol rule (issue 11).

`test_no_copy_of_a_protocol_number_or_spelling` scans the code, the dbt project and the
check tables for the protocol's numbers and spellings (tests/protocol_scan.py) and fails on
each copy, but for the few unrelated occurrences of `UNRELATED` (each with its reason).

The demo generator is scanned too: its wording (headers, category spellings, unit factors)
is styled from the contract (demo/wording.py), its windows, ranges and days per year are
the protocol's (demo/cohort.py `rules`, demo/figures.py), and its site formats name their
CK unit as a recipe on the contract's accepted units (demo/sites.py). The tests below pin
the demo's derived wording, and the report's labels (read from the plan), to the
definition.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest
from protocol_scan import copies

from ivig_platform.landing.parsing import fold, fold_header
from ivig_platform.protocol.load import load_protocol

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def protocol():
    return load_protocol(REPO / "protocol")


@pytest.fixture(scope="module")
def plan(protocol):
    return protocol.primary_plan


#: Where the scan looks: what could hold a rule (outside protocol/, tests and generated files).
SCANNED = ("ivig_platform/", "flows/", "dbt_project/", "expectations/checks/")
SUFFIXES = (".py", ".sql", ".yml", ".yaml", ".csv")
#: The protocol package and its loader of the contract are the definition's own code.
DEFINITION = ("ivig_platform/protocol/",)
#: (file, token): an occurrence that is not a copy of the rule, and why.
UNRELATED: dict[tuple[str, str], str] = {
    ("dbt_project/models/staging/_staging__models.yml", "120"):
        "age_at_index plausibility bound in years, not the freshness threshold",
    ("dbt_project/models/marts/_marts__models.yml", "120"):
        "age_at_index plausibility bound in years, not the freshness threshold",
    ("dbt_project/seeds/terminology/adverse_event_terms.csv", "cutanea"):
        "part of the adverse-event term 'erupcion cutanea', not the indication spelling",
    ("ivig_platform/run_log.py", "30"): "how many run logs are kept",
    ("ivig_platform/orchestration/processes.py", "180"): "server start-up timeout, seconds",
    ("ivig_platform/orchestration/processes.py", "60"): "lines of a log tail",
    ("ivig_platform/orchestration/processes.py", "200"): "HTTP status OK",
    ("ivig_platform/console.py", "60"): "seconds in a minute (elapsed time)",
    ("ivig_platform/wall_clock.py", "60"): "seconds in a minute (the wall time printed)",
    ("ivig_platform/report/plots.py", "90"): "area of the median's point mark, square pixels",
    ("ivig_platform/landing/xlsx_cells.py", "si"): "the XLSX attribute of shared formulas",
    ("ivig_platform/demo/vocab.py", "200"): "a drug strength in a demo drug name (200 mg)",
    **{("ivig_platform/demo/cohort.py", n): "the synthetic cohort's day gaps (treatment dates, "
       "a month between a visit and a window), retries and UCLA GIT value distribution, in "
       "hundredths (the windows and ranges themselves are read from the protocol)"
       for n in ("25", "30", "45", "60", "200", "400")},
    **{("ivig_platform/demo/faults.py", n): "days by which a fault scenario moves a date"
       for n in ("25", "30", "400")},
    ("ivig_platform/demo/sites.py", "30"): "the day of a delivery date (2026-06-30)",
    ("ivig_platform/demo/generator.py", "120"): "the dose of the broken delivery's extra patient",
    ("ivig_platform/demo/generator.py", "60"): "the weight of the broken delivery's extra patient",
}


def _scanned_files() -> list[tuple[str, Path]]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [(f, REPO / f) for f in listed.split()
            if f.startswith(SCANNED) and f.endswith(SUFFIXES)
            and not f.startswith(DEFINITION) and "/target/" not in f
            and (REPO / f).is_file()]


def test_no_copy_of_a_protocol_number_or_spelling(protocol) -> None:
    found = [c for c in copies(protocol, _scanned_files())
             if (c.path, c.token) not in UNRELATED]
    assert not found, "protocol rules repeated outside protocol/:\n" + "\n".join(
        map(str, found))


def test_the_allow_list_holds_only_what_is_there(protocol) -> None:
    """An entry whose occurrence is gone is removed, so the list stays small."""
    found = {(c.path, c.token) for c in copies(protocol, _scanned_files())}
    assert set(UNRELATED) <= found, set(UNRELATED) - found


def test_the_scan_finds_a_copy(protocol, tmp_path) -> None:
    """A window, a range and a site spelling written in code are each found."""
    path = tmp_path / "copy.py"
    path.write_text('"""A docstring may say 180."""\n'
                    'WINDOW = 180\nLABEL = "UCLA (0-2.83)"\nREASON = "efecto_adverso"\n',
                    encoding="utf-8")
    assert sorted(c.token for c in copies(protocol, [("copy.py", path)])) == [
        "180", "2.83", "efecto_adverso"]


def module_file(relative: str):  # noqa: ANN201 - a module
    """A module loaded from its file, without its package's __init__ (quality's imports GX,
    which takes seconds; the module itself needs only Polars)."""
    spec = importlib.util.spec_from_file_location(relative.replace("/", "_"), REPO / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_report_repeats_labels_decimals_and_the_small_cell_rule(protocol, plan) -> None:
    import importlib

    from ivig_platform.report import formatting, plots, privacy

    # the report package exports a function called `sections`: import the module by name
    sections = importlib.import_module("ivig_platform.report.sections")
    assert plan.measure_names == plots.measures()
    assert {m.name: m.label for m in plan.measures} == plots.measure_labels()
    assert {m.name: m.axis_title for m in plan.measures} == plots.axis_titles()
    assert {m.name: m.short_label for m in plan.measures} == sections.measure_short()
    assert {m.name: m.decimals for m in plan.measures} == formatting.measure_decimals()
    titles = {(s.name, v.value): v.title for s in plan.subgroups for v in s.values}
    assert titles == sections.subgroup_titles()
    cells = protocol.privacy.small_cells
    assert cells.mask == privacy.mask()
    assert [n for n in range(10) if privacy.is_small(n)] == [n for n in range(10)
                                                             if cells.is_small(n)]


def test_demo_writes_only_what_the_contract_accepts(protocol) -> None:
    """The demo's headers and category forms (styled from the contract by demo/wording.py)
    fold back to the column's name or alias and to the code they stand for."""
    from ivig_platform.demo.wording import wording

    c = protocol.contract
    words = wording(c)
    assert words.tables == c.delivery.tables
    assert words.columns == {t: c.table(t).field_names for t in c.delivery.tables}
    for header_set in words.headers.values():
        for table, headers in header_set.items():
            for column, header in headers.items():
                f = c.table(table).field(column)
                assert fold_header(header) in {fold_header(s) for s in (f.name, *f.aliases)}
    fields = {f.name: f for t in c.tables.values() for f in t.fields}
    for (_, column), forms in {**words.category_forms, **words.list_forms}.items():
        v = c.vocabulary(fields[column].vocabulary)
        for key, written in forms.items():
            code = dict(zip(("true", "false"), v.code_list, strict=False)).get(key, key)
            assert {v.spellings.get(fold(w)) for w in written} == {code}, (column, key)


def test_header_aliases_fold_to_their_column(protocol) -> None:
    for t in protocol.contract.tables.values():
        folded = {fold_header(s) for f in t.fields for s in (f.name, *f.aliases)}
        assert len(folded) == sum(1 + len(f.aliases) for f in t.fields), t.name
