"""A protocol whose numbers all differ is followed end to end (issue 11, point 2).

`protocol_helpers.ALL_DIFFER` changes a measure range (UCLA GIT up to 3.5, not 2.83), the
dose limit (300 g, not 400), a spelling (stop reason "reaccion_adversa" accepted,
"efecto_adverso" dropped), the §7 windows and target (45 days before index; 120-240 days
after the last cycle, target 150), the mRSS responder threshold (a decrease of 3, not 5)
and the §6 small-cell threshold (3, not 5). A hand-made inbox of two sites holds rows that
are valid under one protocol and invalid under the other, and assessments that the two
windows pair differently. ONE real refresh (`ivig refresh`, real Prefect, GX, DuckDB, dbt)
runs under the modified folder, through the public `IVIG_PROTOCOL_DIR`; the tests then read
what it published: landing, the suites it ran, the marts, the statistics and the report.

The expected figures are computed here, independently, from the rows written below.
Cheaper companions without a refresh follow: the suites generated for the modified
protocol, landing under its contract, the mart gate's windows under it in force.

The report's footer states the small-cell rule privacy applied (it once said "1–4 ... <5"
whatever the threshold).
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import KEY, make_delivery, to_csv
from protocol_helpers import protocol_copy

from ivig_platform.protocol.load import ENV_VARIABLE, REPOSITORY_ROOT, load_protocol

IVIG = Path(sys.executable).with_name("ivig")
DELIVERY_ID = "2026-11-24"

PATIENT_HEADER = ["patient_id", "sex", "birth_date", "ssc_subtype", "overlap", "indication",
                  "ivig_stop_reason"]
CYCLE_HEADER = ["patient_id", "cycle_number", "start_date", "dose_g", "weight_kg"]
ASSESSMENT_HEADER = ["patient_id", "assessment_date", "measure", "value", "unit"]


@dataclass(frozen=True)
class Patient:
    """One hand-made patient: cycle starts (dose 120 g), mRSS as (days from index or from
    the last cycle, value); `stop` is the ivig_stop_reason as the site writes it."""

    site: str
    patient_id: str
    cycles: tuple[date, ...]
    baseline: tuple[int, int] | None  # (days before index, value)
    post: tuple[int, int] | None  # (days after last cycle, value)
    stop: str = ""
    subtype: str = "diffuse"


# Each patient's pair is decided differently by the two windows (see WINDOWS below):
PATIENTS = (
    # post 200 days after the last cycle: only in the new post window (120-240)
    Patient("es-alfa", "100001", (date(2021, 3, 1), date(2021, 4, 1)), (9, 20), (200, 17)),
    # post 60 days after: only in the original post window (30-180)
    Patient("es-alfa", "100002", (date(2021, 5, 10),), (9, 15), (60, 14)),
    # baseline 60 days before index: only in the original baseline window (90 days)
    Patient("es-beta", "200003", (date(2021, 6, 1),), (60, 25), (150, 21), subtype="limited"),
    # paired under both; a decrease of 4 responds only under the new threshold (3)
    Patient("es-beta", "200004", (date(2021, 2, 1),), (7, 30), (130, 26), subtype="limited"),
    # paired under both, a decrease of 1; stopped for an adverse event in the new spelling
    Patient("es-beta", "200005", (date(2021, 3, 15),), (5, 12), (125, 11),
            stop="reaccion_adversa"),
)
#: Patients whose pairs both protocols decide alike, so that the report's counts are large
#: enough to be shown (a cohort of five is all small cells, and §6 protection refuses it):
#: 12 paired (decreases 0, 1, 2, 6, 0, 1 per site), 2 with a baseline only, 2 with a post
#: value only.
FILLERS = tuple(
    Patient(site, f"{prefix}{n:04d}", (date(2021, 1, 4) + timedelta(days=7 * n),),
            (3, 20), (135, 20 - (0, 1, 2, 6)[n % 4]),
            subtype=("diffuse", "limited")[n % 2])
    for site, prefix in (("es-alfa", "11"), ("es-beta", "22")) for n in range(6)
) + tuple(
    Patient(site, f"{prefix}{n:04d}", (date(2021, 2, 1),), baseline, post)
    for site, prefix in (("es-alfa", "12"), ("es-beta", "23"))
    for n, (baseline, post) in enumerate((((3, 18), None), (None, (135, 18))))
)
#: A patient stopped for an adverse event in the dropped spelling: quarantined.
DROPPED_SPELLING = ("es-beta", "200006")
#: A 350 g cycle: within the original limit (400), over the new one (300).
OVER_NEW_DOSE = ("es-alfa", "100007", "350")
#: UCLA GIT values: 3.2 is valid only under the new range (0-3.5), 3.8 under neither.
UCLA_VALID_ONLY_NEW, UCLA_INVALID = "3.2", "3.8"

#: (baseline_days_before, post_target, post_min, post_max) and the mRSS responder decrease.
ORIGINAL = ((90, 90, 30, 180), 5)
MODIFIED = ((45, 150, 120, 240), 3)


def paired(windows: tuple[int, int, int, int], patient: Patient) -> bool:
    """§7 by hand for one baseline and one post value per patient."""
    before, _target, low, high = windows
    return (patient.baseline is not None and patient.baseline[0] <= before
            and patient.post is not None and low <= patient.post[0] <= high)


def expected(plan: tuple[tuple[int, int, int, int], int]) -> tuple[int, int]:
    """(n_paired, n_responders) of mRSS under a plan, computed from the rows above."""
    windows, decrease = plan
    pairs = [p for p in PATIENTS + FILLERS if paired(windows, p)]
    return len(pairs), sum(p.baseline[1] - p.post[1] >= decrease for p in pairs)


def site_tables(site: str) -> dict[str, list[list[str]]]:
    tables: dict[str, list[list[str]]] = {
        "patients": [PATIENT_HEADER], "ivig_cycles": [CYCLE_HEADER],
        "treatments": [["patient_id", "drug", "start_date", "end_date"]],
        "assessments": [ASSESSMENT_HEADER],
        "adverse_events": [["patient_id", "onset_date", "term", "severity", "serious",
                            "related", "action"]],
    }
    for p in (p for p in PATIENTS + FILLERS if p.site == site):
        tables["patients"].append([p.patient_id, "F", "1960-01-01", p.subtype, "",
                                   "skin", p.stop])
        for number, start in enumerate(p.cycles, start=1):
            tables["ivig_cycles"].append([p.patient_id, str(number), start.isoformat(),
                                          "120", "60"])
        if p.baseline:
            day = p.cycles[0] - timedelta(days=p.baseline[0])
            tables["assessments"].append([p.patient_id, day.isoformat(), "mrss",
                                          str(p.baseline[1]), ""])
        if p.post:
            day = p.cycles[-1] + timedelta(days=p.post[0])
            tables["assessments"].append([p.patient_id, day.isoformat(), "mrss",
                                          str(p.post[1]), ""])
    if site == DROPPED_SPELLING[0]:
        tables["patients"].append([DROPPED_SPELLING[1], "M", "1958-05-05", "limited", "",
                                   "skin", "efecto_adverso"])
    if site == OVER_NEW_DOSE[0]:
        tables["patients"].append([OVER_NEW_DOSE[1], "M", "1959-09-09", "diffuse", "",
                                   "skin", ""])
        tables["ivig_cycles"].append([OVER_NEW_DOSE[1], "1", "2021-01-04", OVER_NEW_DOSE[2],
                                      "70"])
        tables["assessments"] += [
            ["100001", "2021-02-21", "ucla_git", UCLA_VALID_ONLY_NEW, ""],
            ["100002", "2021-05-02", "ucla_git", UCLA_INVALID, ""],
        ]
    return tables


@dataclass(frozen=True)
class Run:
    protocol_dir: Path
    warehouse: Path
    output: str

    def query(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.warehouse / "ivig.duckdb"), read_only=True) as con:
            return con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    """ONE refresh of the hand-made inbox under the modified protocol folder."""
    root = tmp_path_factory.mktemp("all-differ")
    protocol_dir = protocol_copy(root / "protocol")
    for site in ("es-alfa", "es-beta"):
        make_delivery(root, site, DELIVERY_ID,
                      {name: to_csv(rows) for name, rows in site_tables(site).items()})
    env = {**os.environ, "IVIG_PSEUDONYM_KEY": KEY.decode(), ENV_VARIABLE: str(protocol_dir),
           "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    done = subprocess.run([str(IVIG), "refresh", "--inbox", str(root / "inbox"),
                           "--warehouse", str(root / "wh")],
                          capture_output=True, text=True, env=env, timeout=900)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return Run(protocol_dir, root / "wh", output)


def test_the_hand_made_rows_separate_the_two_protocols() -> None:
    """The expectations differ between the protocols, so the tests below can fail."""
    assert expected(ORIGINAL) != expected(MODIFIED)
    assert expected(ORIGINAL)[0] != expected(MODIFIED)[0]


def test_landing_applies_the_new_ranges_and_spellings(run: Run) -> None:
    quarantined = run.query("select table_name, rule, detail from quality.quarantine "
                            "order by all")
    assert quarantined == [
        ("assessments", "out_of_range", "value: out_of_range (ucla_git 0–3.5)"),
        ("ivig_cycles", "out_of_range", "dose_g: out_of_range (> 0 and ≤ 300)"),
        ("patients", "invalid_category", "ivig_stop_reason: invalid_category"),
    ]
    stopped = run.query("select count(*) from marts.dim_patient "
                        "where ivig_stop_reason = 'adverse_event'")
    assert stopped == [(1,)]  # 200005, written "reaccion_adversa"
    ucla = run.query("select value from marts.fct_assessment where measure = 'ucla_git'")
    assert ucla == [(float(UCLA_VALID_ONLY_NEW),)]


def test_the_gates_ran_the_modified_suites(run: Run) -> None:
    """The UCLA value 3.2 passed the landing and mart range checks (it fails 0-2.83), and
    the mart gate's window recomputation agreed with dbt's new window labels (an error
    check: the refresh published)."""
    ucla = run.query(
        "select suite, success, observed_value from quality.check_result "
        "where expectation = 'expect_column_values_to_be_between' and column_name = 'value' "
        "and observed_value like 'UCLA%' and observed_value not like '%0 of 0%' "
        "order by suite")
    assert ucla and all(success for _, success, _ in ucla), ucla
    assert {suite for suite, _, _ in ucla} >= {"landed.assessments", "marts.fct_assessment"}
    agree = run.query("select column_name, success, observed_value from quality.check_result "
                      "where suite = 'marts.efficacy_inputs' and column_name in "
                      "('baseline_mrss_agrees', 'post_mrss_agrees') order by all")
    assert [(c, ok) for c, ok, _ in agree] == [("baseline_mrss_agrees", True),
                                              ("post_mrss_agrees", True)], agree


def _mrss_all(run: Run, table: str = "marts.mart_efficacy", where: str = "") -> tuple:
    return run.query(
        "select n_paired, n_baseline_only, n_post_only, n_responders, "
        "n_responder_denominator, responder_rule "
        f"from {table} where measure = 'mrss' and subgroup = 'all' {where}")[0]


def _window_counts(plan: tuple[tuple[int, int, int, int], int]) -> tuple[int, int, int]:
    """(n_paired, n_baseline_only, n_post_only) of mRSS under a plan's windows."""
    before, _target, low, high = plan[0]
    rows = PATIENTS + FILLERS
    has_baseline = [p.baseline is not None and p.baseline[0] <= before for p in rows]
    has_post = [p.post is not None and low <= p.post[0] <= high for p in rows]
    both = sum(b and q for b, q in zip(has_baseline, has_post, strict=True))
    return both, sum(has_baseline) - both, sum(has_post) - both


