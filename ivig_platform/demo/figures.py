"""The §1 figures, computed from the clean cohort by a small, separate reading of protocol §7.

This is deliberately independent of how the demo *generated* the data (it re-derives index
dates, windows, drug classes and the overlap rule from the canonical tables alone), so agreement
with the published figures checks the generator, and the platform's marts can be checked
against these numbers.  Percentages are in percent of analysed patients (those with a cycle).
"""

from __future__ import annotations

import re
import unicodedata

import polars as pl

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


def compute_figures(clean: dict[str, pl.DataFrame]) -> dict[str, float]:
    """Protocol §1's figures from the canonical tables, following §7's definitions."""
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

    age = ((pts["index_date"] - pts["birth_date"]).dt.total_days() / 365.25).round(1)
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
        "n_stopped_adverse_event": int((pts["ivig_stop_reason"] == "adverse_event").sum()),
    }
    for ind in ("myositis", "gastrointestinal", "skin", "other"):
        fig[f"pct_indication_{ind}"] = share(pl.col("indication").list.contains(ind))
    fig.update(_therapy(clean["treatments"], pts, key))
    fig.update(_efficacy(clean["assessments"], pts, key))
    ae = clean["adverse_events"].join(pts.select(key), on=key, how="semi")
    fig["n_adverse_events"] = ae.height
    fig["n_patients_with_ae"] = ae.select(key).unique().height
    fig["n_serious_ae"] = int(ae["serious"].sum())
    return fig


def _therapy(tr: pl.DataFrame, pts: pl.DataFrame, key: list[str]) -> dict[str, float]:
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
    for cls in ("corticosteroid", "immunosuppressant", "biologic"):
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


def _efficacy(asm: pl.DataFrame, pts: pl.DataFrame, key: list[str]) -> dict[str, float]:
    """§7 baseline (latest in [index-90, index]) and post (nearest last+90 in [last+30,
    last+180], tie -> later); paired means and the MRC share with post >= 3."""
    a = asm.join(pts.select(*key, "index_date", "last_date"), on=key, how="inner").with_columns(
        from_index=(pl.col("assessment_date") - pl.col("index_date")).dt.total_days(),
        from_last=(pl.col("assessment_date") - pl.col("last_date")).dt.total_days(),
    )
    k = [*key, "measure"]
    base = (
        a.filter(pl.col("from_index").is_between(-90, 0))
        .sort("assessment_date")
        .group_by(k)
        .agg(baseline=pl.col("value").last())
    )
    post = (
        a.filter(pl.col("from_last").is_between(30, 180))
        .with_columns(dist=(pl.col("from_last") - 90).abs())
        .sort(["dist", "assessment_date"], descending=[False, True])
        .group_by(k)
        .agg(post=pl.col("value").first())
    )
    paired = base.join(post, on=k, how="inner")
    out: dict[str, float] = {}
    for m in ("mrc", "ck", "mrss", "ucla_git"):
        p = paired.filter(pl.col("measure") == m)
        out[f"n_paired_{m}"] = p.height
        out[f"{m}_baseline_mean"] = float(p["baseline"].mean()) if p.height else float("nan")
        out[f"{m}_post_mean"] = float(p["post"].mean()) if p.height else float("nan")
    mrc = paired.filter(pl.col("measure") == "mrc")
    out["pct_mrc_post_ge3"] = 100.0 * float((mrc["post"] >= 3).mean()) if mrc.height else 0.0
    return out
