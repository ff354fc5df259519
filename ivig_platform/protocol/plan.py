"""An analysis plan of protocol §7 (v1, or an amendment) as a validated, frozen model.

A plan is validated against the contract in force (pass it as the validation context
`{"contract": contract}`; `load.py` does): its measures must be measures of the contract,
its subgroups fields with a vocabulary, its therapy classes drug classes. What a plan
takes from the contract is filled in then, so a consumer needs the plan only: each
measure's `unit` and `valid_range`, the labels with their `{range}` and `{unit}`
placeholders filled, and each subgroup's `values` with their titles.
"""

from __future__ import annotations

import string
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, model_validator

from ivig_platform.protocol.schema import (
    Contract,
    Model,
    Name,
    Range,
    Text,
    Version,
    by_name,
    number_text,
)


class Windows(Model):
    """§7 baseline and post windows, in days (both ends inclusive)."""

    baseline_days_before: Annotated[int, Field(ge=0)]
    post_target_days: Annotated[int, Field(ge=0)]
    post_min_days: Annotated[int, Field(ge=1)]
    post_max_days: Annotated[int, Field(ge=0)]
    post_tie: Literal["later"] = "later"

    @model_validator(mode="after")
    def _ordered(self) -> Windows:
        low, target, high = self.post_min_days, self.post_target_days, self.post_max_days
        if not low <= target <= high:
            raise ValueError(
                f"post_min_days ({low}) ≤ post_target_days ({target}) ≤ post_max_days "
                f"({high}) must hold"
            )
        return self


Quantity = Literal["baseline", "post", "change", "decrease"]
Op = Literal["<", "<=", ">", ">="]


class Condition(Model):
    """`quantity op value` on one pair: change = post - baseline, decrease = baseline - post."""

    quantity: Quantity
    op: Op
    value: float

    def text(self) -> str:
        return f"{self.quantity} {self.op} {number_text(self.value)}"


class Responder(Model):
    """A responder definition: among the `eligible` pairs (all when absent), who responds.

    `text` is the definition as the marts and the report state it.
    """

    eligible: Condition | None = None
    responder: Condition
    text: Text


class PlanMeasure(Model):
    """A measure as the plan analyses and shows it."""

    name: Name
    label: Text
    short_label: Text
    axis_title: Text
    decimals: Annotated[int, Field(ge=0)]
    plot: Literal["valid_range", "log", "from_zero"]
    responder: Responder | None = None
    # From the contract's measure:
    unit: Text
    valid_range: Range

    @model_validator(mode="before")
    @classmethod
    def _from_contract(cls, data: Any, info: ValidationInfo) -> Any:
        contract = _contract_for(data, info, "name", ("unit", "valid_range"),
                                 "the contract's measure")
        if contract is None:
            return data
        try:
            measure = contract.measure(data["name"])
        except KeyError:
            raise ValueError(
                f"{data['name']!r} is not a measure of the contract (measures: "
                f"{', '.join(contract.measure_names)})"
            ) from None
        values = {"range": measure.valid_range.text(), "unit": measure.unit}
        out = dict(data, unit=measure.unit,
                   valid_range=measure.valid_range.model_dump(by_alias=True))
        for key in ("label", "short_label", "axis_title"):
            if isinstance(out.get(key), str):
                out[key] = fill(out[key], values, key)
        return out

    @property
    def plot_domain(self) -> tuple[float | None, float | None] | None:
        """The y axis's span when the plot shows the valid range; None otherwise."""
        if self.plot != "valid_range":
            return None
        return (self.valid_range.low, self.valid_range.maximum)


class SubgroupValue(Model):
    value: Text
    title: Text


class Subgroup(Model):
    """Overall (no field), or one subgroup per code of a field's vocabulary, in order."""

    name: Name
    title: Text
    field: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")] | None = None
    values: tuple[SubgroupValue, ...] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _from_contract(cls, data: Any, info: ValidationInfo) -> Any:
        contract = _contract_for(data, info, "title", ("values",), "the field's vocabulary")
        if contract is None:
            return data
        field = data.get("field")
        if field is None:
            return dict(data, values=[{"value": data.get("name"), "title": data["title"]}])
        if not isinstance(field, str) or "." not in field:
            return data  # the pattern reports it
        table, column = field.split(".", 1)
        try:
            vocabulary = contract.vocabulary(contract.table(table).field(column).vocabulary or "")
        except KeyError:
            raise ValueError(
                f"field {field!r} is not a field of the contract with a vocabulary"
            ) from None
        values = [
            {"value": code, "title": fill(data["title"], {"label": vocabulary.label(code)},
                                          "title")}
            for code in vocabulary.code_list
        ]
        return dict(data, values=values)

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        return tuple((self.name, v.value) for v in self.values)


