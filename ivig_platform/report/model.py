"""What the sections hand to the template: tables of already formatted (and masked) text."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Cell:
    """One table cell. ``kind``: ``label``, ``count`` (a masked count), ``num`` (any other
    number, right-aligned), ``text``, ``ok``/``bad``/``na`` (a tolerance mark).

    ``keys``: the ids of the counts the cell displays (``relations``), for the disclosure
    audit; never rendered."""

    text: str
    kind: str = "text"
    indent: int = 0
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Row:
    """A table row; a ``group`` row is a subheading spanning every column (one cell)."""

    cells: tuple[Cell, ...]
    group: bool = False


@dataclass(frozen=True)
class Table:
    id: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    caption: str = ""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Figure:
    """An inline SVG plot (``svg`` is markup from vl-convert) or, without one, a message."""

    id: str
    caption: str
    svg: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    intro: str = ""
    tables: tuple[Table, ...] = ()
    figures: tuple[Figure, ...] = ()
    notes: tuple[str, ...] = ()
    #: When set, the section has no content but this message (e.g. a missing table).
    unavailable: str | None = None
    facts: tuple[tuple[str, str], ...] = field(default=())


def group_row(text: str) -> Row:
    return Row((Cell(text, "label"),), group=True)
