"""A throwaway PostgreSQL server for tests, on a free 127.0.0.1 port, removed when the test ends.

PostgreSQL refuses to run as root, so under root the server runs as the `postgres` system user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from live_server import free_port

POSTGRES_BIN = Path(os.environ.get("PAIN_TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))


def unavailable_reason() -> str | None:
    """Why no test server can start here, or None when one can."""
    if not (POSTGRES_BIN / "initdb").is_file():
        return f"PostgreSQL binaries not found in {POSTGRES_BIN}; set PAIN_TEST_POSTGRES_BIN"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a 'postgres' user to run PostgreSQL as"
    return None


class PostgresServer:
    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="pain-postgres-"))
        self.port = free_port()
        self.url = f"postgresql://pain@127.0.0.1:{self.port}/postgres"
        self._user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._user else []
        subprocess.run(prefix + list(command), check=True, capture_output=True, timeout=120)

    def __enter__(self) -> "PostgresServer":
        if self._user:
            os.chown(self.directory, self._user.pw_uid, self._user.pw_gid)
        data = str(self.directory / "data")
        self._run(str(POSTGRES_BIN / "initdb"), "-D", data, "-A", "trust", "-U", "pain", "--no-sync")
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(POSTGRES_BIN / "pg_ctl"), "-D", data, "-o", options, "-l", str(self.directory / "log"), "-w", "start")
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            self._run(str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
