"""What produced a cached result: fingerprints of the code, the libraries and the protocol.

The platform skips work it has done before: landing by a delivery's content, gate
verdicts by their key, dbt's saved parse, the whole refresh when nothing changed. A skip
is only as good as its key, and a key that a person must remember to bump (landing's
hand-kept `LANDING_VERSION`) goes stale the day someone forgets. So every key is derived
from everything that can change its result, computed at run time:

- **the code**: the source of the package folders that produce the result and of every
  module of the package they import, transitively (`code_hash`). Each module counts by its
  syntax tree without docstrings, so comments, docstrings and layout do not invalidate a
  cache while any change to what runs does; the Python version counts too. Imports are
  followed as written (`import`/`from … import`, also inside functions); a module loaded
  by name at run time is covered only through the folders a recipe names.
- **the libraries**: the installed versions of the distributions involved
  (`importlib.metadata`).
- **the protocol**: the fingerprint of the effective contract (landing) or of the contract
  and every plan in force (the gate, dbt), from `ivig_platform.protocol`.

The inputs (a delivery's content, a verdict's drift references, dbt's project files and
vars) are added by each cache. A `Recipe` names the parts of one cache; `LANDING`, `GATE`
and `DBT` are the platform's. Code hashes and versions are computed once per process (a
library's version cannot change under a running process); `clear_caches()` forgets them,
for tests that change them.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import json
import platform
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ivig_platform.protocol.load import Protocol

PACKAGE = "ivig_platform"
#: The package's source folder; a test may point it at a modified copy.
PACKAGE_DIR = Path(__file__).resolve().parent
NOT_INSTALLED = "not installed"

ProtocolPart = Literal["contract", "contract+plans"]

_lock = threading.Lock()
# Python 3.11's `ast` keeps its recursion-depth bookkeeping in state shared by all threads:
# two threads parsing at once can fail with "SystemError: AST constructor recursion depth
# mismatch" (CPython gh-106905, fixed in 3.12.x/3.13). Sites land in parallel threads and
# each asks for landing's fingerprint, so parsing is serialised, and one thread computes a
# code hash while the others wait for it.
_parse_lock = threading.Lock()
_compute_lock = threading.RLock()
_code_hashes: dict[tuple[Path, tuple[str, ...]], str] = {}
_modules: dict[Path, tuple[frozenset[str], str]] = {}
_versions: dict[str, str] = {}
_protocol_parts: dict[tuple[int, str], tuple[Any, str]] = {}


def clear_caches(what: Iterable[str] = ("code", "versions", "protocol")) -> None:
    """Forget the code hashes, library versions and/or protocol fingerprints computed so far."""
    with _lock:
        if "code" in what:
            _code_hashes.clear()
            _modules.clear()
        if "versions" in what:
            _versions.clear()
        if "protocol" in what:
            _protocol_parts.clear()


def digest(value: Any) -> str:
    """sha256 of a JSON value in canonical form (sorted keys, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- code


def _module_file(root: Path, module: str) -> Path | None:
    """The source file of a package module (`ivig_platform.a.b`), if it is one."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = root.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _with_parents(root: Path, module: str) -> list[Path]:
    """A module's file and its packages' `__init__.py` (importing it runs them all)."""
    parts = module.split(".")
    files = [_module_file(root, ".".join(parts[:i])) for i in range(1, len(parts) + 1)]
    return [f for f in files if f is not None]


def _imported_modules(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """The modules an import statement anywhere in `tree` may load (relative ones resolved)."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                base = node.module or ""
            found.add(base)
            # `from package import module` imports a submodule, not only a name
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name == PACKAGE or name.startswith(PACKAGE + ".")}


def _without_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PACKAGE, *parts))


def _read_module(root: Path, path: Path) -> tuple[frozenset[str], str]:
    """A module file's package imports and the digest of its docstring-free syntax tree;
    read once per process (the code a process runs is the code it imported)."""
    with _lock:
        known = _modules.get(path)
    if known is not None:
        return known
    source = path.read_bytes()
    with _parse_lock:
        tree = ast.parse(source, filename=str(path))
    imports = frozenset(_imported_modules(tree, _module_name(root, path),
                                          path.name == "__init__.py"))
    value = (imports, hashlib.sha256(ast.dump(_without_docstrings(tree)).encode()).hexdigest())
    with _lock:
        _modules[path] = value
    return value