def test_marts_label_windows_by_the_modified_plan(run: Run) -> None:
    n_paired, n_baseline_only, n_post_only, *_ = _mrss_all(run)
    assert (n_paired, n_baseline_only, n_post_only) == _window_counts(MODIFIED)
    assert _window_counts(MODIFIED) != _window_counts(ORIGINAL)
    labelled = run.query("select analysis_timepoint, count(*) from marts.fct_assessment "
                         "where measure = 'mrss' and analysis_timepoint is not null "
                         "group by all order by all")
    paired_, baseline_only, post_only = _window_counts(MODIFIED)
    assert labelled == [("baseline", paired_ + baseline_only), ("post", paired_ + post_only)]
    by_plan = _mrss_all(run, "marts.mart_efficacy_by_plan", "and analysis_plan = 'v1'")
    assert by_plan == _mrss_all(run)


def test_stats_count_responders_by_the_modified_threshold(run: Run) -> None:
    n_paired, *_, n_responders, denominator, rule = _mrss_all(run)
    assert (n_paired, n_responders) == expected(MODIFIED)
    assert expected(MODIFIED)[1] != expected(ORIGINAL)[1]
    assert denominator == n_paired
    assert rule == "baseline - post >= 3 points; denominator: n_paired"
    safety = run.query("select n_patients from marts.mart_safety "
                       "where section = 'discontinuation' and category = 'adverse_event'")
    assert safety == [(1,)]


