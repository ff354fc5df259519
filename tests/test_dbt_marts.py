"""End to end: build the marts on the fixture build file and check what it implies.

One dbt build (plain dbtRunner) serves the whole module; see tests/dbt_fixtures.py for the
rows and why each is there.
"""

from __future__ import annotations

import csv
import json
import shutil
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from dbt_fixtures import (
    ASSESSMENTS,
    DELIVERY_A,
    DELIVERY_B,
    EXPECTED_FLAGS,
    SITE_A,
    SITE_B,
    FixtureFile,
    build_fixture_database,
)

from ivig_platform.modeling import DbtOutcome, build_marts

# Drug-mapping cases as data: name as written -> expected class and generic name.
DRUG_CASES_CSV = Path(__file__).parent / "cases" / "dbt_drug_mapping_cases.csv"
DRUG_CASES = list(csv.DictReader(DRUG_CASES_CSV.open(encoding="utf-8")))

# Protocol §8: the columns other tools rely on, in order, at the head of each mart.
PROTOCOL_COLUMNS = {
    "dim_patient": [
        "patient_key",
        "site_id",
        "sex",
        "age_at_index",
        "ssc_subtype",
        "overlap_iim",
        "overlap_sjogren",
        "overlap_sle",
        "overlap_ra",
        "overlap_other",
        "indication_myositis",
        "indication_gastrointestinal",
        "indication_skin",
        "indication_other",
        "n_cycles",
        "index_date",
        "last_cycle_date",
        "ivig_stop_reason",
        "on_corticosteroid",
        "on_immunosuppressant",
        "on_biologic",
    ],
    "fct_ivig_cycle": [
        "patient_key",
        "site_id",
        "cycle_number",
        "start_date",
        "dose_g",
        "dose_g_per_kg",
    ],
    "fct_assessment": [
        "patient_key",
        "site_id",
        "measure",
        "assessment_date",
        "value",
        "days_from_index",
        "analysis_timepoint",
    ],
    "fct_adverse_event": [
        "patient_key",
        "site_id",
        "onset_date",
        "term",
        "severity",
        "serious",
        "related",
        "action",
    ],
}


# The build measures freshness at this moment, and the fixture's data landed just before it
# (site A 10 days, site B 60 days): a rebuild lands everything again, yet freshness must count
# from each accepted delivery's date, 2025-12-01 (92 days before) and 2025-10-15 (139 days).
FRESHNESS_AS_OF = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[FixtureFile, DbtOutcome]:
    root = tmp_path_factory.mktemp("marts")
    fixture = build_fixture_database(
        root / "build.duckdb", drug_cases=[case["drug_as_reported"] for case in DRUG_CASES],
        now=FRESHNESS_AS_OF,
    )
    outcome = build_marts(fixture.path, target_dir=root / "target", docs_dir=root / "docs",
                          vars={"freshness_as_of": FRESHNESS_AS_OF.isoformat()})
    return fixture, outcome


@pytest.fixture(scope="module")
def con(built):
    fixture, outcome = built
    assert outcome.success, outcome.summary()
    connection = duckdb.connect(str(fixture.path), read_only=True)
    yield connection
    connection.close()


def rows(con, sql: str, *params) -> list[dict]:
    cursor = con.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# --------------------------------------------------------------------------- the run


def test_build_succeeds_and_reports_warnings(built):
    _, outcome = built
    assert outcome.success, outcome.summary()
    assert outcome.failures == ()
    assert outcome.error is None
    assert outcome.runner == "dbtRunner"
    assert outcome.counts.get("error", 0) == 0 and outcome.counts.get("fail", 0) == 0
    assert {"source_freshness", "build", "docs_generate", "total"} <= set(outcome.timings)
    warned = {(w.name, w.status) for w in outcome.warnings}
    # the unknown site still loads, named by a warn-severity test ...
    assert any("site_registry" in name and status == "warn" for name, status in warned)
    # ... site B's delivery is 139 days old (> 120), site A's 92 (> 45); B has an unmapped drug
    assert (SITE_B, "freshness error") in warned
    assert (SITE_A, "freshness warn") in warned
    assert (SITE_B, "unmapped drugs") in warned
    assert "succeeded" in outcome.summary()


