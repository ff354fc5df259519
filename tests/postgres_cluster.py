"""A throw-away PostgreSQL cluster for tests: initdb in a temporary folder, a free loopback
port, one database owned by a password user, stopped and deleted afterwards.

The commands are those of deploy/README.md ("Production: PostgreSQL"). PostgreSQL refuses
to run as root, so as root every command runs as the `postgres` account (Debian's); the
folder is created for it. Nothing listens beyond 127.0.0.1 and the socket stays in the
folder, so the cluster touches nothing of the machine's own PostgreSQL.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ivig_platform.orchestration.processes import free_port


def postgres_bin() -> Path | None:
    """The folder of initdb/pg_ctl: Debian's newest /usr/lib/postgresql/*/bin, or the PATH."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                      else 0)
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@dataclass(frozen=True)
class Cluster:
    port: int
    user: str
    password: str
    database: str

    @property
    def prefect_url(self) -> str:
        """Prefect's `PREFECT_API_DATABASE_CONNECTION_URL` for this database."""
        return (f"postgresql+asyncpg://{self.user}:{self.password}@127.0.0.1:{self.port}/"
                f"{self.database}")

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"


@contextmanager
def throwaway_cluster(database: str = "prefect", user: str = "prefect") -> Iterator[Cluster]:
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (no initdb)")
    as_root = os.geteuid() == 0
    owner = pwd.getpwnam("postgres") if as_root else None
    folder = Path(tempfile.mkdtemp(prefix="ivig-pg-"))
    data, password, port = folder / "data", secrets.token_hex(16), free_port()
    env = {**os.environ, "PGPASSWORD": password, "LC_ALL": "C.UTF-8"}

    def run(*argv: str | Path) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
        done = subprocess.run([*prefix, *map(str, argv)], env=env, cwd=folder,
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(str(argv[0])).name} failed:\n{done.stdout}{done.stderr}")

    pwfile = folder / "password"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    if owner is not None:
        for path in (folder, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    started = False
    try:
        run(bindir / "initdb", "-D", data, "-U", user, f"--pwfile={pwfile}",
            "--auth=scram-sha-256", "-E", "UTF8", "--no-sync")
        run(bindir / "pg_ctl", "-D", data, "-l", folder / "postgres.log", "-w",
            "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {folder}", "start")
        started = True
        run(bindir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", user, database)
        yield Cluster(port, user, password, database)
    finally:
        try:
            if started:
                run(bindir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
