"""Time of each step of a prediction, in process, without HTTP or actors.

It loads the model version of a collection of generated paintings (built by `pain import` as in
predict_scale.py, or taken from --cache-dir) into one `RecognitionService`, as a predictor does,
and predicts the same simulated phone photos as predict_scale.py. Each step of
`Recognizer.predict` is timed by wrapping the recognizer's methods on that one instance:

- decode: JPEG decoding and shrinking to engine.max_side;
- cnn_whole_photo: CNN cells and global embedding of the whole photo (first pass);
- shortlist: CNN cell votes in the HNSW index plus the Annoy neighbours, per view;
- verify_cnn: mutual nearest CNN cells and a homography per shortlisted painting;
- sift, verify_sift, regions: the second and last passes, which run only when the first pass
  finds no match with confidence engine.early_exit_confidence.

Steps are reported as mean milliseconds per photo; `other` is the rest of the total (locking and
the decision). Each --threads value sets torch, OpenCV and faiss threads as engine.threads does.

    .venv/bin/python bench/predict_stages.py --paintings 100 --cache-dir /tmp/pain-bench-cache
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests"), str(REPO_ROOT / "bench")]

from _system import OtherLoad, add_output_options, load_average, machine, parse_arguments, write_result  # noqa: E402
from fault_injection import build_collection_timed, cached_collection, query_photos  # noqa: E402
from model.intake import decode_image  # noqa: E402
from model.recognizer import load_image_for_engine  # noqa: E402
from model.settings import EngineSettings  # noqa: E402
from workers.model_store import ModelStore  # noqa: E402
from workers.recognition import RecognitionService  # noqa: E402

# (recognizer attribute path, method name, reported step)
TIMED_STEPS = [
    ((), "_describe_whole", "cnn_whole_photo"),
    ((), "_view_votes", "shortlist"),
    ((), "_shortlist_view", "shortlist"),
    ((), "_verify_view", "verify_cnn"),
    (("_query_sift",), "extract", "sift"),
    ((), "_verify_sift", "verify_sift"),
    ((), "_describe_regions", "regions"),
]


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paintings", type=int, default=100, help="generated paintings in the collection (default 100)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="engine thread counts (default 1 2)")
    parser.add_argument("--repeats", type=int, default=2, help="times each photo is predicted (default 2)")
    add_output_options(parser, cache="the built collection")
    return parser


def main(args: argparse.Namespace) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="pain-bench-"))
    try:
        if args.cache_dir:
            data, _ = cached_collection(Path(args.cache_dir), args.paintings)
        else:
            data = Path(build_collection_timed(scratch, args.paintings, keep_dataset=False)["data_dir"])
        store = ModelStore(data)
        version = store.path(store.target())
        photos = [photo for _, photo in query_photos(args.paintings)]
        results = [measure(version, photos, threads, args.repeats) for threads in args.threads]
        return {"machine": machine(), "paintings": args.paintings, "photos": len(photos), "results": results}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def measure(version: Path, photos: list[bytes], threads: int, repeats: int) -> dict:
    load_before = load_average()
    settings = replace(EngineSettings(), threads=threads)
    service = RecognitionService(settings)
    service.load(version)
    recognizer = service.recognizer
    steps: dict[str, float] = defaultdict(float)
    for owner_path, method, step in TIMED_STEPS:
        owner = recognizer
        for name in owner_path:
            owner = getattr(owner, name)
        setattr(owner, method, _timed(getattr(owner, method), step, steps))

    for photo in photos[:3]:
        service.predict(photo)  # warm-up: the first calls allocate buffers
    steps.clear()

    others = OtherLoad({os.getpid()}).start()
    totals, decode_seconds, second_pass = [], 0.0, 0
    for _ in range(repeats):
        for photo in photos:
            started = time.perf_counter()
            rgb = load_image_for_engine(decode_image(photo, settings.max_pixels), settings.max_side)
            decoded = time.perf_counter()
            sift_before = steps["sift"]
            recognizer.predict(rgb)
            totals.append(time.perf_counter() - started)
            decode_seconds += decoded - started
            second_pass += steps["sift"] > sift_before
    count = len(totals)
    per_photo = {"decode": decode_seconds * 1000.0 / count}
    per_photo |= {step: steps[step] * 1000.0 / count for _, _, step in TIMED_STEPS}
    total_ms = statistics.mean(totals) * 1000.0
    per_photo["other"] = max(0.0, total_ms - sum(per_photo.values()))
    return {
        "threads": threads,
        "predictions": count,
        "beyond_first_pass": second_pass,
        "total_ms_p50": round(statistics.median(totals) * 1000.0, 1),
        "total_ms_mean": round(total_ms, 1),
        "step_ms_mean": {step: round(value, 1) for step, value in per_photo.items()},
        "others_cpu_share": others.stop(),
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


def _timed(function, step: str, steps: dict[str, float]):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            steps[step] += time.perf_counter() - started

    return wrapper


if __name__ == "__main__":
    arguments = parse_arguments(get_args_parser())
    write_result(main(arguments), arguments.json_path)