def test_database_is_released_after_the_build(built):
    fixture, _ = built
    # another process can take the write lock ...
    probe = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
        "c.execute('create table lock_probe as select 1 as x'); "
        "c.execute('drop table lock_probe'); c.close()"
    )
    subprocess.run([sys.executable, "-c", probe, str(fixture.path)], check=True, timeout=60)
    # ... and so can this one
    connection = duckdb.connect(str(fixture.path))
    connection.execute("select count(*) from marts.dim_patient").fetchone()
    connection.close()


# --------------------------------------------------------------------------- marts


def test_marts_carry_the_protocol_columns_first(con):
    for mart, expected in PROTOCOL_COLUMNS.items():
        columns = [r[0] for r in con.execute(f"describe marts.{mart}").fetchall()]
        assert columns[: len(expected)] == expected, mart
    kinds = dict(
        con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'marts' and table_name = 'dim_patient'"
        ).fetchall()
    )
    for flag in ("on_corticosteroid", "on_immunosuppressant", "on_biologic", "overlap_iim"):
        assert kinds[flag] == "BOOLEAN"


def test_marts_are_tables_in_schema_marts(con):
    found = dict(
        con.execute(
            "select table_name, table_type from information_schema.tables "
            "where table_schema = 'marts'"
        ).fetchall()
    )
    # the stats marts and the by-plan relations are dbt nodes too (Python models, issue 14)
    expected = {*PROTOCOL_COLUMNS, "mart_cohort", "mart_site_freshness", "mart_unmapped_drugs",
                "mart_efficacy", "mart_safety", "mart_efficacy_by_plan",
                "fct_assessment_window_by_plan"}
    assert set(found) == expected
    assert set(found.values()) == {"BASE TABLE"}


@pytest.mark.parametrize("case", range(len(ASSESSMENTS)))
def test_analysis_timepoint_follows_the_windows(built, con, case):
    fixture, _ = built
    name, measure, day, value, *_, expected = ASSESSMENTS[case]
    (got,) = con.execute(
        "select analysis_timepoint from marts.fct_assessment "
        "where patient_key = ? and measure = ? and assessment_date = ?",
        [fixture.keys[name], measure, day],
    ).fetchall()
    assert got[0] == expected, f"{name} {measure} {day} value {value}"


def test_days_from_index(built, con):
    fixture, _ = built
    got = rows(
        con,
        "select measure, days_from_index from marts.fct_assessment where patient_key = ? "
        "order by measure, assessment_date",
        fixture.keys["p1"],
    )
    assert [r["days_from_index"] for r in got if r["measure"] == "ck"] == [-91, -90, 89, 90]


def test_concomitant_flags_follow_the_overlap_rule(built, con):
    fixture, _ = built
    got = {
        fixture.name_of(r["patient_key"]): (
            r["on_corticosteroid"],
            r["on_immunosuppressant"],
            r["on_biologic"],
        )
        for r in rows(con, "select * from marts.dim_patient")
    }
    assert got == EXPECTED_FLAGS


def test_patient_without_cycles_stays_but_leaves_every_analysis(built, con):
    fixture, _ = built
    (p4,) = rows(con, "select * from marts.dim_patient where patient_key = ?", fixture.keys["p4"])
    assert p4["n_cycles"] == 0
    assert p4["index_date"] is None and p4["last_cycle_date"] is None
    assert p4["age_at_index"] is None
    assert not (p4["on_corticosteroid"] or p4["on_immunosuppressant"] or p4["on_biologic"])
    assert p4["is_analysed"] is False
    assert p4["overlap_ra"] is True and p4["indication_other"] is True
    (assessment,) = rows(
        con, "select * from marts.fct_assessment where patient_key = ?", fixture.keys["p4"]
    )
    assert assessment["days_from_index"] is None and assessment["analysis_timepoint"] is None


