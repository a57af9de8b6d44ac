"""`pain eval`: index a dataset's paintings into a fresh collection and score every query.

The queries go through `RecognitionService.predict`, the same call a predictor makes for a visitor.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import structlog

from model.dataset import Dataset, read_dataset
from model.settings import EngineSettings
from workers.recognition import RecognitionService

log = structlog.get_logger(__name__)

EVAL_COLLECTION = "eval"  # distractors go into it too, so they compete with the real paintings

# What decides the stored features of a painting, and so whether a cached index is still valid.
# Settings that only change how photos are searched are left out, so that they can be varied
# against one cached index.
INDEXING_SETTINGS = (
    "max_pixels",
    "backbone",
    "backbone_weights",
    "runtime",
    "autoencoder_checkpoint",
    "reference_side",
    "reference_sift_features",
    "dense_side",
)
# Modules whose code computes or stores painting features; a change to any of them invalidates the cache.
# NOTE: model/recognizer.py is left out because it is mostly query code. After changing its
# `describe_reference` or `add`, delete the cache directory by hand.
INDEXING_MODULES = ("autoencoder", "backbone", "features", "index", "intake", "museum_head", "onnx_runner", "synthetic")
CACHE_META = "eval-cache.json"


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
    index_cache: Path | None = None,
) -> tuple[dict, list[QueryOutcome]]:
    """Run the evaluation and return the report (the `--json` document) and each query's outcome.

    With `index_cache`, the indexed collection is kept under that directory, keyed by the dataset,
    the distractor count and the settings that shape painting features, and reused by later runs
    with the same key. `index_seconds` then reports the time the cached index took to build.
    """
    dataset = read_dataset(dataset_path)
    service, index_seconds = indexed_service(dataset, settings, distractors, progress, index_cache)

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


def train_on_dataset(dataset_path: str, training, settings: EngineSettings, directory: Path) -> Path:
    """Train the autoencoder and the museum embedding on a dataset's painting images.

    A training run does the same on a museum's collection. Returns the trained-model file,
    `directory/autoencoder.pt`; the autoencoder's own checkpoint goes beside it.
    """
    import torch

    from model.backbone import load_backbone
    from model.features import DenseExtractor
    from model.intake import decode_image
    from model.museum_head import CHECKPOINT_KEY, head_state
    from model.train_autoencoder import train
    from model.train_head import train_head
    from workers.training import head_training_config, training_config

    dataset = read_dataset(dataset_path)
    checkpoint = directory / "autoencoder.pt"
    images = [decode_image(dataset.painting_path(p).read_bytes(), settings.max_pixels) for p in dataset.paintings]
    model, history = train(images, training_config(training), checkpoint.parent)
    trained = {"model": model.state_dict()}
    if training.head_epochs > 0:
        backbone = load_backbone(settings.backbone, settings.backbone_weights, settings.runtime, settings.threads)
        head = train_head(images, DenseExtractor(backbone, settings.dense_side), head_training_config(training))
        trained[CHECKPOINT_KEY] = head_state(head)
    torch.save(trained, checkpoint)
    log.info("eval_models_trained", epochs=len(history.epochs), best_val_loss=round(history.best_val_loss, 4))
    return checkpoint


def first_stage_recall(dataset_path: str, settings: EngineSettings, k: int = 10) -> dict:
    """Recall@k of each global embedding used alone as a first stage, per query kind.

    A query counts when one of its expected paintings is among the k paintings whose embedding is
    nearest to the whole photo's, described as `predict` describes it. "backbone" is the
    pretrained backbone's embedding, which training does not change; "autoencoder" and "museum
    embedding" come from `settings.autoencoder_checkpoint` when it has them.
    """
    import cv2

    from model.autoencoder import INPUT_SIZE
    from model.backbone import load_backbone
    from model.features import DenseExtractor
    from model.intake import decode_image
    from model.recognizer import load_image_for_engine
    from workers.recognition import trained_models

    dataset = read_dataset(dataset_path)
    backbone = load_backbone(settings.backbone, settings.backbone_weights, settings.runtime, settings.threads)
    extractor = DenseExtractor(backbone, settings.dense_side)
    autoencoder, head = None, None
    if settings.autoencoder_checkpoint:
        autoencoder, head = trained_models(Path(settings.autoencoder_checkpoint))

    def embed(rgb: np.ndarray, side: int | None) -> dict[str, np.ndarray]:
        dense, embedding = extractor.extract(rgb, side)
        found = {"backbone": embedding}
        if autoencoder is not None:
            square = cv2.resize(rgb, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
            found["autoencoder"] = autoencoder.embed(square)
        if head is not None:
            found["museum embedding"] = head.embed(dense.descriptors)
        return found

    names = [p.image for p in dataset.paintings]
    described = [embed(decode_image(dataset.painting_path(p).read_bytes(), settings.max_pixels), None) for p in dataset.paintings]
    references = {name: np.stack([d[name] for d in described]) for name in described[0]}
    hits: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for query in dataset.queries:
        if not query.expected:
            continue
        rgb = load_image_for_engine(decode_image(dataset.query_path(query).read_bytes(), settings.max_pixels), settings.max_side)
        for name, embedding in embed(rgb, settings.photo_dense_side).items():
            nearest = np.argsort(-(references[name] @ embedding))[:k]
            hits[name][query.kind].append(any(names[i] in query.expected for i in nearest))
    return {name: {kind: round(_mean(found), 3) for kind, found in sorted(kinds.items())} for name, kinds in hits.items()}


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


def indexed_service(
    dataset: Dataset,
    settings: EngineSettings,
    distractors: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
    index_cache: Path | None = None,
) -> tuple[RecognitionService, float]:
    """Return a recognition service with the dataset's paintings and distractors in `EVAL_COLLECTION`,
    and the seconds their indexing took. The index is built afresh or loaded from `index_cache`."""
    service = RecognitionService(settings)
    cached = None
    if index_cache is not None:
        cached = Path(index_cache) / _cache_key(dataset, settings, distractors)
    if cached is not None and (cached / CACHE_META).is_file():
        started = time.perf_counter()
        service.load(cached)
        index_seconds = json.loads((cached / CACHE_META).read_text())["index_seconds"]
        log.info("eval_index_loaded", directory=str(cached), seconds=round(time.perf_counter() - started, 1))
        return service, index_seconds

    index_seconds = _index(service, dataset, distractors, progress)
    if cached is not None:
        _store(service, cached, index_seconds)
    return service, index_seconds


def _index(service: RecognitionService, dataset: Dataset, distractors: int, progress: Callable | None) -> float:
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
    return index_seconds


def _cache_key(dataset: Dataset, settings: EngineSettings, distractors: int) -> str:
    """Return a hash of what decides the indexed collection: images, settings, code and distractors."""
    digest = hashlib.sha256()
    digest.update(json.dumps({name: getattr(settings, name) for name in INDEXING_SETTINGS}, sort_keys=True).encode())
    digest.update(f"distractors={distractors}".encode())
    if settings.autoencoder_checkpoint:
        digest.update(Path(settings.autoencoder_checkpoint).read_bytes())
    for module in INDEXING_MODULES:
        digest.update(Path(importlib.import_module(f"model.{module}").__file__).read_bytes())
    for painting in dataset.paintings:
        digest.update(painting.image.encode())
        digest.update(dataset.painting_path(painting).read_bytes())
    return digest.hexdigest()[:16]


def _store(service: RecognitionService, directory: Path, index_seconds: float) -> None:
    """Save the indexed collection to `directory`, writing it beside it first and then renaming it."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=directory.name + "-", dir=directory.parent))
    try:
        service.save(partial)
        (partial / CACHE_META).write_text(json.dumps({"index_seconds": index_seconds}))
        partial.rename(directory)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        if not (directory / CACHE_META).is_file():
            raise
        # Another run with the same key stored the same index first, so this copy is not needed.
        log.info("eval_index_already_cached", directory=str(directory), error=str(exc))
        return
    log.info("eval_index_cached", directory=str(directory))


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
