"""`ivig sql`: the analysts' way into the published file with what the set-up installs.

DuckDB's Python package has no shell of its own and the platform installs no `duckdb`
executable, so this is a small one over a read-only connection: one query printed as
DuckDB prints it (its box table, fitted to the terminal), or exported whole to CSV or
Parquet, or a prompt that runs statements until `.quit`. The connection is read-only:
a refresh publishes by rename and is never blocked, and nothing can change the record.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import TextIO

import duckdb

PROMPT = "ivig> "
CONTINUE = "  ..> "
HELP = """\
Statements end with ';' and may span lines. Commands:
  .tables          the tables and views of the file, by schema
  .help            this text
  .quit  .exit     leave (or Ctrl-D)
The file is open read-only: statements that would change it are refused."""
TABLES = ("SELECT table_schema || '.' || table_name AS \"table\", table_type AS type "
          "FROM information_schema.tables WHERE table_catalog = current_database() "
          "ORDER BY table_schema, table_name")


class SqlError(Exception):
    """A statement DuckDB refused or could not run; the message is DuckDB's."""


def open_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    try:
        from ivig_platform.warehouse.lake import LakeError
        from ivig_platform.warehouse.reader import open_read_only as open_published

        return open_published(path)
    except (duckdb.Error, LakeError) as exc:
        raise SqlError(f"cannot open {path} read-only: {exc}") from exc


def _relation(con: duckdb.DuckDBPyConnection, query: str) -> duckdb.DuckDBPyRelation | None:
    try:
        return con.sql(query)
    except duckdb.Error as exc:
        raise SqlError(str(exc)) from exc


def run_query(con: duckdb.DuckDBPyConnection, query: str, *, max_rows: int = 40,
              width: int | None = None) -> None:
    """Print the result of `query` (every statement in it runs; the last one's result
    is shown) as DuckDB's table, at most `max_rows` rows, fitted to `width` columns."""
    relation = _relation(con, query)
    if relation is None:  # a statement without a result (SET, PRAGMA ...)
        print("ok", flush=True)
        return
    try:
        relation.show(max_width=width or shutil.get_terminal_size().columns, max_rows=max_rows)
    except duckdb.Error as exc:
        raise SqlError(str(exc)) from exc
    sys.stdout.flush()


def export(con: duckdb.DuckDBPyConnection, query: str, out: Path, fmt: str) -> int:
    """Write the whole result of `query` to `out` (csv with a header, or parquet);
    return its number of rows."""
    relation = _relation(con, query)
    if relation is None:
        raise SqlError("the query returns no result to export")
    try:
        if fmt == "csv":
            relation.write_csv(str(out), header=True)
        else:
            relation.write_parquet(str(out))
        return int(relation.aggregate("count(*)").fetchone()[0])
    except duckdb.Error as exc:
        raise SqlError(str(exc)) from exc


def shell(con: duckdb.DuckDBPyConnection, path: Path, stdin: TextIO | None = None) -> int:
    """Run statements from a prompt (a terminal) or from `stdin` until the end or `.quit`.

    Returns the exit code: 0, or 1 when a statement read from a pipe failed (a script
    should notice); at a prompt an error is shown and the prompt comes back.
    """
    stdin = stdin or sys.stdin
    interactive = stdin.isatty()
    if interactive:
        import readline  # noqa: F401  (line editing and history for input())

        print(f"{path} (read-only). .help for help, .quit to leave.")
    failed = False
    buffer: list[str] = []
    while True:
        line = _read(stdin, interactive, CONTINUE if buffer else PROMPT)
        if line is None:
            break
        stripped = line.strip()
        if not buffer and stripped.startswith("."):
            if stripped in (".quit", ".exit"):
                break
            failed |= not _dot_command(con, stripped)
            continue
        if not stripped and not buffer:
            continue
        buffer.append(line)
        if stripped.endswith(";"):
            failed |= not _run_shown(con, "\n".join(buffer))
            buffer = []
    if buffer and "".join(buffer).strip():
        failed |= not _run_shown(con, "\n".join(buffer))
    return 1 if failed and not interactive else 0


def _read(stdin: TextIO, interactive: bool, prompt: str) -> str | None:
    if interactive:
        try:
            return input(prompt)
        except EOFError:
            print()
            return None
    line = stdin.readline()
    return None if line == "" else line.rstrip("\n")


def _dot_command(con: duckdb.DuckDBPyConnection, command: str) -> bool:
    if command == ".help":
        print(HELP)
        return True
    if command == ".tables":
        return _run_shown(con, TABLES, max_rows=1000)
    print(f"error: unknown command {command} (.help lists them)", file=sys.stderr)
    return False


def _run_shown(con: duckdb.DuckDBPyConnection, query: str, max_rows: int = 40) -> bool:
    try:
        run_query(con, query, max_rows=max_rows)
    except SqlError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return False
    return True
