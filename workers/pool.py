"""The predictor pool's bookkeeping, free of actor code so that it can be tested directly.

The coordinator actor owns one `PredictorPool`. It works like poolboy: a request checks out an
idle predictor or waits in a bounded queue, and the predictor is checked in when it replies. A
request whose predictor dies goes back to the front of the queue and is retried on another one.

Hot reload follows Ray Serve's deployment state: the pool has a target model version, and
`next_reload()` moves one predictor at a time toward it. With more than one predictor, the one
being reloaded is drained first, so the others keep serving; a lone predictor keeps serving while
it loads the new version beside the old one.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any


class ReplicaState(enum.Enum):
    JOINING = "joining"  # seen in the supervisor's report, its version not known yet
    IDLE = "idle"
    BUSY = "busy"  # processing one request
    DRAINING = "draining"  # takes no new request; reloads once its current one is done
    RELOADING = "reloading"  # loading the target version (a lone predictor also keeps serving)


@dataclass
class Replica:
    id: str
    address: Any
    pid: int | None
    state: ReplicaState = ReplicaState.JOINING
    version: str | None = None
    request_id: str | None = None  # the request it is processing
    served: int = 0
    loading: str | None = None  # version it was asked to load
    node: str | None = None  # the actor system it runs in, once it reported it


@dataclass
class PendingRequest:
    request_id: str
    message: Any
    reply_to: Any
    received_at: float = field(default_factory=time.monotonic)
    attempts: int = 0  # times handed to a predictor
    replica_id: str | None = None


class QueueFull(Exception):
    """Every predictor is busy and the wait queue is at its limit."""


@dataclass
class ReloadFailure:
    replica_id: str
    version: str
    error: str


class PredictorPool:
    def __init__(self, queue_limit: int, max_attempts: int) -> None:
        self.queue_limit = queue_limit
        self.max_attempts = max_attempts
        self.replicas: dict[str, Replica] = {}
        self.queue: deque[PendingRequest] = deque()
        self.in_flight: dict[str, PendingRequest] = {}
        self.target: str | None = None
        self.failed_reload: ReloadFailure | None = None
        self.retries = 0

    # --- membership ----------------------------------------------------------------

    def sync_members(self, members: dict[str, tuple[Any, int | None]]) -> tuple[list[Replica], list[PendingRequest]]:
        """Apply a supervisor report {child id: (address, pid)} of running predictors.

        Return the replicas that joined (ask each for its version) and the requests that must be
        failed because they ran out of attempts when their predictor vanished.
        """
        exhausted: list[PendingRequest] = []
        for replica_id, replica in list(self.replicas.items()):
            current = members.get(replica_id)
            if current is None or current[1] != replica.pid:
                exhausted.extend(self.remove(replica_id))

        joined = []
        for replica_id, (address, pid) in members.items():
            if replica_id not in self.replicas:
                replica = Replica(replica_id, address, pid)
                self.replicas[replica_id] = replica
                joined.append(replica)
        return joined, exhausted

    def remove(self, replica_id: str) -> list[PendingRequest]:
        """Forget a dead predictor; requeue its request, or return it if it ran out of attempts."""
        replica = self.replicas.pop(replica_id, None)
        if replica is None or replica.request_id is None:
            return []
        request = self.in_flight.pop(replica.request_id, None)
        if request is None:
            return []
        if request.attempts >= self.max_attempts:
            return [request]
        self.retries += 1
        request.replica_id = None
        self.queue.appendleft(request)
        return []

    def joined(self, replica_id: str, version: str | None, node: str | None = None) -> None:
        replica = self.replicas.get(replica_id)
        if replica is not None and replica.state is ReplicaState.JOINING:
            replica.version = version
            replica.node = node
            replica.state = ReplicaState.IDLE

    # --- requests ------------------------------------------------------------------

    def holds(self, request_id: str) -> bool:
        """Return True if a request with this id waits in the queue or runs on a predictor."""
        return request_id in self.in_flight or any(waiting.request_id == request_id for waiting in self.queue)

    def submit(self, request: PendingRequest) -> None:
        """Queue a request; raise QueueFull when the wait queue is at its limit."""
        if len(self.queue) >= self.queue_limit:
            raise QueueFull()
        self.queue.append(request)

    def dispatch(self) -> list[tuple[Replica, PendingRequest]]:
        """Check out an available predictor for each queued request, oldest request first."""
        handed = []
        while self.queue:
            replica = self._available()
            if replica is None:
                break
            request = self.queue.popleft()
            request.attempts += 1
            request.replica_id = replica.id
            replica.request_id = request.request_id
            if replica.state is ReplicaState.IDLE:
                replica.state = ReplicaState.BUSY
            self.in_flight[request.request_id] = request
            handed.append((replica, request))
        return handed

    def finish(self, replica_id: str, request_id: str) -> PendingRequest | None:
        """Check a predictor back in after its reply; return the request, or None if the request was not assigned to it."""
        request = self.in_flight.get(request_id)
        replica = self.replicas.get(replica_id)
        if request is None or request.replica_id != replica_id:
            return None
        del self.in_flight[request_id]
        if replica is not None and replica.request_id == request_id:
            replica.request_id = None
            replica.served += 1
            if replica.state is ReplicaState.BUSY:
                replica.state = ReplicaState.IDLE
        return request

    def expire(self, timeout: float, now: float | None = None) -> list[PendingRequest]:
        """Remove and return queued or running requests older than `timeout` seconds."""
        now = time.monotonic() if now is None else now
        expired = [r for r in self.queue if now - r.received_at > timeout]
        for request in expired:
            self.queue.remove(request)
        for request_id, request in list(self.in_flight.items()):
            if now - request.received_at > timeout:
                expired.append(self.in_flight.pop(request_id))
                replica = self.replicas.get(request.replica_id or "")
                if replica is not None and replica.request_id == request_id:
                    # NOTE: the predictor may still reply later, and that late reply is ignored.
                    replica.request_id = None
                    if replica.state is ReplicaState.BUSY:
                        replica.state = ReplicaState.IDLE
        return expired

    def _available(self) -> Replica | None:
        idle = [r for r in self.replicas.values() if r.request_id is None and self._serves(r)]
        return min(idle, key=lambda r: r.served) if idle else None

    def _serves(self, replica: Replica) -> bool:
        if replica.state is ReplicaState.IDLE:
            return True
        # A lone predictor keeps serving on its old version while it loads the new one.
        return replica.state is ReplicaState.RELOADING and len(self.replicas) == 1

    # --- hot reload ----------------------------------------------------------------

    def set_target(self, version: str | None) -> None:
        """Set the version every predictor should serve; the last reload failure stays reported."""
        self.target = version

    def next_reload(self) -> Replica | None:
        """Return the predictor to send the target version now, or None.

        One predictor at a time: none is chosen while another drains or reloads, or after a
        reload to this target failed.
        """
        if self.target is None:
            return None
        if self.failed_reload is not None and self.failed_reload.version == self.target:
            return None
        if any(r.state in (ReplicaState.DRAINING, ReplicaState.RELOADING) for r in self.replicas.values()):
            draining = next((r for r in self.replicas.values() if r.state is ReplicaState.DRAINING), None)
            if draining is not None and draining.request_id is None:
                return self._start_loading(draining)
            return None

        stale = [r for r in self.replicas.values() if r.state in (ReplicaState.IDLE, ReplicaState.BUSY)]
        stale = [r for r in stale if r.version != self.target]
        if not stale:
            return None
        replica = min(stale, key=lambda r: r.id)
        if len(self.replicas) == 1 or replica.request_id is None:
            return self._start_loading(replica)
        replica.state = ReplicaState.DRAINING
        return None

    def _start_loading(self, replica: Replica) -> Replica:
        replica.state = ReplicaState.RELOADING
        replica.loading = self.target
        return replica

    def reloaded(self, replica_id: str, version: str) -> None:
        replica = self.replicas.get(replica_id)
        if replica is None:
            return
        replica.version = version
        replica.loading = None
        replica.state = ReplicaState.BUSY if replica.request_id is not None else ReplicaState.IDLE

    def reload_failed(self, replica_id: str, version: str, error: str) -> None:
        replica = self.replicas.get(replica_id)
        if replica is not None:
            replica.loading = None
            replica.state = ReplicaState.BUSY if replica.request_id is not None else ReplicaState.IDLE
        self.failed_reload = ReloadFailure(replica_id, version, error)

    def status(self) -> dict:
        return {
            "target_version": self.target,
            "queued": len(self.queue),
            "in_flight": len(self.in_flight),
            "retries": self.retries,
            "reload_error": None
            if self.failed_reload is None
            else {
                "predictor": self.failed_reload.replica_id,
                "version": self.failed_reload.version,
                "error": self.failed_reload.error,
            },
            "predictors": [
                {
                    "id": r.id,
                    "pid": r.pid,
                    "node": r.node,
                    "state": r.state.value,
                    "version": r.version,
                    "loading": r.loading,
                    "served": r.served,
                }
                for r in sorted(self.replicas.values(), key=lambda r: r.id)
            ],
        }
