"""Canonical rows -> the text a site writes, as Polars expressions (one pass per format).

Input rows are canonical (dates, floats, canonical categories) plus optional ``<column>__raw``
overrides (verbatim text for injected faults) and a ``_uid`` that picks the spelling variant
on "odd" sites.  Output: one string column per written header, in the site's conventions
(§4: day-first dates, decimal comma and '.' thousands with ';', Spanish words, CK units), plus
pass-through bookkeeping columns for the writers.  XLSX output keeps ISO dates and plain
numbers as text; the writer turns them into real date and number cells.
"""

from __future__ import annotations

import polars as pl

from ivig_platform.demo.sites import SiteFormat
from ivig_platform.demo.wording import Wording

PASS_THROUGH = ("site_id", "delivery_id", "source_row", "_uid", "_malformed")
NUMBER_COLUMNS = ("cycle_number", "dose_g", "weight_kg")
N_VARIANTS = 6


def per_canonical(unit: str, words: Wording) -> float:
    """CK in `unit` per U/L, the contract's factor inverted (1/60 for µkat/L)."""
    return 1 / words.factor("ck", unit)


def _variant(salt: int, odd: bool) -> pl.Expr:
    """Which spelling an odd site uses on this row: a fixed function of the row's uid."""
    if not odd:
        return pl.lit(0, dtype=pl.Int64)
    return (pl.col("_uid") * 7919 + salt * 104_729) % N_VARIANTS


def _category(
    column: str, forms: dict[str, tuple[str, ...]], fmt: SiteFormat, salt: int
) -> pl.Expr:
    mapping = {
        f"{canon}#{k}": f[k % len(f)] for canon, f in forms.items() for k in range(N_VARIANTS)
    }
    source = pl.col(column)
    if "true" in forms:  # a yes/no field, held as a boolean
        source = source.cast(pl.String)
    key = pl.concat_str(source, pl.lit("#"), _variant(salt, fmt.odd_values).cast(pl.String))
    return key.replace_strict(mapping, default=None, return_dtype=pl.String)


def _list(column: str, forms: dict[str, tuple[str, ...]], fmt: SiteFormat, salt: int) -> pl.Expr:
    tidy = (
        pl.col(column)
        .list.eval(
            pl.element().replace_strict({c: f[0] for c, f in forms.items()}, return_dtype=pl.String)
        )
        .list.join("|")
    )
    if not fmt.odd_values:
        return tidy
    odd = (
        pl.col(column)
        .list.eval(
            pl.element().replace_strict({c: f[1] for c, f in forms.items()}, return_dtype=pl.String)
        )
        .list.join("|")
    )
    return pl.when(_variant(salt, True) % 2 == 0).then(tidy).otherwise(odd)


