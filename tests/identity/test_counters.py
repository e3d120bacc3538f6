"""Payment counters: sliding-window sums per payee and overall, retries counted once, releases,
durability across a new object over the same database, and concurrent reservations judged one
after the other (SQLite file and PostgreSQL)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine

from zhijin.chain.store import make_engine
from zhijin.identity import limits
from zhijin.identity.counters import Movement, PaymentCounters, WindowTotals
from zhijin.identity.stepup import MovedAmount
from zhijin.identity.tables import create_tables
from zhijin.platform.errors import InvalidInput

NOW = 1_750_000_000_000
HOUR = 3_600_000


def cny(key: str, amount: int, payee: str = "bob") -> Movement:
    return Movement(key, payee, "CNY", 2, amount)


def admit(_totals: WindowTotals) -> tuple[None, bool]:
    return None, True


def reserve(counters: PaymentCounters, *movements: Movement, now: int = NOW) -> WindowTotals:
    """Reserve and return the totals the judge saw."""
    seen: list[WindowTotals] = []

    def judge(totals: WindowTotals) -> tuple[None, bool]:
        seen.append(totals)
        return None, True

    payees = sorted({m.payee for m in movements})
    counters.reserve(user_id="u1", movements=movements, payees=payees, now_ms=now, judge=judge)
    return seen[0]


def test_window_sums_per_payee_and_overall(engine: Engine) -> None:
    counters = PaymentCounters(engine)
    reserve(counters, cny("transfer:a", 100), now=NOW - 25 * HOUR)  # outside 24 h
    reserve(counters, cny("transfer:b", 200), now=NOW - 23 * HOUR)
    reserve(counters, cny("transfer:c", 300, payee="carol"), Movement("fx:d", "carol", "USD", 2, 7))
    assert counters.amount_moved(user_id="u1", now_ms=NOW) == (
        MovedAmount("CNY", 2, 500),
        MovedAmount("USD", 2, 7),
    )
    assert counters.amount_moved(user_id="u1", now_ms=NOW, payee="bob") == (
        MovedAmount("CNY", 2, 200),
    )
    assert counters.amount_moved(user_id="u1", now_ms=NOW, window_ms=26 * HOUR, payee="bob") == (
        MovedAmount("CNY", 2, 300),
    )
    assert counters.amount_moved(user_id="u2", now_ms=NOW) == ()
    assert counters.amounts_moved_to(user_id="u1", payees=["bob", "dave"], now_ms=NOW) == {
        "bob": (MovedAmount("CNY", 2, 200),),
        "dave": (),
    }
    # An hour later the 200 has left the window.
    assert counters.amount_moved(user_id="u1", now_ms=NOW + 2 * HOUR, payee="bob") == ()


def test_the_judge_sees_the_request_once_and_a_retry_is_one_row(engine: Engine) -> None:
    counters = PaymentCounters(engine)
    first = reserve(counters, cny("transfer:a", 100), cny("transfer:b", 50, payee="carol"))
    assert first.overall == (MovedAmount("CNY", 2, 150),)
    assert first.by_payee == {
        "bob": (MovedAmount("CNY", 2, 100),),
        "carol": (MovedAmount("CNY", 2, 50),),
    }
    again = reserve(counters, cny("transfer:a", 100))  # the same request, retried
    assert again.overall == (MovedAmount("CNY", 2, 150),)
    assert counters.amount_moved(user_id="u1", now_ms=NOW) == (MovedAmount("CNY", 2, 150),)


def test_a_refused_judgement_records_nothing_and_release_gives_back(engine: Engine) -> None:
    counters = PaymentCounters(engine)
    verdict, refused = counters.reserve(
        user_id="u1",
        movements=[cny("transfer:a", 100)],
        payees=["bob"],
        now_ms=NOW,
        judge=lambda _totals: ("no", False),
    )
    assert verdict == "no" and not refused.admitted and refused.rows == {}
    assert counters.amount_moved(user_id="u1", now_ms=NOW) == ()
    _, kept = counters.reserve(
        user_id="u1",
        movements=[cny("transfer:b", 100), cny("transfer:c", 40)],
        payees=["bob"],
        now_ms=NOW,
        judge=admit,
    )
    assert kept.admitted and set(kept.rows) == {"transfer:b", "transfer:c"}
    assert counters.release(kept, ["transfer:c"]) == 1
    assert counters.amount_moved(user_id="u1", now_ms=NOW) == (MovedAmount("CNY", 2, 100),)
    # A retry's rows are not its own: releasing the retry leaves the first request's row.
    _, retry = counters.reserve(
        user_id="u1", movements=[cny("transfer:b", 100)], payees=[], now_ms=NOW, judge=admit
    )
    assert retry.rows == {} and counters.release(retry) == 0
    assert counters.amount_moved(user_id="u1", now_ms=NOW) == (MovedAmount("CNY", 2, 100),)


def test_sums_pass_the_64_bit_range_exactly(engine: Engine) -> None:
    counters = PaymentCounters(engine)
    top = 2**63 - 1
    reserve(counters, cny("transfer:a", top), cny("transfer:b", top))
    assert counters.amount_moved(user_id="u1", now_ms=NOW) == (MovedAmount("CNY", 2, 2 * top),)


def test_old_rows_are_pruned_after_the_retention(engine: Engine) -> None:
    counters = PaymentCounters(engine)
    reserve(counters, cny("transfer:a", 100), now=NOW)
    month = limits.PAYMENT_COUNTER_RETENTION_MS
    assert counters.amount_moved(user_id="u1", now_ms=NOW + HOUR, window_ms=month) != ()
    reserve(counters, cny("transfer:b", 1), now=NOW + month)
    later = NOW + month
    assert counters.amount_moved(user_id="u1", now_ms=later, window_ms=month) == (
        MovedAmount("CNY", 2, 1),
    )


@pytest.mark.parametrize("window_ms", [0, -1, limits.PAYMENT_COUNTER_RETENTION_MS + 1])
def test_windows_are_bounded_by_the_retention(engine: Engine, window_ms: int) -> None:
    with pytest.raises(InvalidInput) as caught:
        PaymentCounters(engine).amount_moved(user_id="u1", now_ms=NOW, window_ms=window_ms)
    assert caught.value.code == "window_invalid"


def test_too_many_movements_or_payees_are_refused(engine: Engine) -> None:
    counters = PaymentCounters(engine)
    many = [cny(f"transfer:{i}", 1) for i in range(limits.PAYMENT_COUNTER_MOVEMENTS_MAX + 1)]
    with pytest.raises(InvalidInput):
        counters.reserve(user_id="u1", movements=many, payees=[], now_ms=NOW, judge=admit)
    payees = [f"p{i}" for i in range(limits.PAYMENT_COUNTER_PAYEES_MAX + 1)]
    with pytest.raises(InvalidInput):
        counters.amounts_moved_to(user_id="u1", payees=payees, now_ms=NOW)


def test_counters_survive_a_new_object_over_the_same_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'identity.db'}"
    first = make_engine(url)
    create_tables(first)
    reserve(PaymentCounters(first), cny("transfer:a", 99_999))
    first.dispose()
    second = make_engine(url)
    create_tables(second)  # a restart creates the tables again, idempotently
    assert PaymentCounters(second).amount_moved(user_id="u1", now_ms=NOW) == (
        MovedAmount("CNY", 2, 99_999),
    )
    second.dispose()


def race(engine: Engine, threads: int = 8) -> list[bool]:
    """`threads` payments of 600 at once against a limit of 1,000: whether each was admitted."""
    create_tables(engine)
    counters = PaymentCounters(engine)
    start = threading.Barrier(threads)
    admitted: list[bool] = []

    def judge(totals: WindowTotals) -> tuple[None, bool]:
        return None, sum(m.amount_minor for m in totals.overall) <= 1_000

    def pay(n: int) -> None:
        start.wait()
        _, reservation = counters.reserve(
            user_id="u1",
            movements=[cny(f"transfer:{n}", 600)],
            payees=["bob"],
            now_ms=NOW,
            judge=judge,
        )
        admitted.append(reservation.admitted)

    workers = [threading.Thread(target=pay, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert counters.amount_moved(user_id="u1", now_ms=NOW) == (MovedAmount("CNY", 2, 600),)
    return admitted


def test_concurrent_reservations_do_not_slip_under_a_limit_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'race.db'}")
    assert sorted(race(engine)) == [False] * 7 + [True]
    engine.dispose()


def test_concurrent_reservations_do_not_slip_under_a_limit_on_postgresql(pg_url: str) -> None:
    engine = make_engine(pg_url)
    assert sorted(race(engine)) == [False] * 7 + [True]
    engine.dispose()
