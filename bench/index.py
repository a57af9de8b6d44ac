"""Annoy alone: build time, query time and recall@10 against exact search, by number of vectors.

It measures `model.index.EmbeddingIndex`, the engine's Annoy wrapper, with the engine's settings:
angular distance, 20 trees, one build thread, default search_k, and k + 8 candidates per query
re-ranked by cosine. The vectors are unit vectors in clusters: `--vectors-per-cluster` vectors on
average per cluster, cluster centres uniform on the sphere, and each vector its centre plus
Gaussian noise of total standard deviation `--spread`, normalised again. With `--cone-cosine C`,
every vector v is then replaced by normalise(axis + t v), with one random axis and t = sqrt(1/C - 1),
so two vectors have a cosine of about C. That imitates the engine's global embeddings, which are
GeM-pooled activations after a ReLU, all positive, and so share one narrow cone. Queries are fresh
draws from the same clusters. Exact neighbours come from a numpy dot product with every stored
vector.

- build: seconds of one `rebuild()` over all vectors (the engine rebuilds once after a bulk load);
- engine add path: seconds to add the vectors one at a time as the engine does while indexing,
  plus the final rebuild. Adding rebuilds Annoy whenever more than 256 vectors wait in the exact
  buffer, so this time grows with the square of n and is measured only up to --add-path-max;
- query: milliseconds per `search(vector, 10)` call, p50 and p95 over the sampled queries;
- recall@10: the share of the 10 exact nearest neighbours among the 10 returned, averaged;
- memory: this process's RSS growth while the vectors and the index are built.

    .venv/bin/python bench/index.py --sizes 1000 10000 --json result.json
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "bench")]

from _system import OtherLoad, add_output_options, load_average, machine, memory_of, mib, parse_arguments, progress, write_result  # noqa: E402
from model.backbone import EfficientNetLite0  # noqa: E402
from model.index import EmbeddingIndex  # noqa: E402

ENGINE_TREES = EmbeddingIndex(1).trees
ENGINE_BUFFER_LIMIT = EmbeddingIndex(1).buffer_limit


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000], help="numbers of vectors (default 1000 10000)")
    parser.add_argument(
        "--dim",
        type=int,
        default=EfficientNetLite0.embedding_dim,
        help=f"vector dimension (default {EfficientNetLite0.embedding_dim}, the EfficientNet-Lite0 global embedding)",
    )
    parser.add_argument("--queries", type=int, default=1000, help="sampled queries per size (default 1000)")
    parser.add_argument("--k", type=int, default=10, help="neighbours per query for recall@k (default 10)")
    parser.add_argument("--runs", type=int, default=3, help="builds per size; medians are reported (default 3)")
    parser.add_argument("--vectors-per-cluster", type=int, default=100, help="average cluster size (default 100)")
    parser.add_argument("--spread", type=float, default=1.0, help="noise standard deviation around a cluster centre (default 1.0)")
    parser.add_argument(
        "--cone-cosine",
        type=float,
        help="squeeze the vectors into a cone where two vectors have about this cosine, e.g. 0.99 (default: no cone)",
    )
    parser.add_argument(
        "--add-path-max", type=int, default=10000, help="largest size at which the engine's add path is timed (default 10000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the vectors (default 0)")
    add_output_options(parser)
    return parser


def clustered_unit_vectors(
    count: int, dim: int, centres: np.ndarray, spread: float, rng: np.random.Generator, chunk: int = 100_000
) -> np.ndarray:
    """Draw `count` unit vectors: a random centre each, plus Gaussian noise, normalised."""
    vectors = np.empty((count, dim), np.float32)
    for start in range(0, count, chunk):
        stop = min(count, start + chunk)
        labels = rng.integers(0, len(centres), stop - start)
        noise = rng.standard_normal((stop - start, dim), dtype=np.float32) * (spread / np.sqrt(dim))
        block = centres[labels] + noise
        vectors[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return vectors


def squeeze_into_cone(vectors: np.ndarray, axis: np.ndarray, cosine: float) -> np.ndarray:
    """Map unit vectors into a cone around `axis` in which two independent vectors have about `cosine`."""
    # For nearly orthogonal v and w, cos(axis + t v, axis + t w) is about 1 / (1 + t**2).
    scale = np.sqrt(1.0 / cosine - 1.0)
    squeezed = axis + scale * vectors
    return squeezed / np.linalg.norm(squeezed, axis=1, keepdims=True)


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray, k: int, chunk: int = 64) -> np.ndarray:
    """Return the ids of each query's k most cosine-similar vectors, by brute force."""
    found = np.empty((len(queries), k), np.int64)
    for start in range(0, len(queries), chunk):
        similarity = queries[start : start + chunk] @ vectors.T
        top = np.argpartition(-similarity, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(similarity, top, axis=1), axis=1)
        found[start : start + chunk] = np.take_along_axis(top, order, axis=1)
    return found


