"""Landing under hostile input: whatever arrives ends landed, quarantined or rejected.

Hypothesis feeds landing (a) arbitrary bytes, and mutations of a valid file, as each of
the five CSV files; (b) structured CSVs: headers from the contract's names and aliases in
any case, accents, spacing and invisible characters, extra and missing columns, every
delimiter, encoding and line ending, and cells drawn from a pool of extremes; (c) XLSX
workbooks with random sheets and cells (text, numbers, dates, booleans, error cells,
date cells outside the calendar, formulas with and without a cached value, empty rows,
offsets).

For every input, `land_delivery` returns (only `DeliveryChanged` may escape, and nothing
here changes a file); a rejected delivery's reason starts with one of the documented
codes and wrote no Parquet; a landed one has landed + quarantined = source rows per table
(`assert_counts_add_up`), every quarantine rule in `RULE_ORDER`, no identifier value in
quarantine, and files that match its manifest. The runs are derandomised (the same
examples in every CI run) and bounded to well under a minute together.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
from conftest import BASE, DateSerial, Extract, Formula, assert_counts_add_up, make_delivery
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ivig_platform.landing.contract import (
    CONTRACT,
    REJECTION_CODES,
    RULE_ORDER,
    TABLES,
    VOCABULARIES,
)
from ivig_platform.landing.land import (
    MANIFEST,
    Manifest,
    delivery_dir,
    land_delivery,
    landed_manifests,
)

KEY = b"fuzz-pseudonym-key-0123456789abcdef"
NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
IDENTIFIERS = {c.name for t in CONTRACT.values() for c in t.columns if c.identifier}


def fuzz_settings(examples: int) -> settings:
    """CI's bounded run; `IVIG_FUZZ_SCALE=20` runs twenty times the examples, to hunt."""
    return settings(
        max_examples=examples * int(os.environ.get("IVIG_FUZZ_SCALE", "1")),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.large_base_example],
    )


# --- what every landing must satisfy -------------------------------------------------------


def land_and_check(tables: dict, *, xlsx: bool = False, site: str = "h-fuzz",
                   delivery_id: str = "2026-11-24") -> Manifest:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        delivery = make_delivery(root, site, delivery_id, tables, xlsx=xlsx)
        warehouse = root / "warehouse"
        manifest = land_delivery(delivery, warehouse, KEY, now=NOW)
        folder = delivery_dir(warehouse, site, delivery_id)
        event(manifest.rejection_code or f"landed, {min(manifest.rows_quarantined, 3)}+ "
              "quarantined")  # --hypothesis-show-statistics shows what the examples reach
        if manifest.status == "rejected":
            code, _, message = manifest.reason.partition(": ")
            assert code in REJECTION_CODES, manifest.reason
            assert message.strip(), manifest.reason
            assert sorted(p.name for p in folder.iterdir()) == [MANIFEST]
        else:
            assert manifest.status == "landed"
            assert_counts_add_up(manifest, folder)
            quarantine = pl.read_parquet(folder / "quarantine.parquet")
            assert set(quarantine.get_column("rule")) <= set(RULE_ORDER)
            assert quarantine.filter(
                pl.col("column_name").is_in(IDENTIFIERS) & pl.col("value").is_not_null()
            ).is_empty(), "an identifier's value reached quarantine"
            (recorded,) = landed_manifests(warehouse)
            assert recorded.status == "landed", recorded.reason
        return manifest


def base_csv(table: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(BASE[table])
    return buffer.getvalue()


# --- (a) bytes -----------------------------------------------------------------------------


def mutated(data: bytes) -> st.SearchStrategy[bytes]:
    """A valid file with a few bytes replaced, inserted or cut, mostly below its header
    (a broken header only reaches `missing_column`)."""
    header_end = data.index(b"\n") + 1

    @st.composite
    def build(draw) -> bytes:
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 6))):
            low = header_end if draw(st.integers(0, 4)) else 0
            at = draw(st.integers(min(low, len(out)), len(out)))
            action = draw(st.sampled_from(["replace", "insert", "cut"]))
            chunk = draw(st.binary(min_size=1, max_size=8))
            if action == "replace":
                out[at:at + len(chunk)] = chunk
            elif action == "insert":
                out[at:at] = chunk
            else:
                del out[at:at + len(chunk)]
        return bytes(out)
    return build()


