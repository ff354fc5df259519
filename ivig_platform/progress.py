"""Per-delivery progress events, for whoever is watching a refresh.

The refresh emits small events (site, delivery, stage, detail); the CLI turns them into a
live table on a terminal or plain lines in a log. Tasks run in threads of one process,
so a module-level listener is enough; with no listener (a Prefect worker) events are
dropped and the Prefect UI is the place to watch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressEvent:
    site_id: str
    delivery_id: str
    stage: str  # queued | landing | landed | rejected | reused | failed | step
    detail: str = ""


Listener = Callable[[ProgressEvent], None]
_listener: Listener | None = None
_lock = threading.Lock()


def set_listener(listener: Listener | None) -> None:
    global _listener
    _listener = listener


def emit(event: ProgressEvent) -> None:
    listener = _listener
    if listener is not None:
        with _lock:
            listener(event)
