"""Predictor actor: one copy of the recognition engine, which recognises one photo at a time."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from thespian.actors import ActorAddress, WakeupMessage

from pain_actors.base import PainActor, node_name
from pain_actors.messages import (
    LoadVersion,
    PredictorInfo,
    Predicted,
    PredictRejected,
    PredictRequest,
    RequestFailed,
    VersionLoaded,
    VersionLoadFailed,
    WhoAreYou,
)
from workers.catalogue import Catalogue
from workers.model_store import ModelStore, ModelStoreError

log = structlog.get_logger(__name__)

LOAD_POLL_SECONDS = 0.05
SYNC_SECONDS = 2.0  # how often the catalogue is checked for added and deleted paintings
# Fewer new embeddings stay in the embedding index's exact buffer; more are folded into Annoy.
BULK_ADDITIONS = 50


@dataclass(frozen=True)
class LoadPoll:
    """Wakeup payload: check whether the background load finished."""


@dataclass(frozen=True)
class SyncPoll:
    """Wakeup payload: compare the index with the catalogue."""


@dataclass
class Loading:
    version: str
    requester: ActorAddress
    thread: threading.Thread
    started: float
    recognizer: Any = None
    error: str | None = None


class Predictor(PainActor):
    """Holds a RecognitionService loaded with one model version.

    A new version is loaded on a background thread while this actor keeps serving on the old
    one; the swap happens between two messages, so a request always finishes on the version it
    started with.
    """

    def setup(self, start_args: dict[str, Any]) -> None:
        # torch is imported here, in the predictor's own process, never before Thespian forks.
        from workers.recognition import RecognitionService

        data_dir = Path(start_args["data_dir"])
        self.store = ModelStore(data_dir)
        self.catalogue = Catalogue(data_dir, start_args.get("database_url", ""))
        self.service = RecognitionService(start_args["engine"])
        self.version = self._load_first_version()
        self.loading: Loading | None = None
        self.synced_stamp = None
        self._sync_collection()
        self.wakeupAfter(timedelta(seconds=SYNC_SECONDS), SyncPoll())

    def _load_first_version(self) -> str | None:
        """Load the target version, or the newest older one that loads; None when none exists."""
        target = self.store.target()
        versions = self.store.versions()
        candidates = [target] if target else []
        candidates += [v for v in reversed(versions) if v != target and (target is None or v < target)]
        for version in candidates:
            try:
                self.service.load(self.store.path(version))
            except Exception as error:
                log.exception("model_version_load_failed", version=version, error=str(error))
                continue
            log.info("model_version_loaded", version=version, paintings=len(self.service.recognizer))
            return version
        log.warning(
            "no_model_version",
            detail="starting from an empty index; paintings in the catalogue are indexed next, and the"
            " first training run or pain import publishes a version",
        )
        return None

    def _sync_collection(self) -> None:
        """Index paintings added since the model version was built, and drop deleted ones.

        This is how an upload becomes recognisable within seconds without a training run. A
        painting whose image cannot be read is logged and skipped, so it cannot stop a predictor.
        """
        stamp = self.catalogue.change_stamp()
        if stamp == self.synced_stamp:
            return
        self.catalogue.refresh()
        wanted = {painting_id: self.catalogue.get(painting_id) for painting_id in self.catalogue.ids()}
        indexed = set(self.service.recognizer.painting_ids())

        removed = [pid for pid in indexed if pid not in wanted]
        for painting_id in removed:
            self.service.remove_painting(painting_id)
        added = 0
        for painting_id, painting in wanted.items():
            if painting_id in indexed or painting is None:
                continue
            path = self.catalogue.image_path(painting.image)
            try:
                if path is None:
                    raise FileNotFoundError(painting.image)
                self.service.add_painting(painting_id, painting.museum, path.read_bytes())
                added += 1
            except Exception as error:
                log.error("painting_not_indexed", painting_id=painting_id, error=f"{type(error).__name__}: {error}")
        if added > BULK_ADDITIONS:
            self.service.recognizer.finish_bulk_load()
        if added or removed:
            log.info("collection_synced", added=added, removed=len(removed), version=self.version)
        self.synced_stamp = stamp

    def receiveMsg_WhoAreYou(self, message: WhoAreYou, sender: ActorAddress) -> None:
        self.send(sender, PredictorInfo(self.child_id or "", self.version, os.getpid(), node_name()))

    def receiveMsg_PredictRequest(self, message: PredictRequest, sender: ActorAddress) -> None:
        # The engine's own log lines for this photo then carry the front end's request id too.
        with structlog.contextvars.bound_contextvars(request_id=message.request_id):
            self._predict(message, sender)

    def _predict(self, message: PredictRequest, sender: ActorAddress) -> None:
        from model.intake import ImageError

        try:
            prediction = self.service.predict(message.image, message.museum, message.limit)
        except ImageError as error:
            log.info("photo_rejected", request_id=message.request_id, reason=error.reason)
            self.send(sender, PredictRejected(message.request_id, error.reason, error.message, self.child_id or ""))
            return
        except Exception as error:
            # A photo that breaks the engine must not take the predictor down with it.
            log.exception("predict_failed", request_id=message.request_id, error=str(error))
            self.send(sender, RequestFailed(message.request_id, 500, "the photo could not be processed"))
            return
        self.send(
            sender,
            Predicted(
                message.request_id,
                prediction.matches,
                self.child_id or "",
                self.version,
                round(prediction.elapsed_ms, 1),
            ),
        )

    # --- hot reload ------------------------------------------------------------------

    def receiveMsg_LoadVersion(self, message: LoadVersion, sender: ActorAddress) -> None:
        if self.loading is not None:
            log.warning("load_already_running", version=self.loading.version, requested=message.version)
            return
        if message.version == self.version:
            self.send(sender, VersionLoaded(self.child_id or "", self.version, 0.0))
            return

        loading = Loading(message.version, sender, threading.Thread(), time.monotonic())
        loading.thread = threading.Thread(target=self._load_beside, args=(loading,), name="model-load", daemon=True)
        self.loading = loading
        log.info("model_version_loading", version=message.version, current=self.version)
        loading.thread.start()
        self.wakeupAfter(timedelta(seconds=LOAD_POLL_SECONDS), LoadPoll())

    def _load_beside(self, loading: Loading) -> None:
        """Background thread: build a second recognizer on the new version, without touching the first."""
        try:
            loading.recognizer = self.service.load_version(self.store.path(loading.version))
        except (ModelStoreError, Exception) as error:
            loading.error = f"{type(error).__name__}: {error}"

    def receiveMsg_WakeupMessage(self, message: WakeupMessage, sender: ActorAddress) -> Any:
        if isinstance(message.payload, SyncPoll):
            self.wakeupAfter(timedelta(seconds=SYNC_SECONDS), SyncPoll())
            self._sync_collection()
            return None
        if not isinstance(message.payload, LoadPoll):
            return self.SUPER
        loading = self.loading
        if loading is None:
            return None
        if loading.thread.is_alive():
            self.wakeupAfter(timedelta(seconds=LOAD_POLL_SECONDS), LoadPoll())
            return None

        self.loading = None
        seconds = round(time.monotonic() - loading.started, 3)
        if loading.error is not None:
            log.error("model_version_load_failed", version=loading.version, error=loading.error, kept=self.version)
            self.send(loading.requester, VersionLoadFailed(self.child_id or "", loading.version, loading.error))
            return None
        previous = self.version
        self.service.recognizer = loading.recognizer  # the old one is freed with its last reference
        self.version = loading.version
        self.synced_stamp = None  # the new version was built from the collection at its own time
        self._sync_collection()
        log.info("model_version_swapped", version=self.version, previous=previous, seconds=seconds)
        self.send(loading.requester, VersionLoaded(self.child_id or "", self.version, seconds))
        return None
