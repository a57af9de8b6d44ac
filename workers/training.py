"""Training runs: train the autoencoder on the live collection and publish a new model version.

A run reads every painting of the catalogue, trains the autoencoder (reconstruction, then
instance discrimination on simulated phone photos; see model/train_autoencoder.py), then the
museum embedding's head on the backbone's cells (model/train_head.py). It describes every painting
again with both, and publishes the indexes and the trained models as one model version. The
autoencoder's checkpoint is written after every epoch under `data_dir/training/<run id>/`, so an
interrupted run can resume. Nothing is published until the run completes.
"""

from __future__ import annotations

import math
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

RUNS_DIR = "training"
CHECKPOINT_FILE = "checkpoint.pt"  # the autoencoder's, written by model.train_autoencoder.train
HEAD_FILE = "museum_head.pt"  # the museum embedding's head and its epochs, once its stage has finished
# The paintings' and simulated photos' cells for the head, kept while its epochs run, so that a
# resumed run skips describing them again (14 of the stage's 25 minutes at 1,000 paintings).
DESCRIBED_FILE = "museum_head_photos.pt"
HEAD_CHECKPOINT_FILE = "museum_head_checkpoint.pt"  # the head's state after its last finished epoch
MIN_PAINTINGS = 2  # one to train on and one to validate on

# The training page's words for each stage of a run, by the `stage` of its epoch records.
STEPS = {
    "reconstruction": "autoencoder: reconstruction epochs",
    "contrastive": "autoencoder: contrastive epochs on simulated photos",
    "head": "museum embedding: epochs",
}


class TrainingError(RuntimeError):
    """A run that cannot produce a version; the message states the reason and the fix."""


class Cancelled(Exception):
    pass


@dataclass
class RunProgress:
    """A run's state as the trainer reports it.

    `done` and `total` count over the whole run: every epoch at most, then every indexed painting.
    """

    run_id: str
    state: str = "running"  # running, succeeded, failed, cancelled; "interrupted" is only recorded
    phase: str = "starting"  # starting, training, indexing, publishing, done
    done: int = 0
    total: int = 0
    step: str = ""  # what the run does now, in words for the training page (see STEPS)
    version: str | None = None
    error: str | None = None
    epochs: list[dict] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def as_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "state": self.state,
            "phase": self.phase,
            "step": self.step,
            "progress": round(self.done / self.total, 3) if self.total else 0.0,
            "done": self.done,
            "total": self.total,
            "version": self.version,
            "error": self.error,
            "epochs": list(self.epochs),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


