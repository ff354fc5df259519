"""Bytes of the delivery files: CSV in a site's dialect and encoding, or one XLSX workbook.

Pure functions of their inputs, so the same rows always give the same bytes (the XLSX creation
date is the delivery date, never the clock).
"""

from __future__ import annotations

import datetime as dt
import io

import polars as pl
import xlsxwriter

from ivig_platform.demo.sites import SiteFormat


def csv_bytes(written: pl.DataFrame, columns: list[str], fmt: SiteFormat) -> bytes:
    """One CSV file.  Rows flagged ``_malformed`` get a field too many ("extra") or lose their
    last two fields ("short"), which is what a broken export line looks like."""
    # empty text is written as an empty field, not as a quoted ""
    text = written.select(pl.col(c).replace("", None) for c in columns).write_csv(
        separator=fmt.delimiter,
        line_terminator=fmt.newline,
        quote_style="necessary",
        null_value="",
    )
    bad = written.select(pl.arg_where(pl.col("_malformed").is_not_null())).to_series().to_list()
    if bad:
        lines = text.split(fmt.newline)
        kinds = written["_malformed"]
        for i in bad:
            line = lines[i + 1]  # +1: header
            if kinds[i] == "extra":
                lines[i + 1] = (
                    line + fmt.delimiter + ("sin dato" if fmt.language == "es" else "n/a")
                )
            else:
                lines[i + 1] = fmt.delimiter.join(line.split(fmt.delimiter)[:-2])
        text = fmt.newline.join(lines)
    return text.encode(fmt.encoding)  # "utf-8-sig" writes the BOM


def xlsx_bytes(
    sheets: dict[str, tuple[pl.DataFrame, list[str], list[str]]], created: dt.date
) -> bytes:
    """One workbook, a sheet per table: real date cells, number cells for numbers, text for
    record numbers, MRC grades and anything written verbatim.

    ``sheets`` maps table -> (written rows, headers, cell kinds); kinds are those of
    ``render.cell_kinds`` (date, number, value, text)."""
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_numbers": False})
    wb.set_properties({"created": dt.datetime.combine(created, dt.time())})
    date_fmt = wb.add_format({"num_format": "dd/mm/yyyy"})
    for table, (written, columns, kinds) in sheets.items():
        ws = wb.add_worksheet(table)
        ws.write_row(0, 0, columns)
        raw_cols = [f"{c}#raw" if f"{c}#raw" in written.columns else None for c in columns]
        text_value = written["_text_value"] if "_text_value" in written.columns else None
        data = written.select(columns).rows()
        raws = [written[r].to_list() if r else None for r in raw_cols]
        tv = text_value.to_list() if text_value is not None else None
        for i, row in enumerate(data, start=1):
            for j, cell in enumerate(row):
                if cell is None or cell == "":
                    continue
                kind = kinds[j]
                if raws[j] is not None and raws[j][i - 1]:
                    kind = "text"
                elif kind == "value":
                    kind = "text" if tv is not None and tv[i - 1] else "number"
                if kind == "date":
                    ws.write_datetime(i, j, dt.date.fromisoformat(cell), date_fmt)
                elif kind == "number":
                    ws.write_number(i, j, float(cell))
                else:
                    ws.write_string(i, j, cell)
    wb.close()
    return buf.getvalue()
