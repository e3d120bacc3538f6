"""Durable payment counters: what each user moved, to whom, when; the step-up policy's
cumulative facts and risk control's velocity features read them.

One row per payment put to the policy (`identity_payment_movements`): user, request key
(`transfer:<id>`, `fx:<id>`), payee (the credit account), currency, exponent, amount, time.
The reads are sums over a sliding window (`amount_moved`), per payee or overall, one per
currency; converting them is the policy's business (`ReferenceCurrency.total`).

Reserving is race-safe: `reserve` takes the user's lock row first (a write, so it is a row
lock on PostgreSQL and the database's write lock on SQLite), reads the window, lets the caller
judge it, and records the movements only if the judge admits them, all in one transaction.  Two
concurrent payments of one user are judged one after the other, the second seeing the first.
The judge must be pure and quick: the lock is held while it runs.

A retry counts once: the window read leaves out rows of this request's keys and adds the
request's own movements, and a movement already recorded (same key, payee, currency and amount)
is not recorded again.  `release` removes the rows a reservation recorded, for a payment the
ledger then definitely refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from zhijin.chain.errors import InvariantViolation, invariant
from zhijin.identity import limits
from zhijin.identity.stepup import MovedAmount
from zhijin.identity.tables import payment_counter_locks, payment_movements
from zhijin.platform.errors import InvalidInput

__all__ = ["Movement", "PaymentCounters", "Reservation", "WindowTotals"]

T = TypeVar("T")
# SUM of 64-bit amounts may pass 2^63 (SQLite then raises): sum the high and low halves apart.
_HALF = 2**31


@dataclass(frozen=True, slots=True)
class Movement:
    """One payment of a request: `key` names the request item (a retry has the same key)."""

    key: str
    payee: str
    currency: str
    exponent: int
    amount_minor: int


@dataclass(frozen=True, slots=True)
class WindowTotals:
    """The window's sums, this request included (once): overall and per payee of the request."""

    overall: tuple[MovedAmount, ...]
    by_payee: Mapping[str, tuple[MovedAmount, ...]]


@dataclass(frozen=True, slots=True)
class Reservation:
    """Whether the judge admitted the movements, and the rows this `reserve` recorded, by
    movement key (a retry's existing rows are not its own: releasing it leaves them)."""

    user_id: str
    admitted: bool
    rows: Mapping[str, tuple[int, ...]]


def _merge(*parts: Sequence[MovedAmount]) -> tuple[MovedAmount, ...]:
    sums: dict[tuple[str, int], int] = {}
    for part in parts:
        for moved in part:
            key = (moved.currency, moved.exponent)
            sums[key] = sums.get(key, 0) + moved.amount_minor
    return tuple(MovedAmount(c, e, a) for (c, e), a in sorted(sums.items()))


def _moved(movements: Sequence[Movement]) -> tuple[MovedAmount, ...]:
    return _merge([MovedAmount(m.currency, m.exponent, m.amount_minor) for m in movements])


def _check(movements: Sequence[Movement]) -> None:
    if len(movements) > limits.PAYMENT_COUNTER_MOVEMENTS_MAX:
        raise InvalidInput(
            "too_many_movements", f"at most {limits.PAYMENT_COUNTER_MOVEMENTS_MAX} at once"
        )
    for m in movements:
        invariant(
            0 < m.amount_minor < 2**63
            and 0 < len(m.key) <= limits.PAYMENT_COUNTER_KEY_CHARS_MAX
            and 0 < len(m.payee) <= limits.PAYMENT_COUNTER_PAYEE_CHARS_MAX,
            f"a movement is a positive 64-bit amount with a bounded key and payee: {m}",
        )