def test_dim_patient_rollup(built, con):
    fixture, _ = built
    by_name = {
        fixture.name_of(r["patient_key"]): r for r in rows(con, "select * from marts.dim_patient")
    }
    assert {n: r["n_cycles"] for n, r in by_name.items()} == {
        "p1": 3,
        "p2": 1,
        "p3": 5,
        "p4": 0,
        "p5": 2,
    }
    assert str(by_name["p1"]["index_date"]) == "2025-01-10"
    assert str(by_name["p1"]["last_cycle_date"]) == "2025-03-11"
    assert by_name["p1"]["hospital"] == "Hospital Universitari Vall d'Hebron"
    assert by_name["p3"]["hospital"] is None  # unknown site: left join, still loaded
    assert by_name["p2"]["ivig_stop_reason"] == "adverse_event"
    assert by_name["p1"]["ivig_stop_reason"] is None
    assert by_name["p3"]["overlap_sjogren"] and by_name["p3"]["overlap_other"]
    assert not by_name["p3"]["overlap_iim"]


def test_dose_per_kg(built, con):
    fixture, _ = built
    got = {
        (fixture.name_of(r["patient_key"]), r["cycle_number"]): r["dose_g_per_kg"]
        for r in rows(con, "select * from marts.fct_ivig_cycle")
    }
    assert got[("p1", 1)] == pytest.approx(2.0)
    assert got[("p2", 1)] == pytest.approx(1.5)
    assert got[("p3", 1)] is None  # no weight given
    assert len(got) == 11


def test_adverse_event_terms(built, con):
    fixture, _ = built
    got = {
        r["term_as_reported"]: (r["term"], r["soc"], fixture.name_of(r["patient_key"]))
        for r in rows(con, "select * from marts.fct_adverse_event")
    }
    assert got == {
        "Cefalea": ("headache", "Nervous system disorders", "p1"),
        "Reacción infusional": (
            "infusion reaction",
            "Injury, poisoning and procedural complications",
            "p2",
        ),
        "Trombosis venosa profunda": ("deep vein thrombosis", "Vascular disorders", "p2"),
        "Dolor lumbar": ("dolor lumbar", None, "p3"),  # not in the seed: own wording
    }


def test_table_one(con):
    table = {
        (r["subgroup_value"], r["characteristic"]): r
        for r in rows(con, "select * from marts.mart_cohort")
    }

    def n(group, characteristic):
        return table[(group, characteristic)]["n"]

    # analysed: p1, p2, p3, p5 (p4 has no cycle)
    assert n("all", "patients") == 4 and n("all", "sites") == 2
    assert n("all", "sex_female") == 3 and n("all", "sex_male") == 1
    assert table[("all", "sex_female")]["percent"] == pytest.approx(75.0)
    assert n("all", "ssc_subtype_diffuse") == 2 and n("all", "ssc_subtype_limited") == 1
    assert n("all", "ssc_subtype_unknown") == 1
    assert n("all", "overlap_any") == 2 and n("all", "overlap_iim") == 1
    assert n("all", "indication_more_than_one") == 2
    assert n("all", "on_corticosteroid") == 2
    assert n("all", "on_immunosuppressant") == 3
    assert n("all", "on_biologic") == 2
    assert n("all", "on_drug_mycophenolate_mofetil") == 1
    assert n("all", "ivig_stopped") == 3 and n("all", "ivig_stop_adverse_event") == 1
    assert n("all", "excluded_no_landed_cycle") == 1
    # by subtype (p5 has none: only in 'all')
    assert table[("diffuse", "patients")]["group_n"] == 2
    assert n("diffuse", "on_biologic") == 1 and n("diffuse", "on_immunosuppressant") == 2
    assert table[("limited", "patients")]["group_n"] == 1
    assert n("limited", "excluded_no_landed_cycle") == 1
    assert n("diffuse", "excluded_no_landed_cycle") == 0
    # continuous: cycles 3, 1, 5, 2 -> R type 7 quartiles 1.75 / 3.5
    cycles = table[("all", "n_cycles")]
    assert cycles["median"] == pytest.approx(2.5)
    assert (cycles["q1"], cycles["q3"]) == (pytest.approx(1.75), pytest.approx(3.5))
    assert cycles["mean"] == pytest.approx(2.75)
    assert cycles["sd"] == pytest.approx(statistics.stdev([3, 1, 5, 2]))
    age = table[("all", "age_at_index")]
    assert age["mean"] == pytest.approx(statistics.mean([60.2, 55.0, 48.5, 70.1]))
    assert age["sd"] == pytest.approx(statistics.stdev([60.2, 55.0, 48.5, 70.1]))
    assert age["n_missing"] == 0


