"""The demo chain's story: `zhijin chain init --demo` starts its genesis 200 days ago and seeds
under a demo clock, so that the loan book holds a loan in every state, delinquency included,
reached by the collections keeper in block time, and every block time climbs to the present."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest

from zhijin.chain.errors import ZhijinError
from zhijin.chain.genesis import Genesis
from zhijin.chain.node import now_ms
from zhijin.lending import service
from zhijin.lending.demo import LOANS, PREPAY_MINOR
from zhijin.lending.projection import outstanding_minor
from zhijin.lending.records import loan_account
from zhijin.node import modules
from zhijin.node.demo import seed_demo
from zhijin.node.runtime import Platform, init_data_dir
from zhijin.node.settings import Settings
from zhijin.payments import fx_offers
from zhijin.payments import service as payments
from zhijin.platform.demo_clock import DAY_MS, DEMO_HISTORY_DAYS


@dataclass(frozen=True)
class Story:
    platform: Platform
    genesis: Genesis
    seeded_at_ms: int


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    data = tmp_path_factory.mktemp("demo-story")
    settings = Settings(
        data=data, block_interval_ms=5, password_hashing="test", projector="thread",
        audit_anchor_interval_s=0, lending_keeper_interval_s=0,
    )  # fmt: skip
    genesis = init_data_dir(settings, members=1, time_ms=now_ms() - DEMO_HISTORY_DAYS * DAY_MS)
    with Platform(settings) as platform:
        seed_demo(platform, story_start_ms=genesis.time_ms)
        platform.projections.wait_for(platform.node.head.height)
        yield Story(platform, genesis, now_ms())


def _loans(story: Story) -> dict[str, dict[str, Any]]:
    return {spec.loan_id: service.get_loan(story.platform, loan_id=spec.loan_id) for spec in LOANS}


def test_the_book_holds_a_loan_in_every_state(story: Story) -> None:
    loans = _loans(story)
    assert {loan_id: (loan["status"], loan["bucket"]) for loan_id, loan in loans.items()} == {
        "demo-wang-car": ("current", None),
        "demo-wang-sofa": ("closed", None),
        "demo-li-1": ("overdue", "M3+"),
        "demo-liu-1": ("overdue", "M1"),
        "demo-zhao-1": ("withdrawn", None),
        "demo-zhao-stock": ("collateral_liquidated", "M3+"),
        "demo-zhao-van": ("written_off", "M3+"),
    }
    assert 61 <= loans["demo-li-1"]["days_past_due"] <= 89
    assert 1 <= loans["demo-liu-1"]["days_past_due"] <= 30
    # The collateral (20% held at disbursement) was taken, and did not cover the loan.
    stock = loans["demo-zhao-stock"]
    assert stock["collateral_taken_minor"] == 1_200_000
    assert stock["amount_minor"] - stock["principal_repaid_minor"] > 0
    assert loans["demo-zhao-van"]["written_off_minor"] > 0
    # 王 repaid the sofa loan months before its term, and prepaid part of the car loan keeping
    # the instalment: the schedule is shorter than the product's 12 months.
    sofa = loans["demo-wang-sofa"]
    held = date.fromisoformat(sofa["closed_day"]) - date.fromisoformat(sofa["disbursed_day"])
    assert held < timedelta(days=100)  # of a 12-month term
    assert _payment_ids(story, "demo-wang-sofa")[-1] == "demo-wang-sofa-payoff"
    car = loans["demo-wang-car"]
    assert "demo-wang-car-prepay" in _payment_ids(story, "demo-wang-car")
    assert len(car["schedule"]) < 12 and car["principal_repaid_minor"] > PREPAY_MINOR


def _payment_ids(story: Story, loan_id: str) -> list[str]:
    payments = service.history(story.platform, loan_id=loan_id)["payments"]
    return [payment["payment_id"] for payment in payments]


def test_outstanding_principal_is_the_loan_accounts_balance(story: Story) -> None:
    for loan_id, loan in _loans(story).items():
        outstanding = loan["amount_minor"] - loan["principal_repaid_minor"]
        if loan["status"] == "withdrawn":
            assert outstanding_minor(loan) == 0  # lent nothing, and no loan account opened
            with pytest.raises(ZhijinError):
                payments.get_account(story.platform, account_id=loan_account(loan_id))
            continue
        account = payments.get_account(story.platform, account_id=loan_account(loan_id))
        assert account["debits_posted"] - account["credits_posted"] == outstanding, loan_id
    store = story.platform.store
    with store.read() as conn:
        assert modules.check_invariants(_Committed(store, conn)) == []


def test_the_regulators_book_shows_delinquency_by_bucket(story: Story) -> None:
    rows = service.book(story.platform, member=None)["rows"]
    by = {(row["status"], row["bucket"]): row for row in rows}
    assert by[("overdue", "M1")]["loans"] == 1 and by[("overdue", "M3+")]["loans"] == 1
    assert by[("overdue", "M1")]["outstanding_minor"] > 0
    assert by[("withdrawn", None)]["outstanding_minor"] == 0  # never disbursed, owes nothing
    assert by[("written_off", "M3+")]["outstanding_minor"] == 0


def test_block_times_climb_from_the_story_start_to_the_present_and_never_beyond(
    story: Story,
) -> None:
    times = [block.header_json()["time_ms"] for block in story.platform.store.iter_blocks(1)]
    assert all(later > earlier for earlier, later in itertools.pairwise(times))
    assert times[0] >= story.genesis.time_ms and times[-1] <= story.seeded_at_ms
    assert times[-1] - times[0] >= (DEMO_HISTORY_DAYS - 1) * DAY_MS
    # Seeding over, the node is back on the wall clock.
    assert abs(story.platform.node.clock() - now_ms()) < 60_000


def test_the_fx_quotes_are_live_at_the_present(story: Story) -> None:
    live = fx_offers.live_quotes(story.platform, source_currency="CNY", target_currency="USD")
    assert live["quotes"], "a fresh quote set was published when the story reached the present"


def test_seeding_again_changes_no_loan(story: Story) -> None:
    before = _loans(story)
    seed_demo(story.platform, story_start_ms=story.genesis.time_ms)
    story.platform.projections.wait_for(story.platform.node.head.height)
    after = _loans(story)
    assert {k: (v["status"], v["principal_repaid_minor"]) for k, v in after.items()} == {
        k: (v["status"], v["principal_repaid_minor"]) for k, v in before.items()
    }


@dataclass(frozen=True, slots=True)
class _Committed:
    store: Any
    conn: Any

    def get(self, key: str) -> Any | None:
        return self.store.state_get(self.conn, key)

    def scan(self, prefix: str, start_after: str, limit: int) -> list[tuple[str, Any]]:
        return self.store.state_scan(self.conn, prefix, start_after, limit)
