"""OTP's supervisor API (which/count/terminate/restart child) and orderly shutdown."""

from __future__ import annotations

import time

from supervision_harness import WAIT_TIMEOUT, Harness

from supervisors import (
    ChildCommandResult,
    ChildCounts,
    CountChildren,
    Restart,
    RestartChild,
    Shutdown,
    Strategy,
    SupervisorFlags,
    SupervisorStopped,
    TerminateChild,
    supervisor_child_spec,
)

FLAGS = SupervisorFlags(Strategy.ONE_FOR_ALL, max_restarts=10, max_seconds=5.0)


def test_which_children_in_start_order(harness: Harness) -> None:
    specs = [harness.worker_spec(child_id) for child_id in ("c", "a", "b")]
    supervisor = harness.start_supervisor(FLAGS, specs, name="workers")

    report = harness.report(supervisor)

    assert list(report) == ["c", "a", "b"]
    for status in report.values():
        assert status.state == "running"
        assert status.restart_count == 0
        assert status.address is not None
    assert harness.events() == ["start c", "start a", "start b"]


def test_count_children(harness: Harness) -> None:
    sub = supervisor_child_spec("sub", FLAGS, [harness.worker_spec("inner")])
    supervisor = harness.start_supervisor(FLAGS, [harness.worker_spec("a"), harness.worker_spec("b"), sub])

    counts = harness.ask(supervisor, CountChildren(), ChildCounts)

    assert counts == ChildCounts(specs=3, active=3, supervisors=1, workers=2)


def test_terminate_then_restart_child(harness: Harness) -> None:
    supervisor = harness.start_supervisor(FLAGS, [harness.worker_spec("a"), harness.worker_spec("b")])
    before = harness.identities(supervisor, ["a", "b"])

    terminated = harness.ask(supervisor, TerminateChild("a"), ChildCommandResult)
    report = harness.report(supervisor)

    assert terminated is not None and terminated.ok, terminated
    assert report["a"].state == "terminated"
    # A requested stop is no failure, so one_for_all leaves b alone.
    assert harness.identity(report["b"].address).pid == before["b"].pid
    harness.wait_until_gone([before["a"].pid])

    restarted = harness.ask(supervisor, RestartChild("a"), ChildCommandResult)
    report = harness.report(supervisor)

    assert restarted is not None and restarted.ok, restarted
    assert report["a"].state == "running"
    assert report["a"].restart_count == 1
    assert harness.identity(report["a"].address).pid != before["a"].pid
    assert harness.events() == ["start a", "start b", "stop a", "start a"]


def test_restart_running_child_rejected(harness: Harness) -> None:
    supervisor = harness.start_supervisor(FLAGS, [harness.worker_spec("a")])

    result = harness.ask(supervisor, RestartChild("a"), ChildCommandResult)

    assert result is not None
    assert not result.ok
    assert "already running" in result.error


def test_terminate_unknown_child_rejected(harness: Harness) -> None:
    supervisor = harness.start_supervisor(FLAGS, [harness.worker_spec("a")])

    result = harness.ask(supervisor, TerminateChild("nope"), ChildCommandResult)

    assert result is not None
    assert result.error == "no child with id 'nope'"


def test_terminate_temporary_child_removes_it(harness: Harness) -> None:
    specs = [harness.worker_spec("tmp", Restart.TEMPORARY), harness.worker_spec("a")]
    supervisor = harness.start_supervisor(FLAGS, specs)

    result = harness.ask(supervisor, TerminateChild("tmp"), ChildCommandResult)

    assert result is not None and result.ok, result
    assert list(harness.report(supervisor)) == ["a"]


def test_shutdown_timeout_kills_hung_child(harness: Harness) -> None:
    spec = harness.worker_spec("hung", shutdown_timeout=0.5, hang_on_exit=True)
    supervisor = harness.start_supervisor(FLAGS, [spec])
    before = harness.identities(supervisor, ["hung"])["hung"]

    started = time.monotonic()
    result = harness.ask(supervisor, TerminateChild("hung"), ChildCommandResult, timeout=WAIT_TIMEOUT)
    elapsed = time.monotonic() - started

    assert result is not None and result.ok, result
    assert 0.4 < elapsed < 5.0
    harness.wait_until_gone([before.pid], timeout=2.0)


def test_shutdown_stops_tree_in_reverse_order(harness: Harness) -> None:
    sub = supervisor_child_spec("sub", FLAGS, [harness.worker_spec("s1"), harness.worker_spec("s2")])
    specs = [harness.worker_spec("a"), sub, harness.worker_spec("b")]
    supervisor = harness.start_supervisor(FLAGS, specs)
    report = harness.report(supervisor)
    pids = [harness.identity(report[child_id].address).pid for child_id in ("a", "b")]
    pids += [identity.pid for identity in harness.identities(report["sub"].address, ["s1", "s2"]).values()]

    reply = harness.ask(supervisor, Shutdown(), SupervisorStopped, timeout=WAIT_TIMEOUT)

    assert reply == SupervisorStopped("root")
    assert harness.events() == [
        "start a",
        "start s1",
        "start s2",
        "start b",
        "stop b",
        "stop s2",
        "stop s1",
        "stop a",
    ]
    harness.wait_until_gone(pids)
