"""Training runs on the real service: versions, logs, kills mid-run and resume."""

import cv2
import pytest
import torch

from live_server import LiveServer, process_alive, wait_until
from model.synthetic import photograph, render_painting
from pain_actors.config import Config
from pain_actors.engine_host import EngineHost


def versions(data_dir):
    return sorted(p.name for p in (data_dir / "models").iterdir() if p.name.startswith("v"))


def test_training_run_publishes_a_version_with_its_autoencoder(data_dir):
    with LiveServer(data_dir, predictors=1) as server:
        code, body = server.call("POST", "/api/train", {})
        assert code == 202
        wait_until(lambda: server.status()["training"]["state"] == "succeeded", 180)
        training = server.status()["training"]
        assert training["version"] == "v0002"
        assert [e["stage"] for e in training["epochs"]] == ["reconstruction"] * 2 + ["contrastive"] * 2 + ["head"] * 2
        # One count over the run: 6 epochs, then the indexed paintings.
        assert training["done"] == training["total"] > 6
        assert training["step"] == ""

        # A run that published its version is not resumed.
        code, error = server.call("POST", "/api/train", {"resume": body["run_id"]})
        assert code == 409
        assert error["error"].startswith(f"resume: run {body['run_id']} already succeeded and published v0002")
        trained = torch.load(data_dir / "models" / "v0002" / "autoencoder.pt", weights_only=True)
        assert {"model", "museum_head"} <= set(trained)
        wait_until(lambda: server.status()["pool"]["predictors"][0]["version"] == "v0002", 60)

        ok, photo = cv2.imencode(".jpg", photograph(render_painting(1), seed=9)[..., ::-1])
        code, answer = server.call("POST", "/api/predict", data=photo.tobytes())
        assert code == 200
        assert answer[0]["name"] == "Title 1"
    log = server.log_path.read_text()
    assert "Epoch: [1][1/1]" in log
    assert "TrainVal: [1/1]" in log
    assert " * Loss " in log


def test_trainer_killed_mid_run_publishes_nothing_and_the_run_resumes(data_dir):
    with LiveServer(data_dir, predictors=1, training={"epochs": 500, "contrastive_epochs": 0}) as server:
        code, started = server.call("POST", "/api/train", {})
        assert code == 202
        wait_until(lambda: server.status()["training"].get("done", 0) >= 2, 120)
        trainer_pid = server.call("POST", "/api/admin/kill", {"actor": "trainer"})[1]["pid"]
        wait_until(lambda: not process_alive(trainer_pid), 10)
        wait_until(lambda: server.status()["training"]["state"] == "idle", 30)

        # The restarted trainer recorded the run as interrupted, with the command that continues it.
        last_run = server.status()["training"]["last_run"]
        assert last_run["run_id"] == started["run_id"]
        assert last_run["state"] == "interrupted"
        assert last_run["resumable"] is True
        assert f"pain train --resume {started['run_id']}" in last_run["error"]

        assert versions(data_dir) == ["v0001"]
        assert server.status()["pool"]["target_version"] == "v0001"
        assert not list((data_dir / "models").glob(".staging-*"))
        ok, photo = cv2.imencode(".jpg", photograph(render_painting(2), seed=4)[..., ::-1])
        code, answer = server.call("POST", "/api/predict", data=photo.tobytes())
        assert code == 200
        assert answer[0]["name"] == "Title 2"

        code, error = server.call("POST", "/api/train", {"resume": "nosuchrun"})
        assert code == 404
        assert "nosuchrun" in error["error"]

        code, resumed = server.call("POST", "/api/train", {"resume": started["run_id"]})
        assert code == 202
        assert resumed["run_id"] == started["run_id"]

        # The resumed run keeps the epochs it trained before the kill and goes on after them.
        wait_until(lambda: len(server.status()["training"].get("epochs", [])) >= 4, 120)
        numbers = [record["epoch"] for record in server.status()["training"]["epochs"]]
        assert numbers == list(range(len(numbers)))
        assert server.call("POST", "/api/train/cancel", {})[0] == 202


