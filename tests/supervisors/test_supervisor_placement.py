"""Children with a placement run in another actor system of the convention while one offers it.

The harness's system leads the convention; a second system in its own process joins it with the
capability. Its departure must restart the children at home without counting toward the restart
intensity, however many children it held.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from supervision_harness import free_port

from supervisors import ChildSpec, Strategy, SupervisorFlags

TESTS_DIR = Path(__file__).resolve().parent

CAPABILITY = "Test Placement Host"


def start_member(leader_port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(TESTS_DIR / "convention_member.py"), str(leader_port), str(free_port()), CAPABILITY],
        env={"PYTHONPATH": f"{TESTS_DIR}:{TESTS_DIR.parents[1]}", "PATH": "/usr/bin:/bin"},
    )


def test_children_follow_member_join_and_leave(harness):
    ids = ["a", "b", "c", "d"]
    specs = [replace(harness.worker_spec(child_id), placement=CAPABILITY) for child_id in ids]
    # Three restarts allowed: four exits counted one by one would escalate. A child's exit that
    # reaches the supervisor before the departure still counts (see _on_system_left).
    supervisor = harness.start_supervisor(SupervisorFlags(Strategy.ONE_FOR_ONE, 3, 60.0), specs)
    supervisor_pid = harness.identity(harness.report(supervisor)["a"].address).ppid
    assert {identity.ppid for identity in harness.identities(supervisor, ids).values()} == {supervisor_pid}

    member = start_member(harness.admin_port)
    try:
        # Each child moves once, with one stop and start.
        harness.wait_for_running(supervisor, ids, a=1, b=1, c=1, d=1)
        away = harness.identities(supervisor, ids)
        assert supervisor_pid not in {identity.ppid for identity in away.values()}
    finally:
        member.terminate()
        member.wait(timeout=60)

    harness.wait_until_gone([identity.pid for identity in away.values()])
    # A child whose exit arrived before the departure was restarted once more, so its count can be
    # above 2. No child may be left down.
    harness.wait_for_report(
        supervisor,
        lambda report: all(status.state == "running" and status.restart_count >= 2 for status in report.values()),
        "every child restarted at home",
    )
    home = harness.identities(supervisor, ids)
    assert {identity.ppid for identity in home.values()} == {supervisor_pid}


def test_placement_must_name_a_capability():
    with pytest.raises(ValueError, match="placement of child 'a' must be a capability name"):
        ChildSpec(id="a", actor_class="tests.Worker", placement="")


def test_children_spread_over_two_members(harness):
    ids = ["a", "b", "c", "d"]
    specs = [replace(harness.worker_spec(child_id), placement=CAPABILITY) for child_id in ids]
    supervisor = harness.start_supervisor(SupervisorFlags(Strategy.ONE_FOR_ONE, 1, 60.0), specs)
    members = [start_member(harness.admin_port)]
    try:
        harness.wait_for_running(supervisor, ids, a=1, b=1, c=1, d=1)
        first = {identity.ppid for identity in harness.identities(supervisor, ids).values()}
        assert len(first) == 1

        # A second member takes its even share: two children move over, two stay.
        members.append(start_member(harness.admin_port))

        def spread():
            report = harness.report(supervisor)
            counts = sorted(status.restart_count for status in report.values())
            return counts == [1, 1, 2, 2] and all(status.state == "running" for status in report.values())

        harness.wait_for_report(supervisor, lambda _: spread(), "two children moved to the second member")
        parents = [identity.ppid for identity in harness.identities(supervisor, ids).values()]
        assert sorted(parents.count(parent) for parent in set(parents)) == [2, 2]
        assert first <= set(parents)
    finally:
        for member in members:
            member.terminate()
            member.wait(timeout=60)
