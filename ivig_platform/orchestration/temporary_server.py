"""Prefect's temporary server for a refresh run from the command line, started early.

Without `PREFECT_API_URL`, Prefect starts a temporary server itself at the flow's first API
call (`prefect.server.api.server.SubprocessASGIServer`) and waits for it: about 10 s, plus
3–4 s of CPU in the refresh process to import the whole server application just to launch
it. Here the same server (the same uvicorn command and environment Prefect uses) is launched
before anything of Prefect is imported, so its start overlaps the refresh's own imports, and
the refresh reaches it through `PREFECT_API_URL` as it would a server of its own. Its
SQLite database is under `PREFECT_HOME` (the CLI puts it under the warehouse); the process
is stopped at exit, as Prefect stops its own.

Only when Prefect is not imported yet: Prefect reads its settings once, at import.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ivig_platform.orchestration.processes import LOOPBACK, api_is_healthy, free_port

# What SubprocessASGIServer adds to the environment of its uvicorn process (prefect 3.9).
SERVER_ENV = {
    "PREFECT_UI_ENABLED": "0",
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
}


@dataclass
class TemporaryServer:
    popen: subprocess.Popen
    api_url: str
    startup_timeout: float

    def wait_until_healthy(self) -> None:
        """Block until the API answers; a clear error if the server died or never came up."""
        deadline = time.monotonic() + self.startup_timeout
        while not api_is_healthy(self.api_url, timeout=1.0):
            if self.popen.poll() is not None:
                raise RuntimeError(
                    f"Prefect's temporary server exited with code {self.popen.returncode} "
                    "before it answered (see the lines above)")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"Prefect's temporary server did not answer at {self.api_url} within "
                    f"{self.startup_timeout:.0f} s (PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_"
                    "SECONDS)")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def _prefect_app_dir() -> str:
    spec = importlib.util.find_spec("prefect")
    if spec is None or spec.origin is None:
        raise RuntimeError("prefect is not installed")
    return str(Path(spec.origin).parent.parent)


def start_temporary_prefect_server() -> TemporaryServer | None:
    """Launch Prefect's temporary server now and point `PREFECT_API_URL` at it.

    Returns None (and changes nothing) when a server is configured or Prefect is already
    imported; then Prefect handles its server as usual. Call `wait_until_healthy` before the
    first flow call. The server is stopped at interpreter exit, after Prefect's own exit
    handlers (registered later, so run earlier) have sent their last logs and events.
    """
    if os.environ.get("PREFECT_API_URL") or "prefect" in sys.modules:
        return None
    port = free_port()
    popen = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", _prefect_app_dir(), "--factory",
         "prefect.server.api.server:create_app", "--host", LOOPBACK, "--port", str(port),
         "--log-level", "error", "--lifespan", "on"],
        env={**os.environ, **SERVER_ENV}, stdin=subprocess.DEVNULL,
    )
    timeout = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90"))
    server = TemporaryServer(popen, f"http://{LOOPBACK}:{port}/api", timeout)
    atexit.register(server.stop)
    os.environ["PREFECT_API_URL"] = server.api_url
    return server