@st.composite
def byte_deliveries(draw) -> dict[str, str | bytes]:
    tables: dict[str, str | bytes] = {name: base_csv(name) for name in TABLES}
    for name in draw(st.sets(st.sampled_from(TABLES), min_size=1, max_size=5)):
        tables[name] = draw(st.one_of(
            st.binary(max_size=600),
            mutated(base_csv(name).encode()),
            mutated(base_csv(name).encode()),
        ))
    return tables


@fuzz_settings(70)
@given(byte_deliveries())
def test_any_bytes_as_csv_files_end_landed_or_rejected_with_a_documented_reason(tables):
    land_and_check(tables)


# --- (b) structured CSV --------------------------------------------------------------------

INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u00a0", "\u3000"]
ACCENTED = {"a": "á", "e": "é", "i": "í", "o": "ó", "u": "ú", "n": "ñ"}

# The pool of cells: for each kind what hospitals write, and the extremes of that kind;
# then extremes of any kind, which any column may receive.
NUMBER_EXTREMES = [
    "0", "-0", "-1", "1e10", "-1e10", "1e400", "-1e400", "1e-400", "1e308", "inf", "-inf",
    "NaN", "2147483647", "2147483648", "-2147483649", "9" * 400, "0.0000001", "1,5",
    "1.234,5", "1.5", "1.149", "0,500", ".5", "5.", "1e3", "12.5", "1 149", "0x1F", "1_000",
    "١٢٣", "+3", "3.0", "7.5", "1" + ".000" * 50,
]
DATE_EXTREMES = [
    "2021-02-30", "31/02/2020", "29/02/2021", "0000-01-01", "0001-01-01", "9999-12-31",
    "1899-12-31", "1900-01-01", "2027-01-01", "12/25/2021", "2021-03-01 00:00:00",
    "2021-03-01T00:00", "2021-03-01 10:30:00", "21/3/21", "10000-01-01", "2021-3-1",
    "2021/03/01", "99999999-01-01",
]
TEXT_EXTREMES = [
    "", " ", "\t", "  \u00a0 ", "\u200b", "NULL", "n/d", "-", "?", '"', "'", "\\", ";",
    ",", "|", "||", "=SUM(A1:A3)", "+1", "@x", "😀", "\u202eevil", "a\nb", "a\r\nb",
    "x" * 5000, "ñÁç", "\x00", "4+", "3-", "5+", "0-", "4 +", "6", "U/L", "µkat/L",
    "μkat/L", "ukat/L", "mg/dL",
]
EXTREME_CELLS = NUMBER_EXTREMES + DATE_EXTREMES + TEXT_EXTREMES
NUMBERS = ["120", "60", "400", "401", "0", "25", "250", "1149", "217", "15", "0.78",
           "2.83", "51", "3", "120,5", "1.149", "7.5", "3.0"]
DATES = ["2021-03-01", "2021-04-01", "05/06/2021", "5-6-2021", "2026-11-24", "2026-11-25",
         "1961-04-17", "01/01/1900"]
IDS = ["100234", "100781", "101502", "100234\u200b", " 100781 ", "\ufeff101502", "999999",
       "100 234", "1e5", "P-0001", "nhc-1", "1" * 300]
VOCAB_CELLS = sorted({spelling for words in VOCABULARIES.values() for spelling in words})
LIST_CELLS = ["iim", "iim|sjogren", "Sjögren | LES", "|", "skin||myositis", "otra| AR",
              "myositis", "Cutánea|DIGESTIVA", "lupus", "|".join(["iim"] * 200)]
KIND_CELLS = {
    "id": IDS, "date": DATES + DATE_EXTREMES,
    "decimal": NUMBERS + NUMBER_EXTREMES, "integer": NUMBERS + NUMBER_EXTREMES,
    "value": NUMBERS + NUMBER_EXTREMES + ["4+", "3-", "5+", "0-", "4 +", "6", "4.33"],
    "category": VOCAB_CELLS, "yesno": VOCAB_CELLS, "list": LIST_CELLS,
}


