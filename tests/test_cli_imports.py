"""`ivig --help` and the quick commands stay quick: the CLI module imports no heavy library.

Polars, pydantic's protocol models, Prefect, dbt and GX cost seconds to import on a loaded
machine (`ivig --help` took 2.6 s of which 2 s were Polars and the protocol); the commands
import what they need when they run.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("polars", "pydantic", "prefect", "dbt", "great_expectations", "duckdb", "pandas")


def test_importing_the_cli_imports_no_heavy_library():
    probe = (
        "import json, sys, ivig_platform.cli; "
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=60)
    assert json.loads(done.stdout) == []


def test_help_lists_the_commands_without_importing_them():
    probe = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from ivig_platform.cli import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        f"print(json.dumps([result.exit_code, result.output, "
        f"sorted(m for m in {HEAVY!r} if m in sys.modules)]))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=60)
    code, output, imported = json.loads(done.stdout.splitlines()[-1])
    assert code == 0
    assert "refresh" in output and "status" in output
    assert imported == []
