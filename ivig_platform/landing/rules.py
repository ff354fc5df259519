"""The row rules of protocol §3 and §5, as named boolean Polars expressions.

Each table's text is typed column by column; every rule is a `Check` (rule, column,
violation expression). A row that violates any check is quarantined under the first one
in the contract's rule order (then column order) and the full list goes to `detail`, so a hospital
fixing a row sees everything wrong with it at once. Cross-table rules (unknown or
quarantined patients, adverse events before the first cycle) run after the tables they
depend on, in the order patients → cycles → the rest.

Every number and spelling comes from the contract in force (`LandingContract`, from the
protocol): vocabularies, ranges, the date limit, each measure's value rule and units, the
age rule. A new measure of the contract is read by its value type with no code change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl
import polars.selectors as cs

from ivig_platform.landing.contract import Column, LandingContract, Table, landing_contract
from ivig_platform.landing.parsing import (
    NumberStyle,
    blank_to_null,
    clean_code,
    fold_expr,
    fold_unit,
    parse_date,
    parse_number,
)
from ivig_platform.landing.readers import FORMULA, SOURCE_ROW, RawTable
from ivig_platform.landing.schema import landed_schema

# Prefix of the text columns kept for quarantine values: the cell as written, trimmed, and
# null when blank (`blank_to_null`, applied once when the table is typed).
RAW = "__raw_"
TMP = "__tmp_"  # prefix of intermediate columns (parsed parts, violation flags)


@dataclass(frozen=True)
class Check:
    rule: str
    column: str
    violated: pl.Expr
    note: str | None = None  # said after the rule in `detail` (e.g. the limit broken)

    @property
    def detail(self) -> str:
        text = f"{self.column}: {self.rule}"
        return f"{text} ({self.note})" if self.note else text


@dataclass
class Checked:
    """A table split into rows that land and rows that are quarantined."""

    landed: pl.DataFrame
    quarantined: pl.DataFrame  # SOURCE_ROW, column_name, rule, value, detail


def raw(name: str) -> pl.Expr:
    """The column's text as written, trimmed; null when the cell is blank."""
    return pl.col(f"{RAW}{name}")


def tmp(name: str) -> pl.Expr:
    return pl.col(f"{TMP}{name}")


def _typed(column: Column, style: NumberStyle, contract: LandingContract) -> pl.Expr:
    text = raw(column.name)
    vocabularies = contract.vocabularies
    if column.kind == "date":
        return parse_date(text)
    if column.kind in ("decimal", "integer"):
        return parse_number(text, style)
    if column.kind == "category":
        return fold_expr(text).replace_strict(vocabularies[column.vocabulary], default=None)
    if column.kind == "yesno":
        # the schema requires a boolean field's vocabulary to have the codes yes and no
        folded = fold_expr(text).replace_strict(vocabularies[column.vocabulary], default=None)
        return pl.when(folded == "yes").then(True).when(folded == "no").then(False)
    if column.kind == "list":
        vocabulary = vocabularies[column.vocabulary]
        items = (
            text.fill_null("")
            .str.split("|")
            .list.eval(fold_expr(pl.element()).filter(pl.element().str.strip_chars() != ""))
        )
        return (
            items.list.eval(pl.element().replace_strict(vocabulary, default=None))
            .list.unique()
            .list.sort()
        )
    if column.kind == "id":
        return clean_code(text)  # matched across tables and pseudonymised as cleaned
    return text  # text, value: kept as text here (value is parsed per measure)


def field_checks(table: Table, style: NumberStyle, delivery_date: date,
                 earliest_date: date) -> list[Check]:
    """Rules that look at one field of one row (§3 types, ranges, vocabularies; §5 dates)."""
    checks: list[Check] = []
    for column in table.columns:
        typed = pl.col(column.name)
        present = raw(column.name).is_not_null()
        if column.not_null and column.kind != "list":
            checks.append(Check("required", column.name, ~present))
        if column.kind == "date":
            checks.append(Check("invalid_date", column.name, present & typed.is_null()))
            checks.append(
                Check(
                    "date_out_of_range",
                    column.name,
                    (typed < earliest_date) | (typed > delivery_date),
                )
            )
        elif column.kind in ("decimal", "integer"):
            checks.append(Check("invalid_number", column.name, present & typed.is_null()))
            if column.kind == "integer":
                checks.append(Check("not_integer", column.name, typed != typed.floor()))
            # the note names the limits, so a site sees which range its value broke
            checks.append(Check("out_of_range", column.name, _outside(typed, column),
                                note=column.range_text))
            if column.kind == "integer":
                checks.append(_beyond_storage(typed, table.name, column.name))
        elif column.kind in ("category", "yesno"):
            checks.append(Check("invalid_category", column.name, present & typed.is_null()))
        elif column.kind == "list":
            checks.append(
                Check(
                    "invalid_category",
                    column.name,
                    typed.list.eval(pl.element().is_null()).list.any(),
                )
            )
            if column.not_null:
                checks.append(Check("required", column.name, typed.list.len() == 0))
    return checks


