"""Prefect's temporary server for a refresh run from the command line, started early.

Without `PREFECT_API_URL`, Prefect starts a temporary server itself at the flow's first API
call (`prefect.server.api.server.SubprocessASGIServer`) and waits for it: about 10 s, plus
3–4 s of CPU in the refresh process to import the whole server application just to launch
it. Here the same server (the same uvicorn command and environment Prefect uses) is launched
before anything of Prefect is imported, so its start overlaps the refresh's own imports, and
the refresh reaches it through `PREFECT_API_URL` as it would a server of its own. Its
SQLite database is under `PREFECT_HOME` (the CLI puts it under the warehouse); the process
is stopped at exit, as Prefect stops its own.

Nothing is left behind and nothing leaks (issue 10, point 5):

* the server dies with the refresh even on `kill -9`: on Linux the child asks the kernel
  for SIGKILL when its parent dies (`prctl(PR_SET_PDEATHSIG)`, set between fork and exec
  and checked against a parent that died in between). This needs nothing of the child —
  a server stuck in SQLite dies as surely as an idle one — which is why it is preferred
  to a pipe the child would have to watch. The signal follows the *thread* that started
  the child, so the server is started from the main thread;
* its environment never holds `IVIG_PSEUDONYM_KEY` (the server has no use for it, and
  `/proc/<pid>/environ` of a long-lived process is the wrong place for a secret);
* its SQLite database is checked before it starts: one left broken by a full disk or a
  kill is moved aside (`prefect.db.broken-<time>`) and the server starts afresh, which
  loses only the local run history, and says so in one line.

Only when Prefect is not imported yet: Prefect reads its settings once, at import.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import importlib.util
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ivig_platform.landing.pseudonym import KEY_VARIABLE
from ivig_platform.orchestration.processes import LOOPBACK, api_is_healthy, free_port

PR_SET_PDEATHSIG = 1
DATABASE_NAME = "prefect.db"  # Prefect's default: sqlite under PREFECT_HOME

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


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:  # pragma: no cover - a Linux without a loadable libc
        return None


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that makes the child get SIGKILL when this process dies (Linux).

    Loaded before the fork, so the child only calls into an already loaded libc; if the
    parent died before the request took effect, the child exits at once.
    """
    libc = _libc()
    if libc is None or threading.current_thread() is not threading.main_thread():
        return None  # the signal would follow a thread that may end before the process
    parent = os.getpid()

    def request() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return request


def server_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: ours, without the key, with Prefect's server settings."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k != KEY_VARIABLE}
    return {**env, **SERVER_ENV}


def database_problem(database: Path) -> str | None:
    """Why the SQLite file cannot serve a server (None: it can, or there is none yet)."""
    if not database.exists():
        return None
    try:
        con = sqlite3.connect(database, timeout=10)
        try:
            result = con.execute("PRAGMA quick_check").fetchone()
        finally:
            con.close()
    except sqlite3.Error as exc:
        return str(exc)
    return None if result and result[0] == "ok" else f"quick_check: {result[0] if result else '?'}"


def reset_broken_database(prefect_home: Path) -> str | None:
    """Move a broken temporary-server database aside; return the one line that says so."""
    database = Path(prefect_home) / DATABASE_NAME
    problem = database_problem(database)
    if problem is None:
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    for suffix in ("", "-wal", "-shm"):
        part = database.with_name(database.name + suffix)
        if part.exists():
            part.rename(part.with_name(f"{part.name}.broken-{stamp}"))
    return (f"Prefect's local database {database} was unreadable ({problem}); moved aside "
            f"as {database.name}.broken-{stamp} and started afresh (local run history lost)")


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
        env=server_environment(), stdin=subprocess.DEVNULL, preexec_fn=die_with_parent(),
    )
    timeout = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300"))
    server = TemporaryServer(popen, f"http://{LOOPBACK}:{port}/api", timeout)
    atexit.register(server.stop)
    os.environ["PREFECT_API_URL"] = server.api_url
    return server
