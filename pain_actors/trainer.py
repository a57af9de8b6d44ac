"""Trainer actor: runs one training run at a time on a background thread of its own process.

The actor's own thread stays free for status requests. A run publishes its version only when it
completes, so killing this actor mid-run leaves the serving version untouched; the half-written
staging directory is removed when the next trainer starts.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog
from thespian.actors import ActorAddress

from pain_actors.base import PainActor
from pain_actors.messages import (
    CancelTraining,
    RequestFailed,
    StatusReport,
    StatusRequest,
    TrainAccepted,
    TrainingCancelling,
    TrainRequest,
)
from workers.model_store import ModelStore
from workers.database import open_database
from workers.training import Cancelled, RunProgress, TrainingError, check_trainable, resumable_run, run_training

log = structlog.get_logger(__name__)

STALE_STAGING_SECONDS = 600.0  # younger staging directories may belong to a running `pain import`


class Trainer(PainActor):
    def setup(self, start_args: dict[str, Any]) -> None:
        self.data_dir = Path(start_args["data_dir"])
        self.database_url = start_args.get("database_url", "")
        # The engine built for a run takes its thread count from here, not from [engine].
        self.engine = replace(start_args["engine"], threads=start_args["training"].threads)
        self.training = start_args["training"]
        ModelStore(self.data_dir).remove_staging(older_than=STALE_STAGING_SECONDS)
        self.run: RunProgress | None = None
        self.cancel = threading.Event()
        self.thread: threading.Thread | None = None

    def receiveMsg_TrainRequest(self, message: TrainRequest, sender: ActorAddress) -> None:
        if self.thread is not None and self.thread.is_alive():
            error = (
                f"training run {self.run.run_id} is still running; wait for it to end, "
                "or cancel it with POST /api/train/cancel (pain train --cancel)"
            )
            self.send(sender, RequestFailed(message.request_id, 409, error))
            return
        if message.resume is not None and not resumable_run(self.data_dir, message.resume):
            self.send(sender, RequestFailed(message.request_id, 404, f"resume: run {message.resume!r} left no checkpoint"))
            return
        try:
            # A collection too small to train on is rejected at once, so the caller gets the reason
            # in the reply instead of a run that fails a moment later.
            check_trainable(self.data_dir, self.database_url)
        except TrainingError as error:
            log.info("training_rejected", request_id=message.request_id, error=str(error))
            self.send(sender, RequestFailed(message.request_id, 409, str(error)))
            return
        run = RunProgress(run_id=message.resume or uuid.uuid4().hex[:12])
        self.run = run
        self._record(run, created=message.resume is None)
        self.cancel = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(run, self.cancel), name="training", daemon=True)
        self.thread.start()
        log.info("training_started", run_id=run.run_id, request_id=message.request_id)
        self.send(sender, TrainAccepted(message.request_id, run.run_id))

    def receiveMsg_CancelTraining(self, message: CancelTraining, sender: ActorAddress) -> None:
        if self.thread is None or not self.thread.is_alive() or self.run is None:
            self.send(sender, RequestFailed(message.request_id, 409, "no training run is running"))
            return
        if message.run_id is not None and message.run_id != self.run.run_id:
            error = f"run_id: {message.run_id!r} is not running; the running run is {self.run.run_id}"
            self.send(sender, RequestFailed(message.request_id, 409, error))
            return
        # The run checks the event between batches, so it ends within one batch.
        self.cancel.set()
        log.info("training_cancel_requested", run_id=self.run.run_id, request_id=message.request_id)
        self.send(sender, TrainingCancelling(message.request_id, self.run.run_id))

    def _run(self, run: RunProgress, cancel: threading.Event) -> None:
        try:
            run.version = run_training(self.data_dir, self.engine, self.training, run, cancel, self.database_url)
            run.state, run.phase = "succeeded", "done"
            log.info("training_succeeded", run_id=run.run_id, version=run.version)
        except (Cancelled, InterruptedError):
            run.state = "cancelled"
            log.info("training_cancelled", run_id=run.run_id)
        except TrainingError as error:
            run.state, run.error = "failed", str(error)
            log.warning("training_failed", run_id=run.run_id, error=run.error)
        except Exception as error:
            run.state, run.error = "failed", f"{type(error).__name__}: {error}"
            log.exception("training_crashed", run_id=run.run_id)
        finally:
            run.finished_at = time.time()
            self._record(run)

    def _record(self, run: RunProgress, created: bool = False) -> None:
        """Write the run's state to the database; a database error is logged, never fatal to the run."""
        try:
            database = open_database(self.data_dir, self.database_url)
            if created:
                database.record_run(run.run_id, total=run.total)
            fields = {"state": run.state, "done": run.done, "total": run.total, "error": run.error, "epochs": run.epochs}
            if run.version:
                fields["version"] = run.version
                database.record_version(run.version, "training", run_id=run.run_id)
            if run.finished_at:
                fields["finished_at"] = datetime.fromtimestamp(run.finished_at, timezone.utc)
            database.update_run(run.run_id, **fields)
            database.close()
        except Exception as error:
            log.error("training_run_not_recorded", run_id=run.run_id, error=f"{type(error).__name__}: {error}")

    def receiveMsg_StatusRequest(self, message: StatusRequest, sender: ActorAddress) -> None:
        state = {"state": "idle"} if self.run is None else self.run.as_dict()
        self.send(sender, StatusReport(message.request_id, state))

    def terminate(self) -> None:
        self.cancel.set()
        super().terminate()
