"""Protocol §6 small-count rule of the study report: counts of 1-4 are shown as ``<5``.

This is the one place the rule lives; every count the report displays goes through
``mask_count`` (tables, the site panel, the published-figures comparison, plot titles),
and every statistic derived from such a count (a percentage, a mean) checks ``is_small``
before it is shown.
"""

from __future__ import annotations

import math

#: What a count of 1-4 is displayed as.
MASK = "<5"
#: Displayed for a value that is missing or cannot be computed.
MISSING = "—"
_SMALL = range(1, 5)


def is_small(count: float | None) -> bool:
    """True for a count of 1 to 4 (0 and counts of 5 or more are not small)."""
    if count is None or (isinstance(count, float) and math.isnan(count)):
        return False
    return int(count) in _SMALL


def mask_count(count: float | None) -> str:
    """A count as displayed in the report: ``<5`` for 1-4, else the number (``1,234``).

    ``None`` (or NaN) is ``—``. A float count must be whole.
    """
    if count is None or (isinstance(count, float) and math.isnan(count)):
        return MISSING
    if count != int(count):
        raise ValueError(f"a count must be a whole number, got {count!r}")
    if is_small(count):
        return MASK
    return f"{int(count):,}"
