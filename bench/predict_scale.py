"""Predict latency, throughput, memory and start-up time over HTTP, by collection size and predictor count.

For each collection size it builds (or takes from --cache-dir) a data directory of generated
paintings imported by `pain import`. For each predictor count and run, it starts its own
`pain serve` on free 127.0.0.1 ports on a fresh copy of that directory, and measures:

- start-up: seconds from starting the process until /healthz is ready (one predictor serves), and
  until every predictor serves;
- load: client threads send simulated phone photos of 20 of the paintings to POST /api/predict for
  --seconds at each --concurrency; latency percentiles (end to end, one new HTTP connection per
  request), throughput, failed requests (no 200) and wrong responses (200 without the photographed
  painting first);
- memory after the load: RSS and peak RSS of each predictor process, and RSS and PSS summed over
  the service's processes (the server, Thespian's admin process and every actor);
- others' CPU share: the share of the machine's CPU that processes other than the service and this
  script used during the load, to tell a run on a shared machine from one that was alone.

Each metric is reported per run and as the median over --runs runs.

    .venv/bin/python bench/predict_scale.py --paintings 100 --predictors 1 2 --json result.json
"""

from __future__ import annotations

import argparse
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

from _system import OtherLoad, add_output_options, ancestors, load_average, machine, memory_of, mib, parent_pid, parse_arguments, process_tree, progress, tree_memory, write_result  # noqa: E402
from fault_injection import build_collection_timed, cached_collection, copy_collection, percentile, query_photos  # noqa: E402
from live_server import LiveServer, wait_until  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paintings", type=int, nargs="+", default=[100], help="collection sizes (default 100)")
    parser.add_argument("--predictors", type=int, nargs="+", default=[2], help="predictor counts (default 2)")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 4], help="client thread counts, each loaded in turn (default 1 4)"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of load per concurrency (default 10)")
    parser.add_argument("--runs", type=int, default=3, help="server starts per predictor count (default 3)")
    parser.add_argument("--engine-threads", type=int, default=1, help="torch, OpenCV and faiss threads per predictor (default 1)")
    add_output_options(parser, cache="built collections")
    return parser


def main(args: argparse.Namespace) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="pain-bench-"))
    try:
        result = {
            "machine": machine(),
            "settings": {
                "seconds": args.seconds,
                "runs": args.runs,
                "concurrency": args.concurrency,
                "engine_threads": args.engine_threads,
            },
            "collections": [],
        }
        for paintings in args.paintings:
            result["collections"].append(measure_collection(paintings, scratch, args))
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def measure_collection(paintings: int, scratch: Path, args: argparse.Namespace) -> dict:
    progress(f"{paintings} paintings: building or reading the collection")
    if args.cache_dir:
        source, build = cached_collection(Path(args.cache_dir), paintings)
    else:
        build = build_collection_timed(scratch / f"build-{paintings}", paintings, keep_dataset=False)
        source = Path(build["data_dir"])
    photos = query_photos(paintings)
    configurations = []
    for predictors in args.predictors:
        runs = []
        for number in range(1, args.runs + 1):
            progress(f"{paintings} paintings, {predictors} predictor(s): run {number}/{args.runs}")
            run_root = scratch / f"run-{paintings}-{predictors}-{number}"
            run_root.mkdir()
            try:
                runs.append(measure_run(copy_collection(source, run_root), photos, predictors, args))
            finally:
                shutil.rmtree(run_root, ignore_errors=True)
        configurations.append(summarise(predictors, runs))
    return {"paintings": paintings, "build": build, "configurations": configurations}


def measure_run(data: Path, photos: list[tuple[str, bytes]], predictors: int, args: argparse.Namespace) -> dict:
    """Start one server on `data`, time its start-up, load it at each concurrency, read its memory."""
    load_before = load_average()
    server = LiveServer(data, predictors=predictors)
    server.env["PAIN_ENGINE_THREADS"] = str(args.engine_threads)
    started = time.monotonic()
    with server:
        ready_seconds = time.monotonic() - started
        wait_until(lambda: _serving(server) == predictors, timeout=600, interval=0.1)
        all_serving_seconds = time.monotonic() - started

        # One request per photo first, so lazy initialisation in predictors is not measured.
        for _, photo in photos:
            server.call("POST", "/api/predict", data=photo, timeout=120)

        others = OtherLoad(service_pids(server) | {os.getpid()}).start()
        loads = [run_load(server, photos, concurrency, args.seconds) for concurrency in args.concurrency]
        others_cpu_share = others.stop()
        memory = read_memory(server)
    return {
        "ready_seconds": round(ready_seconds, 2),
        "all_predictors_serving_seconds": round(all_serving_seconds, 2),
        "loads": loads,
        "memory": memory,
        "others_cpu_share": others_cpu_share,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "leftover_processes_killed": len(getattr(server, "leftovers", [])),
    }


