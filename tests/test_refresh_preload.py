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
