"""Every kind of validation error names the file, the key and what is wrong.

The cases are data (tests/cases/protocol/broken.yaml): a snippet of the shipped protocol
broken one way, and the start of the message the loader must give for it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from ivig_platform.protocol.errors import ProtocolError
from ivig_platform.protocol.files import read_source
from ivig_platform.protocol.load import build

REPO = Path(__file__).resolve().parents[1]
CASES = yaml.safe_load((Path(__file__).parent / "cases/protocol/broken.yaml").read_text())


def broken_copy(tmp_path: Path, case: dict) -> Path:
    """A copy of protocol/ (as `protocol`, so messages read as for the real one), broken."""
    root = tmp_path / "protocol"
    shutil.copytree(REPO / "protocol", root)
    target = root / case["file"]
    if case.get("delete"):
        target.unlink()
    elif "write" in case:
        target.write_text(case["write"], encoding="utf-8")
    elif "append" in case:
        target.write_text(target.read_text(encoding="utf-8") + case["append"], encoding="utf-8")
    else:
        old, new = case["replace"]
        text = target.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{case['id']}: {old!r} must occur once in {case['file']}"
        target.write_text(text.replace(old, new), encoding="utf-8")
    return root


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_broken_protocol_is_refused_with_a_clear_message(tmp_path, case) -> None:
    root = broken_copy(tmp_path, case)
    with pytest.raises(ProtocolError) as caught:
        build(read_source(root), [])
    messages = [str(issue) for issue in caught.value.issues]
    assert any(m.startswith(case["expect"]) for m in messages), "\n".join(messages)


def test_the_shipped_protocol_has_no_issue() -> None:
    assert build(read_source(REPO / "protocol"), []).version == "v1"


def test_every_problem_is_reported_at_once(tmp_path) -> None:
    """Independent mistakes in different files are all listed, not just the first."""
    root = broken_copy(tmp_path, CASES[0])
    (root / "privacy.yaml").write_text(
        (root / "privacy.yaml").read_text().replace("threshold: 5", "threshold: five"))
    (root / "monitoring.yaml").write_text("freshness: {warn_after_days: 9, error_after_days: 1}\n")
    with pytest.raises(ProtocolError) as caught:
        build(read_source(root), [])
    files = {issue.file for issue in caught.value.issues}
    assert {"protocol/contract/tables/ivig_cycles.yaml", "protocol/privacy.yaml",
            "protocol/monitoring.yaml"} <= files
    assert str(caught.value).count("\n") == len(caught.value.issues) - 1
