"""The lake backend (issue 13, points 1, 3, 4 and the catalog fault of 5): a warehouse kept
in a DuckLake on a real, throw-away PostgreSQL cluster publishes what the single file
does, publishes as a snapshot analysts stay pinned to, and rolls back to an earlier one.

Every refresh is a real `ivig refresh` process against one Prefect server started for
the module; the comparison of two published warehouses is the incremental test's
(tests/incremental_support.py): every table and view, rows as multisets, only run and
moment columns left out.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest
from conftest import Extract
from incremental_support import Inbox, Published, first_difference
from postgres_cluster import Cluster, postgres_bin, throwaway_cluster
from readme_recipes import README, commands, fenced, section
from refresh_runs_support import IVIG, cli_env, refresh_args, run_cli, running_prefect_server

import ivig_platform
from ivig_platform.demo import write_demo_inbox
from ivig_platform.demo.sites import SITES
from ivig_platform.orchestration.processes import free_port
from ivig_platform.warehouse import lake, publish

pytestmark = [
    pytest.mark.server,
    pytest.mark.timeout(1800),
    pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL is not installed (no initdb)"),
]

SMALL_SITES, SMALL_PATIENTS, SMALL_SEED = 4, 12, 20261124
NEW_SITE = SITES[SMALL_SITES][0]  # a registry site the small inbox does not use


@pytest.fixture(scope="module")
def catalog() -> Iterator[Cluster]:
    with throwaway_cluster(database="lake", user="ivig") as cluster:
        yield cluster


def catalog_url(cluster: Cluster, database: str = "lake") -> str:
    return f"postgresql://{cluster.user}@127.0.0.1:{cluster.port}/{database}"


def new_catalog(cluster: Cluster, name: str) -> str:
    """A database of its own in the cluster: one lake per warehouse."""
    bindir = postgres_bin()
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, str(bindir / "createdb"), "-h", "127.0.0.1", "-p",
                    str(cluster.port), "-U", cluster.user, name], check=True,
                   env={**os.environ, "PGPASSWORD": cluster.password}, capture_output=True)
    return catalog_url(cluster, name)


@pytest.fixture(scope="module")
def env(catalog: Cluster, tmp_path_factory) -> Iterator[dict[str, str]]:
    """Key A, the catalog's password (as libpq reads it) and one running Prefect server."""
    with running_prefect_server(tmp_path_factory.mktemp("prefect-server")) as server:
        yield {**cli_env(), "PGPASSWORD": catalog.password, **server}


