"""Training of the museum embedding (`model.museum_head`) on the collection's own paintings.

Each painting is photographed several times by `model.synthetic.photograph` (perspective, frame
and wall, glare, blur, exposure, JPEG), and the frozen backbone describes the paintings and the
photos once, before the first epoch. Each epoch then only runs the small head: a photo must pick
its own painting among the paintings of its batch, and each painting its photo (cross-entropy
both ways over cosine similarities, as in CLIP). One photo of each painting is held out, and the
model with the lowest loss on those held-out photos against the whole collection is kept.

Progress lines have the shape of the autoencoder's (`model.train_autoencoder`), with stage="head".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import structlog
import torch
import torch.nn.functional as F

from model.features import DenseExtractor
from model.museum_head import MuseumHead
from model.synthetic import photograph
from model.train_autoencoder import AverageMeter, TrainingError, _log_step, painting_groups, save_checkpoint

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class HeadConfig:
    epochs: int = 200
    photos: int = 8  # simulated photos per painting; one of them is held out for validation
    batch_size: int = 64  # paintings per batch
    lr: float = 3e-3
    weight_decay: float = 1e-4
    temperature: float = 0.1
    # Cells kept per described image. The pooled embedding of a random subset is close to that of
    # all cells, and the subset bounds the memory to about 1 MB per painting.
    reference_cells: int = 512
    photo_cells: int = 256
    photo_side: int = 768  # longer side the photos are described at, as a whole photo is at query time
    seed: int = 0


@dataclass
class Described:
    """The cells of every painting and of its simulated photos, as float16 tensors."""

    references: list[torch.Tensor]
    photos: list[list[torch.Tensor]]


def simulate_photo(painting: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Simulate one random phone photo of a painting, landscape or portrait, the painting large or small."""
    size = (640, 480) if rng.random() < 0.5 else (480, 640)
    return photograph(
        painting,
        seed=int(rng.integers(1 << 31)),
        tilt=float(rng.uniform(0.0, 0.3)),
        scale=float(rng.uniform(0.45, 0.95)),
        glare=bool(rng.random() < 0.5),
        blur=float(rng.uniform(0.0, 2.5)),
        exposure=float(rng.uniform(0.5, 1.3)),
        jpeg_quality=int(rng.integers(40, 90)),
        output_size=size,
    )


def describe(
    paintings: Sequence[np.ndarray],
    extractor: DenseExtractor,
    config: HeadConfig,
    rng: np.random.Generator,
    should_stop: Callable[[], bool] = lambda: False,
) -> Described:
    """Describe each painting and `config.photos` simulated photos of it with the frozen backbone."""
    references, photos = [], []
    for painting in paintings:
        if should_stop():
            raise InterruptedError("training cancelled")
        cells = extractor.extract(painting)[0].descriptors
        references.append(_subset(cells, config.reference_cells, rng))
        views = []
        for _ in range(config.photos):
            cells = extractor.extract(simulate_photo(painting, rng), config.photo_side)[0].descriptors
            views.append(_subset(cells, config.photo_cells, rng))
        photos.append(views)
    return Described(references, photos)


def train_head_epoch(
    head: MuseumHead,
    described: Described,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    config: HeadConfig,
    rng: np.random.Generator,
) -> float:
    """One epoch: every painting once, with one of its training photos; return the mean loss."""
    head.train()
    batch_time, data_time, losses = AverageMeter(), AverageMeter(), AverageMeter()
    groups = painting_groups(len(described.references), config.batch_size, rng)
    training_photos = config.photos - 1
    end = time.perf_counter()
    for step, group in enumerate(groups, start=1):
        picks = rng.integers(training_photos, size=len(group))
        references = [described.references[i] for i in group]
        photos = [described.photos[i][pick] for i, pick in zip(group, picks)]
        data_time.update(time.perf_counter() - end)

        similarity = _embed(head, photos) @ _embed(head, references).T / config.temperature
        targets = torch.arange(len(group))
        loss = (F.cross_entropy(similarity, targets) + F.cross_entropy(similarity.T, targets)) / 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        losses.update(loss.item(), len(group))
        batch_time.update(time.perf_counter() - end)
        end = time.perf_counter()
        _log_step(epoch, step, len(groups), batch_time, data_time, losses, stage="head")
    return losses.average


