"""Check rows that refer to the protocol, resolved against the protocol in force.

A row of `field_checks.csv` whose `protocol` cell is set takes its numbers and sets from
the protocol instead of writing them (so an amendment's range, spelling or measure reaches
the suites with no edit of the tables):

- `field:<table>.<column>`: for `valid_range`, the field's minimum (or exclusive
  minimum) and maximum; for `value_in_set` / `list_values_in_set`, the codes of the
  field's vocabulary (and, for a list, at least one item when the field is required);
- `vocabulary:<name>`: the codes of that vocabulary;
- `measures`: for `value_in_set`, the names of the contract's measures;
- `each_measure`: one row per measure of the contract;
- `each_measure_with_units`: one row per measure that has units (where a unit error
  shows as a site's drift);
- `each_plan_measure`: one row per measure of the primary plan.

An `each_*` row writes `{measure}` where the measure's name goes (column, condition,
notes); for `valid_range` its bounds are the measure's valid range. Notes may also use
`{range}` (e.g. `0–51`, `> 0 and ≤ 100,000`) and `{unit}`. A row refers to the protocol
or writes the numbers, never both: a protocol row with its own bounds or set is refused.
Other parameters (a drift factor, a completeness minimum) are the check's own.
"""

from __future__ import annotations

from typing import Any

from ivig_platform.protocol.load import Protocol
from ivig_platform.protocol.schema import Range

#: What the protocol supplies, by check type (a row may not write it too).
_SUPPLIED = {
    "valid_range": ("value", "min_value", "max_value"),
    "value_in_set": ("value",),
    "list_values_in_set": ("value",),
}


def _fill(row: dict[str, str], values: dict[str, str]) -> dict[str, str]:
    return {k: (v.format(**values) if k in ("column", "condition", "notes") and v else v)
            for k, v in row.items()}


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _with_range(row: dict[str, str], bounds: Range, source: str) -> dict[str, str]:
    if not bounds.is_set:
        raise ValueError(f"{source}: {row['protocol']} has no range to check")
    return {
        **row,
        "value": "" if bounds.low_inclusive else "strict_min",
        "min_value": "" if bounds.low is None else _number(bounds.low),
        "max_value": "" if bounds.maximum is None else _number(bounds.maximum),
    }


def _with_set(row: dict[str, str], codes: tuple[str, ...], required: bool) -> dict[str, str]:
    out = {**row, "value": "|".join(codes)}
    if row["check_type"] == "list_values_in_set" and not row.get("min_value"):
        out["min_value"] = "1" if required else "0"
    return out


def _resolve(row: dict[str, str], protocol: Protocol, source: str) -> list[dict[str, str]]:
    c, plan = protocol.contract, protocol.primary_plan
    reference = row["protocol"]
    kind, _, target = reference.partition(":")
    check_type = row["check_type"]
    if kind in ("each_measure", "each_measure_with_units", "each_plan_measure"):
        names = {
            "each_measure": c.measure_names,
            "each_measure_with_units": tuple(m.name for m in c.measures if m.units),
            "each_plan_measure": plan.measure_names,
        }[kind]
        out = []
        for name in names:
            m = c.measure(name)
            one = _fill(row, {"measure": name, "range": m.valid_range.text(), "unit": m.unit})
            out.append(_with_range(one, m.valid_range, source) if check_type == "valid_range"
                       else one)
        return out
    if kind == "field":
        table, _, column = target.partition(".")
        try:
            f = c.table(table).field(column)
        except KeyError:
            raise ValueError(f"{source}: {reference} is not a field of the contract") from None
        values = {"range": f.constraints.text(), "unit": ""}
        row = _fill(row, values)
        if check_type == "valid_range":
            return [_with_range(row, f.constraints, source)]
        if f.vocabulary is None:
            raise ValueError(f"{source}: {reference} has no vocabulary to check against")
        return [_with_set(row, c.vocabulary(f.vocabulary).code_list, f.not_null)]
    if kind == "vocabulary":
        if target not in c.all_vocabularies():
            raise ValueError(f"{source}: unknown vocabulary in {reference}")
        return [_with_set(row, c.vocabulary(target).code_list, False)]
    if kind == "measures":
        return [{**row, "value": "|".join(c.measure_names)}]
    raise ValueError(f"{source}: unknown protocol reference {reference!r}")


def resolve_row(row: dict[str, Any], protocol: Protocol, source: str) -> list[dict[str, str]]:
    """The concrete rows one row of the tables stands for under `protocol`."""
    if not row.get("protocol"):
        return [row]
    written = [k for k in _SUPPLIED.get(row["check_type"], ()) if row.get(k)]
    if written:
        raise ValueError(f"{source}: a row that refers to the protocol ({row['protocol']}) "
                         f"cannot also write {', '.join(written)}")
    return _resolve(row, protocol, source)
