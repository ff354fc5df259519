"""The floor: DuckDB alone reading every CSV/XLSX file of an inbox into tables, one process.

Usage: python -m benchmarks._floor_child INBOX DATABASE SUMMARY_JSON
                                          [--xlsx auto|extension|fastexcel]

Every file of every delivery becomes one table in a fresh on-disk DuckDB file (all columns
as text, the way landing reads them). CSV: the delimiter is taken from the header line
(`,`, `;` or tab, protocol §4); the encoding is UTF-8 (DuckDB skips a BOM) or, when the
bytes are not valid UTF-8, Latin-1 (DuckDB's built-in stand-in for Windows-1252, which needs
the non-bundled `encodings` extension). Rows with the wrong number of fields are skipped
(`ignore_errors`), as landing quarantines them. XLSX: DuckDB's `excel` extension
(`read_xlsx`, all_varchar) when it can be loaded offline — from the
`duckdb-extension-excel` wheel if installed, else an already-installed `excel` extension —
otherwise fastexcel (calamine) into Arrow, handed to DuckDB. Which one was used is part of
the summary (`xlsx_reader`).

The time that counts as the floor is `load_seconds`: from the first file to the last
CHECKPOINT, after Python and DuckDB are imported. The harness also times the whole process.
"""

from __future__ import annotations

import re
import sys
import time
import zipfile
from pathlib import Path

from benchmarks._summary import write_summary

T0 = time.perf_counter()

TABLES = ("patients", "ivig_cycles", "treatments", "assessments", "adverse_events")


def sniff_delimiter(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(65536).split(b"\n", 1)[0]
    counts = {d: head.count(d.encode()) for d in ("\t", ";", ",")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def detect_encoding(path: Path) -> str:
    """UTF-8 if the bytes decode as UTF-8, else Latin-1 (see the module docstring).

    Decided before DuckDB reads the file: with `ignore_errors`, DuckDB would skip every
    line with invalid UTF-8 instead of failing, so a failed read cannot be the test.
    """
    try:
        path.read_bytes().decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        return "latin-1"


def xlsx_sheets(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        workbook = zf.read("xl/workbook.xml").decode("utf-8", "replace")
    return re.findall(r'<sheet [^>]*name="([^"]+)"', workbook)


def excel_extension_path() -> str | None:
    """The extension file shipped in the `duckdb-extension-excel` wheel, if installed."""
    try:
        import importlib.resources as resources

        import duckdb

        root = resources.files("duckdb_extension_excel") / "extensions" / f"v{duckdb.__version__}"
        candidate = root / "excel.duckdb_extension"
        return str(candidate) if candidate.is_file() else None
    except (ImportError, ModuleNotFoundError, FileNotFoundError):
        return None


def load_excel(con, mode: str) -> str:
    """'extension' when read_xlsx is usable, else 'fastexcel'."""
    if mode == "fastexcel":
        return "fastexcel"
    for statement in filter(None, [
        f"LOAD '{excel_extension_path()}'" if excel_extension_path() else None,
        "LOAD excel",
    ]):
        try:
            con.execute(statement)
            return "extension"
        except Exception:  # noqa: BLE001 - not available offline: try the next way
            continue
    if mode == "extension":
        raise SystemExit("the DuckDB excel extension cannot be loaded offline")
    return "fastexcel"


def quote(text: str) -> str:
    return text.replace("'", "''")


def main(argv: list[str]) -> int:
    inbox, database, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    mode = argv[argv.index("--xlsx") + 1] if "--xlsx" in argv else "auto"
    import duckdb

    imported = time.perf_counter() - T0
    database.unlink(missing_ok=True)
    con = duckdb.connect(str(database))
    started = time.perf_counter()
    xlsx_reader = load_excel(con, mode)
    extension_seconds = time.perf_counter() - started
    rows: dict[str, int] = dict.fromkeys(TABLES, 0)
    stats = {"csv_files": 0, "csv_latin1": 0, "xlsx_files": 0, "csv_seconds": 0.0,
             "xlsx_seconds": 0.0, "tables": 0}
    n = 0
    for site in sorted(p for p in inbox.iterdir() if p.is_dir()):
        for delivery in sorted(p for p in site.iterdir() if p.is_dir()):
            for path in sorted(p for p in delivery.iterdir() if p.is_file()):
                suffix = path.suffix.lower()
                t0 = time.perf_counter()
                if suffix == ".csv":
                    table = path.stem.lower()
                    name = f"t{n}"
                    n += 1
                    delimiter = sniff_delimiter(path)
                    encoding = detect_encoding(path)
                    stats["csv_latin1"] += encoding == "latin-1"
                    con.execute(
                        f"CREATE TABLE {name} AS SELECT * FROM read_csv("
                        f"'{quote(str(path))}', delim='{quote(delimiter)}', header=true, "
                        f"all_varchar=true, encoding='{encoding}', quote='\"', "
                        "ignore_errors=true)"
                    )
                    if table in rows:
                        rows[table] += con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
                    stats["csv_files"] += 1
                    stats["tables"] += 1
                    stats["csv_seconds"] += time.perf_counter() - t0
                elif suffix == ".xlsx":
                    for sheet in xlsx_sheets(path):
                        name = f"t{n}"
                        n += 1
                        if xlsx_reader == "extension":
                            con.execute(
                                f"CREATE TABLE {name} AS SELECT * FROM read_xlsx("
                                f"'{quote(str(path))}', sheet='{quote(sheet)}', header=true, "
                                "all_varchar=true, ignore_errors=true)"
                            )
                        else:
                            import fastexcel

                            arrow = (fastexcel.read_excel(str(path))
                                     .load_sheet_by_name(sheet, dtypes="string").to_arrow())
                            con.register("sheet_arrow", arrow)
                            con.execute(f"CREATE TABLE {name} AS SELECT * FROM sheet_arrow")
                            con.unregister("sheet_arrow")
                        key = sheet.strip().lower()
                        if key in rows:
                            rows[key] += con.execute(
                                f"SELECT count(*) FROM {name}").fetchone()[0]
                        stats["tables"] += 1
                    stats["xlsx_files"] += 1
                    stats["xlsx_seconds"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    con.execute("CHECKPOINT")
    checkpoint_seconds = time.perf_counter() - t0
    load_seconds = time.perf_counter() - started
    con.close()
    summary = {
        "load_seconds": load_seconds,
        "import_seconds": imported,
        "extension_load_seconds": extension_seconds,
        "checkpoint_seconds": checkpoint_seconds,
        "xlsx_reader": xlsx_reader,
        "duckdb_version": duckdb.__version__,
        "rows": rows,
        "rows_total": sum(rows.values()),
        "database_mb": database.stat().st_size / 2**20,
        **stats,
    }
    database.unlink(missing_ok=True)
    Path(str(database) + ".wal").unlink(missing_ok=True)
    write_summary(out, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
