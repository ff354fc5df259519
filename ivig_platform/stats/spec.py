"""What the statistics take from the protocol: an analysis plan and the contract's codes.

The table builders (`efficacy`, `safety`) compute from these specs and nothing else, so an
amendment (other measures, responders, subgroups, summary conventions) changes their
output with no code change. A spec is made from the protocol's models (`from_plan`,
`from_protocol`) or, inside dbt, from the `protocol` tables of the build file
(`from_tables`), which hold the same definitions (ivig_platform/protocol/tables.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from ivig_platform.protocol.load import Protocol
from ivig_platform.protocol.plan import Condition, Plan


@dataclass(frozen=True)
class ResponderSpec:
    """Among the `eligible` pairs (all when None), the pairs meeting `responder`."""

    text: str
    eligible: Condition | None
    responder: Condition


@dataclass(frozen=True)
class SubgroupSpec:
    """One row group of mart_efficacy. `column` is dim_patient's: the patient belongs when
    it equals `value` (`kind` category) or when the flag `<column>_<value>` is true
    (`kind` list, one flag per code); `all` has no column."""

    subgroup: str
    value: str
    column: str | None = None
    kind: str | None = None


@dataclass(frozen=True)
class EfficacySpec:
    """One plan's efficacy analysis (protocol §7)."""

    plan: str
    measures: tuple[str, ...]
    responders: Mapping[str, ResponderSpec]
    subgroups: tuple[SubgroupSpec, ...]
    round_decimals: int
    min_pairs: int
    sd_ddof: int
    ci_level: float
    wilcoxon_exact_below: int
    wilcoxon_correct: bool
    #: Effect sizes (cohens_dz) of fewer pairs are null: the report's small-cell threshold.
    effect_size_min_pairs: int

    @classmethod
    def from_plan(cls, plan: Plan, protocol: Protocol) -> EfficacySpec:
        s = plan.summaries
        wilcoxon = s.tests.wilcoxon
        if wilcoxon is None or not s.tests.paired_t:
            raise ValueError(f"plan {plan.version}: mart_efficacy needs the paired t-test "
                             "and the Wilcoxon test")
        subgroups = []
        for group in plan.subgroups:
            column, kind = _column_of(group.field, protocol)
            subgroups += [SubgroupSpec(group.name, v.value, column, kind) for v in group.values]
        return cls(
            plan=plan.version,
            measures=plan.measure_names,
            responders={m: ResponderSpec(r.text, r.eligible, r.responder)
                        for m, r in plan.responders.items()},
            subgroups=tuple(subgroups),
            round_decimals=s.round_decimals, min_pairs=s.min_pairs, sd_ddof=s.sd_ddof,
            ci_level=s.ci_level, wilcoxon_exact_below=wilcoxon.exact_below,
            wilcoxon_correct=wilcoxon.correct,
            effect_size_min_pairs=protocol.privacy.small_cells.threshold,
        )

    @classmethod
    def from_tables(cls, plan: Mapping[str, Any], measures: Sequence[Mapping[str, Any]],
                    subgroups: Sequence[Mapping[str, Any]], threshold: int) -> EfficacySpec:
        """From one row of protocol.analysis_plans and the plan's rows of
        protocol.plan_measures and protocol.plan_subgroups (any order)."""
        def condition(row: Mapping[str, Any], prefix: str) -> Condition | None:
            if row[f"{prefix}_quantity"] is None:
                return None
            return Condition(quantity=row[f"{prefix}_quantity"], op=row[f"{prefix}_op"],
                             value=row[f"{prefix}_value"])

        measures = sorted(measures, key=lambda r: r["measure_order"])
        subgroups = sorted(subgroups, key=lambda r: r["subgroup_order"])
        return cls(
            plan=plan["analysis_plan"],
            measures=tuple(r["measure"] for r in measures),
            responders={r["measure"]: ResponderSpec(r["responder_rule"],
                                                    condition(r, "eligible"),
                                                    condition(r, "responder"))
                        for r in measures if r["responder_rule"] is not None},
            subgroups=tuple(
                SubgroupSpec(r["subgroup"], r["subgroup_value"],
                             r["field"].split(".", 1)[1] if r["field"] else None,
                             r["field_kind"])
                for r in subgroups),
            round_decimals=plan["round_decimals"], min_pairs=plan["min_pairs"],
            sd_ddof=plan["sd_ddof"], ci_level=plan["ci_level"],
            wilcoxon_exact_below=plan["wilcoxon_exact_below"],
            wilcoxon_correct=plan["wilcoxon_correct"], effect_size_min_pairs=threshold,
        )

    @property
    def list_columns(self) -> dict[str, tuple[str, ...]]:
        """dim_patient's flag columns the subgroups read: column -> codes (in order)."""
        out: dict[str, list[str]] = {}
        for g in self.subgroups:
            if g.kind == "list" and g.column:
                out.setdefault(g.column, []).append(g.value)
        return {k: tuple(v) for k, v in out.items()}


