"""The truth about a run, in the one line its operator reads.

A failed refresh must say what failed, whether anything was published and which run is
live, and where the details are — never "nothing published" when the file was replaced
(issue 10, point 3). What is live is read from the published file itself
(`quality.refresh_run`), so the line stays true whatever happened in between (a publish
that completed, one that was played back, a rollback).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ivig_platform.warehouse.disk import describe_disk_full, disk_full_error
from ivig_platform.warehouse.live import live_run
from ivig_platform.warehouse.publish import run_folder


class RefreshFailed(RuntimeError):
    """A run's failure, already phrased as the operator's one line."""

    def __init__(self, line: str, stage: str = "", published: bool = False) -> None:
        super().__init__(line)  # args = (line,): picklable, as Prefect may store it
        self.stage = stage
        self.published = published


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def failure_line(exc: BaseException, *, stage: str, warehouse: Path, run_id: str | None,
                 log: Path | None) -> RefreshFailed:
    """`exc` (raised during `stage` of run `run_id`) as the run's one-line failure."""
    if isinstance(exc, RefreshFailed):
        return exc
    run_dir = run_folder(warehouse, run_id) if run_id else None
    disk = describe_disk_full(exc, warehouse, run_dir)
    cause = first_line(exc)
    reason = cause if disk is None else disk if disk_full_error(exc) else f"{disk} ({cause})"
    live = live_run(warehouse)
    published = live is not None and run_id is not None and live.run_id == run_id
    if published:
        outcome = f"run {run_id} was published and is live"
    elif live is None:
        outcome = f"nothing published; {warehouse} has no published file yet"
    else:
        outcome = f"nothing published; live: {live.describe()}"
    where = f" (log: {log})" if log is not None else ""
    return RefreshFailed(f"refresh failed during {stage}: {reason}; {outcome}{where}",
                         stage=stage, published=published)


@dataclass
class StageClock:
    """Which stage a run is in (for its failure line) and how long each one took."""

    current: str = "start"
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str, timing: str | None | bool = True) -> Iterator[None]:
        """Enter stage `name`; its time is added to `timings[timing]` (default: the
        name; None: not timed)."""
        self.current = name
        key = name if timing is True else timing
        started = time.perf_counter()
        try:
            yield
        finally:
            if isinstance(key, str):
                self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - started
