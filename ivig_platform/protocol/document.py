"""The contract document the sites receive, generated from the protocol definition.

One document model (headings, paragraphs, lists, tables) is built from the contract in
force, then rendered as Markdown (`protocol/CONTRACT.md`, committed; a test fails when it
differs from the definition) or as a standalone HTML page for the docs site. Nothing in
it is written by hand, so it cannot disagree with what landing applies.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from ivig_platform.protocol.load import Protocol
from ivig_platform.protocol.schema import (
    MEASURE_VOCABULARY,
    Contract,
    Measure,
    TableField,
    TableSchema,
    number_text,
)


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Grid:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


Block = Heading | Paragraph | Bullets | Grid

_KIND_TEXT = {
    "id": "text (identifier)", "text": "text", "date": "date", "decimal": "decimal",
    "integer": "integer", "category": "category", "list": "list", "yesno": "yes/no",
    "value": "text (read by its measure)",
}  # fmt: skip


def contract_document(protocol: Protocol) -> list[Block]:
    """The contract document of `protocol`'s contract in force, as blocks."""
    c = protocol.contract
    blocks: list[Block] = [
        Heading(1, f"Data contract — {protocol.info.study}"),
        Paragraph(
            f"Protocol {protocol.version}, contract in force {protocol.contract_version} "
            f"(fingerprint {protocol.contract_fingerprint[:12]}). Generated from the "
            "protocol definition (`protocol/`) by `ivig protocol document`; do not edit "
            "by hand."
        ),
    ]
    blocks += _delivery(c)
    for name in c.delivery.tables:
        blocks += _table(c, c.table(name))
    blocks += _vocabularies(c)
    blocks += _measures(c)
    blocks += _rules(c)
    blocks += _terminology(c)
    return blocks


def _delivery(c: Contract) -> list[Block]:
    d = c.delivery
    files = ", ".join(f"`{d.csv_file(t)}`" for t in d.tables)
    delimiters = "; ".join(
        f"`{'tab' if sep == chr(9) else sep}`: "
        + ("`,` is the decimal separator and `.` groups thousands" if style == "spanish"
           else "`.` is the decimal separator and nothing groups")
        for sep, style in d.csv.delimiters.items()
    )
    return [
        Heading(2, "Deliveries"),
        Bullets((
            f"One folder per delivery: `{d.layout}`, holding {files}, or one "
            f"`{d.xlsx.file}` with one sheet per table, named `{d.xlsx_sheet('<table>')}`.",
            f"`site_id`: {d.site_id.description} (`{d.site_id.pattern}`).",
            f"`delivery_id`: {d.delivery_id.description}",
            f"`{d.ready_marker.file}`: {d.ready_marker.description}",
            f"CSV: delimiter found per file; {delimiters}. Encodings: "
            f"{', '.join(d.csv.encodings)}; line endings {', '.join(d.csv.line_endings)}.",
            f"Dates: {', '.join(d.dates.formats)} (never month first); real date cells in "
            f"XLSX. No date before {d.dates.earliest.isoformat()} nor after the delivery "
            "date (the delivery_id where it is an ISO date, otherwise the day of landing).",
            f"Column names: {d.matching.headers}; each column may come under its name or an "
            f"alias. Category values: {d.matching.categories}.",
            d.matching.dropped_columns,
        )),
    ]


def field_type(f: TableField) -> str:
    text = _KIND_TEXT[f.kind]
    if f.vocabulary:
        text += f" ({f.vocabulary})"
    if f.kind == "list":
        text += f", `{f.delimiter}`-separated"
    return text


def field_rule(c: Contract, f: TableField) -> str:
    parts = []
    if f.not_null:
        parts.append("required" if f.kind != "list" else "required, 1 or more")
    if f.constraints.is_set:
        parts.append(f.constraints.text())
    if f.vocabulary:
        codes = c.vocabulary(f.vocabulary).code_list
        parts.append(("of " if f.kind == "list" else "") + ", ".join(codes))
    if f.identifier:
        parts.append("direct identifier")
    return "; ".join(parts) or "—"


def _table(c: Contract, t: TableSchema) -> list[Block]:
    rows = tuple(
        (f"`{f.name}`", ", ".join(f.aliases) or "—", field_type(f),
         "optional" if f.column_optional else "required", field_rule(c, f))
        for f in t.fields
    )
    notes = []
    if t.primary_key:
        which = ("every copy is quarantined" if t.duplicates == "every_copy"
                 else "the second and later copies, in file order, are quarantined")
        notes.append(f"Key: {', '.join(t.primary_key)}; of a duplicated key {which}.")
    for fk in t.foreign_keys:
        notes.append(f"{', '.join(fk.fields)} must exist in {fk.reference.resource}.")
    for f in t.fields:
        if f.description:
            notes.append(f"`{f.name}`: {f.description}")
    return [
        Heading(2, f"Table `{t.name}` — {t.description or t.title or ''}".rstrip(" —")),
        Grid(("column", "also accepted", "type", "column in file", "rule"), rows),
        Bullets(tuple(notes)),
    ]


