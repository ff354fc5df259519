"""Injected bad rows: one scenario per kind of error landing must quarantine (protocol §5).

Every bad row is an *extra* row, so the clean cohort (and its figures) is untouched.  Each
scenario builds typed canonical rows (rendered in the site's format like any other row) plus
``raw`` overrides: text written verbatim into a cell instead of the rendered value ("13/25/2020",
"5+", "n/d").  Each row names the rule landing should record: the first one it breaks, by the
order of ``ivig_platform.landing.contract.RULE_ORDER``.  One scenario adds a *valid*
patient (whose cycles are all bad); that row is clean and is marked so.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ivig_platform.demo import identity
from ivig_platform.demo.sites import Site
from ivig_platform.demo.wording import Wording

Row = dict[str, Any]


@dataclass
class SiteContext:
    """What a scenario may use at one site: its accepted delivery, a few of its clean patients
    (dicts with patient_id, index_date, last_cycle_date, n_cycles, sex), how many clean rows
    each table has, one clean cycle and one clean assessment to duplicate, and spare ids."""

    site: Site
    delivery_id: str
    delivery_date: dt.date
    patients: list[Row]
    n_rows: dict[str, int]
    first_cycle: Row
    some_assessment: Row | None
    spare_ids: Iterator[str]
    rng: np.random.Generator
    words: Wording
    rows: list[Row] = field(default_factory=list)
    _counter: int = 0
    _used_days: set[tuple[str, dt.date]] = field(default_factory=set)

    # -- helpers -------------------------------------------------------------------------

    @property
    def spanish(self) -> bool:
        return self.site.fmt.language == "es"

    def tidy(self, column: str, position: int) -> str:
        """How this site writes the code at `position` of `column`'s vocabulary (tidy form),
        the words of the invalid values below: a valid word of another field, or a valid
        word with an invalid one beside it, never a copy of a protocol spelling."""
        key = (self.site.fmt.language, column)
        forms = self.words.category_forms.get(key) or self.words.list_forms[key]
        return list(forms.values())[position][0]

    def num(self, text: str) -> str:
        """A number as this site writes it ("2.5" -> "2,5" where the delimiter is ';')."""
        return text.replace(".", ",") if self.site.fmt.decimal_comma else text

    def bad_date(self, iso: str) -> str:
        """An impossible date written in this site's date style (ISO for xlsx)."""
        y, m, d = iso.split("-")
        return {"dmy_slash": f"{d}/{m}/{y}", "dmy_dash": f"{d}-{m}-{y}"}.get(
            self.site.fmt.dates, iso
        )

    def next(self) -> int:
        """A per-site counter: keeps fault dates and cycle numbers apart from each other."""
        self._counter += 1
        return self._counter

    def pick(self) -> Row:
        """A clean patient of the site (rotating, so scenarios spread over patients)."""
        return self.patients[self.next() % len(self.patients)]

    def anchor(self, table: str) -> float:
        """A random position among the site's clean rows of ``table`` (between two rows)."""
        return float(math.floor(self.rng.random() * (self.n_rows.get(table, 0) + 1))) - 0.5

    def add(
        self,
        table: str,
        rule: str | None,
        *,
        raw: dict[str, str] | None = None,
        anchor: float | None = None,
        clean: bool = False,
        malformed: str | None = None,
        **values: Any,
    ) -> Row:
        row: Row = {
            "table": table,
            "site_id": self.site.site_id,
            "delivery_id": self.delivery_id,
            "_rule": rule,
            "_clean": clean,
            "_malformed": malformed,
            "_anchor": self.anchor(table) if anchor is None else anchor,
            "_raw": raw or {},
            **values,
        }
        self.rows.append(row)
        return row

    def new_patient(self, rule: str | None, *, clean: bool = False, **kw: Any) -> Row:
        """A patient row with valid values (unless ``kw``/``raw`` say otherwise) and a new id."""
        sex = "F" if self.rng.random() < 0.8 else "M"
        person = identity.person_columns(np.array([sex]), self.rng).row(0, named=True)
        values: Row = {
            "patient_id": next(self.spare_ids),
            "sex": sex,
            "birth_date": dt.date(1950, 1, 1) + dt.timedelta(days=int(self.rng.integers(0, 12000))),
            "ssc_subtype": "diffuse" if self.rng.random() < 0.6 else "limited",
            "overlap": [],
            "indication": ["myositis"],
            "ivig_stop_reason": None,
            **person,
        }
        values.update(kw)
        return self.add("patients", rule, clean=clean, **values)

    def cycle(
        self, pid: str, rule: str | None, number: int, start: dt.date | None, **kw: Any
    ) -> Row:
        values = {"dose_g": 130.0, "weight_kg": 65.0, **kw}
        return self.add(
            "ivig_cycles", rule, patient_id=pid, cycle_number=number, start_date=start, **values
        )

    def assessment(
        self,
        pid: str,
        rule: str | None,
        when: dt.date | None,
        measure: str,
        value: float | None,
        grade: str | None = None,
        **kw: Any,
    ) -> Row:
        return self.add(
            "assessments",
            rule,
            patient_id=pid,
            assessment_date=when,
            measure=measure,
            value=value,
            grade=grade,
            **kw,
        )

    def ae(self, pid: str, rule: str | None, onset: dt.date, **kw: Any) -> Row:
        values = {
            "term": "cefalea" if self.spanish else "headache",
            "severity": "mild",
            "serious": False,
            "related": "unknown",
            "action": "none",
            **kw,
        }
        return self.add("adverse_events", rule, patient_id=pid, onset_date=onset, **values)

    def treatment(
        self, pid: str, rule: str | None, start: dt.date | None, end: dt.date | None, **kw: Any
    ) -> Row:
        drug = kw.pop("drug", "prednisona" if self.spanish else "prednisone")
        return self.add(
            "treatments",
            rule,
            patient_id=pid,
            drug=drug,
            drug_class="corticosteroid",
            start_date=start,
            end_date=end,
            **kw,
        )

    def fresh_day(self, p: Row) -> dt.date:
        """A day 3..13 after the index date not yet taken by another fault row of the patient.

        No clean assessment falls there (baseline visits are on or before the index date,
        mid-treatment ones from day 14), so a fault never shares a key with a clean row."""
        start = self.next()
        for k in range(11):
            day = p["index_date"] + dt.timedelta(days=3 + (start + k) % 11)
            if (p["patient_id"], day) not in self._used_days:
                self._used_days.add((p["patient_id"], day))
                return day
        raise RuntimeError("no free day left for a fault assessment")

    def new_cycle_number(self, p: Row) -> int:
        """A cycle number past the patient's last: never a duplicate key by accident."""
        return int(p["n_cycles"]) + self.next()


