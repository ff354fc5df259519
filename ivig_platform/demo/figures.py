"""The §1 figures, computed from the clean cohort by a small, separate reading of protocol §7.

This is deliberately independent of how the demo *generated* the data (it re-derives index
dates, windows, drug classes and the overlap rule from the canonical tables alone), so agreement
with the published figures checks the generator, and the platform's marts can be checked
against these numbers.  Percentages are in percent of analysed patients (those with a cycle).
The rules it reads (windows, measures, the MRC responder, the therapy classes, the age's
days per year) come from the protocol it is given, never from literals here; the figure
*names* are §1's (``pct_mrc_post_ge3`` is the share of MRC responders under the plan's rule,
which v1 defines as post >= 3).
"""

from __future__ import annotations

import re
import unicodedata

import polars as pl

from ivig_platform.protocol.load import Protocol
from ivig_platform.protocol.plan import Condition, Plan

# Protocol §3's drug table: name (English, Spanish, brand; normalised) -> (class, ingredient).
_DRUG_TABLE: dict[str, tuple[str, tuple[str, ...]]] = {
    "prednisone": ("corticosteroid", ("prednisona",)),
    "methylprednisolone": ("corticosteroid", ("metilprednisolona", "urbason")),
    "deflazacort": ("corticosteroid", ()),
    "dexamethasone": ("corticosteroid", ("dexametasona",)),
    "mycophenolate mofetil": ("immunosuppressant", ("micofenolato de mofetilo", "cellcept")),
    "mycophenolic acid": ("immunosuppressant", ("acido micofenolico", "myfortic")),
    "methotrexate": ("immunosuppressant", ("metotrexato",)),
    "azathioprine": ("immunosuppressant", ("azatioprina", "imurel")),
    "cyclophosphamide": ("immunosuppressant", ("ciclofosfamida",)),
    "tacrolimus": ("immunosuppressant", ()),
    "ciclosporin": ("immunosuppressant", ("ciclosporina",)),
    "leflunomide": ("immunosuppressant", ("leflunomida",)),
    "rituximab": ("biologic", ("mabthera", "truxima")),
    "tocilizumab": ("biologic", ("roactemra",)),
    "abatacept": ("biologic", ("orencia",)),
    "belimumab": ("biologic", ("benlysta",)),
    "anifrolumab": ("biologic", ()),
    "hydroxychloroquine": ("other", ("hidroxicloroquina", "dolquine")),
    "nintedanib": ("other", ("ofev",)),
    "bosentan": ("other", ()),
    "sildenafil": ("other", ()),
}
DRUG_LOOKUP: dict[str, tuple[str, str]] = {
    alias: (cls, generic)
    for generic, (cls, aliases) in _DRUG_TABLE.items()
    for alias in (generic, *aliases)
}
_DOSE_OR_FORM = re.compile(
    r"(\s+(comprimidos?|inyectable|viales?|tablets?))*"
    r"(\s*\d+([.,]\d+)?\s*(mg|g|mcg|ml)?)?(\s+(comprimidos?|inyectable|viales?|tablets?))*$"
)


def normalise_drug(name: str) -> str:
    """Lower case, no accents, no trailing dose or form: "Prednisona 5 mg" -> "prednisona"."""
    s = unicodedata.normalize("NFKD", name.strip().lower())
    s = "".join(ch for ch in s if not unicodedata.combining(ch))
    return _DOSE_OR_FORM.sub("", s).strip()


def drug_class(name: str) -> tuple[str, str]:
    """(class, generic) of a written drug name, or ("unmapped", normalised name)."""
    key = normalise_drug(name)
    return DRUG_LOOKUP.get(key, ("unmapped", key))


def compute_figures(clean: dict[str, pl.DataFrame], protocol: Protocol) -> dict[str, float]:
    """Protocol §1's figures from the canonical tables, following §7's definitions (the
    protocol's primary plan)."""
    plan = protocol.primary_plan
    contract = protocol.contract
    key = ["site_id", "patient_id"]
    period = (
        clean["ivig_cycles"]
        .group_by(key)
        .agg(
            n_cycles=pl.len(),
            index_date=pl.col("start_date").min(),
            last_date=pl.col("start_date").max(),
        )
    )
    pts = clean["patients"].join(period, on=key, how="inner")
    n = pts.height
    pct = 100.0 / n

    def share(expr: pl.Expr) -> float:
        return float(pts.select(expr.sum()).item()) * pct

    days_per_year = contract.derived.age_at_index.days_per_year
    age = ((pts["index_date"] - pts["birth_date"]).dt.total_days() / days_per_year).round(1)
    fig: dict[str, float] = {
        "n_patients": n,
        "n_patients_landed": clean["patients"].height,
        "n_sites": pts["site_id"].n_unique(),
        "n_women": int((pts["sex"] == "F").sum()),
        "n_men": int((pts["sex"] == "M").sum()),
        "mean_age": float(age.mean()),
        "n_diffuse": int((pts["ssc_subtype"] == "diffuse").sum()),
        "n_limited": int((pts["ssc_subtype"] == "limited").sum()),
        "pct_diffuse": share(pl.col("ssc_subtype") == "diffuse"),
        "pct_limited": share(pl.col("ssc_subtype") == "limited"),
        "pct_overlap_any": share(pl.col("overlap").list.len() > 0),
        "pct_overlap_iim": share(pl.col("overlap").list.contains("iim")),
        "pct_overlap_sjogren": share(pl.col("overlap").list.contains("sjogren")),
        "n_multi_indication": int((pts["indication"].list.len() > 1).sum()),
        "pct_multi_indication": share(pl.col("indication").list.len() > 1),
        "median_cycles": float(pts["n_cycles"].median()),
        "n_stopped": int(pts["ivig_stop_reason"].is_not_null().sum()),
        "n_stopped_adverse_event": int(
            (pts["ivig_stop_reason"] == _stopped_for_adverse_event(plan)).sum()
        ),
    }
    for ind in contract.vocabulary("indication").code_list:
        fig[f"pct_indication_{ind}"] = share(pl.col("indication").list.contains(ind))
    fig.update(_therapy(clean["treatments"], pts, key, plan.concomitant_therapy.classes))
    fig.update(_efficacy(clean["assessments"], pts, key, plan))
    ae = clean["adverse_events"].join(pts.select(key), on=key, how="semi")
    fig["n_adverse_events"] = ae.height
    fig["n_patients_with_ae"] = ae.select(key).unique().height
    fig["n_serious_ae"] = int(ae["serious"].sum())
    return fig


