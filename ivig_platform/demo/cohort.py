"""The clean demo cohort, in canonical form, built with numpy/Polars vectors (no row loops).

What a perfect landing would hold: real patient ids, canonical categories, CK in U/L, dates as
dates.  Proportions come from ``shape`` (protocol §1) by exact apportioning; the efficacy values
of paired patients are calibrated so the §7 paired means hit the published ones.  Free text
(drug names, AE terms) is generated in the language of the writing site, because the clean
cohort holds it as written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from ivig_platform.demo import calibrate, identity, shape, vocab
from ivig_platform.demo.sites import WARN_MEASURE, WARN_MIN_PATIENTS, WARN_TIMEPOINT, Site
from ivig_platform.protocol.load import Protocol
from ivig_platform.protocol.plan import Windows

FIRST_INDEX = np.datetime64("2012-01-01")
LAST_INDEX = np.datetime64("2023-06-30")  # keeps every clinical date before mid-2026
SPARE_IDS_PER_SITE = 24
UCLA_SCALE = 100  # UCLA GIT values are drawn in hundredths (written with 2 decimals)
#: Days between a window and the visits placed outside it (``old``), or in its last days
#: (``p_far``): a month.
VISIT_GAP_DAYS = 30
CK_MAX = 59_000  # U/L; below 1,000 µkat/L, so no µkat/L value needs a thousands separator


@dataclass(frozen=True)
class Rules:
    """What the cohort takes from the protocol: the primary plan's §7 windows (the visits
    are placed around them), the days of a year of age, and the valid range of the measures
    whose values are drawn in whole written units (mRSS in points, UCLA GIT in hundredths)."""

    windows: Windows
    days_per_year: float
    limits: dict[str, tuple[int, int]]


def rules(protocol: Protocol) -> Rules:
    c = protocol.contract

    def limits(name: str, scale: int) -> tuple[int, int]:
        r = c.measure(name).valid_range
        return round(r.low * scale), round(r.maximum * scale)

    return Rules(
        windows=protocol.primary_plan.windows,
        days_per_year=c.derived.age_at_index.days_per_year,
        limits={"mrss": limits("mrss", 1), "ucla_git": limits("ucla_git", UCLA_SCALE)},
    )


@dataclass(frozen=True)
class Cohort:
    """Canonical tables of the clean cohort, one row per patient/cycle/treatment/...

    Every table carries ``site_id``, ``patient_id`` and ``_pidx`` (the patient's position in
    ``patients``), and ``_uid`` (unique within the table).  ``patients`` also carries the
    helpers ``index_date``, ``last_cycle_date``, ``n_cycles`` and the identifier fields.
    ``spare_ids`` are unused record numbers per site, for the fault scenarios.
    ``warn_site``: position of the sparse site, or None when no candidate has enough patients
    followed for ``WARN_MEASURE`` for the gate to judge it (tiny demos).
    """

    patients: pl.DataFrame
    ivig_cycles: pl.DataFrame
    treatments: pl.DataFrame
    assessments: pl.DataFrame
    adverse_events: pl.DataFrame
    spare_ids: dict[str, list[str]]
    warn_site: int | None = None

    def table(self, name: str) -> pl.DataFrame:
        return getattr(self, name)


def site_sizes(n_patients: int, n_sites: int, rng: np.random.Generator) -> np.ndarray:
    """Patients per site: uneven like real centres, at least 2 each, summing to ``n_patients``."""
    if n_patients < 2 * n_sites:
        raise ValueError("the demo needs at least 2 patients per site")
    weights = rng.gamma(2.0, 1.0, n_sites)
    extra = shape.apportion(n_patients - 2 * n_sites, dict(enumerate(weights)))
    return np.array([2 + extra[k] for k in range(n_sites)], dtype=np.int64)


def _exact(n: int, weights: dict, rng: np.random.Generator) -> np.ndarray:
    """Codes 0..len(weights)-1 with apportioned counts, in random order."""
    counts = shape.apportion(n, weights)
    codes = np.repeat(np.arange(len(weights)), [counts[k] for k in weights])
    return rng.permutation(codes)


def _subset(pool: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """A random k-subset of the index array ``pool`` (sorted)."""
    return np.sort(rng.choice(pool, size=min(k, pool.size), replace=False))


def _days(n: np.ndarray) -> np.ndarray:
    return n.astype("timedelta64[D]")


def build_cohort(
    sites: Sequence[Site],
    sizes: np.ndarray,
    rng: np.random.Generator,
    *,
    warn_candidates: Sequence[int] = (),
    rules: Rules,
) -> Cohort:
    """Generate the clean cohort for ``sites`` with ``sizes[k]`` patients at site k.

    ``warn_candidates``: positions that may become the sparse site, where most patients
    followed for ``WARN_MEASURE`` lack its ``WARN_TIMEPOINT`` value (``_make_sparse``): the
    first with at least WARN_MIN_PATIENTS followed (``Cohort.warn_site``; None if none)."""
    n = int(sizes.sum())
    site_idx = np.repeat(np.arange(len(sites)), sizes)
    site_ids = np.array([s.site_id for s in sites])[site_idx]
    lang = np.array([s.fmt.language for s in sites])[site_idx]

    # Record numbers, unique within each site, plus spares for the fault scenarios.
    ids: list[str] = []
    spare: dict[str, list[str]] = {}
    for s, size in zip(sites, sizes.tolist(), strict=True):
        drawn = identity.patient_ids(s.fmt.id_style, size + SPARE_IDS_PER_SITE, rng)
        ids.extend(drawn[:size])
        spare[s.site_id] = drawn[size:]

    # Characteristics with exact published proportions.
    sex = np.array(list(shape.SEX))[_exact(n, shape.SEX, rng)]
    subtype = np.array(list(shape.SUBTYPE))[_exact(n, shape.SUBTYPE, rng)]
    ind_keys = list(shape.INDICATION)
    ind_code = _exact(n, shape.INDICATION, rng)
    has = {
        k: _has(ind_code, ind_keys, k) for k in ("myositis", "gastrointestinal", "skin", "other")
    }
    ov_keys = list(shape.OVERLAP)
    ov_code = _overlap(n, has["myositis"], rng)
    iim = _has(ov_code, ov_keys, "iim")
    stop_keys = list(shape.STOP_REASON)
    stop = np.array(stop_keys, dtype=object)[_exact(n, shape.STOP_REASON, rng)]

    sched = _schedule(n, rng)
    birth = _birth_dates(sched.index, rng, rules.days_per_year)
    weight, dose = _weights_and_doses(sched, rng)

    people = identity.person_columns(sex, rng)
    patients = pl.DataFrame(
        {
            "site_id": site_ids,
            "patient_id": ids,
            "sex": sex,
            "birth_date": birth,
            "ssc_subtype": subtype,
            "_ov": ov_code,
            "_ind": ind_code,
            "ivig_stop_reason": pl.Series(stop.tolist(), dtype=pl.String),
            "index_date": sched.index,
            "last_cycle_date": sched.last,
            "n_cycles": sched.n_cycles,
            "_lang": lang,
        },
    ).with_columns(pl.int_range(pl.len()).alias("_pidx"))
    patients = (
        patients.join(_lists("overlap", ov_keys), on="_ov", how="left", maintain_order="left")
        .join(_lists("indication", ind_keys), on="_ind", how="left", maintain_order="left")
        .drop("_ov", "_ind")
        .select(*_PATIENT_ORDER, pl.exclude(_PATIENT_ORDER))
    )
    patients = patients.hstack(people)
    patients = patients.with_columns(
        pl.col("birth_date", "index_date", "last_cycle_date").cast(pl.Date),
        pl.col("n_cycles").cast(pl.Int32),
    )

    cycles = pl.DataFrame(
        {
            "_pidx": sched.patient,
            "cycle_number": (sched.k + 1).astype(np.int32),
            "start_date": sched.start,
            "dose_g": dose[sched.patient],
            "weight_kg": weight,
        }
    ).with_columns(pl.col("start_date").cast(pl.Date), pl.col("weight_kg").fill_nan(None))

    ctx = _Ctx(
        rng,
        n,
        sched.index,
        sched.last,
        lang,
        subtype,
        has,
        iim,
        stop,
        sched.n_cycles,
        sched.start,
        sched.first_row,
        site_idx,
        tuple(warn_candidates),
        rules,
    )
    treatments = _treatments(ctx)
    assessments, sparse = _assessments(ctx)
    adverse = _adverse_events(ctx)

    keys = patients.select("_pidx", "site_id", "patient_id")

    def finish(df: pl.DataFrame, order: list[str]) -> pl.DataFrame:
        df = df.sort(["_pidx", *order], nulls_last=True, maintain_order=True)
        df = df.join(keys, on="_pidx", how="left", maintain_order="left")
        return df.with_columns(pl.int_range(pl.len()).alias("_uid"))

    return Cohort(
        patients=patients.with_columns(pl.col("_pidx").alias("_uid")),
        ivig_cycles=finish(cycles, ["cycle_number"]),
        treatments=finish(treatments, ["start_date"]),
        assessments=finish(assessments, ["assessment_date", "_morder"]).drop("_morder"),
        adverse_events=finish(adverse, ["onset_date"]),
        spare_ids=spare,
        warn_site=sparse,
    )


@dataclass(frozen=True)
class _Schedule:
    """IVIG cycles: per patient (n_cycles, index, last, first_row) and per cycle row
    (patient, k = 0-based cycle index, start)."""

    n_cycles: np.ndarray
    index: np.ndarray
    last: np.ndarray
    first_row: np.ndarray
    patient: np.ndarray
    k: np.ndarray
    start: np.ndarray


def _schedule(n: int, rng: np.random.Generator) -> _Schedule:
    """Cycle counts at evenly spaced quantiles of CYCLES_PMF (so the median is 5 at any size),
    index dates spread over 2012-2023, then monthly starts 27-37 days apart."""
    values = np.array(list(shape.CYCLES_PMF))
    cdf = np.cumsum(list(shape.CYCLES_PMF.values())) / sum(shape.CYCLES_PMF.values())
    n_cycles = values[np.searchsorted(cdf, (rng.permutation(n) + 0.5) / n)]
    span = int((LAST_INDEX - FIRST_INDEX).astype(int))
    index = FIRST_INDEX + _days(rng.integers(0, span + 1, n))
    patient = np.repeat(np.arange(n), n_cycles)
    first_row = np.cumsum(n_cycles) - n_cycles
    k = np.arange(patient.size) - first_row[patient]
    gap = rng.integers(27, 38, patient.size)
    gap[k == 0] = 0
    cum = np.cumsum(gap)
    start = index[patient] + _days(cum - cum[first_row][patient])
    last = start[first_row + n_cycles - 1]
    return _Schedule(n_cycles, index, last, first_row, patient, k, start)


def _birth_dates(index: np.ndarray, rng: np.random.Generator, days_per_year: float) -> np.ndarray:
    """Birth dates giving a mean age at index of 58.5: a clipped normal, shifted until its
    mean sits on target (rounding to days and to 0.1 year moves it by far less than 1%)."""
    age = np.clip(rng.normal(shape.MEAN_AGE, 12.0, index.size), 23, 84)
    for _ in range(30):
        age = np.clip(age + (shape.MEAN_AGE - age.mean()), 23, 84)
    return index - _days(np.rint(age * days_per_year).astype(np.int64))


def _weights_and_doses(sched: _Schedule, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Weight per cycle (NaN = not recorded: some patients never, some cycles) and the
    patient's dose, 2 g/kg rounded to 2.5 g."""
    n, m = sched.n_cycles.size, sched.patient.size
    base = np.round(np.clip(rng.normal(66, 12, n), 42, 115), 1)
    weight = np.round(base[sched.patient] + rng.normal(0, 0.8, m), 1)
    missing = (rng.random(n) < 0.1)[sched.patient] | (rng.random(m) < 0.08)
    return np.where(missing, np.nan, weight), np.rint(base * 2 / 2.5) * 2.5


