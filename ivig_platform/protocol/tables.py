"""The protocol in force as tables: what dbt, the stats, the report and analysts read.

The build step writes these frames into the build file as schema `protocol` before dbt
runs (`ivig_platform.modeling.dbt_build`), so they travel with the published file: a
warehouse says which contract and which plans it was built under. dbt reads them as
documented sources (windows per plan, measures and units, accepted values, ranges); the
stats models read the plans from them; the report reads labels, ranges and the small-cell
threshold from them. `dbt_vars` is the part dbt needs while it compiles (columns and rows
made per vocabulary code, the freshness thresholds), passed as `--vars`.

Every table has one row per item of the definition, in the definition's order (`*_order`,
1-based). Numbers are the definition's, unrounded; ranges as Table Schema has them
(`valid_min` with `valid_min_inclusive`, inclusive `valid_max`; null = unbounded).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ivig_platform.protocol.load import Protocol, plan_fingerprint
from ivig_platform.protocol.plan import Condition, Plan
from ivig_platform.protocol.schema import Range

#: The schema of the build file (and of the published file) holding these tables.
SCHEMA = "protocol"


def _range(r: Range) -> dict[str, Any]:
    return {"valid_min": r.low, "valid_min_inclusive": r.low_inclusive if r.low is not None
            else None, "valid_max": r.maximum}


_RANGE_SCHEMA = {"valid_min": pl.Float64, "valid_min_inclusive": pl.Boolean,
                 "valid_max": pl.Float64}


def _condition(prefix: str, c: Condition | None) -> dict[str, Any]:
    return {f"{prefix}_quantity": c.quantity if c else None, f"{prefix}_op": c.op if c else None,
            f"{prefix}_value": c.value if c else None}


def _frame(rows: list[dict[str, Any]], schema: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(
        schema=schema)


def protocol_info(p: Protocol) -> pl.DataFrame:
    cells, fresh = p.privacy.small_cells, p.monitoring.freshness
    return _frame([{
        "study": p.info.study, "protocol_version": p.version,
        "contract_version": p.contract_version, "contract_fingerprint": p.contract_fingerprint,
        "protocol_fingerprint": p.fingerprint,
        "plans_in_force": ", ".join(plan.version for plan in p.plans),
        "small_cell_threshold": cells.threshold, "small_cell_mask": cells.mask,
        "secondary_suppression": cells.secondary_suppression,
        "freshness_warn_after_days": fresh.warn_after_days,
        "freshness_error_after_days": fresh.error_after_days,
    }], {"study": pl.String, "protocol_version": pl.String, "contract_version": pl.String,
         "contract_fingerprint": pl.String, "protocol_fingerprint": pl.String,
         "plans_in_force": pl.String, "small_cell_threshold": pl.Int64,
         "small_cell_mask": pl.String, "secondary_suppression": pl.Boolean,
         "freshness_warn_after_days": pl.Int64, "freshness_error_after_days": pl.Int64})


def vocabularies(p: Protocol) -> pl.DataFrame:
    rows = [
        {"vocabulary": name, "code": code, "label": v.label(code), "code_order": i,
         "spellings": list(category.spellings)}
        for name, v in p.contract.all_vocabularies().items()
        for i, (code, category) in enumerate(v.codes.items(), start=1)
    ]
    return _frame(rows, {"vocabulary": pl.String, "code": pl.String, "label": pl.String,
                         "code_order": pl.Int64, "spellings": pl.List(pl.String)})


def measures(p: Protocol) -> pl.DataFrame:
    rows = [
        {"measure": m.name, "title": m.title, "description": m.description, "unit": m.unit,
         "value_type": m.value.type, **_range(m.valid_range),
         "range_text": m.valid_range.text(), "higher_is_better": m.higher_is_better,
         "measure_order": i}
        for i, m in enumerate(p.contract.measures, start=1)
    ]
    return _frame(rows, {"measure": pl.String, "title": pl.String, "description": pl.String,
                         "unit": pl.String, "value_type": pl.String, **_RANGE_SCHEMA,
                         "range_text": pl.String, "higher_is_better": pl.Boolean,
                         "measure_order": pl.Int64})


def fields(p: Protocol) -> pl.DataFrame:
    rows = [
        {"table_name": t.name, "column_name": f.name, "field_order": i, "type": f.type,
         "kind": f.kind, "vocabulary": f.vocabulary, "required_column": f.required_column,
         "required_value": f.not_null, "identifier": f.identifier, **_range(f.constraints)}
        for name in p.contract.delivery.tables
        for t in [p.contract.table(name)]
        for i, f in enumerate(t.fields, start=1)
    ]
    return _frame(rows, {"table_name": pl.String, "column_name": pl.String,
                         "field_order": pl.Int64, "type": pl.String, "kind": pl.String,
                         "vocabulary": pl.String, "required_column": pl.Boolean,
                         "required_value": pl.Boolean, "identifier": pl.Boolean,
                         **_RANGE_SCHEMA})


def _plan_row(p: Protocol, plan: Plan, order: int) -> dict[str, Any]:
    w, s = plan.windows, plan.summaries
    wilcoxon = s.tests.wilcoxon
    return {
        "analysis_plan": plan.version, "plan_order": order, "is_primary": order == 1,
        "title": plan.title, "extends": plan.extends, "effective_date": plan.effective_date,
        "rationale": plan.rationale, "index_date_rule": plan.index_date,
        "baseline_days_before": w.baseline_days_before,
        "post_target_days": w.post_target_days, "post_min_days": w.post_min_days,
        "post_max_days": w.post_max_days, "post_tie": w.post_tie,
        "sd_ddof": s.sd_ddof, "quantile_type": s.quantile_type, "ci_level": s.ci_level,
        "round_decimals": s.round_decimals, "min_pairs": s.min_pairs,
        "paired_t": s.tests.paired_t,
        "wilcoxon_exact_below": wilcoxon.exact_below if wilcoxon else None,
        "wilcoxon_correct": wilcoxon.correct if wilcoxon else None,
        "undated_treatments_overlap": plan.concomitant_therapy.undated_overlaps,
        "safety_stopped_for_adverse_event":
            plan.safety.stopped_for_adverse_event if plan.safety else None,
        "safety_discontinued_action": plan.safety.discontinued_action if plan.safety else None,
        "source": p.source_of(plan.version), "plan_fingerprint": plan_fingerprint(plan),
    }


def analysis_plans(p: Protocol) -> pl.DataFrame:
    rows = [_plan_row(p, plan, i) for i, plan in enumerate(p.plans, start=1)]
    return _frame(rows, {
        "analysis_plan": pl.String, "plan_order": pl.Int64, "is_primary": pl.Boolean,
        "title": pl.String, "extends": pl.String, "effective_date": pl.Date,
        "rationale": pl.String, "index_date_rule": pl.String,
        "baseline_days_before": pl.Int64, "post_target_days": pl.Int64,
        "post_min_days": pl.Int64, "post_max_days": pl.Int64, "post_tie": pl.String,
        "sd_ddof": pl.Int64, "quantile_type": pl.Int64, "ci_level": pl.Float64,
        "round_decimals": pl.Int64, "min_pairs": pl.Int64, "paired_t": pl.Boolean,
        "wilcoxon_exact_below": pl.Int64, "wilcoxon_correct": pl.Boolean,
        "undated_treatments_overlap": pl.Boolean,
        "safety_stopped_for_adverse_event": pl.String, "safety_discontinued_action": pl.String,
        "source": pl.String, "plan_fingerprint": pl.String,
    })


def plan_measures(p: Protocol) -> pl.DataFrame:
    rows = [
        {"analysis_plan": plan.version, "measure": m.name, "measure_order": i,
         "label": m.label, "short_label": m.short_label, "axis_title": m.axis_title,
         "decimals": m.decimals, "plot": m.plot, "unit": m.unit, **_range(m.valid_range),
         "responder_rule": m.responder.text if m.responder else None,
         **_condition("eligible", m.responder.eligible if m.responder else None),
         **_condition("responder", m.responder.responder if m.responder else None)}
        for plan in p.plans for i, m in enumerate(plan.measures, start=1)
    ]
    condition = {f"{k}_{c}": t for k in ("eligible", "responder")
                 for c, t in (("quantity", pl.String), ("op", pl.String),
                              ("value", pl.Float64))}
    return _frame(rows, {"analysis_plan": pl.String, "measure": pl.String,
                         "measure_order": pl.Int64, "label": pl.String,
                         "short_label": pl.String, "axis_title": pl.String,
                         "decimals": pl.Int64, "plot": pl.String, "unit": pl.String,
                         **_RANGE_SCHEMA, "responder_rule": pl.String, **condition})


def plan_subgroups(p: Protocol) -> pl.DataFrame:
    rows = []
    for plan in p.plans:
        order = 0
        for s in plan.subgroups:
            kind = None
            if s.field:
                table, column = s.field.split(".", 1)
                kind = p.contract.table(table).field(column).kind
            for v in s.values:
                order += 1
                rows.append({"analysis_plan": plan.version, "subgroup": s.name,
                             "subgroup_value": v.value, "field": s.field, "field_kind": kind,
                             "title": v.title, "subgroup_order": order})
    return _frame(rows, {"analysis_plan": pl.String, "subgroup": pl.String,
                         "subgroup_value": pl.String, "field": pl.String,
                         "field_kind": pl.String, "title": pl.String,
                         "subgroup_order": pl.Int64})


def plan_therapy_classes(p: Protocol) -> pl.DataFrame:
    rows = [
        {"analysis_plan": plan.version, "drug_class": c, "class_order": i}
        for plan in p.plans
        for i, c in enumerate(plan.concomitant_therapy.classes, start=1)
    ]
    return _frame(rows, {"analysis_plan": pl.String, "drug_class": pl.String,
                         "class_order": pl.Int64})


def drug_classes(p: Protocol) -> pl.DataFrame:
    """The classes of the drug terminology, and the class of a drug it does not know."""
    drugs = p.contract.terminology.drugs
    rows = [{"drug_class": c, "class_order": i, "is_unmapped": False}
            for i, c in enumerate(drugs.classes, start=1)]
    rows.append({"drug_class": drugs.unmapped, "class_order": len(rows) + 1,
                 "is_unmapped": True})
    return _frame(rows, {"drug_class": pl.String, "class_order": pl.Int64,
                         "is_unmapped": pl.Boolean})


#: Table name → builder, in the order they are written (and documented in dbt).
BUILDERS = {
    "protocol_info": protocol_info,
    "vocabularies": vocabularies,
    "measures": measures,
    "fields": fields,
    "drug_classes": drug_classes,
    "analysis_plans": analysis_plans,
    "plan_measures": plan_measures,
    "plan_subgroups": plan_subgroups,
    "plan_therapy_classes": plan_therapy_classes,
}


def protocol_tables(p: Protocol) -> dict[str, pl.DataFrame]:
    """Every table of schema `protocol` for `p` (its contract in force and every plan)."""
    return {name: build(p) for name, build in BUILDERS.items()}


def dbt_vars(p: Protocol) -> dict[str, Any]:
    """What dbt needs while it compiles: the codes (with labels) of every vocabulary, the
    drug classes, the primary plan's therapy classes, the freshness thresholds.

    Columns named after codes (`indication_<code>`, `on_<class>`) and the rows of table 1
    are made from these, so dbt must know them before it runs; everything a query can
    join (windows, ranges, accepted values) stays in the `protocol` tables.
    """
    c = p.contract
    primary = p.primary_plan
    return {
        "protocol": {
            "version": p.version,
            "vocabularies": {
                name: [{"code": code, "label": v.label(code)} for code in v.code_list]
                for name, v in c.all_vocabularies().items()
            },
            "drug_classes": list(c.terminology.drugs.classes),
            "unmapped_class": c.terminology.drugs.unmapped,
            "therapy_classes": list(primary.concomitant_therapy.classes),
            "undated_overlaps": primary.concomitant_therapy.undated_overlaps,
            "field_vocabularies": {
                f"{t.name}.{f.name}": f.vocabulary
                for t in c.tables.values() for f in t.fields if f.vocabulary
            },
        },
        "freshness_warn_after_days": p.monitoring.freshness.warn_after_days,
        "freshness_error_after_days": p.monitoring.freshness.error_after_days,
    }
