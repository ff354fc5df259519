"""Static checks of the dbt project: profile, vars, seeds and the partial-parse cache key.

No dbt run here; these tests read the project files.
"""

from __future__ import annotations

import csv
import unicodedata
from pathlib import Path

import pytest
import yaml

from ivig_platform.modeling import DBT_PROJECT_DIR, dbt_build

SEEDS = DBT_PROJECT_DIR / "seeds"

# Protocol §3: names that must map, by class (English / Spanish generics and brands).
PROTOCOL_DRUGS = {
    "corticosteroid": [
        "prednisone",
        "prednisona",
        "methylprednisolone",
        "metilprednisolona",
        "Urbason",
        "deflazacort",
        "dexamethasone",
        "dexametasona",
    ],
    "immunosuppressant": [
        "mycophenolate mofetil",
        "micofenolato de mofetilo",
        "CellCept",
        "mycophenolic acid",
        "ácido micofenólico",
        "Myfortic",
        "methotrexate",
        "metotrexato",
        "azathioprine",
        "azatioprina",
        "Imurel",
        "cyclophosphamide",
        "ciclofosfamida",
        "tacrolimus",
        "ciclosporin",
        "ciclosporina",
        "leflunomide",
        "leflunomida",
    ],
    "biologic": [
        "rituximab",
        "MabThera",
        "Truxima",
        "tocilizumab",
        "RoActemra",
        "abatacept",
        "Orencia",
        "belimumab",
        "Benlysta",
        "anifrolumab",
    ],
    "other": [
        "hydroxychloroquine",
        "hidroxicloroquina",
        "Dolquine",
        "nintedanib",
        "Ofev",
        "bosentan",
        "sildenafil",
    ],
}

# Adverse-event terms that must be coded: (Spanish, English) -> preferred term.
REQUIRED_AE_TERMS = {
    ("cefalea", "headache"): "headache",
    ("fiebre", "fever"): "fever",
    ("erupción cutánea", "rash"): "rash",
    ("náuseas", "nausea"): "nausea",
    ("trombosis venosa profunda", "deep vein thrombosis"): "deep vein thrombosis",
    ("reacción infusional", "infusion reaction"): "infusion reaction",
    ("hipertensión", "hypertension"): "hypertension",
    ("insuficiencia renal aguda", "acute kidney injury"): "acute kidney injury",
    ("meningitis aséptica", "aseptic meningitis"): "aseptic meningitis",
    ("hemólisis", "haemolysis"): "haemolysis",
}


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.strip().lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_profile_is_in_the_repo_and_releases_the_file():
    profiles = yaml.safe_load((DBT_PROJECT_DIR / "profiles.yml").read_text())
    target = profiles["ivig"]["outputs"][profiles["ivig"]["target"]]
    assert profiles["ivig"]["target"] == "dev"
    assert target["type"] == "duckdb"
    assert target["keep_open"] is False
    assert target["threads"] == 2
    assert "env_var('IVIG_DUCKDB_PATH'" in target["path"]
    assert "extensions" not in target  # offline: nothing to INSTALL


def test_windows_and_freshness_come_from_the_protocol_not_the_project():
    """The project holds no window or threshold: the build passes the protocol's (vars for
    what dbt needs while compiling, schema `protocol` for the plans' windows)."""
    from ivig_platform.protocol.load import load_protocol
    from ivig_platform.protocol.tables import dbt_vars

    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    assert set(project["vars"]) == {"freshness_as_of"}
    protocol = load_protocol()
    fresh = protocol.monitoring.freshness
    passed = dbt_vars(protocol)
    assert (passed["freshness_warn_after_days"], passed["freshness_error_after_days"]) == (
        fresh.warn_after_days, fresh.error_after_days)
    layers = project["models"]["ivig"]
    assert layers["staging"]["+materialized"] == "view"
    assert layers["marts"]["+materialized"] == "table"
    assert layers["marts"]["+schema"] == "marts"


