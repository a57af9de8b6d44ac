"""The painting catalogue on disk: metadata in one JSON file, images under generated names.

NOTE: this file-based store serves a single server process; the peewee database that replaces it
is planned together with the museum dashboard.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
IMAGE_NAME = re.compile(r"^[0-9a-f]{32}\.[a-z]{3,4}$")


@dataclass(frozen=True)
class Painting:
    id: str
    museum: str
    title: str
    artist: str
    year: str
    medium: str
    description: str
    image: str  # generated file name under the images directory


class Catalogue:
    """Painting metadata and image files under one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.images_dir = data_dir / "images"
        self._path = data_dir / "catalogue.json"
        self._lock = threading.Lock()
        self._paintings: dict[str, Painting] = {}
        self._loaded_stamp: tuple[int, int] | None = None
        self.refresh()

    def refresh(self) -> bool:
        """Re-read the file if another process (e.g. `pain import`) replaced it; return whether it did."""
        try:
            stat = self._path.stat()
        except FileNotFoundError:
            return False
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._loaded_stamp:
            return False
        rows = json.loads(self._path.read_text(encoding="utf-8"))
        with self._lock:
            self._paintings = {row["id"]: Painting(**row) for row in rows}
            self._loaded_stamp = stamp
        return True

    def __len__(self) -> int:
        return len(self._paintings)

    def ids(self) -> list[str]:
        return list(self._paintings)

    def get(self, painting_id: str) -> Painting | None:
        return self._paintings.get(painting_id)

    def by_museum(self, museum: str) -> list[Painting]:
        return [p for p in self._paintings.values() if p.museum == museum]

    def has_museum(self, museum: str) -> bool:
        return any(p.museum == museum for p in self._paintings.values())

    def museums(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for painting in self._paintings.values():
            counts[painting.museum] = counts.get(painting.museum, 0) + 1
        return counts

    def store_image(self, data: bytes, original_name: str) -> str:
        """Save image bytes under a generated name (never the client's) and return that name."""
        suffix = Path(original_name).suffix.lower()
        if suffix not in IMAGE_SUFFIXES:
            suffix = ".img"
        name = f"{uuid.uuid4().hex}{suffix}"
        self.images_dir.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.images_dir / name, data)
        return name

    def image_path(self, name: str) -> Path | None:
        """Return the path of a stored image, or None for any name the catalogue did not generate."""
        if not IMAGE_NAME.match(name):
            return None
        path = self.images_dir / name
        return path if path.is_file() else None

    def add(self, painting: Painting) -> None:
        with self._lock:
            self._paintings[painting.id] = painting
            self._save()

    def add_many(self, paintings: list[Painting]) -> None:
        with self._lock:
            for painting in paintings:
                self._paintings[painting.id] = painting
            self._save()

    def _save(self) -> None:
        rows = [asdict(p) for p in self._paintings.values()]
        _write_atomically(self._path, json.dumps(rows, ensure_ascii=False, indent=1).encode("utf-8"))


def new_painting_id() -> str:
    return uuid.uuid4().hex


def _write_atomically(path: Path, data: bytes) -> None:
    """Write through a temporary file and rename, so readers never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