# -- scenarios ---------------------------------------------------------------------------
# Each takes the site context and appends its rows.  Names say table and rule.


def _ref_date(ctx: SiteContext) -> dt.date:
    return dt.date(2019, 3, 1) + dt.timedelta(days=int(ctx.rng.integers(0, 900)))


def patients_malformed_row(ctx: SiteContext) -> None:
    ctx.new_patient("malformed_row", malformed="extra")


def patients_required_birth_date(ctx: SiteContext) -> None:
    p = ctx.new_patient("required", birth_date=None)
    ctx.cycle(p["patient_id"], "quarantined_patient", 1, _ref_date(ctx))


def patients_invalid_birth_date(ctx: SiteContext) -> None:
    p = ctx.new_patient("invalid_date", raw={"birth_date": ctx.bad_date("1961-02-31")})
    ctx.assessment(p["patient_id"], "quarantined_patient", _ref_date(ctx), "mrss", 12.0)


def patients_birth_before_1900(ctx: SiteContext) -> None:
    """Quarantined for a date before 1900 (xlsx: typed as text, Excel has no such date cell);
    its cycles, assessment and treatment follow it into quarantine."""
    raw = {"birth_date": "1899-07-14"} if ctx.site.fmt.container == "xlsx" else {}
    p = ctx.new_patient("date_out_of_range", birth_date=dt.date(1899, 7, 14), raw=raw)
    pid, start = p["patient_id"], _ref_date(ctx)
    ctx.cycle(pid, "quarantined_patient", 1, start)
    ctx.cycle(pid, "quarantined_patient", 2, start + dt.timedelta(days=30))
    ctx.assessment(pid, "quarantined_patient", start - dt.timedelta(days=10), "mrss", 20.0)
    ctx.treatment(pid, "quarantined_patient", start - dt.timedelta(days=100), None)


