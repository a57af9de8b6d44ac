"""Messages between supervisors, their children and the processes that send them requests.

All messages are pickled by Thespian, so their fields must be picklable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from thespian.actors import ActorAddress

from supervisors.spec import ChildSpec, SupervisorFlags

# Exit reasons that a transient child's restart treats as normal, as in OTP.
NORMAL_EXIT_REASONS = frozenset({"normal", "shutdown"})


# --- supervisor -> child and child -> supervisor ---------------------------------


@dataclass
class ChildInit:
    """First message that a supervisor sends to each child it starts."""

    child_id: str
    start_args: dict[str, Any]
    supervisor_address: ActorAddress
    # Set for a child in another actor system, where ParentProcessWatch cannot see the
    # supervisor's process: the child sends SupervisorPing this often (seconds) and exits after
    # three pings without a SupervisorPong, as an Erlang link would take it down.
    watch_seconds: float | None = None


@dataclass
class SupervisorPing:
    """A child's check that its supervisor is alive; the supervisor replies `SupervisorPong`."""

    child_id: str


@dataclass
class SupervisorPong:
    pass


@dataclass
class ChildStarted:
    """Reply to `ChildInit` after the child initialized.

    `pid` lets the supervisor kill a worker that ignores `ActorExitRequest` longer than
    its shutdown timeout. Leave it None for an actor that does not run in its own
    local process.
    """

    child_id: str
    pid: int | None = None


@dataclass
class ChildStartFailed:
    """Reply to `ChildInit` when the child cannot initialize. The child should then exit."""

    child_id: str
    reason: str


@dataclass
class ChildStopping:
    """Exit reason that a child sends its supervisor just before it stops itself.

    The reasons "normal" and "shutdown" make the exit normal, so a transient child
    is not restarted. A child that exits without sending this exits abnormally.
    """

    child_id: str
    reason: str = "normal"


@dataclass
class SupervisorEscalated:
    """Notice that a supervisor gave up.

    The supervisor sends it to its parent after stopping all its children, just before
    it exits. The parent counts the exit as abnormal.
    """

    name: str
    reason: str


@dataclass
class Shutdown:
    """Request for an orderly stop.

    The supervisor stops its children in reverse start order, replies
    `SupervisorStopped` to the sender and exits.
    """

    reason: str = "shutdown"


@dataclass
class SupervisorStopped:
    """Reply to `Shutdown`, sent just before the supervisor exits."""

    name: str


# --- configuring a supervisor -----------------------------------------------------


@dataclass
class StartSupervisor:
    """Request to configure a freshly created `Supervisor` and start its children in order.

    The supervisor replies `SupervisorStarted` once every child started, or
    `SupervisorEscalated` if it gave up first. The sender becomes the supervisor's
    parent, which receives `SupervisorEscalated` if the supervisor gives up later.
    """

    flags: SupervisorFlags
    child_specs: list[ChildSpec]
    name: str


@dataclass
class SupervisorStarted:
    """Reply to `StartSupervisor` once every child started."""

    name: str


# --- queries and commands (OTP's supervisor API) ----------------------------------


@dataclass
class WhichChildren:
    """Request for a `ChildrenReport`."""


class ChildStatus(NamedTuple):
    """One child in a `ChildrenReport`.

    `address` is None unless the child confirmed its start and has not exited.
    `restart_count` counts the starts after the first one. `state` is a `ChildState`
    value: "pending", "starting", "running", "stopping", "restarting" or "terminated".
    `pid` is the process id from the child's `ChildStarted`, when it sent one.
    """

    child_id: str
    address: ActorAddress | None
    restart_count: int
    state: str
    pid: int | None = None


@dataclass
class ChildrenReport:
    """Reply to `WhichChildren`, with the children in start order and the supervisor's own pid."""

    name: str
    children: list[ChildStatus] = field(default_factory=list)
    pid: int | None = None


@dataclass
class CountChildren:
    """Request for a `ChildCounts`."""


@dataclass
class ChildCounts:
    """Reply to `CountChildren`, with OTP's count_children fields."""

    specs: int  # child specs, running or not
    active: int  # children that confirmed their start and have not exited
    supervisors: int  # child specs of type supervisor
    workers: int  # child specs of type worker


@dataclass
class RestartChild:
    """Request to start a child that `TerminateChild` stopped or that was not restarted.

    The supervisor replies `ChildCommandResult` once the child started or failed to.
    A failed start here is reported to the sender only and is not restarted.
    """

    child_id: str


@dataclass
class TerminateChild:
    """Request to stop a child without restarting it. `RestartChild` starts it again.

    A temporary child is also removed, as in OTP. The supervisor replies
    `ChildCommandResult` once the child exited.
    """

    child_id: str


@dataclass
class ChildCommandResult:
    """Reply to `RestartChild` or `TerminateChild`. `error` is None on success."""

    request: RestartChild | TerminateChild
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None
