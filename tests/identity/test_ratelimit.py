"""Token buckets in memory and in the database."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from zhijin.identity.errors import RateLimited
from zhijin.identity.ratelimit import (
    Bucket,
    MemoryRateLimitStore,
    RateLimitStore,
    SqlRateLimitStore,
    check,
)

BUCKET = Bucket("t", capacity=3, refill_ms=1_000)


@pytest.fixture(params=["memory", "sql"])
def store(request: pytest.FixtureRequest, engine: Engine) -> RateLimitStore:
    return MemoryRateLimitStore() if request.param == "memory" else SqlRateLimitStore(engine)


def test_bucket_empties_and_refills(store: RateLimitStore) -> None:
    now = 10_000
    assert [store.take("k", BUCKET, now_ms=now) for _ in range(3)] == [0, 0, 0]
    wait = store.take("k", BUCKET, now_ms=now)
    assert 0 < wait <= 1_001
    assert store.take("other", BUCKET, now_ms=now) == 0  # keys are independent
    assert store.take("k", BUCKET, now_ms=now + 500) > 0
    assert store.take("k", BUCKET, now_ms=now + 1_000) == 0  # one token back after refill_ms
    assert store.take("k", BUCKET, now_ms=now + 1_000) > 0
    # Never more than capacity, however long the wait.
    later = now + 1_000_000
    assert [store.take("k", BUCKET, now_ms=later) for _ in range(4)][-1] > 0


def test_check_raises_with_retry_after(store: RateLimitStore) -> None:
    for _ in range(3):
        check(store, "ip", BUCKET, now_ms=0)
    with pytest.raises(RateLimited) as caught:
        check(store, "ip", BUCKET, now_ms=0)
    assert caught.value.http_status == 429 and caught.value.details["retry_after_ms"] > 0