@torch.no_grad()
def evaluate_head(head: MuseumHead, described: Described, config: HeadConfig) -> tuple[float, float]:
    """Return the loss and top-1 accuracy of each painting's held-out photo against the whole collection."""
    head.eval()
    started = time.perf_counter()
    references = _embed(head, described.references)
    photos = _embed(head, [views[-1] for views in described.photos])
    similarity = photos @ references.T / config.temperature
    targets = torch.arange(len(references))
    loss = F.cross_entropy(similarity, targets).item()
    accuracy = (similarity.argmax(dim=1) == targets).float().mean().item()
    seconds = time.perf_counter() - started
    # One batch, so each running mean equals its value; the line keeps the autoencoder's shape.
    log.info(f"TrainVal: [1/1]  Time {seconds:.3f} ({seconds:.3f})  Loss {loss:.4f} ({loss:.4f})", stage="head")
    log.info(f" * Loss {loss:.3f}  Acc@1 {accuracy:.3f}", stage="head")
    return loss, accuracy


def train_head(
    paintings: Sequence[np.ndarray],
    extractor: DenseExtractor,
    config: HeadConfig,
    on_epoch: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    described: Described | None = None,
    on_described: Callable[[Described], None] | None = None,
    checkpoint: Path | None = None,
) -> MuseumHead:
    """Describe the paintings and their simulated photos, train the head, return the best one.

    `described` skips the description, for a run that saved it before it stopped; `on_described`
    receives a new description before the epochs start, so that the caller can save it. With
    `checkpoint`, the state after every epoch is written there, and training continues from it
    when the file exists. It belongs to one description: the caller deletes it with a new one.
    """
    if len(paintings) < 2:
        raise TrainingError(f"the collection has {len(paintings)} painting(s); the museum embedding needs at least 2")
    if config.photos < 2:
        raise TrainingError("training.head_photos must be at least 2: one photo per painting is held out")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if described is None:
        started = time.perf_counter()
        described = describe(paintings, extractor, config, rng, should_stop)
        seconds = round(time.perf_counter() - started, 1)
        log.info("head_photos_described", paintings=len(paintings), photos=config.photos, seconds=seconds)
        if on_described is not None:
            on_described(described)
    elif len(described.references) != len(paintings) or any(len(views) != config.photos for views in described.photos):
        raise ValueError("the saved description does not match the paintings or training.head_photos")

    head = MuseumHead(extractor.dim)
    optimizer = torch.optim.Adam(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    best_loss, best_state, records = float("inf"), None, []
    if checkpoint is not None and checkpoint.is_file():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        head.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        best_loss, best_state, records = saved["best_loss"], saved["best_state"], saved["records"]
        # The same shuffles and photo picks as a run that was never stopped.
        rng.bit_generator.state = saved["rng"]
        log.info("head_training_resumed", epoch=len(records), checkpoint=str(checkpoint))

    for epoch in range(len(records), config.epochs):
        if should_stop():
            raise InterruptedError("training cancelled")
        train_loss = train_head_epoch(head, described, optimizer, epoch, config, rng)
        val_loss, accuracy = evaluate_head(head, described, config)
        if val_loss < best_loss:
            best_loss = val_loss
            best_state = {name: value.clone() for name, value in head.state_dict().items()}
        record = {"stage": "head", "epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "photo_accuracy": accuracy}
        records.append(record)
        if checkpoint is not None:
            state = {"best_loss": best_loss, "best_state": best_state, "records": records, "rng": rng.bit_generator.state}
            save_checkpoint(checkpoint, head, optimizer, state)
        if on_epoch:
            on_epoch(record)
    if best_state is not None:
        head.load_state_dict(best_state)
    return head.eval()


def head_checkpoint_history(path: Path) -> list[dict]:
    """Return the epoch records of a head checkpoint written by `train_head`, or [] without one."""
    if not path.is_file():
        return []
    return list(torch.load(path, map_location="cpu", weights_only=True)["records"])


def _subset(cells: np.ndarray, count: int, rng: np.random.Generator) -> torch.Tensor:
    if len(cells) > count:
        cells = cells[rng.choice(len(cells), count, replace=False)]
    return torch.from_numpy(np.ascontiguousarray(cells)).to(torch.float16)


def _embed(head: MuseumHead, cells: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.stack([head(c.float()) for c in cells])