def formula_checks(columns: list[str]) -> list[Check]:
    """A formula cell without a value is a value nobody can see: its row is quarantined
    (readers.py puts the formula in a hidden column)."""
    return [
        Check("formula_without_value", name.removeprefix(FORMULA), pl.col(name).is_not_null())
        for name in columns if name.startswith(FORMULA)
    ]


def _beyond_storage(value: pl.Expr, table: str, column: str) -> Check:
    """An integer the landed type cannot hold (cycle 1e10) is out of range, not a crash.

    The contract gives cycle_number no upper bound; the landed INTEGER does.
    """
    dtype = landed_schema(table)[column]
    low, high = pl.select(dtype.min().alias("low"), dtype.max().alias("high")).row(0)
    return Check(
        "out_of_range", column, (value < low) | (value > high),
        note=f"the landed column holds whole numbers from {low} to {high}",
    )


def _outside_range(value: pl.Expr, low: float | None, high: float | None,
                   low_inclusive: bool) -> pl.Expr:
    below = pl.lit(False)
    if low is not None:
        below = value < low if low_inclusive else value <= low
    above = value > high if high is not None else pl.lit(False)
    return below | above


def _outside(value: pl.Expr, column: Column) -> pl.Expr:
    return _outside_range(value, column.low, column.high, column.low_inclusive)


def _by_measure(values: dict[str, pl.Expr]) -> pl.Expr:
    """`values[measure]` for the row's measure (null for any other)."""
    measure = pl.col("measure")
    expr = pl.lit(None)
    for name, value in reversed(values.items()):
        expr = pl.when(measure == name).then(value).otherwise(expr)
    return expr


def assessment_checks(style: NumberStyle, contract: LandingContract
                      ) -> tuple[list[list[pl.Expr]], list[Check]]:
    """The value's meaning depends on the measure: a grade read by its grammar (the
    modified MRC), or a number (with its units converted) in the measure's range.

    Returns the steps of columns to add (each step reads the ones before it) and the
    checks, which read the parsed parts instead of parsing the text again.
    """
    measure = pl.col("measure")
    text = raw("value")
    rules = contract.measures
    graded = contract.measures_where(value_type="grade")
    numeric = [m for m in rules if m not in graded]
    with_units = contract.measures_with_units
    needs_unit = [m for m in with_units if rules[m].unit_required]
    parts = [
        fold_unit(raw("unit")).alias(f"{TMP}unit"),
        parse_number(text, style).alias(f"{TMP}number"),
        *(rules[m].parse_grade(text).alias(f"{TMP}grade_{m}") for m in graded),
    ]
    unit, number, factor = tmp("unit"), tmp("number"), tmp("factor")
    grade = _by_measure({m: tmp(f"grade_{m}") for m in graded})
    value = _by_measure({
        m: tmp(f"grade_{m}") if m in graded else number * factor if m in with_units
        else number
        for m in rules
    })
    # one check per measure, so the detail names that measure's range (the rule and
    # column stay out_of_range / value)
    out_of_range = [
        Check("out_of_range", "value",
              (measure == name) & _outside_range(pl.col("value"), rules[name].low,
                                                 rules[name].high, rules[name].low_inclusive),
              note=f"{name} {rules[name].range_text}" if rules[name].range_text else None)
        for name in numeric
    ]
    checks = [
        Check("required", "unit", measure.is_in(needs_unit) & unit.is_null()),
        Check("invalid_number", "value",
              measure.is_in(numeric) & text.is_not_null() & number.is_null()),
        Check("not_integer", "value",
              measure.is_in(contract.measures_where(value_type="integer"))
              & (number != number.floor())),
        *out_of_range,
        Check("invalid_mrc_grade", "value",
              measure.is_in(graded) & text.is_not_null() & grade.is_null()),
        Check("invalid_unit", "unit",
              measure.is_in(with_units) & unit.is_not_null() & factor.is_null()),
    ]
    exprs = [
        _by_measure({
            m: unit.replace_strict(rules[m].units, default=None, return_dtype=pl.Float64)
            for m in with_units
        }).cast(pl.Float64).alias(f"{TMP}factor"),
        text.alias("value_as_reported"),
        pl.when(measure.is_in(with_units)).then(raw("unit")).alias("unit_as_reported"),
    ]
    return [parts, exprs, [value.cast(pl.Float64).alias("value")]], checks


