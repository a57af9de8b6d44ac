"""Keeps a root supervisor alive from the server process, outside the actor system.

Thespian cannot restart an actor that the ActorSystem itself created, so this plain
Python helper takes the role of OTP's application master. It sends the root
supervisor `WhichChildren` and starts a fresh root from the same configuration
when no reply comes.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import structlog
from thespian.actors import ActorAddress, ActorExitRequest, ActorSystem

from supervisors.messages import (
    ChildrenReport,
    Shutdown,
    StartSupervisor,
    SupervisorEscalated,
    SupervisorStarted,
    SupervisorStopped,
    WhichChildren,
)
from supervisors.spec import SUPERVISOR_ACTOR_CLASS, ChildSpec, SupervisorFlags, validate_child_specs

log = structlog.get_logger(__name__)


class RootSupervisorError(RuntimeError):
    """Raised when the root supervisor fails to start."""


class RootWatcher:
    """Helper that starts a root `Supervisor` and replaces it when it stops replying.

    `ask_timeout` bounds each liveness check and `start_timeout` the wait for
    `SupervisorStarted`, both in seconds. Use `check()` from the thread that owns
    `system`, or `watch()` in a thread of its own.

    NOTE: a root that is alive but stuck gets an ActorExitRequest before the new root
    starts, but if it cannot process that request, it and its children keep running.
    """

    def __init__(
        self,
        system: ActorSystem,
        name: str,
        flags: SupervisorFlags,
        child_specs: list[ChildSpec],
        *,
        ask_timeout: float = 2.0,
        start_timeout: float = 30.0,
    ) -> None:
        validate_child_specs(child_specs)
        self._system = system
        self.name = name
        self.flags = flags
        self.child_specs = list(child_specs)
        self.ask_timeout = ask_timeout
        self.start_timeout = start_timeout
        self.root_address: ActorAddress | None = None
        self.restart_count = 0

    def start(self, system: ActorSystem | None = None) -> ActorAddress:
        """Create the root supervisor and wait until all its children started.

        Raise RootSupervisorError if it gives up or does not reply within start_timeout.
        """
        system = system or self._system
        address = system.createActor(SUPERVISOR_ACTOR_CLASS)
        start_message = StartSupervisor(self.flags, self.child_specs, self.name)
        reply = ask_for(system, address, start_message, (SupervisorStarted, SupervisorEscalated), self.start_timeout)
        if not isinstance(reply, SupervisorStarted):
            system.tell(address, ActorExitRequest())
            if isinstance(reply, SupervisorEscalated):
                reason = reply.reason
            else:
                reason = f"no SupervisorStarted within start_timeout={self.start_timeout} s"
            log.error("root supervisor failed to start", supervisor=self.name, reason=reason)
            raise RootSupervisorError(f"root supervisor {self.name!r} failed to start: {reason}")

        self.root_address = address
        log.info("root supervisor started", supervisor=self.name, restart_count=self.restart_count)
        return address

    def is_root_alive(self, system: ActorSystem | None = None) -> bool:
        """Return whether the root supervisor replied to WhichChildren within ask_timeout."""
        if self.root_address is None:
            return False
        reply = ask_for(system or self._system, self.root_address, WhichChildren(), (ChildrenReport,), self.ask_timeout)
        return isinstance(reply, ChildrenReport) and reply.name == self.name

    def check(self, system: ActorSystem | None = None) -> bool:
        """Start a fresh root if the current one does not reply; return True if it did."""
        system = system or self._system
        if self.is_root_alive(system):
            return False

        old_address = self.root_address
        log.warning(
            "root supervisor did not reply to WhichChildren, starting a new one",
            supervisor=self.name,
            ask_timeout=self.ask_timeout,
            restart_count=self.restart_count,
        )
        if old_address is not None:
            system.tell(old_address, ActorExitRequest())
        self.root_address = None
        self.restart_count += 1
        self.start(system)
        return True

    def watch(self, stop_event: threading.Event, interval: float = 5.0) -> None:
        """Run check() every `interval` seconds until `stop_event` is set.

        Meant as a thread target: it talks to the actor system through a private
        context, because Thespian's external interface must not be shared between
        threads.
        """
        with self._system.private() as context:
            while not stop_event.wait(interval):
                try:
                    self.check(context)
                except RootSupervisorError:
                    # start() logged the reason. The next check tries again.
                    continue

    def stop(self, timeout: float = 30.0, system: ActorSystem | None = None) -> bool:
        """Ask the root to stop its children in order and exit; return whether it confirmed in time."""
        if self.root_address is None:
            return True
        reply = ask_for(system or self._system, self.root_address, Shutdown(), (SupervisorStopped,), timeout)
        stopped = isinstance(reply, SupervisorStopped)
        if stopped:
            log.info("root supervisor stopped", supervisor=self.name)
        else:
            log.warning("root supervisor did not confirm Shutdown", supervisor=self.name, timeout=timeout)
        self.root_address = None
        return stopped


def ask_for(
    system: ActorSystem,
    address: ActorAddress,
    message: Any,
    expected: tuple[type, ...],
    timeout: float,
) -> Any | None:
    """Send `message` and return the first reply of an `expected` type, or None on timeout.

    ActorSystem.ask returns the next message from any actor, which may be a late reply
    to an earlier request or a SupervisorEscalated, so other messages are skipped.
    """
    deadline = time.monotonic() + timeout
    reply = system.ask(address, message, timeout)
    while reply is not None and not isinstance(reply, expected):
        log.debug("skipping unexpected message", expected=[kind.__name__ for kind in expected], message=repr(reply))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        reply = system.listen(remaining)
    return reply