def test_site_freshness_counts_from_the_delivery_date_not_the_landing(con):
    got = {r["site_id"]: r for r in rows(con, "select * from marts.mart_site_freshness")}
    assert set(got) == {SITE_A, SITE_B}
    # landed 60 days before the measurement, dated 139 days before it: 139, past 120
    assert str(got[SITE_B]["accepted_delivery_date"]) == DELIVERY_B
    assert got[SITE_B]["days_since_accepted_delivery"] == 139
    assert got[SITE_B]["freshness_status"] == "error"
    # landed 10 days before, dated 92 days before: past 45
    assert got[SITE_A]["accepted_delivery_id"] == DELIVERY_A
    assert got[SITE_A]["days_since_accepted_delivery"] == 92
    assert got[SITE_A]["freshness_status"] == "warn"
    assert got[SITE_B]["latest_delivery_status"] == "rejected"
    assert got[SITE_B]["hospital"] is None
    assert got[SITE_A]["measured_at"] == FRESHNESS_AS_OF


def test_unmapped_drugs_are_listed_per_site(con):
    got = {
        r["drug_name_key"]: r
        for r in rows(con, "select * from marts.mart_unmapped_drugs where site_id = ?", SITE_B)
    }
    # p3's 'Omeprazol 20 mg' and the unmapped drug cases landed for p4 (all site B)
    assert set(got) == {"omeprazol", "calcio + vitamina d", "ambrisentan"}
    assert got["omeprazol"]["n_treatments"] == 2 and got["omeprazol"]["n_patients"] == 2
    assert con.execute(
        "select count(*) from marts.mart_unmapped_drugs where site_id <> ?", [SITE_B]
    ).fetchone() == (0,)


@pytest.mark.parametrize("case", DRUG_CASES, ids=[case["drug_as_reported"] for case in DRUG_CASES])
def test_drug_mapping_case(built, con, case):
    fixture, _ = built
    (got,) = rows(
        con,
        "select drug_class, generic_name from intermediate.int_treatments_classified "
        "where patient_key = ? and drug_as_reported = ?",
        fixture.keys["p4"],
        case["drug_as_reported"],
    )
    assert got["drug_class"] == case["expected_class"]
    assert got["generic_name"] == (case["expected_generic_name"] or None)


def test_published_copy_keeps_working_under_another_name(built, tmp_path):
    fixture, _ = built
    published = tmp_path / "ivig.duckdb"
    shutil.copy(fixture.path, published)
    connection = duckdb.connect(str(published), read_only=True)
    try:
        # views reference no catalog name, so they resolve inside the copy
        for view in (
            "staging.stg_landed__patients",
            "intermediate.int_assessments_windowed",
            "intermediate.int_treatments_ivig_overlap",
        ):
            assert connection.execute(f"select count(*) from {view}").fetchone()[0] > 0
    finally:
        connection.close()


# --------------------------------------------------------------------------- parse reuse


def test_next_build_file_in_another_folder_reuses_the_parse(tmp_path):
    # every refresh builds .build/<run_id>/ivig_build.duckdb: same name, new folder
    cache = tmp_path / "parse-cache"
    outcomes = []
    for run in ("run-1", "run-2"):
        (tmp_path / run).mkdir()
        fixture = build_fixture_database(tmp_path / run / "ivig_build.duckdb")
        outcomes.append(
            build_marts(
                fixture.path,
                target_dir=tmp_path / run / "dbt",
                docs_dir=None,
                select=["stg_quality__site_delivery"],
                parse_cache_dir=cache,
                check_source_freshness=False,
            )
        )
    first, second = outcomes
    assert first.success and second.success, (first.summary(), second.summary())
    assert not first.partial_parse_reused  # nothing saved yet
    assert second.partial_parse_reused  # dbt took the saved parse despite the new path
    log = (tmp_path / "run-2" / "dbt" / "logs" / "dbt.log").read_text()
    assert "Unable to do partial parsing" not in log
    assert not (tmp_path / "run-2" / "dbt" / "parse-only").exists()