def type_table(raw_table: RawTable, delivery_date: date,
               contract: LandingContract | None = None) -> tuple[pl.DataFrame, list[Check]]:
    """Typed columns next to the raw text, and the field-level checks for the table."""
    contract = contract or landing_contract()
    table = contract.tables[raw_table.name]
    texts = [blank_to_null(pl.col(c.name)).alias(f"{RAW}{c.name}") for c in table.columns]
    typed = [_typed(c, raw_table.number_style, contract).alias(c.name) for c in table.columns]
    checks = field_checks(table, raw_table.number_style, delivery_date,
                          contract.earliest_date) + formula_checks(raw_table.frame.columns)
    steps = [texts, typed]
    if any(c.kind == "value" for c in table.columns):
        more, extra = assessment_checks(raw_table.number_style, contract)
        steps += more
        checks = checks + extra
    plan = raw_table.frame.lazy()
    for step in steps:
        plan = plan.with_columns(step)
    frame = plan.collect()
    # cycle_number stays Float64 here so `not_integer` can see 7.5; landing casts it to
    # INTEGER only after the row passed.
    return frame, checks


def first_violation(frame: pl.DataFrame, table: Table, checks: list[Check],
                    rule_order: tuple[str, ...]) -> pl.DataFrame:
    """Tag each row with the first rule it breaks (or null) and the list of all it breaks."""
    order = {rule: i for i, rule in enumerate(rule_order)}
    columns = {c.name: i for i, c in enumerate(table.columns)}
    ranked = sorted(checks, key=lambda c: (order[c.rule], columns.get(c.column.split(",")[0], 99)))
    clean = [
        pl.lit(None, pl.Utf8).alias("_rule"),
        pl.lit(None, pl.Utf8).alias("_column"),
        pl.lit(None, pl.Utf8).alias("_detail"),
    ]
    if not ranked:
        return frame.with_columns(clean)
    # Every check is evaluated once, into a flag column; the first flag set (in rule
    # order) names the rule and column, and all the flags set make up the detail.
    flags = [f"{TMP}v{i}" for i in range(len(ranked))]
    violated = [pl.col(f) for f in flags]
    bad = f"{TMP}bad"
    flagged = (
        frame.lazy()
        .with_columns(
            c.violated.fill_null(False).alias(f) for c, f in zip(ranked, flags, strict=True)
        )
        .with_columns(pl.any_horizontal(violated).alias(bad))
        .collect()
    )
    if not flagged.get_column(bad).any():  # most tables: nothing to name
        return flagged.select(pl.exclude(*flags, bad), *clean)
    rule = pl.coalesce(
        pl.when(v).then(pl.lit(c.rule)) for c, v in zip(ranked, violated, strict=True)
    )
    column = pl.coalesce(
        pl.when(v).then(pl.lit(c.column)) for c, v in zip(ranked, violated, strict=True)
    )
    detail = pl.concat_str(
        [
            pl.when(v).then(pl.lit(c.detail))
            for c, v in zip(ranked, violated, strict=True)
        ],
        separator="; ",
        ignore_nulls=True,
    )
    return flagged.select(
        pl.exclude(*flags, bad),
        rule.alias("_rule"),
        column.alias("_column"),
        pl.when(bad).then(detail).alias("_detail"),
    )


def split(frame: pl.DataFrame, table: Table) -> Checked:
    """Rows without a violation land; the others become quarantine records.

    The offending value is kept only where the column is not an identifier (§5), so a
    quarantined birth date or medical record number never reaches the warehouse.
    """
    identifiers = {c.name for c in table.columns if c.identifier}
    value_columns = [c.name for c in table.columns if c.name not in identifiers]
    value = pl.lit(None, pl.Utf8)
    for name in value_columns:
        shown = raw(name)
        if f"{FORMULA}{name}" in frame.columns:  # the formula of a cell without a value
            shown = pl.coalesce(shown, pl.col(f"{FORMULA}{name}"))
        value = pl.when(pl.col("_column") == name).then(shown).otherwise(value)
    bad = frame.filter(pl.col("_rule").is_not_null()).select(
        pl.col(SOURCE_ROW).alias("source_row"),
        pl.col("_column").alias("column_name"),
        pl.col("_rule").alias("rule"),
        value.alias("value"),
        pl.col("_detail").alias("detail"),
    )
    good = frame.filter(pl.col("_rule").is_null()).drop(
        cs.starts_with(RAW, TMP, FORMULA), "_rule", "_column", "_detail"
    )
    return Checked(landed=good, quarantined=bad)


def _duplicate_after_first(key: list[str], candidates: pl.Expr) -> pl.Expr:
    """Second and later copies of a key among candidate rows, in file order (§5)."""
    rank = pl.when(candidates).then(pl.int_range(pl.len()).over([*key, candidates]))
    return candidates & (rank > 0)


