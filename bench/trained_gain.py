"""Gain from training: the same queries with and without a training run's embeddings, on one index.

A collection that was never trained has no autoencoder and no museum embedding: its shortlists
come from CNN cells, SIFT and the backbone's embedding. A training run adds two embeddings to
every painting and every view. This benchmark indexes a dataset once with a trained-model file:
`--checkpoint FILE`, or `--train` to train one first as `pain eval --train` does. Then it runs
every query twice through `Recognizer.predict`, once with the trained embeddings and once with the
engine's trained models removed, so that only the untrained shortlists remain. The stored CNN
cells and SIFT descriptors do not depend on training, so the two passes differ only in what
training adds.

    .venv/bin/python bench/trained_gain.py ../shared/datasets/estensi --train --distractors 10000 \\
        --index-cache /tmp/pain-eval-cache --json gain.json
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "bench")]

from _system import add_output_options, machine, parse_arguments, progress, stamp, write_result  # noqa: E402
from model.dataset import read_dataset  # noqa: E402
from pain_actors.config import load_config  # noqa: E402
from workers.evaluation import EVAL_COLLECTION, QueryOutcome, build_report, indexed_service, train_on_dataset  # noqa: E402
from workers.recognition import TrainedModelError  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="dataset directory (layout in docs/datasets.md)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="trained-model file (autoencoder.pt of a model version, or one kept with --save-model)")
    source.add_argument("--train", action="store_true", help="train on the dataset's paintings first ([training] settings)")
    parser.add_argument("--save-model", metavar="FILE", help="with --train, keep the trained-model file here")
    parser.add_argument("--distractors", type=int, default=0, help="generated distractor paintings (default 0)")
    parser.add_argument("--index-cache", help="directory of `pain eval --index-cache`, reused when it matches")
    add_output_options(parser)
    return parser


def main(args: argparse.Namespace) -> dict:
    # The settings of config.toml and PAIN_* variables, as `pain eval` uses them.
    config = load_config()
    if args.save_model and not args.train:
        raise SystemExit("--save-model needs --train")
    if not args.train:
        if not Path(args.checkpoint).is_file():
            raise SystemExit(f"--checkpoint: no such file: {args.checkpoint}")
        try:
            return measure(args, config.engine, args.checkpoint, None)
        except TrainedModelError as exc:
            raise SystemExit(f"--checkpoint: {exc}") from None

    # As in `pain eval --train`, the trained files are removed once they have been measured.
    with tempfile.TemporaryDirectory(prefix="pain-gain-") as work:
        started = time.perf_counter()
        checkpoint = str(train_on_dataset(args.dataset, config.training, config.engine, Path(work)))
        training_seconds = round(time.perf_counter() - started, 1)
        progress(f"trained in {training_seconds:.0f} s")
        if args.save_model:
            shutil.copyfile(checkpoint, args.save_model)
            checkpoint = args.save_model
        return measure(args, config.engine, checkpoint, training_seconds)


def measure(args: argparse.Namespace, base, checkpoint: str, training_seconds: float | None) -> dict:
    settings = dataclasses.replace(base, autoencoder_checkpoint=checkpoint)

    dataset = read_dataset(args.dataset)
    started = time.perf_counter()
    service, index_seconds = indexed_service(
        dataset, settings, args.distractors, _indexing_progress, Path(args.index_cache) if args.index_cache else None
    )
    progress(f"index ready in {time.perf_counter() - started:.0f} s (built in {index_seconds:.0f} s)")
    recognizer = service.recognizer
    trained_models = (recognizer.autoencoder, recognizer.museum_head)
    if trained_models == (None, None):
        raise SystemExit(f"--checkpoint {checkpoint} has no trained model: give a model version's autoencoder.pt")

    outcomes: dict[str, list[QueryOutcome]] = {"trained": [], "untrained": []}
    for number, query in enumerate(dataset.queries, start=1):
        image = dataset.query_path(query).read_bytes()
        for name, models in (("trained", trained_models), ("untrained", (None, None))):
            recognizer.autoencoder, recognizer.museum_head = models
            prediction = service.predict(image, collection=EVAL_COLLECTION, limit=5)
            answer = [match["painting_id"] for match in prediction.matches]
            scores = [match["score"] for match in prediction.matches]
            outcomes[name].append(QueryOutcome(query.image, query.kind, query.expected, answer, prediction.elapsed_ms, scores))
        progress(f"query {number}/{len(dataset.queries)}")
    recognizer.autoencoder, recognizer.museum_head = trained_models

    changed = [
        {"image": after.image, "expected": list(after.expected), "untrained": before.answer[:1], "trained": after.answer[:1]}
        for before, after in zip(outcomes["untrained"], outcomes["trained"])
        if before.correct != after.correct
    ]
    return {
        "machine": machine(),
        "date": stamp(),
        "dataset": str(args.dataset),
        "distractors": args.distractors,
        "paintings": len(recognizer._collections[EVAL_COLLECTION].references),
        "checkpoint": checkpoint,
        "training_seconds": training_seconds,
        "untrained": build_report(len(dataset.paintings), outcomes["untrained"], index_seconds),
        "trained": build_report(len(dataset.paintings), outcomes["trained"], index_seconds),
        "changed": changed,
    }


def _indexing_progress(stage: str, number: int, total: int) -> None:
    if number == total or number % 500 == 0:
        progress(f"{stage} {number}/{total}")


if __name__ == "__main__":
    arguments = parse_arguments(get_args_parser())
    write_result(main(arguments), arguments.json_path)
