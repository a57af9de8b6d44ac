"""Hot-reload benchmark: predictors move between model versions while predict requests flow.

It starts its own `pain serve` on free 127.0.0.1 ports with generated paintings, publishes a copy
of the first model version as a second one, and then, under load from several client threads,
reloads back and forth between the two `--reloads` times. It reports requests sent, failed
(anything but 200 with the right painting first), latency percentiles during the reloads, and the
time each predictor took to serve the new version, measured from the reload request. Predictors
reload one at a time, so `seconds_per_predictor_reload` also gives each predictor's own part: from
the previous predictor's switch, or from the request for the first, until its own switch.

    .venv/bin/python bench/hot_reload.py --reloads 6 --paintings 100 --json result.json

With `--cache-dir`, the generated collection is built once and reused, as by predict_scale.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests"), str(REPO_ROOT / "bench")]

from _system import OtherLoad, add_output_options, load_average, machine, parse_arguments, write_result  # noqa: E402
from fault_injection import build_collection, cached_collection, copy_collection, percentile, query_photos  # noqa: E402
from live_server import LiveServer, wait_until  # noqa: E402
from predict_scale import service_pids  # noqa: E402
from workers.model_store import ModelStore  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reloads", type=int, default=6, help="reloads to run (default 6)")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads (default 4)")
    parser.add_argument("--predictors", type=int, default=2, help="predictor actors (default 2)")
    parser.add_argument("--paintings", type=int, default=100, help="generated paintings (default 100)")
    add_output_options(parser, cache="the built collection")
    return parser


def main(args: argparse.Namespace) -> dict:
    root = Path(tempfile.mkdtemp(prefix="pain-bench-"))
    try:
        if args.cache_dir:
            source, _ = cached_collection(Path(args.cache_dir), args.paintings)
            data = copy_collection(source, root)
        else:
            data = build_collection(root, args.paintings)
        store = ModelStore(data)
        first = store.target()
        second = store.publish(lambda directory: _copy_version(store.path(first), directory))
        photos = query_photos(args.paintings)
        load_before = load_average()
        with LiveServer(data, predictors=args.predictors) as server:
            others = OtherLoad(service_pids(server) | {os.getpid()}).start()
            result = run(server, photos, (first, second), args)
            others_cpu_share = others.stop()
        return {"machine": machine()} | result | {
            "others_cpu_share": others_cpu_share,
            "load_average_before": load_before,
            "load_average_after": load_average(),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _copy_version(source: Path, directory: Path) -> dict:
    shutil.copytree(source, directory, dirs_exist_ok=True, ignore=shutil.ignore_patterns("meta.json"))
    return {"source": "benchmark copy", "paintings": json.loads((source / "meta.json").read_text()).get("paintings")}


def run(server: LiveServer, photos, versions: tuple[str, str], args: argparse.Namespace) -> dict:
    results: list[tuple[float, float, bool]] = []  # (sent at, seconds, correct)
    stop = threading.Event()

    def client(number: int) -> None:
        turn = number
        while not stop.is_set():
            title, photo = photos[turn % len(photos)]
            turn += 1
            sent = time.monotonic()
            code, body = server.call("POST", "/api/predict", data=photo, timeout=120)
            results.append((sent, time.monotonic() - sent, code == 200 and bool(body) and body[0]["name"] == title))

    windows, per_predictor, own_reload = [], [], []
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        for number in range(args.concurrency):
            pool.submit(client, number)
        time.sleep(3)
        for reload_number in range(args.reloads):
            target = versions[(reload_number + 1) % 2]
            started = time.monotonic()
            code, body = server.call("POST", "/api/reload", {"version": target})
            assert code == 202, body
            switched: dict[str, float] = {}

            def all_switched() -> bool:
                for predictor in server.status()["pool"]["predictors"]:
                    if predictor["version"] == target and predictor["id"] not in switched:
                        switched[predictor["id"]] = time.monotonic() - started
                return len(switched) == args.predictors

            wait_until(all_switched, timeout=120, interval=0.05)
            windows.append((started, time.monotonic()))
            per_predictor.extend(switched.values())
            # Predictors reload one at a time, so each one's own reload runs from the previous
            # one's switch (or from the request, for the first) to its own switch.
            previous = 0.0
            for seconds in sorted(switched.values()):
                own_reload.append(seconds - previous)
                previous = seconds
            time.sleep(2)
        stop.set()

    during = [seconds * 1000 for sent, seconds, _ in results if any(a <= sent <= b for a, b in windows)]
    outside = [seconds * 1000 for sent, seconds, _ in results if not any(a <= sent <= b for a, b in windows)]
    failed = sum(1 for _, _, correct in results if not correct)
    return {
        "paintings": args.paintings,
        "predictors": args.predictors,
        "concurrency": args.concurrency,
        "reloads": args.reloads,
        "requests_sent": len(results),
        "failed": failed,
        "requests_during_reloads": len(during),
        "latency_during_reloads_ms": {
            "p50": round(percentile(during, 0.5), 1) if during else None,
            "p95": round(percentile(during, 0.95), 1) if during else None,
            "p99": round(percentile(during, 0.99), 1) if during else None,
        },
        "latency_outside_reloads_ms": {
            "p50": round(percentile(outside, 0.5), 1) if outside else None,
            "p95": round(percentile(outside, 0.95), 1) if outside else None,
        },
        "seconds_until_predictor_serves_new_version": {
            "median": round(statistics.median(per_predictor), 2),
            "max": round(max(per_predictor), 2),
        },
        "seconds_per_predictor_reload": {
            "median": round(statistics.median(own_reload), 2),
            "max": round(max(own_reload), 2),
        },
        "reload_wave_seconds": [round(b - a, 2) for a, b in windows],
    }


if __name__ == "__main__":
    arguments = parse_arguments(get_args_parser())
    write_result(main(arguments), arguments.json_path)