def _stopped_for_adverse_event(plan: Plan) -> str:
    """The stop reason §1 counts as "stopped for an adverse event" (the plan's safety
    section; a plan without one counts the vocabulary's code of that name)."""
    return plan.safety.stopped_for_adverse_event if plan.safety else "adverse_event"


def _therapy(
    tr: pl.DataFrame, pts: pl.DataFrame, key: list[str], therapy_classes: tuple[str, ...]
) -> dict[str, float]:
    """§7 concomitant therapy: on a class if a treatment of it overlaps first..last cycle start
    (a missing start or end date is open; a treatment with no dates overlaps)."""
    names = tr["drug"].unique().to_list()
    classes = pl.DataFrame(
        {
            "drug": names,
            "drug_class": [drug_class(d)[0] for d in names],
            "generic": [drug_class(d)[1] for d in names],
        },
        schema={"drug": pl.String, "drug_class": pl.String, "generic": pl.String},
    )
    on = (
        tr.join(classes, on="drug", how="left")
        .join(pts.select(*key, "index_date", "last_date"), on=key, how="inner")
        .filter(
            (pl.col("start_date").is_null() | (pl.col("start_date") <= pl.col("last_date")))
            & (pl.col("end_date").is_null() | (pl.col("end_date") >= pl.col("index_date")))
        )
    )
    out: dict[str, float] = {}
    for cls in therapy_classes:
        n_on = on.filter(pl.col("drug_class") == cls).select(key).unique().height
        out[f"pct_on_{cls}"] = 100.0 * n_on / pts.height
    top = (
        on.filter(pl.col("drug_class") == "immunosuppressant")
        .select(*key, "generic")
        .unique()
        .group_by("generic")
        .len()
        .sort(["len", "generic"], descending=[True, False])
    )
    out["most_common_immunosuppressant"] = top["generic"][0] if top.height else None  # type: ignore[assignment]
    return out


def _holds(c: Condition, pairs: pl.DataFrame) -> pl.Series:
    """`quantity op value` on each pair (change = post - baseline, decrease = baseline -
    post), compared as the values are: no rounding, the demo's values are exact."""
    x = {
        "baseline": pairs["baseline"],
        "post": pairs["post"],
        "change": pairs["post"] - pairs["baseline"],
        "decrease": pairs["baseline"] - pairs["post"],
    }[c.quantity]
    return {"<": x < c.value, "<=": x <= c.value, ">": x > c.value, ">=": x >= c.value}[c.op]


def _efficacy(asm: pl.DataFrame, pts: pl.DataFrame, key: list[str], plan: Plan) -> dict[str, float]:
    """§7 baseline (latest in [index - before, index]) and post (nearest last + target in
    [last + min, last + max], tie -> later), the plan's windows; paired means of the plan's
    measures and the share of MRC responders (the plan's rule) among eligible pairs."""
    w = plan.windows
    a = asm.join(pts.select(*key, "index_date", "last_date"), on=key, how="inner").with_columns(
        from_index=(pl.col("assessment_date") - pl.col("index_date")).dt.total_days(),
        from_last=(pl.col("assessment_date") - pl.col("last_date")).dt.total_days(),
    )
    k = [*key, "measure"]
    base = (
        a.filter(pl.col("from_index").is_between(-w.baseline_days_before, 0))
        .sort("assessment_date")
        .group_by(k)
        .agg(baseline=pl.col("value").last())
    )
    post = (
        a.filter(pl.col("from_last").is_between(w.post_min_days, w.post_max_days))
        .with_columns(dist=(pl.col("from_last") - w.post_target_days).abs())
        .sort(["dist", "assessment_date"], descending=[False, True])
        .group_by(k)
        .agg(post=pl.col("value").first())
    )
    paired = base.join(post, on=k, how="inner")
    out: dict[str, float] = {}
    for m in plan.measure_names:
        p = paired.filter(pl.col("measure") == m)
        out[f"n_paired_{m}"] = p.height
        out[f"{m}_baseline_mean"] = float(p["baseline"].mean()) if p.height else float("nan")
        out[f"{m}_post_mean"] = float(p["post"].mean()) if p.height else float("nan")
    out["pct_mrc_post_ge3"] = _responder_share(paired, plan, "mrc")
    return out


def _responder_share(paired: pl.DataFrame, plan: Plan, measure: str) -> float:
    """Percent of eligible pairs of `measure` that respond (0 when none, or no rule)."""
    rule = next((m.responder for m in plan.measures if m.name == measure), None)
    pairs = paired.filter(pl.col("measure") == measure)
    if rule is None:
        return 0.0
    if rule.eligible is not None:
        pairs = pairs.filter(_holds(rule.eligible, pairs))
    return 100.0 * float(_holds(rule.responder, pairs).mean()) if pairs.height else 0.0
