"""Fault-injection load run: predict requests flow while a predictor is SIGKILLed every few seconds.

It starts its own `pain serve` on free 127.0.0.1 ports with a generated collection, sends
concurrent predict requests for `--seconds`, kills a predictor (alternating) through the admin
endpoint every `--kill-every` seconds, and reports requests sent, succeeded (right painting
first), failed, latency percentiles and each predictor's restart time: from the kill until the
coordinator has a predictor with that id serving again.

    .venv/bin/python bench/fault_injection.py --seconds 60 --kill-every 5 --json result.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

import cv2  # noqa: E402

from live_server import LiveServer, wait_until  # noqa: E402
from model.synthetic import photograph, render_painting  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load (default 60)")
    parser.add_argument("--kill-every", type=float, default=5.0, help="seconds between kills (default 5)")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads (default 4)")
    parser.add_argument("--predictors", type=int, default=2, help="predictor actors (default 2)")
    parser.add_argument("--paintings", type=int, default=100, help="generated paintings (default 100)")
    parser.add_argument("--json", dest="json_path", help="write the result here as JSON")
    return parser


def build_collection(root: Path, paintings: int) -> Path:
    """Write a dataset of generated paintings and import it with `pain import` into root/data."""
    import subprocess

    dataset = root / "dataset"
    (dataset / "paintings").mkdir(parents=True)
    rows = ["image,title,artist,year,medium,description"]
    for seed in range(paintings):
        cv2.imwrite(str(dataset / "paintings" / f"{seed:05d}.png"), render_painting(seed)[..., ::-1])
        rows.append(f"{seed:05d}.png,Painting {seed},Generated,2026,pixels,Generated for the benchmark")
    (dataset / "paintings.csv").write_text("\n".join(rows) + "\n")
    data = root / "data"
    subprocess.run(
        [sys.executable, "-m", "web.cli", "import", str(dataset), "--museum", "bench"],
        check=True,
        cwd=root,
        env={"PYTHONPATH": str(REPO_ROOT), "PAIN_STORAGE_DATA_DIR": str(data), "PATH": "/usr/bin:/bin"},
        stderr=subprocess.DEVNULL,
    )
    return data


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
    arguments = get_args_parser().parse_args()
    result = main(arguments)
    text = json.dumps(result, indent=2)
    sys.stdout.write(text + "\n")
    if arguments.json_path:
        Path(arguments.json_path).write_text(text + "\n")
