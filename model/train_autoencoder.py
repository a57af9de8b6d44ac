"""Training of the convolutional autoencoder: reconstruction first, then instance discrimination.

Reconstruction (MSE) follows the original design: images resized to 256, centre-cropped to 256,
ImageNet-normalised, Adam with lr 1e-2 and weight decay 1e-4, batch 16, the best model on a
validation split, and a stop after `patience` epochs without improvement. Reconstruction alone
teaches nothing about "the same painting in another photo", so a second stage trains the encoder
contrastively: two simulated phone photos of each painting (perspective, frame and wall, glare,
blur, exposure, JPEG; see `model.synthetic.photograph`) must embed closer to each other than to
the photos of every other painting in the batch (the NT-Xent loss of SimCLR).

The functions are plain, in the manner of torchvision's classification reference:
`train_one_epoch`, `evaluate`, `train_contrastive_epoch`, with a checkpoint dict that a run can
resume from. Progress lines go through structlog in this exact shape:

    Epoch: [41][1/2]  Time 5.797 (5.797)  Data 1.036 (1.036)  Loss 0.8922 (0.8922)
    TrainVal: [1/2]  Time 2.302 (2.302)  Loss 0.9074 (0.9074)
     * Loss 0.954
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import structlog
import torch
import torch.nn.functional as F

from model.autoencoder import INPUT_SIZE, ConvAutoencoder
from model.backbone import IMAGENET_MEAN, IMAGENET_STD
from model.synthetic import photograph

log = structlog.get_logger(__name__)

MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 60  # reconstruction epochs at most
    patience: int = 30  # stop after this many epochs without a better validation loss
    contrastive_epochs: int = 40
    batch_size: int = 16
    lr: float = 1e-2
    weight_decay: float = 1e-4
    contrastive_lr: float = 1e-3
    temperature: float = 0.1
    validation_share: float = 0.15
    seed: int = 0


@dataclass
class History:
    """Losses per epoch, kept in the checkpoint and shown on the training page."""

    epochs: list[dict] = field(default_factory=list)
    best_val_loss: float = float("inf")
    best_epoch: int = -1
    epochs_without_improvement: int = 0


class AverageMeter:
    """Current value and running mean of one measured quantity."""

    def __init__(self) -> None:
        self.value = 0.0
        self.total = 0.0
        self.count = 0

    def update(self, value: float, count: int = 1) -> None:
        self.value = value
        self.total += value * count
        self.count += count

    @property
    def average(self) -> float:
        return self.total / max(self.count, 1)

    def format(self, digits: int) -> str:
        return f"{self.value:.{digits}f} ({self.average:.{digits}f})"


class TrainingError(ValueError):
    """A collection that cannot be trained on; the message states the reason and the fix."""


def prepare_image(rgb: np.ndarray) -> torch.Tensor:
    """Resize the shorter side to 256, centre-crop 256x256, ImageNet-normalise; return (3, 256, 256)."""
    height, width = rgb.shape[:2]
    scale = INPUT_SIZE / min(height, width)
    resized = cv2.resize(rgb, (max(INPUT_SIZE, round(width * scale)), max(INPUT_SIZE, round(height * scale))), interpolation=cv2.INTER_AREA)
    top = (resized.shape[0] - INPUT_SIZE) // 2
    left = (resized.shape[1] - INPUT_SIZE) // 2
    crop = resized[top : top + INPUT_SIZE, left : left + INPUT_SIZE]
    tensor = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float() / 255.0
    return (tensor - MEAN) / STD


def split_validation(count: int, share: float, seed: int) -> tuple[list[int], list[int]]:
    """Split painting positions into train and validation lists; both non-empty when count >= 2."""
    if count < 2:
        raise TrainingError(
            f"the collection has {count} painting(s); training needs at least 2 (one to train on, one to validate)"
        )
    order = np.random.default_rng(seed).permutation(count).tolist()
    validation = max(1, round(count * share))
    return order[validation:], order[:validation]


def batches(tensors: torch.Tensor, batch_size: int, shuffle: bool, rng: np.random.Generator) -> list[torch.Tensor]:
    order = rng.permutation(len(tensors)) if shuffle else np.arange(len(tensors))
    return [tensors[order[start : start + batch_size]] for start in range(0, len(tensors), batch_size)]


def train_one_epoch(
    model: ConvAutoencoder,
    images: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    config: TrainingConfig,
    rng: np.random.Generator,
) -> float:
    """One reconstruction epoch over `images` (N, 3, 256, 256); return the mean loss."""
    model.train()
    batch_time, data_time, losses = AverageMeter(), AverageMeter(), AverageMeter()
    loader = batches(images, config.batch_size, shuffle=True, rng=rng)
    end = time.perf_counter()
    for step, batch in enumerate(loader, start=1):
        data_time.update(time.perf_counter() - end)
        loss = F.mse_loss(model(batch), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        losses.update(loss.item(), len(batch))
        batch_time.update(time.perf_counter() - end)
        end = time.perf_counter()
        _log_step(epoch, step, len(loader), batch_time, data_time, losses, stage="reconstruction")
    return losses.average


@torch.no_grad()
def evaluate(model: ConvAutoencoder, images: torch.Tensor, config: TrainingConfig) -> float:
    """Mean reconstruction loss on the validation images."""
    model.eval()
    batch_time, losses = AverageMeter(), AverageMeter()
    loader = batches(images, config.batch_size, shuffle=False, rng=np.random.default_rng(0))
    end = time.perf_counter()
    for step, batch in enumerate(loader, start=1):
        losses.update(F.mse_loss(model(batch), batch).item(), len(batch))
        batch_time.update(time.perf_counter() - end)
        end = time.perf_counter()
        log.info(f"TrainVal: [{step}/{len(loader)}]  Time {batch_time.format(3)}  Loss {losses.format(4)}", stage="reconstruction")
    log.info(f" * Loss {losses.average:.3f}", stage="reconstruction")
    return losses.average


def photo_view(painting: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """Simulate a random phone photo of one painting and prepare it for the encoder."""
    photo = photograph(
        painting,
        seed=int(rng.integers(1 << 31)),
        tilt=float(rng.uniform(0.0, 0.25)),
        scale=float(rng.uniform(0.55, 0.95)),
        glare=bool(rng.random() < 0.5),
        blur=float(rng.uniform(0.0, 2.0)),
        exposure=float(rng.uniform(0.7, 1.3)),
        jpeg_quality=int(rng.integers(40, 90)),
        output_size=(320, 320),
    )
    return prepare_image(photo)


def nt_xent(first: torch.Tensor, second: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's loss: each view must pick its partner among all 2N - 1 other views."""
    embeddings = torch.cat([first, second])
    similarity = embeddings @ embeddings.T / temperature
    similarity.fill_diagonal_(float("-inf"))
    count = len(first)
    partners = torch.cat([torch.arange(count, 2 * count), torch.arange(0, count)])
    return F.cross_entropy(similarity, partners)


