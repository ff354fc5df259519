"""What the workbook's own XML says about cells the spreadsheet reader shows as empty.

Spreadsheet readers (calamine, behind fastexcel) read the value a formula had when the
file was last calculated, cached in the cell's `<v>`. A workbook written by a tool that
does not calculate (a script, some EHR exports) has formulas with no `<v>`: the reader
sees an empty cell, and a required value would silently be missing. The sheet XML says
which cells these are: a `<c>` with an `<f>` child and no `<v>`. (A formula whose
cached value is the empty string has an empty `<v>`: that cell has a value, blank.)

The reader also shows as empty a cell it cannot convert: an error value (`#DIV/0!`,
`#N/A`) and a date-formatted number outside its calendar (serial 1e10). It says which
cells these are (fastexcel's `to_arrow_with_errors`); their `<v>` text is kept here, so
landing can judge it like the same text in a CSV file (an invalid number, an invalid
date) instead of landing a NULL nobody wrote.

The reader's table starts at the top-left of the cells that have a value (calamine's
range: the header row is its first row). A cell has a value when its `<v>` has text, and,
for string cells (`s`, `str`, `inlineStr`), whenever it has a `<v>` or `<is>` at all: an
empty string counts for calamine. Positions are returned relative to that corner, so
the caller can map them to the table's `source_row` and header. Only the standard
library is used; expat refuses entity expansion bombs, and nothing is fetched.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

_CELL_REF = re.compile(r"^([A-Za-z]{1,3})(\d+)$")
_FORMULA = re.compile(rb"<(?:\w+:)?f[\s>/]")  # an `<f>` element, with or without prefix
# Cell types whose `<v>` the reader converts and may fail to (errors, numbers, ISO dates);
# strings and booleans it always reads.
_CONVERTED = {"e", "n", "d", None}
_STRING = {"s", "str", "inlineStr"}

Cell = tuple[int, int, str | None]  # (row, column, text)


@dataclass
class SheetCells:
    """A sheet's formulas without a value and the raw text of its converted cells."""

    origin: tuple[int, int] | None = None  # (row, column), 0-based; None: no value at all
    formulas: list[Cell] = field(default_factory=list)  # absolute positions
    raw: list[Cell] = field(default_factory=list)  # absolute positions, `<v>` text

    def relative(self, cells: list[Cell]) -> list[Cell]:
        """(data row: 1 = the row below the header, column from the first, text)."""
        if self.origin is None:
            return []
        top, left = self.origin
        return [(r - top, c - left, t) for r, c, t in cells if r > top and c >= left]


def sheet_parts(path: Path) -> dict[str, str]:
    """Sheet name → the workbook member holding its XML."""
    with zipfile.ZipFile(path) as archive:
        members = _sheet_members(archive)
        names = set(archive.namelist())
    return {name: member for name, member in members.items() if member in names}


def sheet_cells(path: Path, member: str | None, *, converted: bool) -> SheetCells:
    """What a sheet's XML says (see the module's docstring), read only when it can matter.

    Parsing a sheet costs far more than reading it: it is parsed only when it holds a
    formula, or when the reader reported cells it could not convert (`converted`). Most
    sheets need neither.
    """
    if member is None:
        return SheetCells()
    with zipfile.ZipFile(path) as archive:
        data = archive.read(member)
    if not converted and not _FORMULA.search(data):
        return SheetCells()
    return _scan(data)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _attribute(element: ElementTree.Element, local: str) -> str | None:
    return next((v for k, v in element.attrib.items() if _local(k) == local), None)


def _sheet_members(archive: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name → its XML part, through the workbook and its relationships."""
    workbook = _main_part(archive)
    folder = posixpath.dirname(workbook)
    rels_path = posixpath.join(folder, "_rels", posixpath.basename(workbook) + ".rels")
    targets = {
        _attribute(rel, "Id"): _attribute(rel, "Target")
        for rel in ElementTree.fromstring(archive.read(rels_path)).iter()
        if _local(rel.tag) == "Relationship"
    }
    members: dict[str, str] = {}
    for sheet in ElementTree.fromstring(archive.read(workbook)).iter():
        if _local(sheet.tag) != "sheet":
            continue
        target = targets.get(_attribute(sheet, "id"))
        name = sheet.get("name")
        if target and name is not None:
            members[name] = target.lstrip("/") if target.startswith("/") else \
                posixpath.normpath(posixpath.join(folder, target))
    return members


def _main_part(archive: zipfile.ZipFile) -> str:
    try:
        rels = ElementTree.fromstring(archive.read("_rels/.rels"))
    except KeyError:
        return "xl/workbook.xml"
    for rel in rels.iter():
        if _local(rel.tag) == "Relationship" and (_attribute(rel, "Type") or "").endswith(
                "/officeDocument"):
            return (_attribute(rel, "Target") or "xl/workbook.xml").lstrip("/")
    return "xl/workbook.xml"


def _column_index(letters: str) -> int:
    index = 0
    for letter in letters.upper():
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


def _scan(data: bytes) -> SheetCells:
    """One pass over the sheet: the origin of the valued cells, the valueless formulas
    and the raw text of converted cells.

    Cells and rows may omit their `r` reference (the spec allows it): they follow the
    previous one. Shared formulas name their text once, on the first cell (`si`).
    """
    sheet = SheetCells()
    shared: dict[str, str] = {}
    row, column = -1, -1
    top, left = None, None
    for event, element in ElementTree.iterparse(io.BytesIO(data), events=("start", "end")):
        tag = _local(element.tag)
        if event == "start":
            if tag == "row":
                number = element.get("r")
                row = int(number) - 1 if number and number.isdigit() else row + 1
                column = -1
            continue
        if tag != "c":
            if tag == "row":
                element.clear()
            continue
        match = _CELL_REF.match(element.get("r") or "")
        if match:
            column, row = _column_index(match[1]), int(match[2]) - 1
        else:
            column += 1
        children = {_local(child.tag): child for child in element}
        value, inline, formula = children.get("v"), children.get("is"), children.get("f")
        if value is not None and value.text and element.get("t") in _CONVERTED:
            sheet.raw.append((row, column, value.text))
        string = element.get("t") in _STRING and (value is not None or inline is not None)
        if string or (value is not None and value.text):
            top = row if top is None else min(top, row)
            left = column if left is None else min(left, column)
        if formula is not None and value is None:
            sheet.formulas.append((row, column, _formula_text(formula, shared)))
        elif formula is not None:
            _formula_text(formula, shared)  # a shared formula's text may start here
        element.clear()
    sheet.origin = None if top is None else (top, left)
    return sheet


def _formula_text(formula: ElementTree.Element, shared: dict[str, str]) -> str | None:
    text, index = formula.text, formula.get("si")
    if index is not None:
        if text:
            shared[index] = text
        text = text or shared.get(index)
    return f"={text}" if text else None
