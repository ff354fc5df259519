"""The gates: run the suites on one site's delivery, or on the marts, and judge the result.

Policy (issue 4): a landing gate runs per site delivery; when any `error` check fails the
delivery is held back (the site's previous accepted delivery stays in force) and the other
sites go on. The mart gate runs after dbt; an `error` failure blocks the publish. `warn`
checks are reported and never block. A rate check passes when its unexpected percent (of the
non-missing rows) is at most its threshold.

Every check yields one CheckOutcome (DQD's violated rows, denominator and percent, plus the
observed value), whatever happened: a check that could not run (missing table or column)
counts as failed; a check whose preconditions do not hold (site_drift with too few values or
sites, measure_completeness with too few followed patients) is "not evaluated": it passes,
says why in its observed value, and is left out of the GX run so Data Docs agree.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import great_expectations as gx
import polars as pl
from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
    ExpectationValidationResult,
)
from great_expectations.core.run_identifier import RunIdentifier

from ivig_platform.quality import _gx
from ivig_platform.quality.drift_reference import References, references_from_pool
from ivig_platform.quality.frames import LANDING_BUILDERS, MART_BUILDERS
from ivig_platform.quality.pool import PoolStats, drift_key, drift_values
from ivig_platform.quality.registry import Check, checks, suite_specs
from ivig_platform.quality.suites import protocol_suites

CHECK_RESULT_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.Utf8(),
    "site_id": pl.Utf8(),
    "delivery_id": pl.Utf8(),
    "suite": pl.Utf8(),
    "expectation": pl.Utf8(),
    "column_name": pl.Utf8(),
    "category": pl.Utf8(),
    "severity": pl.Utf8(),
    "threshold": pl.Float64(),
    "success": pl.Boolean(),
    "observed_value": pl.Utf8(),
    "unexpected_count": pl.Int64(),
    "unexpected_percent": pl.Float64(),
    "element_count": pl.Int64(),
}
# Opt-in extra columns of check_results_frame(..., extended=True).
EXTENDED_SCHEMA: dict[str, pl.DataType] = {
    "check_id": pl.Utf8(),
    "check_type": pl.Utf8(),
    "gate": pl.Utf8(),
}

# Values of these columns are never shown in results or Data Docs: a key that fails
# key_format may be a clear medical record number (protocol §6).
REDACTED_COLUMNS = frozenset({"patient_key"})
# matches_delivery checks compare these columns with the delivery's own ids, passed as
# runtime parameters of these names.
PROVENANCE_PARAMETERS = {"site_id": "site_id_of_delivery", "delivery_id": "delivery_id_of_delivery"}
_PARTIAL_KEYS = (
    "partial_unexpected_list", "partial_unexpected_counts", "partial_unexpected_index_list",
    "unexpected_list", "unexpected_index_list", "unexpected_index_query",
)


@dataclass(frozen=True)
class CheckOutcome:
    """What one check found: DQD's three numbers plus the observed value."""

    suite: str
    check_id: str
    check_type: str
    expectation: str
    column: str | None
    category: str
    severity: str
    threshold: float | None
    success: bool
    observed_value: str | None
    unexpected_count: int | None
    unexpected_percent: float | None
    element_count: int | None


@dataclass
class SuiteRun:
    """One suite validated on one frame: the raw GX result, kept for Data Docs."""

    suite: str
    batch_identifier: str
    result: ExpectationSuiteValidationResult
    rows: int


