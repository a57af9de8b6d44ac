"""`pain eval`: index a dataset's paintings into a fresh collection and score every query.

The queries go through `RecognitionService.predict`, the same call a predictor makes for a visitor.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import structlog

from model.dataset import read_dataset
from model.settings import EngineSettings
from workers.recognition import RecognitionService

log = structlog.get_logger(__name__)

EVAL_COLLECTION = "eval"  # distractors go into it too, so they compete with the real paintings


@dataclass
class QueryOutcome:
    image: str
    kind: str
    expected: tuple[str, ...]
    answer: list[str]
    elapsed_ms: float
    scores: list[float] = field(default_factory=list)  # confidence of each answer, in answer order

    @property
    def correct(self) -> bool:
        """Whether the first answer is an expected painting, or a photo that expects none got no answer."""
        if not self.expected:
            return not self.answer
        return bool(self.answer) and self.answer[0] in self.expected

    def as_dict(self) -> dict:
        return {
            "image": self.image,
            "kind": self.kind if self.expected else "no match",
            "expected": list(self.expected),
            "answer": self.answer,
            "scores": self.scores,
            "correct": self.correct,
            "elapsed_ms": round(self.elapsed_ms, 1),
        }


def evaluate(
    dataset_path: str,
    settings: EngineSettings,
    distractors: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[dict, list[QueryOutcome]]:
    """Run the evaluation and return the report (the `--json` document) and each query's outcome."""
    dataset = read_dataset(dataset_path)
    service = RecognitionService(settings)

    started = time.perf_counter()
    for number, painting in enumerate(dataset.paintings, start=1):
        service.add_painting(painting.image, EVAL_COLLECTION, dataset.painting_path(painting).read_bytes())
        if progress:
            progress("index", number, len(dataset.paintings))
    if distractors:
        _add_distractors(service, distractors, progress)
    service.recognizer.finish_bulk_load()
    index_seconds = time.perf_counter() - started
    log.info("eval_indexed", paintings=len(dataset.paintings), distractors=distractors, seconds=round(index_seconds, 1))

    outcomes = []
    for number, query in enumerate(dataset.queries, start=1):
        prediction = service.predict(dataset.query_path(query).read_bytes(), collection=EVAL_COLLECTION, limit=5)
        answer = [match["painting_id"] for match in prediction.matches]
        scores = [match["score"] for match in prediction.matches]
        outcomes.append(QueryOutcome(query.image, query.kind, query.expected, answer, prediction.elapsed_ms, scores))
        if progress:
            progress("query", number, len(dataset.queries))

    report = build_report(len(dataset.paintings), outcomes, index_seconds)
    return report, outcomes


def train_on_dataset(dataset_path: str, training, max_pixels: int) -> Path:
    """Train the autoencoder on a dataset's painting images, as a training run would on a museum's
    collection; return the checkpoint, written to a new temporary directory."""
    import torch

    from model.intake import decode_image
    from model.train_autoencoder import train
    from workers.training import training_config

    dataset = read_dataset(dataset_path)
    checkpoint = Path(tempfile.mkdtemp(prefix="pain-eval-")) / "autoencoder.pt"
    images = [decode_image(dataset.painting_path(p).read_bytes(), max_pixels) for p in dataset.paintings]
    model, history = train(images, training_config(training), checkpoint.parent)
    torch.save({"model": model.state_dict()}, checkpoint)
    log.info("eval_autoencoder_trained", epochs=len(history.epochs), best_val_loss=round(history.best_val_loss, 4))
    return checkpoint


def autoencoder_recall(dataset_path: str, checkpoint: str, k: int = 10, max_pixels: int = 50_000_000) -> dict:
    """Recall@k of the autoencoder embedding alone, per query kind: the first stage of the 2020 design.

    A query counts when one of its expected paintings is among the k paintings whose embedding is
    nearest to the whole photo's embedding.
    """
    import cv2

    from model.autoencoder import INPUT_SIZE, AutoencoderEncoder
    from model.intake import decode_image

    dataset = read_dataset(dataset_path)
    encoder = AutoencoderEncoder.from_checkpoint(checkpoint)

    def embed(path: Path) -> np.ndarray:
        rgb = decode_image(path.read_bytes(), max_pixels)
        return encoder.embed(cv2.resize(rgb, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA))

    names = [p.image for p in dataset.paintings]
    references = np.stack([embed(dataset.painting_path(p)) for p in dataset.paintings])
    hits: dict[str, list[bool]] = defaultdict(list)
    for query in dataset.queries:
        if not query.expected:
            continue
        nearest = np.argsort(-(references @ embed(dataset.query_path(query))))[:k]
        hits[query.kind].append(any(names[i] in query.expected for i in nearest))
    return {kind: round(_mean(found), 3) for kind, found in sorted(hits.items())}


def build_report(paintings: int, outcomes: list[QueryOutcome], index_seconds: float) -> dict:
    """Score outcomes: top1/top5 per kind for queries that expect paintings, rejection for the rest.

    An empty result for a query that expects paintings counts as wrong.
    """
    by_kind: dict[str, list[QueryOutcome]] = defaultdict(list)
    no_match: list[QueryOutcome] = []
    for outcome in outcomes:
        (by_kind[outcome.kind] if outcome.expected else no_match).append(outcome)

    kinds = {}
    for kind, group in sorted(by_kind.items()):
        top1 = [bool(o.answer) and o.answer[0] in o.expected for o in group]
        top5 = [any(name in o.expected for name in o.answer[:5]) for o in group]
        kinds[kind] = {"n": len(group), "top1": _mean(top1), "top5": _mean(top5)}

    latencies = np.array([o.elapsed_ms for o in outcomes]) if outcomes else np.zeros(1)
    return {
        "paintings": paintings,
        "queries": len(outcomes),
        "by_kind": kinds,
        "no_match": {"n": len(no_match), "rejected": _mean([not o.answer for o in no_match])},
        "latency_ms": {
            "p50": round(float(np.percentile(latencies, 50)), 1),
            "p95": round(float(np.percentile(latencies, 95)), 1),
        },
        "index_seconds": round(index_seconds, 1),
    }


def format_table(report: dict) -> str:
    """Render the report as a plain-text table for the terminal."""
    lines = [
        f"paintings {report['paintings']}, queries {report['queries']}, indexed in {report['index_seconds']} s",
        "",
        f"{'kind':<10} {'n':>5} {'top1':>7} {'top5':>7}",
    ]
    for kind, row in report["by_kind"].items():
        lines.append(f"{kind:<10} {row['n']:>5} {row['top1']:>7.3f} {row['top5']:>7.3f}")
    lines.append(f"{'no match':<10} {report['no_match']['n']:>5} rejected {report['no_match']['rejected']:.3f}")
    lines.append("")
    lines.append(f"latency p50 {report['latency_ms']['p50']} ms, p95 {report['latency_ms']['p95']} ms")
    return "\n".join(lines)


def _add_distractors(service: RecognitionService, count: int, progress: Callable | None) -> None:
    from model.synthetic import render_painting

    for number in range(count):
        painting = render_painting(seed=1_000_000 + number)
        service.recognizer.add(
            f"distractor-{number:05d}", EVAL_COLLECTION, service.recognizer.describe_reference(painting)
        )
        if progress:
            progress("distractors", number + 1, count)


def _mean(values: list[bool]) -> float:
    return round(float(np.mean(values)), 4) if values else 0.0
