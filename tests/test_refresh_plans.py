"""`ivig refresh --plan FILE` and the flow's `plans` parameter (issue 11).

The real refreshes with a --plan file are in tests/test_refresh_runs.py (they reuse its
published warehouse, so the suite pays for no further cold refresh).
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

from protocol_helpers import amendment_file

IVIG = Path(sys.executable).with_name("ivig")


def _refresh(tmp_path: Path, *plans: Path) -> subprocess.CompletedProcess[str]:
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    args = [str(IVIG), "refresh", "--inbox", str(inbox), "--warehouse", str(tmp_path / "wh")]
    for plan in plans:
        args += ["--plan", str(plan)]
    env = {**os.environ, "IVIG_PSEUDONYM_KEY": "test-key-0123456789abcdef0123456789"}
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)


def test_a_missing_plan_file_fails_before_the_refresh_starts(tmp_path) -> None:
    done = _refresh(tmp_path, tmp_path / "missing.yaml")
    assert done.returncode == 1
    assert "--plan:" in done.stdout + done.stderr and "missing.yaml" in done.stdout + done.stderr


def test_an_invalid_plan_file_fails_with_the_protocols_error(tmp_path) -> None:
    bad = amendment_file(tmp_path, "bad.yaml", """\
        version: v2
        extends: v9
        effective_date: 2026-12-01
        rationale: extends a plan that does not exist
        analysis:
          windows: {baseline_days_before: 60}
        """)
    done = _refresh(tmp_path, bad)
    assert done.returncode == 1
    assert "--plan:" in done.stdout + done.stderr and "v9" in done.stdout + done.stderr


def test_the_flow_takes_plan_files_as_a_parameter() -> None:
    from flows.refresh import refresh

    parameter = inspect.signature(refresh.fn).parameters["plans"]
    assert parameter.default is None

