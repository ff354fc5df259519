"""Building the analysts' DuckDB file from the landed Parquet.

The refresh never writes into the published file: it builds a new one under
`WAREHOUSE/.build/`, and `publish` renames it into place (protocol §8: published
atomically, openable read-only while a refresh runs).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl

from ivig_platform.landing.contract import TABLES
from ivig_platform.landing.land import Manifest, delivery_dir
from ivig_platform.landing.schema import QUARANTINE, landed_schema
from ivig_platform.states import ACCEPTED, BY_LANDING, BY_QUALITY_GATE, REJECTED, SUPERSEDED

SITE_DELIVERY_SCHEMA: dict[str, pl.DataType] = {
    "site_id": pl.Utf8(),
    "delivery_id": pl.Utf8(),
    "status": pl.Utf8(),
    "reason": pl.Utf8(),
    "rows_landed": pl.Int64(),
    "rows_quarantined": pl.Int64(),
    "source_rows": pl.Int64(),
    "content_sha256": pl.Utf8(),
    "landed_at": pl.Datetime("us", "UTC"),
    "delivery_date": pl.Date(),
    "dropped_columns": pl.Utf8(),
    # Who rejected it: 'landing' or 'quality_gate' (held back); null unless rejected. The
    # §8 status stays three-valued (ivig_platform/states.py).
    "rejected_by": pl.Utf8(),
}


INBOX_ISSUE_SCHEMA: dict[str, pl.DataType] = {"folder": pl.Utf8(), "reason": pl.Utf8()}


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    started_at: datetime
    inbox: str
    # Which key the run's pseudonyms are made with (never the key itself): a later run with
    # another key is refused (warehouse/keys.py).
    key_fingerprint: str = ""


def delivery_status(manifests: list[Manifest],
                    held_back: dict[tuple[str, str], str] | None = None) -> pl.DataFrame:
    """`quality.site_delivery`: each site's newest usable delivery is accepted (§2).

    Older landed deliveries of the site are superseded (a delivery is a complete
    snapshot); rejected ones stay rejected whatever their order, and a site whose newest
    delivery was rejected keeps its newest landed one in force. A landed delivery that
    the quality gate held back (`held_back`: (site, delivery) → reason) counts as
    rejected with the gate's reason, so the site's previous delivery stays in force;
    `rejected_by` tells the two rejections apart (states.py: `held_back`).
    """
    held_back = held_back or {}
    frame = pl.DataFrame([_site_delivery_row(m, held_back) for m in manifests],
                         schema=SITE_DELIVERY_SCHEMA)
    newest = (
        pl.col("delivery_id").filter(pl.col("status") == "landed").max().over("site_id")
    )
    status = (
        pl.when(pl.col("status") == REJECTED).then(pl.lit(REJECTED))
        .when(pl.col("delivery_id") == newest).then(pl.lit(ACCEPTED))
        .otherwise(pl.lit(SUPERSEDED))
    )
    return frame.with_columns(status.alias("status")).sort("site_id", "delivery_id")


def _site_delivery_row(m: Manifest, held_back: dict[tuple[str, str], str]) -> dict:
    """A manifest as a site_delivery row; a landed one's status is settled by the caller."""
    held = (m.site_id, m.delivery_id) in held_back
    return {
        "site_id": m.site_id,
        "delivery_id": m.delivery_id,
        "status": REJECTED if m.status == REJECTED or held else "landed",
        "reason": held_back.get((m.site_id, m.delivery_id), m.reason),
        "rows_landed": m.rows_landed,
        "rows_quarantined": m.rows_quarantined,
        "source_rows": m.source_rows,
        "content_sha256": m.content_sha256,
        "landed_at": datetime.fromisoformat(m.landed_at).astimezone(UTC),
        "delivery_date": date.fromisoformat(m.delivery_date),
        "dropped_columns": ", ".join(m.dropped_columns) or None,
        "rejected_by": BY_LANDING if m.status == REJECTED else BY_QUALITY_GATE if held else None,
    }


def _create_empty(con: duckdb.DuckDBPyConnection, name: str,
                  schema: dict[str, pl.DataType]) -> None:
    empty = pl.DataFrame(schema=schema)  # noqa: F841  (scanned by DuckDB by name)
    con.execute(f"CREATE TABLE {name} AS SELECT * FROM empty")


def _insert_parquet(con: duckdb.DuckDBPyConnection, name: str, files: list[Path]) -> None:
    if files:
        con.execute(
            f"INSERT INTO {name} BY NAME "
            "SELECT * FROM read_parquet($files, hive_partitioning = false)",
            {"files": [str(f) for f in files]},
        )


def in_force(manifests: list[Manifest],
             held_back: dict[tuple[str, str], str] | None = None) -> dict[str, str]:
    """site → the delivery that will be accepted, given what the gate held back."""
    status = delivery_status(manifests, held_back)
    accepted = status.filter(pl.col("status") == "accepted")
    return dict(accepted.select("site_id", "delivery_id").iter_rows())


#: The tables of schema `quality` that every build writes whole (the small per-run ones);
#: an incremental build drops the published file's before writing this run's.
RUN_TABLES = ("site_delivery", "check_result", "inbox_issue", "refresh_run", "build_scope")
BUILD_SCOPE_SCHEMA: dict[str, pl.DataType] = {"site_id": pl.Utf8(), "build": pl.Utf8(),
                                              "reason": pl.Utf8()}


