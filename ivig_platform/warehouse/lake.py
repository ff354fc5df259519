"""The warehouse kept in a DuckLake: a PostgreSQL catalog, Parquet data files, snapshots.

`ivig refresh --catalog postgresql://USER@HOST:PORT/DB` keeps the published warehouse in a
DuckLake instead of `WAREHOUSE/ivig.duckdb`; `WAREHOUSE/lake.json` remembers the catalog
and the data path, so later commands (and refreshes) need only WAREHOUSE. Everything up to
the publish is the same on both backends: a run builds its DuckDB file in its own folder,
dbt, the gates and the stats run on it, and only the publish differs:

1. **the data snapshot.** One DuckLake transaction replaces every schema, table and view
   of the lake by the built file's (commit message `publish run <run id>`). Concurrent
   readers are pinned to a snapshot, so none sees half of it.
2. **the publication.** A second transaction appends (snapshot, run, version name) to
   `ivig_meta.publication`. That row, not "the newest snapshot", is what analysts read:
   a run killed between the two leaves an unpublished snapshot nobody reads, and a
   rollback appends a row naming an earlier published snapshot.

Readers (`connect`, `ivig status|sql|report|explain`) attach the lake read-only at the
snapshot the last publication row names, as catalog `ivig`, and `USE` it: the same SQL
works on both backends (`SELECT * FROM marts.dim_patient`).

The password is never stored or passed on the command line: libpq reads it from
`PGPASSWORD` or `~/.pgpass`, as psql does. The DuckLake and PostgreSQL extensions load from
the `duckdb-extension-ducklake` / `duckdb-extension-postgres-scanner` packages (pinned to
DuckDB's version); nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import duckdb

LAKE_FILE = "lake.json"
LAKE_DATA = "lake"
META_SCHEMA = "ivig_meta"
PUBLICATION = f"{META_SCHEMA}.publication"
#: How analysts and the platform's readers name the lake: the single file's catalog name.
READ_ALIAS = "ivig"
WRITE_ALIAS = "lake"
EXTENSIONS = (("ducklake", "duckdb_extension_ducklake"),
              ("postgres_scanner", "duckdb_extension_postgres_scanner"))
_URL = re.compile(r"^postgres(ql)?://")


class LakeError(RuntimeError):
    """The lake cannot be used as asked: one line naming the catalog and what failed."""


@dataclass(frozen=True)
class Lake:
    """Where a warehouse's lake lives: its catalog database and its data files."""

    catalog: str  # postgresql://USER@HOST:PORT/DB, never with a password
    data_path: str

    @classmethod
    def parse(cls, catalog: str, data_path: str) -> Lake:
        """Check the catalog URL here, where a mistake is one clear line, not libpq's."""
        if not _URL.match(catalog):
            raise LakeError(f"--catalog must be a postgresql://USER@HOST:PORT/DB URL, "
                            f"got {catalog!r}")
        parts = urlsplit(catalog)
        if parts.password is not None:
            raise LakeError("--catalog must not carry a password (it would stay in the shell "
                            "history, the run's parameters and WAREHOUSE/lake.json): put it "
                            "in PGPASSWORD or ~/.pgpass")
        if not parts.username or not parts.hostname or not parts.path.strip("/"):
            raise LakeError(f"--catalog needs a user, a host and a database: "
                            f"postgresql://USER@HOST:PORT/DB, got {catalog!r}")
        return cls(catalog, data_path)

    def libpq(self) -> str:
        """The catalog as the keyword/value connection string DuckLake's postgres needs."""
        parts = urlsplit(self.catalog)
        fields = {"dbname": unquote(parts.path.strip("/")), "host": parts.hostname,
                  "port": parts.port, "user": unquote(parts.username or "")}
        return " ".join(f"{key}={value}" for key, value in fields.items() if value)

    def name(self, snapshot: int | None = None, run_id: str = "") -> str:
        """How people are told what they read: the lake, and its snapshot when known."""
        return (f"the lake {self.catalog}" + (f", snapshot {snapshot}" if snapshot is not None
                                               else "") + (f" (run {run_id})" if run_id else ""))


def lake_file(warehouse: Path) -> Path:
    return Path(warehouse) / LAKE_FILE


def lake_of(warehouse: Path) -> Lake | None:
    """The lake WAREHOUSE is kept in (None: the single-file backend)."""
    path = lake_file(warehouse)
    if not path.exists():
        return None
    return Lake(**json.loads(path.read_text()))