def _report_text(run: Run) -> str:
    page = (run.warehouse / "report.html").read_text(encoding="utf-8")
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def test_report_shows_the_modified_ranges_threshold_and_rule(run: Run) -> None:
    text = _report_text(run)
    assert "UCLA GIT 2.0 (0–3.5)" in text and "2.83" not in text
    assert "Protocol §6: counts of 1–2 are shown as <3" in text
    assert "<3" in text
    assert "baseline - post >= 3 points" in text


def test_report_footer_says_the_modified_small_cell_rule(run: Run) -> None:
    text = _report_text(run)
    assert "<5" not in text and "1–4" not in text


# ---------------------------------------------------------------- without a refresh


@pytest.fixture(scope="module")
def modified(tmp_path_factory):
    return load_protocol(protocol_copy(tmp_path_factory.mktemp("modified") / "protocol"))


@pytest.fixture(scope="module")
def suites_both(modified) -> tuple[dict, dict]:
    """The suites generated for the repository's protocol and for the modified one."""
    from ivig_platform.quality.generate import suite_dicts
    from ivig_platform.quality.registry import checks_dir

    return (suite_dicts(checks_dir(), load_protocol(REPOSITORY_ROOT)),
            suite_dicts(checks_dir(), modified))


def _between(suites: dict, suite: str, column: str, measure: str | None = None) -> dict:
    """The kwargs of the suite's range expectation on `column` (for `measure`'s rows)."""
    found = [e["kwargs"] for e in suites[suite]["expectations"]
             if e["type"] == "expect_column_values_to_be_between"
             and e["kwargs"]["column"] == column
             and (measure is None
                  or e["kwargs"].get("row_condition", {}).get("parameter") == measure)]
    assert len(found) == 1, (suite, column, measure, found)
    return found[0]


