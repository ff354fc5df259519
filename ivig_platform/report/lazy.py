"""Module attributes read from the protocol in force when they are asked for.

The report's modules once read the protocol at import time, so a protocol given to
`build_html` (a run's `--plan` files, another protocol folder) did not reach its labels or
its §6 rule. Their old constants (`plots.MEASURES`, `privacy.MASK`, …) stay importable as
module attributes computed on access (PEP 562); the report's own code calls the functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(module: str, values: Mapping[str, Callable[[], Any]]
                    ) -> Callable[[str], Any]:
    """A module `__getattr__` computing each of `values` when it is read."""

    def __getattr__(name: str) -> Any:
        if name in values:
            return values[name]()
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
