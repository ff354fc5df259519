"""Every published number traceable (issue 15): where rows came from, and how the
warehouse changed from one publish to the next.

* `explain` — `ivig explain`: a mart or landed row back to the site's source rows and cells.
* `cells` — the cells as reported, copied into each build (`landed_cells.*`).
* `run_record` — `quality.run_record`: inputs, code, protocol, versions, outputs of a run.
* `audit` — the append-only delivery log (`quality.delivery_event`, `ivig status --history`).
* `check_delta` — `quality.check_delta`: failing checks new, persisting, resolved.
* `ard` — `marts.ard` and `WAREHOUSE/ard.json`: the stats marts as analysis results data.
* `steps` — what the refresh and the rollback call (the I/O around the pure parts).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ExplainError", "explain"]


def __getattr__(name: str) -> Any:  # imported on first use: `ivig --help` stays instant
    if name in __all__:
        from ivig_platform.provenance import explain as module

        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