@pytest.mark.parametrize("csv_path", sorted(SEEDS.rglob("*.csv")), ids=lambda p: p.stem)
def test_every_seed_declares_a_type_and_a_description_per_column(csv_path):
    spec = yaml.safe_load(csv_path.with_suffix(".yml").read_text())
    (seed,) = [s for s in spec["seeds"] if s["name"] == csv_path.stem]
    header = next(csv.reader(csv_path.open(encoding="utf-8")))
    assert set(seed["config"]["column_types"]) == set(header)
    documented = {c["name"] for c in seed["columns"] if c.get("description")}
    assert set(header) <= documented
    assert seed.get("description")


def test_drug_terminology_covers_the_protocol_table():
    rows = read_csv(SEEDS / "terminology/drug_terminology.csv")
    seed = {fold(row["drug_name"]): row for row in rows}
    for drug_class, names in PROTOCOL_DRUGS.items():
        for name in names:
            assert fold(name) in seed, name
            assert seed[fold(name)]["drug_class"] == drug_class, name


def test_adverse_event_terms_cover_the_required_terms():
    seed = {row["term_key"]: row for row in read_csv(SEEDS / "terminology/adverse_event_terms.csv")}
    for reported_terms, preferred in REQUIRED_AE_TERMS.items():
        for reported in reported_terms:
            assert seed[fold(reported)]["preferred_term"] == preferred, reported


def test_site_registry_holds_the_known_sites():
    # the 18 hospitals of the publication, with the ids the demo inbox uses
    sites = {row["site_id"] for row in read_csv(SEEDS / "reference/site_registry.csv")}
    assert len(sites) == 18
    assert {
        "hu-vall-hebron",
        "hu-12-octubre",
        "h-clinic-barcelona",
        "hu-la-fe",
        "hu-marques-valdecilla",
    } <= sites


# --------------------------------------------------------------------------- parse cache


def key(database: str = "build.duckdb", vars: dict | None = None) -> str:
    return dbt_build._ParseCache(None, Path(database), vars or {}).key


def test_parse_is_reused_only_for_an_identical_project(project_copy):
    first = key()
    assert key() == first  # nothing changed: the saved parse is reused

    (project_copy / "target").mkdir()
    (project_copy / "target" / "run_results.json").write_text("{}")
    assert key() == first  # dbt's own output does not count

    model = project_copy / "models/intermediate/int_assessments_windowed.sql"
    model.write_text(model.read_text() + "\n-- amended\n")
    assert key() != first  # any project change: full parse

    assert key(vars={"post_target_days": 60}) != key()  # other vars
    assert key(database="other.duckdb") != key()  # other catalog name


def test_parse_cache_round_trip(project_copy, tmp_path):
    cache = dbt_build._ParseCache(tmp_path / "cache", Path("build.duckdb"), {})
    run_1, run_2 = tmp_path / "run1", tmp_path / "run2"
    run_1.mkdir()
    run_2.mkdir()
    assert cache.restore(run_1) is False  # empty cache
    (run_1 / "partial_parse.msgpack").write_bytes(b"parse")
    cache.save(run_1)
    assert cache.restore(run_2) is True
    assert (run_2 / "partial_parse.msgpack").read_bytes() == b"parse"


def test_parse_sees_the_same_path_for_every_build_file_of_that_name():
    # dbt keys a saved parse on the profile's DuckDB path; refreshes build in new folders
    def parse_path(database: str) -> Path:
        return dbt_build._ParseCache(None, Path(database), {}).parse_path

    first = parse_path("/wh/.build/20260101T000000-aaaaaa/ivig_build.duckdb")
    assert first == parse_path("/wh/.build/20260102T000000-bbbbbb/ivig_build.duckdb")
    assert first.stem == "ivig_build"  # dbt-duckdb names the catalog after the file
    assert parse_path("/wh/.build/x/other.duckdb") != first
