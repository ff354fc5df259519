"""An incremental build (issue 12): a copy of the published file with the changed sites'
rows replaced equals a full build of the same deliveries, table by table.

Real landed deliveries, real DuckDB files; the dbt side (incremental models by site) is
proven with real refreshes in tests/test_incremental_equals_full.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from ivig_platform.warehouse.build import BuildScope, RunInfo, build_database, delivery_status
from ivig_platform.warehouse.changes import build_scope, changed_sites

RUN = RunInfo(run_id="test-run", started_at=datetime(2026, 11, 25, 9, 0, tzinfo=UTC),
              inbox="/inbox")
# Written whole by every build, or naming the build itself: compared apart.
PER_BUILD = {("quality", "refresh_run"), ("quality", "build_scope")}


@pytest.fixture(scope="module")
def landed(tmp_path_factory, new_extract, make_delivery, new_warehouse):
    """Deliveries landed for real, by name: a/1 a/2 (a re-delivery with one more patient),
    b/1, b/2 (no treatments: rejected by landing), c/1."""
    tmp = tmp_path_factory.mktemp("incremental")
    warehouse = new_warehouse(tmp / "warehouse", b"incremental-test-key-0123456789ab")
    found = {}

    def deliver(name, site, delivery, extra_patient=False, drop=None):
        extract = new_extract()
        extract.append("ivig_cycles", dose_g="401")  # one quarantined row per delivery
        if extra_patient:
            extract.append("patients", patient_id="104444")
        tables = extract.csv_tables()
        if drop:
            del tables[drop]
        found[name] = warehouse.land(make_delivery(tmp, site, delivery, tables))

    deliver("a/1", "h-a", "2026-10-01")
    deliver("a/2", "h-a", "2026-11-24", extra_patient=True)
    deliver("b/1", "h-b", "2026-09-01")
    deliver("b/2", "h-b", "2026-11-24", drop="treatments")
    deliver("c/1", "h-c", "2026-11-01")
    return warehouse.path, found


# (case, published deliveries, held back then, this run's deliveries, held back now, changed)
CASES = [
    ("a re-delivery supersedes", ["a/1", "b/1", "c/1"], [], ["a/1", "a/2", "b/1", "c/1"], [],
     {"h-a"}),
    ("a rejected re-delivery changes nothing", ["a/1", "b/1"], [], ["a/1", "b/1", "b/2"], [],
     set()),
    ("a new site", ["a/1", "b/1"], [], ["a/1", "b/1", "c/1"], [], {"h-c"}),
    ("a held-back re-delivery keeps the old one", ["a/1", "b/1"], [], ["a/1", "a/2", "b/1"],
     ["a/2"], set()),
    ("a held-back delivery released", ["a/1", "a/2", "b/1"], ["a/2"], ["a/1", "a/2", "b/1"],
     [], {"h-a"}),
    ("a site gone from the record", ["a/1", "b/1", "c/1"], [], ["a/1", "b/1"], [], {"h-c"}),
    ("nothing changed", ["a/1", "b/1"], [], ["a/1", "b/1"], [], set()),
]


def _held(names, found):
    return {(found[n].site_id, found[n].delivery_id): "held back by the test" for n in names}


def _tables(path: Path) -> dict[tuple[str, str], list[tuple]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
        return {name: con.execute(f"SELECT * FROM {name[0]}.{name[1]} ORDER BY ALL").fetchall()
                for name in names}
    finally:
        con.close()


@pytest.mark.parametrize(("published", "held_then", "current", "held_now", "changed"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_an_incremental_build_equals_a_full_build_of_the_same_deliveries(
        landed, tmp_path, published, held_then, current, held_now, changed):
    warehouse, found = landed
    before = [found[n] for n in published]
    now = [found[n] for n in current]
    start = tmp_path / "published" / "ivig.duckdb"
    published_status = build_database(start, warehouse, before, RUN,
                                      held_back=_held(held_then, found))
    sites = changed_sites(published_status, delivery_status(now, _held(held_now, found)))
    assert sites == changed

    incremental, full = tmp_path / "inc" / "ivig.duckdb", tmp_path / "full" / "ivig.duckdb"
    scope = build_scope(None, start, published_status,
                        delivery_status(now, _held(held_now, found)))
    assert scope == BuildScope(start_from=start, sites=frozenset(changed))
    build_database(incremental, warehouse, now, RUN, held_back=_held(held_now, found),
                   scope=scope)
    build_database(full, warehouse, now, RUN, held_back=_held(held_now, found))

    got, want = _tables(incremental), _tables(full)
    assert set(got) == set(want)
    for name in sorted(set(want) - PER_BUILD):
        assert got[name] == want[name], name
    assert got[("quality", "build_scope")] == [(s, "incremental", None) for s in sorted(changed)]
    assert start.exists()  # the published file itself is never written to


def test_a_full_build_lists_every_site_with_its_reason(landed, tmp_path):
    warehouse, found = landed
    path = tmp_path / "ivig.duckdb"
    build_database(path, warehouse, [found["a/1"], found["b/2"], found["c/1"]], RUN,
                   scope=BuildScope(reason="--full-refresh was given"))
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute("SELECT * FROM quality.build_scope ORDER BY site_id").fetchall()
    finally:
        con.close()
    assert rows == [(s, "full", "--full-refresh was given") for s in ("h-a", "h-b", "h-c")]


@pytest.mark.parametrize(("scope", "words"), [
    (BuildScope(reason="no published warehouse to start from"),
     "full build: no published warehouse to start from"),
    (BuildScope(start_from=Path("x"), sites=frozenset({"h-a"})),
     "incremental build: 1 changed site rebuilt (h-a)"),
    (BuildScope(start_from=Path("x"), sites=frozenset()),
     "incremental build: 0 changed sites rebuilt"),
    (BuildScope(start_from=Path("x"), sites=frozenset(f"h-{i}" for i in range(6))),
     "incremental build: 6 changed sites rebuilt"),
])
def test_the_build_says_which_way_it_built(scope, words):
    assert scope.describe() == words


def test_an_unreadable_published_site_delivery_means_a_full_build(landed):
    _, found = landed
    scope = build_scope(None, Path("ivig.duckdb"), None, delivery_status([found["a/1"]]))
    assert not scope.incremental and "cannot be read" in scope.reason


def test_the_published_site_delivery_is_read_from_the_published_file(landed, tmp_path):
    from ivig_platform.warehouse.live import published_site_delivery

    warehouse, found = landed
    assert published_site_delivery(tmp_path) is None  # nothing published
    status = build_database(tmp_path / "ivig.duckdb", warehouse, [found["a/1"], found["b/2"]],
                            RUN)
    columns = ["site_id", "delivery_id", "status", "content_sha256", "rows_landed"]
    read = published_site_delivery(tmp_path)
    assert read.select(columns).sort("site_id", "delivery_id").equals(
        status.select(columns).sort("site_id", "delivery_id"))