class PaymentCounters:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- reads (the interface risk control builds on) -----------------------------------------
    def amount_moved(
        self,
        *,
        user_id: str,
        now_ms: int,
        payee: str | None = None,
        window_ms: int = limits.STEP_UP_WINDOW_MS,
    ) -> tuple[MovedAmount, ...]:
        """What `user_id` moved in (now_ms - window_ms, now_ms], to `payee` or to anyone: one
        sum per currency, in its minor units.  Windows up to the retention (31 days)."""
        self._check_window(window_ms)
        with self.engine.connect() as conn:
            if payee is None:
                return self._overall(conn, user_id, now_ms - window_ms, ())
            return self._by_payee(conn, user_id, now_ms - window_ms, (payee,), ()).get(payee, ())

    def amounts_moved_to(
        self,
        *,
        user_id: str,
        payees: Sequence[str],
        now_ms: int,
        window_ms: int = limits.STEP_UP_WINDOW_MS,
    ) -> dict[str, tuple[MovedAmount, ...]]:
        """`amount_moved` for several payees in one query (each payee present, maybe empty)."""
        self._check_window(window_ms)
        self._check_payees(payees)
        with self.engine.connect() as conn:
            found = self._by_payee(conn, user_id, now_ms - window_ms, tuple(payees), ())
        return {payee: found.get(payee, ()) for payee in payees}

    # -- reservations -------------------------------------------------------------------------
    def reserve(
        self,
        *,
        user_id: str,
        movements: Sequence[Movement],
        payees: Sequence[str],
        now_ms: int,
        judge: Callable[[WindowTotals], tuple[T, bool]],
        window_ms: int = limits.STEP_UP_WINDOW_MS,
    ) -> tuple[T, Reservation]:
        """Judge the window with this request in it, under the user's lock; record the
        movements when the judge says so (its second answer).  `payees`: those to sum apart
        (the request's).  Returns the judge's first answer and what was recorded."""
        _check(movements)
        self._check_window(window_ms)
        self._check_payees(payees)
        try:
            return self._reserve(user_id, movements, payees, now_ms, judge, window_ms)
        except IntegrityError:
            # The user's first lock row raced another request's: it exists now.
            return self._reserve(user_id, movements, payees, now_ms, judge, window_ms)

    def release(self, reservation: Reservation, keys: Sequence[str] | None = None) -> int:
        """Remove the rows `reservation` recorded (for `keys`, or all); the number removed."""
        wanted = (
            reservation.rows if keys is None else {k: reservation.rows.get(k, ()) for k in keys}
        )
        seqs = [seq for rows in wanted.values() for seq in rows]
        if not seqs:
            return 0
        with self.engine.begin() as conn:
            result = conn.execute(
                delete(payment_movements).where(
                    (payment_movements.c.user_id == reservation.user_id)
                    & payment_movements.c.seq.in_(seqs)
                )
            )
        return int(result.rowcount)

    # -- internals ----------------------------------------------------------------------------
    def _reserve(
        self,
        user_id: str,
        movements: Sequence[Movement],
        payees: Sequence[str],
        now_ms: int,
        judge: Callable[[WindowTotals], tuple[T, bool]],
        window_ms: int,
    ) -> tuple[T, Reservation]:
        keys = tuple(sorted({m.key for m in movements}))
        since = now_ms - window_ms
        with self.engine.begin() as conn:
            _lock(conn, user_id, now_ms)  # first: everything below is read under the lock
            own_payees = {p: [m for m in movements if m.payee == p] for p in payees}
            stored = self._by_payee(conn, user_id, since, tuple(payees), keys)
            totals = WindowTotals(
                overall=_merge(self._overall(conn, user_id, since, keys), _moved(movements)),
                by_payee={p: _merge(stored.get(p, ()), _moved(own_payees[p])) for p in payees},
            )
            verdict, admitted = judge(totals)
            rows: dict[str, tuple[int, ...]] = {}
            if admitted:
                rows = _record(conn, user_id, movements, now_ms)
                conn.execute(
                    delete(payment_movements).where(
                        (payment_movements.c.user_id == user_id)
                        & (
                            payment_movements.c.at_ms
                            <= now_ms - limits.PAYMENT_COUNTER_RETENTION_MS
                        )
                    )
                )
        return verdict, Reservation(user_id=user_id, admitted=admitted, rows=rows)

    @staticmethod
    def _check_window(window_ms: int) -> None:
        if type(window_ms) is not int or not 0 < window_ms <= limits.PAYMENT_COUNTER_RETENTION_MS:
            raise InvalidInput(
                "window_invalid",
                f"a window is 1 ms to {limits.PAYMENT_COUNTER_RETENTION_MS} ms (the retention)",
            )

    @staticmethod
    def _check_payees(payees: Sequence[str]) -> None:
        if len(payees) > limits.PAYMENT_COUNTER_PAYEES_MAX:
            raise InvalidInput(
                "too_many_payees", f"at most {limits.PAYMENT_COUNTER_PAYEES_MAX} payees at once"
            )

    @staticmethod
    def _sums(conn: Connection, where: Any, *group: Any) -> list[Any]:
        amount = payment_movements.c.amount_minor
        query = (
            select(
                *group,
                payment_movements.c.currency,
                payment_movements.c.exponent,
                func.sum(amount // _HALF).label("high"),
                func.sum(amount % _HALF).label("low"),
            )
            .where(where)
            .group_by(*group, payment_movements.c.currency, payment_movements.c.exponent)
        )
        return list(conn.execute(query))

    def _window(self, user_id: str, since_ms: int, excluded: tuple[str, ...]) -> Any:
        where = (payment_movements.c.user_id == user_id) & (payment_movements.c.at_ms > since_ms)
        if excluded:
            where = where & payment_movements.c.request_key.not_in(excluded)
        return where

    def _overall(
        self, conn: Connection, user_id: str, since_ms: int, excluded: tuple[str, ...]
    ) -> tuple[MovedAmount, ...]:
        rows = self._sums(conn, self._window(user_id, since_ms, excluded))
        return tuple(
            MovedAmount(r.currency, r.exponent, int(r.high) * _HALF + int(r.low)) for r in rows
        )

    def _by_payee(
        self,
        conn: Connection,
        user_id: str,
        since_ms: int,
        payees: tuple[str, ...],
        excluded: tuple[str, ...],
    ) -> dict[str, tuple[MovedAmount, ...]]:
        if not payees:
            return {}
        where = self._window(user_id, since_ms, excluded) & payment_movements.c.payee.in_(payees)
        found: dict[str, list[MovedAmount]] = {}
        for r in self._sums(conn, where, payment_movements.c.payee):
            moved = MovedAmount(r.currency, r.exponent, int(r.high) * _HALF + int(r.low))
            found.setdefault(r.payee, []).append(moved)
        return {payee: tuple(moved) for payee, moved in found.items()}


def _lock(conn: Connection, user_id: str, now_ms: int) -> None:
    """Take the user's lock: an UPDATE of their lock row (inserted the first time; two first
    inserts racing raise IntegrityError, and the caller tries once more)."""
    bumped = conn.execute(
        update(payment_counter_locks)
        .where(payment_counter_locks.c.user_id == user_id)
        .values(reservations=payment_counter_locks.c.reservations + 1, updated_ms=now_ms)
    )
    if bumped.rowcount == 0:
        conn.execute(
            insert(payment_counter_locks).values(user_id=user_id, reservations=1, updated_ms=now_ms)
        )


def _record(
    conn: Connection, user_id: str, movements: Sequence[Movement], now_ms: int
) -> dict[str, tuple[int, ...]]:
    """Insert the movements not recorded yet (a retry's are); their seqs by key."""
    table = payment_movements.c
    keys = sorted({m.key for m in movements})
    existing = {
        (row.request_key, row.payee, row.currency, row.amount_minor)
        for row in conn.execute(
            select(table.request_key, table.payee, table.currency, table.amount_minor).where(
                (table.user_id == user_id) & table.request_key.in_(keys)
            )
        )
    }
    rows: dict[str, list[int]] = {}
    for m in movements:
        ident = (m.key, m.payee, m.currency, m.amount_minor)
        if ident in existing:
            continue
        existing.add(ident)  # the same movement twice in one request is one row
        result = conn.execute(
            insert(payment_movements).values(
                user_id=user_id,
                request_key=m.key,
                payee=m.payee,
                currency=m.currency,
                exponent=m.exponent,
                amount_minor=m.amount_minor,
                at_ms=now_ms,
            )
        )
        primary_key = result.inserted_primary_key
        if primary_key is None:  # only for a table without a primary key: never this one
            raise InvariantViolation("a recorded movement has no seq")
        rows.setdefault(m.key, []).append(int(primary_key[0]))
    return {key: tuple(seqs) for key, seqs in rows.items()}
