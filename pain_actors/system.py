"""The actor system's lifecycle as seen from the server process: start, watch, find, stop.

The server process owns the Thespian actor system and plays OTP's application master: it starts
the root supervisor, checks every second that it still replies, and starts a fresh tree when it
does not. The same check keeps the addresses of the coordinator and the trainer current, so that
requests go to whichever incarnation is alive.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, field

import structlog
from thespian.actors import ActorAddress, ActorSystem

from pain_actors.base import NODE_ENV
from pain_actors.config import Config, ConfigError
from pain_actors.messages import Crash
from pain_actors.transport import bind_listeners_to_advertised_address
from pain_actors.tree import COORDINATOR, POOL_NAME, PREDICTOR_HOST, ROOT_NAME, TRAINER, build_tree
from supervisors import ChildrenReport, RootSupervisorError, RootWatcher, WhichChildren, ask_for

log = structlog.get_logger(__name__)

WATCH_SECONDS = 1.0


class ActorNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Node:
    """One actor of the tree, for status pages and fault injection."""

    name: str
    pid: int | None
    address: ActorAddress | None
    supervisor: str | None
    restart_count: int = 0
    state: str = "running"
    children: list["Node"] = field(default_factory=list)


@dataclass(frozen=True)
class Incarnation:
    """One life of a named actor: a restarted actor gets a new one even if it reuses its port."""

    address: ActorAddress
    pid: int | None


class ActorService:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.system: ActorSystem | None = None
        self.watcher: RootWatcher | None = None
        self._incarnations: dict[str, Incarnation] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_at: float | None = None

    def start(self) -> None:
        """Start the actor system and the tree; return once every actor confirmed its start.

        Actor processes are forked from this one, so this process must not have run torch or
        OpenCV threads before: a forked copy of such a process can deadlock in its first
        parallel region. The server never imports torch itself for this reason.
        """
        name_actor_system(self.config)
        started = time.monotonic()
        self.system = ActorSystem(
            "multiprocTCPBase",
            capabilities={"Admin Port": self.config.actors.admin_port},
            transientUnique=True,
        )
        flags, specs = build_tree(self.config)
        self.watcher = RootWatcher(self.system, ROOT_NAME, flags, specs, ask_timeout=2.0, start_timeout=600.0)
        try:
            self.watcher.start()
        except RootSupervisorError:
            self.system.shutdown()
            raise
        self._refresh(self.system)
        self._thread = threading.Thread(target=self._watch, name="root-watch", daemon=True)
        self._thread.start()
        self.started_at = time.time()
        log.info("actor_tree_started", seconds=round(time.monotonic() - started, 2), predictors=self.config.actors.predictors)

    def stop(self) -> None:
        """Stop the tree in order, then the actor system; no actor process outlives this."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
        if self.watcher is not None and self.system is not None:
            self.watcher.stop(timeout=30.0)
        if self.system is not None:
            self.system.shutdown()
            log.info("actor_system_stopped")
        self.system = None

    def incarnation_of(self, name: str) -> Incarnation | None:
        """Current incarnation of the coordinator or the trainer; None while it is (re)starting."""
        return self._incarnations.get(name)

    def private_context(self):
        """Return a context manager that gives a thread its own endpoint in the actor system."""
        if self.system is None:
            raise RuntimeError("the actor system is not running")
        return self.system.private()

    # --- watching --------------------------------------------------------------------

    def _watch(self) -> None:
        with self.system.private() as context:
            while not self._stop.wait(WATCH_SECONDS):
                try:
                    if not self._refresh(context):
                        self._incarnations = {}
                        if self.watcher.check(context):
                            log.warning("actor_tree_restarted", restart_count=self.watcher.restart_count)
                        self._refresh(context)
                except RootSupervisorError:
                    continue  # RootWatcher logged why; the next round tries again
                except Exception:
                    log.exception("root_watch_failed")

    def _refresh(self, context: ActorSystem) -> bool:
        """Ask the root for its children and record their addresses; False if the root is silent."""
        root = self.watcher.root_address if self.watcher else None
        if root is None:
            return False
        report = ask_for(context, root, WhichChildren(), (ChildrenReport,), 2.0)
        if report is None or report.name != ROOT_NAME:
            return False
        self._incarnations = {
            c.child_id: Incarnation(c.address, c.pid) for c in report.children if c.address is not None
        }
        return True

    # --- the tree, for status and fault injection ------------------------------------

    def tree(self, context: ActorSystem) -> Node:
        root = self.watcher.root_address if self.watcher else None
        report = ask_for(context, root, WhichChildren(), (ChildrenReport,), 2.0) if root else None
        if report is None:
            raise ActorNotFound("the root supervisor did not reply; it is being restarted, try again in a few seconds")
        children = []
        for child in report.children:
            grandchildren = []
            if child.child_id == POOL_NAME and child.address is not None:
                pool = ask_for(context, child.address, WhichChildren(), (ChildrenReport,), 2.0)
                for predictor in pool.children if pool else []:
                    grandchildren.append(
                        Node(predictor.child_id, predictor.pid, predictor.address, POOL_NAME,
                             predictor.restart_count, predictor.state)
                    )
            children.append(
                Node(child.child_id, child.pid, child.address, ROOT_NAME, child.restart_count, child.state, grandchildren)
            )
        return Node(ROOT_NAME, report.pid, root, None, self.watcher.restart_count, "running", children)

    def kill(self, context: ActorSystem, name: str, mode: str) -> Node:
        """Fault injection: SIGKILL the named actor's process, or make the actor raise.

        `name` is "pain" (the root), "predictors", "coordinator", "trainer" or "predictor-N".
        """
        node = _find(self.tree(context), name)
        if node is None:
            raise ActorNotFound(f"no actor named {name!r} is running")
        if mode == "sigkill":
            if node.pid is None:
                raise ActorNotFound(f"actor {name!r} has no known process id yet")
            # NOTE: a process id only means something on this machine; remote predictors
            # are reached with mode "raise" instead.
            os.kill(node.pid, signal.SIGKILL)
        elif mode == "raise":
            if node.children or node.name == ROOT_NAME:
                raise ValueError(f"mode: supervisors do not take 'raise'; use 'sigkill' for {name!r}")
            context.tell(node.address, Crash())
        else:
            raise ValueError(f"mode: {mode!r} is not a fault mode; use 'sigkill' or 'raise'")
        log.warning("fault_injected", actor=name, mode=mode, pid=node.pid)
        return node


