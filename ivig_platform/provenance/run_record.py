"""The run record: what a published file was made from, by what, and what came out.

One row per published run in `quality.run_record` (the record of every earlier published
run is kept: `WAREHOUSE/audit/run_records.jsonl`, appended after each publish under the
run lock and copied into each build), and the same as a Prefect artifact:

* inputs: every delivery the run saw, with its content hash and status;
* code: the package version, and the git commit when the package runs from a checkout
  (with `git_dirty`: tracked files differ from the commit; untracked files do not count,
  so a demo folder inside the checkout does not make every run "dirty");
* the protocol: its version and fingerprint, the contract's, and each plan's;
* the versions of Python, DuckDB, dbt (core and duckdb adapter), GX, Prefect, Polars;
* the run's parameters (the flow's, as Prefect passed them);
* outputs: each table of `marts` with its row count and an order-independent SHA-256:
  of the rows as DuckDB writes them as text (`CAST(row AS VARCHAR)`, which names every
  column), sorted, one a line. Two files with the same rows in another order have the
  same hash; a changed value, column or column name changes it. The text form of a
  value is DuckDB's, so a hash is comparable between runs of one DuckDB version.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

RECORDS_FILE = "run_records.jsonl"
PACKAGE = "ivig-platform"
LIBRARIES = {
    "duckdb": "duckdb", "dbt-core": "dbt-core", "dbt-duckdb": "dbt-duckdb",
    "great_expectations": "great-expectations", "prefect": "prefect", "polars": "polars",
}
NAMED_TEXT = pl.List(pl.Struct({"name": pl.Utf8(), "value": pl.Utf8()}))
RECORD_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.Utf8(),
    "started_at": pl.Datetime("us", "UTC"),
    "recorded_at": pl.Datetime("us", "UTC"),
    "package_version": pl.Utf8(),
    "git_commit": pl.Utf8(),
    "git_dirty": pl.Boolean(),
    "protocol_version": pl.Utf8(),
    "protocol_fingerprint": pl.Utf8(),
    "contract_version": pl.Utf8(),
    "contract_fingerprint": pl.Utf8(),
    "plans": pl.List(pl.Struct({"version": pl.Utf8(), "fingerprint": pl.Utf8()})),
    "versions": NAMED_TEXT,
    "parameters": NAMED_TEXT,
    "inputs": pl.List(pl.Struct({"site_id": pl.Utf8(), "delivery_id": pl.Utf8(),
                                 "content_sha256": pl.Utf8(), "status": pl.Utf8()})),
    "outputs": pl.List(pl.Struct({"table_name": pl.Utf8(), "rows": pl.Int64(),
                                  "sha256": pl.Utf8()})),
}


def records_path(warehouse: Path) -> Path:
    from ivig_platform.provenance.audit import AUDIT_DIR

    return Path(warehouse) / AUDIT_DIR / RECORDS_FILE


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=10, check=False, env={**os.environ, "LC_ALL": "C"})
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_version() -> dict[str, Any]:
    """The package version; the commit and dirtiness of the checkout it runs from, if any.

    Only a checkout whose top level is the package's own folder counts: a wheel installed
    into some other repository's virtualenv must not report that repository's commit.
    """
    try:
        version = importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        version = None
    root = Path(__file__).resolve().parents[2]
    top = _git(root, "rev-parse", "--show-toplevel")
    commit = dirty = None
    if top is not None and Path(top).resolve() == root:
        commit = _git(root, "rev-parse", "HEAD")
        status = _git(root, "status", "--porcelain", "--untracked-files=no")
        dirty = None if status is None else bool(status)
    return {"package_version": version, "git_commit": commit, "git_dirty": dirty}


def library_versions() -> list[dict[str, str]]:
    versions = [{"name": "python", "value": platform.python_version()}]
    for name, distribution in LIBRARIES.items():
        try:
            versions.append({"name": name, "value": importlib.metadata.version(distribution)})
        except importlib.metadata.PackageNotFoundError:
            versions.append({"name": name, "value": "not installed"})
    return versions


def protocol_identity() -> dict[str, Any]:
    from ivig_platform.protocol import plan_fingerprint
    from ivig_platform.protocol.in_force import protocol_in_force

    # the run's protocol (with its --plan files), not the repository's: the record says
    # which plans the marts were computed under
    protocol = protocol_in_force()
    return {
        "protocol_version": protocol.version,
        "protocol_fingerprint": protocol.fingerprint,
        "contract_version": protocol.contract_version,
        "contract_fingerprint": protocol.contract_fingerprint,
        "plans": [{"version": p.version, "fingerprint": plan_fingerprint(p)}
                  for p in protocol.plans],
    }


def table_hashes(con: duckdb.DuckDBPyConnection, schema: str = "marts") -> list[dict]:
    """Each table of `schema`: rows and the order-independent SHA-256 of its rows."""
    names = [n for (n,) in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $schema "
        "AND table_type = 'BASE TABLE' ORDER BY table_name", {"schema": schema}).fetchall()]
    out = []
    for name in names:
        rows, digest = con.execute(
            "SELECT count(*), sha256(coalesce(string_agg(r, chr(10) ORDER BY r), '')) "
            f'FROM (SELECT CAST(t AS VARCHAR) AS r FROM "{schema}"."{name}" AS t)'
        ).fetchone()
        out.append({"table_name": f"{schema}.{name}", "rows": rows, "sha256": digest})
    return out


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def run_record(run_id: str, started_at: datetime, inputs: Iterable[dict],
               parameters: dict[str, Any], outputs: list[dict],
               now: datetime | None = None) -> dict[str, Any]:
    """The record of one run (JSON-ready: times as ISO text)."""
    return {
        "run_id": run_id,
        "started_at": started_at.astimezone(UTC).isoformat(),
        "recorded_at": (now or datetime.now(UTC)).astimezone(UTC).isoformat(),
        **code_version(),
        **protocol_identity(),
        "versions": library_versions(),
        "parameters": [{"name": k, "value": _text(v)} for k, v in sorted(parameters.items())],
        "inputs": sorted(inputs, key=lambda i: (i["site_id"], i["delivery_id"])),
        "outputs": outputs,
    }


def read_records(warehouse: Path) -> list[dict]:
    """Every published run's record, oldest first."""
    from ivig_platform.provenance.audit import read_jsonl

    return read_jsonl(records_path(warehouse))


