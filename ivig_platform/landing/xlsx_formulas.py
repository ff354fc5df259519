"""Formula cells that carry no value, found in the workbook's own XML.

Spreadsheet readers (calamine, behind fastexcel) read the value a formula had when the
file was last calculated, cached in the cell's `<v>`. A workbook written by a tool that
does not calculate (a script, some EHR exports) has formulas with no `<v>`: the reader
sees an empty cell, and a required value would silently be missing. The sheet XML says
which cells these are: a `<c>` with an `<f>` child and no `<v>`. (A formula whose
cached value is the empty string has an empty `<v>`: that cell has a value, blank.)

The reader's table starts at the top-left of the cells that have a value (calamine's
range: the header row is its first row). Positions are returned relative to it, so the
caller can map them to the table's `source_row` and header. Only the standard library is
used; expat refuses entity expansion bombs, and nothing is fetched.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

_FORMULA = re.compile(rb"<(?:\w+:)?f[\s>/]")
_CELL_REF = re.compile(r"^([A-Za-z]{1,3})(\d+)$")


@dataclass
class SheetFormulas:
    """Formula cells without a value, relative to the sheet's first cell with a value."""

    origin: tuple[int, int] | None = None  # (row, column), 0-based; None: no value at all
    cells: list[tuple[int, int, str | None]] = field(default_factory=list)  # absolute

    def relative(self) -> list[tuple[int, int, str | None]]:
        """(rows below the header row, column from the first, formula text)."""
        if self.origin is None:
            return []
        top, left = self.origin
        return [(r - top, c - left, f) for r, c, f in self.cells if r > top and c >= left]


def formulas_without_value(path: Path, sheet_names: list[str]) -> dict[str, SheetFormulas]:
    """The formula cells without a cached value of each named sheet that has any."""
    found: dict[str, SheetFormulas] = {}
    with zipfile.ZipFile(path) as archive:
        members = _sheet_members(archive)
        for name in sheet_names:
            member = members.get(name)
            if member is None or member not in archive.namelist():
                continue
            data = archive.read(member)
            if _FORMULA.search(data):  # most sheets have no formula: no parse
                sheet = _scan(data)
                if sheet.cells:
                    found[name] = sheet
    return found


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


def _scan(data: bytes) -> SheetFormulas:
    """One pass over the sheet: the origin of the valued cells and the valueless formulas.

    Cells and rows may omit their `r` reference (the spec allows it): they follow the
    previous one. Shared formulas name their text once, on the first cell (`si`).
    """
    sheet = SheetFormulas()
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
        if (value is not None and value.text) or (
                inline is not None and "".join(inline.itertext())):
            top = row if top is None else min(top, row)
            left = column if left is None else min(left, column)
        if formula is not None:
            text = formula.text
            if formula.get("si") is not None:
                if text:
                    shared[formula.get("si")] = text
                text = text or shared.get(formula.get("si"))
            if value is None:
                sheet.cells.append((row, column, f"={text}" if text else None))
        element.clear()
    sheet.origin = None if top is None else (top, left)
    return sheet

