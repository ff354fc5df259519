"""Where a landing is written before it is in place, and how it is put there.

Every call stages into a folder of its own (`delivery=X.partial-<uuid>`), so two
refreshes landing the same delivery never write into, or delete, each other's files. The
finished folder is swapped in by renames: the landing in place (if any) is renamed aside
(`delivery=X.replaced-<uuid>`), the new one renamed in, the old one removed. A process
killed between the two renames leaves the old landing aside; `recover` in land.py puts it
back when nothing took its place.
"""

from __future__ import annotations

import errno
import re
import shutil
import uuid
from pathlib import Path

PARTIAL = "partial"  # a landing being written
REPLACED = "replaced"  # a landing moved aside by a swap
# `<target>.<kind>-<32 hex>`: the target is the delivery folder the temporary one is for;
# `<target>.partial` is the one staging folder landing version 1 used for every call.
TEMPORARY = re.compile(
    rf"^(?P<target>.+)\.(?:(?P<kind>{PARTIAL}|{REPLACED})-[0-9a-f]{{32}}|{PARTIAL})$"
)
# How often a swap retries when another lander's copy appears between its two renames.
SWAP_ATTEMPTS = 10


def temporary_name(target: Path, kind: str) -> Path:
    return target.with_name(f"{target.name}.{kind}-{uuid.uuid4().hex}")


def new_staging(target: Path) -> Path:
    """An empty folder, unique to this call, beside the delivery's landing folder."""
    staging = temporary_name(target, PARTIAL)
    staging.mkdir(parents=True)
    return staging


def temporary_target(folder: Path) -> tuple[str, str] | None:
    """(kind, target folder name) of a staging or set-aside folder; None for any other."""
    match = TEMPORARY.match(folder.name)
    return (match["kind"] or PARTIAL, match["target"]) if match else None


def swap_into_place(staging: Path, target: Path) -> None:
    """Make `staging` the delivery's landing folder, replacing whatever was there.

    Two landers may swap at once: a rename onto a folder another lander has just put in
    place fails (not empty), so the loop moves that one aside too and tries again. The
    last lander wins; both landed the same content, completely.
    """
    for _ in range(SWAP_ATTEMPTS):
        aside = temporary_name(target, REPLACED)
        try:
            target.rename(aside)
        except FileNotFoundError:
            aside = None  # nothing in place (first landing, or another lander moved it)
        try:
            staging.rename(target)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                _remove(aside)  # another lander's copy arrived in between: retry
                continue
            if aside is not None:
                aside.rename(target)  # the swap failed: the previous landing goes back
            raise
        _remove(aside)
        return
    raise OSError(errno.EBUSY, f"{target} kept being replaced by other landings")


def _remove(folder: Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
