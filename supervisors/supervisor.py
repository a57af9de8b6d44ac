"""Generic OTP-style supervisor actor for Thespian."""

from __future__ import annotations

import enum
import importlib
import os
import time
import signal
from collections import deque
from datetime import timedelta
from typing import Any

import structlog
from thespian.actors import (
    ActorAddress,
    ActorExitRequest,
    ActorSystemConventionUpdate,
    ActorTypeDispatcher,
    ChildActorExited,
    PoisonMessage,
    WakeupMessage,
)

from supervisors.child import ParentProcessCheck, ParentProcessWatch
from supervisors.children import (
    LIVE_STATES,
    ChildRecord,
    ChildState,
    Operation,
    OperationTimeout,
)
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
    SupervisorPing,
    SupervisorPong,
    SupervisorStarted,
    SupervisorStopped,
    TerminateChild,
    WhichChildren,
)
from supervisors.restarts import RestartIntensity, restart_scope
from supervisors.spec import (
    ChildSpec,
    ChildType,
    Restart,
    SupervisorFlags,
    validate_child_specs,
)

log = structlog.get_logger(__name__)

UNEXPECTED_EXIT_REASON = "no ChildStopping before the exit (crash or kill)"
DEPARTED_REASON = "its actor system left the convention"

# How often a child in another actor system checks that this supervisor still replies. After
# three unanswered checks it exits, so a restarted supervisor leaves no orphans behind.
REMOTE_WATCH_SECONDS = 5.0


class Phase(enum.Enum):
    UNCONFIGURED = "unconfigured"  # waiting for StartSupervisor or ChildInit
    STARTING = "starting"  # starting the children for the first time
    RUNNING = "running"
    SHUTTING_DOWN = "shutting_down"  # stopping the children before exiting
    STOPPED = "stopped"  # sent itself ActorExitRequest