def spelled(draw, name: str) -> str:
    """A header as a hospital might write it: case, accents, spaces, invisible marks."""
    text = name
    if draw(st.booleans()):
        text = text.replace("_", draw(st.sampled_from([" ", "-", "", "_", "  "])))
    if draw(st.booleans()):
        text = "".join(ch.upper() if draw(st.booleans()) else ch for ch in text)
    if draw(st.booleans()):
        text = "".join(ACCENTED.get(ch, ch) if draw(st.booleans()) else ch for ch in text)
    if draw(st.booleans()):
        text = draw(st.sampled_from(INVISIBLE + [" ", ""])) + text + draw(
            st.sampled_from(INVISIBLE + [" ", ""]))
    return text


def text_cell(kind: str) -> st.SearchStrategy[str]:
    """A cell for a column of `kind`: two times in three from its own pool."""
    own = KIND_CELLS.get(kind, ["Cefalea", "Prednisona", "Rituximab", "U/L"])
    return st.sampled_from(["own", "own", "any"]).flatmap(
        lambda pool: st.sampled_from(own if pool == "own" else EXTREME_CELLS))


@st.composite
def extracts(draw, cell: Callable[[str], st.SearchStrategy] | None = None) -> Extract:
    """The base extract plus valid rows with a few cells replaced (1 to 3 per row).

    A bug in typing or storing a value shows only when the rest of its row is valid
    (a cycle number of 1e10 in an otherwise clean row used to crash the landing): most
    rows here are clean but for the drawn cells. `cell` draws a replacement for a column
    kind; by default from the kind's own pool or the pool of extremes.
    """
    extract = Extract()
    for table in TABLES:
        # Hypothesis draws the low end of a range most: the rare case goes at the top.
        if draw(st.integers(0, 5)) == 5:
            del extract.tables[table][1:]  # no base rows (patients: likely no valid one)
        columns = [(c.name, c.kind) for c in CONTRACT[table].columns]
        # Landing a delivery costs the same for 3 rows as for 20: many rows per example.
        for _ in range(draw(st.integers(2, 14))):
            replaced = {draw(st.sampled_from(columns))
                        for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3])))}
            values = {name: draw((cell or text_cell)(kind)) for name, kind in replaced}
            extract.append(table, **values)
    return extract


@st.composite
def headed(draw, table: str, rows: list[list], damage: str | None) -> list[list]:
    """The table's canonical rows under headers as written: spelled any way, in any
    order, with extra columns; `damage` leaves a column out or names one twice."""
    canonical = BASE[table][0]
    positions = list(range(len(canonical)))
    if damage == "missing":
        positions.remove(draw(st.sampled_from(positions)))
    columns = [(spelled(draw, draw(st.sampled_from(_spellings(table, canonical[i])))), i)
               for i in positions]
    if damage == "ambiguous":
        twin = draw(st.sampled_from(positions))
        columns.append((spelled(draw, draw(st.sampled_from(_spellings(table, canonical[twin])))),
                        twin))
    for extra in draw(st.lists(st.sampled_from(["dni", "nombre", "apellidos", "Teléfono",
                                                "notas", ""]), max_size=2)):
        columns.append((extra, None))
    columns = draw(st.permutations(columns))
    out = [[header for header, _ in columns]]
    for row in rows[1:]:
        out.append([row[i] if i is not None else draw(st.sampled_from(["Ana", "", "X"]))
                    for _, i in columns])
    return out


def _spellings(table: str, name: str) -> tuple[str, ...]:
    column = CONTRACT[table].column(name)
    return (column.name, *column.aliases)


def encoded(rows: list[list[str]], delimiter: str, line_end: str, encoding: str) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=line_end).writerows(rows)
    text = buffer.getvalue()
    if encoding == "cp1252":  # what Windows-1252 cannot hold, a cp1252 file does not have
        return text.encode("cp1252", errors="ignore")
    return text.encode(encoding)


DAMAGE = st.sampled_from([None] * 8 + ["missing", "ambiguous"])


