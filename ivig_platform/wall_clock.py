"""How long this command has been running, counted from the start of its process.

The time a command prints is the wall time a user waited for it: Python's start, the
imports and Prefect's temporary server included, not only the flow's own stages (which
were half of it). On Linux the process's start comes from `/proc/self/stat`; elsewhere
from the first import of this module, which the CLI does at once.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def _process_age() -> float | None:
    """Seconds since this process started, from the kernel (None where unknown)."""
    try:
        stat = Path("/proc/self/stat").read_text()
        # Field 22 is the start in clock ticks after boot; the name (field 2) may hold
        # spaces, so count from its closing parenthesis.
        start_ticks = int(stat[stat.rindex(")") + 2:].split()[19])
        return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


_STARTED = time.monotonic() - max(0.0, _process_age() or 0.0)


def wall_seconds() -> float:
    """Seconds since the process started."""
    return time.monotonic() - _STARTED


def format_duration(seconds: float) -> str:
    """`42.3 s` under a minute, `2 min 05 s` above."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"
