"""The painting catalogue: rows in the PAIN database, images under generated names on disk.

Each process keeps the catalogue in memory and reloads it when the database's collection counter
has moved (`refresh`), so reads cost no query beyond that one integer.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import structlog

from workers.database import Database, PaintingRow, open_database

log = structlog.get_logger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
IMAGE_NAME = re.compile(r"^[0-9a-f]{32}\.[a-z]{3,4}$")
TEXT_FIELDS = ("title", "artist", "year", "medium", "description")


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
    created_at: dt.datetime | None = None  # UTC; None until the painting is stored
    updated_at: dt.datetime | None = None


class Catalogue:
    """Paintings and museums of one database, with image files under `data_dir/images`."""

    def __init__(self, data_dir: Path, database_url: str = "") -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.images_dir = data_dir / "images"
        self.database: Database = open_database(data_dir, database_url)
        self._lock = threading.Lock()
        self._paintings: dict[str, Painting] = {}
        self._museum_names: dict[str, str] = {}
        self._loaded_stamp: int | None = None
        self.refresh()

    def close(self) -> None:
        """Close the calling thread's database connection; the next read reconnects."""
        self.database.close()

    def change_stamp(self) -> int:
        """Return the collection counter, which changes with every write to paintings or museums."""
        return self.database.change_counter()

    def refresh(self) -> bool:
        """Reload paintings and museums if another process changed them; return whether it did."""
        # The counter is read before the rows, so a write in between makes the next call reload
        # again rather than leave the cache older than its stamp.
        stamp = self.change_stamp()
        if stamp == self._loaded_stamp:
            return False
        paintings = {row.id: _painting(row) for row in self.database.painting_rows()}
        names = {museum.id: museum.name for museum in self.database.list_museums()}
        with self._lock:
            self._paintings = paintings
            self._museum_names = names
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
        return museum in self._museum_names

    def museums(self) -> dict[str, int]:
        """Painting counts of the museums that have paintings."""
        counts: dict[str, int] = {}
        for painting in self._paintings.values():
            counts[painting.museum] = counts.get(painting.museum, 0) + 1
        return counts

    def museum_name(self, museum: str) -> str | None:
        """Return the display name of a museum, or None for an unknown id."""
        return self._museum_names.get(museum)

    # --- images ----------------------------------------------------------------------

    def store_image(self, data: bytes, original_name: str) -> str:
        """Save image bytes under a generated name (never the client's) and return that name.

        Only the suffix of `original_name` is kept, and only when it is a known image suffix.
        """
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

    def remove_image(self, name: str) -> None:
        """Delete a stored image file; names the catalogue did not generate are ignored."""
        path = self.image_path(name)
        if path is not None:
            path.unlink(missing_ok=True)

    # --- writes ----------------------------------------------------------------------

    def add(self, painting: Painting) -> None:
        self.add_many([painting])

    def add_many(self, paintings: list[Painting]) -> None:
        """Insert paintings; museums they name that do not exist yet are created without a login."""
        self.database.insert_paintings(
            {"id": p.id, "museum": p.museum, "image": p.image, **{f: getattr(p, f) for f in TEXT_FIELDS}}
            for p in paintings
        )
        self.refresh()

    def update(self, painting_id: str, owner: str, changes: dict[str, str]) -> Painting:
        """Change text fields of a painting of museum `owner`.

        Raises workers.database.NotFound or NotOwner.
        """
        row = self.database.update_painting(painting_id, owner, _text_changes(changes))
        self.refresh()
        return _painting(row)

    def replace_image(self, painting_id: str, owner: str, image: str, changes: dict[str, str]) -> Painting:
        """Give a painting of `owner` a new stored image (and text changes); return it under its new id.

        The id changes because predictors index paintings by id: they index the new id and drop
        the old one within their polling interval. The old image file is deleted.
        Raises workers.database.NotFound or NotOwner.
        """
        row, old_image = self.database.replace_painting(
            painting_id, owner, new_painting_id(), {**_text_changes(changes), "image": image}
        )
        self.remove_image(old_image)
        self.refresh()
        return _painting(row)

    def delete(self, painting_id: str, owner: str) -> Painting:
        """Delete a painting of museum `owner` and its image file; return what was deleted.

        Raises workers.database.NotFound or NotOwner.
        """
        row = self.database.delete_painting(painting_id, owner)
        self.remove_image(row.image)
        self.refresh()
        return _painting(row)


def new_painting_id() -> str:
    return uuid.uuid4().hex


def _painting(row: PaintingRow) -> Painting:
    return Painting(
        id=row.id,
        museum=row.museum,
        title=row.title,
        artist=row.artist,
        year=row.year,
        medium=row.medium,
        description=row.description,
        image=row.image,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _text_changes(changes: dict[str, str]) -> dict[str, str]:
    unknown = set(changes) - set(TEXT_FIELDS)
    if unknown:
        raise ValueError(f"unknown painting fields {sorted(unknown)}; change only {', '.join(TEXT_FIELDS)}")
    return dict(changes)


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
