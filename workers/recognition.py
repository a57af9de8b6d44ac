"""The recognition work a predictor does, free of any actor or HTTP code.

Predictor actors, `pain eval` and the tests all call `RecognitionService`, so what is measured is
what serves visitors.
"""

from __future__ import annotations

import os

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from pathlib import Path

import structlog

from model.intake import decode_image
from model.settings import EngineSettings

if TYPE_CHECKING:
    from model.recognizer import ReferenceFeatures

log = structlog.get_logger(__name__)

# A model version's trained models, when it has them: the autoencoder, and the museum embedding
# (model/museum_head.py) in the same file.
AUTOENCODER_FILE = "autoencoder.pt"


@dataclass(frozen=True)
class Prediction:
    matches: list[dict]
    elapsed_ms: float


def configure_threads(threads: int) -> int:
    """Bound the threads of torch, OpenCV and faiss in this process (call before heavy work).

    0 means one thread per core of the machine. Returns the number of threads set.
    """
    import cv2
    import faiss
    import torch

    if threads <= 0:
        threads = os.cpu_count() or 1

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    faiss.omp_set_num_threads(threads)
    return threads


class TrainedModelError(ValueError):
    """A trained-model file that is missing or is not one; the message names the file and the fix."""


def trained_models(checkpoint: Path) -> tuple:
    """Load the autoencoder and, when the file has one, the museum embedding's head.

    Raises TrainedModelError for a missing file or one that a training run did not write.
    """
    import pickle

    from model.autoencoder import AutoencoderEncoder
    from model.museum_head import MuseumHeadEncoder

    try:
        return AutoencoderEncoder.from_checkpoint(checkpoint), MuseumHeadEncoder.from_checkpoint(checkpoint)
    except FileNotFoundError:
        raise TrainedModelError(f"trained-model file not found: {checkpoint}") from None
    # torch raises UnpicklingError for other pickles and files, RuntimeError for a damaged archive
    # or weights of another shape, and the state lookup KeyError for a torch file of another kind.
    except (pickle.UnpicklingError, RuntimeError, KeyError, EOFError, ValueError) as exc:
        raise TrainedModelError(
            f"{checkpoint} is not a trained-model file ({type(exc).__name__}). Give the autoencoder.pt of a"
            " model version, or a file written by `pain eval --train --save-model`."
        ) from exc


class RecognitionService:
    """Owns one engine instance: its model copy and indexes."""

    def __init__(self, settings: EngineSettings) -> None:
        # Heavy imports stay inside the worker process that builds the service.
        from model.backbone import load_backbone
        from model.recognizer import Recognizer

        threads = configure_threads(settings.threads)
        self.settings = settings
        autoencoder, museum_head = None, None
        if settings.autoencoder_checkpoint:
            autoencoder, museum_head = trained_models(Path(settings.autoencoder_checkpoint))
        self._configured = (autoencoder, museum_head)
        backbone = load_backbone(settings.backbone, settings.backbone_weights, settings.runtime, threads)
        self.recognizer = Recognizer(settings, backbone, autoencoder, museum_head)
        self._recognizer_class = Recognizer
        log.info(
            "recognition_service_started",
            backbone=settings.backbone,
            runtime=settings.runtime,
            threads=threads,
            autoencoder=bool(autoencoder),
            museum_embedding=bool(museum_head),
        )

    def new_recognizer(self, trained: tuple | None = None):
        """Create an empty recognizer that shares this one's backbone.

        `trained` is an (autoencoder, museum head) pair from `trained_models`; by default the
        configured one.
        """
        autoencoder, museum_head = trained or self._configured
        return self._recognizer_class(self.settings, self.recognizer.backbone, autoencoder, museum_head)

    def load_version(self, directory: Path, mapped: bool | None = None):
        """Build a recognizer from a saved model version, with the version's own autoencoder if it has one.

        The current recognizer is not touched, so the caller decides when to swap. `mapped` (default:
        engine.map_indexes) maps the descriptor graphs from disk. A host that adds many paintings and
        publishes a new version copies them into memory instead, so its saved indexes keep one graph each.
        """
        checkpoint = directory / AUTOENCODER_FILE
        recognizer = self.new_recognizer(trained_models(checkpoint) if checkpoint.is_file() else None)
        recognizer.load(directory, self.settings.map_indexes if mapped is None else mapped)
        return recognizer

    def describe(self, image_bytes: bytes) -> "ReferenceFeatures":
        """Compute a painting image's stored features; raises model.intake.ImageError if unusable."""
        rgb = decode_image(image_bytes, self.settings.max_pixels)
        return self.recognizer.describe_reference(rgb)

    def add_painting(self, painting_id: str, collection: str, image_bytes: bytes) -> None:
        """Index one painting image; raises model.intake.ImageError for unusable images."""
        self.recognizer.add(painting_id, collection, self.describe(image_bytes))

    def remove_painting(self, painting_id: str) -> bool:
        return self.recognizer.remove(painting_id)

    def predict(self, image_bytes: bytes, collection: str | None = None, limit: int = 5) -> Prediction:
        """Recognise paintings in a photo; raises model.intake.ImageError for unusable images."""
        from model.recognizer import load_image_for_engine

        started = time.perf_counter()
        rgb = load_image_for_engine(decode_image(image_bytes, self.settings.max_pixels), self.settings.max_side)
        matches = self.recognizer.predict(rgb, collection=collection, limit=limit)
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        return Prediction([match.as_dict() for match in matches], elapsed_ms)

    def save(self, directory: Path) -> None:
        self.recognizer.save(directory)

    def load(self, directory: Path, mapped: bool | None = None) -> None:
        self.recognizer = self.load_version(directory, mapped)
