"""`ivig doctor`: is this machine ready for a refresh of this warehouse? (as `dbt debug` is)

Each check gives one line: what it found and, when it is not fine, what to do. A `fail`
is something a refresh would stop on (or would do wrong: a library version other than the
lock's); a `warn` is worth knowing but blocks nothing; `skip` is a check that does not
apply to this configuration. Checks only look: nothing is created, removed or changed
(a stale build folder is reported, the next refresh removes it). Cell values are never
read and the key is shown only by its fingerprint.

Where the pieces come from: the key fingerprint is the one landing records in every
manifest (`warehouse/keys.py` refuses another key); the space needed is the estimate a
disk-full failure reports (`warehouse/disk.py`); the lock is the run lock's flock
(`warehouse/run_lock.py`); versions are compared with `uv.lock` beside the package.
Chromium is used only by the page tests (the report's charts are rendered by
vl-convert), and PostgreSQL only by a warehouse kept in a lake (`WAREHOUSE/lake.json`,
warehouse/lake.py): there its catalog must answer; elsewhere it is reported, and does not
block.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import os
import shutil
import sys
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ivig_platform import fingerprints
from ivig_platform.landing.manifest import read_manifest
from ivig_platform.landing.pseudonym import (
    KEY_VARIABLE,
    MissingKeyError,
    key_fingerprint,
    load_key,
)
from ivig_platform.warehouse.disk import estimate_space, folder_size, human
from ivig_platform.warehouse.publish import BUILD_DIR
from ivig_platform.warehouse.run_lock import lock_path, read_holder

Status = Literal["ok", "warn", "fail", "skip"]


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f" -> {self.fix}" if self.fix and self.status in ("fail", "warn") else ""
        return f"[{self.status.upper():>4}] {self.check:<12} {self.detail}{fix}"


def blocks_refresh(findings: list[Finding]) -> bool:
    return any(f.status == "fail" for f in findings)


# --------------------------------------------------------------------------- versions


def _lock(root: Path) -> dict | None:
    try:
        return tomllib.loads((root / "uv.lock").read_text())
    except (OSError, ValueError):
        return None


def check_python(lock: dict | None, version: tuple[int, ...] | None = None) -> Finding:
    from packaging.specifiers import SpecifierSet

    running = ".".join(map(str, (version or sys.version_info)[:3]))
    if lock is None or "requires-python" not in lock:
        return Finding("python", "skip", f"{running} (no uv.lock beside the package)")
    wanted = lock["requires-python"]
    if running in SpecifierSet(wanted):
        return Finding("python", "ok", f"{running} (uv.lock: {wanted})")
    return Finding("python", "fail", f"{running}, uv.lock needs {wanted}",
                   "run with a Python the lock allows (bash deploy/bootstrap.sh sets it up)")


def _installed() -> dict[str, str]:
    versions = {}
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        versions.setdefault(name, dist.version)
    return versions


def check_libraries(lock: dict | None, installed: Mapping[str, str] | None = None,
                    required: set[str] | None = None) -> Finding:
    """Every locked package that is installed has the lock's version; the platform's own
    dependencies are all installed. (Dev-only packages may be absent.)"""
    if lock is None:
        return Finding("libraries", "skip", "no uv.lock beside the package: versions unchecked")
    installed = _installed() if installed is None else installed
    if required is None:
        from ivig_platform.warehouse.state import dependency_names

        required = set(dependency_names())
    wrong, missing = [], []
    for package in lock.get("package", []):
        name, locked = package["name"], package.get("version")
        if locked is None or package.get("source", {}).get("editable"):
            continue
        have = installed.get(name)
        if have is None:
            if name in required:
                missing.append(name)
        elif have != locked:
            wrong.append(f"{name} {have} (lock {locked})")
    if wrong or missing:
        parts = ([f"{len(wrong)} differ: {', '.join(wrong[:5])}"] if wrong else []) + (
            [f"missing: {', '.join(missing[:5])}"] if missing else [])
        return Finding("libraries", "fail", "; ".join(parts),
                       "run `uv sync --frozen` (bash deploy/bootstrap.sh does it)")
    return Finding("libraries", "ok", f"{len(installed)} installed, all at uv.lock's versions")


# --------------------------------------------------------------------------- key


def landed_key_fingerprints(warehouse: Path) -> set[str]:
    """The key fingerprints the warehouse's landed deliveries were pseudonymised with."""
    found = set()
    for folder in (warehouse / "landing").glob("site=*/delivery=*"):
        manifest = read_manifest(folder) if folder.is_dir() else None
        if manifest is not None and manifest.status == "landed":
            found.add(manifest.key_fingerprint)
    return found


