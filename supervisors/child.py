"""Base class for actors that run under a `Supervisor`."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from thespian.actors import (
    Actor,
    ActorAddress,
    ActorExitRequest,
    ActorTypeDispatcher,
    WakeupMessage,
)

from supervisors.messages import (
    ChildInit,
    ChildStartFailed,
    ChildStarted,
    ChildStopping,
    SupervisorPing,
    SupervisorPong,
)

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ParentProcessCheck:
    """Wakeup payload of `ParentProcessWatch`."""


@dataclass(frozen=True)
class SupervisorCheck:
    """Wakeup payload of a child's supervisor watch (see ChildInit.watch_seconds)."""


# Pings without a reply before a child in another actor system takes its supervisor for dead.
MISSED_PINGS = 3


class ParentProcessWatch(Actor):
    """Actor base class that makes the actor exit once the OS process that forked it exits.

    Erlang links stop a supervisor's children when the supervisor dies. Thespian has
    no links, so the children of a SIGKILLed supervisor would keep running. Under
    multiprocTCPBase an actor runs in a process forked by the actor that created it,
    so a change of os.getppid() means that creator is gone. The check runs every
    `parent_check_interval` seconds, once the subclass routes each WakeupMessage
    whose payload is a `ParentProcessCheck` to `check_parent_process()`.

    NOTE: an actor that Thespian created through the Admin (a globalName, or
    capabilities that the creator's system lacks) is forked by the Admin, so this
    only notices the Admin's exit.
    """

    parent_check_interval: float = 1.0
    _watched_parent_pid: int | None = None

    def start_parent_watch(self) -> None:
        """Record the current parent process and schedule the first check."""
        if self._watched_parent_pid is not None:
            return
        self._watched_parent_pid = os.getppid()
        self._schedule_parent_check()

    def check_parent_process(self) -> None:
        """Exit through ActorExitRequest if the parent process changed, else check again later."""
        if os.getppid() == self._watched_parent_pid:
            self._schedule_parent_check()
            return
        log.warning(
            "parent process exited, stopping actor",
            actor=type(self).__name__,
            actor_address=str(self.myAddress),
            parent_pid=self._watched_parent_pid,
        )
        self.send(self.myAddress, ActorExitRequest())

    def _schedule_parent_check(self) -> None:
        self.wakeupAfter(timedelta(seconds=self.parent_check_interval), ParentProcessCheck())


class SupervisedActor(ParentProcessWatch, ActorTypeDispatcher):
    """Actor base class that replies to its supervisor's `ChildInit`.

    Override `init(start_args)` for setup. The actor replies `ChildStarted` when `init`
    returns, or `ChildStartFailed` and exits when it raises. Call `stop(reason)` to exit
    on purpose, and override `terminate()` for cleanup on exit.

    A subclass that defines `receiveMsg_WakeupMessage` must return `self.SUPER` for
    payloads it does not handle, or the parent process check stops running.
    """

    child_id: str | None = None
    supervisor_address: ActorAddress | None = None

    @staticmethod
    def actorSystemCapabilityCheck(capabilities: dict[str, Any], requirements: dict[str, Any]) -> bool:
        """Return whether the actor may start in a system with these capabilities: it needs every required one."""
        return all(capabilities.get(name) == value for name, value in requirements.items())

    def init(self, start_args: dict[str, Any]) -> None:
        """Set the actor up from the child spec's start_args; raise to fail the start."""

    def terminate(self) -> None:
        """Clean up before Thespian stops the actor after an ActorExitRequest."""

    def stop(self, reason: str = "normal") -> None:
        """Tell the supervisor the exit reason, then exit.

        With "normal" or "shutdown" a transient child is not restarted.
        """
        if self.supervisor_address is not None and self.child_id is not None:
            self.send(self.supervisor_address, ChildStopping(self.child_id, reason))
        self.send(self.myAddress, ActorExitRequest())

    def receiveMsg_ChildInit(self, message: ChildInit, sender: ActorAddress) -> None:
        if self.child_id is not None:
            log.warning(
                "ignoring second ChildInit",
                child_id=self.child_id,
                new_child_id=message.child_id,
            )
            return

        self.child_id = message.child_id
        self.supervisor_address = message.supervisor_address
        try:
            self.init(message.start_args)
        except Exception as error:  # any init error is a start failure, as in OTP
            reason = f"{type(error).__name__}: {error}"
            log.exception("child init failed", child_id=self.child_id, reason=reason)
            self.send(self.supervisor_address, ChildStartFailed(self.child_id, reason))
            self.send(self.myAddress, ActorExitRequest())
            return

        self.start_parent_watch()
        self.send(self.supervisor_address, ChildStarted(self.child_id, os.getpid()))
        if message.watch_seconds:
            self._watch_seconds = message.watch_seconds
            self._last_pong = time.monotonic()
            self.wakeupAfter(timedelta(seconds=self._watch_seconds), SupervisorCheck())

    def receiveMsg_SupervisorPong(self, message: SupervisorPong, sender: ActorAddress) -> None:
        self._last_pong = time.monotonic()

    def _check_supervisor(self) -> None:
        silent = time.monotonic() - self._last_pong
        if silent > MISSED_PINGS * self._watch_seconds:
            log.warning(
                "supervisor stopped replying, stopping actor",
                child_id=self.child_id,
                supervisor=str(self.supervisor_address),
                silent_seconds=round(silent, 1),
            )
            self.send(self.myAddress, ActorExitRequest())
            return
        self.send(self.supervisor_address, SupervisorPing(self.child_id or ""))
        self.wakeupAfter(timedelta(seconds=self._watch_seconds), SupervisorCheck())

    def receiveMsg_ActorExitRequest(self, message: ActorExitRequest, sender: ActorAddress) -> None:
        self.terminate()

    def receiveMsg_WakeupMessage(self, message: WakeupMessage, sender: ActorAddress) -> Any:
        if isinstance(message.payload, ParentProcessCheck):
            self.check_parent_process()
            return None
        if isinstance(message.payload, SupervisorCheck):
            self._check_supervisor()
            return None
        return self.SUPER
