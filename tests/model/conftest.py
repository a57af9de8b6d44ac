"""Shared fixtures: one backbone per session, and a small engine over generated paintings."""

import pytest

from model.backbone import load_backbone
from model.recognizer import Recognizer
from model.settings import EngineSettings
from model.synthetic import render_painting

COLLECTION_SEEDS = list(range(100, 110))


@pytest.fixture(scope="session")
def backbone():
    return load_backbone()


@pytest.fixture(scope="session")
def paintings():
    """Ten generated paintings, keyed by painting id."""
    return {f"painting-{seed}": render_painting(seed) for seed in COLLECTION_SEEDS}


@pytest.fixture
def recognizer(backbone, paintings):
    engine = Recognizer(EngineSettings(threads=2), backbone)
    for painting_id, image in paintings.items():
        engine.add(painting_id, "museum-a", engine.describe_reference(image))
    engine.finish_bulk_load()
    return engine
