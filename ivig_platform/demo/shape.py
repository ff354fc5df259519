"""The published cohort (protocol §1) as the demo's target shape, and exact apportioning.

Counts are written for the 78 published patients; a demo of any size keeps the same
proportions by apportioning them with the largest-remainder method, so the 78-patient demo
reproduces the published counts exactly and a 100,000-patient demo has the same shape.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np

PUBLISHED_PATIENTS = 78
PUBLISHED_SITES = 18

SEX = {"F": 64, "M": 14}
SUBTYPE = {"diffuse": 46, "limited": 32}
# Overlap combinations: 32 with IIM (41%), 5 with Sjögren (6%), 39 with any overlap (50%).
OVERLAP = {
    (): 39,
    ("iim",): 31,
    ("iim", "sjogren"): 1,
    ("sjogren",): 4,
    ("sle",): 2,
    ("ra",): 1,
}
# Indication combinations: myositis 38 (49%), gastrointestinal 24 (31%), skin 17 (22%),
# more than one in 7 (9%); "other" fills the rest so everyone has at least one.
INDICATION = {
    ("myositis",): 32,
    ("gastrointestinal",): 19,
    ("skin",): 14,
    ("other",): 6,
    ("myositis", "gastrointestinal"): 4,
    ("myositis", "skin"): 2,
    ("gastrointestinal", "skin"): 1,
}
STOP_REASON = {None: 74, "adverse_event": 1, "inefficacy": 2, "other": 1}
ON_CLASS = {"corticosteroid": 54, "immunosuppressant": 52, "biologic": 14}
AE_PATIENTS = 10
AE_EVENTS = 12

# Cycles per patient: a discrete distribution whose median is 5 at any size (its CDF passes
# 0.40 at 4 and 0.58 at 5); counts are taken at evenly spaced quantiles, not sampled.
CYCLES_PMF = {1: 4, 2: 6, 3: 12, 4: 18, 5: 18, 6: 14, 7: 8, 8: 6, 9: 5, 10: 3, 11: 2, 12: 4}

MEAN_AGE = 58.5
# Paired means (baseline, post) the demo calibrates to.
PAIRED_MEANS = {"ck": (1149.0, 217.0), "mrss": (15.0, 13.0), "ucla_git": (1.06, 0.78)}
MRC_POST_AT_LEAST_3 = 0.92

# Who is measured, and how many drop out of the pairing (per 78 patients).
DROPOUTS = {  # measure: (no baseline, no post)
    "mrss": (3, 3),
    "ucla_git": (2, 2),
    "ck": (2, 2),
    "mrc": (0, 2),  # every patient with a post MRC also has a baseline MRC
}
UCLA_EXTRA_SHARE = 0.25  # besides GI patients, this share of the others fills the UCLA GIT

# §1 as figures (the keys of figures.compute_figures), for tests and the final report.
PUBLISHED_FIGURES: dict[str, float] = {
    "n_patients": 78,
    "n_sites": 18,
    "n_women": 64,
    "n_men": 14,
    "mean_age": 58.5,
    "n_diffuse": 46,
    "n_limited": 32,
    "pct_overlap_any": 50.0,
    "pct_overlap_iim": 41.0,
    "pct_overlap_sjogren": 6.0,
    "pct_indication_myositis": 49.0,
    "pct_indication_gastrointestinal": 31.0,
    "pct_indication_skin": 22.0,
    "n_multi_indication": 7,
    "pct_multi_indication": 9.0,
    "median_cycles": 5,
    "pct_on_corticosteroid": 69.0,
    "pct_on_immunosuppressant": 67.0,
    "pct_on_biologic": 18.0,
    "pct_mrc_post_ge3": 92.0,
    "ck_baseline_mean": 1149.0,
    "ck_post_mean": 217.0,
    "mrss_baseline_mean": 15.0,
    "mrss_post_mean": 13.0,
    "ucla_git_baseline_mean": 1.06,
    "ucla_git_post_mean": 0.78,
    "n_adverse_events": 12,
    "n_patients_with_ae": 10,
    "n_serious_ae": 1,
    "n_stopped": 4,
    "n_stopped_adverse_event": 1,
}


def apportion(n: int, weights: Mapping[Hashable, float]) -> dict[Hashable, int]:
    """Split ``n`` into integer counts proportional to ``weights`` (largest remainder).

    Ties in the remainders go to the key listed first, so the result is deterministic.
    """
    keys = list(weights)
    w = np.array([float(weights[k]) for k in keys])
    exact = n * w / w.sum()
    counts = np.floor(exact).astype(np.int64)
    short = n - int(counts.sum())
    order = sorted(range(len(keys)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[:short]:
        counts[i] += 1
    return {k: int(c) for k, c in zip(keys, counts, strict=True)}


def scaled(n: int, count_in_78: float) -> int:
    """``count_in_78`` of the published 78 patients, scaled to ``n`` patients (rounded)."""
    return int(np.floor(n * count_in_78 / PUBLISHED_PATIENTS + 0.5))
