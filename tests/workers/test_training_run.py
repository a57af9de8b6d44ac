"""A training run in this process, as the trainer actor runs it on its background thread."""

import json
import threading

import pytest
import structlog
import torch
from structlog.testing import capture_logs

import model.train_autoencoder
from pain_actors.config import Config, TrainingSettings
from pain_actors.engine_host import EngineHost
from workers.model_store import ModelStore
from workers.training import DESCRIBED_FILE, HEAD_CHECKPOINT_FILE, RunProgress, load_described, run_training


@pytest.fixture(autouse=True)
def fresh_logging():
    """Log to this test's output: an earlier `pain` command in this process may have pointed
    structlog at a captured stream that is closed by now."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def test_epochs_run_with_training_threads(small_dataset, tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    engine = Config().engine
    EngineHost(data_dir, engine).import_dataset(str(small_dataset), "museum-1")
    training = TrainingSettings(threads=1, epochs=1, contrastive_epochs=1, batch_size=2, head_epochs=2, head_photos=2)

    # Record the torch thread count that the epochs see.
    seen = []
    real_train = model.train_autoencoder.train

    def recording_train(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_train(*args, **kwargs)

    monkeypatch.setattr(model.train_autoencoder, "train", recording_train)
    threads_before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        version = run_training(data_dir, engine, training, RunProgress(run_id="run1"), threading.Event())
    finally:
        torch.set_num_threads(threads_before)

    assert seen == [1]
    assert version == "v0002"
    assert ModelStore(data_dir).target() == "v0002"
    meta = ModelStore(data_dir).meta("v0002")
    assert meta["epochs"] == 2
    assert meta["head_epochs"] == 2


def test_run_without_reconstruction_epochs_writes_valid_meta(small_dataset, tmp_path):
    data_dir = tmp_path / "data"
    engine = Config().engine
    EngineHost(data_dir, engine).import_dataset(str(small_dataset), "museum-1")
    training = TrainingSettings(threads=1, epochs=0, contrastive_epochs=0, batch_size=2, head_epochs=0)

    version = run_training(data_dir, engine, training, RunProgress(run_id="run2"), threading.Event())

    text = (ModelStore(data_dir).path(version) / "meta.json").read_text()
    meta = json.loads(text, parse_constant=lambda name: pytest.fail(f"meta.json has {name}, which is not JSON"))
    assert meta["best_val_loss"] is None
    assert meta["head_epochs"] == 0


def test_resumed_run_keeps_the_finished_head(small_dataset, tmp_path):
    data_dir = tmp_path / "data"
    engine = Config().engine
    EngineHost(data_dir, engine).import_dataset(str(small_dataset), "museum-1")
    training = TrainingSettings(threads=1, epochs=1, contrastive_epochs=1, batch_size=2, head_epochs=2, head_photos=2)
    first = RunProgress(run_id="run3")
    assert run_training(data_dir, engine, training, first, threading.Event()) == "v0002"
    head_file = data_dir / "training" / "run3" / "museum_head.pt"
    assert head_file.is_file()

    # The same run again, as after a kill during indexing: no epoch is trained twice.
    again = RunProgress(run_id="run3")
    with capture_logs() as logs:
        assert run_training(data_dir, engine, training, again, threading.Event()) == "v0003"
    assert not [entry for entry in logs if entry["event"].startswith("Epoch:")]
    assert [record["stage"] for record in again.epochs] == ["reconstruction", "contrastive", "head", "head"]
    assert again.epochs == first.epochs
    saved = torch.load(data_dir / "models" / "v0003" / "autoencoder.pt", weights_only=True)
    published = torch.load(data_dir / "models" / "v0002" / "autoencoder.pt", weights_only=True)
    assert torch.equal(saved["museum_head"]["state"]["projection.weight"], published["museum_head"]["state"]["projection.weight"])


def test_run_stopped_in_head_epochs_resumes_them(small_dataset, tmp_path):
    data_dir = tmp_path / "data"
    engine = Config().engine
    EngineHost(data_dir, engine).import_dataset(str(small_dataset), "museum-1")
    training = TrainingSettings(threads=1, epochs=1, contrastive_epochs=1, batch_size=2, head_epochs=3, head_photos=4)
    work_dir = data_dir / "training" / "run4"

    # Cancel after the head's first epoch, as an operator or a kill would during the stage.
    cancel = threading.Event()
    first = RunProgress(run_id="run4")

    def cancel_in_head_stage() -> None:
        if first.epochs[-1]["stage"] == "head":
            cancel.set()

    with pytest.raises(InterruptedError):  # the trainer actor treats it as Cancelled
        run_training(data_dir, engine, training, first, cancel, on_epoch=cancel_in_head_stage)
    assert (work_dir / DESCRIBED_FILE).is_file()
    assert (work_dir / HEAD_CHECKPOINT_FILE).is_file()

    again = RunProgress(run_id="run4")
    with capture_logs() as logs:
        assert run_training(data_dir, engine, training, again, threading.Event()) == "v0002"
    events = [entry["event"] for entry in logs]
    assert "museum_head_photos_resumed" in events
    assert "head_training_resumed" in events
    assert "head_photos_described" not in events
    assert [record["epoch"] for record in again.epochs if record["stage"] == "head"] == [0, 1, 2]
    head_lines = [entry["event"] for entry in logs if entry.get("stage") == "head"]
    assert not [line for line in head_lines if line.startswith("Epoch: [0]")]  # not trained twice
    assert [line for line in head_lines if line.startswith("Epoch: [1]")]
    # The finished head replaces the description and the checkpoint.
    assert not (work_dir / DESCRIBED_FILE).exists()
    assert not (work_dir / HEAD_CHECKPOINT_FILE).exists()

    # A run that was never stopped trains the same head.
    whole = RunProgress(run_id="run5")
    assert run_training(data_dir, engine, training, whole, threading.Event()) == "v0003"
    resumed = torch.load(data_dir / "models" / "v0002" / "autoencoder.pt", weights_only=True)["museum_head"]["state"]
    uninterrupted = torch.load(data_dir / "models" / "v0003" / "autoencoder.pt", weights_only=True)["museum_head"]["state"]
    assert all(torch.equal(resumed[name], uninterrupted[name]) for name in uninterrupted)


def test_description_of_other_paintings_is_not_reused(small_dataset, tmp_path):
    path = tmp_path / DESCRIBED_FILE
    cells = torch.zeros(4, 8, dtype=torch.float16)
    torch.save({"painting_ids": ["a", "b"], "references": [cells, cells], "photos": [[cells, cells], [cells, cells]]}, path)

    assert load_described(path, ["a", "b"], 2) is not None
    assert load_described(path, ["a", "c"], 2) is None  # the collection changed
    assert load_described(path, ["a", "b"], 3) is None  # training.head_photos changed
    path.write_bytes(b"truncated")
    assert load_described(path, ["a", "b"], 2) is None