def configure(warehouse: Path, catalog: str, data_path: str = "") -> Lake | None:
    """The lake a refresh writes to: recorded in WAREHOUSE/lake.json the first time.

    A warehouse keeps one backend for life: a single-file warehouse does not become a
    lake (its versions and state describe files), and a lake is not moved to another
    catalog by a later --catalog; either is refused with what to do instead.
    """
    warehouse = Path(warehouse)
    known = lake_of(warehouse)
    if not catalog:
        if data_path:
            raise LakeError("--data-path needs --catalog (the data files of a DuckLake)")
        return known
    wanted = Lake.parse(catalog, absolute_data_path(data_path or str(warehouse / LAKE_DATA)))
    if known is not None:
        if known.catalog != wanted.catalog or (data_path and known.data_path != wanted.data_path):
            raise LakeError(f"{warehouse} is kept in the lake {known.catalog} (data under "
                            f"{known.data_path}), not {wanted.catalog}: use another "
                            "warehouse folder for another lake")
        return known
    from ivig_platform.warehouse.publish import published_path

    if published_path(warehouse).exists():
        raise LakeError(f"{warehouse} holds a single-file warehouse ({published_path(warehouse)}"
                        "): give the lake its own warehouse folder")
    initialise(wanted)  # the catalog answers and holds a DuckLake before it is recorded
    warehouse.mkdir(parents=True, exist_ok=True)
    tmp = lake_file(warehouse).with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(wanted), indent=2) + "\n")
    tmp.replace(lake_file(warehouse))
    return wanted


def absolute_data_path(data_path: str) -> str:
    """DuckLake records the data path in its catalog, where a relative one would mean
    another folder to every reader started elsewhere; object storage URLs stay as given."""
    if "://" in data_path:
        return data_path
    return str(Path(data_path).expanduser().resolve()) + "/"


def extension_file(name: str, package: str) -> Path:
    """The extension binary shipped in its PyPI package, for this DuckDB version."""
    spec = importlib.util.find_spec(package)
    folders = list(spec.submodule_search_locations or []) if spec else []
    version = duckdb.__version__
    for folder in folders:
        found = Path(folder) / "extensions" / f"v{version}" / f"{name}.duckdb_extension"
        if found.exists():
            return found
    raise LakeError(f"the DuckDB extension {name} for DuckDB {version} is not installed "
                    f"(the package {package.replace('_', '-')}=={version})")


def new_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with DuckLake and postgres loaded from the local packages."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})
    for name, package in EXTENSIONS:
        con.execute(f"LOAD '{extension_file(name, package)}'")
    return con


def attach(con: duckdb.DuckDBPyConnection, lake: Lake, alias: str, *,
           snapshot: int | None = None, read_only: bool = False) -> None:
    options = [f"DATA_PATH '{lake.data_path}'"] if not read_only else []
    if snapshot is not None:
        options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
    if read_only:
        options.append("READ_ONLY")
    try:
        con.execute(f"ATTACH 'ducklake:postgres:{lake.libpq()}' AS {alias} "
                    f"({', '.join(options)})")
    except duckdb.Error as exc:
        raise LakeError(f"the lake catalog {lake.catalog} cannot be opened: "
                        f"{_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def writer(lake: Lake) -> Iterator[duckdb.DuckDBPyConnection]:
    con = new_connection()
    try:
        attach(con, lake, WRITE_ALIAS)
        yield con
    finally:
        con.close()


def initialise(lake: Lake) -> None:
    """Create the DuckLake in its catalog (or open the one there) with its publication
    table, so readers find a lake even before the first publish."""
    with writer(lake) as con:
        con.execute("BEGIN")
        _ensure_meta(con)
        con.execute("COMMIT")


@dataclass(frozen=True)
class Publication:
    """One row of `ivig_meta.publication`: a publish or a rollback making `snapshot` current."""

    seq: int
    snapshot: int
    run_id: str
    version: str  # ivig-<UTC stamp>: names its report and docs under WAREHOUSE/versions/
    action: str  # publish | rollback
    at: datetime

    def describe(self) -> str:
        return f"snapshot {self.snapshot} (run {self.run_id})"


def _ensure_meta(con: duckdb.DuckDBPyConnection, alias: str = WRITE_ALIAS) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {alias}.{META_SCHEMA}")
    con.execute(f"CREATE TABLE IF NOT EXISTS {alias}.{PUBLICATION} (seq BIGINT, "
                "snapshot_id BIGINT, run_id VARCHAR, version VARCHAR, action VARCHAR, "
                "published_at TIMESTAMPTZ)")


def _publications(con: duckdb.DuckDBPyConnection, alias: str) -> list[Publication]:
    present = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND "
                          "schema_name = ? AND table_name = 'publication'",
                          [alias, META_SCHEMA]).fetchone()[0]
    if not present:
        return []
    rows = con.execute(f"SELECT seq, snapshot_id, run_id, version, action, published_at "
                       f"FROM {alias}.{PUBLICATION} ORDER BY seq").fetchall()
    return [Publication(*row) for row in rows]


