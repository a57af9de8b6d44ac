"""Fixtures of the tests that run a real service: a small imported collection and photos of it."""

from __future__ import annotations

import cv2
import pytest

from model.synthetic import photograph, render_painting
from pain_actors.config import Config
from pain_actors.engine_host import EngineHost


@pytest.fixture(scope="module")
def photos():
    """JPEG photos of the four paintings of the small dataset, keyed by expected title."""
    photos = {}
    for seed in range(4):
        ok, encoded = cv2.imencode(".jpg", photograph(render_painting(seed), seed=seed + 20)[..., ::-1])
        assert ok
        photos[f"Title {seed}"] = encoded.tobytes()
    return photos


@pytest.fixture
def data_dir(small_dataset, tmp_path):
    directory = tmp_path / "data"
    EngineHost(directory, Config().engine).import_dataset(str(small_dataset), "museum-1")
    return directory
