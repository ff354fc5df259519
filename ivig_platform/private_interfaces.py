"""The libraries whose private parts the platform still uses, and the versions it was written for.

A public interface is kept across minor versions; a private one (a leading underscore, a
module attribute swapped, a copied launch command) can change in any release without a
word. Each use below was written against one exact version, which `pyproject.toml` pins
with `==` (`tests/test_private_interfaces.py` fails when a pin, the installed version or
the interface itself differs). An upgrade is tried with `bash deploy/bootstrap.sh upgrade`
(deploy/upgrade_check.py): it lets each of these move within `upgrade_range`, in a scratch
copy, and runs the checks; adopting a new version means re-reading each use listed here,
then changing the version here and in `pyproject.toml` together.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PrivateUse:
    distribution: str
    version: str  # the exact version the use was written for (pinned with == in pyproject)
    upgrade_range: str  # what the upgrade check lets `uv lock --upgrade` try instead
    where: str
    what: str


PRIVATE_USES: tuple[PrivateUse, ...] = (
    PrivateUse("prefect", "3.9.1", ">=3.9.1,<4", "orchestration/temporary_server.py",
               "a copy of SubprocessASGIServer._run_uvicorn_command (uvicorn command line, "
               "server environment) to start the temporary server before Prefect is imported"),
    PrivateUse("prefect-dbt", "0.7.25", ">=0.7.25,<0.8", "modeling/dbt_build.py",
               "prefect_dbt.core.runner.dbtRunner swapped for one holding the parsed "
               "manifest (PrefectDbtRunner.invoke builds it by that module-level name)"),
    PrivateUse("great-expectations", "1.24.1", ">=1.24.1,<2", "quality/pooled.py",
               "expectation._format_map_output and _mostly_success rebuild one delivery's "
               "result out of a pooled validation"),
    PrivateUse("dbt-core", "1.11.16", ">=1.11.16,<1.12", "modeling/dbt_build.py",
               "dbt.parser.manifest.write_manifest writes the compiled manifest so docs "
               "generate skips compiling again"),
    PrivateUse("dbt-adapters", "1.24.5", ">=1.24.5,<2", "modeling/dbt_build.py",
               "dbt.adapters.factory.reset_adapters releases the adapter after a build"),
    PrivateUse("dbt-duckdb", "1.11.1", ">=1.11.1,<1.12", "modeling/dbt_build.py",
               "DuckDBConnectionManager._ENV and close_all_connections close the handles "
               "dbt-duckdb keeps on the build file"),
)

#: distribution -> the exact version pinned for it
PINNED: dict[str, str] = {use.distribution: use.version for use in PRIVATE_USES}
#: distribution -> the range an upgrade check may try
UPGRADE_RANGES: dict[str, str] = {use.distribution: use.upgrade_range for use in PRIVATE_USES}