def _vocabularies(c: Contract) -> list[Block]:
    rows = []
    for name, vocabulary in c.all_vocabularies().items():
        for code, category in vocabulary.codes.items():
            rows.append((name, f"`{code}`", ", ".join(category.spellings) or "—"))
    return [
        Heading(2, "Accepted values"),
        Paragraph("Each value may be written as its code or any of its spellings; case, "
                  "accents and surrounding spaces are ignored."),
        Grid(("vocabulary", "code", "also accepted"), tuple(rows)),
    ]


def measure_rule(m: Measure) -> str:
    v = m.value
    if v.type == "grade":
        modifiers = " or ".join(f"`{k}` ({x:+g})" for k, x in v.modifiers.items())
        return (f"grade {number_text(v.minimum)}–{number_text(v.maximum)}, optionally "
                f"followed by {modifiers}, rounded to {v.decimals} decimals; "
                f"{', '.join(v.not_allowed)} do not exist")
    kind = "integer" if v.type == "integer" else "number"
    return f"{kind}, {m.valid_range.text()} {m.unit}".rstrip()


def _measures(c: Contract) -> list[Block]:
    rows = []
    for m in c.measures:
        if m.units:
            units = ", ".join(f"{u} (×{number_text(f)})" for u, f in m.units.factors.items())
            units = ("required: " if m.units.required else "") + units
        else:
            units = "ignored"
        rows.append((f"`{m.name}`", m.title, m.unit, measure_rule(m), units))
    return [
        Heading(2, f"Measures (`assessments.{MEASURE_VOCABULARY}`)"),
        Paragraph("The value of an assessment is read and checked by the rule of its "
                  "measure, after conversion to the canonical unit. Units are matched "
                  "ignoring case and spaces, with µ/μ read as u (µkat/L is ukat/l)."),
        Grid(("measure", "title", "unit", "value", "unit column"), tuple(rows)),
    ]


def _rules(c: Contract) -> list[Block]:
    return [
        Heading(2, "Row rules and quarantine"),
        Paragraph("A row that breaks a rule is not loaded: it is quarantined with its site, "
                  "delivery, table, source file, row number, column and rule (and the "
                  "offending value unless the column is an identifier). A row breaking "
                  "several rules is recorded under the first in this order."),
        Grid(("rule", "applies to", "meaning"),
             tuple((f"`{r.rule}`", r.applies_to, r.description) for r in c.rules)),
        Heading(2, "Rejected deliveries"),
        Paragraph("A delivery that cannot be used is rejected as a whole with a reason that "
                  "starts with its code; the site's previous accepted delivery stays in "
                  "force."),
        Grid(("code", "meaning"),
             tuple((f"`{r.code}`", r.description) for r in c.rejections)),
    ]


def _terminology(c: Contract) -> list[Block]:
    drugs = c.terminology.drugs
    return [
        Heading(2, "Drug terminology"),
        Bullets((
            f"Drugs map to a class ({', '.join(drugs.classes)}) through "
            f"`{drugs.seed}`; a drug that maps to nothing is kept as `{drugs.unmapped}` and "
            "listed in the run report.",
            f"Matching: {drugs.matching}.",
            f"Adverse-event terms are coded through `{c.terminology.adverse_event_terms.seed}`.",
        )),
    ]


# --------------------------------------------------------------------------- rendering


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            out.append(block.text)
        elif isinstance(block, Bullets):
            if not block.items:
                continue
            out.append("\n".join(f"- {item}" for item in block.items))
        else:
            lines = ["| " + " | ".join(block.columns) + " |",
                     "|" + "|".join("---" for _ in block.columns) + "|"]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def _inline_html(text: str) -> str:
    """Escaped text with Markdown's `code` spans as <code>."""
    parts = html.escape(text, quote=False).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


_STYLE = """body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;
line-height:1.45;color:#1d2125}table{border-collapse:collapse;margin:.5rem 0 1rem}
th,td{border:1px solid #ccd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#eef1f5}code{background:#f2f4f7;padding:0 .2rem}"""


def to_html(blocks: list[Block]) -> str:
    title = next((b.text for b in blocks if isinstance(b, Heading)), "Data contract")
    body: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{_inline_html(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{_inline_html(block.text)}</p>")
        elif isinstance(block, Bullets):
            if block.items:
                items = "".join(f"<li>{_inline_html(i)}</li>" for i in block.items)
                body.append(f"<ul>{items}</ul>")
        else:
            head = "".join(f"<th>{_inline_html(c)}</th>" for c in block.columns)
            rows = "".join(
                "<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in row) + "</tr>"
                for row in block.rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>\n"
        + "\n".join(body) + "\n</body></html>\n"
    )


def render_contract_markdown(protocol: Protocol) -> str:
    return to_markdown(contract_document(protocol))


def render_contract_html(protocol: Protocol) -> str:
    """The contract document as one standalone HTML page (the docs site's copy)."""
    return to_html(contract_document(protocol))