def run_training(
    data_dir: Path,
    settings: EngineSettings,
    training,
    progress: RunProgress,
    cancel: threading.Event,
    database_url: str = "",
    on_epoch: Callable[[], None] | None = None,
) -> str:
    """Train, re-index and publish; return the new version, which also becomes the target.

    `training` is the [training] section of the configuration. `on_epoch` is called after each
    epoch's record is added to `progress`. Raises TrainingError for a collection too small to
    train on and Cancelled when `cancel` is set.
    """
    import torch

    from model.features import DenseExtractor
    from model.intake import decode_image
    from model.museum_head import CHECKPOINT_KEY, head_state
    from model.train_autoencoder import checkpoint_history, save_atomically, train
    from model.train_head import head_checkpoint_history, train_head
    from workers.recognition import AUTOENCODER_FILE, RecognitionService, configure_threads, trained_models

    # Bound the epochs too, not only the re-indexing, so predictors keep their CPU share.
    configure_threads(training.threads)
    catalogue = Catalogue(data_dir, database_url)
    # Checked again here: paintings may have been deleted since the run was accepted.
    paintings = trainable_paintings(catalogue)

    images = [decode_image(catalogue.image_path(p.image).read_bytes(), settings.max_pixels) for p in paintings]
    config = training_config(training)
    head_config = head_training_config(training)
    # One count over the whole run, so progress only grows: every epoch at most, then every painting.
    epoch_total = config.epochs + config.contrastive_epochs + training.head_epochs
    progress.phase, progress.total = "training", epoch_total + len(paintings)

    def add_epoch(record: dict) -> None:
        progress.epochs.append(record)
        progress.done = len(progress.epochs)
        progress.step = STEPS.get(record.get("stage", ""), progress.step)
        if on_epoch is not None:
            on_epoch()

    work_dir = data_dir / RUNS_DIR / progress.run_id
    work_dir.mkdir(parents=True, exist_ok=True)
    # A resumed run keeps the epochs it trained before it stopped, for the chart and the record.
    progress.epochs = checkpoint_history(work_dir / CHECKPOINT_FILE)
    progress.done = len(progress.epochs)
    progress.step = "autoencoder: loading images and checkpoint"
    model, history = train(images, config, work_dir, on_epoch=add_epoch, should_stop=cancel.is_set)
    trained = {"model": model.state_dict(), "history": history.epochs}

    service = RecognitionService(settings)
    if training.head_epochs > 0:
        head_file = work_dir / HEAD_FILE
        if head_file.is_file():
            # A resumed run whose head stage had finished keeps that head and its epochs.
            saved = torch.load(head_file, map_location="cpu", weights_only=True)
            progress.epochs.extend(saved["epochs"])
            progress.done = len(progress.epochs)
            trained[CHECKPOINT_KEY] = saved["head"]
            log.info("museum_head_resumed", run_id=progress.run_id, epochs=len(saved["epochs"]))
        else:
            described_file = work_dir / DESCRIBED_FILE
            painting_ids = [p.id for p in paintings]
            head_checkpoint = work_dir / HEAD_CHECKPOINT_FILE
            first_head_epoch = len(progress.epochs)
            described = load_described(described_file, painting_ids, head_config.photos)
            if described is None:
                progress.step = "museum embedding: describing paintings and simulated photos"
                head_checkpoint.unlink(missing_ok=True)  # its epochs were trained on another description
            else:
                progress.step = STEPS["head"]
                log.info("museum_head_photos_resumed", run_id=progress.run_id, paintings=len(painting_ids))
                progress.epochs.extend(head_checkpoint_history(head_checkpoint))
                progress.done = len(progress.epochs)

            def save_described(new) -> None:
                save_atomically(
                    {"painting_ids": painting_ids, "references": new.references, "photos": new.photos}, described_file
                )

            extractor = DenseExtractor(service.recognizer.backbone, settings.dense_side)
            head = train_head(
                images,
                extractor,
                head_config,
                on_epoch=add_epoch,
                should_stop=cancel.is_set,
                described=described,
                on_described=save_described,
                checkpoint=head_checkpoint,
            )
            trained[CHECKPOINT_KEY] = head_state(head)
            save_atomically({"head": trained[CHECKPOINT_KEY], "epochs": progress.epochs[first_head_epoch:]}, head_file)
            # The finished head replaces the description and the checkpoint for a resume.
            described_file.unlink(missing_ok=True)
            head_checkpoint.unlink(missing_ok=True)
    checkpoint = work_dir / AUTOENCODER_FILE
    torch.save(trained, checkpoint)

    # Every painting is described again: its embeddings come from the new weights.
    progress.phase, progress.done = "indexing", epoch_total
    progress.step = "indexing paintings with the new models"
    service.recognizer = service.new_recognizer(trained_models(checkpoint))
    for painting, image in zip(paintings, images):
        if cancel.is_set():
            raise Cancelled()
        service.recognizer.add(painting.id, painting.museum, service.recognizer.describe_reference(image))
        progress.done += 1
    service.recognizer.finish_bulk_load()

    progress.phase, progress.step = "publishing", "publishing the new model version"

    def write(directory: Path) -> dict:
        service.save(directory)
        (directory / AUTOENCODER_FILE).write_bytes(checkpoint.read_bytes())
        return {
            "paintings": len(service.recognizer),
            "source": "training",
            "run_id": progress.run_id,
            # None when no reconstruction epoch ran: JSON has no infinity.
            "best_val_loss": history.best_val_loss if math.isfinite(history.best_val_loss) else None,
            "epochs": len(history.epochs),
            "head_epochs": training.head_epochs if CHECKPOINT_KEY in trained else 0,
        }

    store = ModelStore(data_dir)
    version = store.publish(write)
    store.set_target(version)
    return version


def load_described(path: Path, painting_ids: list[str], photos: int):
    """Return the head's saved description of a stopped run, or None when there is none to reuse.

    A description of other paintings (the collection changed before the resume) or with another
    number of photos per painting is not reused.
    """
    import torch

    from model.train_head import Described

    if not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: describe again rather than fail the run
        log.warning("museum_head_photos_unreadable", path=str(path), error=str(exc))
        return None
    if saved.get("painting_ids") != painting_ids or any(len(views) != photos for views in saved["photos"]):
        log.info("museum_head_photos_outdated", path=str(path), reason="the paintings or training.head_photos changed")
        return None
    return Described(saved["references"], saved["photos"])


def trainable_paintings(catalogue: Catalogue) -> list:
    """Return the paintings whose image file is present; raise TrainingError when too few are."""
    paintings = [catalogue.get(painting_id) for painting_id in catalogue.ids()]
    paintings = [p for p in paintings if p is not None and catalogue.image_path(p.image) is not None]
    if len(paintings) < MIN_PAINTINGS:
        raise TrainingError(
            f"the collection has {len(paintings)} painting(s) with an image; training needs at least "
            f"{MIN_PAINTINGS}: upload or import paintings first"
        )
    return paintings


def check_trainable(data_dir: Path, database_url: str = "") -> None:
    """Raise TrainingError when the collection is too small to train on, before a run starts."""
    catalogue = Catalogue(data_dir, database_url)
    try:
        trainable_paintings(catalogue)
    finally:
        catalogue.close()


def training_config(training):
    """Build the model-level TrainingConfig from the [training] section of the configuration."""
    from model.train_autoencoder import TrainingConfig

    return TrainingConfig(
        epochs=training.epochs,
        patience=training.patience,
        contrastive_epochs=training.contrastive_epochs,
        batch_size=training.batch_size,
        lr=training.lr,
        weight_decay=training.weight_decay,
        contrastive_lr=training.contrastive_lr,
        validation_share=training.validation_share,
    )


def head_training_config(training):
    """Build the museum embedding's HeadConfig from the [training] section."""
    from model.train_head import HeadConfig

    return HeadConfig(epochs=training.head_epochs, photos=training.head_photos)


def resumable_run(data_dir: Path, run_id: str) -> bool:
    """Return whether a run left a checkpoint to resume from."""
    return (data_dir / RUNS_DIR / run_id / CHECKPOINT_FILE).is_file()