def patients_invalid_category(ctx: SiteContext) -> None:
    p = ctx.new_patient(
        "invalid_category", raw={"sex": ctx.tidy("related", -1) if ctx.spanish else "X"}
    )
    ctx.ae(p["patient_id"], "quarantined_patient", _ref_date(ctx))


def patients_required_indication(ctx: SiteContext) -> None:
    ctx.new_patient("required", indication=[], raw={"indication": ""})


def patients_invalid_indication(ctx: SiteContext) -> None:
    ctx.new_patient(
        "invalid_category",
        raw={"indication": ctx.tidy("indication", 0) + ("|pulmonar" if ctx.spanish else "|lung")},
    )


def patients_duplicate_id(ctx: SiteContext) -> None:
    """Two patients under one record number: both copies and all their rows are quarantined."""
    p = ctx.new_patient("duplicate_key")
    q = ctx.new_patient("duplicate_key", patient_id=p["patient_id"], sex=p["sex"])
    q["birth_date"] = p["birth_date"] + dt.timedelta(days=400)
    pid, start = p["patient_id"], _ref_date(ctx)
    ctx.cycle(pid, "quarantined_patient", 1, start)
    ctx.cycle(pid, "quarantined_patient", 2, start + dt.timedelta(days=28))
    ctx.assessment(pid, "quarantined_patient", start, "mrss", 18.0)
    ctx.ae(pid, "quarantined_patient", start + dt.timedelta(days=2))


def cycles_invalid_date_month_first(ctx: SiteContext) -> None:
    p = ctx.pick()
    ctx.cycle(
        p["patient_id"],
        "invalid_date",
        ctx.new_cycle_number(p),
        None,
        raw={"start_date": "12/25/2020"},
    )


def cycles_unparseable_date(ctx: SiteContext) -> None:
    p = ctx.pick()
    ctx.cycle(
        p["patient_id"],
        "invalid_date",
        ctx.new_cycle_number(p),
        None,
        raw={"start_date": "pendiente" if ctx.spanish else "unknown"},
    )


def cycles_after_delivery(ctx: SiteContext) -> None:
    p = ctx.pick()
    ctx.cycle(
        p["patient_id"],
        "date_out_of_range",
        ctx.new_cycle_number(p),
        ctx.delivery_date + dt.timedelta(days=25),
    )


def cycles_invalid_number(ctx: SiteContext) -> None:
    p = ctx.pick()
    ctx.cycle(
        p["patient_id"],
        "invalid_number",
        ctx.new_cycle_number(p),
        p["last_cycle_date"],
        raw={"dose_g": "dos" if ctx.spanish else "two"},
    )


def cycles_not_integer(ctx: SiteContext) -> None:
    p = ctx.pick()
    ctx.cycle(
        p["patient_id"],
        "not_integer",
        0,
        p["last_cycle_date"] + dt.timedelta(days=3),
        raw={"cycle_number": ctx.num("2.5")},
    )


def cycles_out_of_range(ctx: SiteContext) -> None:
    p = ctx.pick()
    day = p["last_cycle_date"] + dt.timedelta(days=5)
    ctx.cycle(p["patient_id"], "out_of_range", ctx.new_cycle_number(p), day, dose_g=450.0)
    ctx.cycle(p["patient_id"], "out_of_range", ctx.new_cycle_number(p), day, weight_kg=300.0)


