"""Fault-injection load run: predict requests flow while a predictor is SIGKILLed every few seconds.

It starts its own `pain serve` on free 127.0.0.1 ports with a generated collection, sends
concurrent predict requests for `--seconds`, kills a predictor (alternating) through the admin
endpoint every `--kill-every` seconds, and reports requests sent, succeeded (right painting
first), failed, latency percentiles and each predictor's restart time: from the kill until the
coordinator has a predictor with that id serving again.

    .venv/bin/python bench/fault_injection.py --seconds 60 --kill-every 5 --json result.json

With `--cache-dir`, the generated collection is built once and reused, as by predict_scale.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests"), str(REPO_ROOT / "bench")]

import cv2  # noqa: E402

from _system import add_output_options, busy_cpu_seconds, parse_arguments, process_cpu_seconds, write_result  # noqa: E402
from live_server import LiveServer, wait_until  # noqa: E402
from model.synthetic import photograph, render_painting  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load (default 60)")
    parser.add_argument("--kill-every", type=float, default=5.0, help="seconds between kills (default 5)")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads (default 4)")
    parser.add_argument("--predictors", type=int, default=2, help="predictor actors (default 2)")
    parser.add_argument("--paintings", type=int, default=100, help="generated paintings (default 100)")
    add_output_options(parser, cache="the built collection")
    return parser


def build_collection(root: Path, paintings: int) -> Path:
    """Write a dataset of generated paintings and import it with `pain import` into root/data."""
    return Path(build_collection_timed(root, paintings)["data_dir"])


def build_collection_timed(root: Path, paintings: int, keep_dataset: bool = True) -> dict:
    """Build root/data like `build_collection` and return how long each step took.

    The record has the data directory and the seconds spent rendering paintings and in `pain import`,
    which describes and indexes every painting, then stores the images and publishes the first
    model version. `import_describe_seconds` is the part until every painting was described and
    indexed, read from the import's progress line, which is polled every 0.5 s. The import
    process's peak RSS is in bytes. `import_others_cpu_share` is the share of the machine's CPU
    that other processes used during the import (see `_system.OtherLoad`). The import's log goes
    to root/import.log.
    """
    dataset = root / "dataset"
    (dataset / "paintings").mkdir(parents=True)
    started = time.monotonic()
    rows = ["image,title,artist,year,medium,description"]
    for seed in range(paintings):
        cv2.imwrite(str(dataset / "paintings" / f"{seed:05d}.png"), render_painting(seed)[..., ::-1])
        rows.append(f"{seed:05d}.png,Painting {seed},Generated,2026,pixels,Generated for the benchmark")
    (dataset / "paintings.csv").write_text("\n".join(rows) + "\n")
    render_seconds = time.monotonic() - started

    data = root / "data"
    started = time.monotonic()
    busy_before, own_before = busy_cpu_seconds(), process_cpu_seconds({os.getpid()})
    with (root / "import.log").open("wb") as import_log:
        process = subprocess.Popen(
            [sys.executable, "-m", "web.cli", "import", str(dataset), "--museum", "bench"],
            cwd=root,
            env={"PYTHONPATH": str(REPO_ROOT), "PAIN_STORAGE_DATA_DIR": str(data), "PATH": "/usr/bin:/bin"},
            stdout=subprocess.DEVNULL,
            stderr=import_log,
        )
        describe_seconds = None
        while True:
            # os.wait4 instead of process.wait(), because it also returns the child's peak RSS.
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if describe_seconds is None and _progress_complete(root / "import.log", paintings):
                describe_seconds = time.monotonic() - started
            time.sleep(0.5)
        process.returncode = os.waitstatus_to_exitcode(status)
    import_seconds = time.monotonic() - started
    ours = usage.ru_utime + usage.ru_stime + process_cpu_seconds({os.getpid()}) - own_before
    others_cpu_share = max(0.0, busy_cpu_seconds() - busy_before - ours) / (import_seconds * (os.cpu_count() or 1))
    if process.returncode != 0:
        raise RuntimeError(f"pain import failed with exit status {process.returncode}; log: {root / 'import.log'}")
    if not keep_dataset:
        shutil.rmtree(dataset)  # `pain import` copied every image into data/images
    return {
        "data_dir": str(data),
        "paintings": paintings,
        "render_seconds": round(render_seconds, 1),
        "import_seconds": round(import_seconds, 1),
        "import_seconds_per_painting": round(import_seconds / max(paintings, 1), 3),
        # None when the import ended before a poll saw its progress line complete.
        "import_describe_seconds": None if describe_seconds is None else round(describe_seconds, 1),
        "import_peak_rss_bytes": usage.ru_maxrss * 1024,  # Linux reports ru_maxrss in KiB
        "import_others_cpu_share": round(others_cpu_share, 3),
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
    }


def _progress_complete(log_path: Path, paintings: int) -> bool:
    """Return whether `pain import`'s progress line in the log has reached paintings/paintings."""
    with log_path.open("rb") as log:
        log.seek(max(0, log_path.stat().st_size - 200))
        return f" {paintings}/{paintings}".encode() in log.read()


