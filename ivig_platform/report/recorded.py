"""The protocol a published file was built under, from what its run recorded.

`ivig report` re-renders the report of a published file without the run that built it. The
run's record (``quality.run_record``) holds the plan files given to it (parameter ``plans``,
``ivig refresh --plan FILE``) and each plan's fingerprint. The protocol is loaded again with
those files in force and checked against the fingerprints: a plan file that is gone, or was
edited since, would make the report describe a plan the marts were not computed under, so it
is refused with the file named instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from ivig_platform.protocol.in_force import protocol_in_force, with_plan_files
from ivig_platform.protocol.load import Protocol, plan_fingerprint

PLANS_PARAMETER = "plans"


class RecordedProtocolError(ValueError):
    """The protocol a file's run recorded cannot be loaded as it was."""


def _last_run(run_record: pl.DataFrame | None) -> dict:
    """The record of the last run (empty without a record)."""
    if run_record is None or not run_record.height:
        return {}
    return run_record.row(run_record.height - 1, named=True)


def recorded_plan_files(run_record: pl.DataFrame | None) -> list[Path]:
    """The ``--plan`` files of the last recorded run (none without a record)."""
    for parameter in _last_run(run_record).get("parameters") or []:
        if parameter["name"] == PLANS_PARAMETER:
            files = json.loads(parameter["value"]) if parameter["value"] else None
            return [Path(f) for f in files or []]
    return []


def recorded_protocol(run_record: pl.DataFrame | None) -> Protocol:
    """The protocol with the last run's plan files in force, checked against its record."""
    files = recorded_plan_files(run_record)
    if not files:
        return protocol_in_force()
    gone = [str(f) for f in files if not f.is_file()]
    if gone:
        raise RecordedProtocolError(
            f"the run's plan file(s) {', '.join(gone)} are gone: the report cannot describe "
            "the plans its marts were computed under")
    protocol = with_plan_files(files)
    recorded = {p["version"]: p["fingerprint"] for p in _last_run(run_record).get("plans") or []}
    changed = [p.version for p in protocol.plans
               if p.version in recorded and recorded[p.version] != plan_fingerprint(p)]
    if changed:
        raise RecordedProtocolError(
            f"plan(s) {', '.join(changed)} changed since the run (files: "
            f"{', '.join(str(f) for f in files)}): refresh to compute them, then report")
    return protocol
