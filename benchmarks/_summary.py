"""How a benchmark child hands its result to the harness: a JSON file and a stdout line.

The file is what `run.run_child` reads; the `BENCH_SUMMARY ` line on stdout is the fallback
when the child died before writing it (`_measure.last_summary`). Kept apart from
`_measure` so a child imports nothing but the standard library before its own timings.
"""

from __future__ import annotations

import json
from pathlib import Path

PREFIX = "BENCH_SUMMARY "


def write_summary(out: Path, summary: dict) -> None:
    text = json.dumps(summary, default=str)
    out.write_text(text)
    print(PREFIX + text, flush=True)
