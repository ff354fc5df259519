"""The landing gate of many site deliveries at once: one GX validation per suite, not per site.

Why: GX's cost is per expectation, not per row. Its metric graph is built for every
expectation of every validation, about 1.3 s per delivery for the landing suites, so a
registry of 200 sites spent minutes gating (issue 7) while the rows themselves take
milliseconds. Here the frames of every delivery to gate are stacked, each suite is
validated once on the stack with GX's COMPLETE result format, and each unexpected row is
attributed to its delivery by its index. Every delivery still gets its own verdict,
computed the way GX computes it on the delivery alone (`_per_delivery_result` rebuilds the
result with GX's own `_format_map_output` and "mostly" rule, from the delivery's counts).

A pooled result is used for a delivery only when it provably equals the delivery's own:

- row checks (not null, in set, between, regex, unique) are attributed row by row; the
  per-delivery counts must add up to GX's pooled counts, or the suite is validated per
  delivery instead;
- schema checks (columns present, column types) hold for every delivery whose frame has
  the same schema as the stack's (frames are grouped by schema); if one fails, the group
  is validated per delivery;
- checks that compare a delivery with itself are routed before: a delivery with rows of
  another delivery's site or delivery id (matches_delivery), or sharing a key with another
  delivery (unique_key), is validated alone;
- aggregate checks (site_drift's median, with bounds of its own) run per delivery on the
  delivery's frame, each a one-expectation validation;
- finally, a delivery that fails an `error` check is validated again alone, so a held-back
  delivery's verdict and its Data Docs page come from a validation of that delivery only.

So the gate's decisions are GX's, and the expensive part is paid once per suite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
import polars as pl
from great_expectations.core.expectation_validation_result import (
    ExpectationValidationResult,
)
from great_expectations.expectations.expectation import _format_map_output, _mostly_success
from great_expectations.expectations.expectation_configuration import parse_result_format

from ivig_platform.quality import _gx
from ivig_platform.quality.drift_reference import references_from_pool
from ivig_platform.quality.frames import LANDING_BUILDERS
from ivig_platform.quality.gate import (
    PROVENANCE_PARAMETERS,
    REDACTED_COLUMNS,
    CheckOutcome,
    GateResult,
    SuiteRun,
    _build_frame,
    _columns,
    _gate_suites,
    _in_suite_order,
    _outcome,
    _run_suite,
    _skipped,
    _stamp,
    _suite_outcomes,
    _without,
    landing_parameters,
)
from ivig_platform.quality.pool import PoolStats

ROW_CHECKS = frozenset({
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set",
    "expect_column_values_to_be_between",
    "expect_column_values_to_match_regex",
    "expect_column_values_to_be_unique",
    "expect_compound_columns_to_be_unique",
})
SCHEMA_CHECKS = frozenset({
    "expect_table_columns_to_match_set",
    "expect_column_values_to_be_of_type",
})
UNIQUE_CHECKS = frozenset({
    "expect_column_values_to_be_unique",
    "expect_compound_columns_to_be_unique",
})
# Batch identifiers of pooled validations start with this.
POOL_PREFIX = "pool-"
# Lists GX returns under COMPLETE that are the whole pool's: dropped once attributed.
_POOL_ONLY_KEYS = ("unexpected_list", "unexpected_index_list", "unexpected_index_query")


class NotAttributable(Exception):
    """A pooled result that cannot be split into per-delivery results exactly."""


@dataclass
class _Delivery:
    gate: GateResult
    tables: dict[str, pl.DataFrame]
    parameters: dict[str, Any]
    notes: dict[str, str]
    skips: dict[str, str]
    alone: set[str] = field(default_factory=set)  # suites validated on this delivery alone


def _condition_mask(frame: pd.DataFrame, condition: Any) -> np.ndarray | None:
    """Rows a row_condition keeps, for the `column == value` conditions the suites use."""
    if condition is None:
        return np.ones(len(frame), dtype=bool)
    spec = condition if isinstance(condition, dict) else getattr(condition, "to_dict",
                                                                 lambda: None)()
    if not isinstance(spec, dict) or spec.get("type") != "comparison" or (
            spec.get("operator") != "=="):
        return None
    column = (spec.get("column") or {}).get("name")
    if column not in frame.columns:
        return None
    return (frame[column] == spec.get("parameter")).fillna(False).to_numpy(dtype=bool)


def _considered(frame: pd.DataFrame, config: Any) -> np.ndarray:
    """Rows GX judges (the rest count as missing), by expectation kind and ignore_row_if."""
    columns = _columns(config)
    missing = np.column_stack([frame[c].isna().to_numpy(dtype=bool) for c in columns])
    if config.type == "expect_compound_columns_to_be_unique":
        rule = config.kwargs.get("ignore_row_if", "all_values_are_missing")
        if rule == "any_value_is_missing":
            return ~missing.any(axis=1)
        if rule == "never":
            return np.ones(len(frame), dtype=bool)
        return ~missing.all(axis=1)
    return ~missing[:, 0]


def _per_delivery_result(config: Any, pooled: ExpectationValidationResult, frame: pd.DataFrame,
                         owner: np.ndarray, n: int) -> list[ExpectationValidationResult]:
    """Split one pooled row-check result into each delivery's own result."""
    body = pooled.result or {}
    index = body.get("unexpected_index_list")
    if index is None or len(index) != body.get("unexpected_count") or any(
            not isinstance(i, int | np.integer) for i in index):
        raise NotAttributable(f"{config.type}: no full row index in the pooled result")
    kept = _condition_mask(frame, config.kwargs.get("row_condition"))
    if kept is None:
        raise NotAttributable(f"{config.type}: row condition not understood")
    considered = kept & _considered(frame, config)
    elements = np.bincount(owner[kept], minlength=n)
    judged = np.bincount(owner[considered], minlength=n)
    rows = np.asarray(index, dtype=np.int64)
    unexpected = np.bincount(owner[rows], minlength=n) if len(rows) else np.zeros(n, int)
    if (int(elements.sum()) != body.get("element_count")
            or int(unexpected.sum()) != body.get("unexpected_count")
            or ("missing_count" in body
                and int(elements.sum() - judged.sum()) != body["missing_count"])):
        raise NotAttributable(f"{config.type}: per-delivery counts do not add up")
    starts = np.searchsorted(owner, np.arange(n))  # owner is sorted: deliveries are stacked
    mostly = config.kwargs.get("mostly")
    mostly = 1.0 if mostly is None else float(mostly)
    result_format = parse_result_format(_gx.RESULT_FORMAT)
    shown = result_format["partial_unexpected_count"]
    split = []
    for i in range(n):
        mine = rows[owner[rows] == i] if len(rows) else rows
        count, total, nonnull = int(unexpected[i]), int(elements[i]), int(judged[i])
        success = True if total == 0 or nonnull == 0 else _mostly_success(nonnull, count,
                                                                          mostly)
        own = _format_map_output(
            result_format=result_format, success=success, element_count=total,
            nonnull_count=nonnull, unexpected_count=count,
            unexpected_list=_values(frame, config, mine[:shown]),
            unexpected_index_list=[int(r) - int(starts[i]) for r in mine[:shown]],
        )
        split.append(ExpectationValidationResult(
            success=own["success"], expectation_config=config, result=own.get("result", {}),
        ))
    return split


