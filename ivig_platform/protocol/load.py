"""Loading the protocol: read, amend, validate, and hand out one frozen `Protocol`.

`load_protocol()` reads the repository's `protocol/` folder (or `IVIG_PROTOCOL_DIR`, for
installs and tests) with the amendments in its `amendments/` folder, and caches the
result per folder for the life of the process. `Protocol.with_amendments(files)` adds
amendment files given at run time (`--plan FILE`); `plans_in_force(files)` is the list of
plans to compute, v1 first.

Every problem is collected before anything is refused: a `ProtocolError` lists each file,
key and what is wrong in it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ivig_platform.protocol.amend import Amendment, ancestors, order_amendments, read_amendment
from ivig_platform.protocol.checks import contract_findings
from ivig_platform.protocol.errors import Issue, Loc, Origin, ProtocolError, issues_from_pydantic
from ivig_platform.protocol.errors import locate as locate_issue
from ivig_platform.protocol.files import Source, amendment_files, read_source
from ivig_platform.protocol.fingerprint import fingerprint
from ivig_platform.protocol.merge import merge
from ivig_platform.protocol.plan import Plan
from ivig_platform.protocol.schema import Contract, Monitoring, Privacy, ProtocolInfo

#: Overrides the protocol folder (an install without the repository, a test's protocol).
ENV_VARIABLE = "IVIG_PROTOCOL_DIR"
#: The repository's protocol folder.
REPOSITORY_ROOT = Path(__file__).resolve().parents[2] / "protocol"
#: The copy a wheel ships (pyproject.toml force-includes protocol/ there).
PACKAGED_ROOT = Path(__file__).resolve().parent / "definition"


def default_root() -> Path:
    """`IVIG_PROTOCOL_DIR`, else the repository's `protocol/`, else the packaged copy."""
    configured = os.environ.get(ENV_VARIABLE)
    if configured:
        return Path(configured)
    if REPOSITORY_ROOT.is_dir() or not PACKAGED_ROOT.is_dir():
        return REPOSITORY_ROOT
    return PACKAGED_ROOT


@dataclass(frozen=True)
class VersionNode:
    """One version of the definition as written: its contract and plan trees."""

    version: str
    contract_tree: Any
    analysis_tree: Any
    origins: Mapping[Loc, Origin]
    amendment: Amendment | None = None

    @property
    def makes_plan(self) -> bool:
        return self.amendment is None or bool(self.amendment.header.analysis)

    @property
    def changes_contract(self) -> bool:
        return self.amendment is not None and bool(self.amendment.header.contract)


@dataclass(frozen=True)
class Protocol:
    """The protocol in force: the contract landing applies and the plans to compute."""

    root: Path
    info: ProtocolInfo
    contract: Contract
    privacy: Privacy
    monitoring: Monitoring
    plans: tuple[Plan, ...]
    amendments: tuple[Amendment, ...]
    #: The version whose contract is in force (the protocol's, or the last contract amendment).
    contract_version: str
    source: Source = field(repr=False, compare=False)
    nodes: Mapping[str, VersionNode] = field(repr=False, compare=False)
    contracts: Mapping[str, Contract] = field(repr=False, compare=False)

    @property
    def version(self) -> str:
        return self.info.version

    @property
    def primary_plan(self) -> Plan:
        return self.plans[0]

    @property
    def versions(self) -> tuple[str, ...]:
        """Every version known: the protocol's, then the amendments' in order."""
        return tuple(self.nodes)

    def plan(self, version: str) -> Plan:
        for plan in self.plans:
            if plan.version == version:
                return plan
        raise KeyError(f"no plan {version!r} in force (plans: "
                       f"{', '.join(p.version for p in self.plans)})")

    def contract_of(self, version: str) -> Contract:
        """The contract as of `version` (the protocol's plus its chain's contract changes)."""
        return self.contracts[version]

    def tree_of(self, version: str) -> dict[str, Any]:
        """The definition of `version` as written (the shape amendments patch)."""
        node = self.nodes[version]
        return {"contract": node.contract_tree, "analysis": node.analysis_tree}

    def source_of(self, version: str) -> str:
        node = self.nodes[version]
        if node.amendment is not None:
            return node.amendment.file
        return self.source.name("analysis/" + f"{version}.yaml")

    def with_amendments(self, files: Iterable[Path | str]) -> Protocol:
        """This protocol with more amendment files in force (given at run time)."""
        extra = [Path(f) for f in files]
        return build(self.source, extra) if extra else self

    @property
    def contract_fingerprint(self) -> str:
        """What landing depends on: the contract and the pseudonymisation."""
        return fingerprint({"contract": self.contract, "pseudonym": self.privacy.pseudonym})

    @property
    def fingerprint(self) -> str:
        """The whole protocol in force: contract, privacy, monitoring and every plan."""
        return fingerprint({
            "protocol": self.info, "contract": self.contract, "privacy": self.privacy,
            "monitoring": self.monitoring, "plans": self.plans,
        })


