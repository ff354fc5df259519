"""Parsers of hospital text (protocol §3/§4): dates, numbers, MRC grades, header folding.

Properties run over whole columns per example (one Polars call for many values), with
`derandomize=True` so CI sees the same examples on every run.
"""

from __future__ import annotations

import calendar
import itertools
from datetime import date
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivig_platform.landing.contract import landing_contract
from ivig_platform.landing.parsing import (
    fold_header,
    fold_unit,
    parse_date,
    parse_number,
)

PROPERTY = settings(derandomize=True, max_examples=150, deadline=None)


def run(parser, values: list[str | None], *args) -> list:
    frame = pl.DataFrame({"s": values}, schema={"s": pl.Utf8})
    return frame.select(parser(pl.col("s"), *args).alias("out")).get_column("out").to_list()


# --- dates ---------------------------------------------------------------------------------

DATE_STYLES = ("iso", "dmy_slash", "dmy_dash")


def write_date(d: date, style: str, padded: bool) -> str:
    day, month = (f"{d.day:02d}", f"{d.month:02d}") if padded else (str(d.day), str(d.month))
    if style == "iso":
        return f"{d.year:04d}-{month}-{day}"
    separator = "/" if style == "dmy_slash" else "-"
    return f"{day}{separator}{month}{separator}{d.year:04d}"


written_dates = st.lists(
    st.tuples(
        st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)),
        st.sampled_from(DATE_STYLES),
        st.booleans(),
    ),
    min_size=1, max_size=40,
)


@PROPERTY
@given(written_dates)
def test_any_date_1900_2100_in_any_accepted_style_parses_back(items):
    texts = [write_date(d, style, padded) for d, style, padded in items]
    assert run(parse_date, texts) == [d for d, _, _ in items]


@st.composite
def impossible_dates(draw) -> str:
    year = draw(st.integers(1900, 2100))
    kind = draw(st.sampled_from(["day_past_month_end", "day_zero", "month_13_plus",
                                 "month_zero"]))
    month = draw(st.integers(1, 12))
    day = draw(st.integers(1, 28))
    if kind == "day_past_month_end":
        last = calendar.monthrange(year, month)[1]
        if last == 31:
            month, last = 4, 30  # a 30-day month, so there is a day past its end
        day = draw(st.integers(last + 1, 31))
    elif kind == "day_zero":
        day = 0
    elif kind == "month_13_plus":
        month = draw(st.integers(13, 99))
    else:
        month = 0
    style = draw(st.sampled_from(DATE_STYLES))
    if style == "iso":
        return f"{year:04d}-{month:02d}-{day:02d}"
    separator = "/" if style == "dmy_slash" else "-"
    return f"{day:02d}{separator}{month:02d}{separator}{year:04d}"


@PROPERTY
@given(st.lists(impossible_dates(), min_size=1, max_size=40))
def test_impossible_dates_are_null(texts):
    assert run(parse_date, texts) == [None] * len(texts)


@PROPERTY
@given(st.lists(st.dates(min_value=date(1900, 1, 13), max_value=date(2100, 12, 31))
                .filter(lambda d: d.day > 12), min_size=1, max_size=40))
def test_month_first_dates_are_never_read(days):
    """`12/25/2020` is not 25 December: a date is never read month first (§4)."""
    texts = [f"{d.month:02d}/{d.day:02d}/{d.year}" for d in days]
    assert run(parse_date, texts) == [None] * len(texts)


@pytest.mark.parametrize(("text", "expected"), [
    ("2020-03-01", date(2020, 3, 1)),
    (" 01/03/2020 ", date(2020, 3, 1)),
    ("1-3-2020", date(2020, 3, 1)),
    ("2020-03-01 00:00:00", date(2020, 3, 1)),  # an XLSX date cell read as text
    ("2020-03-01T00:00:00", date(2020, 3, 1)),
    ("29/02/2020", date(2020, 2, 29)),
    ("29/02/2021", None),
    ("12/25/2020", None),
    ("2020/03/01", None),
    ("01/03/20", None),
    ("01.03.2020", None),
    ("1 de marzo de 2020", None),
    ("2020-03-01 10:30:00", None),
    ("", None),
    (None, None),
])
def test_date_examples(text, expected):
    assert run(parse_date, [text]) == [expected]


# --- numbers -------------------------------------------------------------------------------

def spanish(value: Decimal, group: bool) -> str:
    """`value` written as a `;` file writes it: `.` thousands (if `group`), `,` decimals."""
    sign = "-" if value < 0 else ""
    integer, _, fraction = f"{abs(value):f}".partition(".")
    if group:
        integer = f"{int(integer):,}".replace(",", ".")
    return sign + integer + ("," + fraction if fraction else "")


decimals = st.builds(
    lambda units, places, negative: (-1 if negative else 1) * Decimal(units).scaleb(-places),
    st.integers(0, 10**12), st.integers(0, 4), st.booleans(),
)


@PROPERTY
@given(st.lists(st.tuples(decimals, st.booleans()), min_size=1, max_size=40))
def test_spanish_decimal_parses_back_in_spanish_style(items):
    texts = [spanish(value, group) for value, group in items]
    parsed = run(parse_number, texts, "spanish")
    assert parsed == [pytest.approx(float(value), rel=1e-12, abs=1e-12) for value, _ in items]


