"""Actors and messages used by the supervisor tests.

Under multiprocTCPBase the supervisor imports these classes by their import path in
forked processes, so they live in a module rather than in a test file.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thespian.actors import ActorAddress, ActorTypeDispatcher

from supervisors import SupervisedActor


@dataclass
class WhoAmI:
    """Request an `Identity` reply."""


@dataclass
class Identity:
    child_id: str
    pid: int
    ppid: int
    started_at: float  # time.monotonic() at the end of init, comparable across processes


@dataclass
class Crash:
    """Make the worker's process exit with status 1 without telling its supervisor."""


@dataclass
class StopNormally:
    """Make the worker stop itself through SupervisedActor.stop(reason)."""

    reason: str = "normal"


class Worker(SupervisedActor):
    """Test worker configured through its start_args.

    start_args keys, all optional:
    - "event_log": file that gets a "start <id>" or "stop <id>" line per start and stop;
    - "start_counter" and "fail_first_starts": init raises while the count of starts
      stored in the counter file is at most fail_first_starts;
    - "always_fail": init always raises;
    - "hang_on_exit": terminate() sleeps, so only SIGKILL stops the process.
    """

    def init(self, start_args: dict[str, Any]) -> None:
        self.start_args = start_args
        if start_args.get("always_fail"):
            raise RuntimeError("worker configured to fail in init")

        fail_first_starts = start_args.get("fail_first_starts", 0)
        if fail_first_starts:
            counter = Path(start_args["start_counter"])
            count = int(counter.read_text()) + 1 if counter.exists() else 1
            counter.write_text(str(count))
            if count <= fail_first_starts:
                raise RuntimeError(f"worker configured to fail start {count} of {fail_first_starts}")

        self.started_at = time.monotonic()
        self._record_event("start")

    def terminate(self) -> None:
        self._record_event("stop")
        if getattr(self, "start_args", {}).get("hang_on_exit"):
            time.sleep(60)

    def receiveMsg_WhoAmI(self, message: WhoAmI, sender: ActorAddress) -> None:
        assert self.child_id is not None
        self.send(sender, Identity(self.child_id, os.getpid(), os.getppid(), self.started_at))

    def receiveMsg_Crash(self, message: Crash, sender: ActorAddress) -> None:
        os._exit(1)

    def receiveMsg_StopNormally(self, message: StopNormally, sender: ActorAddress) -> None:
        self.stop(message.reason)

    def _record_event(self, action: str) -> None:
        path = getattr(self, "start_args", {}).get("event_log")
        if path:
            # Append mode uses O_APPEND and each line goes out in one write(), so lines
            # from different processes do not interleave.
            with open(path, "a", encoding="utf-8") as log_file:
                log_file.write(f"{action} {self.child_id}\n")


class Silent(ActorTypeDispatcher):
    """Actor that never replies to ChildInit, to exercise the start timeout."""
