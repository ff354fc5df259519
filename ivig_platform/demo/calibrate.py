"""Pure helpers that nudge generated values so their mean lands on a published figure.

Values are handled as integers in their smallest written unit (mRSS points, UCLA hundredths,
CK U/L), so the mean after writing and reading back is the mean calibrated here.
"""

from __future__ import annotations

import numpy as np


def adjust_sum(
    values: np.ndarray, target_sum: int, lo: int, hi: int, rng: np.random.Generator
) -> np.ndarray:
    """Add or take single units from random entries until the sum is ``target_sum``.

    Entries stay within [lo, hi].  Each round moves up to |gap| distinct entries by one unit,
    so the change is spread thinly and the distribution keeps its shape.
    """
    out = np.asarray(values, dtype=np.int64).copy()
    if out.size == 0:
        return out
    for _ in range(10_000):
        gap = int(target_sum - out.sum())
        if gap == 0:
            return out
        step = 1 if gap > 0 else -1
        room = np.flatnonzero(out < hi) if step > 0 else np.flatnonzero(out > lo)
        if room.size == 0:
            raise ValueError("target sum not reachable within bounds")
        pick = rng.choice(room, size=min(abs(gap), room.size), replace=False)
        out[pick] += step
    raise RuntimeError("adjust_sum did not converge")


def to_mean(
    values: np.ndarray, target_mean: float, lo: int, hi: int, rng: np.random.Generator
) -> np.ndarray:
    """Scale ``values`` towards ``target_mean``, round to integers, then fix the sum exactly.

    The target sum is ``round(target_mean * n)``, so the mean is within 0.5/n of the target.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return v.astype(np.int64)
    scaled = np.clip(np.rint(v * (target_mean / v.mean())), lo, hi).astype(np.int64)
    return adjust_sum(scaled, int(round(target_mean * v.size)), lo, hi, rng)