def check_key(warehouse: Path) -> Finding:
    try:
        key = load_key()
    except MissingKeyError as exc:
        return Finding("key", "fail", str(exc).split(":")[0],
                       f"set {KEY_VARIABLE} to the study's key (the coordinating centre has it)")
    mine = key_fingerprint(key)
    landed = landed_key_fingerprints(warehouse)
    if not landed:
        return Finding("key", "ok", f"fingerprint {mine}; nothing landed yet with any key")
    if landed == {mine}:
        return Finding("key", "ok", f"fingerprint {mine}, the warehouse's")
    others = ", ".join(sorted(landed - {mine}))
    return Finding("key", "fail", f"fingerprint {mine}, but the warehouse was landed with "
                   f"{others}", "use the study's key, or re-key on purpose: ivig refresh --rekey")


# --------------------------------------------------------------------------- warehouse


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(warehouse: Path) -> Finding:
    """Writable by trying (a root user passes any permission test but a read-only mount)."""
    where = warehouse if warehouse.exists() else _nearest_existing(warehouse)
    if not where.is_dir():
        return Finding("warehouse", "fail", f"{where} is not a folder",
                       "give --warehouse a folder path")
    try:
        tempfile.TemporaryDirectory(dir=where, prefix=".doctor-").cleanup()
    except OSError as exc:
        return Finding("warehouse", "fail", f"cannot write in {where} ({exc.strerror})",
                       "fix the folder's permissions or mount, or choose another --warehouse")
    made = "" if warehouse.exists() else " (a refresh creates the folder)"
    return Finding("warehouse", "ok", f"{warehouse} writable{made}")


def check_space(warehouse: Path, reclaimable: int = 0) -> Finding:
    """Free space against the last run's needs (stale build folders count as free: the
    refresh removes them before it starts)."""
    try:
        estimate = estimate_space(_nearest_existing(warehouse))
    except OSError as exc:
        return Finding("space", "fail", f"free space unknown ({exc.strerror})",
                       "check the warehouse's file system")
    free = estimate.free + reclaimable
    if estimate.needed == 0:
        return Finding("space", "ok", f"{human(free)} free (no earlier run to size a run from)")
    line = (f"{human(free)} free, a run needs about {human(estimate.needed)} (last build "
            f"{human(estimate.build)} + landing {human(estimate.landing)})")
    if free < estimate.needed:
        return Finding("space", "fail", line, f"free {human(estimate.needed - free)} on "
                       f"{estimate.where}'s disk, or move the warehouse")
    return Finding("space", "ok", line)


def check_lock(warehouse: Path) -> Finding:
    path = lock_path(warehouse)
    if not path.is_file():
        return Finding("lock", "ok", "no refresh holds the warehouse (no lock file yet)")
    try:
        handle = path.open("r")
    except OSError as exc:
        return Finding("lock", "fail", f"{path} cannot be opened ({exc.strerror})",
                       "fix its permissions: every refresh takes this lock")
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = read_holder(warehouse)
            return Finding("lock", "fail", f"a {holder.command} holds the warehouse "
                           f"({holder.describe()})", "wait for it (ivig refresh --wait "
                           "SECONDS) or stop that process")
        fcntl.flock(handle, fcntl.LOCK_UN)
    holder = read_holder(warehouse)
    left = f" (left by pid {holder.pid}, which has ended)" if holder.pid else ""
    return Finding("lock", "ok", f"free{left}")


def stale_build_folders(warehouse: Path) -> list[Path]:
    builds = warehouse / BUILD_DIR
    return sorted(builds.iterdir()) if builds.is_dir() else []


def check_build_folders(warehouse: Path, lock: Finding) -> Finding:
    folders = stale_build_folders(warehouse)
    if not folders:
        return Finding("builds", "ok", "no build folders left by ended runs")
    size = human(sum(folder_size(f) for f in folders))
    if lock.status == "fail":
        return Finding("builds", "ok", f"{len(folders)} build folder(s), {size}: the running "
                       "refresh's")
    return Finding("builds", "warn", f"{len(folders)} build folder(s) of ended runs, {size} "
                   f"({', '.join(f.name for f in folders[:3])})",
                   "nothing to do: the next refresh removes them before it starts")


