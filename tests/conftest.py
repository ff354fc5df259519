"""Shared fixtures of the landing and warehouse tests.

`Extract` holds the five tables of one hospital delivery as rows of text — small, valid,
written the way Spanish hospitals write them — that a test edits (append a bad row, rename
a header to its Spanish alias, add a `dni` column) and then writes in any dialect: CSV in
any delimiter, encoding and line ending, or an XLSX workbook with real date and number
cells. `make_delivery` puts the files where the inbox has them
(`<inbox>/<site_id>/<delivery_id>/`) and `Warehouse` lands them and reads back what
landing wrote. `demo` runs `ivig demo` once per session for the end-to-end tests that read
its warehouse. Nothing here is autouse: the other test modules do not see any of it.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter

from ivig_platform.demo import write_demo_inbox
from ivig_platform.landing.contract import CONTRACT, TABLES, LandingContract
from ivig_platform.landing.land import MANIFEST, Delivery, Manifest, delivery_dir, land_delivery
from ivig_platform.landing.parsing import fold_header
from ivig_platform.landing.pseudonym import KEY_VARIABLE

KEY = b"test-pseudonym-key-0123456789abcdef"
# The refresh's clock: the day after the tests' usual delivery (2026-11-24), so "after the
# delivery date" and "after the landing day" are different days.
NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)



@dataclass(frozen=True)
class Formula:
    """An XLSX formula cell; `cached` None writes it the way a tool that does not
    calculate does: an `<f>` with no `<v>`."""

    text: str  # without the leading "="
    cached: str | int | float | bool | None = None


@dataclass(frozen=True)
class DateSerial:
    """A number cell in date format, as Excel stores dates (days since 1899-12-30); one
    outside the calendar (1e10) is a cell the reader cannot convert."""

    number: float


Cell = str | int | float | bool | date | datetime | Formula | DateSerial | None
# The cached value written for formulas that must have none, then cut from the sheet XML.
_NO_VALUE = "__ivig_test_no_cached_value__"

# A valid delivery of three patients. Patient 100234 has two cycles, and every template
# row below refers to her; 100781 has one cycle; 101502 has none (so her adverse events
# are `no_landed_cycle`, and her age at index is null).
BASE: dict[str, list[list[str]]] = {
    "patients": [
        ["patient_id", "sex", "birth_date", "ssc_subtype", "overlap", "indication",
         "ivig_stop_reason"],
        ["100234", "F", "1961-04-17", "diffuse", "iim", "myositis", ""],
        ["100781", "M", "1955-11-02", "limited", "", "gastrointestinal|skin", ""],
        ["101502", "F", "1970-08-23", "diffuse", "iim|sjogren", "myositis", "adverse_event"],
    ],
    "ivig_cycles": [
        ["patient_id", "cycle_number", "start_date", "dose_g", "weight_kg"],
        ["100234", "1", "2021-03-01", "120", "60"],
        ["100234", "2", "2021-04-01", "120", "60.5"],
        ["100781", "1", "2021-05-10", "140", "70"],
    ],
    "treatments": [
        ["patient_id", "drug", "start_date", "end_date"],
        ["100234", "Prednisona 5 mg", "2021-01-15", ""],
        ["100781", "CellCept", "2020-06-01", "2022-01-01"],
    ],
    "assessments": [
        ["patient_id", "assessment_date", "measure", "value", "unit"],
        ["100234", "2021-02-20", "mrc", "3", ""],
        ["100234", "2021-02-20", "ck", "1149", "U/L"],
        ["100234", "2021-07-01", "ck", "217", "U/L"],
        ["100781", "2021-05-01", "mrss", "15", ""],
        ["100781", "2021-08-01", "ucla_git", "0.78", ""],
    ],
    "adverse_events": [
        ["patient_id", "onset_date", "term", "severity", "serious", "related", "action"],
        ["100234", "2021-03-02", "Cefalea", "mild", "no", "yes", "none"],
    ],
}

# A valid new row per table; `Extract.append` fills what a test leaves out from here.
# Patients get a fresh id, cycles a fresh cycle number, assessments a fresh date, so that
# appended rows never collide on a key unless the test says so.
TEMPLATES: dict[str, dict[str, str]] = {
    "patients": {"sex": "F", "birth_date": "1965-01-10", "ssc_subtype": "limited",
                 "overlap": "", "indication": "skin", "ivig_stop_reason": ""},
    "ivig_cycles": {"patient_id": "100234", "start_date": "2021-06-01", "dose_g": "120",
                    "weight_kg": "61"},
    "treatments": {"patient_id": "100234", "drug": "Metotrexato", "start_date": "2021-02-01",
                   "end_date": "2021-12-31"},
    "assessments": {"patient_id": "100234", "measure": "mrss", "value": "12", "unit": ""},
    "adverse_events": {"patient_id": "100234", "onset_date": "2021-05-05", "term": "Fiebre",
                       "severity": "moderada", "serious": "no", "related": "desconocido",
                       "action": "interrumpido"},
}


class Extract:
    """The five tables of one delivery as text rows (header first), editable by tests."""

    def __init__(self) -> None:
        self.tables: dict[str, list[list[str]]] = copy.deepcopy(BASE)
        self._next = 0

    def header(self, table: str) -> list[str]:
        return self.tables[table][0]

    def rows(self, table: str) -> list[list[str]]:
        return self.tables[table][1:]

    def append(self, table: str, **values: str) -> int:
        """Add a row (template values overridden by `values`); return its source_row."""
        self._next += 1
        row = dict(TEMPLATES[table])
        if table == "patients":
            row["patient_id"] = f"2{self._next:05d}"
        elif table == "ivig_cycles":
            row["cycle_number"] = str(100 + self._next)
        elif table == "assessments":
            row["assessment_date"] = date.fromordinal(
                date(2022, 1, 1).toordinal() + self._next).isoformat()
        row.update(values)
        header = self.header(table)
        unknown = set(row) - set(header)
        assert not unknown, f"{table} has no column {unknown}"
        self.tables[table].append([row.get(name, "") for name in header])
        return len(self.tables[table]) - 1

    def add_row(self, table: str, row: Sequence[str]) -> int:
        """Add a row exactly as given (any width); return its source_row."""
        self.tables[table].append(list(row))
        return len(self.tables[table]) - 1

    def rename(self, table: str, names: Mapping[str, str]) -> None:
        self.tables[table][0] = [names.get(h, h) for h in self.header(table)]

    def add_column(self, table: str, name: str, values: Sequence[str]) -> None:
        """An extra column (as hospitals add `nombre`, `dni`…), one value per data row."""
        rows = self.tables[table]
        assert len(values) == len(rows) - 1
        rows[0].append(name)
        for row, value in zip(rows[1:], values, strict=True):
            row.append(value)

    def drop_column(self, table: str, name: str) -> None:
        position = self.header(table).index(name)
        for row in self.tables[table]:
            del row[position]

    def csv(self, table: str, delimiter: str = ",", line_end: str = "\n") -> str:
        return to_csv(self.tables[table], delimiter, line_end)

    def csv_tables(self, delimiter: str = ",", line_end: str = "\n") -> dict[str, str]:
        return {name: self.csv(name, delimiter, line_end) for name in self.tables}

    def xlsx_tables(self) -> dict[str, list[list[Cell]]]:
        """Rows as cells: dates as `date`, numbers as `int`/`float`, the rest as text.

        Contract columns decide the cell type (by their canonical or Spanish name), as a
        hospital's spreadsheet would: patient ids are numbers (NHC), dates are date cells.
        """
        out: dict[str, list[list[Cell]]] = {}
        for name, rows in self.tables.items():
            kinds = _kinds_by_header(name)
            header = rows[0]
            cells: list[list[Cell]] = [list(header)]
            for row in rows[1:]:
                cells.append([
                    _cell(value, kinds.get(fold_header(h))) for h, value in zip(header, row,
                                                                           strict=False)
                ])
            out[name] = cells
        return out


def _kinds_by_header(table: str) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for column in CONTRACT[table].columns:
        for spelling in (column.name, *column.aliases):
            kinds[fold_header(spelling)] = column.kind
    return kinds


def _number(text: str) -> int | float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() and "." not in text else number


def _cell(text: str, kind: str | None) -> Cell:
    if text == "":
        return None
    if kind == "date":
        try:
            return date.fromisoformat(text)
        except ValueError:
            return text
    if kind in ("id", "integer", "decimal", "value"):
        number = _number(text)
        return text if number is None else number
    return text


def to_csv(rows: Sequence[Sequence[str]], delimiter: str = ",", line_end: str = "\n") -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=line_end)
    writer.writerows(rows)
    return buffer.getvalue()


def write_xlsx(path: Path, sheets: Mapping[str, Sequence[Sequence[Cell]]]) -> None:
    """A workbook with one sheet per table: real date, number, boolean, error (NaN and
    infinity) and formula cells."""
    # NaN and infinity are not Excel numbers: written as the error cells Excel shows.
    workbook = xlsxwriter.Workbook(str(path), {"nan_inf_to_errors": True})
    date_format = workbook.add_format({"num_format": "dd/mm/yyyy"})
    for sheet_name, rows in sheets.items():
        sheet = workbook.add_worksheet(sheet_name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, Formula):
                    cached = _NO_VALUE if value.cached is None else value.cached
                    sheet.write_formula(r, c, f"={value.text}", None, cached)
                elif isinstance(value, DateSerial):
                    sheet.write_number(r, c, value.number, date_format)
                elif isinstance(value, bool):
                    sheet.write_boolean(r, c, value)
                elif isinstance(value, date):
                    moment = value if isinstance(value, datetime) else datetime(
                        value.year, value.month, value.day)
                    sheet.write_datetime(r, c, moment, date_format)
                elif isinstance(value, int | float):
                    sheet.write_number(r, c, value)
                else:
                    sheet.write_string(r, c, value)
    workbook.close()
    _drop_cached_values(path)


def _drop_cached_values(path: Path) -> None:
    """Cut the `<v>` of the formulas written without a cached value from the sheet XML."""
    with zipfile.ZipFile(path) as archive:
        parts = [(info, archive.read(info.filename)) for info in archive.infolist()]
    marker = f"<v>{_NO_VALUE}</v>".encode()
    if not any(marker in data for _, data in parts):
        return
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in parts:
            archive.writestr(info, data.replace(marker, b""))


def make_delivery(tmp_path: Path, site: str, delivery: str,
                  tables: Mapping[str, str | bytes | Sequence[Sequence[Cell]]], *,
                  xlsx: bool = False) -> Delivery:
    """Write a delivery folder `<tmp_path>/inbox/<site>/<delivery>/` and describe it.

    CSV: each value is the file's text (written as UTF-8) or its exact bytes, saved as
    `<table>.csv`. XLSX: each value is a sheet's rows of cells, saved in `extract.xlsx`.
    """
    folder = tmp_path / "inbox" / site / delivery
    folder.mkdir(parents=True, exist_ok=True)
    if xlsx:
        write_xlsx(folder / "extract.xlsx", tables)  # type: ignore[arg-type]
    else:
        for name, content in tables.items():
            data = content.encode("utf-8") if isinstance(content, str) else content
            assert isinstance(data, bytes), "CSV tables are text or bytes"
            (folder / f"{name}.csv").write_bytes(data)
    return Delivery(site, delivery, folder)


class Warehouse:
    """Lands deliveries into one warehouse folder and reads back what landing wrote."""

    def __init__(self, path: Path, key: bytes) -> None:
        self.path = path
        self.key = key

    def land(self, delivery: Delivery, *, key: bytes | None = None,
             now: datetime = NOW, contract: LandingContract | None = None) -> Manifest:
        manifest = land_delivery(delivery, self.path, key or self.key, now=now,
                                 contract=contract)
        folder = self.folder(delivery)
        if manifest.status == "landed":
            assert_counts_add_up(manifest, folder)
        else:
            assert not list(folder.glob("*.parquet")), "a rejected delivery writes no Parquet"
        return manifest

    def folder(self, delivery: Delivery) -> Path:
        return delivery_dir(self.path, delivery.site_id, delivery.delivery_id)

    def table(self, delivery: Delivery, name: str) -> pl.DataFrame:
        return pl.read_parquet(self.folder(delivery) / f"{name}.parquet")

    def quarantine(self, delivery: Delivery) -> pl.DataFrame:
        return pl.read_parquet(self.folder(delivery) / "quarantine.parquet")

    def manifest_json(self, delivery: Delivery) -> dict:
        return json.loads((self.folder(delivery) / MANIFEST).read_text())


def assert_counts_add_up(manifest: Manifest, folder: Path) -> None:
    """Nothing that arrives is lost (§5): landed + quarantined = source rows, per table."""
    quarantine = pl.read_parquet(folder / "quarantine.parquet")
    assert set(manifest.tables) == set(TABLES)
    for name, counts in manifest.tables.items():
        landed = pl.read_parquet(folder / f"{name}.parquet").height
        quarantined = quarantine.filter(pl.col("table_name") == name).height
        assert counts["landed"] == landed, name
        assert counts["quarantined"] == quarantined, name
        assert landed + quarantined == counts["source_rows"], name
    assert manifest.rows_landed + manifest.rows_quarantined == manifest.source_rows
    assert manifest.rows_quarantined == quarantine.height


@pytest.fixture
def pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> bytes:
    """The study key, set in the environment the way the refresh reads it."""
    monkeypatch.setenv(KEY_VARIABLE, KEY.decode())
    return KEY


@pytest.fixture
def extract() -> Extract:
    return Extract()


@pytest.fixture(name="make_delivery", scope="session")
def make_delivery_fixture() -> Callable[..., Delivery]:
    return make_delivery


@pytest.fixture(scope="session")
def new_extract() -> Callable[[], Extract]:
    return Extract


@pytest.fixture
def warehouse(tmp_path: Path, pseudonym_key: bytes) -> Warehouse:
    return Warehouse(tmp_path / "warehouse", pseudonym_key)


@pytest.fixture(scope="session")
def new_warehouse() -> Callable[[Path, bytes], Warehouse]:
    return Warehouse


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """`ivig demo` as a user runs it, once per session: (folder, its result, the truth).

    Shared by the demo's end-to-end tests and the provenance tests (which work on a copy),
    so the suite pays for one demo refresh."""
    folder = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if k != "IVIG_PSEUDONYM_KEY"}
    ivig = str(Path(sys.executable).parent / "ivig")
    first = subprocess.run([ivig, "demo", "--dir", str(folder)], capture_output=True,
                           text=True, timeout=900, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    truth = write_demo_inbox(tmp_path_factory.mktemp("truth") / "inbox")
    return folder, first, truth


@pytest.fixture
def project_copy(tmp_path, monkeypatch) -> Path:
    """A copy of the dbt project that dbt_build uses for this test (free to edit)."""
    import shutil

    from ivig_platform.modeling import DBT_PROJECT_DIR, dbt_build

    copy = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs"))
    monkeypatch.setattr(dbt_build, "DBT_PROJECT_DIR", copy)
    return copy