def train_contrastive_epoch(
    model: ConvAutoencoder,
    paintings: Sequence[np.ndarray],
    optimizer: torch.optim.Optimizer,
    epoch: int,
    config: TrainingConfig,
    rng: np.random.Generator,
) -> float:
    """One instance-discrimination epoch: every painting once, two photo views each; return the mean loss."""
    model.train()
    batch_time, data_time, losses = AverageMeter(), AverageMeter(), AverageMeter()
    groups = painting_groups(len(paintings), config.batch_size, rng)
    end = time.perf_counter()
    for step, group in enumerate(groups, start=1):
        first = torch.stack([photo_view(paintings[i], rng) for i in group])
        second = torch.stack([photo_view(paintings[i], rng) for i in group])
        data_time.update(time.perf_counter() - end)

        loss = nt_xent(model.embed(first), model.embed(second), config.temperature)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        losses.update(loss.item(), len(group))
        batch_time.update(time.perf_counter() - end)
        end = time.perf_counter()
        _log_step(epoch, step, len(groups), batch_time, data_time, losses, stage="contrastive")
    return losses.average


@torch.no_grad()
def evaluate_contrastive(model: ConvAutoencoder, paintings: Sequence[np.ndarray], seed: int) -> float:
    """Share of simulated photos whose nearest painting embedding is their own painting."""
    model.eval()
    rng = np.random.default_rng(seed)
    references = F.normalize(model.embed(torch.stack([prepare_image(p) for p in paintings])), dim=1)
    photos = model.embed(torch.stack([photo_view(p, rng) for p in paintings]))
    nearest = (photos @ references.T).argmax(dim=1)
    accuracy = (nearest == torch.arange(len(paintings))).float().mean().item()
    log.info(f" * Acc@1 {accuracy:.3f}", stage="contrastive")
    return accuracy