def plan_fingerprint(plan: Plan) -> str:
    """What the marts and stats of one plan depend on (besides the contract)."""
    return fingerprint(plan)


def load_protocol(root: Path | str | None = None) -> Protocol:
    """The protocol of `root` (default: `default_root()`), cached per folder."""
    return _load(Path(root if root is not None else default_root()).resolve())


@lru_cache(maxsize=8)
def _load(root: Path) -> Protocol:
    return build(read_source(root), [])


load_protocol.cache_clear = _load.cache_clear  # type: ignore[attr-defined]


def plans_in_force(extra_files: Sequence[Path | str] = (),
                   root: Path | str | None = None) -> list[Plan]:
    """v1, then the plans of the amendments in `protocol/amendments/` and `extra_files`."""
    return list(load_protocol(root).with_amendments(extra_files).plans)


# --------------------------------------------------------------------------- building


class _Issues:
    """Issues collected while building, without repeats, located through origins."""

    def __init__(self, unreadable: set[str]):
        self.items: list[Issue] = []
        self.unreadable = unreadable  # files already reported as unreadable

    def add(self, issue: Issue) -> None:
        if issue.file in self.unreadable:
            return  # the file's own "missing"/"not YAML"/line issue says it
        if issue not in self.items:
            self.items.append(issue)

    def pydantic(self, exc: ValidationError, prefix: Loc, node: VersionNode, default: str,
                 model: type[BaseModel], note: str | None = None) -> None:
        """`note` is added to issues outside `node`'s own amendment (the contract a plan
        was checked against, when an amendment changed it)."""
        for error in exc.errors():
            loc = prefix + tuple(error["loc"])
            for issue in issues_from_pydantic([error], prefix, node.origins, default, model):
                issue = _in_version(issue, loc, node)
                if note and (node.amendment is None or issue.file != node.amendment.file):
                    issue = Issue(issue.file, issue.where, f"{issue.message} ({note})")
                self.add(issue)

    def findings(self, found: Iterable[tuple[Loc, str]], node: VersionNode,
                 default: str) -> None:
        for loc, message in found:
            file, where = locate_issue(loc, node.origins, default)
            self.add(_in_version(Issue(file, where, message), loc, node))


def _in_version(issue: Issue, loc: Loc, node: VersionNode) -> Issue:
    """An issue of an amended definition points into the amendment where it can.

    A problem inside what the amendment changed (say the windows, whose order an amended
    post_target_days broke) is reported in the amendment, at the key it wrote; one in an
    inherited part stays in its file and says which amendment it arose under.
    """
    a = node.amendment
    if a is None or issue.file == a.file:
        return issue
    below = [(key, o) for key, o in node.origins.items()
             if o.file == a.file and key[:len(loc)] == loc]
    if below:
        key, origin = min(below, key=lambda item: len(item[0]))
        path = origin.path[:len(origin.path) - (len(key) - len(loc))]
        return Issue(a.file, Origin(a.file, path).where(), issue.message)
    return Issue(issue.file, issue.where,
                 f"{issue.message} (as amended by {node.version}, {a.file})")


def _validated(model: type[BaseModel], tree: Any, key: str, source: Source, issues: _Issues,
               base: VersionNode, context: dict[str, Any] | None = None) -> Any:
    try:
        return model.model_validate(tree, context=context)
    except ValidationError as exc:
        issues.pydantic(exc, (key,), base, source.name(""), model)
        return None


