"""Restart strategies on a supervisor with three workers, a, b and c."""

from __future__ import annotations

from supervised_test_actors import Crash
from supervision_harness import Harness

from supervisors import Restart, Strategy, SupervisorFlags

CHILD_IDS = ["a", "b", "c"]
# Generous intensity so that only the strategy is under test.
FLAGS = {"max_restarts": 10, "max_seconds": 5.0}


def start_three_workers(harness: Harness, strategy: Strategy):
    specs = [harness.worker_spec(child_id) for child_id in CHILD_IDS]
    supervisor = harness.start_supervisor(SupervisorFlags(strategy, **FLAGS), specs)
    return supervisor, harness.identities(supervisor, CHILD_IDS)


def test_one_for_one_restarts_killed_child(harness: Harness) -> None:
    supervisor, before = start_three_workers(harness, Strategy.ONE_FOR_ONE)

    harness.kill(before["b"].pid)
    report = harness.wait_for_running(supervisor, CHILD_IDS, b=1)
    after = harness.identities(supervisor, CHILD_IDS)

    assert after["b"].pid != before["b"].pid
    assert after["a"].pid == before["a"].pid
    assert after["c"].pid == before["c"].pid
    assert report["b"].restart_count == 1
    assert report["a"].restart_count == 0
    assert report["c"].restart_count == 0
    assert harness.events() == ["start a", "start b", "start c", "start b"]


def test_one_for_one_crash_message_restarts(harness: Harness) -> None:
    supervisor, before = start_three_workers(harness, Strategy.ONE_FOR_ONE)

    harness.system.tell(harness.report(supervisor)["a"].address, Crash())
    harness.wait_for_running(supervisor, CHILD_IDS, a=1)
    after = harness.identities(supervisor, CHILD_IDS)

    assert after["a"].pid != before["a"].pid
    assert after["b"].pid == before["b"].pid
    assert after["c"].pid == before["c"].pid


def test_one_for_all_restarts_every_child(harness: Harness) -> None:
    supervisor, before = start_three_workers(harness, Strategy.ONE_FOR_ALL)

    harness.kill(before["b"].pid)
    report = harness.wait_for_running(supervisor, CHILD_IDS, a=1, b=1, c=1)
    after = harness.identities(supervisor, CHILD_IDS)

    for child_id in CHILD_IDS:
        assert after[child_id].pid != before[child_id].pid, child_id
    assert list(report) == CHILD_IDS
    assert after["a"].started_at < after["b"].started_at < after["c"].started_at
    # The survivors stop in reverse start order before all start again in order.
    assert harness.events()[3:] == ["stop c", "stop a", "start a", "start b", "start c"]
    harness.wait_until_gone([before[child_id].pid for child_id in CHILD_IDS])


def test_rest_for_one_restarts_later_children(harness: Harness) -> None:
    supervisor, before = start_three_workers(harness, Strategy.REST_FOR_ONE)

    harness.kill(before["b"].pid)
    report = harness.wait_for_running(supervisor, CHILD_IDS, b=1, c=1)
    after = harness.identities(supervisor, CHILD_IDS)

    assert after["a"].pid == before["a"].pid
    assert after["b"].pid != before["b"].pid
    assert after["c"].pid != before["c"].pid
    assert report["a"].restart_count == 0
    assert after["b"].started_at < after["c"].started_at
    assert harness.events()[3:] == ["stop c", "start b", "start c"]
    harness.wait_until_gone([before["b"].pid, before["c"].pid])


def test_rest_for_one_last_child_alone(harness: Harness) -> None:
    supervisor, before = start_three_workers(harness, Strategy.REST_FOR_ONE)

    harness.kill(before["c"].pid)
    harness.wait_for_running(supervisor, CHILD_IDS, c=1)
    after = harness.identities(supervisor, CHILD_IDS)

    assert after["a"].pid == before["a"].pid
    assert after["b"].pid == before["b"].pid
    assert after["c"].pid != before["c"].pid


def test_one_for_all_removes_temporary_sibling(harness: Harness) -> None:
    specs = [harness.worker_spec("a"), harness.worker_spec("tmp", Restart.TEMPORARY), harness.worker_spec("c")]
    supervisor = harness.start_supervisor(SupervisorFlags(Strategy.ONE_FOR_ALL, **FLAGS), specs)
    before = harness.identities(supervisor, ["a", "tmp", "c"])

    harness.kill(before["a"].pid)
    # As in OTP, a temporary child stopped by a restart is not started again.
    report = harness.wait_for_report(
        supervisor,
        lambda report: list(report) == ["a", "c"] and all(status.state == "running" for status in report.values()),
        "a and c running without tmp",
    )

    assert report["a"].restart_count == 1
    assert report["c"].restart_count == 1
    harness.wait_until_gone([before["tmp"].pid, before["c"].pid])
