"""Autoencoder training on generated paintings: log lines, best model, resume, contrastive loss."""

import re

import pytest
import torch
from structlog.testing import capture_logs

from model.synthetic import render_painting
from model.train_autoencoder import TrainingConfig, TrainingError, nt_xent, split_validation, train

EPOCH_LINE = re.compile(r"^Epoch: \[\d+\]\[\d+/\d+\]  Time \d+\.\d{3} \(\d+\.\d{3}\)  Data \d+\.\d{3} \(\d+\.\d{3}\)  Loss \d+\.\d{4} \(\d+\.\d{4}\)$")
VAL_LINE = re.compile(r"^TrainVal: \[\d+/\d+\]  Time \d+\.\d{3} \(\d+\.\d{3}\)  Loss \d+\.\d{4} \(\d+\.\d{4}\)$")
SUMMARY_LINE = re.compile(r"^ \* Loss \d+\.\d{3}$")


@pytest.fixture(scope="module")
def paintings():
    return [render_painting(seed) for seed in range(6)]


def test_training_logs_epochs_in_the_reference_format(paintings, tmp_path):
    with capture_logs() as logs:
        _, history = train(paintings, TrainingConfig(epochs=2, contrastive_epochs=1, batch_size=4), tmp_path)
    events = [entry["event"] for entry in logs]
    reconstruction = [e for e, entry in zip(events, logs) if e.startswith("Epoch:") and entry.get("stage") == "reconstruction"]
    assert len(reconstruction) == 4  # 2 epochs of 2 batches (5 training paintings, batch 4)
    assert all(EPOCH_LINE.match(line) for line in reconstruction), reconstruction
    assert [e for e in events if e.startswith("TrainVal:")] and all(VAL_LINE.match(e) for e in events if e.startswith("TrainVal:"))
    assert sum(1 for e in events if SUMMARY_LINE.match(e)) == 2
    assert [record["stage"] for record in history.epochs] == ["reconstruction", "reconstruction", "contrastive"]
    assert history.best_epoch in (0, 1)


def test_training_resumes_from_its_checkpoint(paintings, tmp_path):
    config = TrainingConfig(epochs=2, contrastive_epochs=0, batch_size=4)
    train(paintings, config, tmp_path)
    assert (tmp_path / "checkpoint.pt").is_file()

    longer = TrainingConfig(epochs=3, contrastive_epochs=0, batch_size=4)
    _, history = train(paintings, longer, tmp_path)
    # The first two epochs come from the checkpoint; only the third ran again.
    assert [record["epoch"] for record in history.epochs] == [0, 1, 2]


def test_cancelled_training_raises(paintings, tmp_path):
    with pytest.raises(InterruptedError):
        train(paintings, TrainingConfig(epochs=5), tmp_path, should_stop=lambda: True)


def test_tiny_collection_is_rejected_with_a_reason():
    with pytest.raises(TrainingError, match="at least 2"):
        split_validation(1, 0.15, seed=0)


def test_nt_xent_prefers_matching_views():
    torch.manual_seed(0)
    views = torch.nn.functional.normalize(torch.randn(8, 32), dim=1)
    others = torch.nn.functional.normalize(torch.randn(8, 32), dim=1)
    assert nt_xent(views, views, 0.1) < nt_xent(views, others, 0.1)