def build(source: Source, extra_files: Sequence[Path]) -> Protocol:
    """Validate `source` with its amendments and `extra_files`; ProtocolError if unusable."""
    if not source.root.is_dir():
        raise ProtocolError(source.issues)
    unreadable = {i.file for i in source.issues}  # fix what cannot be read first
    issues = _Issues(unreadable)
    for issue in source.issues:
        issues.items.append(issue)
    tree = source.tree
    base_version = (tree.get("protocol") or {}).get("version")
    base = VersionNode(str(base_version), tree.get("contract"), tree.get("analysis"),
                       dict(source.origins))
    info = _validated(ProtocolInfo, tree.get("protocol"), "protocol", source, issues, base)
    privacy = _validated(Privacy, tree.get("privacy"), "privacy", source, issues, base)
    monitoring = _validated(Monitoring, tree.get("monitoring"), "monitoring", source, issues,
                            base)

    amendment_issues: list[Issue] = []
    read = [
        read_amendment(path, shown, amendment_issues)
        for path, shown in _amendment_names(source, extra_files)
    ]
    ordered = order_amendments([a for a in read if a is not None], base.version,
                               amendment_issues)
    for issue in amendment_issues:
        issues.add(issue)
    nodes = _nodes(base, ordered, issues)

    contracts, contract_version = _contracts(nodes, source, issues)
    contract = contracts.get(contract_version)
    plans: list[Plan] = []
    amended_by = nodes[contract_version].amendment
    note = None if amended_by is None else (
        f"checked against the contract in force, {contract_version} of {amended_by.file}")
    if contract is not None:
        for node in nodes.values():
            if not node.makes_plan:
                continue
            try:
                plans.append(Plan.model_validate(node.analysis_tree,
                                                 context={"contract": contract}))
            except ValidationError as exc:
                issues.pydantic(exc, ("analysis",), node, source.name(""), Plan, note)
    if plans and info is not None and plans[0].version != info.version:
        issues.add(Issue(source.origins[("analysis",)].file, "version",
                         f"must be the protocol's version {info.version!r}"))
    if issues.items or None in (info, privacy, monitoring, contract):
        raise ProtocolError(issues.items or [Issue(source.name(""), "", "cannot be loaded")])
    return Protocol(
        root=source.root, info=info, contract=contract, privacy=privacy, monitoring=monitoring,
        plans=tuple(plans), amendments=tuple(ordered), contract_version=contract_version,
        source=source, nodes=nodes, contracts=contracts,
    )


def _amendment_names(source: Source, extra_files: Sequence[Path]) -> list[tuple[Path, str]]:
    shipped = [(p, source.name(f"amendments/{p.name}")) for p in amendment_files(source.root)]
    extra = [(p, str(p)) for p in extra_files
             if p.resolve() not in {q.resolve() for q, _ in shipped}]
    return shipped + extra


def _nodes(base: VersionNode, ordered: list[Amendment], issues: _Issues) -> dict[str, VersionNode]:
    """Each version's trees: its base's with its own changes merged in."""
    nodes = {base.version: base}
    for a in ordered:
        parent = nodes[a.extends]
        origins = dict(parent.origins)
        found: list[Issue] = []
        contract_tree = parent.contract_tree
        if a.header.contract:
            contract_tree = merge(parent.contract_tree, a.header.contract, ("contract",),
                                  origins, a.file, found)
        analysis_tree = parent.analysis_tree
        if a.header.analysis:
            analysis_tree = merge(parent.analysis_tree, a.header.analysis, ("analysis",),
                                  origins, a.file, found)
            header = {"version": a.version, "extends": a.extends,
                      "effective_date": a.header.effective_date, "rationale": a.header.rationale}
            if "title" not in a.header.analysis:
                header["title"] = a.plan_title
            if isinstance(analysis_tree, dict):
                analysis_tree = {**analysis_tree, **header}
            for key in header:  # the plan's header keys come from the amendment's header
                written = "rationale" if key == "title" and not a.header.title else key
                origins[("analysis", key)] = Origin(a.file, (written,))
        for issue in found:
            issues.add(issue)
        nodes[a.version] = VersionNode(a.version, contract_tree, analysis_tree, origins, a)
    return nodes


def _contracts(nodes: dict[str, VersionNode], source: Source,
               issues: _Issues) -> tuple[dict[str, Contract], str]:
    """Each version's validated contract, and the version whose contract is in force.

    The contract in force must be one: every amendment that changes the contract must be
    built on the ones before it (one chain); the last of them is in force.
    """
    base_version = next(iter(nodes))
    amendments = {v: n.amendment for v, n in nodes.items() if n.amendment is not None}
    changing = [v for v, n in nodes.items() if n.changes_contract]
    for i, a in enumerate(changing):
        for b in changing[i + 1:]:
            if a not in ancestors(b, amendments) and b not in ancestors(a, amendments):
                issues.add(Issue(
                    amendments[b].file, "contract",
                    f"{a} ({amendments[a].file}) and {b} both change the contract, but "
                    f"neither extends the other; the contract in force must be one: make "
                    f"{b} extend {a}",
                ))
    in_force = max(changing, key=lambda v: len(ancestors(v, amendments)), default=base_version)
    contracts: dict[str, Contract] = {}
    for version, node in nodes.items():
        if version != base_version and not node.changes_contract:
            own = next(v for v in ancestors(version, amendments)
                       if v == base_version or nodes[v].changes_contract)
            if own in contracts:
                contracts[version] = contracts[own]
            continue
        contract = _validated_contract(node, source, issues)
        if contract is not None:
            contracts[version] = contract
    return contracts, in_force


def _validated_contract(node: VersionNode, source: Source,
                        issues: _Issues) -> Contract | None:
    try:
        contract = Contract.model_validate(node.contract_tree)
    except ValidationError as exc:
        issues.pydantic(exc, ("contract",), node, source.name(""), Contract)
        return None
    findings = contract_findings(contract)
    issues.findings(findings, node, source.name(""))
    return None if findings else contract