def name_actor_system(config: Config) -> str:
    """Set the address and node name that the actor system started next in this process takes."""
    # Thespian reads this when it creates its transport; the default keeps actor traffic on
    # loopback. Its listening sockets are bound to the same address (pain_actors.transport).
    os.environ["THESPIAN_BASE_IPADDR"] = config.actors.host
    bind_listeners_to_advertised_address()
    node = f"{config.actors.host}:{config.actors.admin_port}"
    os.environ[NODE_ENV] = node
    return node


def parse_leader(leader: str) -> tuple[str, int]:
    """Split actors.leader ("host:port") into its parts, or raise ConfigError saying how to fix it."""
    host, _, port = leader.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"actors.leader must be host:port of the main service's actor system"
            f" (its actors.host and actors.admin_port), e.g. 10.0.0.5:1900; got {leader!r}"
        )
    return host, int(port)


class WorkerSystem:
    """An actor system on another machine (or port) that hosts predictors of a main service.

    It joins the Thespian convention led by the main service's actor system and advertises
    PREDICTOR_HOST, so the predictor pool supervisor starts predictors here. When it stops, it
    leaves the convention and the supervisor restarts its predictors elsewhere.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.leader = parse_leader(config.actors.leader)
        self.system: ActorSystem | None = None
        self.node: str | None = None

    def start(self) -> None:
        self.node = name_actor_system(self.config)
        capabilities = {
            "Admin Port": self.config.actors.admin_port,
            "Convention Address.IPv4": self.leader,
            # A value unique to this system lets the pool supervisor pick it by name.
            PREDICTOR_HOST: self.node,
        }
        self.system = ActorSystem(
            "multiprocTCPBase", capabilities=capabilities, logDefs=_log_definitions(self.config), transientUnique=True
        )
        log.info("worker_system_started", node=self.node, leader=f"{self.leader[0]}:{self.leader[1]}")

    def stop(self) -> None:
        if self.system is None:
            return
        # Shutting down deregisters from the convention before the predictors here exit.
        self.system.shutdown()
        self.system = None
        log.info("worker_system_stopped", node=self.node)


def _log_definitions(config: Config) -> dict:
    """Standard-library logging of the actor system's log process, at the configured level.

    The actors' structlog lines pass through untouched. Other libraries' records are filtered here
    (peewee's SQL at debug level, say), which Thespian's defaults would not do, and rendered as
    structlog lines in the configured format.
    """
    level = config.logging.level.upper()
    formatter = {"()": "pain_actors.logging_setup.stdlib_formatter", "format": config.logging.format}
    return {
        "version": 1,
        "formatters": {"structured": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "structured", "level": level}},
        "root": {"handlers": ["stderr"], "level": level},
    }


def _find(node: Node, name: str) -> Node | None:
    if node.name == name:
        return node
    for child in node.children:
        found = _find(child, name)
        if found is not None:
            return found
    return None


__all__ = ["COORDINATOR", "TRAINER", "ActorNotFound", "ActorService", "Node", "WorkerSystem"]
