"""`bash deploy/bootstrap.sh setup`: the environment only, each step announced first."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bootstrap(checkout: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(checkout / "deploy" / "bootstrap.sh"), *args],
                          cwd=checkout, capture_output=True, text=True, timeout=600)


def checkout_copy(folder: Path) -> Path:
    """What `uv sync` reads of the checkout, in `folder`; the code linked, not copied. The
    set-up runs there, never on the `.venv` these tests run in (a sync with another
    interpreter would rebuild it under their feet)."""
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy2(ROOT / name, folder / name)
    (folder / "deploy").mkdir()
    shutil.copy2(ROOT / "deploy" / "bootstrap.sh", folder / "deploy" / "bootstrap.sh")
    for name in ("ivig_platform", "flows", "protocol", ".tools"):
        if (ROOT / name).exists():
            (folder / name).symlink_to(ROOT / name)
    return folder


def test_unknown_command_prints_the_usage_before_any_work(tmp_path: Path) -> None:
    done = bootstrap(checkout_copy(tmp_path), "deploy")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "usage: bash deploy/bootstrap.sh setup | demo [DIR] | test [PYTEST ARGS] | upgrade [ARGS]")
    assert not (tmp_path / ".venv").exists()


def test_setup_builds_the_environment_and_runs_nothing_else(tmp_path: Path) -> None:
    checkout = checkout_copy(tmp_path)
    done = bootstrap(checkout, "setup")
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if line.startswith("bootstrap: ")]
    assert any(line.startswith("bootstrap: setting up .venv/ from uv.lock") for line in said)
    assert said[-2:] == [
        "bootstrap: .venv/ is ready: .venv/bin/ivig, .venv/bin/prefect, .venv/bin/pytest",
        "bootstrap: done; activate with: source .venv/bin/activate",
    ]
    assert done.stdout == ""  # no demo, no tests
    assert not (checkout / "demo").exists()
    ran = subprocess.run([str(checkout / ".venv" / "bin" / "ivig"), "--help"],
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0 and "Usage: ivig" in ran.stdout
