"""The ivig-platform package. `ivig_platform.connect(WAREHOUSE)`: a read-only connection on
the published warehouse, single file or lake (ivig_platform/warehouse/reader.py);
`ivig_platform.explain(...)`: where published rows came from
(ivig_platform/provenance/explain.py); both imported on first use."""

from __future__ import annotations

from typing import Any

__all__ = ["connect", "explain"]


def __getattr__(name: str) -> Any:
    if name == "explain":
        from ivig_platform.provenance.explain import explain

        return explain
    if name == "connect":
        from ivig_platform.warehouse.reader import connect

        return connect
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
