"""The failed-login limit, on a clock the test moves."""

from web.login_throttle import MAX_KEYS, LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limit_blocks_until_oldest_failure_ages_out():
    clock = Clock()
    throttle = LoginThrottle(max_failures=3, window_seconds=60.0, clock=clock)
    for _ in range(2):
        throttle.failed("address:a", "museum:m")
        clock.now += 10.0
    assert throttle.retry_after("address:a", "museum:m") == 0.0

    throttle.failed("address:a", "museum:m")  # the third, at 1020
    assert throttle.retry_after("address:a", "museum:m") == 40.0
    clock.now += 30.0
    assert throttle.retry_after("address:a") == 10.0

    clock.now += 10.0  # the first failure (at 1000) leaves the window
    assert throttle.retry_after("address:a", "museum:m") == 0.0


def test_either_key_blocks():
    clock = Clock()
    throttle = LoginThrottle(max_failures=2, window_seconds=60.0, clock=clock)
    throttle.failed("address:a", "museum:m")
    throttle.failed("address:b", "museum:m")

    # A new address still may not try museum m, and address a may try other museums.
    assert throttle.retry_after("address:c", "museum:m") == 60.0
    assert throttle.retry_after("address:a", "museum:n") == 0.0


def test_success_clears_only_given_keys():
    clock = Clock()
    throttle = LoginThrottle(max_failures=2, window_seconds=60.0, clock=clock)
    throttle.failed("address:a", "museum:m")
    throttle.failed("address:a", "museum:m")

    throttle.succeeded("museum:m")
    assert throttle.retry_after("museum:m") == 0.0
    assert throttle.retry_after("address:a") == 60.0


def test_zero_attempts_disables_the_limit():
    throttle = LoginThrottle(max_failures=0, window_seconds=60.0)
    for _ in range(10):
        throttle.failed("address:a")
    assert throttle.retry_after("address:a") == 0.0


def test_tracked_keys_are_bounded():
    clock = Clock()
    throttle = LoginThrottle(max_failures=1, window_seconds=60.0, clock=clock)
    for number in range(MAX_KEYS + 5):
        throttle.failed(f"museum:{number}")

    # The oldest keys were forgotten first; the newest are still blocked.
    assert throttle.retry_after("museum:0") == 0.0
    assert throttle.retry_after(f"museum:{MAX_KEYS + 4}") == 60.0
