"""Fingerprints follow the parsed values: reformatting keeps them, any value change moves
the fingerprint of the part it belongs to (contract, plan, whole protocol)."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
import yaml

from ivig_platform.protocol.files import read_source
from ivig_platform.protocol.load import build, plan_fingerprint

REPO = Path(__file__).resolve().parents[1]


def fingerprints(root: Path) -> dict[str, str]:
    protocol = build(read_source(root), [])
    return {"contract": protocol.contract_fingerprint,
            "plan": plan_fingerprint(protocol.primary_plan), "whole": protocol.fingerprint}


@pytest.fixture
def copy(tmp_path) -> Path:
    root = tmp_path / "protocol"
    shutil.copytree(REPO / "protocol", root)
    return root


@pytest.fixture(scope="module")
def shipped() -> dict[str, str]:
    return fingerprints(REPO / "protocol")


def reformat(root: Path) -> None:
    """Every file rewritten in another layout: YAML in flow style with sorted keys and no
    comments, numbers as floats where they are whole, CSV fully quoted with CRLF."""
    for path in root.rglob("*.yaml"):
        text = yaml.safe_dump(yaml.safe_load(path.read_text()), sort_keys=True,
                              default_flow_style=True, width=50, allow_unicode=False)
        path.write_text(text.replace("maximum: 400", "maximum: 400.0"))
    for path in root.rglob("*.csv"):
        rows = list(csv.reader(io.StringIO(path.read_text())))
        out = io.StringIO()
        csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
        path.write_text(out.getvalue(), newline="")


def test_fingerprints_are_sha256_hex(shipped) -> None:
    assert all(len(f) == 64 and int(f, 16) >= 0 for f in shipped.values())
    assert len(set(shipped.values())) == 3


def test_reformatting_keeps_every_fingerprint(copy, shipped) -> None:
    reformat(copy)
    assert "400.0" in (copy / "contract/tables/ivig_cycles.yaml").read_text()
    assert fingerprints(copy) == shipped


def test_reordering_the_keys_of_a_mapping_keeps_the_fingerprint(copy, shipped) -> None:
    path = copy / "contract/measures.yaml"
    path.write_text(path.read_text().replace("factors: {u/l: 1, ui/l: 1, iu/l: 1, ukat/l: 60}",
                                             "factors: {ukat/l: 60, iu/l: 1, u/l: 1, ui/l: 1}"))
    assert fingerprints(copy) == shipped


CHANGES = [
    # (id, file, old, new, parts whose fingerprint changes)
    ("dose_maximum", "contract/tables/ivig_cycles.yaml", "maximum: 400", "maximum: 401",
     {"contract", "whole"}),
    ("alias", "contract/tables/ivig_cycles.yaml", "x-aliases: [peso_kg]",
     "x-aliases: [peso_kg, peso]", {"contract", "whole"}),
    ("column_description", "contract/tables/patients.yaml", "Empty means none.",
     "Empty means no overlap.", {"contract", "whole"}),
    ("new_spelling", "contract/vocabularies.csv", "sex,M,male,male|hombre",
     "sex,M,male,male|hombre|varon", {"contract", "whole"}),
    ("code_order", "contract/vocabularies.csv",
     "ssc_subtype,diffuse,Diffuse cutaneous SSc,difusa|dcssc\n"
     "ssc_subtype,limited,Limited cutaneous SSc,limitada|lcssc",
     "ssc_subtype,limited,Limited cutaneous SSc,limitada|lcssc\n"
     "ssc_subtype,diffuse,Diffuse cutaneous SSc,difusa|dcssc",
     {"contract", "plan", "whole"}),
    ("measure_range_reaches_the_labels", "contract/measures.yaml", "maximum: 2.83",
     "maximum: 3", {"contract", "plan", "whole"}),
    ("ck_factor", "contract/measures.yaml", "ukat/l: 60", "ukat/l: 60.1", {"contract", "whole"}),
    ("rule_order", "contract/rules.csv",
     "invalid_number,number columns and numeric measures,not a number in the file's convention\n"
     "not_integer,integer columns and integer measures,a number with a fractional part",
     "not_integer,integer columns and integer measures,a number with a fractional part\n"
     "invalid_number,number columns and numeric measures,not a number in the file's convention",
     {"contract", "whole"}),
    ("earliest_date", "contract/delivery.yaml", "earliest: 1900-01-01", "earliest: 1900-01-02",
     {"contract", "whole"}),
    ("pseudonym_input", "privacy.yaml", "of: [site_id, patient_id]", "of: [patient_id]",
     {"contract", "whole"}),
    ("post_target", "analysis/v1.yaml", "post_target_days: 90 ", "post_target_days: 91 ",
     {"plan", "whole"}),
    ("responder_value", "analysis/v1.yaml", 'value: 3}', 'value: 4}', {"plan", "whole"}),
    ("display_decimals", "analysis/v1.yaml", "decimals: 0\n", "decimals: 1\n", {"plan", "whole"}),
    ("ci_level", "analysis/v1.yaml", "ci_level: 0.95", "ci_level: 0.9", {"plan", "whole"}),
    ("small_cell_threshold", "privacy.yaml", "threshold: 5", "threshold: 10", {"whole"}),
    ("freshness", "monitoring.yaml", "warn_after_days: 45", "warn_after_days: 46", {"whole"}),
    ("protocol_title", "protocol.yaml", "study: IVIG in systemic sclerosis",
     "study: IVIG in SSc", {"whole"}),
]


@pytest.mark.parametrize(("file", "old", "new", "changed"), [c[1:] for c in CHANGES],
                         ids=[c[0] for c in CHANGES])
def test_a_value_change_moves_the_fingerprint_of_its_part(copy, shipped, file, old, new,
                                                           changed) -> None:
    path = copy / file
    text = path.read_text()
    assert text.count(old) == 1
    path.write_text(text.replace(old, new))
    after = fingerprints(copy)
    assert {part for part in after if after[part] != shipped[part]} == changed
