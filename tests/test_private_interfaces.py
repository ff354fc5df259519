"""Each private interface the platform uses is pinned to the version it was written for.

Two kinds of test per library (ivig_platform/private_interfaces.py): the pin (pyproject's
`==`, the lock and the installed version are the version written for) and the interface
itself (what is used is there, with the arguments the platform passes). After an upgrade
(deploy/upgrade_check.py, which relaxes the pins and so runs only the second kind) the
first kind fails by design; the second says whether each use still holds, which is what
must be re-read before adopting the new version.
"""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import re
import textwrap
import tomllib
from pathlib import Path

import pytest

from ivig_platform.orchestration import temporary_server
from ivig_platform.private_interfaces import PINNED, PRIVATE_USES

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_requirements() -> dict[str, str]:
    """name -> what pyproject.toml asks of it (`==3.9.1`, `>=17`, ...)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = {}
    for requirement in project["dependencies"]:
        name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
        requirements[name.lower()] = requirement[len(name):].strip()
    return requirements


def _locked_versions() -> dict[str, str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {package["name"]: package["version"] for package in lock["package"]
            if "version" in package}


@pytest.mark.parametrize("distribution", list(PINNED))
def test_private_interface_library_is_pinned_exactly_to_the_version_written_for(distribution):
    version = PINNED[distribution]
    assert _pyproject_requirements()[distribution] == f"=={version}", "pyproject.toml"
    assert _locked_versions()[distribution] == version, "uv.lock"
    assert importlib.metadata.version(distribution) == version, "installed"


def test_every_private_use_names_an_existing_module():
    for use in PRIVATE_USES:
        assert (ROOT / "ivig_platform" / use.where).is_file(), use


def _string_constants(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)]


def _popen_args(function) -> ast.AST:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "Popen":
            args = node.args[0] if node.args else next(k.value for k in node.keywords
                                                       if k.arg == "args")
            return args
    raise AssertionError(f"no Popen call in {function.__qualname__}")


def test_prefect_temporary_server_launch_is_the_one_prefect_uses():
    """temporary_server.py copies Prefect's launch of its temporary server: the same
    uvicorn command line (string parts in order) and the same server environment."""
    from prefect.server.api.server import SubprocessASGIServer, create_app

    theirs = SubprocessASGIServer._run_uvicorn_command
    ours = temporary_server.start_temporary_prefect_server
    assert _string_constants(_popen_args(ours)) == [
        "-m", "uvicorn", "--app-dir", "--factory", "prefect.server.api.server:create_app",
        "--host", "--port", "--log-level", "error", "--lifespan", "on"]
    assert [s for s in _string_constants(_popen_args(theirs)) if s != "127.0.0.1"] == \
        _string_constants(_popen_args(ours))
    source = inspect.getsource(theirs)
    for name, value in temporary_server.SERVER_ENV.items():
        assert f'"{name}": "1"' in source or f'"{name}": "0"' in source, name
        assert value in ("0", "1")
    assert temporary_server.LOOPBACK == "127.0.0.1"
    assert "ephemeral" in inspect.signature(create_app).parameters


def test_prefect_dbt_builds_its_dbt_runner_by_the_module_level_name():
    import prefect_dbt.core.runner as prefect_runner
    from dbt.cli.main import dbtRunner

    assert prefect_runner.dbtRunner is dbtRunner
    assert "dbtRunner(" in inspect.getsource(prefect_runner.PrefectDbtRunner.invoke)
    assert {"manifest", "callbacks"} <= set(inspect.signature(dbtRunner).parameters)


def test_great_expectations_map_output_helpers_take_the_arguments_pooled_passes():
    from great_expectations.expectations.expectation import _format_map_output, _mostly_success

    assert {"result_format", "success", "element_count", "nonnull_count", "unexpected_count",
            "unexpected_list", "unexpected_index_list"} <= set(
        inspect.signature(_format_map_output).parameters)
    assert list(inspect.signature(_mostly_success).parameters) == [
        "rows_considered_cnt", "unexpected_cnt", "mostly"]
    assert _mostly_success(10, 1, 0.9) and not _mostly_success(10, 2, 0.9)


def test_dbt_write_manifest_and_reset_adapters_are_where_dbt_build_imports_them():
    from dbt.adapters.factory import reset_adapters
    from dbt.parser.manifest import write_manifest

    assert list(inspect.signature(write_manifest).parameters)[:2] == ["manifest", "target_path"]
    assert not inspect.signature(reset_adapters).parameters


def test_dbt_duckdb_connection_manager_keeps_its_environment_in_a_class_attribute():
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    assert "_ENV" in vars(DuckDBConnectionManager)
    assert not inspect.signature(DuckDBConnectionManager.close_all_connections).parameters