def check_delivery(tables: dict[str, RawTable], delivery_date: date,
                   contract: LandingContract | None = None) -> dict[str, Checked]:
    """Apply every row rule of the contract in force to a delivery's five tables."""
    contract = contract or landing_contract()
    spec = contract.tables
    typed: dict[str, pl.DataFrame] = {}
    checks: dict[str, list[Check]] = {}
    for name, raw_table in tables.items():
        typed[name], checks[name] = type_table(raw_table, delivery_date, contract)

    def first_violation_of(frame: pl.DataFrame, name: str, found: list[Check]) -> pl.DataFrame:
        return first_violation(frame, spec[name], found, contract.rule_order)

    # Patients: every copy of a duplicated id is quarantined (the right one is unknowable).
    patients = typed["patients"]
    dup_id = pl.col("patient_id").is_not_null() & (pl.len().over("patient_id") > 1)
    patient_checks = checks["patients"] + [Check("duplicate_key", "patient_id", dup_id)]
    patients = first_violation_of(patients, "patients", patient_checks)
    all_ids = patients.get_column("patient_id").drop_nulls()
    good_ids = patients.filter(pl.col("_rule").is_null()).get_column("patient_id")
    results = {"patients": split(patients, spec["patients"])}

    def reference_checks() -> list[Check]:
        pid = pl.col("patient_id")
        return [
            Check(
                "unknown_patient", "patient_id", pid.is_not_null() & ~pid.is_in(all_ids.implode())
            ),
            Check(
                "quarantined_patient",
                "patient_id",
                pid.is_in(all_ids.implode()) & ~pid.is_in(good_ids.implode()),
            ),
        ]

    def field_ok(name: str) -> pl.DataFrame:
        """The table with a column saying which rows pass its field checks."""
        ok = ~pl.any_horizontal([c.violated.fill_null(False) for c in checks[name]])
        return typed[name].with_columns(ok.alias(f"{TMP}field_ok"))

    # Cycles: duplicates are judged among rows whose own fields are valid, so a broken
    # first copy does not take a good second copy down with it.
    cycle_key = ["patient_id", "cycle_number"]
    cycles = first_violation_of(
        field_ok("ivig_cycles"),
        "ivig_cycles",
        checks["ivig_cycles"]
        + [
            Check(
                "duplicate_key",
                ",".join(cycle_key),
                _duplicate_after_first(cycle_key, tmp("field_ok")),
            )
        ]
        + reference_checks(),
    )
    results["ivig_cycles"] = split(cycles, spec["ivig_cycles"])
    first_cycle = (
        results["ivig_cycles"]
        .landed.group_by("patient_id")
        .agg(pl.col("start_date").min().alias("_first_cycle"))
    )

    treatments = first_violation_of(
        typed["treatments"],
        "treatments",
        checks["treatments"]
        + reference_checks()
        + [Check("end_before_start", "end_date", pl.col("end_date") < pl.col("start_date"))],
    )
    results["treatments"] = split(treatments, spec["treatments"])

    assessment_key = ["patient_id", "measure", "assessment_date"]
    assessments = first_violation_of(
        field_ok("assessments"),
        "assessments",
        checks["assessments"]
        + [
            Check(
                "duplicate_key",
                ",".join(assessment_key),
                _duplicate_after_first(assessment_key, tmp("field_ok")),
            )
        ]
        + reference_checks(),
    )
    results["assessments"] = split(assessments, spec["assessments"])

    events = typed["adverse_events"].join(first_cycle, on="patient_id", how="left")
    events = first_violation_of(
        events,
        "adverse_events",
        checks["adverse_events"]
        + reference_checks()
        + [
            Check(
                "onset_before_first_cycle",
                "onset_date",
                pl.col("onset_date") < pl.col("_first_cycle"),
            ),
            Check(
                "no_landed_cycle",
                "patient_id",
                pl.col("patient_id").is_in(good_ids.implode()) & pl.col("_first_cycle").is_null(),
            ),
        ],
    )
    checked_events = split(events, spec["adverse_events"])
    checked_events.landed = checked_events.landed.drop("_first_cycle")
    results["adverse_events"] = checked_events

    # Age at index needs the first landed cycle; the birth date itself stops here (§6).
    patients_landed = results["patients"].landed.join(first_cycle, on="patient_id", how="left")
    days = (pl.col("_first_cycle") - pl.col("birth_date")).dt.total_days()
    age = (days / contract.age_days_per_year).round(contract.age_decimals)
    results["patients"].landed = patients_landed.with_columns(age.alias("age_at_index")).drop(
        "birth_date", "_first_cycle"
    )
    return results