class Wilcoxon(Model):
    """R's `wilcox.test(post, baseline, paired = TRUE)`: exact below `exact_below` pairs
    when there are no ties or zeros, else the normal approximation (with continuity
    correction when `correct`)."""

    exact_below: Annotated[int, Field(ge=1)]
    correct: bool


class Tests(Model):
    paired_t: bool
    wilcoxon: Wilcoxon | None = None


class Summaries(Model):
    """§7 summary conventions."""

    difference: Literal["post - baseline"]
    sd_ddof: Annotated[int, Field(ge=0)]
    quantile_type: Literal[7]
    ci_level: Annotated[float, Field(gt=0, lt=1)]
    ci_method: Literal["t"]
    round_decimals: Annotated[int, Field(ge=0)]
    min_pairs: Annotated[int, Field(ge=1)]
    tests: Tests


class ConcomitantTherapy(Model):
    """§7: on a class when a treatment of it overlaps the IVIG period (one flag a class)."""

    period: Literal["first_to_last_cycle_start"]
    undated_overlaps: bool
    classes: tuple[Name, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_classes(self, info: ValidationInfo) -> ConcomitantTherapy:
        contract = _contract(info)
        if contract is not None:
            known = contract.terminology.drugs.classes
            unknown = [c for c in self.classes if c not in known]
            if unknown:
                raise ValueError(
                    f"unknown drug class(es) {', '.join(unknown)} (the contract's classes: "
                    f"{', '.join(known)})"
                )
        return self


class Safety(Model):
    """§1 safety figures: which codes mean "IVIG stopped because of an adverse event" (a
    code of `patients.ivig_stop_reason`) and "IVIG discontinued" as an adverse event's
    action (a code of `adverse_events.action`)."""

    stopped_for_adverse_event: Name
    discontinued_action: Name

    @model_validator(mode="after")
    def _known_codes(self, info: ValidationInfo) -> Safety:
        contract = _contract(info)
        if contract is None:
            return self
        for key, field in (("stopped_for_adverse_event", "patients.ivig_stop_reason"),
                           ("discontinued_action", "adverse_events.action")):
            table, column = field.split(".")
            vocabulary = contract.vocabulary(contract.table(table).field(column).vocabulary)
            if getattr(self, key) not in vocabulary.codes:
                raise ValueError(f"{key}: {getattr(self, key)!r} is not a code of {field} "
                                 f"({', '.join(vocabulary.code_list)})")
        return self


class Plan(Model):
    """One analysis plan: v1 (the primary analysis) or an amendment's plan."""

    version: Version
    title: Text
    extends: Version | None = None
    effective_date: date | None = None
    rationale: Text | None = None
    index_date: Literal["first_cycle_start"]
    windows: Windows
    measures: tuple[PlanMeasure, ...] = Field(min_length=1)
    subgroups: tuple[Subgroup, ...] = Field(min_length=1)
    summaries: Summaries
    concomitant_therapy: ConcomitantTherapy
    safety: Safety | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> Plan:
        for what, names in (("measure", [m.name for m in self.measures]),
                            ("subgroup", [s.name for s in self.subgroups])):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"{what}(s) listed twice: {', '.join(twice)}")
        return self

    @property
    def is_primary(self) -> bool:
        return self.extends is None

    @property
    def measure_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.measures)

    def measure(self, name: str) -> PlanMeasure:
        return by_name(self.measures, name, f"plan {self.version}")

    @property
    def subgroup_pairs(self) -> tuple[tuple[str, str], ...]:
        """(subgroup, subgroup_value) in output order, as in mart_efficacy."""
        return tuple(pair for s in self.subgroups for pair in s.pairs)

    @property
    def responders(self) -> dict[str, Responder]:
        """Responder definitions by measure (measures without one are absent)."""
        return {m.name: m.responder for m in self.measures if m.responder is not None}


def _contract(info: ValidationInfo) -> Contract | None:
    return (info.context or {}).get("contract")


def _contract_for(data: Any, info: ValidationInfo, needed: str, filled: tuple[str, ...],
                  source: str) -> Contract | None:
    """The contract to fill `filled` keys of `data` from, or None when there is nothing to
    fill (no contract, or `data` too broken: its own validation will say how)."""
    contract = _contract(info)
    if not isinstance(data, dict) or contract is None or not isinstance(data.get(needed), str):
        return None
    given = [k for k in filled if k in data]
    if given:
        raise ValueError(f"{', '.join(given)} come(s) from {source}; remove it here")
    return contract


def fill(template: str, values: dict[str, str], key: str) -> str:
    """`template` with its `{name}` placeholders filled; an unknown one is an error."""
    names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    unknown = [n for n in names if n not in values]
    if unknown:
        raise ValueError(
            f"{key}: unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)} "
            f"(known: {', '.join('{' + n + '}' for n in values)})"
        )
    return template.format(**values)