@dataclass
class GateResult:
    """The verdict of one gate run: a site delivery (landing) or the marts.

    `passed_errors` is False when any `error` check failed: the delivery is held back
    (landing) or the publish is blocked (marts).
    """

    gate: str  # landing | marts
    run_id: str
    site_id: str | None
    delivery_id: str | None
    validated_at: datetime
    outcomes: list[CheckOutcome] = field(default_factory=list)
    runs: list[SuiteRun] = field(default_factory=list)

    @property
    def suites(self) -> list[str]:
        return [run.suite for run in self.runs]

    @property
    def label(self) -> str:
        return f"{self.site_id}/{self.delivery_id}" if self.gate == "landing" else "marts"

    @property
    def passed_errors(self) -> bool:
        return all(o.success for o in self.outcomes if o.severity == "error")

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        """Checks run and failed by severity: {"error": {"checks": n, "failed": k}, ...}."""
        return {
            severity: {
                "checks": sum(o.severity == severity for o in self.outcomes),
                "failed": sum(o.severity == severity and not o.success for o in self.outcomes),
            }
            for severity in ("error", "warn")
        }

    @property
    def failures(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes if not o.success]

    @property
    def verdict(self) -> str:
        if self.passed_errors:
            return "passed with warnings" if self.failures else "passed"
        return "held back" if self.gate == "landing" else "blocked"

    @property
    def reason(self) -> str | None:
        """For quality.site_delivery.reason: None when passed, else `quality_gate: ...`."""
        failed = [o for o in self.outcomes if o.severity == "error" and not o.success]
        if not failed:
            return None
        shown = "; ".join(f"{o.suite} {o.column or '*'} {o.check_type}" for o in failed[:3])
        more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
        return f"quality_gate: {len(failed)} error check(s) failed: {shown}{more}"


def _checks_by_id() -> dict[str, Check]:
    """The checks of the protocol in force, by id (resolved once per protocol)."""
    return {c.check_id: c for c in checks()}


def _gate_suites(gate: str, suites: dict[str, gx.ExpectationSuite] | None
                 ) -> list[gx.ExpectationSuite]:
    """The suites of one gate: `suites`, or those generated for the protocol in force."""
    suites = suites if suites is not None else protocol_suites()
    order = list(suite_specs())
    chosen = [s for s in suites.values() if (s.meta or {}).get("gate") == gate]
    return sorted(chosen, key=lambda s: order.index(s.name) if s.name in order else len(order))


def _measures() -> dict[str, tuple[str, str]]:
    """measure name → (short label, canonical unit) from the contract in force: the title's
    abbreviation in parentheses where it has one ("Creatine kinase (CK)" → "CK").

    The protocol in force, not the repository's: a run's amendment may add a measure."""
    from ivig_platform.protocol.in_force import protocol_in_force

    named = {}
    for measure in protocol_in_force().contract.measures:
        short = re.search(r"\(([^()]+)\)\s*$", measure.title)
        named[measure.name] = (short.group(1) if short else measure.title, measure.unit)
    return named


def measure_prefix(check: Check | None) -> str:
    """`CK (U/L): ` for a check of one measure whose values are in its unit, `CK: ` for
    one that counts or compares (completeness, agreement, a fold change), else ``.

    A check is of a measure by its condition (`measure=ck`) or by its column, named
    `<what>_<measure>` by the frames it validates (baseline_ck, change_mrss, has_post_mrc,
    baseline_mrc_agrees, fold_drop_ck).
    """
    if check is None:
        return ""
    measures = _measures()
    pair = check.condition_pair
    if pair is not None and pair[0] == "measure" and pair[1] in measures:
        label, unit = measures[pair[1]]
        return f"{label} ({unit}): "
    names = "|".join(map(re.escape, sorted(measures, key=len, reverse=True)))
    found = re.fullmatch(rf"(baseline|post|change|has_baseline|has_post|fold_drop)_({names})"
                         r"(_agrees)?", check.column or "")
    if found is None:
        return ""
    label, unit = measures[found.group(2)]
    in_unit = found.group(1) in ("baseline", "post", "change") and not found.group(3)
    return f"{label} ({unit}): " if in_unit else f"{label}: "


def _named(outcome: CheckOutcome, registry: dict[str, Check]) -> CheckOutcome:
    """The outcome with the measure (and unit) it is about before its observed value."""
    prefix = measure_prefix(registry.get(outcome.check_id))
    if not prefix or outcome.observed_value is None:
        return outcome
    return replace(outcome, observed_value=prefix + outcome.observed_value)


def _sig(value: float, digits: int = 3) -> str:
    """`value` to `digits` significant digits, never in exponent form (1230, 6.04)."""
    return _fmt(float(f"{value:.{digits}g}"))


def _fmt(value: Any) -> str:
    if isinstance(value, float | int) and not isinstance(value, bool):
        number = float(value)
        if math.isnan(number):
            return "NaN"
        return str(int(number)) if number.is_integer() else f"{number:.6g}"
    if hasattr(value, "item"):  # numpy scalars
        return _fmt(value.item())
    return str(value)