def append_record(warehouse: Path, record: dict) -> None:
    from ivig_platform.provenance.audit import append_jsonl

    append_jsonl(records_path(warehouse), [record])


def records_frame(records: Iterable[dict]) -> pl.DataFrame:
    rows = [{**r, "started_at": datetime.fromisoformat(r["started_at"]),
             "recorded_at": datetime.fromisoformat(r["recorded_at"])} for r in records]
    return pl.DataFrame(rows, schema=RECORD_SCHEMA, orient="row") if rows else pl.DataFrame(
        schema=RECORD_SCHEMA)


def write_record_table(con: duckdb.DuckDBPyConnection, records: list[dict]) -> None:
    """`quality.run_record`: the earlier published runs' records and this run's (last)."""
    frame = records_frame(records)  # noqa: F841  (scanned by name)
    con.execute("CREATE OR REPLACE TABLE quality.run_record AS SELECT * FROM frame "
                "ORDER BY recorded_at")


def record_markdown(record: dict) -> str:
    """The run record as the Prefect artifact shows it."""
    plans = ", ".join(f"{p['version']} ({p['fingerprint'][:12]})" for p in record["plans"])
    commit = record["git_commit"] or "not a git checkout"
    if record["git_commit"] and record["git_dirty"]:
        commit += " (uncommitted changes)"
    lines = [
        f"# Run record {record['run_id']}", "",
        f"- code: ivig-platform {record['package_version']}, commit {commit}",
        f"- protocol {record['protocol_version']} ({record['protocol_fingerprint'][:12]}); "
        f"contract {record['contract_version']} ({record['contract_fingerprint'][:12]}); "
        f"plans {plans}",
        "- versions: " + ", ".join(f"{v['name']} {v['value']}" for v in record["versions"]),
        "- parameters: " + ", ".join(f"{p['name']}={p['value']}" for p in record["parameters"]),
        "", "## Inputs", "", "| site | delivery | status | content SHA-256 |", "|---|---|---|---|",
        *(f"| {i['site_id']} | {i['delivery_id']} | {i['status']} | {i['content_sha256']} |"
          for i in record["inputs"]),
        "", "## Outputs", "", "| table | rows | SHA-256 (rows in any order) |", "|---|---|---|",
        *(f"| {o['table_name']} | {o['rows']} | {o['sha256']} |" for o in record["outputs"]),
    ]
    return "\n".join(lines)
