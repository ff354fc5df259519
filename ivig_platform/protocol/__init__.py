"""The study protocol, defined once in `protocol/` and loaded, validated and amended here.

    from ivig_platform.protocol import load_protocol
    protocol = load_protocol()
    protocol.contract.table("ivig_cycles").field("dose_g").constraints.maximum   # 400
    protocol.primary_plan.windows.post_target_days                              # 90
    protocol.privacy.small_cells.mask                                           # "<5"

Modules: `files` reads the folder, `schema` (contract, privacy, monitoring) and `plan`
(analysis plans) validate it, `merge` and `amend` apply amendment files, `checks` checks
across files, `load` puts it together, `fingerprint` identifies it, `diff` compares
versions, `document` renders the contract document, `show` and `cli` are
`ivig protocol`; `in_force` is the protocol a run works under (with its `--plan` files),
`tables` the protocol as the tables the warehouse, dbt, the stats and the report read.

The names below are imported on first use, so `ivig --help` (which registers
`ivig protocol`) does not pay for pydantic and Polars.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ENV_VARIABLE": "load", "Protocol": "load", "default_root": "load",
    "load_protocol": "load", "plan_fingerprint": "load", "plans_in_force": "load",
    "Issue": "errors", "ProtocolError": "errors", "Plan": "plan", "Contract": "schema",
    "render_contract_html": "document", "render_contract_markdown": "document",
    "protocol_in_force": "in_force", "run_under": "in_force", "with_plan_files": "in_force",
    "contract_fingerprint": "in_force", "protocol_tables": "tables", "dbt_vars": "tables",
}  # fmt: skip

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