@st.composite
def structured_deliveries(draw) -> dict[str, bytes]:
    extract = draw(extracts())
    damage, damaged = draw(DAMAGE), draw(st.sampled_from(TABLES))
    tables = {}
    for name in TABLES:
        rows = draw(headed(name, extract.tables[name], damage if name == damaged else None))
        for _ in range(draw(st.integers(0, 1))):  # a malformed record: a field more or less
            at = draw(st.integers(1, len(rows)))
            rows.insert(at, rows[-1][:-1] if draw(st.booleans()) else [*rows[-1], "extra"])
        tables[name] = encoded(
            rows,
            draw(st.sampled_from([",", ";", "\t"])),
            draw(st.sampled_from(["\n", "\r\n", "\r"])),
            draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252"])),
        )
    return tables


DELIVERY_IDS = ["2026-11-24", "2021-01-01", "entrega-noviembre", "2026-02-30", "1899-01-01"]


@fuzz_settings(90)
@given(structured_deliveries(), st.sampled_from(DELIVERY_IDS))
def test_structured_csv_deliveries_end_landed_or_rejected_with_a_documented_reason(
        tables, delivery_id):
    land_and_check(tables, delivery_id=delivery_id)


# --- (c) XLSX ------------------------------------------------------------------------------

XLSX_EXTREMES = st.one_of(
    st.none(),
    st.sampled_from(EXTREME_CELLS + IDS + DATES + VOCAB_CELLS + LIST_CELLS),
    st.integers(-(2**53), 2**53),
    st.sampled_from([0, 1, 3, 120, 2147483648, 10**10, 1e308, -1e308, 5e-324,
                     float("nan"), float("inf"), 0.78, 7.5]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(min_value=date(1900, 3, 1), max_value=date(9999, 12, 31)),
    st.datetimes(min_value=datetime(1900, 3, 1), max_value=datetime(9999, 12, 31)),
    st.builds(Formula, st.sampled_from(["1+1", "A1", "SUM(B2:B9)", '"texto"', "1/0",
                                        "TODAY()"]),
              st.one_of(st.none(), st.just(""), st.integers(0, 500), st.just("F"))),
    st.builds(DateSerial, st.sampled_from([1e10, -5, 3e6, 0.5, 60, 2958466, 1e308, 44000])),
)


@st.composite
def xlsx_cell(draw, kind: str) -> object:
    """A replacement cell of any XLSX type; `__cell__` marks it for `xlsx_deliveries`."""
    return ("__cell__", draw(XLSX_EXTREMES))


@st.composite
def xlsx_deliveries(draw) -> dict[str, list[list]]:
    extract = draw(extracts(cell=lambda kind: xlsx_cell(kind)))
    sheets: dict[str, list[list]] = {}
    damage, damaged = draw(st.sampled_from([None] * 8 + ["missing", "no sheet"])), draw(
        st.sampled_from(TABLES))
    plain = Extract()  # the same rows with the drawn cells blank, typed by conftest
    plain.tables = {name: [["" if isinstance(v, tuple) else v for v in row] for row in rows]
                    for name, rows in extract.tables.items()}
    typed = plain.xlsx_tables()
    for name in TABLES:
        if damage == "no sheet" and name == damaged:
            continue
        rows = _typed_cells(extract.tables[name], typed[name])
        rows = draw(headed(name, rows, damage if name == damaged else None))
        rows = rows[:1] + [[] if draw(st.integers(0, 8)) == 8 else row  # empty rows
                           for row in rows[1:]]
        offset = draw(st.integers(0, 2))  # the table need not start at A1
        sheet_name = draw(st.sampled_from([name, name.upper(), name.replace("_", " ")]))
        sheets[sheet_name] = [[] for _ in range(offset)] + [[None] * offset + r for r in rows]
    if draw(st.booleans()):
        sheets["Hoja1"] = [["notas"], ["sin datos"]]
    return sheets


def _typed_cells(text_rows: list[list], typed_rows: list[list]) -> list[list]:
    """Replacement cells as drawn, every other cell typed as a hospital's sheet has it."""
    return [[text[1] if isinstance(text, tuple) else cell
             for text, cell in zip(text_row, typed_row, strict=True)]
            for text_row, typed_row in zip(text_rows, typed_rows, strict=True)]


@fuzz_settings(40)
@given(xlsx_deliveries())
def test_xlsx_workbooks_end_landed_or_rejected_with_a_documented_reason(sheets):
    land_and_check(sheets, xlsx=True)