def cycles_duplicate_key(ctx: SiteContext) -> None:
    """A second copy of an existing (patient, cycle_number), later in the file."""
    c = ctx.first_cycle
    ctx.cycle(
        c["patient_id"],
        "duplicate_key",
        c["cycle_number"],
        c["start_date"] + dt.timedelta(days=2),
        anchor=c["_pos"] + 0.25,
    )


def cycles_unknown_patient(ctx: SiteContext) -> None:
    ctx.cycle(next(ctx.spare_ids), "unknown_patient", 1, _ref_date(ctx))


def cycles_required_start(ctx: SiteContext) -> None:
    p = ctx.pick()
    ctx.cycle(p["patient_id"], "required", ctx.new_cycle_number(p), None)


def cycles_malformed_row(ctx: SiteContext) -> None:
    p = ctx.pick()
    ctx.cycle(
        p["patient_id"],
        "malformed_row",
        ctx.new_cycle_number(p),
        p["last_cycle_date"],
        malformed="short",
    )


def cycles_invalid_date_and_dose(ctx: SiteContext) -> None:
    """Breaks two rules; the first in rule order (invalid_date) is the one recorded."""
    p = ctx.pick()
    ctx.cycle(
        p["patient_id"],
        "invalid_date",
        ctx.new_cycle_number(p),
        None,
        dose_g=999.0,
        raw={"start_date": ctx.bad_date("2021-02-30")},
    )


def treatments_end_before_start(ctx: SiteContext) -> None:
    p = ctx.pick()
    ctx.treatment(
        p["patient_id"],
        "end_before_start",
        p["index_date"] + dt.timedelta(days=10),
        p["index_date"] - dt.timedelta(days=20),
    )


def treatments_invalid_date(ctx: SiteContext) -> None:
    p = ctx.pick()
    ctx.treatment(
        p["patient_id"],
        "invalid_date",
        p["index_date"],
        None,
        raw={"end_date": ctx.bad_date("2021-09-31")},
    )


def treatments_unknown_patient(ctx: SiteContext) -> None:
    ctx.treatment(next(ctx.spare_ids), "unknown_patient", _ref_date(ctx), None, drug="CellCept")


def assessments_invalid_mrc_grade(ctx: SiteContext) -> None:
    p = ctx.pick()
    for grade in ("5+", "0-", "6"):
        ctx.assessment(
            p["patient_id"],
            "invalid_mrc_grade",
            ctx.fresh_day(p),
            "mrc",
            None,
            raw={"value": grade},
        )


def assessments_ck_unknown_unit(ctx: SiteContext) -> None:
    p = ctx.pick()
    ctx.assessment(
        p["patient_id"], "invalid_unit", ctx.fresh_day(p), "ck", 900.0, raw={"unit": "mg/dL"}
    )


def assessments_ck_missing_unit(ctx: SiteContext) -> None:
    """§3: the unit is required for CK (and only for CK), so an empty one is ``required``;
    an unknown one (``assessments_ck_unknown_unit``) is ``invalid_unit``."""
    p = ctx.pick()
    ctx.assessment(p["patient_id"], "required", ctx.fresh_day(p), "ck", 900.0, raw={"unit": ""})


def assessments_out_of_range(ctx: SiteContext) -> None:
    p = ctx.pick()
    pid = p["patient_id"]
    ctx.assessment(pid, "out_of_range", ctx.fresh_day(p), "mrss", 55.0)
    ctx.assessment(pid, "out_of_range", ctx.fresh_day(p), "ucla_git", 3.1)
    ctx.assessment(pid, "out_of_range", ctx.fresh_day(p), "ck", 250_000.0)
    ctx.assessment(pid, "out_of_range", ctx.fresh_day(p), "ck", 0.0)


