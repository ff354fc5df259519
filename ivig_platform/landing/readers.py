"""Reading one delivery's files into string frames with canonical column names.

Hospitals send CSV in three dialects and encodings, or one XLSX workbook (protocol §2, §4).
The reader finds the dialect per file, maps each header to its contract column, and hands
back every data record as text — typing is the rule checker's job, so a bad value becomes
a quarantined row and not a reader crash. A delivery the reader cannot use at all raises
`DeliveryRejected` with the reason recorded for the site.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ivig_platform.landing.contract import (
    REJECTION_CODES,
    LandingContract,
    Table,
    landing_contract,
)
from ivig_platform.landing.parsing import NumberStyle, fold_header
from ivig_platform.landing.xlsx_cells import sheet_cells, sheet_parts

#: The workbook of the repository protocol (a contract in force may name another).
XLSX_NAME = landing_contract().xlsx_name
SOURCE_ROW = "_source_row"
# Prefix of the hidden columns holding, per row, the formula of a cell without a value.
FORMULA = "__formula_"


class DeliveryRejected(Exception):
    """The delivery cannot be used as a whole (protocol §2); `code` is machine-readable."""

    def __init__(self, code: str, message: str):
        if code not in REJECTION_CODES:
            raise ValueError(f"undocumented rejection code {code!r} (contract.REJECTION_CODES)")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class RawTable:
    """One table of a delivery as the hospital wrote it, columns renamed to the contract."""

    name: str
    # Canonical column names, all Utf8, plus `_source_row` (1-based); XLSX tables also
    # `__formula_<column>` where a formula cell has no value.
    frame: pl.DataFrame
    source_file: str
    file_sha256: str
    number_style: NumberStyle
    dialect: str
    malformed_rows: list[int] = field(default_factory=list)
    dropped_columns: list[str] = field(default_factory=list)

    @property
    def source_rows(self) -> int:
        return self.frame.height + len(self.malformed_rows)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def map_columns(table: Table, headers: list[str], source: str) -> tuple[dict[int, str], list[str]]:
    """Position → contract column, and the names of the columns that will be dropped.

    Unknown columns are dropped unread (they often hold names or national IDs, §3); their
    names — never their values — are reported. Two headers meaning the same column make
    the file ambiguous, and a missing required column makes it unusable.
    """
    lookup: dict[str, str] = {}
    for column in table.columns:
        for spelling in (column.name, *column.aliases):
            lookup[fold_header(spelling)] = column.name
    mapping: dict[int, str] = {}
    dropped: list[str] = []
    seen: dict[str, str] = {}
    for position, header in enumerate(headers):
        canonical = lookup.get(fold_header(header))
        if canonical is None:
            if header.strip():
                dropped.append(header.strip())
            continue
        if canonical in seen:
            raise DeliveryRejected(
                "ambiguous_column",
                f"{source}: columns {seen[canonical]!r} and {header.strip()!r} both mean "
                f"{canonical}",
            )
        seen[canonical] = header.strip()
        mapping[position] = canonical
    missing = [c.name for c in table.columns if c.required and c.name not in seen]
    if missing:
        raise DeliveryRejected(
            "missing_column", f"{source}: required column(s) missing: {', '.join(missing)}"
        )
    return mapping, dropped


def _frame(table: Table, mapping: dict[int, str], rows: list[list[str]],
           numbers: list[int]) -> pl.DataFrame:
    data: dict[str, list[str | None]] = {
        name: [row[pos] for row in rows] for pos, name in mapping.items()
    }
    frame = pl.DataFrame(data, schema={name: pl.Utf8 for name in data})
    missing = [c.name for c in table.columns if c.name not in data]
    frame = frame.with_columns(
        *(pl.lit(None, dtype=pl.Utf8).alias(name) for name in missing),
        pl.Series(SOURCE_ROW, numbers, dtype=pl.Int32),
    )
    return frame.select([c.name for c in table.columns] + [SOURCE_ROW])


def decode(raw: bytes, source: str) -> tuple[str, str]:
    """UTF-8 with or without BOM, else Windows-1252 (§4); the encoding name is reported."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DeliveryRejected(
            "unreadable_file", f"{source}: UTF-16 text; send UTF-8 or Windows-1252 (§4)"
        )
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
        encoding = "utf-8-sig"
    else:
        encoding = "utf-8"
    try:
        return raw.decode("utf-8"), encoding
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), "windows-1252"
    except UnicodeDecodeError as exc:
        raise DeliveryRejected(
            "unreadable_file", f"{source}: neither UTF-8 nor Windows-1252 ({exc.reason})"
        ) from None


