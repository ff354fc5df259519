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

from ivig_platform.demo import vocab
from ivig_platform.demo.sites import SiteFormat

UKAT_PER_UL = 1 / 60  # protocol §1: 1 µkat/L = 60 U/L
PASS_THROUGH = ("site_id", "delivery_id", "source_row", "_uid", "_malformed")
NUMBER_COLUMNS = ("cycle_number", "dose_g", "weight_kg")
N_VARIANTS = 6


def is_ukat(unit: str) -> bool:
    return unit.lower().endswith("kat/l")


def _variant(salt: int, odd: bool) -> pl.Expr:
    """Which spelling an odd site uses on this row: a fixed function of the row's uid."""
    if not odd:
        return pl.lit(0, dtype=pl.Int64)
    return (pl.col("_uid") * 7919 + salt * 104_729) % N_VARIANTS


def _category(column: str, field: str, fmt: SiteFormat, salt: int) -> pl.Expr:
    forms = vocab.CATEGORY_FORMS[(fmt.language, field)]
    mapping = {
        f"{canon}#{k}": f[k % len(f)] for canon, f in forms.items() for k in range(N_VARIANTS)
    }
    source = pl.col(column)
    if field == "serious":
        source = source.cast(pl.String)
    key = pl.concat_str(source, pl.lit("#"), _variant(salt, fmt.odd_values).cast(pl.String))
    return key.replace_strict(mapping, default=None, return_dtype=pl.String)


def _list(column: str, fmt: SiteFormat, salt: int) -> pl.Expr:
    forms = vocab.LIST_FORMS[(fmt.language, column)]
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


def _value(fmt: SiteFormat) -> pl.Expr:
    """The assessments ``value`` cell: MRC grade, CK in the site's unit, mRSS, UCLA GIT."""
    m, v = pl.col("measure"), pl.col("value")
    ck = (
        _number(v * UKAT_PER_UL, 3, fmt, trim=False)
        if is_ukat(fmt.ck_unit)
        else _number(v, 0, fmt, trim=True)
    )
    return (
        pl.when(m == "mrc")
        .then(pl.col("grade"))
        .when(m == "ck")
        .then(ck)
        .when(m == "mrss")
        .then(_number(v, 0, fmt, trim=True))
        .otherwise(_number(v, 2, fmt, trim=False))
    )


def _written(table: str, column: str, fmt: SiteFormat, salt: int) -> pl.Expr:
    if column in vocab.DATE_COLUMNS[table]:
        return _date(column, fmt)
    if column in ("overlap", "indication"):
        return _list(column, fmt, salt)
    if (fmt.language, column) in vocab.CATEGORY_FORMS:
        return _category(column, column, fmt, salt)
    if column == "cycle_number":
        return pl.col(column).cast(pl.String)
    if column in ("dose_g", "weight_kg"):
        return _number(pl.col(column), 1, fmt, trim=True)
    if column in ("drug", "term"):
        return _text(column, fmt, salt)
    if column == "value":
        return _value(fmt)
    if column == "unit":
        return pl.when(pl.col("measure") == "ck").then(pl.lit(fmt.ck_unit)).otherwise(None)
    return pl.col(column).cast(pl.String)


def headers(table: str, fmt: SiteFormat) -> list[str]:
    """Written header row: the table's columns (identifier columns right after the id)."""
    names = vocab.HEADERS[fmt.headers][table]
    cols = [names[c] for c in vocab.COLUMNS[table]]
    if table == "patients":
        cols[1:1] = [h for h, _ in fmt.identifier_columns]
    return cols


def cell_kinds(table: str, fmt: SiteFormat) -> list[str]:
    """What each written column holds in a spreadsheet: date, number, value (number or MRC
    text by row) or text; aligned with ``headers``."""
    kinds = [
        "date"
        if c in vocab.DATE_COLUMNS[table]
        else "number"
        if c in NUMBER_COLUMNS
        else "value"
        if c == "value"
        else "text"
        for c in vocab.COLUMNS[table]
    ]
    if table == "patients":
        kinds[1:1] = ["text"] * len(fmt.identifier_columns)
    return kinds


def render(df: pl.DataFrame, table: str, fmt: SiteFormat) -> pl.DataFrame:
    """Written text of ``df``'s rows (all sites in ``df`` share ``fmt``).

    Returns the written columns (named as the site writes them), ``<header>#raw`` flags for
    cells written verbatim, ``_text_value`` (MRC grades stay text in XLSX), and PASS_THROUGH.
    """
    names = vocab.HEADERS[fmt.headers][table]
    exprs: list[pl.Expr] = []
    flags: list[pl.Expr] = []
    for salt, column in enumerate(vocab.COLUMNS[table]):
        e = _written(table, column, fmt, salt)
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
