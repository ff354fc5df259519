"""The data contract in the docs site: `docs/contract.html`, rendered at every refresh.

Issue 11: the contract document the sites receive is generated from the protocol
definition into the docs site, so it can never disagree with what landing applied. It is
rendered from the protocol the run worked under (a contract amendment of a `--plan` file
included) into the run's docs folder, and so published, kept with each version and
restored by `ivig rollback` together with the file, the report and the other docs.
"""

from __future__ import annotations

from pathlib import Path

from ivig_platform.protocol.document import render_contract_html
from ivig_platform.protocol.load import Protocol
from ivig_platform.warehouse.publish import CONTRACT_PAGE


def write_contract_page(docs: Path, protocol: Protocol) -> Path:
    """`docs/contract.html` of `protocol`; returns its path."""
    docs.mkdir(parents=True, exist_ok=True)
    page = docs / CONTRACT_PAGE
    page.write_text(render_contract_html(protocol), encoding="utf-8")
    return page