def _columns(config: Any) -> list[str]:
    kwargs = config.kwargs
    if kwargs.get("column"):
        return [kwargs["column"]]
    return list(kwargs.get("column_list") or [])


def _exception(result: ExpectationValidationResult) -> str | None:
    info = result.exception_info or {}
    if info.get("raised_exception"):
        return str(info.get("exception_message") or "exception")
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message") or "exception")
    return None


def _redact(result: ExpectationValidationResult) -> bool:
    if not REDACTED_COLUMNS.intersection(_columns(result.expectation_config)):
        return False
    for key in _PARTIAL_KEYS:
        (result.result or {}).pop(key, None)
    return True


def _outcome(suite: str, result: ExpectationValidationResult, notes: dict[str, str],
             frame_columns: set[str]) -> CheckOutcome:
    config = result.expectation_config
    meta = config.meta or {}
    redacted = _redact(result)
    body = result.result or {}
    element_count = body.get("element_count")
    unexpected_count = body.get("unexpected_count")
    observed = notes.get(meta.get("check_id", ""))
    error = _exception(result)
    absent = [c for c in _columns(config) if c not in frame_columns]
    if absent:
        error = error or "column missing"
    if observed is None and absent:
        observed = "column missing: " + ", ".join(absent)
    elif observed is None and error:
        observed = f"not evaluated: {error}"[:300]
    elif observed is None and config.type == "expect_table_columns_to_match_set":
        missing = ((body.get("details") or {}).get("mismatched") or {}).get("missing") or []
        wanted = len(config.kwargs.get("column_set") or [])
        observed = ("missing: " + ", ".join(sorted(missing))) if missing else (
            f"all {wanted} present")
    elif observed is None and "observed_value" in body:
        observed = _fmt(body["observed_value"]) if body["observed_value"] is not None else None
        if observed and not result.success and "type_" in config.kwargs:
            observed += f" (expected {config.kwargs['type_']})"
    elif observed is None and unexpected_count is not None:
        judged = (element_count or 0) - (body.get("missing_count") or 0)
        observed = f"{unexpected_count} of {judged} unexpected"
        sample = body.get("partial_unexpected_list") or []
        if unexpected_count and sample and not redacted:
            observed += ": " + ", ".join(_fmt(v) for v in sample[:5])
    elif observed is None and not result.success:
        observed = "not evaluated (missing column?)"
    columns = _columns(config)
    percent = body.get("unexpected_percent")
    return CheckOutcome(
        suite=suite,
        check_id=meta.get("check_id", config.type),
        check_type=meta.get("check_type", ""),
        expectation=config.type,
        column="|".join(columns) or None,
        category=meta.get("category", ""),
        severity=meta.get("severity", "error"),
        threshold=meta.get("threshold"),
        success=bool(result.success) and error is None,
        observed_value=observed,
        unexpected_count=int(unexpected_count) if unexpected_count is not None else None,
        unexpected_percent=float(percent) if percent is not None else None,
        element_count=int(element_count) if element_count is not None else None,
    )


def _frame_build_failure(suite: str, exc: Exception) -> CheckOutcome:
    return CheckOutcome(
        suite=suite, check_id=f"{suite}/*/frame_build/error", check_type="frame_build",
        expectation="frame_build", column=None, category="conformance", severity="error",
        threshold=None, success=False,
        observed_value=f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
        unexpected_count=None, unexpected_percent=None, element_count=None,
    )


def _not_evaluated(suite: str, expectation: Any, note: str) -> CheckOutcome:
    """A check whose preconditions do not hold (too few values): passed, with the reason."""
    config = expectation.configuration
    meta = config.meta or {}
    return CheckOutcome(
        suite=suite, check_id=meta["check_id"], check_type=meta["check_type"],
        expectation=config.type, column="|".join(_columns(config)) or None,
        category=meta["category"], severity=meta["severity"], threshold=meta.get("threshold"),
        success=True, observed_value=note, unexpected_count=None,
        unexpected_percent=None, element_count=None,
    )


