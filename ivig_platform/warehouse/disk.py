"""A full disk, recognised wherever it surfaces, and said in numbers.

`ENOSPC` reaches the refresh as an `OSError` from Python, as a `duckdb.IOException`
("No space left on device"), or as text in dbt's or Prefect's errors; all of them mean
the same to the operator: where the disk is full, how much the run needs, how much is
free. The need is an estimate from what the last run left: the published file, its
report and docs (the next build is about that size; or what this run had built when
it failed, if that is more) plus the landing (a run may land every delivery again, e.g.
after a code or key change).

A full disk does not always surface as ENOSPC: Prefect's temporary server keeps its
database under the warehouse, and when it cannot write, the refresh only sees
`500 Internal Server Error` on `…/set_state`. That is what the next attempt after a
disk-full run used to print, with the dead run's build folder still filling the disk;
so a failure on a disk with less free space than the estimate says so as well.
"""

from __future__ import annotations

import errno
import shutil
from dataclasses import dataclass
from pathlib import Path

DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
DISK_FULL_TEXT = ("no space left on device", "disk quota exceeded", "database or disk is full")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        pending += [current.__cause__, current.__context__]
        if isinstance(current, BaseExceptionGroup):
            pending += list(current.exceptions)
    return seen


def disk_full_error(exc: BaseException) -> BaseException | None:
    """The exception in `exc`'s chain that says the disk is full, if any."""
    for candidate in _chain(exc):
        if isinstance(candidate, OSError) and candidate.errno in DISK_FULL_ERRNOS:
            return candidate
    for candidate in _chain(exc):
        if any(text in str(candidate).lower() for text in DISK_FULL_TEXT):
            return candidate
    return None


def folder_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for entry in path.rglob("*") if path.is_dir() else ():
        try:
            if entry.is_file() and not entry.is_symlink():
                total += entry.stat().st_size
        except OSError:
            continue
    return total


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"  # pragma: no cover - the loop returns in GB at the latest


@dataclass(frozen=True)
class SpaceEstimate:
    last_build: int
    this_build: int
    landing: int
    free: int
    where: Path

    @property
    def build(self) -> int:
        return max(self.last_build, self.this_build)

    @property
    def needed(self) -> int:
        return self.build + self.landing

    @property
    def short(self) -> bool:
        return self.free < self.needed

    def describe(self, what: str = "disk full") -> str:
        build = (f"last build {human(self.last_build)}" if self.last_build >= self.this_build
                 else f"this run's build so far {human(self.this_build)}")
        return (f"{what} at {self.where}: the run needs about {human(self.needed)} "
                f"({build} + landing {human(self.landing)}), {human(self.free)} free")


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def estimate_space(warehouse: Path, failed_path: str | None = None,
                   run_dir: Path | None = None) -> SpaceEstimate:
    """What a run of `warehouse` needs and what is free where it failed (default: there)."""
    warehouse = Path(warehouse)
    last = sum(folder_size(warehouse / name) for name in ("ivig.duckdb", "report.html", "docs"))
    where = Path(failed_path) if failed_path else warehouse
    free = shutil.disk_usage(_existing(where)).free
    return SpaceEstimate(last, folder_size(run_dir) if run_dir else 0,
                         folder_size(warehouse / "landing"), free, where)


def describe_disk_full(exc: BaseException, warehouse: Path,
                       run_dir: Path | None = None) -> str | None:
    """One line for a failure on a full disk, or None when the disk is not the cause."""
    full = disk_full_error(exc)
    failed = getattr(full, "filename", None)
    failed_path = str(failed) if isinstance(failed, str | Path) else None
    try:
        estimate = estimate_space(warehouse, failed_path, run_dir)
    except OSError:
        return (f"disk full at {failed_path or warehouse} (free space could not be measured)"
                if full is not None else None)
    if full is not None:
        return estimate.describe()
    if estimate.short:  # e.g. Prefect's server could not write its database: a 500
        return estimate.describe("too little disk space")
    return None
