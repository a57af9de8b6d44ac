"""A real PAIN service for tests: `pain serve` in its own process, on free 127.0.0.1 ports.

The service runs in a child process rather than in the test process because actor processes are
forked from the server, and the test process has usually run torch already (see
pain_actors/system.py).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "test-admin-token"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveServer:
    """Start with `with LiveServer(data_dir, predictors=2) as server:`; stops the whole tree on exit.

    `training` overrides [training] settings (a test server trains 2 + 2 epochs by default). Other
    keyword arguments become [actors] settings, e.g. pool_max_restarts=1.
    """

    def __init__(self, data_dir: Path, *, token: str = TOKEN, training: dict | None = None, **actor_settings) -> None:
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        self.admin_port = free_port()  # the actor system's, which `pain worker` joins
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "THESPIAN_BASE_IPADDR": "127.0.0.1",
            "PAIN_STORAGE_DATA_DIR": str(self.data_dir),
            "PAIN_SERVER_PORT": str(self.port),
            "PAIN_SERVER_ADMIN_TOKEN": token,
            "PAIN_SERVER_MAX_UPLOAD_BYTES": "2000000",
            "PAIN_ACTORS_ADMIN_PORT": str(self.admin_port),
            "PAIN_ENGINE_THREADS": "1",
            "PAIN_LOGGING_FORMAT": "json",
        }
        for key, value in actor_settings.items():
            self.env[f"PAIN_ACTORS_{key.upper()}"] = str(value)
        # Short training by default, so that a test run trains in seconds.
        for key, value in {"epochs": 2, "contrastive_epochs": 2, "head_epochs": 2, "head_photos": 2, "batch_size": 4, **(training or {})}.items():
            self.env[f"PAIN_TRAINING_{key.upper()}"] = str(value)
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "LiveServer":
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "web.cli", "serve"],
            cwd=self.data_dir.parent,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pain serve exited with {self.process.returncode}; log: {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=5) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.3)
        self.__exit__(None, None, None)
        raise RuntimeError(f"pain serve did not become ready; log: {self.log_path}")

    def __exit__(self, *exc_info) -> None:
        if self.process is None:
            return
        pids = set()
        if self.process.poll() is None:
            try:
                pids = self.actor_pids()
            except Exception:
                pass
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        # Only processes this server started are ended, and only if its own shutdown failed.
        leftovers = [pid for pid in pids if process_alive(pid)]
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
        self._log.close()
        self.leftovers = leftovers
        if exc_info and exc_info[0] is not None:
            self._report_log()

    def _report_log(self) -> None:
        """Copy the server log's warnings and errors to stderr, which pytest shows for a failed test.

        CI removes the test's directory with the log, so this is what is left to find the cause.
        """
        lines = self.log_path.read_text(errors="replace").splitlines()
        notable = [
            line
            for line in lines
            if '"level": "info"' not in line or "request_resent" in line or "request_copy_ignored" in line
        ]
        sys.stderr.write(f"--- {self.log_path.name}: {len(notable)} of {len(lines)} lines, without most info ---\n")
        sys.stderr.write("\n".join(notable[-300:]) + "\n")

    def actor_pids(self) -> set[int]:
        """Process ids of every actor of the tree, from /api/status."""
        pids, stack = set(), [self.status()["tree"]]
        while stack:
            node = stack.pop()
            if node.get("pid"):
                pids.add(node["pid"])
            stack.extend(node.get("children", []))
        return pids

    def call(self, method: str, path: str, body=None, data: bytes | None = None, timeout: float = 60.0):
        """One HTTP request with the admin token; return (status, decoded JSON)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif data is not None:
            headers["Content-Type"] = "image/jpeg"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def status(self) -> dict:
        code, body = self.call("GET", "/api/status")
        assert code == 200, body
        return body


class LiveWorker:
    """`pain worker` joined to a LiveServer's actor system, on its own free 127.0.0.1 port.

    It hosts the server's predictors while it runs; leaving the block stops it with SIGTERM, as an
    operator would. Thespian runs the worker's actor system in a daemonised process, so the
    processes to check afterwards are given to `stop`.
    """

    def __init__(self, server: LiveServer) -> None:
        self.admin_port = free_port()
        self.node = f"127.0.0.1:{self.admin_port}"
        self.log_path = server.data_dir.parent / f"worker-{self.admin_port}.log"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "PAIN_ACTORS_ADMIN_PORT": str(self.admin_port),
            "PAIN_ACTORS_LEADER": f"127.0.0.1:{server.admin_port}",
            "PAIN_LOGGING_FORMAT": "json",
        }
        self.cwd = server.data_dir.parent
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "LiveWorker":
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "web.cli", "worker"], cwd=self.cwd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        return self

    def stop(self, pids: set[int] = frozenset()) -> list[int]:
        """SIGTERM the worker, wait for it and for `pids`; SIGKILL and return those still alive."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            self.process = None
            self._log.close()
        deadline = time.monotonic() + 10
        while any(process_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        leftovers = [pid for pid in pids if process_alive(pid)]
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
        return leftovers

    def __exit__(self, *exc_info) -> None:
        self.stop()


def parent_pid(pid: int) -> int | None:
    """The parent of a running process, from Linux /proc; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[-1].split()[1])
    except (FileNotFoundError, ProcessLookupError, IndexError):
        # ProcessLookupError: the process exited between opening the file and reading it.
        return None


class Traffic:
    """Predict requests from several threads until stopped; records every reply."""

    def __init__(self, server: LiveServer, photos: dict[str, bytes], threads: int = 3) -> None:
        self.server, self.photos, self.threads = server, photos, threads
        self.results: list[tuple[str, int, object]] = []
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=threads)

    def __enter__(self) -> "Traffic":
        for number in range(self.threads):
            self._pool.submit(self._loop, number)
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True)

    def _loop(self, number: int) -> None:
        titles = sorted(self.photos)
        turn = number
        while not self._stop.is_set():
            title = titles[turn % len(titles)]
            turn += 1
            code, body = self.server.call("POST", "/api/predict", data=self.photos[title])
            self.results.append((title, code, body))

    def wait_for(self, count: int, timeout: float = 120.0) -> None:
        start = len(self.results)
        wait_until(lambda: len(self.results) >= start + count, timeout)

    def assert_all_correct(self) -> None:
        assert self.results, "no request was answered"
        wrong = [(title, code, body) for title, code, body in self.results if code != 200 or body[0]["name"] != title]
        assert wrong == [], f"{len(wrong)} of {len(self.results)} requests failed or were wrong: {wrong[:3]}"


def wait_until(predicate, timeout: float, interval: float = 0.2):
    """Poll `predicate` until it returns something true; return that, or raise AssertionError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def process_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        # ProcessLookupError: the process exited between opening the file and reading it.
        return False