def _too_few_followed(expectation: Any, frame: pl.DataFrame) -> str | None:
    """measure_completeness is judged only among at least `min_followed` patients."""
    meta = expectation.meta or {}
    least = meta.get("min_followed")
    if not least:
        return None
    column = expectation.configuration.kwargs.get("column")
    if column not in frame.columns:
        return None
    followed = frame.height - frame.get_column(column).null_count()
    if followed >= least:
        return None
    return f"not evaluated: {followed} patient(s) followed for the measure (needs {least})"


def _without(suite: gx.ExpectationSuite, skipped: set[str]) -> gx.ExpectationSuite:
    """The suite minus the checks not evaluated this time (GX cannot judge them)."""
    if not skipped:
        return suite
    return gx.ExpectationSuite(
        name=suite.name,
        expectations=[e.configuration for e in suite.expectations
                      if e.meta["check_id"] not in skipped],
        meta=dict(suite.meta or {}),
        notes=suite.notes,
    )


def _build_frame(gate: GateResult, suite: gx.ExpectationSuite,
                 builders: dict[str, Callable[[dict[str, pl.DataFrame]], pl.DataFrame]],
                 inputs: dict[str, pl.DataFrame]) -> pl.DataFrame | Exception:
    """The frame a suite validates, or the exception that stopped its builder."""
    builder = builders.get(suite.name)
    try:
        if builder is None:
            raise KeyError(f"no frame builder for suite {suite.name}")
        return builder(inputs)
    except Exception as exc:  # a broken input must become a recorded error, not a crash
        return exc


def _skipped(suite: gx.ExpectationSuite, frame: pl.DataFrame,
             skips: dict[str, str]) -> dict[str, CheckOutcome]:
    """The checks of a suite not evaluated on this frame, as passed outcomes with the reason."""
    skipped: dict[str, CheckOutcome] = {}
    for expectation in suite.expectations:
        check_id = expectation.meta["check_id"]
        note = skips.get(check_id) or _too_few_followed(expectation, frame)
        if note:
            skipped[check_id] = _not_evaluated(suite.name, expectation, note)
    return skipped


def _suite_outcomes(suite: gx.ExpectationSuite,
                    outcomes: Iterable[CheckOutcome]) -> list[CheckOutcome]:
    """A suite's outcomes as a gate records them: each named by the measure it is about,
    in the suite's order. The one place for both, so a delivery gated alone and one gated
    in a pool record identical outcomes."""
    registry = _checks_by_id()
    return _in_suite_order(suite, [_named(o, registry) for o in outcomes])


def _in_suite_order(suite: gx.ExpectationSuite,
                    outcomes: Iterable[CheckOutcome]) -> list[CheckOutcome]:
    order = {e.meta["check_id"]: i for i, e in enumerate(suite.expectations)}
    return sorted(outcomes, key=lambda o: order.get(o.check_id, len(order)))


def _stamp(result: ExpectationSuiteValidationResult, run_id: str, validated_at: datetime, *,
           asset: str, rows: int, site_id: str | None = None, delivery_id: str | None = None,
           not_evaluated: list[str] | None = None, **extra: Any) -> None:
    """Run and batch details GX's Data Docs show for a validation."""
    result.meta["run_id"] = RunIdentifier(run_name=run_id, run_time=validated_at)
    result.meta["batch_spec"] = {
        "data_asset_name": asset,
        "site_id": site_id,
        "delivery_id": delivery_id,
        "rows": rows,
        "not_evaluated": not_evaluated or None,
        "batch_data": "in-memory pandas frame converted from Polars",
        **extra,
    }


def _run_suite(gate: GateResult, suite: gx.ExpectationSuite,
               frame: pl.DataFrame | Exception, parameters: dict[str, Any],
               notes: dict[str, str], skips: dict[str, str]) -> None:
    """Validate one suite on one gate's own frame and add the outcomes and the run."""
    batch = (
        f"{gate.site_id}__{gate.delivery_id}" if gate.gate == "landing" else "marts"
    )
    # Replaces any outcome of this suite already recorded (a pooled one being redone).
    gate.outcomes[:] = [o for o in gate.outcomes if o.suite != suite.name]
    gate.runs[:] = [r for r in gate.runs if r.suite != suite.name]
    if isinstance(frame, Exception):
        gate.outcomes.append(_frame_build_failure(suite.name, frame))
        frame = pl.DataFrame()
    skipped = _skipped(suite, frame, skips)
    result = _gx.validate(_without(suite, set(skipped)), _gx.to_pandas(frame), parameters)
    _stamp(result, gate.run_id, gate.validated_at, asset=gate.label, rows=frame.height,
           site_id=gate.site_id, delivery_id=gate.delivery_id, not_evaluated=sorted(skipped))
    present = set(frame.columns)
    outcomes = [_outcome(suite.name, r, notes, present) for r in result.results]
    gate.outcomes.extend(_suite_outcomes(suite, [*outcomes, *skipped.values()]))
    gate.runs.append(SuiteRun(suite.name, batch, result, frame.height))


