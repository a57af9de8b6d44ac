"""Immutable, numbered model versions on disk, and the version that predictors should serve.

Layout under `<data_dir>/models/`:

    v0001/              one published version: the saved index plus meta.json
    v0002/
    .staging-<random>/  a version being written; never read, removed at the next start
    target              JSON {"version": "v0002"}: what every predictor should serve

A version is written under `.staging-*` and renamed into place, so a reader never sees half a
version. `target` is replaced with os.replace, so it is always one whole JSON document.
Predictors load `target` when they start, and the coordinator moves running predictors to it one
at a time. The store is the source of truth: a restarted coordinator or predictor reads it again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

VERSION_NAME = re.compile(r"^v(\d{4,})$")
META_FILE = "meta.json"
TARGET_FILE = "target"
STAGING_PREFIX = ".staging-"


class ModelStoreError(RuntimeError):
    """A version that does not exist, or a store that cannot be written."""


class ModelStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "models"
        self.root.mkdir(parents=True, exist_ok=True)

    def versions(self) -> list[str]:
        """Published versions, oldest first."""
        found = []
        for entry in self.root.iterdir():
            match = VERSION_NAME.match(entry.name)
            if match and (entry / META_FILE).is_file():
                found.append((int(match.group(1)), entry.name))
        return [name for _, name in sorted(found)]

    def latest(self) -> str | None:
        versions = self.versions()
        return versions[-1] if versions else None

    def path(self, version: str) -> Path:
        if not VERSION_NAME.match(version) or not (self.root / version / META_FILE).is_file():
            raise ModelStoreError(f"model version {version!r} does not exist; known versions: {self.versions()}")
        return self.root / version

    def meta(self, version: str) -> dict:
        return json.loads((self.path(version) / META_FILE).read_text(encoding="utf-8"))

    def publish(self, write: Callable[[Path], dict]) -> str:
        """Create the next version: `write(directory)` fills it and returns its metadata.

        If `write` raises, nothing is published and the staging directory is removed.
        """
        staging = Path(tempfile.mkdtemp(dir=self.root, prefix=STAGING_PREFIX))
        try:
            meta = dict(write(staging))
            meta["created_at"] = time.time()
            (staging / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
            # Two publishers may race for a number; the loser's rename fails and it takes the next.
            for _ in range(100):
                number = int(VERSION_NAME.match(self.latest() or "v0000").group(1)) + 1
                version = f"v{number:04d}"
                meta["version"] = version
                (staging / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
                try:
                    os.rename(staging, self.root / version)
                except OSError:
                    continue
                log.info("model_version_published", version=version, paintings=meta.get("paintings"))
                return version
            raise ModelStoreError(f"could not find a free version number under {self.root}")
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def target(self) -> str | None:
        """The version predictors should serve, or None before the first version."""
        try:
            version = json.loads((self.root / TARGET_FILE).read_text(encoding="utf-8"))["version"]
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            # NOTE: only a hand edit can break this file; fall back to the newest version.
            log.error("model_target_unreadable", path=str(self.root / TARGET_FILE))
            return self.latest()
        return version

    def set_target(self, version: str) -> None:
        self.path(version)  # raises for an unknown version
        handle, temporary = tempfile.mkstemp(dir=self.root, prefix=".target-")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump({"version": version}, stream)
        os.replace(temporary, self.root / TARGET_FILE)
        log.info("model_target_set", version=version)

    def remove_staging(self, older_than: float = 0.0) -> int:
        """Delete what interrupted publishers left behind, if older than `older_than` seconds.

        Return how many directories were removed.
        """
        removed = 0
        now = time.time()
        for entry in self.root.glob(f"{STAGING_PREFIX}*"):
            try:
                if now - entry.stat().st_mtime < older_than:
                    continue
            except FileNotFoundError:
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
        for entry in self.root.glob(".target-*"):
            entry.unlink(missing_ok=True)
        if removed:
            log.info("model_staging_removed", directories=removed)
        return removed
