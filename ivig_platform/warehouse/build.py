"""Building the analysts' DuckDB file from the landed Parquet.

The refresh never writes into the published file: it builds a new one under
`WAREHOUSE/.build/`, and `publish` renames it into place (protocol §8: published
atomically, openable read-only while a refresh runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl

from ivig_platform.landing.contract import TABLES
from ivig_platform.landing.land import Manifest, delivery_dir
from ivig_platform.landing.schema import QUARANTINE, landed_schema

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
    rejected with the gate's reason, so the site's previous delivery stays in force.
    """
    held_back = held_back or {}
    rows = [
        {
            "site_id": m.site_id,
            "delivery_id": m.delivery_id,
            "status": "rejected"
            if m.status == "rejected" or (m.site_id, m.delivery_id) in held_back
            else "landed",
            "reason": held_back.get((m.site_id, m.delivery_id), m.reason),
            "rows_landed": m.rows_landed,
            "rows_quarantined": m.rows_quarantined,
            "source_rows": m.source_rows,
            "content_sha256": m.content_sha256,
            "landed_at": datetime.fromisoformat(m.landed_at).astimezone(UTC),
            "delivery_date": date.fromisoformat(m.delivery_date),
            "dropped_columns": ", ".join(m.dropped_columns) or None,
        }
        for m in manifests
    ]
    frame = pl.DataFrame(rows, schema=SITE_DELIVERY_SCHEMA)
    newest = (
        pl.col("delivery_id").filter(pl.col("status") == "landed").max().over("site_id")
    )
    status = (
        pl.when(pl.col("status") == "rejected").then(pl.lit("rejected"))
        .when(pl.col("delivery_id") == newest).then(pl.lit("accepted"))
        .otherwise(pl.lit("superseded"))
    )
    return frame.with_columns(status.alias("status")).sort("site_id", "delivery_id")


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


def build_database(path: Path, warehouse: Path, manifests: list[Manifest], run: RunInfo,
                   held_back: dict[tuple[str, str], str] | None = None,
                   check_results: pl.DataFrame | None = None,
                   inbox_issues: list[tuple[str, str]] | None = None) -> pl.DataFrame:
    """Write schemas `landed` and `quality` into a new DuckDB file; return site_delivery.

    `inbox_issues`: (folder, reason) of the inbox folders that could not be read as sites,
    kept as `quality.inbox_issue` for `ivig status` and the analysts.
    """
    status = delivery_status(manifests, held_back)
    accepted = status.filter(pl.col("status") == "accepted")
    landed_dirs = [
        delivery_dir(warehouse, row["site_id"], row["delivery_id"])
        for row in status.filter(pl.col("status") != "rejected").iter_rows(named=True)
    ]
    accepted_dirs = [
        delivery_dir(warehouse, s, d)
        for s, d in accepted.select("site_id", "delivery_id").iter_rows()
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA landed; CREATE SCHEMA quality;")
        for table in TABLES:
            _create_empty(con, f"landed.{table}", landed_schema(table))
            _insert_parquet(con, f"landed.{table}", [d / f"{table}.parquet" for d in accepted_dirs])
        _create_empty(con, "quality.quarantine", QUARANTINE)
        _insert_parquet(con, "quality.quarantine", [d / "quarantine.parquet" for d in landed_dirs])
        con.register("site_delivery_frame", status)
        con.execute("CREATE TABLE quality.site_delivery AS SELECT * FROM site_delivery_frame")
        con.unregister("site_delivery_frame")
        if check_results is not None:
            con.register("check_result_frame", check_results)
            con.execute("CREATE TABLE quality.check_result AS SELECT * FROM check_result_frame")
            con.unregister("check_result_frame")
        issues = pl.DataFrame(inbox_issues or [], schema=INBOX_ISSUE_SCHEMA, orient="row")
        con.register("inbox_issue_frame", issues)
        con.execute("CREATE TABLE quality.inbox_issue AS SELECT * FROM inbox_issue_frame")
        con.unregister("inbox_issue_frame")
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