def _serving(server: LiveServer) -> int:
    code, body = server.call("GET", "/healthz", timeout=10)
    return body.get("predictors_serving", 0) if isinstance(body, dict) else 0


def run_load(server: LiveServer, photos: list[tuple[str, bytes]], concurrency: int, seconds: float) -> dict:
    """Send photos from `concurrency` threads for `seconds`. Each thread waits for a response before it sends again."""
    results: list[tuple[float, int, bool]] = []  # (seconds, HTTP status or 0 for no response, right painting first)
    stop = threading.Event()

    def client(number: int) -> None:
        turn = number
        while not stop.is_set():
            title, photo = photos[turn % len(photos)]
            turn += 1
            sent = time.monotonic()
            try:
                code, body = server.call("POST", "/api/predict", data=photo, timeout=120)
            except OSError:
                code, body = 0, None
            correct = code == 200 and bool(body) and body[0]["name"] == title
            results.append((time.monotonic() - sent, code, correct))

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for number in range(concurrency):
            pool.submit(client, number)
        time.sleep(seconds)
        stop.set()
    # Requests still running at the stop are waited for and counted, so the time runs until the last one ends.
    elapsed = time.monotonic() - started

    latencies = [latency * 1000.0 for latency, _, _ in results]
    failed = sum(1 for _, code, _ in results if code != 200)
    return {
        "concurrency": concurrency,
        "requests": len(results),
        "failed": failed,
        "wrong": sum(1 for _, code, correct in results if code == 200 and not correct),
        "statuses": {str(code): sum(1 for _, c, _ in results if c == code) for code in sorted({c for _, c, _ in results})},
        "throughput_rps": round(len(results) / elapsed, 2),
        "latency_ms": {
            "p50": round(percentile(latencies, 0.50), 1),
            "p95": round(percentile(latencies, 0.95), 1),
            "p99": round(percentile(latencies, 0.99), 1),
            "max": round(max(latencies), 1),
        },
    }


def read_memory(server: LiveServer) -> dict:
    """Memory of each predictor and of the whole service: the server process and all its descendants."""
    status = server.status()
    predictors = []
    for predictor in status["pool"]["predictors"]:
        memory = memory_of(predictor["pid"])
        if memory is not None:
            predictors.append({"id": predictor["id"], "pid": predictor["pid"], **{k: mib(v) for k, v in memory.items()}})
    total = tree_memory(service_pids(server))
    return {
        "unit": "MiB",
        "predictors": predictors,
        "service": {"processes": total["processes"], "rss": mib(total["rss"]), "pss": mib(total["pss"])},
    }


def service_pids(server: LiveServer) -> set[int]:
    """Return the server process, Thespian's admin process and every actor, with their descendants."""
    pids = process_tree(server.process.pid) | server.actor_pids()
    # The admin process detaches from the server (its parent becomes init), and every actor
    # descends from it, so the service is the server's tree plus the admin's tree.
    admin = parent_pid(server.status()["tree"]["pid"])
    if admin is not None and admin != 1 and admin not in ancestors(os.getpid()):
        pids |= process_tree(admin)
    return pids


def summarise(predictors: int, runs: list[dict]) -> dict:
    """Return the median over runs of every reported number, with the runs themselves beside them."""

    def median(values):
        values = [value for value in values if value is not None]
        return round(statistics.median(values), 2) if values else None

    loads = []
    for position, concurrency in enumerate(load["concurrency"] for load in runs[0]["loads"]):
        per_run = [run["loads"][position] for run in runs]
        loads.append(
            {
                "concurrency": concurrency,
                "requests": sum(load["requests"] for load in per_run),
                "failed": sum(load["failed"] for load in per_run),
                "wrong": sum(load["wrong"] for load in per_run),
                "throughput_rps": median([load["throughput_rps"] for load in per_run]),
                "latency_ms": {
                    name: median([load["latency_ms"][name] for load in per_run]) for name in ("p50", "p95", "p99", "max")
                },
            }
        )
    predictor_rss = [p["rss"] for run in runs for p in run["memory"]["predictors"]]
    predictor_peak = [p["peak_rss"] for run in runs for p in run["memory"]["predictors"]]
    return {
        "predictors": predictors,
        "runs": len(runs),
        "ready_seconds": median([run["ready_seconds"] for run in runs]),
        "others_cpu_share_max": max(run["others_cpu_share"] for run in runs),
        "all_predictors_serving_seconds": median([run["all_predictors_serving_seconds"] for run in runs]),
        "loads": loads,
        "memory_mib": {
            "predictor_rss": median(predictor_rss),
            "predictor_peak_rss": median(predictor_peak),
            "service_rss": median([run["memory"]["service"]["rss"] for run in runs]),
            "service_pss": median([run["memory"]["service"]["pss"] for run in runs]),
        },
        "per_run": runs,
    }


if __name__ == "__main__":
    arguments = parse_arguments(get_args_parser())
    write_result(main(arguments), arguments.json_path)