def main(args: argparse.Namespace) -> dict:
    sizes = []
    for size in args.sizes:
        progress(f"{size} vectors of dimension {args.dim}")
        sizes.append(measure_size(size, args))
    return {
        "machine": machine(),
        "settings": {
            "dim": args.dim,
            "trees": ENGINE_TREES,
            "metric": "angular",
            "build_threads": 1,
            "queries": args.queries,
            "k": args.k,
            "runs": args.runs,
            "vectors_per_cluster": args.vectors_per_cluster,
            "spread": args.spread,
            "cone_cosine": args.cone_cosine,
            "seed": args.seed,
        },
        "sizes": sizes,
    }


def measure_size(size: int, args: argparse.Namespace) -> dict:
    load_before = load_average()
    others = OtherLoad({os.getpid()}).start()
    rss_before = memory_of_self()
    rng = np.random.default_rng(args.seed)
    centres = rng.standard_normal((max(1, size // args.vectors_per_cluster), args.dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = clustered_unit_vectors(size, args.dim, centres, args.spread, rng)
    queries = clustered_unit_vectors(args.queries, args.dim, centres, args.spread, rng)
    if args.cone_cosine is not None:
        axis = rng.standard_normal(args.dim).astype(np.float32)
        axis /= np.linalg.norm(axis)
        vectors = squeeze_into_cone(vectors, axis, args.cone_cosine)
        queries = squeeze_into_cone(queries, axis, args.cone_cosine)
    exact = exact_neighbours(vectors, queries, args.k)
    # How tight the neighbourhoods are: cosine between each query and its k-th exact neighbour.
    kth_cosine = float(np.mean(np.sum(queries * vectors[exact[:, -1]], axis=1)))

    runs = []
    for _ in range(args.runs):
        runs.append(measure_build_and_queries(vectors, queries, exact, args.k))
        gc.collect()
    rss_after = memory_of_self()

    add_path_seconds = None
    if size <= args.add_path_max:
        progress(f"{size} vectors: the engine's add path")
        add_path_seconds = round(time_engine_add_path(vectors), 3)

    return {
        "vectors": size,
        "clusters": len(centres),
        "mean_cosine_to_kth_neighbour": round(kth_cosine, 4),
        "build_seconds": _median(run["build_seconds"] for run in runs),
        "query_ms_p50": _median(run["query_ms_p50"] for run in runs),
        "query_ms_p95": _median(run["query_ms_p95"] for run in runs),
        "recall_at_k": _median(run["recall_at_k"] for run in runs),
        "engine_add_path_seconds": add_path_seconds,
        "peak_rss_mib": mib(rss_after["peak_rss"]),
        "rss_growth_mib": mib(rss_after["rss"] - rss_before["rss"]),
        "others_cpu_share": others.stop(),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "per_run": runs,
    }


def measure_build_and_queries(vectors: np.ndarray, queries: np.ndarray, exact: np.ndarray, k: int) -> dict:
    # buffer_limit above the size: nothing is rebuilt while adding, so only the one build is timed.
    index = EmbeddingIndex(vectors.shape[1], trees=ENGINE_TREES, buffer_limit=len(vectors) + 1)
    for key, vector in enumerate(vectors):
        index.add(key, vector)
    started = time.perf_counter()
    index.rebuild()
    build_seconds = time.perf_counter() - started

    times, hits = [], 0
    for query, truth in zip(queries, exact):
        started = time.perf_counter()
        found = index.search(query, k)
        times.append((time.perf_counter() - started) * 1000.0)
        hits += len({key for key, _ in found} & set(truth.tolist()))
    times.sort()
    return {
        "build_seconds": round(build_seconds, 3),
        "query_ms_p50": round(times[len(times) // 2], 4),
        "query_ms_p95": round(times[int(0.95 * (len(times) - 1))], 4),
        "recall_at_k": round(hits / (k * len(queries)), 4),
    }


def time_engine_add_path(vectors: np.ndarray) -> float:
    """Seconds to add vectors one by one with the engine's buffer limit, then rebuild once as a bulk load ends."""
    index = EmbeddingIndex(vectors.shape[1], trees=ENGINE_TREES, buffer_limit=ENGINE_BUFFER_LIMIT)
    started = time.perf_counter()
    for key, vector in enumerate(vectors):
        index.add(key, vector)
    index.rebuild()
    return time.perf_counter() - started


def memory_of_self() -> dict:
    return memory_of(os.getpid())


def _median(values) -> float:
    return round(statistics.median(list(values)), 4)


if __name__ == "__main__":
    arguments = parse_arguments(get_args_parser())
    write_result(main(arguments), arguments.json_path)
