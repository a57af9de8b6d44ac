"""Restart strategy scope and restart intensity, kept free of Thespian so they can be
tested without an actor system."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

from supervisors.spec import Strategy


def restart_scope(strategy: Strategy, child_ids: Sequence[str], failed_id: str) -> list[str]:
    """Return the ids, in start order, of the children that `strategy` restarts when
    `failed_id` exits. Raise ValueError if `failed_id` is not in `child_ids`."""
    index = list(child_ids).index(failed_id)
    if strategy is Strategy.ONE_FOR_ONE:
        return [failed_id]
    if strategy is Strategy.ONE_FOR_ALL:
        return list(child_ids)
    if strategy is Strategy.REST_FOR_ONE:
        return list(child_ids[index:])
    raise ValueError(f"unknown restart strategy {strategy!r}")


class RestartIntensity:
    """Sliding window of restart times that decides when a supervisor must give up.

    As in OTP, the limit is exceeded when more than `max_restarts` restarts fall
    within the last `max_seconds` seconds.
    """

    def __init__(
        self,
        max_restarts: int,
        max_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
        self._clock = clock
        self._restart_times: deque[float] = deque()

    def record_restart(self) -> bool:
        """Record one restart now; return False if it exceeds the restart intensity."""
        now = self._clock()
        self._restart_times.append(now)
        while self._restart_times and now - self._restart_times[0] > self.max_seconds:
            self._restart_times.popleft()
        return len(self._restart_times) <= self.max_restarts

    @property
    def recent_restarts(self) -> int:
        """Restarts recorded within the last `max_seconds` seconds."""
        now = self._clock()
        return sum(1 for moment in self._restart_times if now - moment <= self.max_seconds)
