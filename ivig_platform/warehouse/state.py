"""What the last published refresh was made from, to skip a refresh that would change nothing.

A nightly refresh usually finds the same inbox as the night before. Starting Prefect,
dbt and the gates only to rebuild an identical file costs tens of seconds; comparing a
fingerprint of the inbox (file names, sizes, modification times) and of the platform's
own code with the one recorded at the last publish costs milliseconds. Any difference —
a new delivery, a touched file, a code or key change — runs the full refresh, whose
per-delivery content hashes then decide what really needs landing.

The state describes the file it was computed for (size and modification time of
`ivig.duckdb` right after the publish): after `ivig rollback` puts an older file
in place, or anyone replaces it, the published file is not the one the state speaks of,
and the next refresh runs instead of saying "nothing changed".
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ivig_platform.warehouse.publish import PUBLISHED_NAME

STATE_FILE = "_last_refresh.json"
PUBLISHED_KEY = "published_file"
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
CODE_FOLDERS = ("ivig_platform", "flows", "dbt_project", "expectations", "protocol")
CODE_SUFFIXES = {".py", ".sql", ".yml", ".yaml", ".csv", ".json", ".md"}


def inbox_fingerprint(inbox: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in inbox.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(inbox)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def code_fingerprint(root: Path = PACKAGE_ROOT) -> str:
    digest = hashlib.sha256()
    for folder in CODE_FOLDERS:
        for path in sorted((root / folder).rglob("*")):
            if path.suffix in CODE_SUFFIXES and path.is_file() and not _is_generated(path, root):
                digest.update(str(path.relative_to(root)).encode() + b"\0")
                digest.update(path.read_bytes())
    return digest.hexdigest()


def _is_generated(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    return "target" in parts or "logs" in parts or "__pycache__" in parts


def current_state(inbox: Path, key_fingerprint: str, settle_seconds: float) -> dict[str, str]:
    return {
        "inbox": str(inbox.resolve()),
        "inbox_fingerprint": inbox_fingerprint(inbox),
        "code_fingerprint": code_fingerprint(),
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