# --------------------------------------------------------------------------- docs


def test_docs_site_is_written_with_lineage(built):
    _, outcome = built
    assert outcome.docs_generated
    docs = outcome.docs_dir
    for name in ("index.html", "static_index.html", "manifest.json", "catalog.json"):
        assert (docs / name).is_file(), name
    static = (docs / "static_index.html").read_text()
    assert "dim_patient" in static and "stg_landed__patients" in static

    manifest = json.loads((docs / "manifest.json").read_text())
    children = manifest["child_map"]

    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        return seen

    from_patients = reachable("source.ivig.landed.patients")
    for mart in ("dim_patient", "fct_ivig_cycle", "fct_assessment", "mart_cohort"):
        assert f"model.ivig.{mart}" in from_patients, mart
    assert "model.ivig.fct_adverse_event" in reachable("source.ivig.landed.adverse_events")
    assert "model.ivig.mart_site_freshness" in reachable("source.ivig.quality.site_delivery")


def test_docs_show_the_compiled_sql(built):
    # docs run without compiling again: the manifest is the one the build compiled
    _, outcome = built
    manifest = json.loads((outcome.docs_dir / "manifest.json").read_text())
    nodes = manifest["nodes"]
    for unique_id, node in nodes.items():
        if node["resource_type"] in ("model", "test"):
            assert node["compiled"] and node["compiled_code"].strip(), unique_id
    assert '"staging"."stg_landed__patients"' in nodes["model.ivig.dim_patient"]["compiled_code"]


def _flag_columns_named_by(description: str) -> set[str]:
    """The flag columns generated from the protocol (one per code or class: overlap_<code>,
    indication_<code>, on_<class>) whose family the model's description documents; YAML
    cannot list columns whose names depend on the protocol in force."""
    from ivig_platform.protocol.load import load_protocol

    protocol = load_protocol()
    c = protocol.contract
    families = {
        "overlap": c.vocabulary("overlap").code_list,
        "indication": c.vocabulary("indication").code_list,
        "on": protocol.primary_plan.concomitant_therapy.classes,
    }
    return {f"{prefix}_{code}" for prefix, codes in families.items()
            if f"{prefix}_<" in description for code in codes}


def test_every_model_is_documented_and_tested(built):
    _, outcome = built
    manifest = json.loads((outcome.docs_dir / "manifest.json").read_text())
    catalog = json.loads((outcome.docs_dir / "catalog.json").read_text())
    models = {k: v for k, v in manifest["nodes"].items() if v["resource_type"] == "model"}
    tested = {
        parent
        for node in manifest["nodes"].values()
        if node["resource_type"] == "test"
        for parent in node["depends_on"]["nodes"]
    }
    assert len(models) >= 19
    for unique_id, model in models.items():
        assert model["description"].strip(), f"{unique_id} has no description"
        assert unique_id in tested, f"{unique_id} has no test"
        built_columns = {c.lower() for c in catalog["nodes"][unique_id]["columns"]}
        documented = {c for c, spec in model["columns"].items() if spec["description"].strip()}
        documented |= _flag_columns_named_by(model["description"])
        assert built_columns <= documented, f"{unique_id}: {built_columns - documented}"
    unit_tests = [u for u in manifest["unit_tests"].values()]
    # the windows are tested where they are applied, under plans the tests give themselves
    windowed = [u for u in unit_tests if u["model"] == "int_assessments_windowed_by_plan"]
    assert len(windowed) >= 6


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium not installed")
def test_docs_site_renders_the_lineage_graph_in_headless_chromium(built, tmp_path):
    _, outcome = built
    page = (outcome.docs_dir / "static_index.html").as_uri()
    dom = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            f"{page}#!/model/model.ivig.dim_patient?g_v=1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "Lineage Graph" in dom
    assert 'data-id="layer2-node"' in dom  # the graph's node layer was drawn
    assert "Pseudonym of the patient" in dom  # the model page with its column docs
