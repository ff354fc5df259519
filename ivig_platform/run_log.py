"""Each run's log file: where tracebacks and Prefect's logs go instead of the console.

A refresh that fails must say so in one line (issue 10, point 3); the details — Prefect's
run and task logs, tracebacks, whatever a library prints — belong in
`WAREHOUSE/logs/refresh-<run_id>.log`, which that line names. The flow attaches a log
handler for its run wherever it runs (CLI or a Prefect worker); the CLI also sends the
process's own stdout and stderr (and so those of Prefect's temporary server, its child)
to the same file, keeping a handle on the terminal for its live display and last line.

Privacy (§6): nothing here logs a cell value; it only routes what the code already logs,
and the code never logs values.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

LOGS_DIR = "logs"
KEEP_LOGS = 30
FORMAT = "%(asctime)s | %(levelname)-7s | %(name)s - %(message)s"


def new_run_id() -> str:
    """A run's name: its start (UTC, sorts by time) and a random tail (two runs a second)."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def log_path(warehouse: Path, run_id: str) -> Path:
    return Path(warehouse) / LOGS_DIR / f"refresh-{run_id}.log"


def prune_logs(warehouse: Path, keep: int = KEEP_LOGS) -> None:
    """Keep the logs (and blocked runs' Data Docs) of the last `keep` runs."""
    folder = Path(warehouse) / LOGS_DIR
    if not folder.is_dir():
        return
    runs = sorted({p.name.split(".", 1)[0].removesuffix("-data-docs")
                   for p in folder.iterdir() if p.name.startswith("refresh-")})
    for old in runs[:-keep]:
        for path in folder.glob(f"{old}*"):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


@contextmanager
def run_log_handler(path: Path) -> Iterator[None]:
    """Everything logged at INFO or above (Prefect's run logs included) also goes to `path`.

    Attached to the root logger, which Prefect's flow and task run loggers propagate to;
    attaching it twice for one file (CLI and flow in one process) is a no-op.
    """
    root = logging.getLogger()
    target = str(Path(path).resolve())
    if any(isinstance(h, logging.FileHandler) and h.baseFilename == target
           for h in root.handlers):
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(target, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


@dataclass
class Terminal:
    """The console as it was before its output went to the log."""

    out: TextIO
    err: TextIO


@contextmanager
def console_to_log(path: Path) -> Iterator[Terminal]:
    """Send this process's stdout and stderr (file descriptors 1 and 2, so child processes
    and C libraries too) to `path` for the block; yield streams on the real console."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = os.dup(1), os.dup(2)
    terminal = Terminal(os.fdopen(os.dup(saved[0]), "w", buffering=1),
                        os.fdopen(os.dup(saved[1]), "w", buffering=1))
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        os.dup2(log, 1)
        os.dup2(log, 2)
        yield terminal
    finally:
        for stream in (sys.stdout, sys.stderr):
            with suppress(OSError, ValueError):  # the log's disk may be full: go on
                stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, log):
            os.close(fd)
        for stream in (terminal.out, terminal.err):
            with suppress(OSError):
                stream.close()