@dataclass(frozen=True)
class BuildScope:
    """What a build rebuilds: every site (`start_from` None) or, starting from a copy of
    the published file, only `sites` (warehouse/changes.py decides which way and why)."""

    start_from: Path | None = None
    sites: frozenset[str] = frozenset()
    reason: str | None = None  # why the build is full; None for an incremental one

    @property
    def incremental(self) -> bool:
        return self.start_from is not None

    def as_dict(self) -> dict:
        """The summary's `build`: which way the file was built, which sites, and why."""
        return {"mode": "incremental" if self.incremental else "full",
                "sites": sorted(self.sites), "reason": self.reason}

    def describe(self) -> str:
        if not self.incremental:
            return f"full build: {self.reason}"
        count = len(self.sites)
        return (f"incremental build: {count} changed site{'s' * (count != 1)} rebuilt"
                + (f" ({', '.join(sorted(self.sites))})" if 0 < count <= 5 else ""))

    def frame(self, status: pl.DataFrame) -> pl.DataFrame:
        """`quality.build_scope`: one row per site whose rows this build wrote — every site
        of a full build, the changed ones (removed ones included) of an incremental one.
        The incremental dbt models rebuild these sites' rows (macros/rebuilt_sites.sql)."""
        sites = sorted(self.sites) if self.incremental else sorted(set(status["site_id"]))
        return pl.DataFrame(
            {"site_id": sites, "build": ["incremental" if self.incremental else "full"]
             * len(sites), "reason": [self.reason] * len(sites)},
            schema=BUILD_SCOPE_SCHEMA)


def build_database(path: Path, warehouse: Path, manifests: list[Manifest], run: RunInfo,
                   held_back: dict[tuple[str, str], str] | None = None,
                   check_results: pl.DataFrame | None = None,
                   inbox_issues: list[tuple[str, str]] | None = None,
                   scope: BuildScope | None = None) -> pl.DataFrame:
    """Write schemas `landed` and `quality` into a new DuckDB file; return site_delivery.

    `inbox_issues`: (folder, reason) of the inbox folders that could not be read as sites,
    kept as `quality.inbox_issue` for `ivig status` and the analysts. `scope`: a full
    build (default) writes every site's rows into an empty file; an incremental one copies
    the published file and replaces the rows of `scope.sites` only: a site's landed rows
    come from its accepted delivery and its quarantine from its landed ones, and neither
    depends on another site, so the result equals a full build's.
    """
    scope = scope or BuildScope()
    status = delivery_status(manifests, held_back)
    rebuilt = status if not scope.incremental else status.filter(
        pl.col("site_id").is_in(sorted(scope.sites)))
    landed_dirs = [
        delivery_dir(warehouse, row["site_id"], row["delivery_id"])
        for row in rebuilt.filter(pl.col("status") != "rejected").iter_rows(named=True)
    ]
    accepted_dirs = [
        delivery_dir(warehouse, s, d) for s, d in
        rebuilt.filter(pl.col("status") == "accepted").select("site_id", "delivery_id").iter_rows()
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    if scope.incremental:
        from ivig_platform.warehouse.lake import export_published
        from ivig_platform.warehouse.reader import lake_for

        lake = lake_for(scope.start_from)
        if lake is None:
            shutil.copyfile(scope.start_from, path)
        else:  # the published snapshot, written out as a file (warehouse/lake.py)
            export_published(lake, path)
    con = duckdb.connect(str(path))
    try:
        if scope.incremental:
            _clear_sites(con, scope.sites)
        else:
            con.execute("CREATE SCHEMA landed; CREATE SCHEMA quality;")
            for table in TABLES:
                _create_empty(con, f"landed.{table}", landed_schema(table))
            _create_empty(con, "quality.quarantine", QUARANTINE)
        for table in TABLES:
            _insert_parquet(con, f"landed.{table}", [d / f"{table}.parquet" for d in accepted_dirs])
        _insert_parquet(con, "quality.quarantine", [d / "quarantine.parquet" for d in landed_dirs])
        _create_from_frame(con, "quality.site_delivery", status)
        if check_results is not None:
            _create_from_frame(con, "quality.check_result", check_results)
        issues = pl.DataFrame(inbox_issues or [], schema=INBOX_ISSUE_SCHEMA, orient="row")
        _create_from_frame(con, "quality.inbox_issue", issues)
        _create_from_frame(con, "quality.build_scope", scope.frame(status))
        con.execute(
            "CREATE TABLE quality.refresh_run AS SELECT $run_id AS run_id, "
            "$started::TIMESTAMPTZ AS started_at, now() AS built_at, $inbox AS inbox, "
            "$key AS key_fingerprint",
            {"run_id": run.run_id, "started": run.started_at, "inbox": run.inbox,
             "key": run.key_fingerprint},
        )
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return status


def _clear_sites(con: duckdb.DuckDBPyConnection, sites: frozenset[str]) -> None:
    """The copied file without the rebuilt sites' rows and without the last run's tables."""
    for table in RUN_TABLES:
        con.execute(f"DROP TABLE IF EXISTS quality.{table}")
    for name in [*(f"landed.{t}" for t in TABLES), "quality.quarantine"]:
        con.execute(f"DELETE FROM {name} WHERE list_contains($sites::VARCHAR[], site_id)",
                    {"sites": sorted(sites)})


def _create_from_frame(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> None:
    con.register("frame_to_write", frame)
    try:
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame_to_write")
    finally:
        con.unregister("frame_to_write")
