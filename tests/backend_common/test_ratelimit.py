"""Token buckets: a burst, then `rate` tokens a second; the key unused longest goes first."""

from backend_common.ratelimit import TokenBuckets


def test_burst_then_refill_at_rate():
    buckets = TokenBuckets(rate=2.0, burst=3)

    taken = [buckets.take("k", now=100.0) for _ in range(4)]

    assert [d.allowed for d in taken] == [True, True, True, False]
    assert taken[3].retry_after == 1
    assert (taken[2].remaining, taken[2].reset) == (0, 2)
    assert buckets.take("k", now=100.5).allowed
    assert not buckets.take("k", now=100.5).allowed


def test_keys_over_the_bound_forget_the_one_unused_longest():
    buckets = TokenBuckets(rate=1.0, burst=1, max_keys=2)
    buckets.take("a", now=0.0)
    buckets.take("b", now=0.0)
    buckets.take("a", now=0.0)  # "a" used again: "b" is now the oldest

    buckets.take("c", now=0.0)

    assert not buckets.take("a", now=0.0).allowed  # still remembered, still empty
    assert buckets.take("b", now=0.0).allowed  # forgotten: a full bucket again