# --------------------------------------------------------------------------- services


def check_prefect(warehouse: Path) -> Finding:
    from ivig_platform.orchestration.processes import api_is_healthy
    from ivig_platform.orchestration.temporary_server import DATABASE_NAME, database_problem

    url = os.environ.get("PREFECT_API_URL", "")
    if url:
        if api_is_healthy(url):
            return Finding("prefect", "ok", f"API at {url} is healthy")
        return Finding("prefect", "fail", f"API at {url} does not answer /health",
                       "start that server, or unset PREFECT_API_URL to use a temporary one")
    home = Path(os.environ.get("PREFECT_HOME") or warehouse / ".prefect")
    problem = database_problem(home / DATABASE_NAME)
    if problem:
        return Finding("prefect", "warn", f"temporary server; its database {problem}",
                       "nothing to do: the refresh moves it aside (local run history lost)")
    return Finding("prefect", "ok", f"PREFECT_API_URL not set: a temporary server will be "
                   f"used (database under {home})")


def check_chromium(which: Callable[[str], str | None] = shutil.which) -> Finding:
    found = which("chromium") or which("chromium-browser")
    if found:
        return Finding("chromium", "ok", f"{found} (only the page tests use it)")
    return Finding("chromium", "skip", "not installed; no refresh needs it (only the page tests)")


def check_postgresql(warehouse: Path) -> Finding:
    """A lake warehouse's catalog must answer (with the password libpq finds)."""
    from ivig_platform.warehouse.lake import LakeError, current, lake_of

    lake = lake_of(warehouse)
    if lake is None:
        return Finding("postgresql", "skip", "not used (a single-file warehouse, no lake.json)")
    try:
        published = current(lake)
    except LakeError as exc:
        return Finding("postgresql", "fail", str(exc),
                       "start the catalog's PostgreSQL, or set PGPASSWORD / ~/.pgpass for it")
    what = published.describe() if published else "nothing published yet"
    return Finding("postgresql", "ok", f"lake catalog {lake.catalog} answers: {what}")


def check_inbox(inbox: Path | None) -> Finding:
    from ivig_platform.landing.discovery import discover_settled

    if inbox is None:
        return Finding("inbox", "skip", "no --inbox given")
    try:
        found = discover_settled(inbox, 0)
    except FileNotFoundError:
        return Finding("inbox", "fail", f"{inbox} does not exist or is not a folder",
                       "give --inbox the folder of <site_id>/<delivery_id>/ deliveries")
    except OSError as exc:
        return Finding("inbox", "fail", f"{inbox} cannot be read ({exc.strerror})",
                       "let the refresh's user read it")
    if not found.ready and not found.waiting:
        return Finding("inbox", "warn", f"{inbox} readable but holds no deliveries",
                       "check the path: a warehouse with nothing landed publishes nothing")
    waiting = f", {len(found.waiting)} still being written" if found.waiting else ""
    issues = f", {len(found.issues)} folder(s) that are not site ids" if found.issues else ""
    return Finding("inbox", "warn" if found.issues else "ok",
                   f"{inbox} readable: {len(found.ready)} delivery folder(s){waiting}{issues}",
                   "rename those folders to the site ids (they are not read)")


# --------------------------------------------------------------------------- all


def diagnose(warehouse: Path, inbox: Path | None = None) -> list[Finding]:
    """Every check, in the order a refresh meets them (environment variables as set now)."""
    warehouse = Path(warehouse)
    lock = _lock(fingerprints.PACKAGE_DIR.parent)
    held = check_lock(warehouse)
    builds = stale_build_folders(warehouse)
    stale = 0 if held.status == "fail" else sum(folder_size(f) for f in builds)
    return [
        check_python(lock),
        check_libraries(lock),
        check_key(warehouse),
        check_writable(warehouse),
        check_space(warehouse, reclaimable=stale),
        held,
        check_build_folders(warehouse, held),
        check_prefect(warehouse),
        check_chromium(),
        check_postgresql(warehouse),
        check_inbox(inbox),
    ]