@pytest.fixture
def password(catalog: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process reads the lake too (`ivig_platform.connect`)."""
    monkeypatch.setenv("PGPASSWORD", catalog.password)


def refresh(inbox: Path, warehouse: Path, env: dict[str, str], *extra: str) -> str:
    done = run_cli(refresh_args(inbox, warehouse, *extra), env, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def ivig(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return run_cli([IVIG, *args], env)


#: Any run's id. The single-file and the lake warehouse of a pair each have their own
#: history of runs, so the earlier runs named in texts (a drift reference "fixed …, run
#: <id>") differ by construction; the comparison masks them all, not only the file's own.
RUN_ID = r"\d{8}T\d{6}-[0-9a-f]{6}"


def published(warehouse: Path) -> Published:
    """Every table and view of what `connect` opens (run ids in texts masked), and the run
    that built it."""
    con = ivig_platform.connect(warehouse)
    try:
        names = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database() AND table_schema <> ? ORDER BY 1, 2",
            [lake.META_SCHEMA]).fetchall()
        tables = {f"{schema}.{name}": _masked(con.sql(f'SELECT * FROM "{schema}"."{name}"').pl())
                  for schema, name in names}
        run_id = con.execute("SELECT run_id FROM quality.refresh_run").fetchone()[0]
    finally:
        con.close()
    return Published(tables, run_id)


def _masked(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col(c).str.replace_all(RUN_ID, "<a run>")
                              for c, kind in frame.schema.items() if kind == pl.String
                              and c != "run_id")


def run_of(warehouse: Path) -> str:
    con = ivig_platform.connect(warehouse)
    try:
        return con.execute("SELECT run_id FROM quality.refresh_run").fetchone()[0]
    finally:
        con.close()


def report_run(warehouse: Path) -> str:
    found = re.search(r"<!-- ivig run: (\S+) -->", (warehouse / "report.html").read_text())
    return found.group(1) if found else ""


# ----------------------------------------------------------------- no services needed


@pytest.mark.parametrize(("url", "complaint"), [
    ("mysql://ivig@host/db", "must be a postgresql://"),
    ("postgresql://ivig:secret@127.0.0.1:5432/lake", "must not carry a password"),
    ("postgresql://127.0.0.1:5432/lake", "needs a user, a host and a database"),
    ("postgresql://ivig@127.0.0.1:5432/", "needs a user, a host and a database"),
])
def test_a_catalog_url_that_cannot_be_used_is_refused_in_one_line(url, complaint) -> None:
    with pytest.raises(lake.LakeError, match=complaint):
        lake.Lake.parse(url, "/data")


def test_the_catalog_url_becomes_the_connection_string_libpq_reads() -> None:
    parsed = lake.Lake.parse("postgresql://ivig@db.example:6543/study", "/data")
    assert parsed.libpq() == "dbname=study host=db.example port=6543 user=ivig"


def test_the_extensions_come_from_the_local_packages() -> None:
    for name, package in lake.EXTENSIONS:
        path = lake.extension_file(name, package)
        assert path.is_file() and "site-packages" in str(path)


# ------------------------------------------------------------- with the real services


def test_an_unreachable_catalog_is_one_line_and_publishes_nothing(tmp_path, env) -> None:
    inbox = tmp_path / "inbox"
    write_demo_inbox(inbox, n_sites=3, n_patients=6, seed=SMALL_SEED)
    closed = f"postgresql://ivig@127.0.0.1:{free_port()}/lake"
    done = run_cli(refresh_args(inbox, tmp_path / "wh", "--catalog", closed), env)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"the lake catalog {closed} cannot be opened" in lines[0]
    assert lines[0].endswith("nothing published")
    assert not (tmp_path / "wh" / "lake.json").exists()


def test_a_single_file_warehouse_does_not_become_a_lake(tmp_path, catalog) -> None:
    (tmp_path / "ivig.duckdb").write_bytes(b"")
    with pytest.raises(lake.LakeError, match="holds a single-file warehouse"):
        lake.configure(tmp_path, catalog_url(catalog), "")


def test_the_demo_on_the_lake_as_the_readme_runs_it_equals_the_single_file(
        demo, env, password, catalog, tmp_path) -> None:
    """The README's "On a lake" commands word for word (libpq's variables naming a fresh
    database of the test cluster), from a folder laid out as the checkout after
    `bootstrap.sh demo`; then its SQL recipe, statement by statement, as the DuckDB CLI
    would run it; then every table against the demo's single file."""
    folder, _, _ = demo
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "inbox").symlink_to(folder / "inbox")
    new_catalog(catalog, "readme")
    run_env = {**env, "IVIG_PSEUDONYM_KEY": (folder / ".pseudonym_key").read_text().strip(),
               "PGUSER": catalog.user, "PGHOST": "127.0.0.1", "PGPORT": str(catalog.port),
               "PGDATABASE": "readme"}
    text = section(README, "On a lake: DuckLake on PostgreSQL")
    outputs = []
    for line in commands(text):
        ran = subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True,
                             text=True, timeout=900, env=run_env)
        assert ran.returncode == 0, (line, ran.stdout[-2000:], ran.stderr[-2000:])
        outputs.append(ran.stdout + ran.stderr)
    assert len(outputs) == 3
    assert "18 sites accepted, 1 superseded, 1 held back by the quality gate, 1 rejected by " \
           "landing; 1420 rows landed, 89 quarantined" in outputs[0]
    assert re.search(r"│\s+79 │", outputs[1]), outputs[1]
    assert outputs[2].startswith("* ivig-"), outputs[2]
    warehouse = tmp_path / "demo" / "lake"
    assert not (warehouse / "ivig.duckdb").exists()

    (recipe,) = fenced(text, "sql")
    here = f"dbname=readme host=127.0.0.1 port={catalog.port} user={catalog.user}"
    published_snapshot = lake.current(lake.lake_of(warehouse)).snapshot
    con = lake.new_connection()  # the CLI's INSTALL ducklake / postgres, from the packages
    try:
        results = []
        for statement in filter(str.strip, recipe.split(";")):
            statement = statement.replace("dbname=DB host=HOST port=PORT user=USER", here)
            if "SNAPSHOT_VERSION 2" in statement:  # the one the recipe's SELECT printed
                statement = statement.replace("SNAPSHOT_VERSION 2",
                                              f"SNAPSHOT_VERSION {results[1][0][0]}")
            ran = con.execute(statement)
            results.append(ran.fetchall() if statement.strip().startswith("SELECT") else [])
    finally:
        con.close()
    assert results[1] == [(published_snapshot,)]
    assert results[-1] == [(79,)]

    assert first_difference(published(warehouse), published(folder / "warehouse")) is None


