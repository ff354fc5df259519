"""A digest of everything the demo generator produces: the inbox's bytes, file by file, and
the truth it returns (§1 figures, clean tables), so a refactoring that changes a byte or a
random draw is seen (tests/test_demo_golden.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ivig_platform.demo import DemoTruth


def file_digests(inbox: Path) -> dict[str, str]:
    """SHA-256 of every file under `inbox`, by its path relative to it."""
    return {p.relative_to(inbox).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(inbox.rglob("*")) if p.is_file()}


def truth_digest(truth: DemoTruth) -> dict[str, object]:
    """The figures (rounded: Polars' group order makes the last bits of a mean vary) and a
    SHA-256 of each clean table's rows and schema."""
    figures = {k: round(v, 9) if isinstance(v, float) else v
               for k, v in sorted(truth.figures.items())}
    clean = {t: hashlib.sha256(df.write_ndjson().encode() + str(df.schema).encode()).hexdigest()
             for t, df in sorted(truth.clean.items())}
    return {"figures": figures, "clean": clean}
