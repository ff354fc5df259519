"""A small fake *build file* for the dbt tests.

Writes a DuckDB file holding the `landed` and `quality` schemas exactly as
ivig_platform/landing/CONTRACT.md describes them, with a handful of patients over two sites
chosen to hit the protocol rules the marts implement:

- ``p1`` (site A): baseline exactly 90 days before the index and on the index date, post
  exactly 30 and 180 days after the last cycle, values one day outside each edge;
  a treatment without dates, one open to the future, one starting after the last cycle.
- ``p2`` (site A): a single cycle; two baseline candidates (latest wins), a post tie
  (60 and 120 days after the last cycle: the later wins), a nearest-to-target post;
  treatments ending on the index date and starting on the last cycle date (inclusive edges).
- ``p3`` (site B, not in the site registry): five cycles, no weights; an assessment 90 days
  after the first cycle but before the last (never post); one-sided treatment dates; an
  unmapped drug; an adverse event whose term the seed does not know.
- ``p4`` (site B): no landed cycle; carries the drug-mapping cases (no dates) so their
  classes can be read back without touching any analysed patient's flags.
- ``p5`` (site A): no recorded SSc subtype (only in the 'all' column of table 1).

Site A's data landed 10 days ago, site B's 60 days ago (dbt source freshness: warn after 45
days; the per-site freshness of the marts counts from the delivery dates instead), and site B's
newest delivery was rejected. Expectations derived from these rows live in the tests.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from ivig_platform.protocol.load import Protocol

SITE_A = "hu-vall-hebron"  # in seeds/reference/site_registry.csv
SITE_B = "hu-nuevo-centro"  # not in the registry: must still load

DELIVERY_A = "2025-12-01"
DELIVERY_B = "2025-10-15"

_PSEUDONYM_KEY = b"test-only-pseudonym-key"


def patient_key(site_id: str, patient_id: str) -> str:
    """Pseudonym as landing makes it: HMAC-SHA256 of site and id (64 hex characters)."""
    return hmac.new(_PSEUDONYM_KEY, f"{site_id}|{patient_id}".encode(), hashlib.sha256).hexdigest()


def days(d: date, n: int) -> date:
    return d + timedelta(days=n)


# Index (first cycle) and last cycle dates of the patients with cycles.
I1, L1 = date(2025, 1, 10), date(2025, 3, 11)
I2 = L2 = date(2025, 2, 1)
I3, L3 = date(2025, 3, 1), date(2025, 6, 29)
I5, L5 = date(2025, 4, 1), date(2025, 5, 1)

# name -> (site, sex, age_at_index, ssc_subtype, overlap, indication, ivig_stop_reason)
PATIENTS: dict[str, tuple] = {
    "p1": (SITE_A, "F", 60.2, "diffuse", ["iim"], ["myositis"], None),
    "p2": (SITE_A, "M", 55.0, "limited", [], ["gastrointestinal", "skin"], "adverse_event"),
    "p3": (SITE_B, "F", 48.5, "diffuse", ["sjogren", "other"], ["skin"], "inefficacy"),
    "p4": (SITE_B, "M", None, "limited", ["ra"], ["other"], None),
    "p5": (SITE_A, "F", 70.1, None, [], ["myositis", "other"], "other"),
}

# (patient, cycle_number, start_date, dose_g, weight_kg)
CYCLES: list[tuple] = [
    ("p1", 1, I1, 140.0, 70.0),
    ("p1", 2, days(I1, 30), 140.0, 70.0),
    ("p1", 3, L1, 140.0, 70.0),
    ("p2", 1, I2, 120.0, 80.0),
    *[("p3", n + 1, days(I3, 30 * n), 100.0, None) for n in range(5)],
    ("p5", 1, I5, 120.0, 60.0),
    ("p5", 2, L5, 120.0, 60.0),
]

# (patient, measure, date, value, value_as_reported, unit_as_reported, expected timepoint)
ASSESSMENTS: list[tuple] = [
    ("p1", "ck", days(I1, -91), 2000.0, "2000", "U/L", None),
    ("p1", "ck", days(I1, -90), 1500.0, "25", "µkat/L", "baseline"),  # edge: index - 90
    ("p1", "ck", days(L1, 29), 400.0, "400", "UI/L", None),
    ("p1", "ck", days(L1, 30), 300.0, "300", "IU/L", "post"),  # edge: last + 30
    ("p1", "mrss", I1, 20.0, "20", None, "baseline"),  # edge: on the index date
    ("p1", "mrss", days(I1, 1), 19.0, "19", None, None),
    ("p1", "mrss", days(L1, 180), 15.0, "15", None, "post"),  # edge: last + 180
    ("p1", "mrss", days(L1, 181), 14.0, "14", None, None),
    ("p1", "mrc", days(I1, -5), 2.67, "3-", None, "baseline"),
    ("p2", "ucla_git", days(I2, -10), 1.2, "1,2", None, None),
    ("p2", "ucla_git", days(I2, -5), 1.1, "1,1", None, "baseline"),  # latest in window
    ("p2", "ucla_git", days(L2, 60), 0.9, "0,9", None, None),
    ("p2", "ucla_git", days(L2, 120), 0.7, "0,7", None, "post"),  # tie with +60: later wins
    ("p2", "mrc", days(L2, 80), 4.0, "4", None, None),
    ("p2", "mrc", days(L2, 95), 4.33, "4+", None, "post"),  # nearest to +90
    ("p3", "mrss", days(I3, -30), 25.0, "25", None, "baseline"),
    ("p3", "mrss", days(I3, 90), 24.0, "24", None, None),  # before the last cycle: never post
    ("p3", "mrss", days(L3, 90), 21.0, "21", None, "post"),
    ("p4", "ck", date(2025, 1, 1), 800.0, "800", "U/L", None),  # no cycle: no timepoint
]

# (patient, drug as written, start_date, end_date)
TREATMENTS: list[tuple] = [
    ("p1", "Prednisona 5 mg", None, None),  # no dates: overlaps
    ("p1", "CellCept 500mg", days(I1, -400), None),  # open to the future: overlaps
    ("p1", "Rituximab", days(L1, 1), None),  # starts after the last cycle: no
    ("p1", "Dolquine", None, None),  # class 'other'
    ("p2", "metotrexato comprimidos", days(I2, -200), I2),  # ends on the index date: overlaps
    ("p2", "Dexametasona 4 mg/ml", days(L2, 1), None),  # starts after the last cycle: no
    ("p2", "Urbason", days(I2, -100), days(I2, -1)),  # ends the day before: no
    ("p2", "MabThera 500 mg", L2, None),  # starts on the last cycle date: overlaps
    ("p3", "Micofenolato de mofetilo", None, days(I3, -1)),  # open past, ends before: no
    ("p3", "Ácido Micofenólico 360 mg", None, days(I3, 10)),  # open past, ends inside: yes
    ("p3", "Abatacept", None, None),  # no dates: overlaps
    ("p3", "Omeprazol 20 mg", None, None),  # unmapped
    ("p5", "Metilprednisolona", days(I5, -10), days(I5, 10)),
]

# (patient, onset, term, severity, serious, related, action)
ADVERSE_EVENTS: list[tuple] = [
    ("p1", days(I1, 1), "Cefalea", "mild", False, "yes", "none"),
    ("p2", I2, "Reacción infusional", "moderate", False, "yes", "interrupted"),
    ("p2", days(I2, 20), "Trombosis venosa profunda", "severe", True, "unknown", "discontinued"),
    ("p3", days(I3, 40), "Dolor lumbar", "mild", False, "no", "none"),
]

# Expected concomitant flags (corticosteroid, immunosuppressant, biologic) per patient.
EXPECTED_FLAGS: dict[str, tuple[bool, bool, bool]] = {
    "p1": (True, True, False),
    "p2": (False, True, True),
    "p3": (False, True, True),
    "p4": (False, False, False),
    "p5": (True, False, False),
}

_PROVENANCE = (
    "site_id VARCHAR, delivery_id VARCHAR, source_file VARCHAR, source_row INTEGER, "
    "file_sha256 VARCHAR, loaded_at TIMESTAMPTZ"
)

_DDL = {
    "landed.patients": "patient_key VARCHAR, sex VARCHAR, age_at_index DOUBLE, "
    "ssc_subtype VARCHAR, overlap VARCHAR[], indication VARCHAR[], ivig_stop_reason VARCHAR",
    "landed.ivig_cycles": "patient_key VARCHAR, cycle_number INTEGER, start_date DATE, "
    "dose_g DOUBLE, weight_kg DOUBLE",
    "landed.treatments": "patient_key VARCHAR, drug VARCHAR, start_date DATE, end_date DATE",
    "landed.assessments": "patient_key VARCHAR, assessment_date DATE, measure VARCHAR, "
    "value DOUBLE, value_as_reported VARCHAR, unit_as_reported VARCHAR",
    "landed.adverse_events": "patient_key VARCHAR, onset_date DATE, term VARCHAR, "
    "severity VARCHAR, serious BOOLEAN, related VARCHAR, action VARCHAR",
}


@dataclass
class FixtureFile:
    """The written build file and what a test needs to find its rows again."""

    path: Path
    keys: dict[str, str]  # patient name (p1..p5) -> patient_key
    now: datetime
    drug_cases: list[str] = field(default_factory=list)

    def name_of(self, key: str) -> str:
        return {v: k for k, v in self.keys.items()}[key]


def build_fixture_database(
    path: Path, *, drug_cases: list[str] | None = None, now: datetime | None = None,
    extra_assessments: list[tuple] | None = None,
) -> FixtureFile:
    """Write the fixture build file at ``path`` (replaced if present).

    ``drug_cases``: extra drug names landed as date-less treatments of ``p4`` (no cycle, so
    they change no flag), to read their classes back from int_treatments_classified.
    ``extra_assessments``: rows in the shape of ``ASSESSMENTS`` landed after them (e.g. a
    measure an amendment adds).
    """
    now = now or datetime.now(UTC).replace(microsecond=0)
    loaded = {SITE_A: now - timedelta(days=10), SITE_B: now - timedelta(days=60)}
    delivery = {SITE_A: DELIVERY_A, SITE_B: DELIVERY_B}
    keys = {name: patient_key(spec[0], name.upper()) for name, spec in PATIENTS.items()}
    drug_cases = list(drug_cases or [])

    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema landed; create schema quality")
        for table, columns in _DDL.items():
            con.execute(f"create table {table} ({columns}, {_PROVENANCE})")

        def provenance(name: str, file: str, row: int) -> tuple:
            site = PATIENTS[name][0]
            sha = hashlib.sha256(f"{site}/{delivery[site]}/{file}".encode()).hexdigest()
            return (site, delivery[site], file, row, sha, loaded[site])

        def insert(table: str, rows: list[tuple]) -> None:
            if rows:
                marks = ", ".join("?" * len(rows[0]))
                con.executemany(f"insert into {table} values ({marks})", rows)

        insert(
            "landed.patients",
            [
                (keys[n], sex, age, sub, ovl, ind, stop, *provenance(n, "patients.csv", i))
                for i, (n, (_, sex, age, sub, ovl, ind, stop)) in enumerate(PATIENTS.items(), 1)
            ],
        )
        insert(
            "landed.ivig_cycles",
            [
                (keys[n], num, start, dose, w, *provenance(n, "ivig_cycles.csv", i))
                for i, (n, num, start, dose, w) in enumerate(CYCLES, 1)
            ],
        )
        treatments = TREATMENTS + [("p4", drug, None, None) for drug in drug_cases]
        insert(
            "landed.treatments",
            [
                (keys[n], drug, start, end, *provenance(n, "treatments.csv", i))
                for i, (n, drug, start, end) in enumerate(treatments, 1)
            ],
        )
        insert(
            "landed.assessments",
            [
                (keys[n], d, m, v, raw, unit, *provenance(n, "assessments.csv", i))
                for i, (n, m, d, v, raw, unit, _) in enumerate(
                    ASSESSMENTS + list(extra_assessments or []), 1)
            ],
        )
        insert(
            "landed.adverse_events",
            [
                (keys[n], onset, term, sev, ser, rel, act, *provenance(n, "adverse_events.csv", i))
                for i, (n, onset, term, sev, ser, rel, act) in enumerate(ADVERSE_EVENTS, 1)
            ],
        )

        con.execute(
            """
            create table quality.site_delivery (
                site_id VARCHAR, delivery_id VARCHAR, status VARCHAR, reason VARCHAR,
                rows_landed BIGINT, rows_quarantined BIGINT, source_rows BIGINT,
                content_sha256 VARCHAR, landed_at TIMESTAMPTZ, delivery_date DATE,
                dropped_columns VARCHAR
            )
            """
        )
        sha = hashlib.sha256
        con.executemany(
            "insert into quality.site_delivery values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    SITE_A,
                    "2025-09-01",
                    "superseded",
                    None,
                    20,
                    0,
                    20,
                    sha(b"a1").hexdigest(),
                    now - timedelta(days=90),
                    date(2025, 9, 1),
                    None,
                ),
                (
                    SITE_A,
                    DELIVERY_A,
                    "accepted",
                    None,
                    30,
                    1,
                    31,
                    sha(b"a2").hexdigest(),
                    loaded[SITE_A],
                    date(2025, 12, 1),
                    "nombre,dni",
                ),
                (
                    SITE_B,
                    DELIVERY_B,
                    "accepted",
                    None,
                    15,
                    0,
                    15,
                    sha(b"b1").hexdigest(),
                    loaded[SITE_B],
                    date(2025, 10, 15),
                    None,
                ),
                (
                    SITE_B,
                    "2026-01-10",
                    "rejected",
                    "missing_table: treatments.csv",
                    0,
                    0,
                    0,
                    sha(b"b2").hexdigest(),
                    now - timedelta(days=5),
                    date(2026, 1, 10),
                    None,
                ),
            ],
        )
        con.execute(
            """
            create table quality.quarantine (
                site_id VARCHAR, delivery_id VARCHAR, table_name VARCHAR, source_file VARCHAR,
                source_row INTEGER, column_name VARCHAR, rule VARCHAR, value VARCHAR,
                detail VARCHAR
            )
            """
        )
        con.execute(
            "insert into quality.quarantine values "
            "(?, ?, 'assessments', 'assessments.csv', 7, 'value', 'out_of_range', '60', "
            "'mrss must be an integer 0-51')",
            [SITE_A, DELIVERY_A],
        )
    finally:
        con.close()
    return FixtureFile(path=path, keys=keys, now=now, drug_cases=drug_cases)


def inject_duplicate_patient(path: Path) -> None:
    """Break the landing contract: a second copy of one patient_key in landed.patients."""
    con = duckdb.connect(str(path))
    try:
        con.execute(
            "insert into landed.patients select * from landed.patients order by source_row limit 1"
        )
    finally:
        con.close()


def build_by_plan_marts(root: Path, amendment: str, extra_assessments: list[tuple] | None = None
                        ) -> tuple[Path, Protocol]:
    """The fixture file with the efficacy marts built by dbt under the repository protocol
    plus `amendment` (YAML text): mart_efficacy and mart_efficacy_by_plan side by side.
    `extra_assessments`: as for `build_fixture_database`. Returns the file and the protocol
    it was built under."""
    from protocol_helpers import amendment_file

    from ivig_platform.modeling import build_marts
    from ivig_platform.protocol.load import load_protocol

    fixture = build_fixture_database(root / "build.duckdb", extra_assessments=extra_assessments)
    protocol = load_protocol().with_amendments([amendment_file(root, "amendment.yaml",
                                                               amendment)])
    outcome = build_marts(fixture.path, target_dir=root / "target", docs_dir=None,
                          select=["+mart_efficacy_by_plan", "+mart_efficacy"],
                          check_source_freshness=False, protocol=protocol)
    assert outcome.success, outcome.summary()
    return fixture.path, protocol
