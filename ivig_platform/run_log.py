"""Each run's log file: where tracebacks and Prefect's logs go instead of the console.

A refresh that fails must say so in one line (issue 10, point 3); the details — Prefect's
run and task logs, tracebacks, whatever a library prints — belong in
`WAREHOUSE/logs/refresh-<run_id>.log`, which that line names. The flow attaches a log
handler for its run wherever it runs (CLI or a Prefect worker); the CLI also sends the
process's own stdout and stderr (and so those of Prefect's temporary server, its child)
to the same file for the rest of the process, keeping a handle on the terminal for its
live display and its last line.

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
        with suppress(OSError):  # closing flushes: a full disk must not hide the failure
            handler.close()


@dataclass
class Terminal:
    """The console as it was before its output went to the log."""

    out: TextIO
    err: TextIO


def console_to_log(path: Path) -> Terminal:
    """From now until the process exits, send its stdout and stderr to `path`; return
    streams on the real console for what the CLI itself has to say.

    File descriptors 1 and 2 are redirected, so child processes (Prefect's temporary
    server), C libraries and Prefect's own exit-time messages (its log worker reports
    failed sends to `sys.stderr` when the interpreter exits) all land in the log, after
    the CLI's last line has gone to the terminal. There is no way back on purpose: what
    is printed after the last line would make it not the last.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    terminal = Terminal(os.fdopen(os.dup(1), "w", buffering=1),
                        os.fdopen(os.dup(2), "w", buffering=1))
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    return terminal
