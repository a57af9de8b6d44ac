"""OTP-style supervision trees for Thespian actors.

Message protocol, in the order it happens:

1. A `Supervisor` receives `StartSupervisor(flags, child_specs, name)` from the process
   that created it, or `ChildInit` from a parent supervisor when it is nested.
2. It starts each child in spec order: `createActor(spec.actor_class)`, then
   `ChildInit(child_id, start_args, supervisor_address)`. The child replies
   `ChildStarted(child_id, pid)` or `ChildStartFailed(child_id, reason)` within
   `spec.start_timeout`, and `SupervisedActor` does this for you. When all
   started, the supervisor replies `SupervisorStarted(name)`, or `ChildStarted`
   to a parent supervisor.
3. A child that stops on purpose first sends `ChildStopping(child_id, reason)`.
   Thespian then delivers `ChildActorExited`, and the supervisor applies the
   restart type, the restart intensity and the strategy.
4. After more than `max_restarts` restarts in `max_seconds`, the supervisor stops
   its children in reverse order, sends `SupervisorEscalated(name, reason)` to its
   parent and exits. The parent treats that as an abnormal child exit.
5. `Shutdown()` stops the children in reverse order, replies
   `SupervisorStopped(name)` and exits. `WhichChildren`, `CountChildren`,
   `RestartChild` and `TerminateChild` work as in OTP's supervisor module.

Thespian cannot restart a top-level actor, so the server process keeps the root
supervisor alive with `RootWatcher`.
"""

from supervisors.child import ParentProcessWatch, SupervisedActor
from supervisors.children import ChildState
from supervisors.messages import (
    NORMAL_EXIT_REASONS,
    ChildCommandResult,
    ChildCounts,
    ChildInit,
    ChildrenReport,
    ChildStartFailed,
    ChildStarted,
    ChildStatus,
    ChildStopping,
    CountChildren,
    RestartChild,
    Shutdown,
    StartSupervisor,
    SupervisorEscalated,
    SupervisorStarted,
    SupervisorStopped,
    TerminateChild,
    WhichChildren,
)
from supervisors.root_watcher import RootSupervisorError, RootWatcher, ask_for
from supervisors.spec import (
    SUPERVISOR_ACTOR_CLASS,
    ChildSpec,
    ChildType,
    Restart,
    Strategy,
    SupervisorFlags,
    supervisor_child_spec,
)
from supervisors.supervisor import Supervisor

__all__ = [
    "NORMAL_EXIT_REASONS",
    "SUPERVISOR_ACTOR_CLASS",
    "ChildCommandResult",
    "ChildCounts",
    "ChildInit",
    "ChildSpec",
    "ChildStartFailed",
    "ChildStarted",
    "ChildState",
    "ChildStatus",
    "ChildStopping",
    "ChildType",
    "ChildrenReport",
    "CountChildren",
    "ParentProcessWatch",
    "Restart",
    "RestartChild",
    "RootSupervisorError",
    "RootWatcher",
    "Shutdown",
    "StartSupervisor",
    "Strategy",
    "SupervisedActor",
    "Supervisor",
    "SupervisorEscalated",
    "SupervisorFlags",
    "SupervisorStarted",
    "SupervisorStopped",
    "TerminateChild",
    "WhichChildren",
    "ask_for",
    "supervisor_child_spec",
]