def _values(frame: pd.DataFrame, config: Any, rows: np.ndarray) -> list[Any]:
    """The unexpected values of some rows, as GX lists them for a pandas batch.

    GX's own list is cut at 200 values for the whole stack, so the values are read back
    from the frame: a column's values as a list, several columns' as records.
    """
    if not len(rows):
        return []
    if "column" in config.kwargs:
        return list(frame[config.kwargs["column"]].iloc[rows])
    return frame[_columns(config)].iloc[rows].to_dict("records")


def _shared_keys(frames: list[pl.DataFrame], columns: list[str]) -> set[int]:
    """Deliveries holding a key value that another delivery of the stack also holds."""
    if not all(c in f.columns for f in frames for c in columns):
        return set()
    stacked = pl.concat([
        f.select(columns).with_columns(pl.lit(i).alias("__delivery")).drop_nulls(columns)
        for i, f in enumerate(frames)
    ])
    shared = (
        stacked.unique([*columns, "__delivery"])
        .filter(pl.len().over(columns) > 1)
        .get_column("__delivery")
    )
    return set(shared.to_list())


def _foreign_provenance(frames: list[pl.DataFrame], deliveries: list[_Delivery]) -> set[int]:
    """Deliveries with a row whose site or delivery id is not the delivery's own."""
    foreign = set()
    for i, (frame, d) in enumerate(zip(frames, deliveries, strict=True)):
        for column, parameter in PROVENANCE_PARAMETERS.items():
            if column in frame.columns:
                own = d.parameters[parameter]
                values = frame.get_column(column).cast(pl.Utf8, strict=False).drop_nulls()
                if not values.is_in(own).all():
                    foreign.add(i)
    return foreign


def _route_alone(suite: gx.ExpectationSuite, frames: list[pl.DataFrame],
                 deliveries: list[_Delivery]) -> set[int]:
    """Deliveries whose checks against themselves a pooled run could not judge exactly."""
    alone = _foreign_provenance(frames, deliveries)
    for expectation in suite.expectations:
        if expectation.configuration.type in UNIQUE_CHECKS:
            alone |= _shared_keys(frames, _columns(expectation.configuration))
    return alone


