"""Tests of the parts that need no actor system: specs, strategy scope, intensity."""

from __future__ import annotations

import pytest

from supervisors import ChildSpec, Restart, Strategy, SupervisorFlags, supervisor_child_spec
from supervisors.restarts import RestartIntensity, restart_scope
from supervisors.spec import ChildType


@pytest.mark.parametrize(
    ("strategy", "failed", "expected"),
    [
        (Strategy.ONE_FOR_ONE, "b", ["b"]),
        (Strategy.ONE_FOR_ALL, "b", ["a", "b", "c"]),
        (Strategy.REST_FOR_ONE, "a", ["a", "b", "c"]),
        (Strategy.REST_FOR_ONE, "b", ["b", "c"]),
        (Strategy.REST_FOR_ONE, "c", ["c"]),
    ],
)
def test_restart_scope_per_strategy(strategy: Strategy, failed: str, expected: list[str]) -> None:
    assert restart_scope(strategy, ["a", "b", "c"], failed) == expected


def test_restart_scope_unknown_child() -> None:
    with pytest.raises(ValueError):
        restart_scope(Strategy.ONE_FOR_ONE, ["a"], "missing")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_intensity_allows_max_restarts() -> None:
    clock = FakeClock()
    intensity = RestartIntensity(max_restarts=2, max_seconds=5.0, clock=clock)

    assert intensity.record_restart()
    clock.now += 1
    assert intensity.record_restart()
    clock.now += 1
    assert not intensity.record_restart()


def test_intensity_forgets_old_restarts() -> None:
    clock = FakeClock()
    intensity = RestartIntensity(max_restarts=1, max_seconds=5.0, clock=clock)

    assert intensity.record_restart()
    clock.now += 5.1
    assert intensity.record_restart()
    assert intensity.recent_restarts == 1
    clock.now += 1
    assert not intensity.record_restart()


def test_intensity_zero_restarts() -> None:
    intensity = RestartIntensity(max_restarts=0, max_seconds=5.0, clock=FakeClock())
    assert not intensity.record_restart()


def test_flags_default_to_otp() -> None:
    flags = SupervisorFlags()
    assert flags.strategy is Strategy.ONE_FOR_ONE
    assert flags.max_restarts == 1
    assert flags.max_seconds == 5.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_restarts": -1},
        {"max_seconds": 0},
        {"strategy": "one_for_one"},
    ],
)
def test_flags_reject_invalid_values(kwargs: dict) -> None:
    with pytest.raises((ValueError, TypeError)):
        SupervisorFlags(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"id": "", "actor_class": "pkg.mod.Cls"},
        {"id": "a", "actor_class": "Cls"},
        {"id": "a", "actor_class": "pkg.mod.Cls", "shutdown_timeout": 0},
        {"id": "a", "actor_class": "pkg.mod.Cls", "start_timeout": float("inf")},
        {"id": "a", "actor_class": "pkg.mod.Cls", "restart": "permanent"},
    ],
)
def test_child_spec_rejects_invalid_values(kwargs: dict) -> None:
    with pytest.raises((ValueError, TypeError)):
        ChildSpec(**kwargs)


def test_supervisor_child_spec_nests_specs() -> None:
    worker = ChildSpec("w", "pkg.mod.Worker")
    flags = SupervisorFlags(Strategy.ONE_FOR_ALL)

    spec = supervisor_child_spec("sub", flags, [worker], restart=Restart.TRANSIENT)

    assert spec.type is ChildType.SUPERVISOR
    assert spec.actor_class == "supervisors.supervisor.Supervisor"
    assert spec.restart is Restart.TRANSIENT
    assert spec.start_args == {"flags": flags, "child_specs": [worker], "name": "sub"}


def test_supervisor_child_spec_rejects_duplicate_ids() -> None:
    worker = ChildSpec("w", "pkg.mod.Worker")
    with pytest.raises(ValueError, match="duplicate"):
        supervisor_child_spec("sub", SupervisorFlags(), [worker, worker])