@PROPERTY
@given(st.lists(decimals.filter(lambda v: abs(v) >= 1000), min_size=1, max_size=40))
def test_spanish_decimal_with_thousands_dot_is_never_read_in_dot_style(values):
    """In a `,`/tab file `.` is the decimal point: `1.149,5` is null, `1.149` is 1.149."""
    texts = [spanish(value, group=True) for value in values]
    parsed = run(parse_number, texts, "dot")
    for text, value, got in zip(texts, values, parsed, strict=True):
        if "," in text or text.count(".") > 1:
            assert got is None, text
        else:
            assert got != float(value), text


@PROPERTY
@given(st.lists(st.tuples(decimals, st.booleans()), min_size=1, max_size=40))
def test_dot_decimal_parses_back_in_dot_style(items):
    texts = [f"{v:f}" for v, _ in items]
    texts = [f"+{t}" if plus and not t.startswith("-") else t
             for t, (_, plus) in zip(texts, items, strict=True)]
    parsed = run(parse_number, texts, "dot")
    assert parsed == [pytest.approx(float(v), rel=1e-12, abs=1e-12) for v, _ in items]


@pytest.mark.parametrize(("style", "text", "expected"), [
    ("spanish", "1.149", 1149.0),
    ("spanish", "0,78", 0.78),
    ("spanish", "1.149,5", 1149.5),
    ("spanish", "1.234.567,89", 1234567.89),
    ("spanish", "1149", 1149.0),
    ("spanish", " -2,5 ", -2.5),
    ("spanish", "1.5", None),  # a `.` that is not a thousands group
    ("spanish", "1.14", None),
    ("spanish", "1,149.5", None),
    ("spanish", "12,", None),
    ("spanish", "", None),
    ("dot", "1149.5", 1149.5),
    ("dot", ".5", 0.5),
    ("dot", "1e3", 1000.0),
    ("dot", "1,149", None),
    ("dot", "0,78", None),
    ("dot", "1 149", None),
    ("dot", "120 g", None),
    ("dot", "NaN", None),
    ("dot", "inf", None),
    ("dot", "1e400", None),  # overflows a double: infinity is not a number anyone wrote
    ("dot", "-1e400", None),
    ("dot", "1e308", 1e308),
    ("spanish", "9" * 400, None),
    ("spanish", "1" + ".000" * 120, None),
    ("dot", None, None),
])
def test_number_examples(style, text, expected):
    assert run(parse_number, [text], style) == [expected]


@pytest.mark.parametrize("text", ["0.500", "-0.250", "00.780", "0.001,5"])
def test_spanish_style_rejects_a_leading_zero_thousands_group(text):
    assert run(parse_number, [text], "spanish") == [None]


# --- MRC grades ----------------------------------------------------------------------------

def mrc_grammar(text: str) -> float | None:
    """The modified MRC scale of §1/§3, written independently of the code under test."""
    text = "".join(text.split())
    if len(text) not in (1, 2) or text[0] not in "012345":
        return None
    grade, modifier = int(text[0]), text[1:]
    if modifier not in ("", "+", "-"):
        return None
    if (grade == 0 and modifier) or (grade == 5 and modifier == "+"):
        return None
    return {"": float(grade), "+": round(grade + 0.33, 2), "-": round(grade - 0.33, 2)}[modifier]


MRC_TEXTS = sorted({
    "".join(parts)
    for parts in itertools.product(
        ["", " "], [*"0123456789", "10", "a", "."], ["", "+", "-", "++", "+-", "5", ".0", " +"],
        ["", " "],
    )
})


def parse_mrc(expr):
    """The MRC measure's grammar as the contract defines it (protocol measures.yaml)."""
    return landing_contract().measures["mrc"].parse_grade(expr)


def test_mrc_grammar_exhaustively():
    assert run(parse_mrc, MRC_TEXTS) == [mrc_grammar(t) for t in MRC_TEXTS]
    assert len(MRC_TEXTS) > 300


@pytest.mark.parametrize(("text", "expected"), [
    ("4+", 4.33), ("3-", 2.67), ("5-", 4.67), ("1+", 1.33), ("0", 0.0), ("5", 5.0),
    ("5+", None), ("0-", None), ("0+", None), ("6", None), ("4.33", None), ("4,5", None),
    ("-4", None), ("IV", None), ("", None),
])
def test_mrc_examples(text, expected):
    assert run(parse_mrc, [text]) == [expected]


# --- headers and units ---------------------------------------------------------------------

@pytest.mark.parametrize(("header", "folded"), [
    ("Fecha Nacimiento", "fechanacimiento"),
    ("fecha_nacimiento", "fechanacimiento"),
    ("ID-Paciente", "idpaciente"),
    (" NHC ", "nhc"),
    ("Indicación", "indicacion"),
    ("MOTIVO SUSPENSIÓN", "motivosuspension"),
    ("\ufeffpatient_id", "patientid"),
    ("Término\u00a0", "termino"),
])
def test_header_folding_ignores_case_accents_spaces_hyphens_underscores(header, folded):
    assert fold_header(header) == folded


@pytest.mark.parametrize(("unit", "folded"), [
    ("µkat/L", "ukat/l"), ("μkat/L", "ukat/l"), ("ukat/l", "ukat/l"), (" U / L ", "u/l"),
    ("UI/L", "ui/l"), ("IU/L", "iu/l"),
])
def test_ck_unit_folding(unit, folded):
    assert run(fold_unit, [unit]) == [folded]
