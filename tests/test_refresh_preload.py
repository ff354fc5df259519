"""The refresh preloads dbt while Prefect's temporary server starts, not inside the dbt stage.

`ivig_platform.modeling` imports no dbt at module level, so preloading it alone left dbt and
prefect-dbt (~14 s of CPU on the loaded 2-core machine, see
benchmarks/results/fixed-costs-small.md) to the first dbt invocation of every refresh.
Both lists are read from the sources (importing the flow would import Prefect, importing
dbt takes seconds): every module `_make_invoker` imports to run dbt must be preloaded.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# dbt_common comes with dbt.cli.main; the adapter is imported by dbt's adapter factory.
COMES_WITH_DBT = {"dbt_common"}


def _module(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def heavy_modules() -> set[str]:
    for node in _module(REPO / "flows" / "refresh.py").body:
        if isinstance(node, ast.Assign) and any(
                getattr(t, "id", None) == "HEAVY_MODULES" for t in node.targets):
            return set(ast.literal_eval(node.value))
    raise AssertionError("HEAVY_MODULES not found in flows/refresh.py")


def modules_imported_by(function: str) -> set[str]:
    tree = _module(REPO / "ivig_platform" / "modeling" / "dbt_build.py")
    (found,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]
    return {n.module for n in ast.walk(found) if isinstance(n, ast.ImportFrom) and n.module}


def test_the_preload_covers_every_module_the_dbt_invocation_imports():
    needed = {m for m in modules_imported_by("_make_invoker")
              if m.split(".")[0] not in COMES_WITH_DBT}
    assert needed == {"dbt.cli.main", "prefect_dbt"}  # the invoker's dbt imports, as read
    assert needed <= heavy_modules()
    assert "dbt.adapters.duckdb" in heavy_modules()  # the adapter the profile names


def test_the_flow_waits_for_the_preload_before_its_first_task():
    """Against a running Prefect server nothing hides the preload: the gate's first import
    of GX raced it and got a partially initialised module (issue 12's benchmarks); the
    landing tasks import pyarrow lazily, which the preload's libraries import too."""
    tree = _module(REPO / "flows" / "refresh.py")
    (refresh,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_refresh"]
    calls = [n for n in ast.walk(refresh) if isinstance(n, ast.Call)]
    waited = min(c.lineno for c in calls if getattr(c.func, "id", None) == "wait_for_preload")
    first_task = min(c.lineno for c in calls
                     if getattr(c.func, "id", None) in {"find_deliveries", "land_all"})
    assert waited < first_task


def test_waiting_for_the_preload_returns_once_its_imports_are_done(tmp_path, monkeypatch):
    import sys

    import flows.refresh as refresh_flow

    (tmp_path / "slow_heavy_module.py").write_text(
        "import time\ntime.sleep(0.5)\nREADY = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(refresh_flow, "HEAVY_MODULES", ("slow_heavy_module",))
    thread = refresh_flow.preload_in_background()
    refresh_flow.wait_for_preload()
    assert not thread.is_alive()
    assert sys.modules["slow_heavy_module"].READY
    refresh_flow.wait_for_preload()  # nothing left to wait for: returns at once
