"""Training runs: build a new model version from the live collection, in the background.

NOTE: a run currently re-describes every painting of the catalogue into fresh indexes (so the
version reflects additions and removals exactly). Autoencoder training plugs into `run_training`
as a first stage; until then a run is an index rebuild.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from model.settings import EngineSettings
from workers.catalogue import Catalogue
from workers.model_store import ModelStore

log = structlog.get_logger(__name__)


class TrainingError(RuntimeError):
    """A run that cannot produce a version; the message says why and what to do."""


class Cancelled(Exception):
    pass


@dataclass
class RunProgress:
    run_id: str
    state: str = "running"  # running, succeeded, failed, cancelled
    done: int = 0
    total: int = 0
    version: str | None = None
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def as_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "state": self.state,
            "progress": round(self.done / self.total, 3) if self.total else 0.0,
            "done": self.done,
            "total": self.total,
            "version": self.version,
            "error": self.error,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


def run_training(
    data_dir: Path,
    settings: EngineSettings,
    progress: RunProgress,
    cancel: threading.Event,
    database_url: str = "",
    on_step: Callable[[], None] | None = None,
) -> str:
    """Describe every painting into a new version, publish it and make it the target."""
    from workers.recognition import RecognitionService

    catalogue = Catalogue(data_dir, database_url)
    paintings = [catalogue.get(pid) for pid in catalogue.ids()]
    if not paintings:
        raise TrainingError("the collection is empty: upload or import paintings before training")
    progress.total = len(paintings)

    service = RecognitionService(settings)
    for painting in paintings:
        if cancel.is_set():
            raise Cancelled()
        path = catalogue.image_path(painting.image)
        if path is None:
            log.warning("training_image_missing", painting_id=painting.id, run_id=progress.run_id)
        else:
            service.add_painting(painting.id, painting.museum, path.read_bytes())
        progress.done += 1
        if on_step is not None:
            on_step()
    service.recognizer.finish_bulk_load()

    def write(directory: Path) -> dict:
        service.save(directory)
        return {"paintings": len(service.recognizer), "source": "training", "run_id": progress.run_id}

    store = ModelStore(data_dir)
    version = store.publish(write)
    store.set_target(version)
    return version
