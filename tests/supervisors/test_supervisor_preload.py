"""ChildSpec.preload: modules imported by the supervisor before it forks its children."""

from __future__ import annotations

import dataclasses

from supervision_harness import Harness

from supervisors import Strategy, SupervisorFlags

CHILD_IDS = ["a", "b", "c"]


def test_preloaded_thread_does_not_hide_simultaneous_exits(harness: Harness) -> None:
    # The preloaded module starts a thread in the supervisor's process. Two children killed at
    # the same moment must both be noticed and restarted.
    specs = [dataclasses.replace(harness.worker_spec(child_id), preload=("thread_on_import",)) for child_id in CHILD_IDS]
    supervisor = harness.start_supervisor(SupervisorFlags(Strategy.ONE_FOR_ONE, 10, 5.0), specs)
    before = harness.identities(supervisor, CHILD_IDS)

    harness.kill(before["a"].pid)
    harness.kill(before["c"].pid)
    report = harness.wait_for_running(supervisor, CHILD_IDS, a=1, c=1)
    after = harness.identities(supervisor, CHILD_IDS)

    assert after["a"].pid != before["a"].pid
    assert after["c"].pid != before["c"].pid
    assert after["b"].pid == before["b"].pid
    assert report["a"].restart_count == 1
    assert report["c"].restart_count == 1


def test_preload_of_a_missing_module_still_starts_children(harness: Harness) -> None:
    specs = [dataclasses.replace(harness.worker_spec("a"), preload=("no_such_module_anywhere",))]
    supervisor = harness.start_supervisor(SupervisorFlags(Strategy.ONE_FOR_ONE, 10, 5.0), specs)
    assert harness.wait_for_running(supervisor, ["a"])["a"].state == "running"
