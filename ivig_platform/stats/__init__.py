"""Statistics of the study (protocol §7): pure functions over Polars frames, no I/O.

* ``summaries`` — mean, SD (n - 1), type-7 quantiles as Polars expressions.
* ``tests_paired`` — paired t-test and R-exact Wilcoxon signed-rank test (NumPy functions
  and Polars expressions).
* ``efficacy`` — ``efficacy_table`` (mart_efficacy).
* ``safety`` — ``safety_table`` (mart_safety).
"""

from ivig_platform.stats.efficacy import EFFICACY_SCHEMA, efficacy_table
from ivig_platform.stats.safety import SAFETY_SCHEMA, safety_table
from ivig_platform.stats.tests_paired import (
    PairedTTest,
    WilcoxonSignedRank,
    paired_t_test,
    wilcoxon_signed_rank,
)

__all__ = [
    "EFFICACY_SCHEMA",
    "SAFETY_SCHEMA",
    "PairedTTest",
    "WilcoxonSignedRank",
    "efficacy_table",
    "paired_t_test",
    "safety_table",
    "wilcoxon_signed_rank",
]
