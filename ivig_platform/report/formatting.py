"""Number formatting of the report; every count goes through ``privacy.mask_count``."""

from __future__ import annotations

import math

from ivig_platform.protocol.in_force import protocol_in_force
from ivig_platform.report.privacy import MISSING, is_small, mask_count, suppressed


def measure_decimals() -> dict[str, int]:
    """Display decimals of each measure of the primary plan of the protocol in force
    (protocol/analysis/v1.yaml and the amendments)."""
    return {m.name: m.decimals for m in protocol_in_force().primary_plan.measures}


def is_missing(x: float | None) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def number(x: float | None, decimals: int = 1) -> str:
    """``1,149.0``; no negative zero; ``—`` when missing."""
    if is_missing(x):
        return MISSING
    text = f"{x:,.{decimals}f}"
    if text.startswith("-") and not text.strip("-0.,"):
        text = text[1:]
    return text


def percent(pct: float | None, decimals: int = 1) -> str:
    return MISSING if is_missing(pct) else f"{number(pct, decimals)}%"


def count_percent(
    n: int | None, pct: float | None, denominator: int | None = None, decimals: int = 1
) -> str:
    """``64 (82.1%)``; the percentage is left out when ``n`` or ``denominator`` is 1-4."""
    if n is None:
        return MISSING
    if is_small(n) or is_small(denominator) or is_missing(pct):
        return mask_count(n)
    return f"{mask_count(n)} ({percent(pct, decimals)})"


def fraction_percent(n: int | None, denominator: int | None, pct: float | None) -> str:
    """``23/25 (92.0%)`` with both counts masked and the percentage suppressed if small."""
    if n is None or denominator is None:
        return MISSING
    text = f"{mask_count(n)}/{mask_count(denominator)}"
    if is_small(n) or is_small(denominator) or is_missing(pct):
        return text
    return f"{text} ({percent(pct)})"


def mean_sd(mean: float | None, sd: float | None, n: int | None, decimals: int = 1) -> str:
    """``15.2 (4.1)``; suppressed for 1-4 values (a mean of so few shows the values)."""
    if is_small(n):
        return suppressed()
    if is_missing(mean):
        return MISSING
    return f"{number(mean, decimals)} ({number(sd, decimals)})"


def median_iqr(
    median: float | None, q1: float | None, q3: float | None, n: int | None, decimals: int = 1
) -> str:
    """``5.0 [3.0–7.0]``; suppressed for 1-4 values."""
    if is_small(n):
        return suppressed()
    if is_missing(median):
        return MISSING
    return f"{number(median, decimals)} [{number(q1, decimals)}–{number(q3, decimals)}]"


def estimate_ci(
    estimate: float | None, low: float | None, high: float | None, n: int | None, decimals: int
) -> str:
    """``-932 (-1,105 to -759)``; suppressed for 1-4 pairs."""
    if is_small(n):
        return suppressed()
    if is_missing(estimate):
        return MISSING
    if is_missing(low) or is_missing(high):
        return number(estimate, decimals)
    return f"{number(estimate, decimals)} ({number(low, decimals)} to {number(high, decimals)})"


def p_value(p: float | None, n: int | None = None) -> str:
    """``<0.001`` below 0.001, else three decimals; suppressed for 1-4 pairs."""
    if is_small(n):
        return suppressed()
    if is_missing(p):
        return MISSING
    if p < 0.001:
        return "<0.001"
    return f"{p:.3f}"
