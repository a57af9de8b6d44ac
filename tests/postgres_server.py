"""PostgreSQL for the storage tests: a server named by PAIN_TEST_DATABASE_URL, or a throwaway one.

`.ci/run` starts a throwaway server with this file's command line and exports its URL, so the
tests share one server. Without the variable, each test module starts its own server through
`PostgresServer`. Either way each test gets a fresh database from `fresh_database`.

    python3 tests/postgres_server.py start DIR   # start a server in the empty folder DIR, print its URL
    python3 tests/postgres_server.py stop DIR    # stop that server and delete DIR

The server listens on 127.0.0.1 only, on a free port, and trusts every connection, because it
contains nothing but test data. PostgreSQL refuses to run as root, so under root the server runs
as the `postgres` system user, which Debian's postgresql package creates.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from live_server import free_port

DATABASE_URL_VARIABLE = "PAIN_TEST_DATABASE_URL"
BIN_VARIABLE = "PAIN_TEST_POSTGRES_BIN"


def postgres_bin() -> Path | None:
    """PAIN_TEST_POSTGRES_BIN, else the newest /usr/lib/postgresql/<version>/bin (Debian's layout)."""
    if os.environ.get(BIN_VARIABLE):
        return Path(os.environ[BIN_VARIABLE])
    found = [path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    found.sort(key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0)
    return found[-1] if found else None


def unavailable_reason() -> str | None:
    """Return why no throwaway server can start here, or None when one can."""
    binaries = postgres_bin()
    if binaries is None:
        return f"no PostgreSQL server binaries in /usr/lib/postgresql/*/bin; install postgresql or set {BIN_VARIABLE}"
    if not (binaries / "initdb").is_file():
        return f"initdb not found in {binaries}; set {BIN_VARIABLE} to the folder of initdb and pg_ctl"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a 'postgres' user to run PostgreSQL as"
    return None


class PostgresServer:
    """A throwaway server in `directory` (default: a new temporary folder), deleted with it on stop."""

    def __init__(self, directory: Path | None = None) -> None:
        self.binaries = postgres_bin()
        self.directory = directory or Path(tempfile.mkdtemp(prefix="pain-postgres-"))
        self.port = 0
        self.url = ""
        self._user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._user else []
        try:
            subprocess.run(prefix + list(command), check=True, capture_output=True, text=True, timeout=120)
        except subprocess.CalledProcessError as error:
            raise RuntimeError(f"{Path(command[0]).name} failed with exit status {error.returncode}: {error.stderr.strip()}") from None

    def start(self) -> str:
        """Create a cluster, start the server and return its URL."""
        reason = unavailable_reason()
        if reason or self.binaries is None:
            raise RuntimeError(reason)
        if self._user:
            os.chown(self.directory, self._user.pw_uid, self._user.pw_gid)
        self.port = free_port()
        data = str(self.directory / "data")
        self._run(str(self.binaries / "initdb"), "-D", data, "-A", "trust", "-U", "pain", "--no-sync")
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.directory / "log")
        self._run(str(self.binaries / "pg_ctl"), "-D", data, "-o", options, "-l", log, "-w", "start")
        self.url = f"postgresql://pain@127.0.0.1:{self.port}/postgres"
        return self.url

    def stop(self) -> None:
        """Stop the server if it runs, then delete its folder."""
        try:
            if self.binaries and (self.directory / "data" / "postmaster.pid").exists():
                self._run(str(self.binaries / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> "PostgresServer":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def redact(url: str) -> str:
    """Return the URL with its password replaced by ***, for messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """Create an empty database on the server, yield its URL, and drop it afterwards.

    The role in server_url needs the CREATEDB privilege. The drop closes connections that the test
    left open (WITH (FORCE), PostgreSQL 13 and later).
    """
    import psycopg2  # imported here so that the command line runs without it

    name = f"pain_test_{uuid.uuid4().hex[:16]}"
    try:
        admin = psycopg2.connect(server_url)
    except psycopg2.OperationalError as error:
        raise RuntimeError(
            f"cannot connect to the PostgreSQL server at {redact(server_url)}: {str(error).strip()}."
            f" Start it, or unset {DATABASE_URL_VARIABLE} to let the tests start their own server."
        ) from None
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield urllib.parse.urlsplit(server_url)._replace(path=f"/{name}").geturl()
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        admin.close()


def main() -> int:
    parser = argparse.ArgumentParser(description="Start or stop a throwaway PostgreSQL server for the tests.")
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("directory", type=Path, help="empty folder for the server's files; stop deletes it")
    args = parser.parse_args()

    server = PostgresServer(args.directory.resolve())
    if args.action == "stop":
        try:
            server.stop()
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
            print(f"stopping PostgreSQL failed: {error}", file=sys.stderr)
            return 1
        return 0
    if not args.directory.is_dir() or any(args.directory.iterdir()):
        print(f"cannot start PostgreSQL: {args.directory} must be an existing, empty folder", file=sys.stderr)
        return 1
    try:
        print(server.start())
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
        print(f"cannot start PostgreSQL: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
