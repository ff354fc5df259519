"""One refresh at a time per warehouse, for the whole run.

Two refreshes landing, building and publishing into one warehouse at once corrupt each
other's staging folders (issue 10, point 1). Every run — `ivig refresh`, `ivig demo`, a
flow run started by a Prefect worker, `ivig rollback` — holds an exclusive `flock` on
`WAREHOUSE/.refresh.lock` for as long as it works there. The kernel releases a flock
when its holder's last file descriptor closes, so a lock held by a process that died
(even of `kill -9`) is free by construction; the pid, host and start time written into
the file only say who holds it, for the message the second run prints.

The lock is re-entrant within one process: the CLI takes it before starting Prefect (a
second refresh is refused at once, without a server), and the flow it then runs in the
same process takes it again, as a flow run from a deployment must.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

LOCK_NAME = ".refresh.lock"
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Holder:
    """Who holds the lock, as it wrote itself into the lock file (informative only)."""

    pid: int | None
    host: str
    started: str
    command: str

    def describe(self) -> str:
        pid = self.pid if self.pid is not None else "unknown"
        where = f" on {self.host}" if self.host and self.host != socket.gethostname() else ""
        return f"pid {pid}{where}, started {self.started or 'at an unknown time'}"


class WarehouseBusy(RuntimeError):
    """Another run holds the warehouse; the message is the one line the operator reads."""

    def __init__(self, warehouse: Path, holder: Holder) -> None:
        self.warehouse = warehouse
        self.holder = holder
        what = "rollback" if holder.command == "rollback" else "refresh"
        super().__init__(f"another {what} of {warehouse} is running ({holder.describe()})")

    def __reduce__(self):  # picklable although __init__ takes other arguments than args
        return (type(self), (self.warehouse, self.holder))


def lock_path(warehouse: Path) -> Path:
    return Path(warehouse) / LOCK_NAME


def read_holder(warehouse: Path) -> Holder:
    """The holder recorded in the lock file; a holder that has just taken the lock may not
    have written itself yet, so an empty or half-written file is read again briefly."""
    deadline = time.monotonic() + 1.0
    while True:
        try:
            record = json.loads(lock_path(warehouse).read_text() or "null")
        except (OSError, ValueError):
            record = None
        if isinstance(record, dict) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    record = record if isinstance(record, dict) else {}
    pid = record.get("pid")
    return Holder(pid=pid if isinstance(pid, int) else None, host=str(record.get("host", "")),
                  started=str(record.get("started", "")),
                  command=str(record.get("command", "refresh")))


_held: dict[Path, tuple[IO[str], int]] = {}
_held_guard = threading.Lock()


def _try_lock(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _acquire(path: Path, wait_seconds: float, warehouse: Path) -> IO[str]:
    handle = path.open("a+")  # never truncated before the lock is ours: the holder is in it
    deadline = time.monotonic() + max(0.0, wait_seconds)
    try:
        while not _try_lock(handle):
            if time.monotonic() >= deadline:
                raise WarehouseBusy(warehouse, read_holder(warehouse))
            time.sleep(POLL_SECONDS)
    except BaseException:
        handle.close()
        raise
    return handle


def _record(handle: IO[str], command: str) -> None:
    """Write who holds the lock; on a full disk the record is skipped, not the run (the
    run's first act is to clear dead runs, which may make room)."""
    with suppress(OSError):
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(), "command": command,
            "started": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
        }))
        handle.flush()


@contextmanager
def run_lock(warehouse: Path, wait_seconds: float = 0, command: str = "refresh") -> Iterator[None]:
    """Hold the warehouse for the block; wait up to `wait_seconds` for another run to end.

    Raises `WarehouseBusy` (naming the holder) when the wait runs out. Taking the lock
    again in a process that holds it is a no-op, so the CLI and the flow it runs nest.
    """
    warehouse = Path(warehouse)
    warehouse.mkdir(parents=True, exist_ok=True)
    path = lock_path(warehouse).resolve()
    with _held_guard:
        if path in _held:
            handle, depth = _held[path]
            _held[path] = (handle, depth + 1)
            nested = True
        else:
            nested = False
    if not nested:
        handle = _acquire(path, wait_seconds, warehouse)
        _record(handle, command)
        with _held_guard:
            _held[path] = (handle, 1)
    try:
        yield
    finally:
        with _held_guard:
            handle, depth = _held[path]
            if depth > 1:
                _held[path] = (handle, depth - 1)
            else:
                del _held[path]
                # Cleared before the unlock: the next holder's record is the only one read.
                with suppress(OSError):
                    handle.seek(0)
                    handle.truncate()
                fcntl.flock(handle, fcntl.LOCK_UN)
                with suppress(OSError):
                    handle.close()


def is_held_here(warehouse: Path) -> bool:
    """True when this process holds the warehouse's run lock."""
    with _held_guard:
        return lock_path(Path(warehouse)).resolve() in _held
