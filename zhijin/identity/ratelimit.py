"""Token-bucket rate limits for authentication endpoints, in the database or in memory.

A bucket holds at most `capacity` tokens and gains one every `refill_ms`; a request takes one
or is refused with how long to wait.  Counts are kept in thousandths of a token so the refill
arithmetic stays in integers.  The SQL store makes limits hold across processes and restarts;
the memory store is for tests and single-process tools.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from zhijin.identity import limits
from zhijin.identity.errors import RateLimited
from zhijin.identity.tables import rate_buckets

__all__ = [
    "AUTH_PER_IP",
    "LOGIN_PER_ACCOUNT",
    "LOGIN_PER_IP",
    "MFA_PER_USER",
    "REGISTER_PER_IP",
    "Bucket",
    "MemoryRateLimitStore",
    "RateLimitStore",
    "SqlRateLimitStore",
    "check",
]

_MILLI = 1000


@dataclass(frozen=True, slots=True)
class Bucket:
    """A named limit: e.g. Bucket("login-ip", 30, 2_000) = 30 at once, then one per 2 s."""

    name: str
    capacity: int
    refill_ms: int


def _refilled(tokens_milli: int, updated_ms: int, now_ms: int, bucket: Bucket) -> int:
    elapsed_ms = max(0, now_ms - updated_ms)
    return min(bucket.capacity * _MILLI, tokens_milli + elapsed_ms * _MILLI // bucket.refill_ms)


def _wait_ms(tokens_milli: int, bucket: Bucket) -> int:
    return (_MILLI - tokens_milli) * bucket.refill_ms // _MILLI + 1


class RateLimitStore(Protocol):
    def take(self, key: str, bucket: Bucket, *, now_ms: int) -> int:
        """Take one token: 0 when allowed, else the milliseconds until one is available."""
        ...


class MemoryRateLimitStore:
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, bucket: Bucket, *, now_ms: int) -> int:
        with self._lock:
            tokens, updated = self._buckets.get(key, (bucket.capacity * _MILLI, now_ms))
            tokens = _refilled(tokens, updated, now_ms, bucket)
            if tokens < _MILLI:
                self._buckets[key] = (tokens, now_ms)
                return _wait_ms(tokens, bucket)
            self._buckets[key] = (tokens - _MILLI, now_ms)
            return 0


class SqlRateLimitStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def take(self, key: str, bucket: Bucket, *, now_ms: int) -> int:
        key = key[: limits.RATE_BUCKET_KEY_CHARS_MAX]
        try:
            return self._take(key, bucket, now_ms)
        except IntegrityError:
            # Two first requests for one key raced to insert its row: the row exists now.
            return self._take(key, bucket, now_ms)

    def _take(self, key: str, bucket: Bucket, now_ms: int) -> int:
        with self.engine.begin() as conn:
            # FOR UPDATE serialises concurrent takes on PostgreSQL; SQLite has one writer anyway.
            row = conn.execute(
                select(rate_buckets.c.tokens_milli, rate_buckets.c.updated_ms)
                .where(rate_buckets.c.key == key)
                .with_for_update()
            ).one_or_none()
            if row is None:
                tokens = bucket.capacity * _MILLI
                conn.execute(
                    insert(rate_buckets).values(key=key, tokens_milli=tokens, updated_ms=now_ms)
                )
            else:
                tokens = _refilled(row.tokens_milli, row.updated_ms, now_ms, bucket)
            allowed = tokens >= _MILLI
            remaining = tokens - _MILLI if allowed else tokens
            conn.execute(
                update(rate_buckets)
                .where(rate_buckets.c.key == key)
                .values(tokens_milli=remaining, updated_ms=now_ms)
            )
        return 0 if allowed else _wait_ms(tokens, bucket)


def check(store: RateLimitStore, key: str, bucket: Bucket, *, now_ms: int) -> None:
    """Take a token or raise RateLimited with `retry_after_ms`."""
    wait_ms = store.take(f"{bucket.name}:{key}", bucket, now_ms=now_ms)
    if wait_ms:
        raise RateLimited(message="too many attempts; wait and try again", retry_after_ms=wait_ms)


LOGIN_PER_IP = Bucket(
    "login-ip", limits.RATE_LOGIN_PER_IP_CAPACITY, limits.RATE_LOGIN_PER_IP_REFILL_MS
)
LOGIN_PER_ACCOUNT = Bucket(
    "login-account", limits.RATE_LOGIN_PER_ACCOUNT_CAPACITY, limits.RATE_LOGIN_PER_ACCOUNT_REFILL_MS
)
REGISTER_PER_IP = Bucket(
    "register-ip", limits.RATE_REGISTER_PER_IP_CAPACITY, limits.RATE_REGISTER_PER_IP_REFILL_MS
)
MFA_PER_USER = Bucket(
    "mfa-user", limits.RATE_MFA_PER_USER_CAPACITY, limits.RATE_MFA_PER_USER_REFILL_MS
)
AUTH_PER_IP = Bucket("auth-ip", limits.RATE_AUTH_PER_IP_CAPACITY, limits.RATE_AUTH_PER_IP_REFILL_MS)
