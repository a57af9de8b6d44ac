"""Permanent, transient and temporary children under a one_for_one supervisor."""

from __future__ import annotations

from supervised_test_actors import StopNormally
from supervision_harness import Harness

from supervisors import Restart, Strategy, SupervisorFlags

FLAGS = SupervisorFlags(Strategy.ONE_FOR_ONE, max_restarts=10, max_seconds=5.0)


def test_permanent_restarts_after_normal_stop(harness: Harness) -> None:
    supervisor = harness.start_supervisor(FLAGS, [harness.worker_spec("p", Restart.PERMANENT)])
    before = harness.identities(supervisor, ["p"])["p"]

    harness.system.tell(harness.report(supervisor)["p"].address, StopNormally())
    report = harness.wait_for_running(supervisor, ["p"], p=1)
    after = harness.identity(report["p"].address)

    assert after.pid != before.pid


def test_permanent_restarts_after_kill(harness: Harness) -> None:
    supervisor = harness.start_supervisor(FLAGS, [harness.worker_spec("p", Restart.PERMANENT)])
    before = harness.identities(supervisor, ["p"])["p"]

    harness.kill(before.pid)
    report = harness.wait_for_running(supervisor, ["p"], p=1)

    assert harness.identity(report["p"].address).pid != before.pid


def test_transient_normal_stop_not_restarted(harness: Harness) -> None:
    specs = [harness.worker_spec("t", Restart.TRANSIENT), harness.worker_spec("other")]
    supervisor = harness.start_supervisor(FLAGS, specs)
    before = harness.identities(supervisor, ["t", "other"])

    harness.system.tell(harness.report(supervisor)["t"].address, StopNormally("normal"))
    report = harness.wait_for_report(
        supervisor, lambda report: report["t"].state == "terminated", "transient child terminated"
    )
    harness.wait_until_gone([before["t"].pid])

    assert report["t"].address is None
    assert report["t"].restart_count == 0
    assert report["other"].state == "running"
    assert harness.identity(report["other"].address).pid == before["other"].pid
    assert harness.events() == ["start t", "start other", "stop t"]


def test_transient_abnormal_stop_restarted(harness: Harness) -> None:
    supervisor = harness.start_supervisor(FLAGS, [harness.worker_spec("t", Restart.TRANSIENT)])
    before = harness.identities(supervisor, ["t"])["t"]

    harness.system.tell(harness.report(supervisor)["t"].address, StopNormally("lost database connection"))
    report = harness.wait_for_running(supervisor, ["t"], t=1)

    assert harness.identity(report["t"].address).pid != before.pid


def test_transient_kill_restarted(harness: Harness) -> None:
    supervisor = harness.start_supervisor(FLAGS, [harness.worker_spec("t", Restart.TRANSIENT)])
    before = harness.identities(supervisor, ["t"])["t"]

    harness.kill(before.pid)
    report = harness.wait_for_running(supervisor, ["t"], t=1)

    assert harness.identity(report["t"].address).pid != before.pid


def test_temporary_kill_not_restarted(harness: Harness) -> None:
    specs = [harness.worker_spec("tmp", Restart.TEMPORARY), harness.worker_spec("other")]
    supervisor = harness.start_supervisor(FLAGS, specs)
    before = harness.identities(supervisor, ["tmp", "other"])

    harness.kill(before["tmp"].pid)
    # As in OTP, the supervisor removes a temporary child's record once it exits.
    report = harness.wait_for_report(supervisor, lambda report: "tmp" not in report, "temporary child removed")

    assert list(report) == ["other"]
    assert report["other"].restart_count == 0
    assert harness.identity(report["other"].address).pid == before["other"].pid
    assert harness.events() == ["start tmp", "start other"]
