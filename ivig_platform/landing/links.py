"""Symbolic links in the inbox: which are followed and which refuse the delivery.

A hospital's folder is written by people and tools outside the platform's control. A
link there that leads out of the delivery (`patients.csv -> /etc/passwd`, or a delivery
folder that is a link to another disk or another site's folder) would make landing read
files that are not the delivery: such a delivery is rejected (`unsafe_file`) and the link
is never opened. A link that stays inside its own delivery folder is followed: what it
reads is the delivery's own content, so refusing it would only punish a harmless habit.
"""

from __future__ import annotations

import os
from pathlib import Path


def unsafe_folder(folder: Path, inbox: Path) -> str | None:
    """Why the delivery folder itself cannot be read safely, or None.

    The folder must be `<inbox>/<site>/<delivery>` with neither part a link: a site or
    delivery folder that is a link lands files from somewhere else under this site's name.
    """
    where = _resolve(folder)
    root = _resolve(inbox)
    if where is not None and root is not None and where == root / folder.parent.name / folder.name:
        return None
    part = "delivery folder" if folder.is_symlink() else "site folder"
    if where is None or root is None:
        return f"the {part} is a symbolic link that cannot be resolved"
    outside = "a path outside the inbox" if not where.is_relative_to(root) else \
        "another folder of the inbox"
    return f"the {part} is a symbolic link to {outside}; send the files themselves"


def unsafe_link(folder: Path, inbox: Path) -> str | None:
    """Why a link inside the delivery folder refuses the delivery, or None.

    Walks the folder without following links (nothing behind one is opened) and checks
    where each link leads; the first link out of the folder is the reason.
    """
    real_folder = _resolve(folder)
    root = _resolve(inbox)
    for parent, dirs, files in os.walk(folder, followlinks=False):
        for name in sorted(dirs + files):
            path = Path(parent) / name
            if not path.is_symlink():
                continue
            where = _resolve(path)
            shown = path.relative_to(folder).as_posix()
            if where is None:
                return f"{shown} is a symbolic link that cannot be resolved"
            if real_folder is not None and where.is_relative_to(real_folder):
                continue  # stays inside the delivery: followed
            outside = "a path outside the inbox" if root is None or \
                not where.is_relative_to(root) else "a path outside its delivery folder"
            return f"{shown} is a symbolic link to {outside}"
    return None


def _resolve(path: Path) -> Path | None:
    try:
        return path.resolve(strict=False)
    except (OSError, RuntimeError):  # a loop of links
        return None
