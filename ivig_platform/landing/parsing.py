"""Parsing of the text the hospitals write, as Polars expressions.

Every parser takes a string expression and returns the parsed value or null; callers tell
"empty" from "unparseable" by looking at the input, so one parser serves both the value
and the quarantine rule. Nothing here guesses per site: the only per-file fact is the
number convention, which protocol §4 ties to the delimiter.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping
from typing import Literal

import polars as pl

NumberStyle = Literal["dot", "spanish"]

_ISO = r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]00:00(?::00(?:\.0+)?)?)?$"
_DAY_FIRST = r"^(\d{1,2})[/-](\d{1,2})[/-](\d{4})$"
# `;` files: `.` groups thousands in threes and `,` is the decimal separator (§4).
# A grouped number is at least 1,000, so its first group never starts with 0: `0.500` in a
# `;` file is a dot decimal written by mistake, not 500, and is quarantined.
_SPANISH_NUMBER = r"^[+-]?(?:[1-9]\d{0,2}(?:\.\d{3})+|\d+)(?:,\d+)?$"
_DOT_NUMBER = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$"

# Characters that show nothing: zero-width space, non-joiner and joiner, word joiner,
# the BOM (zero-width no-break space) anywhere in a file, and the soft hyphen. Copied from
# a web page or an EHR screen they hide in cells: `100234\u200b` looks like 100234.
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
# Unicode's White_Space characters (what Rust's `\s` and `str::trim` know), the plain
# space first: NBSP, the typographic spaces, the ideographic space, line separators.
WHITESPACE = (
    " \t\n\x0b\x0c\r\x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000"
)
# Literal replacements (one Aho-Corasick pass, several times faster than regexes).
_CLEAN_FROM = [*INVISIBLE, *WHITESPACE[1:]]
_CLEAN_TO = [""] * len(INVISIBLE) + [" "] * (len(WHITESPACE) - 1)


def fold(text: str) -> str:
    """Case-, accent- and space-insensitive form of a single string (for headers)."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(
        ch for ch in decomposed if not unicodedata.combining(ch) and ch not in INVISIBLE
    )
    return stripped.strip().lower()


def fold_header(text: str) -> str:
    """Header matching ignores case, accents, spaces (any Unicode space), hyphens,
    underscores and invisible characters (§3)."""
    return "".join(ch for ch in fold(text) if not ch.isspace() and ch not in "-_")


def clean_code(expr: pl.Expr) -> pl.Expr:
    """The text of an identifier or code as it is matched: no invisible characters, and
    every Unicode space a plain space, so `100234\u200b` is patient 100234.

    Free text (drug, term) is not cleaned inside: only its ends are trimmed
    (`blank_to_null`).
    """
    return expr.str.replace_many(_CLEAN_FROM, _CLEAN_TO)


def fold_expr(expr: pl.Expr) -> pl.Expr:
    """Vectorised `fold`: category values ignore case, accents, invisible characters and
    surrounding spaces."""
    return (
        clean_code(expr)
        .str.normalize("NFKD")
        .str.replace_all(r"\p{M}", "")
        .str.strip_chars()
        .str.to_lowercase()
    )


def blank_to_null(expr: pl.Expr) -> pl.Expr:
    """The cell as written without what surrounds it: spaces of any kind and invisible
    characters. Cells holding only those are empty: hospitals' exports pad fixed-width
    fields, and a cell holding a zero-width space looks empty to whoever fills it."""
    stripped = expr.str.strip_chars(WHITESPACE + INVISIBLE)
    return pl.when(stripped == "").then(None).otherwise(stripped)


def parse_date(expr: pl.Expr) -> pl.Expr:
    """ISO `YYYY-MM-DD` or day-first `DD/MM/YYYY`, `DD-MM-YYYY`; never month first (§4).

    XLSX date cells arrive as `YYYY-MM-DD 00:00:00`, which the ISO branch takes. An
    impossible calendar day (31/02/2020) is null, so it is quarantined as invalid.
    Invisible characters do not count (as in codes).
    """
    s = clean_code(expr).str.strip_chars()
    iso = s.str.extract_groups(_ISO)
    dmy = s.str.extract_groups(_DAY_FIRST)
    year = pl.coalesce(iso.struct.field("1"), dmy.struct.field("3"))
    month = pl.coalesce(iso.struct.field("2"), dmy.struct.field("2"))
    day = pl.coalesce(iso.struct.field("3"), dmy.struct.field("1"))
    text = pl.concat_str(
        [year, month.str.zfill(2), day.str.zfill(2)], separator="-"
    )
    return text.str.to_date("%Y-%m-%d", strict=False)


def parse_number(expr: pl.Expr, style: NumberStyle) -> pl.Expr:
    """A decimal in the file's convention; anything else (`1.5` in a `;` file) is null.

    A number too large for a double (`1e400`, or 400 digits) would read as infinity: it
    is not a number anyone measured, so it is null (and quarantined as `invalid_number`)
    rather than a value that passes `> 0` and breaks every mean downstream. Invisible
    characters do not count (as in codes).
    """
    s = clean_code(expr).str.strip_chars()
    if style == "spanish":
        ok = s.str.contains(_SPANISH_NUMBER)
        canonical = s.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
    else:
        ok = s.str.contains(_DOT_NUMBER)
        canonical = s
    number = canonical.cast(pl.Float64, strict=False)
    return pl.when(ok & number.is_finite()).then(number).otherwise(None)


def parse_grade(expr: pl.Expr, *, minimum: int, maximum: int,
                modifiers: Mapping[str, float], not_allowed: Collection[str],
                decimals: int) -> pl.Expr:
    """A graded scale such as the modified MRC: a whole grade from `minimum` to `maximum`
    with an optional modifier whose value is added (`4+` = 4.33, `3-` = 2.67 on the MRC
    scale of the protocol's measures), rounded to `decimals`; null otherwise.

    The grades and modifiers come from the measure's definition (protocol
    `contract/measures.yaml`); `not_allowed` lists written grades that do not exist on the
    scale (`0-`, `0+`, `5+`). Spaces inside (`4 +`) are tolerated; a decimal such as `4.33`
    is not a grade, nor is a grade with a leading zero.
    """
    s = clean_code(expr).str.replace_all(r"\s", "")
    marks = "".join(re.escape(m) for m in modifiers)
    parts = s.str.extract_groups(rf"^(0|[1-9][0-9]*)([{marks}]?)$" if marks
                                 else r"^(0|[1-9][0-9]*)()$")
    grade = parts.struct.field("1").cast(pl.Float64, strict=False)
    mod = parts.struct.field("2")
    step = mod.replace_strict(dict(modifiers), default=0.0, return_dtype=pl.Float64)
    impossible = s.is_in(list(not_allowed)) | (grade < minimum) | (grade > maximum)
    value = pl.when(mod == "").then(grade).otherwise(grade + step)
    return pl.when(impossible).then(None).otherwise(value.round(decimals))


def fold_unit(expr: pl.Expr) -> pl.Expr:
    """Units compared without case, spaces, invisible characters, and with µ/μ as u."""
    return (
        clean_code(expr).str.replace_all(r"\s", "")
        .str.replace_all("[µμ]", "u")
        .str.to_lowercase()
    )