def _run_suites(gate: GateResult, suites: list[gx.ExpectationSuite],
                builders: dict[str, Callable[[dict[str, pl.DataFrame]], pl.DataFrame]],
                inputs: dict[str, pl.DataFrame], parameters: dict[str, Any],
                notes: dict[str, str], skips: dict[str, str]) -> GateResult:
    """Build each suite's frame, validate it, and turn GX's results into outcomes.

    `notes`: observed values to show instead of GX's (drift); `skips`: checks not
    evaluated, with the reason (decided before; completeness minimums are decided here).
    """
    for suite in suites:
        frame = _build_frame(gate, suite, builders, inputs)
        _run_suite(gate, suite, frame, parameters, notes, skips)
    return gate


def _drift_parameters(suites: list[gx.ExpectationSuite], tables: dict[str, pl.DataFrame],
                      references: References
                      ) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """Bounds of every site_drift check from the delivery's fixed reference (the pooled
    median of the *other* sites, drift_reference.py).

    Returns the runtime parameters, the observed-value notes of the checks evaluated and
    the reasons of those not evaluated (too few values at the site or too few other sites).
    """
    parameters: dict[str, Any] = {}
    notes: dict[str, str] = {}
    skips: dict[str, str] = {}
    registry = _checks_by_id()
    for suite in suites:
        for expectation in suite.expectations:
            meta = expectation.meta or {}
            if meta.get("check_type") != "site_drift":
                continue
            check = registry[meta["check_id"]]
            spec = meta["drift"]
            low_name, high_name = spec["parameters"]
            mine = drift_values(check, tables)
            reference = references.get(drift_key(check))
            pooled = reference.median if reference else None
            n_sites = reference.n_sites if reference else 0
            if (mine.len() >= spec["min_values"] and n_sites >= spec["min_sites"]
                    and pooled is not None and reference is not None):
                site = float(mine.median())
                # 6 significant digits: readable bounds in Data Docs, no effect on a 10x test
                parameters[low_name] = float(f"{pooled / spec['factor']:.6g}")
                parameters[high_name] = float(f"{pooled * spec['factor']:.6g}")
                ratio = site / pooled if pooled else math.inf
                notes[check.check_id] = (
                    f"site median {_sig(site)} (n={mine.len()}), {reference.describe()} "
                    f"{_sig(pooled)} ({reference.stamp}), ratio {ratio:.3g} "
                    f"(fails at >= {_fmt(spec['factor'])} or <= 1/{_fmt(spec['factor'])})"
                )
            else:
                stamp = f" ({reference.stamp})" if reference else ""
                skips[check.check_id] = (
                    f"not evaluated: {mine.len()} value(s) at the site (needs "
                    f"{spec['min_values']}), {n_sites} other site(s) with as many (needs "
                    f"{spec['min_sites']}){stamp}"
                )
    return parameters, notes, skips


def run_landing_gate(site_id: str, delivery_id: str, tables: dict[str, pl.DataFrame],
                     pool: PoolStats, run_id: str, *,
                     suites: dict[str, gx.ExpectationSuite] | None = None,
                     references: References | None = None) -> GateResult:
    """Run every landing suite on one site delivery's landed tables.

    `tables`: {"patients": ..., "ivig_cycles": ..., ...} exactly as landing wrote them.
    `references`: the delivery's fixed drift references (drift_reference.py); without
    them, references are taken now from `pool` (pool_stats() of the sites to compare with;
    the site itself is left out of its comparison).
    Never raises for bad data: a missing table or column fails the checks that need it.
    """
    gate = GateResult("landing", run_id, site_id, delivery_id, datetime.now(UTC))
    chosen = _gate_suites("landing", suites)
    if references is None:
        references = references_from_pool(pool, site_id, gate.validated_at.date().isoformat(),
                                          run_id)
    parameters, notes, skips = landing_parameters(chosen, site_id, delivery_id, tables,
                                                  references)
    return _run_suites(gate, chosen, LANDING_BUILDERS, tables, parameters, notes, skips)