def sniff_delimiter(header_line: str) -> str:
    """The delimiter is the one the header line uses most (`,`, `;` or tab, §4)."""
    counts = {d: header_line.count(d) for d in ("\t", ";", ",")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def read_csv_table(table: Table, path: Path) -> RawTable:
    source = path.name
    text, encoding = decode(path.read_bytes(), source)
    first_line = re.split(r"\r\n?|\n", text, maxsplit=1)[0]  # CR alone ends a line too
    delimiter = sniff_delimiter(first_line)
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise DeliveryRejected("unreadable_file", f"{source}: not a CSV file ({exc})") from None
    records = [r for r in records if r]  # blank lines are not records
    if not records:
        raise DeliveryRejected("unreadable_file", f"{source}: the file is empty (no header)")
    headers, body = records[0], records[1:]
    mapping, dropped = map_columns(table, headers, source)
    good: list[list[str]] = []
    numbers: list[int] = []
    malformed: list[int] = []
    width = len(headers)
    for number, row in enumerate(body, start=1):
        if len(row) == width:
            good.append(row)
            numbers.append(number)
        else:
            malformed.append(number)
    style: NumberStyle = "spanish" if delimiter == ";" else "dot"
    dialect = {"\t": "tab", ";": "semicolon", ",": "comma"}[delimiter] + f", {encoding}"
    if "\r\n" in text[: len(first_line) + 2]:
        dialect += ", CRLF"
    return RawTable(
        name=table.name,
        frame=_frame(table, mapping, good, numbers),
        source_file=source,
        file_sha256=sha256_file(path),
        number_style=style,
        dialect=dialect,
        malformed_rows=malformed,
        dropped_columns=dropped,
    )


def read_xlsx_tables(path: Path, contract: LandingContract | None = None
                     ) -> dict[str, RawTable]:
    """One sheet per table. Cells are read as text: dates as ISO, numbers with a `.`.

    What the reader shows as empty is checked against the sheet XML (xlsx_cells.py): a
    cell it could not convert (an error value, a date beyond its calendar) gets its raw
    text, judged by the rules as in a CSV; a formula cell without a cached value keeps
    its row (even when nothing else in it has a value) and its formula goes into a hidden
    column `__formula_<column>`, so the rules quarantine the row as
    `formula_without_value` instead of landing a NULL nobody wrote.
    """
    import fastexcel

    source = path.name
    digest = sha256_file(path)
    try:
        reader = fastexcel.read_excel(str(path))
        sheets = {fold_header(name): name for name in reader.sheet_names}
        parts = sheet_parts(path)
    except Exception as exc:  # calamine raises its own error types for corrupt files
        raise DeliveryRejected("unreadable_file", f"{source}: not a readable XLSX ({exc})") \
            from None
    tables: dict[str, RawTable] = {}
    contract = contract or landing_contract()
    for name in contract.table_names:
        table = contract.tables[name]
        sheet = sheets.get(fold_header(name))
        if sheet is None:
            raise DeliveryRejected("missing_table", f"{source}: no sheet named {name!r}")
        try:
            # The header row is read as a row, not by the reader's header logic, which
            # renames a second `patient_id` to `patient_id_1` (then dropped as unknown
            # instead of rejected as ambiguous) and names empty headers `__UNNAMED__n`.
            batch, errors = reader.load_sheet_by_name(sheet, header_row=None,
                                                      dtypes="string").to_arrow_with_errors()
            grid = pl.from_arrow(batch)
        except Exception as exc:
            raise DeliveryRejected(
                "unreadable_file", f"{source}: sheet {sheet!r} cannot be read ({exc})"
            ) from None
        headers = [cell or "" for cell in grid.row(0)] if grid.height else []
        loaded = grid.slice(1)
        mapping, dropped = map_columns(table, headers, f"{source}[{sheet}]")
        unread = [e.offset_position for e in errors.errors if e.offset_position[0] > 0] \
            if errors is not None else []
        try:
            cells = sheet_cells(path, parts.get(sheet), converted=bool(unread))
        except Exception as exc:  # XML the reader took but expat does not
            raise DeliveryRejected(
                "unreadable_file", f"{source}: sheet {sheet!r}'s XML cannot be read ({exc})"
            ) from None
        formulas = [c for c in cells.relative(cells.formulas) if c[1] < len(headers)]
        text = _unread_as_text(loaded.select(pl.all().cast(pl.Utf8)), unread,
                               cells.relative(cells.raw), f"{source}[{sheet}]")
        numbered = _with_formula_rows(
            text.with_row_index(SOURCE_ROW, offset=1)
            .with_columns(pl.col(SOURCE_ROW).cast(pl.Int32)),
            sorted({row for row, _, _ in formulas}),
        )
        missing = [c.name for c in table.columns if c.name not in mapping.values()]
        marks = _formula_columns(formulas, mapping)
        frame = numbered.select(
            *(pl.col(loaded.columns[pos]).alias(canonical) for pos, canonical in mapping.items()),
            *(pl.lit(None, dtype=pl.Utf8).alias(m) for m in missing),
            pl.col(SOURCE_ROW),
        ).select([c.name for c in table.columns] + [SOURCE_ROW])
        if not marks.is_empty():
            frame = frame.join(marks, on=SOURCE_ROW, how="left")
        tables[name] = RawTable(
            name=name,
            frame=frame,
            source_file=f"{source}[{sheet}]",
            file_sha256=digest,
            number_style="dot",
            dialect="xlsx",
            dropped_columns=dropped,
        )
    return tables


def _unread_as_text(frame: pl.DataFrame, unread: list[tuple[int, int]],
                    raw: list[tuple[int, int, str | None]], source: str) -> pl.DataFrame:
    """The cells the reader could not convert (data row, column), as their XML text.

    The reader says which cells these are; the sheet XML (`raw`: every converted cell's
    `<v>`, by data row and column) says what they hold. A cell the XML does not place
    where the reader does means the two disagree on where the table starts: nothing
    would be safe to land from that sheet.
    """
    if not unread:
        return frame
    texts = {(row, col): text for row, col, text in raw}
    by_column: dict[int, list[str | None]] = {}
    for row, col in unread:
        if (row, col) not in texts or not (1 <= row <= frame.height and col < frame.width):
            raise DeliveryRejected(
                "unreadable_file",
                f"{source}: a cell the reader could not convert (data row {row}, column "
                f"{col + 1}) is not where the sheet's XML has it",
            )
        by_column.setdefault(col, [None] * frame.height)[row - 1] = texts[(row, col)]
    return frame.with_columns(
        pl.coalesce(pl.col(frame.columns[col]), pl.Series(values, dtype=pl.Utf8))
        .alias(frame.columns[col])
        for col, values in by_column.items()
    )


def _with_formula_rows(numbered: pl.DataFrame, formula_rows: list[int]) -> pl.DataFrame:
    """Rows with a cell of any kind; rows whose every cell is empty are padding.

    A formula without a value is content the reader cannot see: its row is kept, and
    added when it lies below the last row with a value (where the reader's range ends).
    """
    below = [row for row in formula_rows if row > numbered.height]
    if below:
        numbered = pl.concat(
            [numbered, pl.DataFrame({SOURCE_ROW: below}, schema={SOURCE_ROW: pl.Int32})],
            how="diagonal",
        )
    content = ~pl.all_horizontal(pl.exclude(SOURCE_ROW).is_null())
    return numbered.filter(content | pl.col(SOURCE_ROW).is_in(formula_rows))


def _formula_columns(cells: list[tuple[int, int, str | None]],
                     mapping: dict[int, str]) -> pl.DataFrame:
    """`_source_row` and one `__formula_<column>` per contract column with such cells."""
    by_column: dict[str, dict[int, str]] = {}
    for row, col, text in cells:
        if col in mapping:
            by_column.setdefault(mapping[col], {})[row] = text or "="
    rows = sorted({row for found in by_column.values() for row in found})
    return pl.DataFrame(
        {SOURCE_ROW: rows, **{f"{FORMULA}{column}": [found.get(r) for r in rows]
                              for column, found in by_column.items()}},
        schema={SOURCE_ROW: pl.Int32, **{f"{FORMULA}{c}": pl.Utf8 for c in by_column}},
    )


def read_delivery(folder: Path, contract: LandingContract | None = None
                  ) -> dict[str, RawTable]:
    """All five tables of a delivery folder, from CSV files or one workbook."""
    contract = contract or landing_contract()
    names, workbook = contract.table_names, contract.xlsx_name
    files = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
    csvs = {name: files.get(f"{name}.csv") for name in names}
    xlsx = files.get(workbook.lower())
    if xlsx is not None and any(csvs.values()):
        raise DeliveryRejected(
            "mixed_formats", f"both {workbook} and CSV tables are present; send one or the other"
        )
    if xlsx is not None:
        return read_xlsx_tables(xlsx, contract)
    if not any(csvs.values()):
        raise DeliveryRejected(
            "empty_delivery", f"no {workbook} and none of the table CSVs ({', '.join(names)})"
        )
    missing = [f"{name}.csv" for name, path in csvs.items() if path is None]
    if missing:
        raise DeliveryRejected("missing_table", f"missing {', '.join(missing)}")
    return {name: read_csv_table(contract.tables[name], path)
            for name, path in csvs.items() if path}
