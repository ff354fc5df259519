"""The contract document sites receive is generated from the definition and up to date."""

from __future__ import annotations

import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ivig_platform.protocol.document import (
    Grid,
    contract_document,
    render_contract_html,
    render_contract_markdown,
)
from ivig_platform.protocol.load import load_protocol

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def protocol():
    return load_protocol(REPO / "protocol")


def test_committed_contract_document_is_up_to_date(protocol) -> None:
    committed = (REPO / "protocol/CONTRACT.md").read_text(encoding="utf-8")
    assert committed == render_contract_markdown(protocol), (
        "protocol/CONTRACT.md differs from the definition: run `ivig protocol document`")


def test_document_states_every_column_alias_spelling_unit_and_rule(protocol) -> None:
    text = render_contract_markdown(protocol)
    c = protocol.contract
    for table in c.tables.values():
        assert f"Table `{table.name}`" in text
        for f in table.fields:
            assert f"| `{f.name}` |" in text
            assert all(alias in text for alias in f.aliases)
    for vocabulary in c.all_vocabularies().values():
        for code, category in vocabulary.codes.items():
            assert f"`{code}`" in text
            assert all(spelling in text for spelling in category.spellings)
    for m in c.measures:
        assert f"| `{m.name}` | {m.title} | {m.unit} |" in text
    assert "ukat/l (×60)" in text
    assert all(f"| `{r.rule}` |" in text for r in c.rules)
    assert all(f"| `{r.code}` |" in text for r in c.rejections)
    for fact in ("No date before 1900-01-01", "`extract.xlsx`", "`^[a-z0-9_-]{2,32}$`",
                 "> 0 and ≤ 400", "25–250", "number, > 0 and ≤ 100,000 U/L",
                 "integer, 0–51 points", "0-, 0+, 5+ do not exist",
                 "of a duplicated key every copy is quarantined",
                 "the second and later copies, in file order, are quarantined"):
        assert fact in text, fact


def test_the_document_follows_the_definition(tmp_path) -> None:
    root = tmp_path / "protocol"
    shutil.copytree(REPO / "protocol", root)
    path = root / "contract/tables/ivig_cycles.yaml"
    path.write_text(path.read_text().replace("x-aliases: [peso_kg]", "x-aliases: [peso_kg, peso]")
                    .replace("maximum: 400", "maximum: 450"))
    text = render_contract_markdown(load_protocol(root))
    assert "| `weight_kg` | peso_kg, peso |" in text
    assert "> 0 and ≤ 450" in text


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:  # noqa: ANN001
        self.tags.append(tag)

    def handle_data(self, data) -> None:  # noqa: ANN001
        self.text.append(data)


def test_html_has_the_same_tables_and_escapes_text(protocol) -> None:
    page = render_contract_html(protocol)
    parsed = _Collector()
    parsed.feed(page)
    grids = [b for b in contract_document(protocol) if isinstance(b, Grid)]
    assert parsed.tags.count("table") == len(grids)
    assert parsed.tags.count("tr") == sum(len(g.rows) + 1 for g in grids)
    text = "".join(parsed.text)
    assert "<inbox>/<site_id>/<delivery_id>/" in text  # escaped in the page, text when read
    assert "&lt;inbox&gt;" in page
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<code>patient_id</code>" in page
