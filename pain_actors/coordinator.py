"""Coordinator actor: routes predict requests to the predictor pool and runs hot reloads.

It finds its predictors the way an operator would: it asks the root supervisor which children it
has, then the pool supervisor. That report is the pool's membership, so a restarted predictor
joins with its new address, a dead one leaves, and a restarted coordinator starts from the truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from thespian.actors import ActorAddress, WakeupMessage

from pain_actors.base import PainActor
from pain_actors.messages import (
    LoadVersion,
    PredictorInfo,
    Predicted,
    PredictRejected,
    PredictRequest,
    ReloadAccepted,
    ReloadRequest,
    RequestFailed,
    StatusReport,
    StatusRequest,
    VersionLoaded,
    VersionLoadFailed,
    WhoAreYou,
)
from pain_actors.tree import POOL_NAME
from supervisors import ChildrenReport, WhichChildren
from workers.model_store import ModelStore, ModelStoreError
from workers.pool import PendingRequest, PredictorPool, QueueFull

log = structlog.get_logger(__name__)

TICK_SECONDS = 0.2  # how often membership, the target version and timeouts are checked


@dataclass(frozen=True)
class Tick:
    """Wakeup payload of the coordinator's periodic check."""


class Coordinator(PainActor):
    def setup(self, start_args: dict[str, Any]) -> None:
        actors = start_args["actors"]
        self.store = ModelStore(Path(start_args["data_dir"]))
        self.pool = PredictorPool(actors.queue_limit, actors.predict_attempts)
        self.request_timeout = actors.request_timeout
        self.pool_address: ActorAddress | None = None
        self.pool.set_target(self.store.target())
        self.wakeupAfter(timedelta(seconds=TICK_SECONDS), Tick())

    def receiveMsg_WakeupMessage(self, message: WakeupMessage, sender: ActorAddress) -> Any:
        if not isinstance(message.payload, Tick):
            return self.SUPER
        self.wakeupAfter(timedelta(seconds=TICK_SECONDS), Tick())
        self.pool.set_target(self.store.target())
        self.send(self.supervisor_address, WhichChildren())
        for request in self.pool.expire(self.request_timeout):
            log.warning("request_timed_out", request_id=request.request_id, attempts=request.attempts)
            self.send(
                request.reply_to,
                RequestFailed(request.request_id, 503, "no predictor answered in time; try again shortly"),
            )
        self._pump()
        return None

    # --- membership ------------------------------------------------------------------

    def receiveMsg_ChildrenReport(self, message: ChildrenReport, sender: ActorAddress) -> None:
        if message.name != POOL_NAME:
            pool = next((c for c in message.children if c.child_id == POOL_NAME), None)
            self.pool_address = pool.address if pool is not None else None
            if self.pool_address is not None:
                self.send(self.pool_address, WhichChildren())
            else:
                self._sync({})  # the pool supervisor is restarting: none of its predictors is alive
            return
        running = {c.child_id: (c.address, c.pid) for c in message.children if c.state == "running" and c.address}
        self._sync(running)

    def _sync(self, running: dict) -> None:
        before = set(self.pool.replicas)
        joined, exhausted = self.pool.sync_members(running)
        for replica_id in before - set(self.pool.replicas):
            log.warning("predictor_left", predictor=replica_id)
        for request in exhausted:
            log.error("request_failed_after_retries", request_id=request.request_id, attempts=request.attempts)
            self.send(request.reply_to, RequestFailed(request.request_id, 503, "every predictor tried failed"))
        for replica in joined:
            log.info("predictor_joined", predictor=replica.id, pid=replica.pid)
            self.send(replica.address, WhoAreYou())
        self._pump()

    def receiveMsg_PredictorInfo(self, message: PredictorInfo, sender: ActorAddress) -> None:
        self.pool.joined(message.predictor, message.version, message.node)
        self._pump()

    # --- requests --------------------------------------------------------------------

    def receiveMsg_PredictRequest(self, message: PredictRequest, sender: ActorAddress) -> None:
        if self.pool.holds(message.request_id):
            # The front end sends a request again when its reply is late, and one copy is enough.
            log.info("request_copy_ignored", request_id=message.request_id)
            return
        try:
            self.pool.submit(PendingRequest(message.request_id, message, sender))
        except QueueFull:
            log.warning("request_rejected_queue_full", request_id=message.request_id, queued=len(self.pool.queue))
            self.send(sender, RequestFailed(message.request_id, 503, "all predictors are busy; try again shortly"))
            return
        self._pump()

    def receiveMsg_Predicted(self, message: Predicted, sender: ActorAddress) -> None:
        request = self.pool.finish(message.predictor, message.request_id)
        if request is not None:
            message.attempts = request.attempts
            self.send(request.reply_to, message)
        self._pump()

    def receiveMsg_PredictRejected(self, message: PredictRejected, sender: ActorAddress) -> None:
        request = self.pool.finish(message.predictor, message.request_id)
        if request is not None:
            self.send(request.reply_to, message)
        self._pump()

    def receiveMsg_RequestFailed(self, message: RequestFailed, sender: ActorAddress) -> None:
        replica = next((r for r in self.pool.replicas.values() if r.request_id == message.request_id), None)
        request = self.pool.finish(replica.id, message.request_id) if replica is not None else None
        if request is not None:
            self.send(request.reply_to, message)
        self._pump()

    def _pump(self) -> None:
        for replica, request in self.pool.dispatch():
            if request.attempts > 1:
                log.info("request_retried", request_id=request.request_id, predictor=replica.id, attempt=request.attempts)
            self.send(replica.address, request.message)
        replica = self.pool.next_reload()
        if replica is not None:
            log.info("predictor_reloading", predictor=replica.id, version=replica.loading, current=replica.version)
            self.send(replica.address, LoadVersion(replica.loading))

    # --- hot reload ------------------------------------------------------------------

    def receiveMsg_ReloadRequest(self, message: ReloadRequest, sender: ActorAddress) -> None:
        version = message.version or self.store.latest()
        try:
            if version is None:
                raise ModelStoreError("no model version is published yet; import paintings or train first")
            self.store.set_target(version)
        except ModelStoreError as error:
            self.send(sender, RequestFailed(message.request_id, 404, f"version: {error}"))
            return
        self.pool.set_target(version)
        log.info("reload_requested", request_id=message.request_id, version=version)
        self.send(sender, ReloadAccepted(message.request_id, version))
        self._pump()

    def receiveMsg_VersionLoaded(self, message: VersionLoaded, sender: ActorAddress) -> None:
        log.info("predictor_reloaded", predictor=message.predictor, version=message.version, seconds=message.seconds)
        self.pool.reloaded(message.predictor, message.version)
        self._pump()

    def receiveMsg_VersionLoadFailed(self, message: VersionLoadFailed, sender: ActorAddress) -> None:
        replica = self.pool.replicas.get(message.predictor)
        kept = replica.version if replica is not None else None
        log.error("reload_stopped", predictor=message.predictor, version=message.version, error=message.error, kept=kept)
        self.pool.reload_failed(message.predictor, message.version, message.error)
        # Point the store back at the version still serving, so restarted predictors load it too.
        if kept is not None and self.store.target() == message.version:
            self.store.set_target(kept)
            self.pool.set_target(kept)
        self._pump()

    def receiveMsg_StatusRequest(self, message: StatusRequest, sender: ActorAddress) -> None:
        self.send(sender, StatusReport(message.request_id, self.pool.status()))
