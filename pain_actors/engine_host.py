"""One in-process engine with its catalogue: what the front end and the CLI call.

NOTE: predictions run in this process on a worker thread. The supervised predictor actors that
replace this host keep its method names, so the web handlers stay as they are.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import structlog

from model.dataset import read_dataset
from model.intake import ImageError
from model.settings import EngineSettings
from workers.catalogue import Catalogue, Painting, new_painting_id
from workers.recognition import RecognitionService

log = structlog.get_logger(__name__)

INDEX_DIR = "index"


class EngineHost:
    """Owns the recognition service, the catalogue and the saved index of one data directory."""

    def __init__(self, data_dir: Path, settings: EngineSettings) -> None:
        self.data_dir = data_dir
        self.catalogue = Catalogue(data_dir)
        self.service = RecognitionService(settings)
        index_dir = data_dir / INDEX_DIR
        if (index_dir / "engine.pkl").exists():
            self.service.load(index_dir)
            log.info("index_loaded", paintings=len(self.service.recognizer), path=str(index_dir))
        # One thread: the engine already uses every core it is given for a single photo.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    async def predict(self, image_bytes: bytes, museum: str | None, limit: int) -> list[dict]:
        """Recognise paintings in a photo; return catalogue entries with scores, best first."""
        loop = asyncio.get_running_loop()
        prediction = await loop.run_in_executor(self._executor, self.service.predict, image_bytes, museum, limit)
        results = []
        for match in prediction.matches:
            painting = self.catalogue.get(match["painting_id"])
            if painting is None:
                continue  # indexed but removed from the catalogue since: never show it
            results.append({"painting": painting, "score": match["score"], "outline": match["outline"]})
        return results

    def import_dataset(
        self, dataset_path: str, museum: str, progress: Callable[[int, int], None] | None = None
    ) -> int:
        """Add every painting of a dataset directory to a museum; return how many were added.

        All images are checked before anything is stored, so a bad file leaves the data directory
        as it was. Importing the same dataset twice adds its paintings twice.
        """
        dataset = read_dataset(dataset_path, require_queries=False)

        described = []
        for number, row in enumerate(dataset.paintings, start=1):
            data = dataset.painting_path(row).read_bytes()
            try:
                features = self.service.describe(data)
            except ImageError as exc:
                location = f"paintings/{row.image} (paintings.csv line {number + 1})"
                log.warning("import_image_rejected", museum=museum, image=row.image, error=exc.message)
                raise ImageError(exc.reason, f"{location}: {exc.message}") from None
            described.append((row, data, features))
            if progress:
                progress(number, len(dataset.paintings))

        added = []
        for row, data, features in described:
            painting = Painting(
                id=new_painting_id(),
                museum=museum,
                title=row.title,
                artist=row.artist,
                year=row.year,
                medium=row.medium,
                description=row.description,
                image=self.catalogue.store_image(data, row.image),
            )
            self.service.recognizer.add(painting.id, museum, features)
            added.append(painting)
        self.service.recognizer.finish_bulk_load()
        self.save_index()
        self.catalogue.add_many(added)
        log.info("dataset_imported", museum=museum, paintings=len(added), dataset=dataset_path)
        return len(added)

    def save_index(self) -> None:
        """Write the index beside the current one, then swap the directories.

        NOTE: a crash between the two renames leaves the previous index under `.retired-*`.
        """
        final = self.data_dir / INDEX_DIR
        staging = Path(tempfile.mkdtemp(dir=self.data_dir, prefix=".index-"))
        self.service.save(staging)
        retired = None
        if final.exists():
            retired = final.with_name(f".retired-{staging.name}")
            final.rename(retired)
        staging.rename(final)
        if retired:
            shutil.rmtree(retired, ignore_errors=True)
