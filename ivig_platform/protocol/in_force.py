"""The protocol a run works under: the repository's definition with the amendments of
`protocol/amendments/`, plus the amendment files given to the run (`ivig refresh --plan
FILE`, the flow's `plans` parameter).

Every consumer takes its rules from an explicit argument where it has one (a contract, a
plan, a protocol); without one it asks `protocol_in_force()`. The refresh flow sets the
run's protocol once, with `run_under(plan_files)`, so the steps it reaches only through
other modules (the landing gate's suites, the mart gate's windows, the dbt Python models)
use the same protocol as the steps it calls directly. Outside a run it is `load_protocol()`.

The run's protocol is process-wide (the flow's tasks run in worker threads), so one
process refreshes under one protocol at a time; nested `run_under` restore the outer one.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from ivig_platform.protocol.load import Protocol, load_protocol

_LOCK = threading.Lock()
_RUN: list[Protocol] = []


def protocol_in_force() -> Protocol:
    """The protocol of the run in progress, else the repository's (with its amendments)."""
    with _LOCK:
        if _RUN:
            return _RUN[-1]
    return load_protocol()


def with_plan_files(plan_files: Sequence[Path | str] = (),
                    root: Path | str | None = None) -> Protocol:
    """The protocol of `root` (default folder) with `plan_files` in force as well."""
    return load_protocol(root).with_amendments([Path(f) for f in plan_files])


@contextlib.contextmanager
def run_under(protocol_or_files: Protocol | Sequence[Path | str] = ()) -> Iterator[Protocol]:
    """Make a protocol (or the default one with these amendment files) the one in force."""
    protocol = (protocol_or_files if isinstance(protocol_or_files, Protocol)
                else with_plan_files(protocol_or_files))
    with _LOCK:
        _RUN.append(protocol)
    try:
        yield protocol
    finally:
        with _LOCK:
            _RUN.remove(protocol)


def contract_fingerprint(plan_files: Sequence[Path | str] = ()) -> str:
    """The fingerprint of the contract landing applies with `plan_files` in force: what a
    landing depends on besides its delivery (the landing cache key includes it)."""
    return with_plan_files(plan_files).contract_fingerprint