def painting_groups(count: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle painting positions into batches, none of a single painting while count >= 2.

    A batch of one painting has no other painting to contrast with, so a short last batch is
    folded into the one before.
    """
    order = rng.permutation(count)
    groups = [order[start : start + batch_size] for start in range(0, count, batch_size)]
    if len(groups) > 1 and len(groups[-1]) < 2:
        groups[-2] = np.concatenate([groups[-2], groups.pop()])
    return groups


def save_atomically(state: dict, path: Path) -> None:
    """Write a torch file through a temporary file, so a kill leaves the previous one or none."""
    temporary = path.with_suffix(".tmp")
    torch.save(state, temporary)
    temporary.replace(path)


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Write a model's and its optimizer's state with `state`, atomically."""
    save_atomically({"model": model.state_dict(), "optimizer": optimizer.state_dict(), **state}, path)


def checkpoint_history(path: Path) -> list[dict]:
    """Return the epoch records saved in a run's checkpoint, or [] when there is none."""
    if not path.is_file():
        return []
    return list(torch.load(path, map_location="cpu", weights_only=False)["history"].epochs)


def train(
    paintings: Sequence[np.ndarray],
    config: TrainingConfig,
    work_dir: Path,
    on_epoch: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> tuple[ConvAutoencoder, History]:
    """Train both stages on RGB painting images; return the best model and the loss history.

    `work_dir/checkpoint.pt` is written after every epoch and, when present at the start, the run
    resumes from it. `on_epoch` receives each epoch's record; `should_stop` is checked between
    epochs and batches are not interrupted.
    """
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train_positions, val_positions = split_validation(len(paintings), config.validation_share, config.seed)
    images = torch.stack([prepare_image(p) for p in paintings])
    train_images, val_images = images[train_positions], images[val_positions]

    model = ConvAutoencoder()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history = History()
    best_state = None
    stage, start_epoch = "reconstruction", 0
    checkpoint_path = work_dir / "checkpoint.pt"
    if checkpoint_path.is_file():
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        model.load_state_dict(checkpoint["model"])
        stage, start_epoch = checkpoint["stage"], checkpoint["epoch"] + 1
        history = checkpoint["history"]
        best_state = checkpoint.get("best_model")
        if stage == "contrastive":
            optimizer = _contrastive_optimizer(model, config)
        optimizer.load_state_dict(checkpoint["optimizer"])
        log.info("training_resumed", stage=stage, epoch=start_epoch, checkpoint=str(checkpoint_path))

    if stage == "reconstruction":
        for epoch in range(start_epoch, config.epochs):
            if should_stop():
                raise InterruptedError("training cancelled")
            train_loss = train_one_epoch(model, train_images, optimizer, epoch, config, rng)
            val_loss = evaluate(model, val_images, config)
            record = {"stage": "reconstruction", "epoch": epoch, "train_loss": train_loss, "val_loss": val_loss}
            history.epochs.append(record)
            if val_loss < history.best_val_loss:
                history.best_val_loss, history.best_epoch = val_loss, epoch
                history.epochs_without_improvement = 0
                best_state = {name: value.clone() for name, value in model.state_dict().items()}
            else:
                history.epochs_without_improvement += 1
            save_checkpoint(checkpoint_path, model, optimizer, {"stage": stage, "epoch": epoch, "history": history, "best_model": best_state})
            if on_epoch:
                on_epoch(record)
            if history.epochs_without_improvement >= config.patience:
                log.info("reconstruction_stopped_early", epoch=epoch, best_epoch=history.best_epoch)
                break

        # The contrastive stage starts from the best reconstruction model, not the last one.
        if best_state is not None:
            model.load_state_dict(best_state)
        stage, start_epoch = "contrastive", 0
        optimizer = _contrastive_optimizer(model, config)

    for epoch in range(start_epoch, config.contrastive_epochs):
        if should_stop():
            raise InterruptedError("training cancelled")
        train_loss = train_contrastive_epoch(model, paintings, optimizer, epoch, config, rng)
        record = {"stage": "contrastive", "epoch": epoch, "train_loss": train_loss, "val_loss": None}
        if epoch == config.contrastive_epochs - 1 or epoch % 10 == 9:
            record["photo_accuracy"] = evaluate_contrastive(model, [paintings[i] for i in val_positions + train_positions], config.seed + epoch)
        history.epochs.append(record)
        save_checkpoint(checkpoint_path, model, optimizer, {"stage": stage, "epoch": epoch, "history": history, "best_model": best_state})
        if on_epoch:
            on_epoch(record)
    return model, history


def _log_step(epoch: int, step: int, steps: int, batch_time, data_time, losses, **fields) -> None:
    log.info(
        f"Epoch: [{epoch}][{step}/{steps}]  Time {batch_time.format(3)}  Data {data_time.format(3)}  Loss {losses.format(4)}",
        **fields,
    )


def _contrastive_optimizer(model: ConvAutoencoder, config: TrainingConfig) -> torch.optim.Optimizer:
    # Only the encoder makes the embedding; the decoder is left as reconstruction made it.
    return torch.optim.Adam(model.encoder.parameters(), lr=config.contrastive_lr, weight_decay=config.weight_decay)
