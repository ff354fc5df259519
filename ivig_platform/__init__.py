"""The ivig-platform package. `ivig_platform.explain(...)`: where published rows came from
(ivig_platform/provenance/explain.py); imported on first use."""

from __future__ import annotations

from typing import Any

__all__ = ["explain"]


def __getattr__(name: str) -> Any:
    if name == "explain":
        from ivig_platform.provenance.explain import explain

        return explain
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
