"""The monitor as a projection: large-value thresholds at their boundaries, idempotence under
repeated events and blocks, the same result after a restart, and the runner's cursor."""

from __future__ import annotations

import dataclasses

import pytest

from tests.aml.helpers import BANK, BANK2, DAY_MS, T0, Monitor, account, block, transfer
from zhijin.aml.memory import MemoryMonitor
from zhijin.aml.monitor import AmlProjection

YUAN = 100  # minor units per yuan
ACCOUNTS = [
    account("a-alice", "did:alice"),
    account("a-bob", "did:bob"),
    account("a-shop", "did:shop", kind="merchant"),
    account("a-shop2", "did:shop2", kind="merchant"),
    account("a-settle", "role:bank", kind="settlement"),
    account("a-usd-alice", "did:alice", currency="USD"),
    account("a-usd-fx", "role:bank", kind="fx_liquidity", currency="USD"),
]


def _fresh() -> Monitor:
    monitor = Monitor()
    monitor.apply(block(1, T0 - 400 * DAY_MS, ACCOUNTS))
    return monitor


@pytest.mark.parametrize(
    ("debit", "credit", "threshold_yuan", "rule", "kind", "currency"),
    [
        ("a-alice", "a-bob", 500_000, "individual_domestic_cny", "transfer", "CNY"),
        ("a-settle", "a-alice", 50_000, "cash_cny", "transfer", "CNY"),
        ("a-shop", "a-shop2", 2_000_000, "entity_transfer_cny", "transfer", "CNY"),
        ("a-usd-alice", "a-usd-fx", 10_000, "individual_cross_border_usd", "fx_source", "USD"),
    ],
)
def test_a_large_value_report_is_raised_exactly_at_the_threshold_not_one_below(
    debit: str, credit: str, threshold_yuan: int, rule: str, kind: str, currency: str
) -> None:
    threshold = threshold_yuan * YUAN
    below = _fresh()
    below.apply(
        block(
            2, T0, [transfer(debit, credit, threshold - 1, at_ms=T0, kind=kind, currency=currency)]
        )
    )
    assert [a.rule_id for a in below.alerts("large_value")] == []
    at = _fresh()
    at.apply(
        block(2, T0, [transfer(debit, credit, threshold, at_ms=T0, kind=kind, currency=currency)])
    )
    raised = [a for a in at.alerts("large_value") if a.rule_id == rule]
    assert raised, "no report at the threshold"
    alert = raised[0]
    assert all(a.amount_minor == threshold for a in raised)
    assert alert.day == "2026-06-01"
    # Monday 1 June 2026 -> the 5th working day after it is Monday 8 June.
    assert (alert.due_day, alert.due_known) == ("2026-06-08", True)


def test_the_same_day_cumulative_counts_inflows_and_outflows_apart() -> None:
    monitor = _fresh()
    half = 250_000 * YUAN
    monitor.apply(
        block(2, T0, [transfer("a-alice", "a-bob", half, at_ms=T0)]),
        block(3, T0 + 3600_000, [transfer("a-bob", "a-alice", half, at_ms=T0 + 3600_000)]),
    )
    assert monitor.alerts("large_value") == []  # 250k out and 250k in: neither side reaches 500k
    monitor.apply(
        block(4, T0 + 7200_000, [transfer("a-alice", "a-bob", half, at_ms=T0 + 7200_000)])
    )
    (alert,) = [a for a in monitor.alerts("large_value") if a.customer == "did:alice"]
    assert (alert.direction, alert.amount_minor, alert.transfer_count) == ("out", 2 * half, 2)
    (bob,) = [a for a in monitor.alerts("large_value") if a.customer == "did:bob"]
    assert bob.direction == "in"


def test_the_next_beijing_day_starts_a_new_cumulative() -> None:
    monitor = _fresh()
    # 23:30 and 00:30 Beijing time: two days, though the same UTC day.
    late = T0 + 13 * 3600_000 + 1800_000
    monitor.apply(
        block(2, late, [transfer("a-alice", "a-bob", 300_000 * YUAN, at_ms=late)]),
        block(
            3,
            late + 3600_000,
            [transfer("a-alice", "a-bob", 300_000 * YUAN, at_ms=late + 3600_000)],
        ),
    )
    assert monitor.alerts("large_value") == []