@pytest.mark.parametrize(("suite", "column", "measure", "original", "new"), [
    ("landed.ivig_cycles", "dose_g", None, 400, 300),
    ("marts.fct_ivig_cycle", "dose_g", None, 400, 300),
    ("landed.assessments", "value", "ucla_git", 2.83, 3.5),
    ("marts.fct_assessment", "value", "ucla_git", 2.83, 3.5),
    ("marts.efficacy_inputs", "baseline_ucla_git", None, 2.83, 3.5),
    ("marts.efficacy_inputs", "post_ucla_git", None, 2.83, 3.5),
])
def test_generated_suites_carry_the_modified_ranges(suites_both, suite, column, measure,
                                                    original, new) -> None:
    before, after = suites_both
    assert _between(before, suite, column, measure)["max_value"] == original
    assert _between(after, suite, column, measure)["max_value"] == new


def test_landing_contract_of_the_modified_protocol(modified) -> None:
    from ivig_platform.landing.contract import landing_contract

    contract = landing_contract(modified)
    assert contract.tables["ivig_cycles"].column("dose_g").high == 300
    assert contract.measures["ucla_git"].high == 3.5
    stop = contract.vocabularies["ivig_stop_reason"]
    assert stop.get("reaccion_adversa") == "adverse_event" and "efecto_adverso" not in stop
    w = modified.primary_plan.windows
    assert (w.baseline_days_before, w.post_target_days, w.post_min_days,
            w.post_max_days) == MODIFIED[0]
    assert modified.privacy.small_cells.threshold == 3