def _poolable(expectation: Any) -> bool:
    config = expectation.configuration
    if config.type not in ROW_CHECKS | SCHEMA_CHECKS:
        return False
    parameters = [v["$PARAMETER"] for v in config.kwargs.values()
                  if isinstance(v, dict) and "$PARAMETER" in v]
    return all(p in PROVENANCE_PARAMETERS.values() for p in parameters)


def _validate_stack(suite: gx.ExpectationSuite, frames: list[pl.DataFrame],
                    deliveries: list[_Delivery], run_id: str, validated_at: datetime,
                    label: str, poolable: dict[str, bool]
                    ) -> tuple[dict[int, list[CheckOutcome]], SuiteRun]:
    """One GX validation of the suite's poolable checks on the stacked frames."""
    pooled_suite = _without(suite, {c for c, ok in poolable.items() if not ok})
    stack = pl.concat(frames, how="vertical")
    owner = np.repeat(np.arange(len(frames)), [f.height for f in frames])
    frame = _gx.to_pandas(stack)
    parameters = {
        name: sorted({v for d in deliveries for v in d.parameters[name]})
        for name in PROVENANCE_PARAMETERS.values()
    }
    result = _gx.validate(pooled_suite, frame, parameters, _gx.POOLED_RESULT_FORMAT)
    present = set(stack.columns)
    outcomes: dict[int, list[CheckOutcome]] = {i: [] for i in range(len(frames))}
    for pooled in result.results:
        config = pooled.expectation_config
        if pooled.exception_info and any(
                isinstance(v, dict) and v.get("raised_exception")
                for v in [pooled.exception_info, *pooled.exception_info.values()]):
            raise NotAttributable(f"{config.type} raised on the stack")
        if config.type in ROW_CHECKS or "unexpected_index_list" in (pooled.result or {}):
            split = _per_delivery_result(config, pooled, frame, owner, len(frames))
            for i, own in enumerate(split):
                outcomes[i].append(_outcome(suite.name, own, deliveries[i].notes, present))
        elif not pooled.success:
            raise NotAttributable(f"{config.type} failed on the stack")
        else:  # the same schema for every frame of the stack: the same result
            for i, d in enumerate(deliveries):
                outcomes[i].append(_outcome(suite.name, pooled, d.notes, present))
        for key in _POOL_ONLY_KEYS:
            (pooled.result or {}).pop(key, None)
        if REDACTED_COLUMNS.intersection(_columns(config)):
            for key in ("partial_unexpected_list", "partial_unexpected_counts",
                        "partial_unexpected_index_list"):
                (pooled.result or {}).pop(key, None)
    _stamp(result, run_id, validated_at, asset=label, rows=stack.height,
           deliveries=[d.gate.label for d in deliveries])
    return outcomes, SuiteRun(suite.name, label, result, stack.height)


def _median_within(config: Any, frame: pd.DataFrame, parameters: dict[str, Any]
                   ) -> ExpectationValidationResult | None:
    """A passed expect_column_median_to_be_between, or None when it may fail.

    The median is taken as GX's pandas metric takes it (`column.median` over the non-null
    values of the rows the row condition keeps), and compared with the bounds as the
    expectation compares them. Only a pass is decided here: anything else (a value out of
    bounds, no value, an unknown bound) sends the delivery to GX alone, which decides.
    """
    column = config.kwargs.get("column")
    kept = _condition_mask(frame, config.kwargs.get("row_condition"))
    if kept is None or column not in frame.columns:
        return None
    values = frame[column][kept]
    median = values[~values.isnull()].median()

    def bound(name: str) -> float | None:
        value = config.kwargs.get(name)
        if isinstance(value, dict):
            value = parameters.get(value.get("$PARAMETER", ""))
        return value

    low, high = bound("min_value"), bound("max_value")
    if median is None or pd.isna(median) or low is None or high is None:
        return None
    above = median > low if config.kwargs.get("strict_min") else median >= low
    below = median < high if config.kwargs.get("strict_max") else median <= high
    if not (above and below):
        return None
    return ExpectationValidationResult(success=True, expectation_config=config,
                                       result={"observed_value": median})


def _aggregate_checks(suite: gx.ExpectationSuite, frame: pl.DataFrame, d: _Delivery,
                      skipped: set[str], poolable: dict[str, bool]) -> list[CheckOutcome] | None:
    """The checks a stack cannot answer for one delivery (a median), on its own frame.

    None when one of them needs GX on the delivery alone.
    """
    own = [e for e in suite.expectations
           if not poolable[e.meta["check_id"]] and e.meta["check_id"] not in skipped]
    if not own:
        return []
    pandas_frame = _gx.to_pandas(frame)
    outcomes = []
    for expectation in own:
        config = expectation.configuration
        if config.type != "expect_column_median_to_be_between":
            return None
        passed = _median_within(config, pandas_frame, d.parameters)
        if passed is None:
            return None
        outcomes.append(_outcome(suite.name, passed, d.notes, set(frame.columns)))
    return outcomes


