"""Limits on failed dashboard logins, against password guessing.

Failures are counted in a sliding window twice: per client address, and per museum id. Either
count at the limit blocks further logins for that address or museum until its oldest failure in
the window has aged out. A successful login clears both counts.

The museum count stops guessing spread over many addresses. Its cost: anyone with a museum's id can
keep its manager out for one window at a time. The login page then shows the manager how long to wait.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

# Keys tracked at most, so a flood of made-up museum ids or addresses cannot grow memory without
# bound. The least recently failed keys are forgotten first.
MAX_KEYS = 10_000


class LoginThrottle:
    """Failed-login counts per key, and the wait before a blocked key may try again."""

    def __init__(self, max_failures: int, window_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, *keys: str) -> float:
        """Return the seconds until a login may be tried for these keys; 0 when it may now."""
        if self.max_failures <= 0:
            return 0.0
        now = self._clock()
        wait = 0.0
        for key in keys:
            failures = self._recent(key, now)
            if len(failures) >= self.max_failures:
                wait = max(wait, failures[-self.max_failures] + self.window_seconds - now)
        return wait

    def failed(self, *keys: str) -> None:
        now = self._clock()
        for key in keys:
            failures = self._recent(key, now)
            failures.append(now)
            self._failures[key] = failures
            self._failures.move_to_end(key)
        while len(self._failures) > MAX_KEYS:
            self._failures.popitem(last=False)

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.get(key, deque())
        while failures and failures[0] <= now - self.window_seconds:
            failures.popleft()
        if not failures:
            self._failures.pop(key, None)
        return failures
