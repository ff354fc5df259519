"""The data-quality gate (issue 4): GX suites from `expectations/`, run per site and on marts.

    from ivig_platform.quality import (
        load_suites, pool_stats, run_landing_gate, run_mart_gate,
        build_data_docs, check_results_frame,
    )

GX's analytics are switched off here, before any module of the package imports GX.
"""

import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from ivig_platform.quality.docs import build_data_docs  # noqa: E402
from ivig_platform.quality.drift_reference import DriftPools, DriftReference  # noqa: E402
from ivig_platform.quality.gate import (  # noqa: E402
    CheckOutcome,
    GateResult,
    SuiteRun,
    check_results_frame,
    failure_rows,
    gate_markdown,
    run_landing_gate,
    run_mart_gate,
)
from ivig_platform.quality.inputs import landed_tables, read_marts  # noqa: E402
from ivig_platform.quality.pool import PoolStats, pool_stats  # noqa: E402
from ivig_platform.quality.suites import load_suites, protocol_suites  # noqa: E402
from ivig_platform.quality.windows import analysis_windows, patient_windows  # noqa: E402

__all__ = [
    "CheckOutcome",
    "DriftPools",
    "DriftReference",
    "GateResult",
    "PoolStats",
    "SuiteRun",
    "analysis_windows",
    "build_data_docs",
    "check_results_frame",
    "failure_rows",
    "gate_markdown",
    "landed_tables",
    "load_suites",
    "protocol_suites",
    "patient_windows",
    "pool_stats",
    "read_marts",
    "run_landing_gate",
    "run_mart_gate",
]
