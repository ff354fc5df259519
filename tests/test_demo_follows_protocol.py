"""The demo writes what the protocol in force defines (issue 11): an amended header alias
and category spelling reach the generated files, the replaced ones disappear, and every
form the demo writes still lands (it folds back to an accepted spelling)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from protocol_helpers import amended

from ivig_platform.demo import write_demo_inbox
from ivig_platform.demo.wording import wording

#: The Spanish header of `sex` renamed and the Spanish spelling of F replaced.
RENAMED = """\
    version: v1-demo
    extends: v1
    effective_date: 2026-12-01
    rationale: sites write the sex column as genero and women as femenino
    contract:
      tables:
        patients:
          fields:
            - name: sex
              x-aliases: [genero]
      vocabularies:
        sex:
          codes:
            F: {spellings: [female, femenino]}
"""


def _patients_sex_cells(inbox: Path) -> dict[str, list[str]]:
    """Header of the sex column -> its cells, over every CSV patients file."""
    cells: dict[str, list[str]] = {}
    for path in sorted(inbox.rglob("patients.csv")):
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:  # the Windows-1252 sites
            text = raw.decode("cp1252")
        delimiter = max(";,\t", key=text.splitlines()[0].count)
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
        header = [h.strip() for h in rows[0]]
        for name in header:
            if name.lower() in ("sex", "sexo", "genero"):
                i = header.index(name)
                cells.setdefault(name.lower(), []).extend(r[i].strip().lower()
                                                          for r in rows[1:] if len(r) > i)
    return cells


@pytest.fixture(scope="module")
def renamed(tmp_path_factory: pytest.TempPathFactory):
    return amended(tmp_path_factory.mktemp("amendment"), RENAMED)


def test_demo_writes_an_amended_alias_and_spelling(renamed, tmp_path: Path) -> None:
    write_demo_inbox(tmp_path, n_sites=6, n_patients=24, seed=5, protocol=renamed)
    cells = _patients_sex_cells(tmp_path)
    assert "genero" in cells and "sexo" not in cells
    assert "femenino" in cells["genero"] and "mujer" not in cells["genero"]


def test_demo_under_the_repository_protocol_writes_the_original_spelling(tmp_path: Path) -> None:
    """The same demo under v1: the check above can fail (the words differ by protocol)."""
    write_demo_inbox(tmp_path, n_sites=6, n_patients=24, seed=5)
    cells = _patients_sex_cells(tmp_path)
    assert "sexo" in cells and "genero" not in cells
    assert "mujer" in cells["sexo"]


def test_every_amended_form_folds_to_its_code(renamed) -> None:
    words = wording(renamed.contract)
    assert words.category_forms[("es", "sex")]["F"] == (
        "femenino", " Femenino ", "FEMENINO", "Femenino")
    assert {h["patients"]["sex"] for h in words.headers.values()} == {
        "sex", "Sex", "genero", "Genero", "GENERO"}


def test_site_ck_units_are_written_from_the_contracts_unit_list() -> None:
    """A site format names its CK unit by position in the contract's accepted units, so the
    unit written follows the contract's list; a unit the contract lacks is refused."""
    from dataclasses import replace

    from ivig_platform.demo.sites import SITES, site_format
    from ivig_platform.protocol.load import load_protocol

    words = wording(load_protocol().contract)
    k = next(i for i, (_, f) in enumerate(SITES) if f.ck_unit == "u1 upper")
    assert site_format(k, words).ck_unit == "UI/L"
    reordered = replace(words, unit_spellings={"ck": ("u/l", "iu/l", "ui/l", "ukat/l")})
    assert site_format(k, reordered).ck_unit == "IU/L"
    with pytest.raises(KeyError):
        replace(words, unit_spellings={"ck": ("u/l", "mg/dl")}).unit_form("ck", "u1 upper")