@pytest.fixture(scope="module")
def pair(tmp_path_factory, env, catalog) -> dict:
    """One small inbox refreshed side by side into a single file and a lake."""
    root = tmp_path_factory.mktemp("pair")
    write_demo_inbox(root / "inbox", n_sites=SMALL_SITES, n_patients=SMALL_PATIENTS,
                     seed=SMALL_SEED)
    url = new_catalog(catalog, "pair")
    refresh(root / "inbox", root / "file", env)
    first = refresh(root / "inbox", root / "lake", env, "--catalog", url)
    return {"root": root, "inbox": Inbox(root), "url": url, "first": first,
            "file": root / "file", "lake": root / "lake", "env": env}


class TestOneLake:
    """The pair's lake published, read, changed (the file alike), left half-done and
    rolled back, in this order."""

    def test_the_first_publish_equals_the_single_file(self, pair, password) -> None:
        assert "built in full (no published warehouse to start from)" in pair["first"]
        assert first_difference(published(pair["lake"]), published(pair["file"])) is None
        (row,) = lake.publications(lake.lake_of(pair["lake"]))
        assert (row.action, row.run_id) == ("publish", run_of(pair["lake"]))

    def test_the_report_names_the_snapshot_it_was_computed_from(self, pair, password) -> None:
        current = lake.current(lake.lake_of(pair["lake"]))
        html = (pair["lake"] / "report.html").read_text()
        assert f"the lake {pair['url']}, snapshot {current.snapshot}" in html
        assert report_run(pair["lake"]) == current.run_id

    def test_status_sql_and_report_read_the_lake(self, pair, env) -> None:
        status = ivig(env, "status", "--warehouse", str(pair["lake"]))
        assert status.returncode == 0, status.stderr
        assert "hu-la-paz" in status.stdout and "superseded" in status.stdout
        assert status.stdout.startswith(f"the lake {pair['url']}, snapshot "), status.stdout
        sql = ivig(env, "sql", "--warehouse", str(pair["lake"]),
                   "SELECT count(*) AS n FROM marts.dim_patient")
        assert sql.returncode == 0, sql.stderr
        explained = ivig(env, "explain", "--warehouse", str(pair["lake"]), "marts.dim_patient",
                         "site_id = 'hu-la-paz'", "--json", "--depth", "0")
        assert explained.returncode == 0, explained.stderr
        assert {row["site_id"] for row in json.loads(explained.stdout)} == {"hu-la-paz"}
        rewritten = ivig(env, "report", "--warehouse", str(pair["lake"]))
        assert rewritten.returncode == 0, rewritten.stderr
        unchanged = ivig(env, "refresh", "--inbox", str(pair["root"] / "inbox"),
                         "--warehouse", str(pair["lake"]))
        assert unchanged.returncode == 0 and "nothing changed since the last publish; the " \
            f"lake {pair['url']}, snapshot" in unchanged.stderr + unchanged.stdout

    def test_doctor_checks_that_the_catalog_answers(self, pair, env) -> None:
        done = ivig(env, "doctor", "--warehouse", str(pair["lake"]))
        line = next(x for x in done.stdout.splitlines() if "postgresql" in x)
        assert f"lake catalog {pair['url']} answers: snapshot" in line, done.stdout
        blind = ivig({k: v for k, v in env.items() if k != "PGPASSWORD"}, "doctor",
                     "--warehouse", str(pair["lake"]))
        line = next(x for x in blind.stdout.splitlines() if "postgresql" in x)
        assert blind.returncode == 1 and "cannot be opened" in line, blind.stdout

    def test_a_connection_keeps_its_snapshot_and_a_new_one_sees_the_next(self, pair,
                                                                          password) -> None:
        before = run_of(pair["lake"])
        held = ivig_platform.connect(pair["lake"])
        try:
            patients = held.execute("SELECT count(*) FROM marts.dim_patient").fetchone()[0]
            delivery = pair["inbox"].deliver(NEW_SITE, Extract())
            refresh(pair["inbox"].path, pair["file"], pair["env"])
            line = refresh(pair["inbox"].path, pair["lake"], pair["env"])
            assert "built incrementally (1 changed site)" in line
            assert held.execute("SELECT run_id FROM quality.refresh_run").fetchone()[0] == before
            assert held.execute("SELECT count(*) FROM marts.dim_patient").fetchone()[0] \
                == patients
        finally:
            held.close()
        assert run_of(pair["lake"]) != before
        now = published(pair["lake"])
        assert NEW_SITE in set(now.tables["quality.site_delivery"]["site_id"])
        assert first_difference(now, published(pair["file"])) is None, delivery

    def test_a_snapshot_left_unpublished_is_never_read(self, pair, password) -> None:
        """What a refresh killed during the shared step leaves: a committed snapshot
        without its publication row; analysts (and the next refresh) read the published."""
        where = lake.lake_of(pair["lake"])
        before, run = lake.current(where), run_of(pair["lake"])
        bare = pair["root"] / "bare.duckdb"
        made = duckdb.connect(str(bare))
        made.execute("CREATE SCHEMA quality; CREATE TABLE quality.refresh_run AS "
                     "SELECT 'killed-run' AS run_id")
        made.close()
        snapshot = lake.commit_build(where, bare, "killed-run")
        assert snapshot > before.snapshot
        assert lake.current(where) == before
        assert run_of(pair["lake"]) == run

    def test_rollback_lists_and_restores_the_earlier_snapshot_with_its_report(
            self, pair, env, password) -> None:
        listed = ivig(env, "rollback", "--warehouse", str(pair["lake"]), "--list")
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.rstrip("\n").splitlines()
        assert len(lines) == 2 and lines[1].startswith("* ") and lines[0].startswith("  ")
        newest = run_of(pair["lake"])
        back = ivig(env, "rollback", "--warehouse", str(pair["lake"]))
        assert back.returncode == 0, back.stderr
        assert "with its report and docs" in back.stdout
        first = lake.publications(lake.lake_of(pair["lake"]))[0]
        assert run_of(pair["lake"]) == first.run_id == report_run(pair["lake"])
        relisted = ivig(env, "rollback", "--warehouse", str(pair["lake"]), "--list").stdout
        assert relisted.splitlines()[0].startswith("* ")
        name = relisted.splitlines()[1].split()[0]
        forward = ivig(env, "rollback", "--warehouse", str(pair["lake"]), "--to", name)
        assert forward.returncode == 0, forward.stderr
        assert run_of(pair["lake"]) == newest == report_run(pair["lake"])
        again = ivig(env, "rollback", "--warehouse", str(pair["lake"]), "--to", name)
        assert again.returncode == 1 and "already the published version" in again.stderr


