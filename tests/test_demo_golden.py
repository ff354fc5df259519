"""The default demo is byte-for-byte what it was (issue 11, the demo reading the protocol).

The golden digest in tests/data/demo_golden.json was recorded before the demo read its
vocabulary, measures and windows from the protocol; any change to the generator that moves a
byte of the inbox, a random draw, a figure or a clean row fails here. To accept a deliberate
change, regenerate it: `python tests/test_demo_golden.py` (and say why in the commit).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from demo_digest import file_digests, truth_digest

from ivig_platform.demo import write_demo_inbox

GOLDEN = Path(__file__).parent / "data" / "demo_golden.json"


def _digest(inbox: Path) -> dict[str, object]:
    truth = write_demo_inbox(inbox)
    return {"files": file_digests(inbox), **truth_digest(truth)}


def test_default_demo_inbox_and_truth_match_the_golden_digest(tmp_path: Path) -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    now = json.loads(json.dumps(_digest(tmp_path)))
    assert sorted(now["files"]) == sorted(golden["files"])
    changed = [f for f in golden["files"] if now["files"][f] != golden["files"][f]]
    assert not changed, f"demo files changed: {changed}"
    assert now["figures"] == golden["figures"]
    assert now["clean"] == golden["clean"]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    with tempfile.TemporaryDirectory() as folder:
        GOLDEN.write_text(json.dumps(_digest(Path(folder)), indent=1, sort_keys=True) + "\n",
                          encoding="utf-8")
