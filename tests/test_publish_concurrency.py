"""An analyst's open read-only connection never blocks a publish and never sees it (§8).

A reader in another process opens the published file, reads, and keeps the connection
open while the next warehouse file is built and published; then it reads a table it has
not touched before. It must still get the old data (it holds the old file), while a new
connection gets the new data.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ivig_platform.warehouse.publish import build_path, publish, published_path

pytestmark = pytest.mark.timeout(120)

OLD_ROWS, NEW_ROWS = 150_000, 90_000

# Reads a snapshot, says so, waits for a line on stdin, reads again over the same
# connection. The second read is of `detail`, which the first never touched, so its pages
# must come from the file the connection holds, not from DuckDB's buffer cache.
READER = r"""
import json, sys
import duckdb

con = duckdb.connect(sys.argv[1], read_only=True)

def one(sql):
    return con.execute(sql).fetchone()[0]

print(json.dumps({"mark": one("SELECT mark FROM meta")}), flush=True)
sys.stdin.readline()
print(json.dumps({
    "mark": one("SELECT mark FROM meta"),
    "rows": one("SELECT count(*) FROM detail"),
    "total": one("SELECT sum(v) FROM detail"),
}), flush=True)
con.close()
"""


def build_warehouse_file(warehouse: Path, mark: str, rows: int) -> Path:
    """A small warehouse-like file: `meta.mark` and `detail` with `rows` rows, checkpointed."""
    built = build_path(warehouse, mark)
    built.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(built))
    con.execute("CREATE TABLE meta AS SELECT ? AS mark", [mark])
    con.execute(
        "CREATE TABLE detail AS SELECT i AS v, repeat(?, 20) AS pad FROM range(?) t(i)",
        [mark, rows],
    )
    con.execute("CHECKPOINT")
    con.close()
    return built


def expected(rows: int) -> tuple[int, int]:
    return rows, rows * (rows - 1) // 2


def read_line(reader: subprocess.Popen) -> dict:
    line = reader.stdout.readline()
    if not line:
        raise AssertionError(f"reader exited early: {reader.stderr.read()}")
    return json.loads(line)


def test_open_reader_keeps_old_data_while_publish_swaps_in_new(tmp_path: Path):
    warehouse = tmp_path / "warehouse"
    publish(build_warehouse_file(warehouse, "old", OLD_ROWS), warehouse)
    target = published_path(warehouse)

    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(target)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert read_line(reader) == {"mark": "old"}  # connection open, file read

        # The whole refresh's file work while the reader holds the published file open.
        built = build_warehouse_file(warehouse, "new", NEW_ROWS)
        assert publish(built, warehouse) == target
        assert reader.poll() is None, "the reader must still be connected"

        fresh = duckdb.connect(str(target), read_only=True)
        try:
            assert fresh.execute("SELECT mark FROM meta").fetchone()[0] == "new"
            assert fresh.execute("SELECT count(*), sum(v) FROM detail").fetchone() == expected(
                NEW_ROWS
            )
        finally:
            fresh.close()

        reader.stdin.write("published\n")
        reader.stdin.flush()
        after = read_line(reader)
        assert after["mark"] == "old"
        assert (after["rows"], after["total"]) == expected(OLD_ROWS)
        assert reader.wait(timeout=30) == 0, reader.stderr.read()
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
        for stream in (reader.stdin, reader.stdout, reader.stderr):
            stream.close()

    assert not built.exists()  # renamed into place, no build file left behind
    assert not target.with_name(target.name + ".wal").exists()
