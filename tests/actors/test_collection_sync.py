"""Paintings added to the catalogue are recognised by running predictors without a training run."""

import cv2
import pytest

from live_server import LiveServer, wait_until
from model.synthetic import photograph, render_painting
from pain_actors.config import Config
from pain_actors.engine_host import EngineHost
from workers.catalogue import Catalogue, Painting, new_painting_id


def jpeg(rgb) -> bytes:
    ok, encoded = cv2.imencode(".jpg", rgb[..., ::-1])
    assert ok
    return encoded.tobytes()


def test_added_painting_is_recognised_within_seconds(data_dir):
    photo = jpeg(photograph(render_painting(42), seed=3))
    with LiveServer(data_dir, predictors=2) as server:
        code, before = server.call("POST", "/api/predict", data=photo)
        assert code == 200
        assert before == []

        catalogue = Catalogue(data_dir)
        image = catalogue.store_image(jpeg(render_painting(42)), "new.jpg")
        painting = Painting(new_painting_id(), "museum-1", "Newcomer", "Artist", "2026", "oil", "Added live", image)
        catalogue.add(painting)

        def recognised_by_every_predictor():
            names = [server.call("POST", "/api/predict", data=photo)[1] for _ in range(2)]
            return all(answer and answer[0]["name"] == "Newcomer" for answer in names)

        wait_until(recognised_by_every_predictor, timeout=30, interval=0.5)
        # The model version on disk did not change: no training run was needed.
        assert server.status()["pool"]["target_version"] == "v0001"