def fmt_number(expr: pl.Expr, decimals: int, *, comma: bool, group: bool, trim: bool) -> pl.Expr:
    """Fixed-point text of a float, Spanish style when ``comma`` (',' decimals, '.' groups of
    thousands when ``group``), trailing fractional zeros dropped when ``trim``."""
    scale = 10**decimals
    scaled = (expr * scale).round(0).cast(pl.Int64)
    sign = pl.when(scaled < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    a = scaled.abs()
    ip = (a // scale).cast(pl.String)
    if group:
        n = ip.str.len_chars()
        ip = (
            pl.when(n > 6)
            .then(
                pl.concat_str(
                    ip.str.slice(0, n - 6),
                    pl.lit("."),
                    ip.str.slice(n - 6, 3),
                    pl.lit("."),
                    ip.str.slice(n - 3, 3),
                )
            )
            .when(n > 3)
            .then(pl.concat_str(ip.str.slice(0, n - 3), pl.lit("."), ip.str.slice(n - 3, 3)))
            .otherwise(ip)
        )
    if decimals == 0:
        return pl.concat_str(sign, ip)
    frac = (a % scale).cast(pl.String).str.zfill(decimals)
    if trim:
        frac = frac.str.strip_chars_end("0")
    point = pl.lit("," if comma else ".")
    return pl.concat_str(
        sign, ip, pl.when(frac == "").then(pl.lit("")).otherwise(pl.concat_str(point, frac))
    )


def _cell_number(expr: pl.Expr, decimals: int) -> pl.Expr:
    """Shortest text of a number as a spreadsheet cell shows it ("1149", "0.78", "19.15")."""
    s = expr.round(decimals).cast(pl.String)
    return pl.when(s.str.ends_with(".0")).then(s.str.slice(0, s.str.len_chars() - 2)).otherwise(s)


def _number(expr: pl.Expr, decimals: int, fmt: SiteFormat, *, trim: bool) -> pl.Expr:
    if fmt.container == "xlsx":
        return _cell_number(expr, decimals)
    return fmt_number(
        expr,
        decimals,
        comma=fmt.decimal_comma,
        group=fmt.decimal_comma and fmt.group_thousands,
        trim=trim,
    )


def _date(column: str, fmt: SiteFormat) -> pl.Expr:
    pattern = "%Y-%m-%d" if fmt.container == "xlsx" else fmt.date_format
    return pl.col(column).dt.strftime(pattern)


def _text(column: str, fmt: SiteFormat, salt: int) -> pl.Expr:
    """Free text as written; odd sites leave a trailing space now and then."""
    if not fmt.odd_values:
        return pl.col(column)
    return pl.when(_variant(salt, True) == 0).then(pl.col(column) + " ").otherwise(pl.col(column))


def _value(fmt: SiteFormat, words: Wording) -> pl.Expr:
    """The assessments ``value`` cell: a grade measure's grade text, CK in the site's unit
    (3 decimals in a converted unit, whole U/L otherwise), an integer measure's whole
    number, any other number with 2 decimals (the contract's value types)."""
    m, v = pl.col("measure"), pl.col("value")
    per = per_canonical(fmt.ck_unit, words)
    ck = _number(v * per, 3, fmt, trim=False) if per != 1 else _number(v, 0, fmt, trim=True)
    kinds = words.value_types
    return (
        pl.when(m.is_in([n for n, k in kinds.items() if k == "grade"]))
        .then(pl.col("grade"))
        .when(m == "ck")
        .then(ck)
        .when(m.is_in([n for n, k in kinds.items() if k == "integer"]))
        .then(_number(v, 0, fmt, trim=True))
        .otherwise(_number(v, 2, fmt, trim=False))
    )


def _written(table: str, column: str, fmt: SiteFormat, salt: int, words: Wording) -> pl.Expr:
    key = (fmt.language, column)
    if column in words.date_columns[table]:
        return _date(column, fmt)
    if key in words.list_forms:
        return _list(column, words.list_forms[key], fmt, salt)
    if key in words.category_forms:
        return _category(column, words.category_forms[key], fmt, salt)
    if column == "cycle_number":
        return pl.col(column).cast(pl.String)
    if column in ("dose_g", "weight_kg"):
        return _number(pl.col(column), 1, fmt, trim=True)
    if column in ("drug", "term"):
        return _text(column, fmt, salt)
    if column == "value":
        return _value(fmt, words)
    if column == "unit":
        return pl.when(pl.col("measure") == "ck").then(pl.lit(fmt.ck_unit)).otherwise(None)
    return pl.col(column).cast(pl.String)


def headers(table: str, fmt: SiteFormat, words: Wording) -> list[str]:
    """Written header row: the table's columns (identifier columns right after the id)."""
    names = words.headers[fmt.headers][table]
    cols = [names[c] for c in words.columns[table]]
    if table == "patients":
        cols[1:1] = [h for h, _ in fmt.identifier_columns]
    return cols


def cell_kinds(table: str, fmt: SiteFormat, words: Wording) -> list[str]:
    """What each written column holds in a spreadsheet: date, number, value (number or MRC
    text by row) or text; aligned with ``headers``."""
    kinds = [
        "date"
        if c in words.date_columns[table]
        else "number"
        if c in NUMBER_COLUMNS
        else "value"
        if c == "value"
        else "text"
        for c in words.columns[table]
    ]
    if table == "patients":
        kinds[1:1] = ["text"] * len(fmt.identifier_columns)
    return kinds


def render(df: pl.DataFrame, table: str, fmt: SiteFormat, words: Wording) -> pl.DataFrame:
    """Written text of ``df``'s rows (all sites in ``df`` share ``fmt``).

    Returns the written columns (named as the site writes them), ``<header>#raw`` flags for
    cells written verbatim, ``_text_value`` (MRC grades stay text in XLSX), and PASS_THROUGH.
    """
    names = words.headers[fmt.headers][table]
    exprs: list[pl.Expr] = []
    flags: list[pl.Expr] = []
    for salt, column in enumerate(words.columns[table]):
        e = _written(table, column, fmt, salt, words)
        raw = f"{column}__raw"
        if raw in df.columns:
            e = pl.coalesce(pl.col(raw), e)
            flags.append(pl.col(raw).is_not_null().alias(f"{names[column]}#raw"))
        exprs.append(e.alias(names[column]))
    if table == "patients":
        exprs[1:1] = [pl.col(field).alias(h) for h, field in fmt.identifier_columns]
    extra = [(pl.col("measure") == "mrc").alias("_text_value")] if table == "assessments" else []
    keep = [c for c in PASS_THROUGH if c in df.columns]
    return df.select(*keep, *exprs, *flags, *extra)
