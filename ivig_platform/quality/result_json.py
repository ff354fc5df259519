"""A gate result as plain JSON, and back: the form verdicts are cached in.

Cached verdicts used to be pickles of the platform's dataclasses holding Great
Expectations' result objects: an upgrade of GX could make them unreadable (or, worse,
readable with other meanings), and a pickle can run code when it is loaded. They are now
JSON: the platform's outcomes as their fields, and each kept GX validation through GX's
public `to_json_dict()`, rebuilt through GX's public constructors
(`ExpectationSuiteValidationResult`, `ExpectationValidationResult`,
`ExpectationConfiguration`, `RunIdentifier`). That keeps everything a cached verdict is
used for: the rows of `quality.check_result` and the reasons (from the outcomes) and the
Data Docs pages of a held-back delivery's own validations (from the GX results).

`FORMAT` names the layout; a file of another format, or one that does not rebuild, is not
a verdict (`UnreadableResult`) and the caller validates again.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
    ExpectationValidationResult,
)
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
from great_expectations.expectations.metadata_types import FailureSeverity

from ivig_platform.quality.gate import CheckOutcome, GateResult, SuiteRun

FORMAT = "ivig-gate-result/1"
_CONFIGURATION_FIELDS = ("type", "kwargs", "meta", "notes", "description", "id")


class UnreadableResult(ValueError):
    """A stored result that is not one (another format, cut short, edited)."""


def to_json(result: GateResult, **extra: Any) -> str:
    """The JSON text of `result` (`extra`: fields recorded beside it, e.g. the cache key)."""
    record = {
        "format": FORMAT,
        **extra,
        "gate": result.gate,
        "run_id": result.run_id,
        "site_id": result.site_id,
        "delivery_id": result.delivery_id,
        "validated_at": result.validated_at.isoformat(),
        "outcomes": [dataclasses.asdict(o) for o in result.outcomes],
        "runs": [
            {"suite": r.suite, "batch_identifier": r.batch_identifier, "rows": r.rows,
             "result": r.result.to_json_dict()}
            for r in result.runs
        ],
    }
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def from_json(text: str | bytes) -> tuple[GateResult, dict[str, Any]]:
    """The result stored in `text`, and the whole record (for its extra fields)."""
    try:
        record = json.loads(text)
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise UnreadableResult(f"not a {FORMAT} record")
        result = GateResult(
            gate=record["gate"], run_id=record["run_id"], site_id=record["site_id"],
            delivery_id=record["delivery_id"],
            validated_at=datetime.fromisoformat(record["validated_at"]),
            outcomes=[CheckOutcome(**o) for o in record["outcomes"]],
            runs=[SuiteRun(r["suite"], r["batch_identifier"], suite_result(r["result"]),
                           int(r["rows"])) for r in record["runs"]],
        )
    except UnreadableResult:
        raise
    except Exception as exc:  # whatever a damaged or foreign file raises: not a verdict
        raise UnreadableResult(f"{type(exc).__name__}: {exc}") from exc
    return result, record


def suite_result(data: dict[str, Any]) -> ExpectationSuiteValidationResult:
    """A suite validation rebuilt from its `to_json_dict()`."""
    meta = dict(data.get("meta") or {})
    run = meta.get("run_id")
    if isinstance(run, dict):
        meta["run_id"] = RunIdentifier(run_name=run.get("run_name"), run_time=run.get("run_time"))
    return ExpectationSuiteValidationResult(
        success=data["success"],
        results=[expectation_result(r) for r in data["results"]],
        suite_name=data["suite_name"],
        suite_parameters=data.get("suite_parameters"),
        statistics=data.get("statistics"),
        meta=meta,
        batch_id=data.get("batch_id"),
        result_url=data.get("result_url"),
        id=data.get("id"),
    )


def expectation_result(data: dict[str, Any]) -> ExpectationValidationResult:
    config = data.get("expectation_config")
    return ExpectationValidationResult(
        success=data.get("success"),
        expectation_config=configuration(config) if config else None,
        result=data.get("result"),
        meta=data.get("meta"),
        exception_info=data.get("exception_info"),
    )


def configuration(data: dict[str, Any]) -> ExpectationConfiguration:
    fields = {k: data[k] for k in _CONFIGURATION_FIELDS if k in data}
    if data.get("severity"):
        fields["severity"] = FailureSeverity(data["severity"])
    return ExpectationConfiguration(**fields)