def test_mart_gate_windows_follow_the_modified_plan(modified) -> None:
    """quality/windows.py, under the protocol in force (as the gate calls it, with no
    windows given), pairs what the new windows pair."""
    import polars as pl

    from ivig_platform.protocol.in_force import run_under
    from ivig_platform.quality.windows import analysis_windows

    cycles, assessments = [], []
    for p in PATIENTS + FILLERS:
        cycles += [{"patient_key": p.patient_id, "start_date": d} for d in p.cycles]
        if p.baseline:
            assessments.append({"patient_key": p.patient_id, "measure": "mrss",
                                "assessment_date": p.cycles[0] - timedelta(p.baseline[0]),
                                "value": float(p.baseline[1])})
        if p.post:
            assessments.append({"patient_key": p.patient_id, "measure": "mrss",
                                "assessment_date": p.cycles[-1] + timedelta(p.post[0]),
                                "value": float(p.post[1])})
    with run_under(modified):
        pairs = analysis_windows(pl.DataFrame(cycles), pl.DataFrame(assessments))
    complete = pairs.filter(pl.col("baseline_value").is_not_null()
                            & pl.col("post_value").is_not_null())
    assert complete.height == expected(MODIFIED)[0]


def test_landing_under_the_modified_contract_names_its_limits(modified, warehouse,
                                                              tmp_path) -> None:
    """Each row valid under one contract only lands or is quarantined by the modified one,
    and the quarantine detail names the modified limit."""
    import polars as pl

    from ivig_platform.landing.contract import landing_contract

    site = OVER_NEW_DOSE[0]
    tables = site_tables(site)
    tables["patients"].append(["100008", "F", "1962-02-02", "diffuse", "", "skin",
                               "reaccion_adversa"])
    tables["patients"].append(["100009", "F", "1962-02-02", "diffuse", "", "skin",
                               "efecto_adverso"])
    delivery = make_delivery(tmp_path, site, DELIVERY_ID,
                             {name: to_csv(rows) for name, rows in tables.items()})
    warehouse.land(delivery, contract=landing_contract(modified))
    quarantine = warehouse.quarantine(delivery).select("table_name", "rule", "detail")
    assert sorted(quarantine.rows()) == [
        ("assessments", "out_of_range", "value: out_of_range (ucla_git 0–3.5)"),
        ("ivig_cycles", "out_of_range", "dose_g: out_of_range (> 0 and ≤ 300)"),
        ("patients", "invalid_category", "ivig_stop_reason: invalid_category"),
    ]
    patients = warehouse.table(delivery, "patients")
    assert patients.filter(pl.col("ivig_stop_reason") == "adverse_event").height == 1
    ucla = warehouse.table(delivery, "assessments").filter(pl.col("measure") == "ucla_git")
    assert ucla.get_column("value").to_list() == [float(UCLA_VALID_ONLY_NEW)]


def test_check_results_name_a_measure_the_run_protocol_adds(tmp_path) -> None:
    """The gate names a check's measure from the protocol in force, so a measure an
    amendment adds (hand grip, `--plan FILE`) is named like the protocol's own."""
    from protocol_helpers import HAND_GRIP, amended

    from ivig_platform.protocol.in_force import run_under
    from ivig_platform.quality.gate import measure_prefix
    from ivig_platform.quality.registry import checks

    protocol = amended(tmp_path, HAND_GRIP)
    grip = [c for c in checks(protocol=protocol)
            if c.condition_pair == ("measure", "hand_grip")]
    assert grip
    with run_under(protocol):
        assert {measure_prefix(c) for c in grip} == {"Hand grip strength (kg): "}
