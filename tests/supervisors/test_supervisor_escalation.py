"""Restart intensity, escalation to the parent, and children that fail to start."""

from __future__ import annotations

from supervised_test_actors import Silent
from supervision_harness import WAIT_TIMEOUT, Harness, class_path

from supervisors import (
    SUPERVISOR_ACTOR_CLASS,
    Restart,
    StartSupervisor,
    Strategy,
    SupervisorEscalated,
    SupervisorFlags,
    SupervisorStarted,
    supervisor_child_spec,
)


def start_expecting_escalation(harness: Harness, flags: SupervisorFlags, specs) -> SupervisorEscalated:
    address = harness.system.createActor(SUPERVISOR_ACTOR_CLASS)
    reply = harness.ask(address, StartSupervisor(flags, specs, "root"), (SupervisorStarted, SupervisorEscalated), WAIT_TIMEOUT)
    assert isinstance(reply, SupervisorEscalated), f"expected SupervisorEscalated, got {reply!r}"
    return reply


def test_intensity_exceeded_escalates_to_parent(harness: Harness) -> None:
    sub_flags = SupervisorFlags(Strategy.ONE_FOR_ONE, max_restarts=1, max_seconds=5.0)
    sub_spec = supervisor_child_spec(
        "sub",
        sub_flags,
        [harness.worker_spec("w1"), harness.worker_spec("w2")],
        start_timeout=10.0,
        shutdown_timeout=10.0,
    )
    root_flags = SupervisorFlags(Strategy.ONE_FOR_ONE, max_restarts=5, max_seconds=5.0)
    root = harness.start_supervisor(root_flags, [harness.worker_spec("sibling"), sub_spec])
    sibling_before = harness.identities(root, ["sibling"])["sibling"]
    sub_before = harness.report(root)["sub"].address
    workers_before = harness.identities(sub_before, ["w1", "w2"])
    sub_pid_before = workers_before["w1"].ppid

    # The first restart is within the sub-supervisor's intensity of 1 in 5 s.
    harness.kill(workers_before["w1"].pid)
    harness.wait_for_running(sub_before, ["w1"], w1=1)
    restarted_w1 = harness.identities(sub_before, ["w1"])["w1"]

    # The second exceeds it, so "sub" stops w2, escalates and exits, and the root
    # restarts "sub" with fresh workers.
    harness.kill(restarted_w1.pid)
    root_report = harness.wait_for_running(root, ["sibling", "sub"], sub=1)
    sub_after = root_report["sub"].address
    sub_report = harness.wait_for_running(sub_after, ["w1", "w2"], w1=0, w2=0)
    workers_after = harness.identities(sub_after, ["w1", "w2"])

    assert root_report["sibling"].restart_count == 0
    assert harness.identity(root_report["sibling"].address).pid == sibling_before.pid
    assert workers_after["w1"].ppid != sub_pid_before
    assert workers_after["w2"].pid != workers_before["w2"].pid
    assert list(sub_report) == ["w1", "w2"]
    harness.wait_until_gone([workers_before["w2"].pid, sub_pid_before])
    # w2 was stopped by its supervisor (terminate ran) rather than killed.
    events = harness.events()
    assert "stop w2" in events
    assert events[-2:] == ["start w1", "start w2"]


def test_root_escalates_to_starter(harness: Harness) -> None:
    flags = SupervisorFlags(Strategy.ONE_FOR_ONE, max_restarts=0, max_seconds=5.0)
    root = harness.start_supervisor(flags, [harness.worker_spec("a"), harness.worker_spec("b")])
    before = harness.identities(root, ["a", "b"])

    harness.kill(before["a"].pid)
    message = harness.system.listen(WAIT_TIMEOUT)

    assert isinstance(message, SupervisorEscalated), f"expected SupervisorEscalated, got {message!r}"
    assert message.name == "root"
    assert "max restart intensity" in message.reason
    assert "'a'" in message.reason
    harness.wait_until_gone([before["b"].pid, before["a"].ppid])
    assert harness.events()[-1] == "stop b"


def test_failed_starts_count_as_restarts(harness: Harness) -> None:
    counter = harness.tmp_path / "starts"
    spec = harness.worker_spec("flaky", start_counter=str(counter), fail_first_starts=2)
    flags = SupervisorFlags(Strategy.ONE_FOR_ONE, max_restarts=5, max_seconds=5.0)

    root = harness.start_supervisor(flags, [spec])
    report = harness.report(root)

    assert report["flaky"].state == "running"
    assert report["flaky"].restart_count == 2
    assert counter.read_text() == "3"


def test_always_failing_child_escalates(harness: Harness) -> None:
    counter = harness.tmp_path / "starts"
    spec = harness.worker_spec("broken", start_counter=str(counter), fail_first_starts=100)
    flags = SupervisorFlags(Strategy.ONE_FOR_ONE, max_restarts=2, max_seconds=5.0)

    reply = start_expecting_escalation(harness, flags, [spec])

    assert "failed to start" in reply.reason
    assert "init failed" in reply.reason
    # The first start plus max_restarts restarts, then the supervisor gives up.
    assert counter.read_text() == "3"


def test_start_timeout_counts_as_failure(harness: Harness) -> None:
    spec = harness.worker_spec("silent", actor_class=class_path(Silent), start_timeout=0.3)
    flags = SupervisorFlags(Strategy.ONE_FOR_ONE, max_restarts=0, max_seconds=5.0)

    reply = start_expecting_escalation(harness, flags, [spec])

    assert "no ChildStarted within start_timeout=0.3 s" in reply.reason


def test_unknown_actor_class_fails_start(harness: Harness) -> None:
    spec = harness.worker_spec("missing", actor_class="supervised_test_actors.DoesNotExist")
    flags = SupervisorFlags(Strategy.ONE_FOR_ONE, max_restarts=0, max_seconds=5.0)

    reply = start_expecting_escalation(harness, flags, [spec])

    assert "failed to start" in reply.reason


def test_nested_start_failure_reaches_parent(harness: Harness) -> None:
    broken = harness.worker_spec("broken", Restart.PERMANENT, always_fail=True)
    sub_flags = SupervisorFlags(Strategy.ONE_FOR_ONE, max_restarts=0, max_seconds=5.0)
    sub_spec = supervisor_child_spec("sub", sub_flags, [broken], start_timeout=10.0)
    root_flags = SupervisorFlags(Strategy.ONE_FOR_ONE, max_restarts=1, max_seconds=5.0)

    reply = start_expecting_escalation(harness, root_flags, [sub_spec])

    # The root retried "sub" once, then gave up because "sub" kept failing to start.
    assert "'sub' failed to start" in reply.reason
    assert "worker configured to fail in init" in reply.reason