def _column_of(field: str | None, protocol: Protocol) -> tuple[str | None, str | None]:
    if field is None:
        return None, None
    table, column = field.split(".", 1)
    return column, protocol.contract.table(table).field(column).kind


def efficacy_specs(protocol: Protocol) -> list[EfficacySpec]:
    """One spec per plan in force, the primary plan first."""
    return [EfficacySpec.from_plan(plan, protocol) for plan in protocol.plans]


def efficacy_specs_from_tables(tables: Mapping[str, pl.DataFrame]) -> list[EfficacySpec]:
    """The specs of every plan in the `protocol` tables (plan_order), primary first."""
    threshold = int(tables["protocol_info"].get_column("small_cell_threshold")[0])
    measures = tables["plan_measures"].to_dicts()
    subgroups = tables["plan_subgroups"].to_dicts()
    return [
        EfficacySpec.from_tables(
            plan, [m for m in measures if m["analysis_plan"] == plan["analysis_plan"]],
            [g for g in subgroups if g["analysis_plan"] == plan["analysis_plan"]], threshold)
        for plan in tables["analysis_plans"].sort("plan_order").to_dicts()
    ]


@dataclass(frozen=True)
class SafetySpec:
    """The categories mart_safety always shows (the contract's codes, in order) and the
    codes of §1's "discontinued after an adverse event"."""

    severity: tuple[str, ...]
    seriousness: tuple[str, ...]
    related: tuple[str, ...]
    action: tuple[str, ...]
    stop_reasons: tuple[str, ...]
    stopped_for_adverse_event: str | None
    discontinued_action: str | None

    @classmethod
    def from_protocol(cls, protocol: Protocol) -> SafetySpec:
        c = protocol.contract

        def codes(table: str, column: str) -> tuple[str, ...]:
            return c.vocabulary(c.table(table).field(column).vocabulary or "").code_list

        safety = protocol.primary_plan.safety
        return cls._of(codes, safety.stopped_for_adverse_event if safety else None,
                       safety.discontinued_action if safety else None)

    @classmethod
    def from_tables(cls, tables: Mapping[str, pl.DataFrame]) -> SafetySpec:
        """From protocol.fields, protocol.vocabularies and the primary plan's row of
        protocol.analysis_plans."""
        fields = tables["fields"]
        vocabularies = tables["vocabularies"].sort("code_order")

        def codes(table: str, column: str) -> tuple[str, ...]:
            (name,) = fields.filter((pl.col("table_name") == table)
                                    & (pl.col("column_name") == column))["vocabulary"]
            return tuple(vocabularies.filter(pl.col("vocabulary") == name)["code"])

        primary = tables["analysis_plans"].filter(pl.col("is_primary")).to_dicts()[0]
        return cls._of(codes, primary["safety_stopped_for_adverse_event"],
                       primary["safety_discontinued_action"])

    @classmethod
    def _of(cls, codes: Callable[[str, str], tuple[str, ...]], stopped_for_adverse_event:
            str | None, discontinued_action: str | None) -> SafetySpec:
        """From `codes(table, column)`: the codes of a field's vocabulary, in order."""
        return cls(
            severity=codes("adverse_events", "severity"),
            seriousness=codes("adverse_events", "serious"),
            related=codes("adverse_events", "related"),
            action=codes("adverse_events", "action"),
            stop_reasons=codes("patients", "ivig_stop_reason"),
            stopped_for_adverse_event=stopped_for_adverse_event,
            discontinued_action=discontinued_action,
        )