def publications(lake: Lake) -> list[Publication]:
    """Every publish and rollback, oldest first (empty: nothing published yet)."""
    con = new_connection()
    try:
        attach(con, lake, READ_ALIAS, read_only=True)
        return _publications(con, READ_ALIAS)
    finally:
        con.close()


def current(lake: Lake) -> Publication | None:
    """What analysts read now: the last publication row's snapshot."""
    rows = publications(lake)
    return rows[-1] if rows else None


def published_versions(rows: list[Publication]) -> list[Publication]:
    """The publishes (not the rollbacks), oldest first: what `rollback --to` may choose."""
    return [row for row in rows if row.action == "publish"]


def _attach_published(con: duckdb.DuckDBPyConnection, lake: Lake) -> Publication | None:
    """Attach the lake read-only at its published snapshot as `ivig`, on one connection:
    the publication row is read from the newest snapshot, then the lake attached again
    at the one it names. None (and nothing attached): nothing is published yet."""
    attach(con, lake, READ_ALIAS, read_only=True)
    rows = _publications(con, READ_ALIAS)
    con.execute(f"DETACH {READ_ALIAS}")
    if not rows:
        return None
    attach(con, lake, READ_ALIAS, snapshot=rows[-1].snapshot, read_only=True)
    return rows[-1]


def open_published(lake: Lake, *, missing_ok: bool = False) -> duckdb.DuckDBPyConnection | None:
    """A read-only connection on the published snapshot, the lake selected as `ivig`
    (`missing_ok`: None when nothing is published yet, rather than an error)."""
    con = new_connection()
    try:
        published = _attach_published(con, lake)
        if published is not None:
            con.execute(f"USE {READ_ALIAS}")
            return con
    except BaseException:
        con.close()
        raise
    con.close()
    if missing_ok:
        return None
    raise LakeError(f"nothing is published in the lake {lake.catalog} yet "
                    "(run `ivig refresh` first)")


def _objects(con: duckdb.DuckDBPyConnection, catalog: str) -> tuple[list, list]:
    tables = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? "
        "AND schema_name <> ? ORDER BY ALL", [catalog, META_SCHEMA]).fetchall()
    views = con.execute(
        "SELECT schema_name, view_name, sql FROM duckdb_views() WHERE database_name = ? "
        "AND NOT internal AND schema_name <> ? ORDER BY schema_name, view_name",
        [catalog, META_SCHEMA]).fetchall()
    return tables, views


def _create_views(con: duckdb.DuckDBPyConnection, catalog: str,
                  views: list[tuple[str, str, str]]) -> None:
    """Views in an order that binds: each after the views it reads. Their SQL names no
    catalog (and DuckLake's not even the view's schema), so each is created with its
    catalog and schema selected, and reads that catalog's relations."""
    pending = list(views)
    while pending:
        failed: list[tuple[str, str, str]] = []
        last: duckdb.Error | None = None
        for view in pending:
            try:
                con.execute(f'USE {catalog}."{view[0]}"')
                con.execute(view[2])
            except duckdb.CatalogException as exc:
                failed.append(view)
                last = exc
        if len(failed) == len(pending):
            names = ", ".join(f"{s}.{v}" for s, v, _ in failed)
            raise LakeError(f"views that cannot be created in the lake: {names}: {last}")
        pending = failed


