"""Start, watch and stop the Prefect server and worker as process groups on loopback.

Each process starts in a session of its own, so stopping it stops everything it spawned
(`prefect server start` runs uvicorn and the services in children). Flow runs started by a
process worker get a session of their own too; `processes_marked` finds those by an
environment marker, the one thing every descendant inherits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ivig_platform.landing.pseudonym import KEY_VARIABLE

LOOPBACK = "127.0.0.1"
MARKER_VARIABLE = "IVIG_PROCESS_MARKER"

# Nothing leaves the machine: client analytics (DO_NOT_TRACK) and the server's own.
NO_TELEMETRY = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def prefect_cli() -> str:
    """The `prefect` executable of the interpreter running this code (the project's venv)."""
    candidate = Path(sys.executable).with_name("prefect")
    return str(candidate) if candidate.exists() else "prefect"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((host, port)) != 0


def isolated_env(prefect_home: Path, api_url: str | None = None,
                 base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """An environment for Prefect processes that reads and writes only `prefect_home`.

    Every inherited `PREFECT_*` setting is dropped (a developer's own profile or API URL
    must not leak in), and so is the pseudonymisation key: a worker started from this
    environment can get the key only from the server's Secret block.
    """
    env = {
        k: v for k, v in (os.environ if base is None else base).items()
        if not k.startswith("PREFECT_") and k != KEY_VARIABLE
    }
    env.update(NO_TELEMETRY)
    env["PREFECT_HOME"] = str(prefect_home)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    env.update(extra)
    return env


def api_is_healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


@dataclass
class ManagedProcess:
    """A process started in its own session, its output going to `log`."""

    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pgid(self) -> int:
        return self.popen.pid  # leader of its own session and group

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def group_alive(self) -> bool:
        self.popen.poll()  # reap the leader if it has exited
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # pragma: no cover - the pgid was reused by someone else
            return False
        return True

    def stop(self, timeout: float = 20.0) -> str:
        """SIGTERM to the whole group, SIGKILL to whatever is left after `timeout`.

        Returns how it ended, e.g. "SIGTERM after 3.2 s", for the test's report. (Prefect's
        CLI turns a first SIGTERM into a graceful SIGINT to itself; an idle 3.9.1 worker
        does not always finish that, hence the SIGKILL.)
        """
        started = time.monotonic()
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            if not self.group_alive():
                return "already stopped"
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and self.group_alive():
                time.sleep(0.1)
            if not self.group_alive():
                return f"{sig.name} after {time.monotonic() - started:.1f} s"
        raise RuntimeError(f"{self.name} (process group {self.pgid}) would not stop")


def start_process(name: str, argv: Sequence[str], env: Mapping[str, str], log: Path,
                  cwd: Path | None = None) -> ManagedProcess:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        popen = subprocess.Popen(
            list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    return ManagedProcess(name, popen, log)


def processes_marked(marker: str) -> list[int]:
    """Live processes (of this user) whose environment carries `IVIG_PROCESS_MARKER=marker`."""
    needle = f"{MARKER_VARIABLE}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


@dataclass
class PrefectServer:
    process: ManagedProcess
    host: str
    port: int

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def start_prefect_server(env: Mapping[str, str], log: Path, port: int | None = None,
                         host: str = LOOPBACK, startup_timeout: float = 180.0) -> PrefectServer:
    """`prefect server start` on loopback; returns once `/api/health` answers.

    The database is SQLite under `PREFECT_HOME` unless the environment names another one.
    The first start on an empty `PREFECT_HOME` runs every migration (about 25 s on two
    cores). On failure the server is stopped and its log tail is in the error.
    """
    port = port or free_port(host)
    process = start_process(
        "prefect server",
        [prefect_cli(), "server", "start", "--host", host, "--port", str(port)],
        env, log,
    )
    server = PrefectServer(process, host, port)
    deadline = time.monotonic() + startup_timeout
    try:
        while not api_is_healthy(server.api_url):
            if process.popen.poll() is not None:
                raise RuntimeError(
                    f"prefect server exited with {process.popen.returncode}:\n{process.tail()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"prefect server not healthy after {startup_timeout:.0f} s:\n"
                    f"{process.tail()}"
                )
            time.sleep(0.5)
    except BaseException:
        process.stop()
        raise
    return server
