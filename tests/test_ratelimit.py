"""Token buckets on an injected clock: refill, Retry-After, headers, and memory that stays flat."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from js2mail.clock import FakeClock
from js2mail.ratelimit import PRUNE_AT, TokenBuckets


def test_burst_then_refill_at_the_rate() -> None:
    clock = FakeClock(1000.0)
    buckets = TokenBuckets(rate=2, burst=5, clock=clock)
    assert [buckets.take("app").allowed for _ in range(6)] == [True] * 5 + [False]
    refused = buckets.take("app")
    assert refused.retry_after == 1 and refused.remaining == 0
    clock.advance(0.5)  # one token back at 2 per second
    assert buckets.take("app").allowed and not buckets.take("app").allowed
    assert buckets.take("other").allowed  # buckets are per key
    assert buckets.policy_header == '"default";q=5;w=3'


@given(gaps=st.lists(st.floats(min_value=0, max_value=3), min_size=1, max_size=60))
@settings(max_examples=100, deadline=None)
def test_never_more_than_burst_plus_rate_times_elapsed(gaps: list[float]) -> None:
    clock = FakeClock(0.0)
    buckets = TokenBuckets(rate=3, burst=4, clock=clock)
    allowed = 0
    for gap in gaps:
        clock.advance(gap)
        allowed += buckets.take("k").allowed
    assert allowed <= 4 + 3 * sum(gaps) + 1e-6


def test_many_keys_are_pruned_without_changing_any_answer() -> None:
    """Per-IP form limits see unbounded keys: buckets full again are forgotten, which is lossless,
    and the scan is amortized (the next one waits until the map has doubled)."""
    clock = FakeClock(0.0)
    buckets = TokenBuckets(rate=1, burst=2, clock=clock)
    buckets.take("busy")
    assert buckets.take("busy").remaining == 0
    for i in range(2 * PRUNE_AT):  # all active at once: nothing to forget, nothing forgotten
        buckets.take(f"old{i}")
    assert len(buckets._buckets) == 2 * PRUNE_AT + 1
    assert not buckets.take("busy").allowed  # still remembered as empty
    clock.advance(buckets.refill_seconds + 1)
    for i in range(2 * PRUNE_AT + 2):
        buckets.take(f"new{i}")
    assert not any(k.startswith("old") for k in buckets._buckets)  # idle and full again: dropped
    assert len(buckets._buckets) < 4 * PRUNE_AT
    assert buckets.take("busy").remaining == 1  # a forgotten bucket answers like a full one
