"""Bookkeeping records that a `Supervisor` keeps for its children and queued work."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from thespian.actors import ActorAddress

from supervisors.messages import RestartChild, TerminateChild
from supervisors.spec import ChildSpec


class ChildState(enum.Enum):
    """Lifecycle state of one child, as `WhichChildren` reports it."""

    PENDING = "pending"  # queued for its first start
    STARTING = "starting"  # created and sent ChildInit, no ChildStarted yet
    RUNNING = "running"  # replied ChildStarted and has not exited
    STOPPING = "stopping"  # asked to exit, no ChildActorExited yet
    RESTARTING = "restarting"  # exited and queued for a restart
    TERMINATED = "terminated"  # not running and not queued for a start


# States in which the child actor may still be alive and its address is current.
LIVE_STATES = frozenset({ChildState.STARTING, ChildState.RUNNING, ChildState.STOPPING})


@dataclass(eq=False)  # records are compared by identity
class ChildRecord:
    """Supervisor's record of one child, with its spec and the actor currently started from it."""

    spec: ChildSpec
    state: ChildState = ChildState.PENDING
    # The createActor address until ChildStarted arrives, then the sender's address,
    # which Thespian can pickle into reports. None while no actor is live.
    address: ActorAddress | None = None
    pid: int | None = None
    local: bool = False  # the pid is a child process of the supervisor's own process
    # Admin address (as text) of the convention member the child was started in; None at home.
    placed_on: str | None = None
    start_count: int = 0
    # Reason from ChildStopping or SupervisorEscalated, used when the exit arrives.
    exit_reason: str | None = None

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def restart_count(self) -> int:
        """Starts after the first one."""
        return max(0, self.start_count - 1)

    def clear_actor(self, state: ChildState) -> None:
        """Forget the exited actor and move to `state`."""
        self.state = state
        self.address = None
        self.pid = None
        self.local = False
        self.placed_on = None
        self.exit_reason = None


@dataclass
class Operation:
    """One queued start or stop. The supervisor runs them one at a time, in order."""

    kind: Literal["start", "stop"]
    child_id: str
    # Set when a RestartChild or TerminateChild request caused the operation, so the
    # supervisor can reply to `requester` when it completes.
    request: RestartChild | TerminateChild | None = None
    requester: ActorAddress | None = None
    # Remove the child record once stopped, as OTP does with temporary children.
    remove_after_stop: bool = False

    @property
    def is_requested(self) -> bool:
        return self.request is not None


@dataclass(frozen=True)
class OperationTimeout:
    """Wakeup payload for the start or shutdown timeout of one operation.

    Thespian cannot cancel a wakeup, so a timeout only applies if `sequence` still
    matches the operation in progress.
    """

    sequence: int
