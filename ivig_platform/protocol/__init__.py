"""The study protocol, defined once in `protocol/` and loaded, validated and amended here.

    from ivig_platform.protocol import load_protocol
    protocol = load_protocol()
    protocol.contract.table("ivig_cycles").field("dose_g").constraints.maximum   # 400
    protocol.primary_plan.windows.post_target_days                              # 90
    protocol.privacy.small_cells.mask                                           # "<5"

Modules: `files` reads the folder, `schema` (contract, privacy, monitoring) and `plan`
(analysis plans) validate it, `merge` and `amend` apply amendment files, `checks` checks
across files, `load` puts it together, `fingerprint` identifies it, `diff` compares
versions, `document` renders the contract document, `cli` is `ivig protocol`.
"""

from ivig_platform.protocol.errors import Issue, ProtocolError
from ivig_platform.protocol.load import (
    ENV_VARIABLE,
    Protocol,
    default_root,
    load_protocol,
    plan_fingerprint,
    plans_in_force,
)
from ivig_platform.protocol.plan import Plan
from ivig_platform.protocol.schema import Contract

__all__ = [
    "ENV_VARIABLE", "Contract", "Issue", "Plan", "Protocol", "ProtocolError", "default_root",
    "load_protocol", "plan_fingerprint", "plans_in_force",
]  # fmt: skip
