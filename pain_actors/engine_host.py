"""One in-process engine with its catalogue, for `pain import` and other offline work.

The service itself never predicts here: its predictor actors load the model versions that this
host publishes.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import structlog

from model.dataset import read_dataset
from model.intake import ImageError
from model.settings import EngineSettings
from workers.catalogue import Catalogue, Painting, new_painting_id
from workers.model_store import ModelStore
from workers.recognition import RecognitionService

log = structlog.get_logger(__name__)

LEGACY_INDEX_DIR = "index"  # where releases before model versions kept the one index


class EngineHost:
    """Owns a recognition service loaded with the target model version, and the catalogue."""

    def __init__(self, data_dir: Path, settings: EngineSettings, database_url: str = "") -> None:
        self.data_dir = data_dir
        self.catalogue = Catalogue(data_dir, database_url)
        self.store = ModelStore(data_dir)
        adopt_legacy_index(data_dir, self.store)
        self.service = RecognitionService(settings)
        version = self.store.target()
        if version is not None:
            self.service.load(self.store.path(version), mapped=False)
            log.info("model_version_loaded", version=version, paintings=len(self.service.recognizer))

    def import_dataset(
        self, dataset_path: str, museum: str, progress: Callable[[int, int], None] | None = None
    ) -> int:
        """Add every painting of a dataset directory to a museum; return how many were added.

        All images are checked before anything is stored, so a bad file leaves the data directory
        as it was. Importing the same dataset twice adds its paintings twice.
        """
        dataset = read_dataset(dataset_path, require_queries=False)
        recognizer = self.service.recognizer

        # Each painting's features go into the in-memory index as soon as they are computed. Memory
        # then grows with the index (8-bit vectors), not with the raw features (about 0.8 MB per
        # painting). Nothing reaches the data directory before every image was described.
        described = []
        try:
            for number, row in enumerate(dataset.paintings, start=1):
                data = dataset.painting_path(row).read_bytes()
                try:
                    features = self.service.describe(data)
                except ImageError as exc:
                    location = f"paintings/{row.image} (paintings.csv line {number + 1})"
                    log.warning("import_image_rejected", museum=museum, image=row.image, error=exc.message)
                    raise ImageError(exc.reason, f"{location}: {exc.message}") from None
                painting_id = new_painting_id()
                recognizer.add(painting_id, museum, features)
                described.append((row, painting_id))
                if progress:
                    progress(number, len(dataset.paintings))
        except BaseException:
            self._reload_target()  # forget the paintings added to memory so far
            raise

        added = []
        for row, painting_id in described:
            data = dataset.painting_path(row).read_bytes()
            painting = Painting(
                id=painting_id,
                museum=museum,
                title=row.title,
                artist=row.artist,
                year=row.year,
                medium=row.medium,
                description=row.description,
                image=self.catalogue.store_image(data, row.image),
            )
            added.append(painting)
        self.service.recognizer.finish_bulk_load()
        self.publish("import")
        self.catalogue.add_many(added)
        log.info("dataset_imported", museum=museum, paintings=len(added), dataset=dataset_path)
        return len(added)

    def _reload_target(self) -> None:
        """Reset the in-memory index to the target model version, or to an empty one."""
        self.service.recognizer = self.service.new_recognizer()
        version = self.store.target()
        if version is not None:
            self.service.load(self.store.path(version), mapped=False)

    def publish(self, source: str) -> str:
        """Publish the in-memory index as a new model version and make it the target."""
        paintings = len(self.service.recognizer)

        def write(directory: Path) -> dict:
            self.service.save(directory)
            return {"paintings": paintings, "source": source}

        version = self.store.publish(write)
        self.store.set_target(version)
        self.catalogue.database.record_version(version, source, paintings=paintings)
        return version


def adopt_legacy_index(data_dir: Path, store: ModelStore) -> None:
    """Turn a data directory's old `index/` into the first model version."""
    legacy = data_dir / LEGACY_INDEX_DIR
    if store.versions() or not (legacy / "engine.pkl").is_file():
        return

    def write(directory: Path) -> dict:
        shutil.copytree(legacy, directory, dirs_exist_ok=True)
        return {"source": "index directory of an earlier release"}

    store.set_target(store.publish(write))
    shutil.rmtree(legacy, ignore_errors=True)
    log.info("legacy_index_adopted", path=str(legacy))