def _has(codes: np.ndarray, keys: list[tuple[str, ...]], item: str) -> np.ndarray:
    """Mask of the patients whose combination (by code) contains ``item``."""
    return np.isin(codes, [i for i, combo in enumerate(keys) if item in combo])


def _lists(column: str, keys: list[tuple[str, ...]]) -> pl.DataFrame:
    """Lookup frame code -> list value, to attach list columns by a join."""
    code = "_ov" if column == "overlap" else "_ind"
    return pl.DataFrame(
        {code: np.arange(len(keys)), column: [list(k) for k in keys]},
        schema={code: pl.Int64, column: pl.List(pl.String)},
    )


_PATIENT_ORDER = [
    "site_id",
    "patient_id",
    "sex",
    "birth_date",
    "ssc_subtype",
    "overlap",
    "indication",
    "ivig_stop_reason",
]


def _overlap(n: int, myositis: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Overlap combination codes with exact counts; IIM goes mostly to myositis patients."""
    keys = list(shape.OVERLAP)
    counts = shape.apportion(n, shape.OVERLAP)
    iim = [i for i, c in enumerate(keys) if "iim" in c]
    rest = [i for i, c in enumerate(keys) if "iim" not in c]
    n_iim = sum(counts[keys[i]] for i in iim)
    order = np.argsort(-(myositis * 0.9 + rng.random(n)), kind="stable")
    out = np.zeros(n, dtype=np.int64)
    for group, idx in ((iim, order[:n_iim]), (rest, order[n_iim:])):
        labels = np.repeat(group, [counts[keys[i]] for i in group])
        out[idx] = rng.permutation(labels)
    return out


@dataclass(frozen=True)
class _Ctx:
    """Per-patient arrays shared by the table builders."""

    rng: np.random.Generator
    n: int
    index: np.ndarray
    last: np.ndarray
    lang: np.ndarray
    subtype: np.ndarray
    has: dict[str, np.ndarray]
    iim: np.ndarray
    stop: np.ndarray
    n_cycles: np.ndarray
    cycle_start: np.ndarray
    first_row: np.ndarray
    site_idx: np.ndarray
    warn_candidates: tuple[int, ...]
    rules: Rules


# --- treatments -------------------------------------------------------------------------

_OVERLAPPING = ("before_ongoing", "ended_during", "started_during", "no_dates", "end_only")
_OVERLAPPING_P = (0.35, 0.2, 0.25, 0.12, 0.08)
_OUTSIDE = ("ended_before", "started_after")
_PRIOR_SHARE = {"corticosteroid": 0.45, "immunosuppressant": 0.35, "biologic": 0.2}


def _treatment_dates(
    ctx: _Ctx, pidx: np.ndarray, pattern: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Start and end dates for each treatment row by its pattern relative to the IVIG period."""
    rng = ctx.rng
    m = pidx.size
    idx, last = ctx.index[pidx], ctx.last[pidx]
    span = (last - idx).astype(int)
    within = _days(np.floor(rng.random(m) * (span + 1)).astype(np.int64))
    nat = np.full(m, np.datetime64("NaT"), dtype="datetime64[D]")
    open_end = rng.random(m) < 0.5
    start, end = nat.copy(), nat.copy()

    def put(name: str, s: np.ndarray, e: np.ndarray) -> None:
        sel = pattern == name
        start[sel], end[sel] = s[sel], e[sel]

    put("before_ongoing", idx - _days(rng.integers(30, 1500, m)), nat)
    put("ended_during", idx - _days(rng.integers(30, 700, m)), idx + within)
    s = idx + within
    put("started_during", s, np.where(open_end, nat, s + _days(rng.integers(30, 600, m))))
    put("end_only", nat, last + _days(rng.integers(0, 300, m)))
    e = idx - _days(rng.integers(10, 400, m))
    put("ended_before", e - _days(rng.integers(30, 900, m)), e)
    s = last + _days(rng.integers(10, 200, m))
    put("started_after", s, np.where(open_end, nat, s + _days(rng.integers(30, 300, m))))
    return start, end


def _pick_drugs(ctx: _Ctx, pidx: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """A written drug name for each row, from its class, in the language of the patient's site."""
    names = np.empty(pidx.size, dtype=object)
    lang = ctx.lang[pidx]
    for c in np.unique(cls):
        for lg in np.unique(lang):
            sel = np.flatnonzero((cls == c) & (lang == lg))
            if sel.size == 0:
                continue
            cands = [d for d in vocab.DRUGS if d[1] == c and d[3] in (lg, "any")]
            w = np.array([d[4] for d in cands])
            pick = ctx.rng.choice(len(cands), size=sel.size, p=w / w.sum())
            names[sel] = np.array([d[0] for d in cands], dtype=object)[pick]
    return names


def _treatments(ctx: _Ctx) -> pl.DataFrame:
    rng, n = ctx.rng, ctx.n
    everyone = np.arange(n)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (pidx, class, pattern)
    for cls, count in shape.ON_CLASS.items():
        on = _subset(everyone, shape.scaled(n, count), rng)
        reps = 1 + (rng.random(on.size) < 0.15)
        p_on = np.repeat(on, reps)
        pat_on = rng.choice(_OVERLAPPING, size=p_on.size, p=_OVERLAPPING_P)
        off = np.setdiff1d(everyone, on)
        prior = off[rng.random(off.size) < _PRIOR_SHARE[cls]]
        # some of those on the class also had an earlier, finished course
        prior = np.concatenate([prior, on[rng.random(on.size) < 0.1]])
        pat_prior = rng.choice(_OUTSIDE, size=prior.size, p=(0.75, 0.25))
        # a patient off the class must never get a row that overlaps the period
        for p, pat in ((p_on, pat_on), (prior, pat_prior)):
            parts.append((p, np.full(p.size, cls, dtype=object), pat))
    other = everyone[rng.random(n) < 0.45]
    unmapped = everyone[rng.random(n) < 0.12]
    for p, cls in ((other, "other"), (unmapped, "unmapped")):
        pat = rng.choice(_OVERLAPPING + _OUTSIDE, size=p.size)
        parts.append((p, np.full(p.size, cls, dtype=object), pat))

    pidx = np.concatenate([p for p, _, _ in parts])
    cls = np.concatenate([c for _, c, _ in parts])
    pattern = np.concatenate([t for _, _, t in parts])
    start, end = _treatment_dates(ctx, pidx, pattern)
    return pl.DataFrame(
        {
            "_pidx": pidx,
            "drug": _pick_drugs(ctx, pidx, cls).tolist(),
            "drug_class": cls.tolist(),
            "start_date": start,
            "end_date": end,
        },
        schema_overrides={"drug": pl.String, "drug_class": pl.String},
    ).with_columns(pl.col("start_date", "end_date").cast(pl.Date))


# --- assessments ------------------------------------------------------------------------

_VISITS = ("old", "b_early", "b", "mid", "p_near", "tie", "p", "p_far", "late")


def _visit_dates(ctx: _Ctx) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-patient visit dates, placed so the §7 windows pick exactly the intended ones.

    Baseline window [index - before, index]: ``b`` (latest) and ``b_early`` (its earliest
    29 days); ``old`` lies before it.  Post window [last + min, last + max]: ``p`` is nearest
    to last + target; ``tie`` is as near but earlier (the later wins); ``p_near`` (the first
    21 days of the window) and ``p_far`` (its last 31) are farther; ``mid`` and ``late`` lie
    outside.  The windows are the primary plan's; ``p`` and ``tie`` stay within half the
    gap from the window's start to the target, less 5 days, so ``p_near`` is always farther.
    """
    rng, n, idx, last = ctx.rng, ctx.n, ctx.index, ctx.last
    w = ctx.rules.windows
    before, low, target, high = (
        w.baseline_days_before,
        w.post_min_days,
        w.post_target_days,
        w.post_max_days,
    )
    spread = (target - low) // 2 - 5
    gap = VISIT_GAP_DAYS
    d = rng.integers(-spread, spread + 1, n)
    span = (last - idx).astype(int)
    dates = {
        "old": idx - _days(rng.integers(before + gap, before + gap + 281, n)),
        "b_early": idx - _days(rng.integers(before - 29, before, n)),
        "b": idx - _days(rng.integers(0, before - 29, n)),
        "mid": idx + _days(14 + np.floor(rng.random(n) * (span + 15)).astype(np.int64)),
        "p_near": last + _days(rng.integers(low, low + 21, n)),
        "tie": last + _days(target - d),
        "p": last + _days(target + d),
        "p_far": last + _days(rng.integers(high - gap, high + 1, n)),
        "late": last + _days(rng.integers(high + 20, high + 221, n)),
    }
    return dates, d


def _members(ctx: _Ctx) -> dict[str, np.ndarray]:
    """Who is measured with what: mRSS everyone, UCLA GIT the GI patients and some others,
    CK the myositis/IIM patients, MRC the myositis patients."""
    extra_ucla = ctx.rng.random(ctx.n) < shape.UCLA_EXTRA_SHARE
    masks = {
        "mrss": np.ones(ctx.n, dtype=bool),
        "ucla_git": ctx.has["gastrointestinal"] | extra_ucla,
        "ck": ctx.has["myositis"] | ctx.iim,
        "mrc": ctx.has["myositis"],
    }
    return {m: np.flatnonzero(v) for m, v in masks.items()}


def _values(
    ctx: _Ctx, measure: str, who: np.ndarray, paired: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Baseline and post values (integers in the smallest written unit; MRC in thirds)."""
    rng = ctx.rng
    m = who.size
    if measure == "mrss":
        diffuse = ctx.subtype[who] == "diffuse"
        lo, hi = ctx.rules.limits[measure]
        base = np.clip(
            np.rint(np.where(diffuse, rng.normal(19, 7, m), rng.normal(9, 4, m))), lo, hi
        )
        post = np.clip(base + np.rint(rng.normal(-2, 3.5, m)), lo, hi)
        base[paired] = calibrate.to_mean(base[paired], 15.0, lo, hi, rng)
        post[paired] = calibrate.to_mean(post[paired], 13.0, lo, hi, rng)
    elif measure == "ucla_git":
        gi = ctx.has["gastrointestinal"][who]
        lo, hi = ctx.rules.limits[measure]
        base = np.clip(np.rint(np.where(gi, rng.normal(130, 45, m), rng.normal(60, 30, m))), lo, hi)
        post = np.clip(np.rint(base + rng.normal(-28, 25, m)), lo, hi)
        base[paired] = calibrate.to_mean(base[paired], 106.0, lo, hi, rng)
        post[paired] = calibrate.to_mean(post[paired], 78.0, lo, hi, rng)
    elif measure == "ck":
        base = np.clip(np.rint(rng.lognormal(np.log(750), 0.8, m)), 40, 20_000)
        post = np.clip(np.rint(base * np.exp(rng.normal(-1.55, 0.9, m))), 15, 20_000)
        base[paired] = calibrate.to_mean(base[paired], 1149.0, 40, CK_MAX, rng)
        post[paired] = calibrate.to_mean(post[paired], 217.0, 15, CK_MAX, rng)
    else:  # mrc, in thirds of a grade: 9 = "3", 8 = "3-", 13 = "4+"
        base = rng.choice(np.arange(6, 14), size=m, p=[0.06, 0.1, 0.16, 0.2, 0.18, 0.14, 0.1, 0.06])
        post = np.clip(base + rng.choice([0, 1, 2, 3, 4], size=m), 9, 15)
        pi = np.flatnonzero(paired)
        below = pi.size - int(np.floor(shape.MRC_POST_AT_LEAST_3 * pi.size + 0.5))
        weak = rng.choice(pi, size=below, replace=False)
        post[weak] = rng.choice([6, 7, 8], size=below)
    return base.astype(np.int64), post.astype(np.int64)


def _make_sparse(ctx: _Ctx, who: np.ndarray, has: np.ndarray) -> int | None:
    """Make the first candidate site with at least WARN_MIN_PATIENTS followed for the measure
    sparse, and return its position (None if no candidate has as many).

    All but a third of its followed patients lose their value in the window: ``has`` is set
    False in place, with no random draw of its own.  They keep a visit outside the window, so
    they still count as followed, and they leave the pairing before the values are
    calibrated, so the §1 figures still land."""
    for k in ctx.warn_candidates:
        at_site = np.flatnonzero(ctx.site_idx[who] == k)
        if at_site.size >= WARN_MIN_PATIENTS:
            has[at_site[: at_site.size - at_site.size // 3]] = False
            return k
    return None


def _noisy(measure: str, v: np.ndarray, rng: np.random.Generator, rules: Rules) -> np.ndarray:
    """A plausible value for a visit outside the windows, near ``v``."""
    if measure == "mrss":
        return np.clip(v + rng.integers(-3, 4, v.size), *rules.limits[measure])
    if measure == "ucla_git":
        return np.clip(v + rng.integers(-20, 21, v.size), *rules.limits[measure])
    if measure == "ck":
        return np.clip(np.rint(v * rng.uniform(0.6, 1.5, v.size)), 15, CK_MAX).astype(np.int64)
    out = np.clip(v + rng.integers(-1, 2, v.size), 2, 15)
    return out


def _as_value(measure: str, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canonical float values and, for MRC, the written grade."""
    if measure == "mrc":
        g = (v + 1) // 3
        value = np.round(g + 0.33 * (v - 3 * g), 2)
        return value, np.asarray(vocab.MRC_GRADES, dtype=object)[v]
    if measure == "ucla_git":
        return np.round(v / UCLA_SCALE, 2), np.full(v.size, None, dtype=object)
    return v.astype(np.float64), np.full(v.size, None, dtype=object)


def _assessments(ctx: _Ctx) -> tuple[pl.DataFrame, int | None]:
    """Assessment rows, and the position of the sparse site (see ``_make_sparse``)."""
    rng = ctx.rng
    dates, d = _visit_dates(ctx)
    frames = []
    sparse = None
    for mo, (measure, who) in enumerate(_members(ctx).items()):
        no_b, no_p = shape.DROPOUTS[measure]
        m = who.size
        drop = rng.permutation(m)
        nb, npost = min(shape.scaled(ctx.n, no_b), m // 4), min(shape.scaled(ctx.n, no_p), m // 4)
        has_b = np.ones(m, dtype=bool)
        has_p = np.ones(m, dtype=bool)
        has_b[drop[:nb]] = False
        has_p[drop[nb : nb + npost]] = False
        if measure == WARN_MEASURE:
            sparse = _make_sparse(ctx, who, has_b if WARN_TIMEPOINT == "baseline" else has_p)
        base, post = _values(ctx, measure, who, has_b & has_p)
        r = rng.random((len(_VISITS), m))
        flags = {
            "b": has_b,
            "b_early": has_b & (r[0] < 0.2),
            "old": ~has_b | (r[1] < 0.2),
            "mid": r[2] < 0.4,
            "p": has_p,
            "tie": has_p & (d[who] >= 5) & (r[3] < 0.3),
            "p_near": has_p & (r[4] < 0.15),
            "p_far": has_p & (r[5] < 0.15),
            "late": ~has_p | (r[6] < 0.25),
        }
        source = {"b": base, "b_early": base, "old": base, "mid": (base + post) // 2}
        for visit in _VISITS:
            sel = flags[visit]
            if not sel.any():
                continue
            anchor = source.get(visit, post)[sel]
            raw = anchor if visit in ("b", "p") else _noisy(measure, anchor, rng, ctx.rules)
            value, grade = _as_value(measure, raw)
            frames.append(
                pl.DataFrame(
                    {
                        "_pidx": who[sel],
                        "assessment_date": dates[visit][who[sel]],
                        "measure": measure,
                        "value": value,
                        "grade": pl.Series(grade.tolist(), dtype=pl.String),
                        "_morder": mo,
                    }
                )
            )
    return pl.concat(frames).with_columns(pl.col("assessment_date").cast(pl.Date)), sparse


# --- adverse events ---------------------------------------------------------------------


def _adverse_events(ctx: _Ctx) -> pl.DataFrame:
    """12 events in 10 patients per 78; the patients stopped for an adverse event each have one
    serious event (severe, related, IVIG discontinued) a few days after their last cycle."""
    rng, n = ctx.rng, ctx.n
    stop_ae = np.flatnonzero(ctx.stop == "adverse_event")
    n_pat = max(shape.scaled(n, shape.AE_PATIENTS), stop_ae.size)
    n_ev = min(max(shape.scaled(n, shape.AE_EVENTS), n_pat), 2 * n_pat)
    others = _subset(np.setdiff1d(np.arange(n), stop_ae), n_pat - stop_ae.size, rng)
    ae_pat = np.concatenate([stop_ae, others])
    twice = rng.choice(ae_pat, size=n_ev - n_pat, replace=False)
    terms = np.array([(t[1], t[2]) for t in vocab.AE_TERMS], dtype=object)
    mild = np.flatnonzero([not t[3] for t in vocab.AE_TERMS])
    grave = np.flatnonzero([t[3] for t in vocab.AE_TERMS])

    # serious events: one per patient stopped for an adverse event (the first is a DVT)
    s_pidx = stop_ae
    s_term = grave[np.arange(s_pidx.size) % grave.size]
    s_onset = ctx.last[s_pidx] + _days(rng.integers(3, 13, s_pidx.size))
    # non-serious events: the rest, a few days after a random cycle of the patient
    ns_pidx = np.concatenate([others, twice])
    k = np.floor(rng.random(ns_pidx.size) * ctx.n_cycles[ns_pidx]).astype(np.int64)
    ns_onset = ctx.cycle_start[ctx.first_row[ns_pidx] + k] + _days(rng.integers(0, 4, ns_pidx.size))
    ns_term = mild[rng.integers(0, mild.size, ns_pidx.size)]

    pidx = np.concatenate([s_pidx, ns_pidx])
    term = np.concatenate([s_term, ns_term])
    spanish = (ctx.lang[pidx] == "es").astype(np.int64)
    m, ms = ns_pidx.size, s_pidx.size
    return pl.DataFrame(
        {
            "_pidx": pidx,
            "onset_date": np.concatenate([s_onset, ns_onset]),
            "term": terms[term, spanish].tolist(),
            "severity": np.concatenate(
                [np.full(ms, "severe"), rng.choice(["mild", "moderate"], size=m, p=[0.6, 0.4])]
            ),
            "serious": np.arange(pidx.size) < ms,
            "related": np.concatenate(
                [
                    np.full(ms, "yes"),
                    rng.choice(["yes", "unknown", "no"], size=m, p=[0.5, 0.25, 0.25]),
                ]
            ),
            "action": np.concatenate(
                [
                    np.full(ms, "discontinued"),
                    rng.choice(["none", "interrupted"], size=m, p=[0.7, 0.3]),
                ]
            ),
        },
        schema_overrides={"term": pl.String},
    ).with_columns(pl.col("onset_date").cast(pl.Date))


def date_of(value: np.datetime64) -> dt.date:
    """numpy day -> ``datetime.date``."""
    return value.astype("datetime64[D]").astype(dt.date)
