"""Child specifications and supervisor flags, named after Erlang/OTP's supervisor module."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any


class Restart(enum.Enum):
    """When a supervisor restarts a child that exited."""

    PERMANENT = "permanent"  # always restart
    TRANSIENT = "transient"  # restart only after an abnormal exit
    TEMPORARY = "temporary"  # never restart


class Strategy(enum.Enum):
    """Which children a supervisor restarts when one child exits."""

    ONE_FOR_ONE = "one_for_one"  # only the child that exited
    ONE_FOR_ALL = "one_for_all"  # every child
    REST_FOR_ONE = "rest_for_one"  # the child that exited and those started after it


class ChildType(enum.Enum):
    """Whether a child is a worker or a nested supervisor.

    The supervisor stops a `SUPERVISOR` child with a `Shutdown` message, so that the
    nested supervisor can stop its own children in order first. It stops a `WORKER`
    child with Thespian's `ActorExitRequest`.
    """

    WORKER = "worker"
    SUPERVISOR = "supervisor"


@dataclass(frozen=True)
class SupervisorFlags:
    """Restart strategy and restart intensity of one supervisor.

    More than `max_restarts` restarts within `max_seconds` make the supervisor stop all
    its children and exit. The defaults, 1 restart in 5 seconds, are OTP's.
    """

    strategy: Strategy = Strategy.ONE_FOR_ONE
    max_restarts: int = 1
    max_seconds: float = 5.0

    def __post_init__(self) -> None:
        if not isinstance(self.strategy, Strategy):
            raise TypeError(f"strategy must be a Strategy, got {self.strategy!r}")
        if self.max_restarts < 0:
            raise ValueError(f"max_restarts must be >= 0, got {self.max_restarts}")
        if not self.max_seconds > 0:
            raise ValueError(f"max_seconds must be > 0, got {self.max_seconds}")


@dataclass(frozen=True)
class ChildSpec:
    """How a supervisor starts, restarts and stops one child actor.

    `actor_class` is an import path such as "workers.matcher.MatcherActor" rather than
    a class, because the spec is pickled and sent to supervisors in other processes.
    `start_args` is sent to the child in `ChildInit` and must be picklable.
    Both timeouts are in seconds.
    """

    id: str
    actor_class: str
    start_args: dict[str, Any] = field(default_factory=dict)
    restart: Restart = Restart.PERMANENT
    shutdown_timeout: float = 5.0
    start_timeout: float = 5.0
    type: ChildType = ChildType.WORKER
    # Modules the supervisor imports into its own process before it starts the children. Under
    # multiprocTCPBase a child is forked from its supervisor, so a restarted child finds slow
    # imports (torch, say) already done. Only list modules whose import starts no threads.
    preload: tuple[str, ...] = ()
    # Name of an actor-system capability, valued true or (better) with a name unique to each system.
    # While other systems of the Thespian convention offer it, the child starts in the one that runs
    # the fewest of this supervisor's children. Otherwise it starts in the supervisor's own system.
    # The child's class must accept the requirement in actorSystemCapabilityCheck, as
    # SupervisedActor does.
    placement: str | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("child spec id must not be empty")
        module_name, _, class_name = self.actor_class.rpartition(".")
        # Thespian rejects class names without a module, so fail here with the child
        # id instead of later inside the supervisor process.
        if not module_name or not class_name:
            raise ValueError(
                f"actor_class of child {self.id!r} must be an import path "
                f"like 'package.module.Class', got {self.actor_class!r}"
            )
        if not isinstance(self.restart, Restart):
            raise TypeError(f"restart of child {self.id!r} must be a Restart, got {self.restart!r}")
        if not isinstance(self.type, ChildType):
            raise TypeError(f"type of child {self.id!r} must be a ChildType, got {self.type!r}")
        if self.placement is not None and not (isinstance(self.placement, str) and self.placement):
            raise ValueError(f"placement of child {self.id!r} must be a capability name, got {self.placement!r}")
        for name in ("shutdown_timeout", "start_timeout"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} of child {self.id!r} must be a positive number of seconds, got {value!r}")


SUPERVISOR_ACTOR_CLASS = "supervisors.supervisor.Supervisor"


def supervisor_child_spec(
    id: str,
    flags: SupervisorFlags,
    child_specs: list[ChildSpec],
    *,
    restart: Restart = Restart.PERMANENT,
    start_timeout: float = 30.0,
    shutdown_timeout: float = 30.0,
) -> ChildSpec:
    """Build the child spec of a nested supervisor, with the spec's id as its name.

    The timeouts cover the nested supervisor's whole subtree, so keep them above the
    sum of its children's start and shutdown timeouts.
    """
    validate_child_specs(child_specs)
    return ChildSpec(
        id=id,
        actor_class=SUPERVISOR_ACTOR_CLASS,
        start_args={"flags": flags, "child_specs": list(child_specs), "name": id},
        restart=restart,
        start_timeout=start_timeout,
        shutdown_timeout=shutdown_timeout,
        type=ChildType.SUPERVISOR,
    )


def validate_child_specs(child_specs: list[ChildSpec]) -> None:
    """Raise ValueError if a spec is not a ChildSpec or two specs share an id."""
    seen: set[str] = set()
    for spec in child_specs:
        if not isinstance(spec, ChildSpec):
            raise ValueError(f"child specs must be ChildSpec instances, got {spec!r}")
        if spec.id in seen:
            raise ValueError(f"duplicate child spec id {spec.id!r}")
        seen.add(spec.id)
