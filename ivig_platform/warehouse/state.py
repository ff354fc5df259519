"""What the last published refresh was made from, to skip a refresh that would change nothing.

A nightly refresh usually finds the same inbox as the night before. Starting Prefect,
dbt and the gates only to rebuild an identical file costs tens of seconds; comparing a
fingerprint of the inbox (file names, sizes, modification times), of the platform's own
code, dbt project, suites and protocol (file bytes, also where `IVIG_PROTOCOL_DIR`,
`IVIG_EXPECTATIONS_DIR` or `IVIG_DBT_PROJECT_DIR` put them, and amendment files given at
run time), of the libraries (the versions of the platform's dependencies and the bytes of
`uv.lock`, which the environment is synced from) and of the key with the one recorded at
the last publish costs milliseconds. Any difference — a new delivery, a touched file, a
code, library, protocol or key change — runs the full refresh, whose derived cache keys
(landing, gate, dbt: ivig_platform/fingerprints.py) then decide what really needs redoing.

The state describes the file it was computed for (size and modification time of
`ivig.duckdb` right after the publish): after `ivig rollback` puts an older file
in place, or anyone replaces it, the published file is not the one the state speaks of,
and the next refresh runs instead of saying "nothing changed".
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from ivig_platform import fingerprints
from ivig_platform.warehouse.publish import PUBLISHED_NAME

STATE_FILE = "_last_refresh.json"
PUBLISHED_KEY = "published_file"
# The entries of `current_state` that describe the inbox rather than how a file is built
# from it: an incremental build (warehouse/changes.py) may differ from the published one in
# these and nothing else.
INBOX_ENTRIES = frozenset({"inbox", "inbox_fingerprint"})
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
CODE_FOLDERS = ("ivig_platform", "flows", "dbt_project", "expectations", "protocol")
CODE_SUFFIXES = {".py", ".sql", ".yml", ".yaml", ".csv", ".json", ".md"}
# Folders the environment may move out of the repository (protocol.load.ENV_VARIABLE,
# quality.registry, modeling.dbt_build; named here, not imported: the protocol's loader
# imports pydantic, and this check must stay instant).
FOLDER_VARIABLES = ("IVIG_PROTOCOL_DIR", "IVIG_EXPECTATIONS_DIR", "IVIG_DBT_PROJECT_DIR")
DISTRIBUTION = "ivig-platform"
LOCK_FILE = "uv.lock"
_REQUIREMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def inbox_fingerprint(inbox: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in inbox.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(inbox)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def code_fingerprint(root: Path | None = None) -> str:
    """The bytes of the code, dbt project, suites and protocol under `root` (default: the
    folder holding the package, `fingerprints.PACKAGE_DIR`)."""
    root = root or fingerprints.PACKAGE_DIR.parent
    digest = hashlib.sha256()
    for folder in CODE_FOLDERS:
        for part in _folder_bytes(root / folder, root):
            digest.update(part)
    return digest.hexdigest()


def _folder_bytes(folder: Path, root: Path) -> Iterator[bytes]:
    """Each source file's path (relative to `root`) and bytes, in a fixed order."""
    for path in sorted(folder.rglob("*")):
        if path.suffix in CODE_SUFFIXES and path.is_file() and not _is_generated(path, root):
            yield str(path.relative_to(root)).encode() + b"\0"
            yield path.read_bytes()


def _is_generated(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    return "target" in parts or "logs" in parts or "__pycache__" in parts


def configuration_fingerprint(amendments: Sequence[Path] = ()) -> str:
    """The folders the environment points elsewhere, and amendment files given at run time."""
    digest = hashlib.sha256()
    for variable in FOLDER_VARIABLES:
        value = os.environ.get(variable)
        if value:
            folder = Path(value).resolve()
            digest.update(f"{variable}={folder}\0".encode())
            for part in _folder_bytes(folder, folder):
                digest.update(part)
    for file in amendments:
        path = Path(file).resolve()
        digest.update(f"amendment {path}\0".encode() + path.read_bytes() + b"\0")
    return digest.hexdigest()


def dependency_names() -> list[str]:
    """The platform's runtime dependencies (from its installed metadata) and the libraries
    the caches name (fingerprints.RECIPES)."""
    names = {lib for recipe in fingerprints.RECIPES.values() for lib in recipe.libraries}
    try:
        requirements = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:  # run from a bare checkout
        requirements = []
    for requirement in requirements:
        match = _REQUIREMENT_NAME.match(requirement)
        if match and "extra ==" not in requirement:
            names.add(match.group(0).lower())
    return sorted(names)


def library_fingerprint(root: Path | None = None) -> str:
    """The versions of the dependencies and the bytes of `uv.lock` beside the package."""
    lock = (root or fingerprints.PACKAGE_DIR.parent) / LOCK_FILE
    return fingerprints.digest({
        "versions": fingerprints.library_versions(dependency_names()),
        "lock": hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else None,
    })


def current_state(inbox: Path, key_fingerprint: str, settle_seconds: float, *,
                  amendments: Sequence[Path] = ()) -> dict[str, str]:
    """What a publish is made from, as far as it can be told in milliseconds.

    `amendments`: protocol amendment files given at run time (`--plan`)."""
    return {
        "inbox": str(inbox.resolve()),
        "inbox_fingerprint": inbox_fingerprint(inbox),
        "code_fingerprint": code_fingerprint(),
        "configuration_fingerprint": configuration_fingerprint(amendments),
        "library_fingerprint": library_fingerprint(),
        "key_fingerprint": key_fingerprint,
        "settle_seconds": str(float(settle_seconds)),  # 0 and 0.0 are the same setting
    }


def read_state(warehouse: Path) -> dict[str, str] | None:
    path = warehouse / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else None


def published_identity(warehouse: Path) -> str | None:
    """Which file is published now: size and modification time (nanoseconds).

    Each build writes its file at its own moment, so a publish or a rollback changes
    this; a copy of the warehouse that keeps times (`cp -a`, a restored backup) does not,
    and is rightly still "unchanged". (The inode would not survive such a copy.)
    """
    from ivig_platform.warehouse.lake import current, lake_of

    lake = lake_of(warehouse)
    if lake is not None:  # a lake: its publication row (a rollback appends one too)
        published = current(lake)
        return None if published is None else f"lake:{published.seq}:{published.snapshot}"
    try:
        stat = (warehouse / PUBLISHED_NAME).stat()
    except FileNotFoundError:
        return None
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def write_state(warehouse: Path, state: dict[str, str]) -> None:
    """Record `state` as what the file published right now was built from."""
    path = warehouse / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**state, PUBLISHED_KEY: published_identity(warehouse)},
                              indent=2))
    tmp.replace(path)


def is_unchanged(warehouse: Path, state: dict[str, str]) -> bool:
    """True when the published file is the one built from exactly this inbox, code and key."""
    identity = published_identity(warehouse)
    return identity is not None and read_state(warehouse) == {**state, PUBLISHED_KEY: identity}