def test_a_block_fed_twice_and_a_repeated_event_change_nothing() -> None:
    monitor = _fresh()
    once = transfer("a-alice", "a-bob", 500_000 * YUAN, at_ms=T0, transfer_id="t-big")
    view = block(2, T0, [once, once])  # the same event twice in a block
    monitor.apply(view)
    first = monitor.alerts()
    monitor.apply(view)  # and the whole block again
    monitor.apply(block(1, T0 - 400 * DAY_MS, ACCOUNTS))  # accounts again
    assert monitor.alerts() == first
    assert {a.typology for a in first if a.customer == "did:alice"} == {"large_value", "dormant"}
    (alert,) = [a for a in first if a.customer == "did:alice" and a.typology == "large_value"]
    assert (alert.amount_minor, alert.transfer_count) == (500_000 * YUAN, 1)


def test_holds_count_when_posted_and_voids_and_fees_never() -> None:
    monitor = _fresh()
    amount = 500_000 * YUAN
    monitor.apply(
        block(2, T0, [
            transfer("a-alice", "a-bob", amount, at_ms=T0, flags=["pending"], transfer_id="h1"),
            transfer("a-alice", "a-bob", amount, at_ms=T0, flags=["void_pending_transfer"]),
            transfer("a-alice", "a-settle", amount, at_ms=T0, kind="fee"),
        ])
    )  # fmt: skip
    assert monitor.alerts() == []
    monitor.apply(
        block(
            3, T0, [transfer("a-alice", "a-bob", amount, at_ms=T0, flags=["post_pending_transfer"])]
        )
    )
    assert {a.customer for a in monitor.alerts("large_value")} == {"did:alice", "did:bob"}


def test_each_member_reports_its_own_customers() -> None:
    monitor = Monitor()
    monitor.apply(
        block(1, T0 - DAY_MS, [account("x1", "did:x"), account("y2", "did:y", custodian=BANK2)])
    )
    monitor.apply(block(2, T0, [transfer("x1", "y2", 500_000 * YUAN, at_ms=T0)]))
    assert {(a.customer, a.member) for a in monitor.alerts()} == {("did:x", BANK), ("did:y", BANK2)}


def _day_of_traffic() -> list:
    blocks = [block(1, T0 - 400 * DAY_MS, ACCOUNTS)]
    for n in range(2, 40):
        at = T0 + n * 600_000
        blocks.append(block(n, at, [
            transfer("a-alice", "a-bob", 45_000_000 + n, at_ms=at),
            transfer("a-settle", "a-alice", 4_900_000, at_ms=at),
            transfer("a-bob", "a-alice", 44_000_000, at_ms=at),
        ]))  # fmt: skip
    return blocks


def test_a_restart_at_any_block_ends_where_one_uninterrupted_run_ends() -> None:
    blocks = _day_of_traffic()
    straight = Monitor()
    straight.apply(*blocks)
    restarted = Monitor()
    restarted.apply(*blocks[:17])
    # A new projection object on the same database: what a restarted projector builds.
    again = dataclasses.replace(restarted, projection=AmlProjection())
    again.apply(*blocks[15:])  # the cursor's two blocks again, as after a crash mid-commit
    assert again.alerts() == straight.alerts()
    assert {a.typology for a in straight.alerts()} >= {"large_value", "structuring"}


def test_the_projection_and_the_memory_monitor_agree() -> None:
    blocks = _day_of_traffic()
    projection = Monitor()
    projection.apply(*blocks)
    memory = MemoryMonitor()
    from zhijin.aml.facts import account_fact, movement

    accounts = {}
    for view in blocks:
        batch = []
        for index, event in enumerate(view.txs[0].events):
            if event["type"].endswith("account_created"):
                fact = account_fact(event["attrs"])
                accounts[fact.account_id] = fact
                if fact.custodian:
                    memory.open_account(
                        owner=fact.owner, member=fact.custodian, opened_at_ms=fact.opened_at_ms
                    )
            else:
                made = movement(
                    event["attrs"], seq=view.height * 1_000_000 + index, account=accounts.get
                )
                if made is not None:
                    batch.append(made)
        memory.apply(batch)
    assert sorted(memory.alerts.values(), key=lambda a: a.alert_id) == projection.alerts()