def landing_parameters(suites: list[gx.ExpectationSuite], site_id: str, delivery_id: str,
                       tables: dict[str, pl.DataFrame], references: References
                       ) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """Runtime parameters, drift notes and not-evaluated reasons of one site delivery."""
    parameters, notes, skips = _drift_parameters(suites, tables, references)
    parameters[PROVENANCE_PARAMETERS["site_id"]] = [site_id]
    parameters[PROVENANCE_PARAMETERS["delivery_id"]] = [delivery_id]
    return parameters, notes, skips


def run_mart_gate(marts: dict[str, pl.DataFrame], run_id: str, *,
                  suites: dict[str, gx.ExpectationSuite] | None = None) -> GateResult:
    """Run every mart suite (dim_patient, fct_ivig_cycle, fct_assessment, fct_adverse_event,
    mart_cohort, and the derived efficacy inputs) on the marts dbt just built."""
    gate = GateResult("marts", run_id, None, None, datetime.now(UTC))
    return _run_suites(gate, _gate_suites("marts", suites), MART_BUILDERS, marts, {}, {}, {})


def check_results_frame(results: Iterable[GateResult], *, extended: bool = False
                        ) -> pl.DataFrame:
    """Rows of `quality.check_result`, one per check of every gate run.

    `unexpected_percent` is over the non-missing rows (GX's default); `element_count` is
    GX's (all rows of the frame). `extended=True` adds check_id, check_type and gate.
    """
    schema = {**CHECK_RESULT_SCHEMA, **(EXTENDED_SCHEMA if extended else {})}
    rows = [
        {
            "run_id": gate.run_id,
            "site_id": gate.site_id,
            "delivery_id": gate.delivery_id,
            "suite": o.suite,
            "expectation": o.expectation,
            "column_name": o.column,
            "category": o.category,
            "severity": o.severity,
            "threshold": o.threshold,
            "success": o.success,
            "observed_value": o.observed_value,
            "unexpected_count": o.unexpected_count,
            "unexpected_percent": o.unexpected_percent,
            "element_count": o.element_count,
            "check_id": o.check_id,
            "check_type": o.check_type,
            "gate": gate.gate,
        }
        for gate in results
        for o in gate.outcomes
    ]
    return pl.DataFrame(
        [{k: row[k] for k in schema} for row in rows], schema=schema, orient="row"
    ) if rows else pl.DataFrame(schema=schema)


def failure_rows(results: Iterable[GateResult]) -> list[dict[str, Any]]:
    """Failed checks as rows for a Prefect table artifact (values already redacted)."""
    return [
        {
            "gate": gate.label,
            "verdict": gate.verdict,
            "suite": o.suite,
            "check": o.check_type,
            "column": o.column or "",
            "severity": o.severity,
            "category": o.category,
            "unexpected %": None if o.unexpected_percent is None
            else round(o.unexpected_percent, 2),
            "threshold %": o.threshold,
            "observed": o.observed_value or "",
        }
        for gate in results
        for o in gate.failures
    ]


def gate_markdown(results: Iterable[GateResult], docs_index: Path | None = None) -> str:
    """A Prefect markdown artifact: per gate run, checks run and failed by severity."""
    lines = [
        "## Data-quality gates",
        "",
        "| gate | verdict | error checks (failed) | warn checks (failed) |",
        "|---|---|---|---|",
    ]
    for gate in results:
        c = gate.counts
        lines.append(
            f"| {gate.label} | {gate.verdict} | {c['error']['checks']} "
            f"({c['error']['failed']}) | {c['warn']['checks']} ({c['warn']['failed']}) |"
        )
    if docs_index is not None:
        lines += ["", f"Data Docs: `{docs_index}`"]
    return "\n".join(lines) + "\n"