def assessments_not_integer(ctx: SiteContext) -> None:
    p = ctx.pick()
    ctx.assessment(
        p["patient_id"],
        "not_integer",
        ctx.fresh_day(p),
        "mrss",
        None,
        raw={"value": ctx.num("12.5")},
    )


def assessments_invalid_number(ctx: SiteContext) -> None:
    p = ctx.pick()
    ctx.assessment(
        p["patient_id"], "invalid_number", ctx.fresh_day(p), "ck", None, raw={"value": "n/d"}
    )
    ctx.assessment(
        p["patient_id"],
        "invalid_number",
        ctx.fresh_day(p),
        "ucla_git",
        None,
        raw={"value": "alto" if ctx.spanish else "high"},
    )


def assessments_duplicate_key(ctx: SiteContext) -> None:
    """A second copy of an existing (patient, measure, date) with another value, later on."""
    a = ctx.some_assessment
    if a is None:
        return
    value = a["value"] + 1 if a["measure"] != "mrc" else a["value"]
    ctx.assessment(
        a["patient_id"],
        "duplicate_key",
        a["assessment_date"],
        a["measure"],
        value,
        grade=a["grade"],
        anchor=a["_pos"] + 0.25,
    )


def assessments_after_delivery(ctx: SiteContext) -> None:
    p = ctx.pick()
    ctx.assessment(
        p["patient_id"],
        "date_out_of_range",
        ctx.delivery_date + dt.timedelta(days=40),
        "mrss",
        10.0,
    )


def assessments_required_date(ctx: SiteContext) -> None:
    p = ctx.pick()
    ctx.assessment(p["patient_id"], "required", None, "mrss", 14.0)


def assessments_invalid_measure_unknown_patient(ctx: SiteContext) -> None:
    """An unknown patient *and* an unknown measure: invalid_category comes first."""
    ctx.assessment(
        next(ctx.spare_ids),
        "invalid_category",
        _ref_date(ctx),
        "mrss",
        50.0,
        raw={"measure": "dlco"},
    )


def assessments_malformed_row(ctx: SiteContext) -> None:
    p = ctx.pick()
    ctx.assessment(
        p["patient_id"], "malformed_row", ctx.fresh_day(p), "mrss", 16.0, malformed="extra"
    )


def ae_before_first_cycle(ctx: SiteContext) -> None:
    p = ctx.pick()
    ctx.ae(p["patient_id"], "onset_before_first_cycle", p["index_date"] - dt.timedelta(days=15))


def ae_no_landed_cycle(ctx: SiteContext) -> None:
    """A valid patient (lands, leaves every analysis) whose cycles are all bad, with an event."""
    p = ctx.new_patient(None, clean=True)
    pid, start = p["patient_id"], _ref_date(ctx)
    ctx.cycle(pid, "invalid_number", 1, start, raw={"dose_g": "?"})
    ctx.cycle(pid, "invalid_date", 2, None, raw={"start_date": ctx.bad_date("2022-04-31")})
    ctx.ae(pid, "no_landed_cycle", start + dt.timedelta(days=3))


def ae_required_term(ctx: SiteContext) -> None:
    p = ctx.pick()
    ctx.ae(p["patient_id"], "required", p["index_date"] + dt.timedelta(days=20), term=None)


def ae_invalid_category(ctx: SiteContext) -> None:
    p = ctx.pick()
    ctx.ae(
        p["patient_id"],
        "invalid_category",
        p["index_date"] + dt.timedelta(days=2),
        raw={"severity": f"muy {ctx.tidy('severity', -1)}" if ctx.spanish else "extreme"},
    )


def ae_unknown_patient(ctx: SiteContext) -> None:
    ctx.ae(next(ctx.spare_ids), "unknown_patient", _ref_date(ctx))


