"""The README's recipes as the tests run them: a section's fenced blocks, word for word."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DEPLOY_README = ROOT / "deploy" / "README.md"


def section(path: Path, heading: str) -> str:
    """The text under the markdown heading `heading` up to the next heading of its level."""
    text = path.read_text(encoding="utf-8")
    found = re.search(rf"^(#+) {re.escape(heading)}\n", text, re.MULTILINE)
    assert found, f"{path.name} has no section {heading!r}"
    level = len(found.group(1))
    rest = text[found.end():]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[:end.start()] if end else rest


def fenced(text: str, language: str) -> list[str]:
    """The fenced code blocks of `text` in `language`, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def commands(text: str) -> list[str]:
    """The shell commands of the `sh` blocks of `text`, one per line (comments dropped)."""
    lines = [line for block in fenced(text, "sh") for line in block.splitlines()]
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