def commit_build(lake: Lake, built: Path, run_id: str) -> int:
    """Step 1: the built file's schemas, tables and views as one lake snapshot; its id."""
    message = f"publish run {run_id}"
    with writer(lake) as con:
        con.execute(f"ATTACH '{built}' AS build (READ_ONLY)")
        tables, views = _objects(con, "build")
        old_tables, old_views = _objects(con, WRITE_ALIAS)
        con.execute(f"USE {WRITE_ALIAS}")
        con.execute("BEGIN")
        try:
            for schema, view, _ in old_views:
                con.execute(f'DROP VIEW IF EXISTS {WRITE_ALIAS}."{schema}"."{view}"')
            keep = set(tables)
            for schema, table in old_tables:
                if (schema, table) not in keep:
                    con.execute(f'DROP TABLE {WRITE_ALIAS}."{schema}"."{table}"')
            for schema in sorted({s for s, _ in tables} | {s for s, _, _ in views}):
                con.execute(f'CREATE SCHEMA IF NOT EXISTS {WRITE_ALIAS}."{schema}"')
            for schema, table in tables:
                con.execute(f'CREATE OR REPLACE TABLE {WRITE_ALIAS}."{schema}"."{table}" AS '
                            f'SELECT * FROM build."{schema}"."{table}"')
            _create_views(con, WRITE_ALIAS, views)
            con.execute(f"USE {WRITE_ALIAS}")
            _ensure_meta(con)
            con.execute(f"CALL {WRITE_ALIAS}.set_commit_message('ivig', ?)", [message])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return con.execute(f"SELECT max(snapshot_id) FROM {WRITE_ALIAS}.snapshots() "
                           "WHERE commit_message = ?", [message]).fetchone()[0]


def record_publication(lake: Lake, snapshot: int, run_id: str, version: str,
                       action: str = "publish") -> Publication:
    """Step 2: make `snapshot` what analysts read (a publish, or a rollback to it)."""
    with writer(lake) as con:
        _ensure_meta(con)
        con.execute("BEGIN")
        seq = con.execute(f"SELECT coalesce(max(seq), 0) + 1 FROM {WRITE_ALIAS}.{PUBLICATION}"
                          ).fetchone()[0]
        con.execute(f"INSERT INTO {WRITE_ALIAS}.{PUBLICATION} VALUES (?, ?, ?, ?, ?, now())",
                    [seq, snapshot, run_id, version, action])
        con.execute(f"CALL {WRITE_ALIAS}.set_commit_message('ivig', ?)",
                    [f"{action} snapshot {snapshot} (run {run_id}, {version})"])
        con.execute("COMMIT")
        row = con.execute(f"SELECT seq, snapshot_id, run_id, version, action, published_at "
                          f"FROM {WRITE_ALIAS}.{PUBLICATION} WHERE seq = ?", [seq]).fetchone()
    return Publication(*row)


def export_published(lake: Lake, target: Path) -> None:
    """The published snapshot as a new DuckDB file: where an incremental build starts."""
    con = new_connection()
    try:
        if _attach_published(con, lake) is None:
            raise LakeError(f"nothing is published in the lake {lake.catalog}")
        con.execute(f"ATTACH '{target}' AS target")
        tables, views = _objects(con, READ_ALIAS)
        for schema in sorted({s for s, _ in tables} | {s for s, _, _ in views}):
            con.execute(f'CREATE SCHEMA target."{schema}"')
        for schema, table in tables:
            con.execute(f'CREATE TABLE target."{schema}"."{table}" AS '
                        f'SELECT * FROM {READ_ALIAS}."{schema}"."{table}"')
        _create_views(con, "target", views)
        con.execute(f"USE {READ_ALIAS}")
        con.execute("DETACH target")
    finally:
        con.close()


def expire_unpublished(lake: Lake, kept: list[Publication]) -> None:
    """Snapshots older than the oldest `kept` publish (the last ones, which rollback
    offers) are no longer kept, so the older data files can go (DuckLake deletes them
    once scheduled for a day, so a reader still scanning one is not cut short)."""
    if not kept:
        return
    oldest = min(row.snapshot for row in kept)
    with writer(lake) as con:
        older = [row[0] for row in con.execute(
            f"SELECT snapshot_id FROM {WRITE_ALIAS}.snapshots() WHERE snapshot_id < ?",
            [oldest]).fetchall()]
        if older:
            con.execute(f"CALL ducklake_expire_snapshots('{WRITE_ALIAS}', versions => ?)",
                        [older])
        con.execute(f"CALL ducklake_cleanup_old_files('{WRITE_ALIAS}', "
                    "older_than => now() - INTERVAL 1 DAY)")