def test_cancelled_run_publishes_nothing(data_dir):
    with LiveServer(data_dir, predictors=1, training={"epochs": 500, "contrastive_epochs": 0}) as server:
        code, error = server.call("POST", "/api/train/cancel", {})
        assert code == 409
        assert "no training run" in error["error"]
        # Training settings come from the server's configuration, not from the request.
        code, error = server.call("POST", "/api/train", {"epochs": 5})
        assert code == 400
        assert error["error"].startswith('epochs: unknown field; this endpoint takes only "resume"')
        assert server.status()["training"] == {"state": "idle"}

        code, started = server.call("POST", "/api/train", {})
        assert code == 202
        wait_until(lambda: server.status()["training"].get("done", 0) >= 1, 120)
        # The status names the step in words, for the training page.
        assert server.status()["training"]["step"].startswith(("autoencoder: ", "museum embedding: "))
        code, error = server.call("POST", "/api/train", {})
        assert code == 409
        assert "pain train --cancel" in error["error"]

        code, error = server.call("POST", "/api/train/cancel", {"run_id": "othertrainingrun"})
        assert code == 409
        assert started["run_id"] in error["error"]
        code, error = server.call("POST", "/api/train/cancel", {"run_id": "../etc"})
        assert code == 400
        assert error["error"].startswith("run_id:")

        code, cancelling = server.call("POST", "/api/train/cancel", {"run_id": started["run_id"]})
        assert code == 202
        assert cancelling == {"run_id": started["run_id"], "state": "cancelling"}
        wait_until(lambda: server.status()["training"]["state"] == "cancelled", 60)

        assert versions(data_dir) == ["v0001"]
        assert server.status()["pool"]["target_version"] == "v0001"
        assert not list((data_dir / "models").glob(".staging-*"))
        # Its checkpoint stays, so the run can be resumed later.
        assert (data_dir / "training" / started["run_id"] / "checkpoint.pt").is_file()
        # The trainer is free for the next run.
        code, again = server.call("POST", "/api/train", {})
        assert code == 202
        assert again["run_id"] != started["run_id"]
        assert server.call("POST", "/api/train/cancel", {})[0] == 202
    assert '"event": "training_cancelled"' in server.log_path.read_text()


def test_training_a_tiny_collection_fails_with_a_message(tmp_path, small_dataset):
    data_dir = tmp_path / "data"
    host = EngineHost(data_dir, Config().engine)
    host.import_dataset(str(small_dataset), "museum-1")
    for painting_id in host.catalogue.ids()[1:]:
        host.catalogue.delete(painting_id, "museum-1")
    with LiveServer(data_dir, predictors=1) as server:
        code, answer = server.call("POST", "/api/train", {})
        assert code == 409
        assert "has 1 painting(s) with an image; training needs at least 2" in answer["error"]
        # Rejected before it started: no run, no version.
        assert server.status()["training"]["state"] == "idle"
        assert versions(data_dir) == ["v0001"]


def test_predictor_killed_during_a_reload_ends_on_the_target(data_dir):
    ok, photo = cv2.imencode(".jpg", photograph(render_painting(3), seed=5)[..., ::-1])
    with LiveServer(data_dir, predictors=2) as server:
        assert server.call("POST", "/api/train", {})[0] == 202
        wait_until(lambda: server.status()["training"]["state"] == "succeeded", 180)
        on = lambda version: all(p["version"] == version and p["state"] in ("idle", "busy") for p in server.status()["pool"]["predictors"])  # noqa: E731
        wait_until(lambda: on("v0002"), 60)

        # Back to v0001, and one predictor dies while the wave runs.
        assert server.call("POST", "/api/reload", {"version": "v0001"})[0] == 202
        assert server.call("POST", "/api/admin/kill", {"actor": "predictor-2"})[0] == 202
        answers = [server.call("POST", "/api/predict", data=photo.tobytes()) for _ in range(4)]
        wait_until(lambda: on("v0001") and len(server.status()["pool"]["predictors"]) == 2, 60)

        assert all(code == 200 and body[0]["name"] == "Title 3" for code, body in answers)
        assert server.status()["pool"]["reload_error"] is None
        assert not list((data_dir / "models").glob(".staging-*"))


def test_version_that_fails_to_load_stops_the_reload(data_dir):
    from workers.model_store import ModelStore

    store = ModelStore(data_dir)

    def broken(directory):
        (directory / "engine.pkl").write_bytes(b"not a pickled index")
        return {"source": "test: unreadable index"}

    bad = store.publish(broken)
    ok, photo = cv2.imencode(".jpg", photograph(render_painting(0), seed=6)[..., ::-1])
    with LiveServer(data_dir, predictors=2) as server:
        code, body = server.call("POST", "/api/reload", {"version": bad})
        assert code == 202
        wait_until(lambda: server.status()["pool"]["reload_error"], 60)

        pool = server.status()["pool"]
        assert pool["reload_error"]["version"] == bad
        assert pool["target_version"] == "v0001"  # pointed back at the version still serving
        assert {p["version"] for p in pool["predictors"]} == {"v0001"}
        code, answer = server.call("POST", "/api/predict", data=photo.tobytes())
        assert code == 200
        assert answer[0]["name"] == "Title 0"