class Supervisor(ParentProcessWatch, ActorTypeDispatcher):
    """Thespian actor that starts, watches and restarts child actors like an OTP supervisor.

    Configure it with `StartSupervisor` from the process that created it, or run it
    as a child of another supervisor through `supervisor_child_spec`. It runs one start
    or stop at a time from a queue, so children start in spec order and stop in
    reverse order. While it waits for a child, it still replies to queries.
    """

    def __init__(self) -> None:
        super().__init__()
        self._phase = Phase.UNCONFIGURED
        self._name = "unconfigured"
        self._flags = SupervisorFlags()
        self._intensity = RestartIntensity(self._flags.max_restarts, self._flags.max_seconds)
        self._children: list[ChildRecord] = []
        self._queue: deque[Operation] = deque()
        self._current: Operation | None = None
        self._sequence = 0

        # The parent receives ChildStarted or ChildStartFailed when it sent ChildInit,
        # SupervisorStarted when it sent StartSupervisor, and SupervisorEscalated.
        self._parent: ActorAddress | None = None
        self._child_id_in_parent: str | None = None

        self._shutdown_reason = ""
        self._escalate = False
        self._start_completed = False
        self._shutdown_requesters: list[ActorAddress] = []

        # Capabilities of the other actor systems in the convention, by admin address, for
        # children whose spec has a placement.
        self._convention_systems: dict[str, dict[str, Any]] = {}

    # --- configuration -------------------------------------------------------------

    def receiveMsg_StartSupervisor(self, message: StartSupervisor, sender: ActorAddress) -> None:
        if self._phase is not Phase.UNCONFIGURED:
            log.warning(
                "ignoring StartSupervisor for a configured supervisor",
                supervisor=self._name,
                requested_name=message.name,
            )
            return

        self._parent = sender
        error = self._validate_configuration(message.flags, message.child_specs)
        if error is not None:
            self._reject_configuration(message.name, error)
            return
        self._configure(message.name, message.flags, message.child_specs)

    def receiveMsg_ChildInit(self, message: ChildInit, sender: ActorAddress) -> None:
        if self._phase is not Phase.UNCONFIGURED:
            log.warning("ignoring ChildInit for a configured supervisor", supervisor=self._name)
            return

        self._parent = message.supervisor_address
        self._child_id_in_parent = message.child_id
        flags = message.start_args.get("flags")
        child_specs = message.start_args.get("child_specs")
        name = str(message.start_args.get("name") or message.child_id)
        error = self._validate_configuration(flags, child_specs)
        if error is not None:
            self._reject_configuration(name, error)
            return
        self._configure(name, flags, child_specs)

    @staticmethod
    def _validate_configuration(flags: Any, child_specs: Any) -> str | None:
        if not isinstance(flags, SupervisorFlags):
            return f"flags must be SupervisorFlags, got {flags!r}"
        if not isinstance(child_specs, list):
            return f"child_specs must be a list of ChildSpec, got {child_specs!r}"
        try:
            validate_child_specs(child_specs)
        except ValueError as error:
            return str(error)
        return None

    def _reject_configuration(self, name: str, error: str) -> None:
        self._name = name
        reason = f"invalid supervisor configuration: {error}"
        log.error("supervisor start failed", supervisor=name, reason=reason)
        self._send_start_failure(reason)
        self._phase = Phase.STOPPED
        self.send(self.myAddress, ActorExitRequest())

    def _configure(self, name: str, flags: SupervisorFlags, child_specs: list[ChildSpec]) -> None:
        self._name = name
        self._flags = flags
        self._intensity = RestartIntensity(flags.max_restarts, flags.max_seconds)
        self._children = [ChildRecord(spec) for spec in child_specs]
        self._queue = deque(Operation("start", spec.id) for spec in child_specs)
        self._phase = Phase.STARTING
        self._preload(child_specs)
        if any(spec.placement for spec in child_specs):
            # The admin replies with one update per system already in the convention, then
            # one per join or leave.
            self.notifyOnSystemRegistrationChanges(True)
        log.info(
            "supervisor starting",
            supervisor=name,
            strategy=flags.strategy.value,
            max_restarts=flags.max_restarts,
            max_seconds=flags.max_seconds,
            children=[spec.id for spec in child_specs],
        )
        self.start_parent_watch()
        self._run_next_operation()

    def _preload(self, child_specs: list[ChildSpec]) -> None:
        modules = list(dict.fromkeys(name for spec in child_specs for name in spec.preload))
        if not modules:
            return
        # Some imports start helper threads (numpy's BLAS pool, for one). A SIGCHLD delivered to
        # such a thread does not interrupt this process's select(), and two child exits can then
        # merge into one signal, so Thespian would miss a child's exit. Threads inherit the
        # signal mask of the thread that creates them, so SIGCHLD stays blocked in all of them.
        previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        try:
            for module in modules:
                started = time.monotonic()
                try:
                    importlib.import_module(module)
                except Exception as error:  # the child's own import will fail and report it
                    log.warning("preload failed", supervisor=self._name, module=module, error=str(error))
                    continue
                seconds = round(time.monotonic() - started, 2)
                log.info("module preloaded", supervisor=self._name, module=module, seconds=seconds)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)

    # --- the operation queue -------------------------------------------------------

    def _run_next_operation(self) -> None:
        """Start queued operations until one must wait for a child, or the queue is empty."""
        while self._current is None and self._queue:
            operation = self._queue.popleft()
            if operation.kind == "start":
                self._execute_start(operation)
            else:
                self._execute_stop(operation)

        if self._current is None and not self._queue:
            self._on_queue_empty()

    def _wait_for_child(self, operation: Operation, timeout: float) -> None:
        self._current = operation
        self._sequence += 1
        self.wakeupAfter(timedelta(seconds=timeout), OperationTimeout(self._sequence))

    def _finish_operation(self, error: str | None = None) -> Operation | None:
        """Clear the operation in progress and reply to its requester, if any."""
        operation = self._current
        self._current = None
        if operation is not None and operation.request is not None and operation.requester is not None:
            self.send(operation.requester, ChildCommandResult(operation.request, error))
        return operation

    def _reply_now(self, operation: Operation, error: str | None) -> None:
        if operation.request is not None and operation.requester is not None:
            self.send(operation.requester, ChildCommandResult(operation.request, error))

    def _on_queue_empty(self) -> None:
        if self._phase is Phase.STARTING:
            self._phase = Phase.RUNNING
            self._start_completed = True
            log.info("supervisor started", supervisor=self._name)
            # Members that joined while the children started (or before this supervisor
            # subscribed) get their share now.
            self._rebalance()
            if self._parent is None:
                return
            if self._child_id_in_parent is not None:
                self.send(self._parent, ChildStarted(self._child_id_in_parent, os.getpid()))
            else:
                self.send(self._parent, SupervisorStarted(self._name))
        elif self._phase is Phase.SHUTTING_DOWN:
            self._finish_shutdown()

    def _execute_start(self, operation: Operation) -> None:
        child = self._find_child(operation.child_id)
        if child is None:
            self._reply_now(operation, f"no child with id {operation.child_id!r}")
            return
        if child.state in LIVE_STATES:
            self._reply_now(operation, f"child {child.id!r} is already running")
            return

        child.start_count += 1
        child.exit_reason = None
        host, requirements = self._choose_host(child.spec)
        try:
            child.address = self.createActor(child.spec.actor_class, targetActorRequirements=requirements)
        except Exception as error:  # Thespian reports most creation errors as ChildActorExited instead
            reason = f"createActor failed: {type(error).__name__}: {error}"
            child.state = ChildState.STARTING
            self._current = operation
            self._on_start_failed(child, reason, actor_may_be_alive=False)
            return

        child.state = ChildState.STARTING
        child.placed_on = host
        watch = REMOTE_WATCH_SECONDS if host is not None else None
        self.send(child.address, ChildInit(child.id, child.spec.start_args, self.myAddress, watch))
        log.info(
            "starting child",
            supervisor=self._name,
            child_id=child.id,
            actor_class=child.spec.actor_class,
            restart_count=child.restart_count,
            placement=host or "home",
        )
        self._wait_for_child(operation, child.spec.start_timeout)

    def _execute_stop(self, operation: Operation) -> None:
        child = self._find_child(operation.child_id)
        if child is None or child.state not in (ChildState.STARTING, ChildState.RUNNING):
            if child is not None and child.state is ChildState.PENDING:
                child.state = ChildState.TERMINATED  # terminated before its first start
            if child is not None and operation.remove_after_stop:
                self._remove_child(child)
            self._reply_now(operation, None)
            return

        assert child.address is not None  # set for every live child
        child.state = ChildState.STOPPING
        if child.spec.type is ChildType.SUPERVISOR:
            # Shutdown lets the nested supervisor stop its own children in order. An
            # ActorExitRequest would make Thespian stop them all at once.
            self.send(child.address, Shutdown())
        else:
            self.send(child.address, ActorExitRequest())
        log.info(
            "stopping child",
            supervisor=self._name,
            child_id=child.id,
            shutdown_timeout=child.spec.shutdown_timeout,
        )
        self._wait_for_child(operation, child.spec.shutdown_timeout)

    # --- messages from children ----------------------------------------------------

    def receiveMsg_ChildStarted(self, message: ChildStarted, sender: ActorAddress) -> None:
        child = self._child_being_started(message.child_id, sender)
        if child is None:
            log.debug("ignoring stale ChildStarted", supervisor=self._name, child_id=message.child_id)
            return

        child.state = ChildState.RUNNING
        child.address = sender
        child.pid = message.pid
        child.local = message.pid is not None and _process_state(message.pid)[1] == os.getpid()
        log.info(
            "child started",
            supervisor=self._name,
            child_id=child.id,
            pid=message.pid,
            restart_count=child.restart_count,
        )
        self._finish_operation()
        self._run_next_operation()

    def receiveMsg_ChildStartFailed(self, message: ChildStartFailed, sender: ActorAddress) -> None:
        child = self._child_being_started(message.child_id, sender)
        if child is None:
            log.debug("ignoring stale ChildStartFailed", supervisor=self._name, child_id=message.child_id)
            return
        self._on_start_failed(child, f"init failed: {message.reason}", actor_may_be_alive=True)
        self._run_next_operation()

    def receiveMsg_ChildStopping(self, message: ChildStopping, sender: ActorAddress) -> None:
        child = self._find_live_child(sender)
        if child is None or child.id != message.child_id:
            log.debug("ignoring ChildStopping from an unknown sender", supervisor=self._name, child_id=message.child_id)
            return
        child.exit_reason = message.reason

    def receiveMsg_SupervisorEscalated(self, message: SupervisorEscalated, sender: ActorAddress) -> None:
        child = self._find_live_child(sender)
        if child is None:
            log.debug("ignoring SupervisorEscalated from an unknown sender", supervisor=self._name, child_name=message.name)
            return
        child.exit_reason = f"escalated: {message.reason}"
        log.warning(
            "child supervisor escalated",
            supervisor=self._name,
            child_id=child.id,
            reason=message.reason,
        )

    def receiveMsg_SupervisorStopped(self, message: SupervisorStopped, sender: ActorAddress) -> None:
        # A nested supervisor confirms the Shutdown that this supervisor sent it. The
        # ChildActorExited that follows is what completes the stop.
        log.debug("child supervisor stopped", supervisor=self._name, child_name=message.name)

    def receiveMsg_ChildActorExited(self, message: ChildActorExited, sender: ActorAddress) -> None:
        # Thespian may deliver two ChildActorExited for one exit (the child's own
        # goodbye and the SIGCHLD handler). The first clears child.address, so the
        # second matches no live child and is ignored here.
        child = self._find_live_child(message.childAddress)
        if child is None:
            return

        reason = child.exit_reason or UNEXPECTED_EXIT_REASON
        if self._phase is Phase.STOPPED:
            # Thespian is stopping the whole subtree after an ActorExitRequest.
            child.clear_actor(ChildState.TERMINATED)
            log.info("child stopped", supervisor=self._name, child_id=child.id)
            return
        if child.state is ChildState.STOPPING:
            self._on_child_stopped(child)
        elif child.state is ChildState.STARTING:
            self._on_start_failed(child, f"exited during start: {reason}", actor_may_be_alive=False)
        else:
            self._on_running_child_exited(child, reason)
        self._run_next_operation()

    def receiveMsg_PoisonMessage(self, message: PoisonMessage, sender: ActorAddress) -> None:
        # Thespian returns a ChildInit as poison when the child could not be created
        # or its handler raised twice.
        poison = message.poisonMessage
        if isinstance(poison, ChildInit):
            child = self._find_child(poison.child_id)
            if child is not None and child.state is ChildState.STARTING and self._is_current("start", child.id):
                self._on_start_failed(child, f"ChildInit was not delivered: {message.details}", actor_may_be_alive=True)
                self._run_next_operation()
                return
        log.warning("message returned as poison", supervisor=self._name, message=str(poison), details=message.details)

    def receiveMsg_WakeupMessage(self, message: WakeupMessage, sender: ActorAddress) -> None:
        payload = message.payload
        if isinstance(payload, ParentProcessCheck):
            if self._phase is not Phase.STOPPED:
                self.check_parent_process()
                self._check_for_unreaped_children()
            return
        if not isinstance(payload, OperationTimeout) or payload.sequence != self._sequence:
            return
        operation = self._current
        if operation is None:
            return
        child = self._find_child(operation.child_id)
        if child is None:
            return
        if operation.kind == "start" and child.state is ChildState.STARTING:
            log.warning(
                "child start timed out",
                supervisor=self._name,
                child_id=child.id,
                start_timeout=child.spec.start_timeout,
            )
            self._on_start_failed(
                child,
                f"no ChildStarted within start_timeout={child.spec.start_timeout} s",
                actor_may_be_alive=True,
            )
            self._run_next_operation()
        elif operation.kind == "stop" and child.state is ChildState.STOPPING:
            self._kill_child(child)
            self._on_child_stopped(child)
            self._run_next_operation()

    def _check_for_unreaped_children(self) -> None:
        """Treat running child processes of this process that have exited as exited children.

        Thespian learns of child exits from SIGCHLD. When two children die within a millisecond
        it can miss one, which is then never restarted. This check runs every
        `parent_check_interval` seconds, so such an exit is handled within that time.
        """
        for child in list(self._children):
            if child.state is not ChildState.RUNNING or not child.local or child.address is None:
                continue
            state, _ = _process_state(child.pid)
            if state in (None, "Z"):
                log.warning("child exit found by liveness check", supervisor=self._name, child_id=child.id, pid=child.pid)
                self.receiveMsg_ChildActorExited(ChildActorExited(child.address), self.myAddress)

    # --- placement in a convention of actor systems -----------------------------------

    def receiveMsg_ActorSystemConventionUpdate(self, message: ActorSystemConventionUpdate, sender: ActorAddress) -> None:
        system = str(message.remoteAdminAddress)
        if not message.remoteAdded:
            self._on_system_left(system)
            return
        self._convention_systems[system] = dict(message.remoteCapabilities or {})
        log.info("actor system joined the convention", supervisor=self._name, system=system)
        if self._phase is Phase.RUNNING:
            self._rebalance()

    def receiveMsg_SupervisorPing(self, message: SupervisorPing, sender: ActorAddress) -> None:
        self.send(sender, SupervisorPong())

    def _on_system_left(self, system: str) -> None:
        """Restart at once the children that ran in a system that left the convention.

        Thespian delivers their ChildActorExited only if it reaches this process before the system
        is gone. So the departure itself counts as their exit, and a late ChildActorExited then
        matches no live child.

        NOTE: a ChildActorExited that arrives before this update is still taken as a crash and counts
        toward the restart intensity, and so does a restart placed on the leaving system meanwhile.
        """
        self._convention_systems.pop(system, None)
        log.info("actor system left the convention", supervisor=self._name, system=system)
        for child in self._children:
            if child.placed_on != system or child.address is None or child.state not in LIVE_STATES:
                continue
            child.exit_reason = child.exit_reason or DEPARTED_REASON
            self.receiveMsg_ChildActorExited(ChildActorExited(child.address), self.myAddress)

    def _placement_hosts(self, placement: str) -> list[str]:
        """Convention members that offer `placement`, in the order they joined."""
        return [system for system, capabilities in self._convention_systems.items() if capabilities.get(placement)]

    def _rebalance(self) -> None:
        """Move children to placement hosts, one stop and start at a time, so siblings keep serving.

        Children at home always move. Among hosts, a child moves off a host that runs more than
        its even share, which spreads children over a host that has just joined.
        """
        for placement in dict.fromkeys(child.spec.placement for child in self._children if child.spec.placement):
            hosts = self._placement_hosts(placement)
            if not hosts:
                continue
            children = [c for c in self._children if c.spec.placement == placement and c.state is ChildState.RUNNING]
            share = -(-len(children) // len(hosts))  # ceiling division
            load = {host: sum(1 for c in children if c.placed_on == host) for host in hosts}
            for child in children:
                if self._has_queued_start(child.id):
                    continue
                if child.placed_on is not None and load.get(child.placed_on, 0) <= share:
                    continue
                if child.placed_on is not None:
                    load[child.placed_on] -= 1
                log.info("moving child to another actor system", supervisor=self._name, child_id=child.id)
                self._queue.append(Operation("stop", child.id))
                self._queue.append(Operation("start", child.id))
        self._run_next_operation()

    def _choose_host(self, spec: ChildSpec) -> tuple[str | None, dict[str, Any] | None]:
        """Pick the convention member for the child, with the Thespian requirements that select it.

        The member with the fewest of this supervisor's children wins. Its placement capability's
        value (true, or a name unique to that system) is the requirement, so Thespian creates the
        child exactly there. None, None: start it in this supervisor's own system.
        """
        if spec.placement is None:
            return None, None
        hosts = self._placement_hosts(spec.placement)
        if not hosts:
            return None, None
        live = [c for c in self._children if c.state in LIVE_STATES]
        host = min(hosts, key=lambda h: sum(1 for c in live if c.placed_on == h))
        return host, {spec.placement: self._convention_systems[host][spec.placement]}

    # --- child lifecycle -----------------------------------------------------------

    def _on_child_stopped(self, child: ChildRecord) -> None:
        child.clear_actor(ChildState.TERMINATED)
        log.info("child stopped", supervisor=self._name, child_id=child.id)
        operation = self._finish_operation()
        if operation is not None and operation.remove_after_stop:
            self._remove_child(child)

    def _on_start_failed(self, child: ChildRecord, reason: str, *, actor_may_be_alive: bool) -> None:
        """Handle a failed start of the child in the current start operation."""
        if actor_may_be_alive and child.address is not None:
            # The actor may be stuck in init or ignore its ChildInit, and a later
            # restart would run beside it.
            self.send(child.address, ActorExitRequest())
        child.clear_actor(ChildState.TERMINATED)
        log.warning(
            "child failed to start",
            supervisor=self._name,
            child_id=child.id,
            reason=reason,
            restart_count=child.restart_count,
        )
        operation = self._finish_operation(error=f"child {child.id!r} failed to start: {reason}")
        if operation is not None and operation.is_requested:
            # A RestartChild request reports the failure to its sender instead.
            return
        # A start cut short by its system leaving the convention is no crash either.
        self._on_child_failed(child, reason, "failed to start", counts=DEPARTED_REASON not in reason)

    def _on_running_child_exited(self, child: ChildRecord, reason: str) -> None:
        # A system that leaves the convention takes its children along. That is a planned
        # scale-in or a lost machine, not a crash loop, so those restarts do not count toward
        # the restart intensity (else four predictors on one machine would escalate).
        departed = reason == DEPARTED_REASON
        child.clear_actor(ChildState.TERMINATED)
        normal = reason in NORMAL_EXIT_REASONS
        log_method = log.info if normal else log.warning
        log_method(
            "child exited",
            supervisor=self._name,
            child_id=child.id,
            reason=reason,
            restart_count=child.restart_count,
        )
        self._on_child_failed(child, reason, "exited", counts=not departed)

    def _on_child_failed(self, child: ChildRecord, reason: str, event: str, *, counts: bool = True) -> None:
        """Apply the child's restart type, the restart intensity and the strategy.

        `event` is "exited" or "failed to start". A failed start is never normal.
        """
        if self._phase not in (Phase.STARTING, Phase.RUNNING):
            return

        normal = event == "exited" and reason in NORMAL_EXIT_REASONS
        restart = child.spec.restart
        if restart is Restart.TEMPORARY or (restart is Restart.TRANSIENT and normal):
            log.info(
                "child not restarted",
                supervisor=self._name,
                child_id=child.id,
                restart=restart.value,
                reason=reason,
            )
            if restart is Restart.TEMPORARY:
                self._remove_child(child)
            return

        if counts and not self._intensity.record_restart():
            self._begin_shutdown(
                f"reached max restart intensity ({self._flags.max_restarts} restarts "
                f"in {self._flags.max_seconds} s) when child {child.id!r} {event}: {reason}",
                escalate=True,
            )
            return

        self._schedule_restart(child, reason)

    def _schedule_restart(self, failed: ChildRecord, reason: str) -> None:
        """Queue the stops and starts that the strategy requires, ahead of other work."""
        scope_ids = restart_scope(self._flags.strategy, [child.id for child in self._children], failed.id)
        scope = [child for child in self._children if child.id in scope_ids]

        # Automatic operations for these children are replanned below. Operations
        # from RestartChild/TerminateChild requests stay queued after the restart.
        unaffected = deque(op for op in self._queue if op.is_requested or op.child_id not in scope_ids)
        queued_start_ids = {
            op.child_id for op in self._queue if op.kind == "start" and not op.is_requested and op.child_id in scope_ids
        }

        stops: list[Operation] = []
        starts: list[Operation] = []
        for child in reversed(scope):
            if child is not failed and child.state in (ChildState.STARTING, ChildState.RUNNING):
                # As in OTP, a temporary sibling stopped by a restart is removed.
                temporary = child.spec.restart is Restart.TEMPORARY
                stops.append(Operation("stop", child.id, remove_after_stop=temporary))
        for child in scope:
            was_live = child.state in (ChildState.STARTING, ChildState.RUNNING)
            if child is failed or child.id in queued_start_ids:
                starts.append(Operation("start", child.id))
            elif was_live and child.spec.restart is not Restart.TEMPORARY:
                starts.append(Operation("start", child.id))

        self._queue = deque(stops + starts) + unaffected
        log.info(
            "restarting children",
            supervisor=self._name,
            strategy=self._flags.strategy.value,
            child_id=failed.id,
            reason=reason,
            restarting=[op.child_id for op in starts],
            recent_restarts=self._intensity.recent_restarts,
        )

    def _kill_child(self, child: ChildRecord) -> None:
        """Force a child that ignored its stop request past shutdown_timeout to exit."""
        log.warning(
            "child shutdown timed out, killing it",
            supervisor=self._name,
            child_id=child.id,
            shutdown_timeout=child.spec.shutdown_timeout,
            pid=child.pid,
        )
        if child.spec.type is ChildType.SUPERVISOR:
            # Thespian forwards a recursive ActorExitRequest to the whole subtree.
            if child.address is not None:
                self.send(child.address, ActorExitRequest())
            return
        if child.pid is None or not child.local:
            # The pid of a child in another actor system may name another machine's process.
            # NOTE: such a child that ignores its ActorExitRequest is left to its own system.
            return
        try:
            os.kill(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    # --- shutdown ------------------------------------------------------------------

    def receiveMsg_Shutdown(self, message: Shutdown, sender: ActorAddress) -> None:
        if self._phase is Phase.STOPPED:
            return
        self._shutdown_requesters.append(sender)
        if self._phase is Phase.UNCONFIGURED:
            self._finish_shutdown()
            return
        self._begin_shutdown(message.reason, escalate=False)

    def receiveMsg_ActorExitRequest(self, message: ActorExitRequest, sender: ActorAddress) -> None:
        if self._phase is Phase.STOPPED:
            return
        # Thespian stops the actor right after this handler and forwards the request
        # to all children at once, so there is no ordered stop on this path.
        log.info(
            "supervisor exiting on ActorExitRequest",
            supervisor=self._name,
            live_children=[child.id for child in self._children if child.state in LIVE_STATES],
        )
        self._phase = Phase.STOPPED

    def _begin_shutdown(self, reason: str, *, escalate: bool) -> None:
        if self._phase is Phase.SHUTTING_DOWN:
            self._escalate = self._escalate or escalate
            return

        self._phase = Phase.SHUTTING_DOWN
        self._shutdown_reason = reason
        self._escalate = escalate
        for operation in self._queue:
            self._reply_now(operation, f"supervisor {self._name!r} is shutting down")
        self._queue = deque(
            Operation("stop", child.id)
            for child in reversed(self._children)
            if child.state in (ChildState.STARTING, ChildState.RUNNING)
        )
        log_method = log.error if escalate else log.info
        log_method("supervisor shutting down", supervisor=self._name, reason=reason)
        self._run_next_operation()

    def _finish_shutdown(self) -> None:
        if self._escalate:
            log.error(
                "supervisor escalating to its parent",
                supervisor=self._name,
                reason=self._shutdown_reason,
            )
            if self._start_completed:
                if self._parent is not None:
                    self.send(self._parent, SupervisorEscalated(self._name, self._shutdown_reason))
            else:
                self._send_start_failure(self._shutdown_reason)

        for requester in self._shutdown_requesters:
            self.send(requester, SupervisorStopped(self._name))
        log.info("supervisor stopped", supervisor=self._name)
        self._phase = Phase.STOPPED
        self.send(self.myAddress, ActorExitRequest())

    def _send_start_failure(self, reason: str) -> None:
        if self._parent is None:
            return
        if self._child_id_in_parent is not None:
            self.send(self._parent, ChildStartFailed(self._child_id_in_parent, reason))
        else:
            self.send(self._parent, SupervisorEscalated(self._name, reason))

    # --- queries and commands ------------------------------------------------------

    def receiveMsg_WhichChildren(self, message: WhichChildren, sender: ActorAddress) -> None:
        children = [self._child_status(child) for child in self._children]
        self.send(sender, ChildrenReport(self._name, children, os.getpid()))

    def receiveMsg_CountChildren(self, message: CountChildren, sender: ActorAddress) -> None:
        supervisors = sum(1 for child in self._children if child.spec.type is ChildType.SUPERVISOR)
        self.send(
            sender,
            ChildCounts(
                specs=len(self._children),
                active=sum(1 for child in self._children if child.state is ChildState.RUNNING),
                supervisors=supervisors,
                workers=len(self._children) - supervisors,
            ),
        )

    def receiveMsg_RestartChild(self, message: RestartChild, sender: ActorAddress) -> None:
        error = self._command_error(message.child_id)
        child = self._find_child(message.child_id)
        if error is None and child is not None:
            if child.state in LIVE_STATES:
                error = f"child {child.id!r} is already running"
            elif self._has_queued_start(child.id):
                error = f"child {child.id!r} is already queued to start"
        if error is not None:
            self.send(sender, ChildCommandResult(message, error))
            return
        self._queue.append(Operation("start", message.child_id, request=message, requester=sender))
        self._run_next_operation()

    def receiveMsg_TerminateChild(self, message: TerminateChild, sender: ActorAddress) -> None:
        error = self._command_error(message.child_id)
        child = self._find_child(message.child_id)
        if error is not None or child is None:
            self.send(sender, ChildCommandResult(message, error))
            return
        # A child waiting for an automatic restart stays down.
        self._queue = deque(op for op in self._queue if op.is_requested or op.child_id != child.id)
        temporary = child.spec.restart is Restart.TEMPORARY
        self._queue.append(
            Operation("stop", child.id, request=message, requester=sender, remove_after_stop=temporary)
        )
        self._run_next_operation()

    def _command_error(self, child_id: str) -> str | None:
        if self._phase not in (Phase.STARTING, Phase.RUNNING):
            return f"supervisor {self._name!r} is {self._phase.value}"
        if self._find_child(child_id) is None:
            return f"no child with id {child_id!r}"
        return None

    def _child_status(self, child: ChildRecord) -> ChildStatus:
        state = child.state
        if state is ChildState.TERMINATED and self._has_queued_start(child.id):
            state = ChildState.RESTARTING
        # Before ChildStarted the address is the local one from createActor, which
        # Thespian cannot pickle into a reply.
        reportable = state in (ChildState.RUNNING, ChildState.STOPPING)
        return ChildStatus(
            child_id=child.id,
            address=child.address if reportable else None,
            restart_count=child.restart_count,
            state=state.value,
            pid=child.pid if reportable else None,
        )

    def receiveUnrecognizedMessage(self, message: Any, sender: ActorAddress) -> None:
        log.warning(
            "ignoring unrecognized message",
            supervisor=self._name,
            message_type=type(message).__name__,
            sender=str(sender),
        )

    # --- lookups -------------------------------------------------------------------

    def _find_child(self, child_id: str) -> ChildRecord | None:
        for child in self._children:
            if child.id == child_id:
                return child
        return None

    def _find_live_child(self, address: ActorAddress | None) -> ChildRecord | None:
        # ActorAddress is unhashable and its equality resolves createActor's local
        # addresses, so a linear scan with == is the reliable lookup.
        for child in self._children:
            if child.state in LIVE_STATES and child.address is not None and child.address == address:
                return child
        return None

    def _child_being_started(self, child_id: str, sender: ActorAddress) -> ChildRecord | None:
        child = self._find_child(child_id)
        if child is None or child.state is not ChildState.STARTING:
            return None
        if not self._is_current("start", child_id) or not child.address == sender:
            return None
        return child

    def _is_current(self, kind: str, child_id: str) -> bool:
        return self._current is not None and self._current.kind == kind and self._current.child_id == child_id

    def _has_queued_start(self, child_id: str) -> bool:
        return any(op.kind == "start" and op.child_id == child_id for op in self._queue)

    def _remove_child(self, child: ChildRecord) -> None:
        if child in self._children:
            self._children.remove(child)
            log.info("child removed", supervisor=self._name, child_id=child.id, restart=child.spec.restart.value)


def _process_state(pid: int) -> tuple[str | None, int | None]:
    """Return the process's state letter and parent pid from Linux /proc, or (None, None) if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError, OSError):
        return None, None
    return fields[0], int(fields[1])