def source_closure(folders: Iterable[str], root: Path | None = None) -> dict[Path, str]:
    """Every module file under the package `folders` and every package module they import,
    transitively, with the digest of its syntax tree (docstrings removed)."""
    root = root or PACKAGE_DIR
    pending: list[Path] = []
    for folder in folders:
        base = root / folder
        pending += sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
    seen: dict[Path, str] = {}
    while pending:
        path = pending.pop()
        if path in seen or not path.is_file() or "__pycache__" in path.parts:
            continue
        imports, seen[path] = _read_module(root, path)
        pending += _with_parents(root, _module_name(root, path))  # its packages run first
        for name in imports:
            pending += _with_parents(root, name)
    return seen


def code_hash(folders: Iterable[str], root: Path | None = None) -> str:
    """sha256 of the code behind `folders` (see the module docstring); once per process."""
    root = (root or PACKAGE_DIR).resolve()
    key = (root, tuple(sorted(folders)))
    with _compute_lock:
        with _lock:
            known = _code_hashes.get(key)
        if known is not None:
            return known
        hasher = hashlib.sha256(f"python {platform.python_version()}\0".encode())
        for path, module_digest in sorted(source_closure(key[1], root).items()):
            hasher.update(f"{path.relative_to(root).as_posix()}\0{module_digest}\0".encode())
        value = hasher.hexdigest()
        with _lock:
            _code_hashes[key] = value
        return value


# --------------------------------------------------------------------------- libraries


def library_version(name: str) -> str:
    """The installed version of a distribution (`NOT_INSTALLED` if absent); once per process."""
    with _lock:
        known = _versions.get(name)
    if known is not None:
        return known
    try:
        value = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        value = NOT_INSTALLED
    with _lock:
        _versions[name] = value
    return value


def library_versions(names: Iterable[str]) -> dict[str, str]:
    return {name: library_version(name) for name in sorted(names)}


# --------------------------------------------------------------------------- protocol


def protocol_fingerprint(part: ProtocolPart, protocol: Protocol | None = None) -> str:
    """The fingerprint of the protocol `part` in force (default: `load_protocol()`).

    `contract`: the effective contract with the pseudonymisation (what landing applies);
    `contract+plans`: that and the fingerprint of every plan in force, in order.
    """
    if protocol is None:
        from ivig_platform.protocol.load import load_protocol

        protocol = load_protocol()
    key = (id(protocol), part)
    with _lock:
        known = _protocol_parts.get(key)
    if known is not None and known[0] is protocol:
        return known[1]
    if part == "contract":
        value = protocol.contract_fingerprint
    else:
        from ivig_platform.protocol.load import plan_fingerprint

        value = digest({"contract": protocol.contract_fingerprint,
                        "plans": [[p.version, plan_fingerprint(p)] for p in protocol.plans]})
    with _lock:
        if len(_protocol_parts) > 32:  # protocols with run-time amendments come and go
            _protocol_parts.clear()
        _protocol_parts[key] = (protocol, value)  # the object is kept: its id stays its own
    return value


# --------------------------------------------------------------------------- recipes


@dataclass(frozen=True)
class Recipe:
    """What one cache's results depend on, besides its own inputs."""

    name: str
    code: tuple[str, ...]  # package folders (relative to ivig_platform/)
    libraries: tuple[str, ...]  # distributions
    protocol: ProtocolPart

    def parts(self, protocol: Protocol | None = None) -> dict[str, Any]:
        """The fingerprint's parts, for the record (a manifest says what landed it)."""
        return {
            "code": code_hash(self.code),
            "libraries": library_versions(self.libraries),
            "protocol": protocol_fingerprint(self.protocol, protocol),
        }

    def fingerprint(self, protocol: Protocol | None = None) -> str:
        return digest({"recipe": self.name, **self.parts(protocol)})


#: Landing: readers, rules, pseudonyms (and the protocol loader they import).
LANDING = Recipe("landing", ("landing",), ("polars", "fastexcel", "pyarrow"), "contract")
#: The landing gate's verdicts: the gate's code, GX and the frames it is fed.
GATE = Recipe("gate", ("quality",), ("great-expectations", "pandas", "polars"),
              "contract+plans")
#: dbt's saved parse: the code that drives dbt, dbt itself and its adapter.
DBT = Recipe("dbt", ("modeling",), ("dbt-core", "dbt-duckdb", "duckdb"), "contract+plans")
RECIPES: Mapping[str, Recipe] = {r.name: r for r in (LANDING, GATE, DBT)}
