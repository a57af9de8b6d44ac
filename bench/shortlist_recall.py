"""First-stage recall: how often each shortlist of the engine contains the painting a photo shows.

The engine verifies only shortlisted paintings, so a painting missing from every shortlist cannot
be recognised, however good verification is. This benchmark indexes a dataset (with `pain eval`'s
code, optionally with distractors and an index cache) and, for every query that expects a
painting, finds the rank of its first expected painting in each candidate list of
`Recognizer.predict`:

- dense: the whole photo's CNN cell votes (the first and last passes verify the first
  engine.first_pass_candidates, then up to engine.dense_shortlist);
- sift: SIFT votes over the whole photo (engine.shortlist are verified);
- embedding: the global embedding's Annoy neighbours (engine.embedding_shortlist are added);
- regions: the best rank over the framed regions' CNN cell votes (engine.shortlist each);
- any: the painting is in at least one list within the length the engine verifies.

With `--checkpoint FILE` (a model version's autoencoder.pt), the index carries that training
run's embeddings, and three more lists are ranked: "autoencoder" and "museum embedding", the
whole photo's Annoy neighbours of each (engine.embedding_shortlist are added), and "any trained",
which is "any" with those two lists added. "any" and "any trained" are then the first stage of the
engine before and after training.

Each --variant runs the same queries with some search settings changed, e.g.
`--variant wide:dense_neighbours=16,hnsw_ef_search=64`. Settings that change the stored index are
rejected. `hnsw_ef_search` is the breadth up to 1 million descriptors, which the engine's growth
rule (`search_breadth`) widens for larger indexes. The photo's descriptors are computed once
per query and shared by the variants unless a variant changes how they are computed.

    .venv/bin/python bench/shortlist_recall.py ../shared/datasets/estensi --distractors 10000 \\
        --index-cache /tmp/pain-eval-cache --variant base: --variant wide:hnsw_ef_search=128
    .venv/bin/python bench/shortlist_recall.py ../shared/datasets/estensi --checkpoint TRAINED.pt \
        --index-cache /tmp/pain-eval-cache
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "bench")]

from _system import add_output_options, machine, parse_arguments, progress, stamp, write_result  # noqa: E402
from model.dataset import read_dataset  # noqa: E402
from model.intake import decode_image  # noqa: E402
from model.features import SiftExtractor  # noqa: E402
from model.recognizer import _top_keys, _vote, load_image_for_engine, search_breadth  # noqa: E402
from model.settings import EngineSettings  # noqa: E402
from workers.evaluation import EVAL_COLLECTION, INDEXING_SETTINGS, indexed_service  # noqa: E402

RECALL_AT = (1, 5, 10, 30, 50, 100)
SOURCES = ("dense", "sift", "embedding", "regions", "autoencoder", "museum embedding", "any", "any trained")
# Settings that change the photo's descriptors; a variant that sets one describes photos again.
DESCRIPTION_SETTINGS = ("photo_dense_side", "query_side", "query_sift_features", "max_regions")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="dataset directory (layout in docs/datasets.md)")
    parser.add_argument("--distractors", type=int, default=0, help="generated distractor paintings (default 0)")
    parser.add_argument("--index-cache", help="directory of `pain eval --index-cache`, reused when it matches")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME:KEY=VALUE,... engine settings of one variant (default: one variant, the defaults)",
    )
    parser.add_argument("--kinds", nargs="+", help="only queries of these kinds (default: all that expect paintings)")
    parser.add_argument("--checkpoint", help="trained-model file whose embeddings the index carries (default: none)")
    add_output_options(parser)
    return parser


def parse_variant(text: str, base: EngineSettings) -> tuple[str, EngineSettings]:
    name, _, assignments = text.partition(":")
    types = {field.name: type(getattr(base, field.name)) for field in dataclasses.fields(base)}
    changes = {}
    for assignment in filter(None, assignments.split(",")):
        key, _, value = assignment.partition("=")
        if key not in types:
            raise SystemExit(f"unknown engine setting {key!r} in --variant {text!r}")
        if key in INDEXING_SETTINGS:
            raise SystemExit(f"--variant {text!r} sets {key}, which changes the stored index: variants may set search settings only")
        changes[key] = types[key](value)
    return name or "default", dataclasses.replace(base, **changes)


def main(args: argparse.Namespace) -> dict:
    base = EngineSettings()
    if args.checkpoint:
        if not Path(args.checkpoint).is_file():
            raise SystemExit(f"--checkpoint: no such file: {args.checkpoint}")
        base = dataclasses.replace(base, autoencoder_checkpoint=args.checkpoint)
    variants = [parse_variant(text, base) for text in args.variant or ["default:"]]
    dataset = read_dataset(args.dataset)
    started = time.perf_counter()
    service, index_seconds = indexed_service(
        dataset, base, args.distractors, index_cache=Path(args.index_cache) if args.index_cache else None
    )
    progress(f"index ready in {time.perf_counter() - started:.0f} s (built in {index_seconds:.0f} s)")
    recognizer = service.recognizer
    index = recognizer._collections[EVAL_COLLECTION]
    queries = [q for q in dataset.queries if q.expected and (not args.kinds or q.kind in args.kinds)]

    ranks: dict[str, list[dict]] = defaultdict(list)
    for number, query in enumerate(queries, start=1):
        rgb = load_image_for_engine(decode_image(dataset.query_path(query).read_bytes(), base.max_pixels), base.max_side)
        expected = {key for key, ref in index.references.items() if ref.painting_id in query.expected}
        described: dict[tuple, tuple] = {}
        for name, settings in variants:
            recognizer.settings = settings
            description_key = tuple(getattr(settings, key) for key in DESCRIPTION_SETTINGS)
            if description_key not in described:
                recognizer._query_sift = SiftExtractor(settings.query_side, settings.query_sift_features)
                described[description_key] = (
                    recognizer._describe_whole(rgb),
                    recognizer._query_sift.extract(rgb),
                    recognizer._describe_regions(rgb),
                )
            whole, sift, regions = described[description_key]
            ranks[name].append({"kind": query.kind, **_ranks(recognizer, index, settings, whole, sift, regions, expected)})
        progress(f"query {number}/{len(queries)}")
    recognizer.settings = base

    return {
        "machine": machine(),
        "date": stamp(),
        "dataset": str(args.dataset),
        "distractors": args.distractors,
        "paintings": len(index.references),
        "queries": len(queries),
        "variants": {
            name: {"settings": _changed(settings, base), "recall": _summarise(ranks[name])} for name, settings in variants
        },
    }


def _ranks(recognizer, index, settings: EngineSettings, whole, sift, regions, expected: set[int]) -> dict:
    def rank(votes: dict[int, float]) -> int | None:
        ordered = _top_keys(votes, len(votes))
        return next((position for position, key in enumerate(ordered, start=1) if key in expected), None)

    dense_votes = recognizer._view_votes(index, whole)
    index.sift.ef_search = search_breadth(settings.hnsw_ef_search, index.sift.vector_count)
    sift_votes, _ = _vote(index.sift, sift.descriptors, settings.sift_neighbours)
    nearest = index.embeddings.search(whole.embedding, 100)
    embedding_rank = next((n for n, (key, _) in enumerate(nearest, start=1) if key in expected), None)
    region_ranks = [rank(recognizer._view_votes(index, view)) for view in regions]
    found = [r for r in region_ranks if r is not None]
    result = {
        "dense": rank(dense_votes),
        "sift": rank(sift_votes),
        "embedding": embedding_rank,
        "regions": min(found) if found else None,
    }
    limits = {
        "dense": settings.dense_shortlist,
        "sift": settings.shortlist,
        "embedding": settings.embedding_shortlist,
        "regions": settings.shortlist,
    }
    result["any"] = _within(result, limits)
    if recognizer.autoencoder is not None or recognizer.museum_head is not None:
        trained = {
            "autoencoder": (index.autoencoder_embeddings, whole.autoencoder_embedding),
            "museum embedding": (index.museum_embeddings, whole.museum_embedding),
        }
        for source, (embeddings, query) in trained.items():
            nearest = embeddings.search(query, 100) if embeddings is not None and query is not None else []
            result[source] = next((n for n, (key, _) in enumerate(nearest, start=1) if key in expected), None)
            limits[source] = settings.embedding_shortlist
        result["any trained"] = _within(result, limits)
    return result


def _within(ranks: dict, limits: dict[str, int]) -> int | None:
    """1 when some list ranks the painting within the length the engine verifies of it, else None."""
    return 1 if any(ranks[k] is not None and ranks[k] <= limit for k, limit in limits.items()) else None


def _summarise(rows: list[dict]) -> dict:
    summary = {}
    for kind in sorted({row["kind"] for row in rows}):
        group = [row for row in rows if row["kind"] == kind]
        summary[kind] = {"n": len(group)}
        sources = [source for source in SOURCES if source in group[0]]
        for source in sources:
            values = [row[source] for row in group]
            summary[kind][source] = {
                f"@{k}": round(sum(v is not None and v <= k for v in values) / len(values), 3) for k in RECALL_AT
            }
            if source.startswith("any"):
                summary[kind][source] = summary[kind][source]["@1"]
    return summary


def _changed(settings: EngineSettings, base: EngineSettings) -> dict:
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings) if getattr(settings, f.name) != getattr(base, f.name)}


if __name__ == "__main__":
    arguments = parse_arguments(get_args_parser())
    write_result(main(arguments), arguments.json_path)