def cached_collection(cache_dir: Path, paintings: int) -> tuple[Path, dict]:
    """Return the data directory of `paintings` generated paintings under cache_dir, built once.

    The build record of `build_collection_timed` is kept in cache_dir/paintings-N/build.json, which
    is written last, so a build that was interrupted is started again. Callers copy the data
    directory before serving it, because a running service writes to it.
    """
    entry = cache_dir / f"paintings-{paintings}"
    record_path = entry / "build.json"
    if record_path.is_file():
        return entry / "data", json.loads(record_path.read_text()) | {"cached": True}
    if entry.exists():
        shutil.rmtree(entry)
    entry.mkdir(parents=True)
    record = build_collection_timed(entry, paintings, keep_dataset=False)
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return entry / "data", record | {"cached": False}


def copy_collection(source: Path, root: Path) -> Path:
    """Copy a built data directory to root/data and return the copy."""
    return Path(shutil.copytree(source, root / "data", symlinks=True))


def query_photos(paintings: int) -> list[tuple[str, bytes]]:
    """Return (expected title, JPEG) for simulated photos of up to 20 of the generated paintings."""
    photos = []
    for seed in range(0, paintings, max(1, paintings // 20)):
        ok, encoded = cv2.imencode(".jpg", photograph(render_painting(seed), seed=seed + 7)[..., ::-1])
        photos.append((f"Painting {seed}", encoded.tobytes()))
    return photos


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main(args: argparse.Namespace) -> dict:
    root = Path(tempfile.mkdtemp(prefix="pain-bench-"))
    try:
        if args.cache_dir:
            source, _ = cached_collection(Path(args.cache_dir), args.paintings)
            data = copy_collection(source, root)
        else:
            data = build_collection(root, args.paintings)
        photos = query_photos(args.paintings)

        started = time.monotonic()
        with LiveServer(data, predictors=args.predictors) as server:
            startup_seconds = time.monotonic() - started
            return run_load(server, photos, args) | {"startup_seconds": round(startup_seconds, 2)}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_load(server: LiveServer, photos: list[tuple[str, bytes]], args: argparse.Namespace) -> dict:
    results: list[tuple[float, int, bool]] = []
    stop = threading.Event()

    def client(number: int) -> None:
        turn = number
        while not stop.is_set():
            title, photo = photos[turn % len(photos)]
            turn += 1
            sent = time.monotonic()
            code, body = server.call("POST", "/api/predict", data=photo, timeout=120)
            correct = code == 200 and bool(body) and body[0]["name"] == title
            results.append((time.monotonic() - sent, code, correct))

    restarts: list[dict] = []
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        for number in range(args.concurrency):
            pool.submit(client, number)
        load_started = time.monotonic()
        victim = 0
        while time.monotonic() - load_started < args.seconds:
            time.sleep(args.kill_every)
            if time.monotonic() - load_started >= args.seconds:
                break
            victim = victim % args.predictors + 1
            restarts.append(kill_and_time(server, f"predictor-{victim}"))
        stop.set()

    latencies = [seconds * 1000.0 for seconds, _, _ in results]
    succeeded = sum(1 for _, _, correct in results if correct)
    times = [r["restart_seconds"] for r in restarts if r["restart_seconds"] is not None]
    return {
        "seconds": args.seconds,
        "concurrency": args.concurrency,
        "predictors": args.predictors,
        "paintings": args.paintings,
        "requests_sent": len(results),
        "succeeded": succeeded,
        "failed": len(results) - succeeded,
        "statuses": {str(code): sum(1 for _, c, _ in results if c == code) for code in {c for _, c, _ in results}},
        "latency_ms": {
            "p50": round(percentile(latencies, 0.50), 1),
            "p99": round(percentile(latencies, 0.99), 1),
            "max": round(max(latencies), 1),
        },
        "kills": len(restarts),
        "restart_seconds": {
            "median": round(statistics.median(times), 2) if times else None,
            "max": round(max(times), 2) if times else None,
            "all": [round(t, 2) for t in times],
        },
    }


def kill_and_time(server: LiveServer, name: str) -> dict:
    """SIGKILL one predictor; return how long until a new process of it serves."""
    before = {p["id"]: p["pid"] for p in server.status()["pool"]["predictors"]}
    killed_at = time.monotonic()
    code, body = server.call("POST", "/api/admin/kill", {"actor": name, "mode": "sigkill"})
    if code != 202:
        return {"actor": name, "restart_seconds": None, "error": body}

    def back() -> bool:
        for predictor in server.status()["pool"]["predictors"]:
            if predictor["id"] == name and predictor["pid"] != before.get(name) and predictor["state"] in ("idle", "busy"):
                return True
        return False

    try:
        wait_until(back, timeout=60, interval=0.05)
        return {"actor": name, "restart_seconds": time.monotonic() - killed_at}
    except AssertionError:
        return {"actor": name, "restart_seconds": None, "error": "not back within 60 s"}


if __name__ == "__main__":
    arguments = parse_arguments(get_args_parser())
    write_result(main(arguments), arguments.json_path)
