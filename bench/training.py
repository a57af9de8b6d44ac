"""Training speed: seconds per epoch of the autoencoder's two stages and of the museum embedding.

It renders `--paintings` generated paintings (`model.synthetic.render_painting`) and reads the
[training] settings (batch size, learning rates, validation share) from the configuration as
`pain` does. Then, once per `--threads` value, it runs `--epochs` epochs of each stage with the
functions that a training run calls (`model.train_autoencoder`):

- reconstruction: `train_one_epoch` over the training split, then `evaluate` on the validation
  split. Images per second count the training split only, and seconds per epoch include both;
- contrastive: `train_contrastive_epoch` over every painting, two simulated phone photos each;
  images per second count the photos (2 per painting). `photo_view_ms` is the mean time to
  simulate one photo, which is part of every contrastive step.

- museum embedding (`model.train_head`): the backbone describes `--head-sample` paintings and
  `head_photos` simulated photos of each (`describe`), which gives the seconds per painting. That
  description is repeated to the collection's size, and `train_head_epoch` and `evaluate_head` run
  on it, which gives the seconds per epoch (an epoch's cost does not depend on the cells' values).

A training run also evaluates photo accuracy every 10 contrastive epochs and re-describes every
painting afterwards; neither is timed here. Medians over the measured epochs are reported.

    .venv/bin/python bench/training.py --paintings 100 --threads 1 2 --json result.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "bench")]

from _system import OtherLoad, add_output_options, load_average, machine, memory_of, mib, parse_arguments, progress, write_result  # noqa: E402
from model.autoencoder import ConvAutoencoder  # noqa: E402
from model.synthetic import render_painting  # noqa: E402
from model.train_autoencoder import (  # noqa: E402
    _contrastive_optimizer,
    evaluate,
    photo_view,
    prepare_image,
    split_validation,
    train_contrastive_epoch,
    train_one_epoch,
)
from pain_actors.config import load_config  # noqa: E402
from pain_actors.logging_setup import configure_logging  # noqa: E402
from workers.recognition import configure_threads  # noqa: E402
from workers.training import head_training_config, training_config  # noqa: E402

PHOTO_VIEW_SAMPLES = 20


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paintings", type=int, nargs="+", default=[100], help="collection sizes (default 100)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch and OpenCV thread counts (default 1 2)")
    parser.add_argument("--epochs", type=int, default=2, help="measured epochs of each stage (default 2)")
    parser.add_argument(
        "--config", help="TOML configuration whose [training] section is used (default: ./config.toml if present, else built-in defaults)"
    )
    parser.add_argument(
        "--head-sample", type=int, default=20, help="paintings described to time the museum embedding's photos (default 20; 0 skips that stage)"
    )
    parser.add_argument("--log-level", default="warning", help="level of the training's own log lines (default warning)")
    add_output_options(parser)
    return parser


def main(args: argparse.Namespace) -> dict:
    configure_logging("console", args.log_level)
    config_path = args.config or ("config.toml" if Path("config.toml").is_file() else None)
    training = load_config(config_path).training
    config = training_config(training)
    sizes = []
    for paintings in args.paintings:
        progress(f"{paintings} paintings: rendering")
        images = [render_painting(seed) for seed in range(paintings)]
        for threads in args.threads:
            progress(f"{paintings} paintings, {threads} thread(s)")
            result = measure(images, threads, config, args.epochs)
            if args.head_sample > 0:
                result["museum_embedding"] = measure_head(images, threads, training, args.epochs, args.head_sample)
                result["estimated_run_seconds"] = (
                    result["estimated_training_seconds"] + result["museum_embedding"]["estimated_seconds"]
                )
            sizes.append(result)
    return {
        "machine": machine(),
        "settings": {
            "config": config_path or "built-in defaults",
            "batch_size": config.batch_size,
            "lr": config.lr,
            "contrastive_lr": config.contrastive_lr,
            "validation_share": config.validation_share,
            "configured_threads": training.threads,
            "configured_epochs": config.epochs,
            "configured_contrastive_epochs": config.contrastive_epochs,
            "configured_head_epochs": training.head_epochs,
            "configured_head_photos": training.head_photos,
            "measured_epochs": args.epochs,
        },
        "results": sizes,
    }


def measure(paintings: list[np.ndarray], threads: int, config, epochs: int) -> dict:
    """Run `epochs` epochs of each stage on a fresh model with `threads` threads and time them."""
    import torch

    load_before = load_average()
    others = OtherLoad({os.getpid()}).start()
    configure_threads(threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train_positions, val_positions = split_validation(len(paintings), config.validation_share, config.seed)
    started = time.perf_counter()
    images = torch.stack([prepare_image(painting) for painting in paintings])
    prepare_seconds = time.perf_counter() - started
    train_images, val_images = images[train_positions], images[val_positions]

    model = ConvAutoencoder()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    reconstruction = []
    for epoch in range(epochs):
        started = time.perf_counter()
        train_one_epoch(model, train_images, optimizer, epoch, config, rng)
        trained = time.perf_counter()
        evaluate(model, val_images, config)
        reconstruction.append({"train_seconds": trained - started, "epoch_seconds": time.perf_counter() - started})

    optimizer = _contrastive_optimizer(model, config)
    contrastive = []
    for epoch in range(epochs):
        started = time.perf_counter()
        train_contrastive_epoch(model, paintings, optimizer, epoch, config, rng)
        contrastive.append({"epoch_seconds": time.perf_counter() - started})

    started = time.perf_counter()
    for position in range(PHOTO_VIEW_SAMPLES):
        photo_view(paintings[position % len(paintings)], rng)
    photo_view_ms = (time.perf_counter() - started) * 1000.0 / PHOTO_VIEW_SAMPLES

    reconstruction_epoch = statistics.median(e["epoch_seconds"] for e in reconstruction)
    reconstruction_train = statistics.median(e["train_seconds"] for e in reconstruction)
    contrastive_epoch = statistics.median(e["epoch_seconds"] for e in contrastive)
    photos = 2 * len(paintings)
    return {
        "paintings": len(paintings),
        "threads": threads,
        "train_images": len(train_images),
        "validation_images": len(val_images),
        "prepare_seconds": round(prepare_seconds, 2),
        "reconstruction": {
            "epoch_seconds": round(reconstruction_epoch, 2),
            "images_per_second": round(len(train_images) / reconstruction_train, 2),
            "per_epoch": [{k: round(v, 2) for k, v in e.items()} for e in reconstruction],
        },
        "contrastive": {
            "epoch_seconds": round(contrastive_epoch, 2),
            "images_per_second": round(photos / contrastive_epoch, 2),
            "photo_view_ms": round(photo_view_ms, 1),
            "per_epoch": [round(e["epoch_seconds"], 2) for e in contrastive],
        },
        # Upper bound for both stages of a run with the configured epochs: reconstruction may stop early.
        "estimated_training_seconds": round(
            config.epochs * reconstruction_epoch + config.contrastive_epochs * contrastive_epoch
        ),
        "peak_rss_mib": mib(memory_of(os.getpid())["peak_rss"]),
        "others_cpu_share": others.stop(),
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


def measure_head(paintings: list[np.ndarray], threads: int, training, epochs: int, sample: int) -> dict:
    """Time the museum embedding's description per painting on a sample, and its epochs at full size."""
    import torch

    from model.backbone import load_backbone
    from model.features import DenseExtractor
    from model.museum_head import MuseumHead
    from model.settings import EngineSettings
    from model.train_head import Described, describe, evaluate_head, train_head_epoch

    configure_threads(threads)
    engine = EngineSettings()
    extractor = DenseExtractor(load_backbone(engine.backbone, engine.backbone_weights, engine.runtime, threads), engine.dense_side)
    config = head_training_config(training)
    rng = np.random.default_rng(config.seed)
    sample = min(sample, len(paintings))
    started = time.perf_counter()
    described = describe(paintings[:sample], extractor, config, rng)
    describe_seconds = (time.perf_counter() - started) / sample

    # The sample's cells stand in for the other paintings' cells.
    repeated = Described(
        [described.references[i % sample] for i in range(len(paintings))],
        [described.photos[i % sample] for i in range(len(paintings))],
    )
    head = MuseumHead(extractor.dim)
    optimizer = torch.optim.Adam(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    per_epoch = []
    for epoch in range(epochs):
        started = time.perf_counter()
        train_head_epoch(head, repeated, optimizer, epoch, config, rng)
        evaluate_head(head, repeated, config)
        per_epoch.append(time.perf_counter() - started)
    epoch_seconds = statistics.median(per_epoch)
    return {
        "sample": sample,
        "photos_per_painting": config.photos,
        "describe_seconds_per_painting": round(describe_seconds, 3),
        "epoch_seconds": round(epoch_seconds, 3),
        "per_epoch": [round(seconds, 3) for seconds in per_epoch],
        "estimated_seconds": round(describe_seconds * len(paintings) + config.epochs * epoch_seconds),
        "peak_rss_mib": mib(memory_of(os.getpid())["peak_rss"]),
    }


if __name__ == "__main__":
    arguments = parse_arguments(get_args_parser())
    write_result(main(arguments), arguments.json_path)
