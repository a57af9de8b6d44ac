"""Trainer actor: runs one training run at a time on a background thread of its own process.

The actor's own thread stays free for status requests. A run publishes its version only when it
completes, so killing this actor mid-run leaves the serving version untouched; the half-written
staging directory is removed when the next trainer starts.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
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
from workers.database import Database, open_database
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
        # Read once: the last run changes only through runs of this trainer, and then `run` is reported.
        self.last_run = self._check_recorded_runs()
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
        if message.resume is not None:
            failure = self._resume_failure(message.resume)
            if failure is not None:
                log.info("training_resume_rejected", request_id=message.request_id, run_id=message.resume, error=failure[1])
                self.send(sender, RequestFailed(message.request_id, *failure))
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
            self.send(sender, RequestFailed(message.request_id, 409, "no training run is running, so there is nothing to cancel"))
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
        # Every log line of the run, the epoch lines included, carries its id.
        structlog.contextvars.bind_contextvars(run_id=run.run_id)
        try:
            run.version = run_training(
                self.data_dir, self.engine, self.training, run, cancel, self.database_url, on_epoch=lambda: self._record(run)
            )
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
            run.finished_at, run.step = time.time(), ""
            self._record(run)
            structlog.contextvars.unbind_contextvars("run_id")

    def _resume_failure(self, run_id: str) -> tuple[int, str] | None:
        """Return (status, message) when the run cannot be resumed, else None."""
        recorded = self._recorded_run(run_id)
        if recorded is not None and recorded["state"] == "succeeded":
            return 409, (
                f"resume: run {run_id} already succeeded and published {recorded['version']}; "
                "start a new run with POST /api/train (pain train)"
            )
        if not resumable_run(self.data_dir, run_id):
            return 404, (
                f"resume: no checkpoint of run {run_id!r}: the run does not exist or ended before its first epoch; "
                "start a new run with POST /api/train (pain train)"
            )
        return None

    @contextlib.contextmanager
    def _database(self) -> Iterator[Database]:
        database = open_database(self.data_dir, self.database_url)
        try:
            yield database
        finally:
            database.close()

    def _recorded_run(self, run_id: str) -> dict | None:
        try:
            with self._database() as database:
                return database.get_run(run_id)
        except Exception as error:
            log.error("training_run_not_read", run_id=run_id, error=f"{type(error).__name__}: {error}")
            return None

    def _check_recorded_runs(self) -> dict | None:
        """Mark runs left "running" by an earlier trainer process as interrupted; return the newest run.

        Only one trainer runs per service, so at its start no run of this data directory is running.
        The interrupted runs' error gives the command that resumes them.
        """
        try:
            with self._database() as database:
                for run_id in database.running_run_ids():
                    error = (
                        "the trainer stopped during this run (server restart or crash); continue it with "
                        f"pain train --resume {run_id} (POST /api/train {{\"resume\": \"{run_id}\"}})"
                    )
                    database.update_run(run_id, state="interrupted", error=error, finished_at=datetime.now(timezone.utc))
                    log.warning("training_run_interrupted", run_id=run_id, resumable=resumable_run(self.data_dir, run_id))
                runs = database.list_runs(limit=1)
        except Exception as error:
            log.error("training_runs_not_checked", error=f"{type(error).__name__}: {error}")
            return None
        if not runs:
            return None
        run = runs[0]
        return {
            "run_id": run["run_id"],
            "state": run["state"],
            "version": run["version"],
            "error": run["error"],
            "resumable": run["state"] != "succeeded" and resumable_run(self.data_dir, run["run_id"]),
        }

    def _record(self, run: RunProgress, created: bool = False) -> None:
        """Write the run's state to the database; a database error is logged, never fatal to the run."""
        try:
            with self._database() as database:
                if created:
                    database.record_run(run.run_id, total=run.total)
                fields = {"state": run.state, "done": run.done, "total": run.total, "error": run.error, "epochs": run.epochs}
                if run.version:
                    fields["version"] = run.version
                    database.record_version(run.version, "training", run_id=run.run_id)
                if run.finished_at:
                    fields["finished_at"] = datetime.fromtimestamp(run.finished_at, timezone.utc)
                database.update_run(run.run_id, **fields)
        except Exception as error:
            log.error("training_run_not_recorded", run_id=run.run_id, error=f"{type(error).__name__}: {error}")

    def receiveMsg_StatusRequest(self, message: StatusRequest, sender: ActorAddress) -> None:
        if self.run is not None:
            state = self.run.as_dict()
        else:
            # Idle since this trainer started: the newest recorded run shows an operator what
            # happened before, such as a run that a restart interrupted.
            state = {"state": "idle"}
            if self.last_run is not None:
                state["last_run"] = self.last_run
        self.send(sender, StatusReport(message.request_id, state))

    def terminate(self) -> None:
        self.cancel.set()
        super().terminate()