class TestKilledLakePublish:
    """A lake publish killed between its report/docs swap and the end of its journal:
    recovery keeps the swap when the publication row made it into the lake, and plays
    it back when it did not (runs after TestOneLake, on its lake)."""

    @staticmethod
    def _half_published(warehouse: Path, stage: Path, version: str) -> None:
        from ivig_platform.warehouse.publish import _prepare, _swap, new_stamp

        stage.mkdir(parents=True)
        (stage / "report.html").write_text(f"<!-- ivig run: {version} -->")
        bundle = publish.Bundle(None, stage / "report.html", None)
        _prepare(bundle, warehouse, stage, new_stamp(), True, lake_version=version)
        _swap(bundle, warehouse, stage)

    def test_a_publish_killed_before_its_row_is_played_back(self, pair, password) -> None:
        warehouse, before = pair["lake"], report_run(pair["lake"])
        self._half_published(warehouse, warehouse / ".build" / "killed-1", "ivig-killed-1")
        assert report_run(warehouse) == "ivig-killed-1"
        assert publish.recover_interrupted_publish(warehouse) == ["killed-1"]
        assert report_run(warehouse) == before

    def test_a_publish_killed_after_its_row_is_kept(self, pair, password) -> None:
        warehouse = pair["lake"]
        where = lake.lake_of(warehouse)
        self._half_published(warehouse, warehouse / ".build" / "killed-2", "ivig-killed-2")
        live = lake.current(where)
        lake.record_publication(where, live.snapshot, live.run_id, "ivig-killed-2")
        assert publish.recover_interrupted_publish(warehouse) == ["killed-2"]
        assert report_run(warehouse) == "ivig-killed-2"
        assert not (warehouse / ".build" / "killed-2" / publish.JOURNAL).exists()
