"""Helpers shared by the supervisor tests: waiting, process checks and the `Harness`."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from thespian.actors import ActorAddress, ActorSystem

from supervised_test_actors import Identity, WhoAmI, Worker
from supervisors import (
    SUPERVISOR_ACTOR_CLASS,
    ChildSpec,
    ChildrenReport,
    ChildStatus,
    Restart,
    StartSupervisor,
    SupervisorFlags,
    SupervisorStarted,
    WhichChildren,
)

T = TypeVar("T")

ASK_TIMEOUT = 5.0  # seconds; replies normally take milliseconds
WAIT_TIMEOUT = 10.0  # seconds for restarts, which fork new processes


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening_pids(port: int) -> list[int]:
    """Return the PIDs of this user's processes that listen on a TCP port, read from /proc."""
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            local_address, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local_address.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                sockets.add(f"socket:[{inode}]")

    pids = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) in sockets for fd in fd_dir.iterdir()):
                pids.append(int(fd_dir.parent.name))
        except OSError:
            continue  # another user's process, or one that has just exited
    return pids


def end_process_group(group: int, grace: float = 3.0) -> None:
    """SIGKILL a process group whose processes are still running after `grace` seconds."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        members = [pid for pid in _group_members(group) if not process_is_gone(pid)]
        if not members:
            return
        time.sleep(0.1)
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _group_members(group: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # the fifth field of /proc/PID/stat: process group
            members.append(int(stat.parent.name))
    return members


def wait_until(condition: Callable[[], T], description: str, timeout: float = WAIT_TIMEOUT) -> T:
    """Poll `condition` until it returns a truthy value and return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {description}. Last value: {value!r}")
        time.sleep(0.05)


def process_start_time(pid: int) -> int | None:
    """Return the start time of a process from /proc (clock ticks after boot), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        # ProcessLookupError: the process exited between opening the file and reading it.
        return None
    # The command name in brackets may contain spaces, so split after its last ")".
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19])


def process_is_gone(pid: int) -> bool:
    """Return whether the process no longer runs, because it does not exist or is a zombie.

    os.kill(pid, 0) still succeeds for a zombie until its parent reaps it, and for an
    orphan that depends on this machine's init process.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        # ProcessLookupError: the process exited between opening the file and reading it.
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


class Harness:
    """One test's actor system plus helpers to start, query and kill its actors."""

    def __init__(self, system: ActorSystem, tmp_path: Path) -> None:
        self.system = system
        self.event_log = tmp_path / "events.log"
        self.tmp_path = tmp_path
        # pid -> process start time of every actor process seen, so teardown can kill
        # leftovers without hitting a process that reused the pid.
        self.seen_processes: dict[int, int | None] = {}

    def worker_spec(
        self,
        child_id: str,
        restart: Restart = Restart.PERMANENT,
        *,
        start_timeout: float = 5.0,
        shutdown_timeout: float = 2.0,
        actor_class: str = class_path(Worker),
        **start_args: Any,
    ) -> ChildSpec:
        start_args.setdefault("event_log", str(self.event_log))
        return ChildSpec(
            id=child_id,
            actor_class=actor_class,
            start_args=start_args,
            restart=restart,
            start_timeout=start_timeout,
            shutdown_timeout=shutdown_timeout,
        )

    def start_supervisor(self, flags: SupervisorFlags, child_specs: list[ChildSpec], name: str = "root") -> ActorAddress:
        address = self.system.createActor(SUPERVISOR_ACTOR_CLASS)
        reply = self.ask(address, StartSupervisor(flags, child_specs, name), SupervisorStarted, timeout=WAIT_TIMEOUT)
        assert isinstance(reply, SupervisorStarted), f"supervisor {name!r} did not start: {reply!r}"
        return address

    def ask(self, address: ActorAddress, message: Any, expected: type[T], timeout: float = ASK_TIMEOUT) -> T | None:
        """Send `message` and return the first reply of type `expected`, or None on timeout."""
        deadline = time.monotonic() + timeout
        reply = self.system.ask(address, message, timeout)
        while reply is not None and not isinstance(reply, expected):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            reply = self.system.listen(remaining)
        return reply

    def report(self, supervisor: ActorAddress) -> dict[str, ChildStatus]:
        reply = self.ask(supervisor, WhichChildren(), ChildrenReport)
        assert reply is not None, "supervisor did not answer WhichChildren"
        return {status.child_id: status for status in reply.children}

    def wait_for_report(
        self,
        supervisor: ActorAddress,
        condition: Callable[[dict[str, ChildStatus]], bool],
        description: str,
        timeout: float = WAIT_TIMEOUT,
    ) -> dict[str, ChildStatus]:
        def check() -> dict[str, ChildStatus] | None:
            report = self.report(supervisor)
            return report if condition(report) else None

        return wait_until(check, description, timeout)

    def wait_for_running(self, supervisor: ActorAddress, child_ids: list[str], **restart_counts: int) -> dict[str, ChildStatus]:
        """Wait until the children run, with the given restart_count where one is given."""

        def ready(report: dict[str, ChildStatus]) -> bool:
            for child_id in child_ids:
                status = report.get(child_id)
                if status is None or status.state != "running":
                    return False
                if child_id in restart_counts and status.restart_count != restart_counts[child_id]:
                    return False
            return True

        return self.wait_for_report(supervisor, ready, f"children {child_ids} running with {restart_counts}")

    def identity(self, address: ActorAddress | None) -> Identity:
        assert address is not None, "child has no address; is it running?"
        reply = self.ask(address, WhoAmI(), Identity)
        assert reply is not None, f"child at {address} did not answer WhoAmI"
        self.seen_processes.setdefault(reply.pid, process_start_time(reply.pid))
        self.seen_processes.setdefault(reply.ppid, process_start_time(reply.ppid))
        return reply

    def identities(self, supervisor: ActorAddress, child_ids: list[str]) -> dict[str, Identity]:
        report = self.report(supervisor)
        return {child_id: self.identity(report[child_id].address) for child_id in child_ids}

    def kill(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)

    def events(self) -> list[str]:
        if not self.event_log.exists():
            return []
        return self.event_log.read_text().splitlines()

    def wait_until_gone(self, pids: list[int], timeout: float = WAIT_TIMEOUT) -> None:
        wait_until(
            lambda: all(process_is_gone(pid) for pid in pids),
            f"processes {[pid for pid in pids if not process_is_gone(pid)]} to exit",
            timeout,
        )

    def kill_leftovers(self) -> None:
        """SIGKILL recorded actor processes that outlived the actor system."""
        deadline = time.monotonic() + 3.0
        for pid, start_time in self.seen_processes.items():
            while not process_is_gone(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if process_is_gone(pid) or start_time is None or process_start_time(pid) != start_time:
                continue
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
