"""What a run clears up when it starts, holding the run lock (so every other run is dead).

A killed or failed run leaves its build folder (up to a whole build), a half-played
publish, and possibly half-written landing folders; nothing of it is ever read again.
With the lock held nobody else can be using any of it, so it all goes, oldest first:

1. a publish killed half-way is played back from its journal (warehouse/publish.py), so
   file, report and docs are again the previous run's;
2. every `.build/<run>/` folder is removed;
3. stale landing staging folders (`landing/site=*/delivery=*.partial*`) are removed;
4. only the last runs' logs are kept.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ivig_platform.landing.manifest import remove_stale_partials
from ivig_platform.run_log import prune_logs
from ivig_platform.warehouse.publish import BUILD_DIR, recover_interrupted_publish


@dataclass
class Cleared:
    recovered_publishes: list[str] = field(default_factory=list)
    build_folders: list[str] = field(default_factory=list)

    def notes(self) -> list[str]:
        notes = [f"publish of run {run} was interrupted: the previous file, report and docs "
                 "were put back" for run in self.recovered_publishes]
        if self.build_folders:
            notes.append(f"removed {len(self.build_folders)} build folder(s) of ended runs")
        return notes


def clear_dead_runs(warehouse: Path) -> Cleared:
    """Steps 1-4 above; call with the run lock held, before the run does anything else."""
    warehouse = Path(warehouse)
    cleared = Cleared(recovered_publishes=recover_interrupted_publish(warehouse))
    builds = warehouse / BUILD_DIR
    for folder in sorted(builds.iterdir()) if builds.is_dir() else []:
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
        else:
            folder.unlink(missing_ok=True)
        cleared.build_folders.append(folder.name)
    remove_stale_partials(warehouse)
    prune_logs(warehouse)
    return cleared