@dataclass(frozen=True)
class Kind:
    """A fault scenario.  ``once``: dealt to one site only (the no-landed-cycle patient lands
    but leaves every analysis, so one is enough and keeps landed.patients at n + 1)."""

    name: str
    build: Callable[[SiteContext], None]
    csv_only: bool = False
    once: bool = False


# The catalogue, in the order sites receive them (spread so each site gets a mix of tables).
KINDS: tuple[Kind, ...] = (
    Kind("patients_malformed_row", patients_malformed_row, csv_only=True),
    Kind("cycles_invalid_date_month_first", cycles_invalid_date_month_first),
    Kind("assessments_invalid_mrc_grade", assessments_invalid_mrc_grade),
    Kind("patients_duplicate_id", patients_duplicate_id),
    Kind("ae_before_first_cycle", ae_before_first_cycle),
    Kind("treatments_end_before_start", treatments_end_before_start),
    Kind("assessments_ck_unknown_unit", assessments_ck_unknown_unit),
    Kind("patients_birth_before_1900", patients_birth_before_1900),
    Kind("cycles_not_integer", cycles_not_integer),
    Kind("assessments_out_of_range", assessments_out_of_range),
    Kind("ae_no_landed_cycle", ae_no_landed_cycle, once=True),
    Kind("cycles_duplicate_key", cycles_duplicate_key),
    Kind("assessments_duplicate_key", assessments_duplicate_key),
    Kind("patients_required_birth_date", patients_required_birth_date),
    Kind("cycles_unknown_patient", cycles_unknown_patient),
    Kind("assessments_after_delivery", assessments_after_delivery),
    Kind("patients_invalid_category", patients_invalid_category),
    Kind("cycles_out_of_range", cycles_out_of_range),
    Kind("assessments_not_integer", assessments_not_integer),
    Kind("ae_required_term", ae_required_term),
    Kind("treatments_invalid_date", treatments_invalid_date),
    Kind("patients_invalid_birth_date", patients_invalid_birth_date),
    Kind("cycles_invalid_number", cycles_invalid_number),
    Kind("assessments_invalid_number", assessments_invalid_number),
    Kind("ae_invalid_category", ae_invalid_category),
    Kind(
        "assessments_invalid_measure_unknown_patient", assessments_invalid_measure_unknown_patient
    ),
    Kind("cycles_malformed_row", cycles_malformed_row, csv_only=True),
    Kind("assessments_ck_missing_unit", assessments_ck_missing_unit),
    Kind("patients_required_indication", patients_required_indication),
    Kind("cycles_after_delivery", cycles_after_delivery),
    Kind("treatments_unknown_patient", treatments_unknown_patient),
    Kind("ae_unknown_patient", ae_unknown_patient),
    Kind("assessments_required_date", assessments_required_date),
    Kind("cycles_required_start", cycles_required_start),
    Kind("patients_invalid_indication", patients_invalid_indication),
    Kind("assessments_malformed_row", assessments_malformed_row, csv_only=True),
    Kind("cycles_invalid_date_and_dose", cycles_invalid_date_and_dose),
    Kind("cycles_unparseable_date", cycles_unparseable_date),
)


def assign_kinds(sites: list[Site], per_site: int = 3) -> dict[int, list[Kind]]:
    """Deal the catalogue round-robin over the sites, about ``per_site`` kinds each and every
    kind at least once; CSV-only kinds skip XLSX sites, ``once`` kinds are dealt once."""
    n = len(sites)
    per_site = max(per_site, -(-len(KINDS) // n))
    out: dict[int, list[Kind]] = {s.index: [] for s in sites}
    ptr = 0
    dealt: set[str] = set()
    for slot in range(n * per_site):
        kind = KINDS[slot % len(KINDS)]
        if kind.once and kind.name in dealt:
            continue
        dealt.add(kind.name)
        for step in range(n):
            s = sites[(ptr + step) % n]
            if (not kind.csv_only or s.fmt.container == "csv") and kind not in out[s.index]:
                out[s.index].append(kind)
                ptr = (ptr + step + 1) % n
                break
    return out
