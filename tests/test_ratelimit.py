"""Token buckets with an injected clock: burst, steady rate, per-key isolation, memory bound."""

from __future__ import annotations

import pytest

from svc.core.ratelimit import TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_steady_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(60, 3, clock=clock)  # one a second, three at once
    assert [buckets.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("k") == pytest.approx(1.0)
    clock.now += 0.25
    assert buckets.take("k") == pytest.approx(0.75)  # a refused request costs nothing
    clock.now += 0.75
    assert buckets.take("k") == 0.0
    assert buckets.take("k") == pytest.approx(1.0)


def test_tokens_never_exceed_the_burst() -> None:
    clock = Clock()
    buckets = TokenBuckets(6, 2, clock=clock)  # one every 10 s
    clock.now += 3600
    assert [buckets.take("k") for _ in range(2)] == [0.0, 0.0]
    assert buckets.take("k") == pytest.approx(10.0)


def test_keys_are_independent() -> None:
    clock = Clock()
    buckets = TokenBuckets(60, 1, clock=clock)
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    assert buckets.take("b") == 0.0


def test_a_clock_going_backwards_adds_no_tokens() -> None:
    clock = Clock()
    buckets = TokenBuckets(60, 1, clock=clock)
    assert buckets.take("k") == 0.0
    clock.now -= 100
    assert buckets.take("k") == pytest.approx(1.0)


def test_memory_is_bounded_least_recently_used_out() -> None:
    clock = Clock()
    buckets = TokenBuckets(60, 1, clock=clock, max_keys=3)
    for key in ("a", "b", "c", "d"):
        buckets.take(key)
    assert len(buckets) == 3
    assert buckets.take("b") > 0  # still remembered
    assert buckets.take("a") == 0.0  # forgotten: starts full again


def test_rejects_a_rate_that_admits_nothing() -> None:
    with pytest.raises(ValueError):
        TokenBuckets(0, 1)
    with pytest.raises(ValueError):
        TokenBuckets(60, 0)