def _gate_suite_pooled(suite: gx.ExpectationSuite, deliveries: list[_Delivery], run_id: str,
                       validated_at: datetime) -> None:
    built = [_build_frame(d.gate, suite, LANDING_BUILDERS, d.tables) for d in deliveries]
    poolable = {e.meta["check_id"]: _poolable(e) for e in suite.expectations}
    groups: dict[tuple, list[int]] = {}
    for i, frame in enumerate(built):
        if isinstance(frame, Exception):
            deliveries[i].alone.add(suite.name)
        else:
            groups.setdefault(tuple(frame.schema.items()), []).append(i)
    for number, members in enumerate(groups.values(), start=1):
        frames = [built[i] for i in members]
        chosen = [deliveries[i] for i in members]
        for j in _route_alone(suite, frames, chosen):
            chosen[j].alone.add(suite.name)
        keep = [j for j, d in enumerate(chosen) if suite.name not in d.alone]
        if len(keep) < 2:  # nothing to share: validate alone
            for d in chosen:
                d.alone.add(suite.name)
            continue
        frames = [frames[j] for j in keep]
        chosen = [chosen[j] for j in keep]
        label = f"{POOL_PREFIX}{number}__{len(chosen)}-deliveries"
        try:
            outcomes, run = _validate_stack(suite, frames, chosen, run_id, validated_at, label,
                                            poolable)
        except NotAttributable:
            for d in chosen:
                d.alone.add(suite.name)
            continue
        for j, d in enumerate(chosen):
            skipped = _skipped(suite, frames[j], d.skips)
            mine = [o for o in outcomes[j] if o.check_id not in skipped]
            aggregates = _aggregate_checks(suite, frames[j], d, set(skipped), poolable)
            if aggregates is None:
                d.alone.add(suite.name)
                continue
            d.gate.outcomes.extend(_suite_outcomes(suite, [*mine, *aggregates,
                                                           *skipped.values()]))
            d.gate.runs.append(SuiteRun(suite.name, run.batch_identifier, run.result,
                                        frames[j].height))
    for d, frame in zip(deliveries, built, strict=True):
        failed = any(o.suite == suite.name and o.severity == "error" and not o.success
                     for o in d.gate.outcomes)
        if suite.name in d.alone or failed:
            _run_suite(d.gate, suite, frame, d.parameters, d.notes, d.skips)


Parameters = tuple[dict[str, Any], dict[str, str], dict[str, str]]


def run_landing_gates(deliveries: list[tuple[str, str, dict[str, pl.DataFrame]]],
                      pool: PoolStats, run_id: str, *,
                      suites: dict[str, gx.ExpectationSuite] | None = None,
                      parameters: dict[tuple[str, str], Parameters] | None = None
                      ) -> list[GateResult]:
    """The landing gate of every (site_id, delivery_id, tables), pooled by suite.

    Gives, for each delivery, the outcomes `run_landing_gate` gives on it alone (the
    equivalence is tested); the runs of deliveries judged in a stack point to the stack's
    validation result, shared. `parameters`: each delivery's `landing_parameters` (from its
    fixed drift references), when the caller has them; else references are taken from
    `pool` now.
    """
    chosen = _gate_suites("landing", suites)
    validated_at = datetime.now(UTC)
    parameters = parameters or {}
    prepared = []
    for site_id, delivery_id, tables in deliveries:
        own, notes, skips = parameters.get((site_id, delivery_id)) or landing_parameters(
            chosen, site_id, delivery_id, tables,
            references_from_pool(pool, site_id, validated_at.date().isoformat(), run_id))
        gate = GateResult("landing", run_id, site_id, delivery_id, validated_at)
        prepared.append(_Delivery(gate, tables, own, notes, skips))
    for suite in chosen:
        _gate_suite_pooled(suite, prepared, run_id, validated_at)
    for d in prepared:
        d.gate.outcomes[:] = _in_run_order(chosen, d.gate.outcomes)
        d.gate.runs.sort(key=lambda r: [s.name for s in chosen].index(r.suite))
    return [d.gate for d in prepared]


def _in_run_order(suites: list[gx.ExpectationSuite],
                  outcomes: list[CheckOutcome]) -> list[CheckOutcome]:
    """Outcomes by suite, then as each suite lists its checks (frame_build first)."""
    names = [s.name for s in suites]
    by_suite = {s.name: s for s in suites}
    ordered: list[CheckOutcome] = []
    for name in names:
        mine = [o for o in outcomes if o.suite == name]
        builds = [o for o in mine if o.check_type == "frame_build"]
        ordered += builds + _in_suite_order(by_suite[name],
                                            [o for o in mine if o.check_type != "frame_build"])
    return ordered
