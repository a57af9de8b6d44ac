"""Machine description, load averages, process memory from /proc and result output, shared by the benchmarks.

Not a benchmark itself: `pain bench` lists only files whose name does not start with "_".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path


def machine() -> dict:
    """Describe the machine a result was measured on: CPU model and count, memory, kernel, date."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kib = _meminfo()["MemTotal"]
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "memory_gib": round(memory_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def load_average() -> list[float]:
    """Return the 1, 5 and 15 minute load averages, as `uptime` prints them."""
    return [round(value, 2) for value in os.getloadavg()]


def busy_cpu_seconds() -> float:
    """CPU seconds all CPUs spent on anything but idle and I/O wait since boot, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already counted in user)
    busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]
    return busy / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pids: set[int]) -> float:
    """CPU seconds (user and system, all threads) the processes have used so far; ended ones count 0."""
    total = 0
    for pid in pids:
        try:
            stat = (Path("/proc") / str(pid) / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of proc(5)
    return total / os.sysconf("SC_CLK_TCK")


class OtherLoad:
    """Share of the machine's CPU used by processes outside `pids` between `start()` and `stop()`.

    0 means the benchmark had the machine to itself; 0.5 on 2 CPUs means others used one CPU.
    Processes of `pids` that end in between make their CPU time look like others'.
    """

    def __init__(self, pids: set[int]) -> None:
        self.pids = pids

    def start(self) -> "OtherLoad":
        self._started = (time.monotonic(), busy_cpu_seconds(), process_cpu_seconds(self.pids))
        return self

    def stop(self) -> float:
        elapsed = time.monotonic() - self._started[0]
        busy = busy_cpu_seconds() - self._started[1]
        ours = process_cpu_seconds(self.pids) - self._started[2]
        return round(max(0.0, busy - ours) / (elapsed * (os.cpu_count() or 1)), 3)


def available_memory_bytes() -> int:
    return _meminfo()["MemAvailable"] * 1024


def parent_pid(pid: int) -> int | None:
    """Return the parent process id, or None once the process has ended."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name in brackets may contain spaces, so the fields are read after its ")".
    return int(stat.rsplit(")", 1)[1].split()[1])


def ancestors(pid: int) -> set[int]:
    """Return the ids of every process above pid, up to and including init."""
    found = set()
    parent = parent_pid(pid)
    while parent and parent not in found:
        found.add(parent)
        parent = parent_pid(parent)
    return found


def process_tree(root_pid: int) -> set[int]:
    """Return root_pid and every live descendant of it, found through the parent ids in /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        parent = parent_pid(int(entry.name))
        if parent is None:
            continue  # the process ended while the table was read
        children.setdefault(parent, []).append(int(entry.name))
    found, stack = set(), [root_pid]
    while stack:
        pid = stack.pop()
        if pid in found:
            continue
        found.add(pid)
        stack.extend(children.get(pid, []))
    return found


def memory_of(pid: int) -> dict | None:
    """Return RSS, peak RSS (VmHWM) and PSS of a process in bytes, or None once it has ended.

    PSS divides pages shared between processes (forked copy-on-write pages, shared libraries) among
    them, so PSS sums over a process tree do not count shared pages twice, but RSS sums do.
    """
    try:
        status = (Path("/proc") / str(pid) / "status").read_text()
        rollup = (Path("/proc") / str(pid) / "smaps_rollup").read_text()
    except OSError:
        return None
    fields = _kib_fields(status)
    rollup_fields = _kib_fields(rollup)
    return {
        "rss": fields.get("VmRSS", 0) * 1024,
        "peak_rss": fields.get("VmHWM", 0) * 1024,
        "pss": rollup_fields.get("Pss", 0) * 1024,
    }


def tree_memory(pids: set[int]) -> dict:
    """Sum RSS and PSS over processes; processes that ended meanwhile are left out."""
    total = {"processes": 0, "rss": 0, "pss": 0}
    for pid in pids:
        memory = memory_of(pid)
        if memory is None or memory["rss"] == 0:
            continue  # ended meanwhile, or a zombie
        total["processes"] += 1
        total["rss"] += memory["rss"]
        total["pss"] += memory["pss"]
    return total


def mib(value: float | None) -> float | None:
    return None if value is None else round(value / 2**20, 1)


def stamp() -> str:
    return time.strftime("%H:%M:%S")


def progress(message: str) -> None:
    """Write a timestamped progress line to stderr, where it does not mix with the JSON result."""
    sys.stderr.write(f"[{stamp()}] {message}\n")
    sys.stderr.flush()


def add_output_options(parser: argparse.ArgumentParser, cache: str | None = None) -> None:
    """Add the options every benchmark shares: --json, and --cache-dir when `cache` names what is kept."""
    if cache is not None:
        parser.add_argument(
            "--cache-dir",
            help=f"keep {cache} here and reuse it in later calls (default: build in a temporary directory)",
        )
    parser.add_argument("--json", dest="json_path", help="write the result here as JSON")


def parse_arguments(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse a benchmark's arguments and send the service's log lines to stderr.

    structlog writes to stdout until it is configured, and stdout is for the JSON result only.
    """
    from pain_actors.config import ConfigError, load_config
    from pain_actors.logging_setup import configure_logging

    arguments = parser.parse_args()
    try:
        config = load_config()
    except ConfigError as exc:
        raise SystemExit(f"invalid configuration: {exc}") from None
    configure_logging(config.logging.format, config.logging.level)
    return arguments


def write_result(result: dict, json_path: str | None) -> None:
    """Print a benchmark's result as JSON, and also write it to `json_path` when one is given."""
    text = json.dumps(result, indent=2)
    sys.stdout.write(text + "\n")
    if json_path:
        Path(json_path).write_text(text + "\n", encoding="utf-8")


def _meminfo() -> dict[str, int]:
    return _kib_fields(Path("/proc/meminfo").read_text())


def _kib_fields(text: str) -> dict[str, int]:
    """Parse `Name:   1234 kB` lines into {name: kibibytes}."""
    fields = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB":
            fields[name.strip()] = int(parts[0])
    return fields
