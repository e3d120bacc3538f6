"""Every named payments invariant can fire: a sound ledger built by real operations, then one
record corrupted on purpose, must be reported by that invariant, by name (STYLE.md: "a check must
be able to fail").

Each case names the invariant it is the negative test of and the exact set of invariants the
corrupted state breaks.  Where a corruption cannot break one invariant alone (the counters are
recomputed from the transfers, so an unbalanced currency is always also an account that
disagrees with its transfers), the case lists the others and says why.  A registered invariant
without a case fails `test_every_registered_invariant_has_a_negative_case`, and
`test_a_negative_case_fails_without_its_invariant` replaces each invariant by one that finds
nothing and checks that its cases then fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from zhijin.chain.codec import canonical
from zhijin.chain.errors import InvariantViolation
from zhijin.chain.memory import MemoryState
from zhijin.payments import invariants, limits
from zhijin.payments.invariants import (
    INVARIANTS,
    LedgerSnapshot,
    Violation,
    assert_invariants,
    check_invariants,
    find_violations,
    load_snapshot,
)
from zhijin.payments.records import keys

from .helpers import ALICE, BANK, FX_BANK, SHOP, Chain, account, world

State = dict[str, Any]  # decoded state: key -> record JSON
HOLD = 8_000
REFUNDED_FROM, REFUNDED = 3_000, 1_000  # buy-1, and its refund rf-1


def _hold(transfer_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": transfer_id,
        "debit_account_id": "alice-cny",
        "credit_account_id": "shop-cny",
        "amount": HOLD,
        "currency": "CNY",
        "flags": ["pending"],
        **fields,
    }


def _quote(chain: Chain) -> dict[str, Any]:
    return {
        "id": "q-1",
        "source_currency": "CNY",
        "target_currency": "USD",
        "rate": "0.1385",
        "spread_bps": 30,
        "expires_at_ms": chain.time_ms + 60_000,
        "source_liquidity_account_id": "fx-cny",
        "target_liquidity_account_id": "fx-usd",
        "spread_account_id": "fxfee-cny",
        "max_target_amount": 100_000,
    }


def _ok(results: list[dict[str, Any]]) -> None:
    assert all(result["result"] == "ok" for result in results), results


def sound_ledger() -> Chain:
    """`world()` plus one of everything the invariants look at: a plain payment, a loan account
    (credits_must_not_exceed_debits), a live hold with a timeout, a hold without one, holds
    posted in part, voided and expired, an FX payment with a spread under a capped quote, and a
    payment refunded in part."""
    chain = world()
    chain.open_accounts(
        [account("loan-cny", ALICE, "CNY", "loan", flags=["credits_must_not_exceed_debits"])]
    )
    _ok(
        [
            chain.transfer(
                sender=BANK.did,
                id="disburse-1",
                debit_account_id="loan-cny",
                credit_account_id="alice-cny",
                amount=1_000,
                currency="CNY",
            ),
            chain.transfer(
                sender=ALICE,
                id="repay-1",
                debit_account_id="alice-cny",
                credit_account_id="loan-cny",
                amount=400,
                currency="CNY",
            ),
            chain.transfer(
                sender=ALICE,
                id="pay-1",
                debit_account_id="alice-cny",
                credit_account_id="bob-cny",
                amount=5_000,
                currency="CNY",
            ),
        ]
    )
    holds = [
        _hold("h-live", timeout_ms=600_000),
        _hold("h-posted"),
        _hold("h-voided"),
        _hold("h-expired", timeout_ms=2_000),
    ]
    _ok(chain.transfers(holds, sender=ALICE))
    _ok(
        [
            chain.transfer(
                sender=BANK.did,
                id="h-bank",
                debit_account_id="settle-cny",
                credit_account_id="carol-cny",
                amount=500,
                currency="CNY",
                flags=["pending"],
            )
        ]
    )
    resolutions = [
        {
            "id": "p-1",
            "pending_id": "h-posted",
            "amount": 3_000,
            "flags": ["post_pending_transfer"],
        },
        {"id": "v-1", "pending_id": "h-voided", "flags": ["void_pending_transfer"]},
    ]
    _ok(chain.transfers(resolutions, sender=SHOP))
    chain.advance(5_000)  # h-expired expires
    chain.ok("create_fx_quote", _quote(chain), sender=FX_BANK.did)
    fx = {"id": "fx-1", "quote_id": "q-1", "debit_account_id": "alice-cny"}
    chain.ok(
        "pay_fx", {**fx, "credit_account_id": "bob-usd", "source_amount": 10_000}, sender=ALICE
    )
    buy = {"debit_account_id": "alice-cny", "credit_account_id": "shop-cny", "currency": "CNY"}
    _ok([chain.transfer(sender=ALICE, id="buy-1", amount=REFUNDED_FROM, **buy)])
    refund = {"id": "rf-1", "original_transfer_id": "buy-1", "amount": REFUNDED}
    chain.ok("refund_transfer", refund, sender=SHOP)
    return chain


@pytest.fixture(scope="module")
def ledger() -> MemoryState:
    return sound_ledger().state


# -- corrupting the decoded state -----------------------------------------------------------------


def _account(state: State, account_id: str) -> dict[str, Any]:
    record: dict[str, Any] = state[keys.account(account_id)]
    return record


def _transfer(state: State, transfer_id: str) -> dict[str, Any]:
    record: dict[str, Any] = state[keys.transfer(transfer_id)]
    return record


def _pending(state: State, transfer_id: str) -> dict[str, Any]:
    record: dict[str, Any] = state[keys.pending(transfer_id)]
    return record


def _rebook(state: State, transfer_id: str, amount: int) -> None:
    """Give a plain transfer or a live hold another amount, and both its accounts' counters the
    difference, so the books still agree with the transfers."""
    transfer = _transfer(state, transfer_id)
    side = "pending" if "pending" in transfer["flags"] else "posted"
    delta = amount - transfer["amount"]
    transfer["amount"] = amount
    _account(state, transfer["debit_account_id"])[f"debits_{side}"] += delta
    _account(state, transfer["credit_account_id"])[f"credits_{side}"] += delta


def _move_counter(state: State, counter: str, source: str, target: str, amount: int) -> None:
    """Move `amount` of one counter from one account to another: every per-currency total holds."""
    _account(state, source)[counter] -= amount
    _account(state, target)[counter] += amount


def _fx(state: State) -> dict[str, Any]:
    details: dict[str, Any] = _transfer(state, "fx-1")["fx"]
    return details


def _expiry_key(state: State, transfer_id: str) -> str:
    return keys.expiry(_pending(state, transfer_id)["expires_at_ms"], transfer_id)


def _duplicate_void(state: State) -> None:
    """A second resolution of h-posted: a void, which moves nothing, so only the hold's
    bookkeeping is wrong."""
    void = {**_transfer(state, "v-1"), "id": "v-dup", "pending_id": "h-posted", "amount": HOLD}
    state[keys.transfer("v-dup")] = void


def _move_expiry(state: State) -> None:
    key = _expiry_key(state, "h-live")
    del state[key]
    state[keys.expiry(_pending(state, "h-live")["expires_at_ms"] + 1, "h-live")] = "h-live"


def _refund_beyond_its_payment(state: State) -> None:
    """rf-1 returns more than buy-1 brought, with its total and both counters to match."""
    _rebook(state, "rf-1", REFUNDED_FROM + 1)
    state[keys.refunded("buy-1")]["refunded_amount"] = REFUNDED_FROM + 1


def _refund_to_someone_else(state: State) -> None:
    """rf-1 pays Bob instead of the payer, Alice's credit moved to him: the books agree."""
    _transfer(state, "rf-1")["credit_account_id"] = "bob-cny"
    _move_counter(state, "credits_posted", "alice-cny", "bob-cny", REFUNDED)


def _pay_alice_herself(state: State) -> None:
    """pay-1 credits its own debit account, Bob's 5,000 moved to Alice: the books still agree."""
    _transfer(state, "pay-1")["credit_account_id"] = "alice-cny"
    _move_counter(state, "credits_posted", "bob-cny", "alice-cny", 5_000)


@dataclass(frozen=True)
class Corruption:
    invariant: str  # the invariant this case is the negative test of
    label: str
    corrupt: Callable[[State], None]
    also: frozenset[str] = frozenset()  # invariants the corruption necessarily breaks too
    why: str = ""  # why it breaks them

    @property
    def id(self) -> str:
        return f"{self.invariant}-{self.label}"


def _set(key: str, field: str, *, value: Any) -> Callable[[State], None]:
    def corrupt(state: State) -> None:
        state[key][field] = value

    return corrupt


def _add(key: str, field: str, amount: int) -> Callable[[State], None]:
    def corrupt(state: State) -> None:
        state[key][field] += amount

    return corrupt


def _drop(key: str) -> Callable[[State], None]:
    def corrupt(state: State) -> None:
        del state[key]

    return corrupt


UNEXPLAINED = (
    "the counters are recomputed from the transfers, which move equal sums on both sides of "
    "one currency: a currency out of balance is always an account its transfers do not explain"
)

CASES = (
    Corruption(
        "debits_equal_credits",
        "posted-credit-bumped",
        _add(keys.account("bob-cny"), "credits_posted", 1),
        frozenset({"balances_match_transfers"}),
        UNEXPLAINED,
    ),
    Corruption(
        "debits_equal_credits",
        "pending-debit-bumped",
        _add(keys.account("settle-cny"), "debits_pending", 1),
        frozenset({"balances_match_transfers"}),
        UNEXPLAINED,
    ),
    Corruption(
        "counters_in_range",
        "pending-plus-posted-overflows",
        # h-bank holds 2**63 - 1 from settle-cny (which has posted debits) to carol-cny (which
        # has posted credits): every counter is in range, each side's sum is not.
        lambda state: _rebook(state, "h-bank", limits.AMOUNT_MAX),
    ),
    Corruption(
        "counters_in_range",
        "negative-counter",
        lambda state: _move_counter(state, "debits_posted", "bob-cny", "alice-cny", 1),
        frozenset({"balances_match_transfers"}),
        "transfers move positive amounts, so no account's transfers add up to a negative counter",
    ),
    Corruption(
        "limit_flags_respected",
        "customer-overdrawn",
        lambda state: _rebook(state, "pay-1", 5_000_000),  # Alice holds about 1,000,000
    ),
    Corruption(
        "limit_flags_respected",
        "loan-credited-beyond-its-debits",
        lambda state: _rebook(state, "repay-1", 1_001),  # 1,000 was disbursed
    ),
    Corruption(
        "one_exponent_per_currency",
        "hkd-account-with-three-digits",
        _set(keys.account("alice-hkd"), "exponent", value=3),
    ),
    Corruption(
        "transfers_well_formed",
        "zero-amount",
        lambda state: _rebook(state, "pay-1", 0),
    ),
    Corruption(
        "transfers_well_formed",
        "mixed-currencies",
        _set(keys.transfer("pay-1"), "currency", value="USD"),
    ),
    Corruption("transfers_well_formed", "one-account-on-both-sides", _pay_alice_herself),
    Corruption(
        "transfers_well_formed",
        "unknown-account",
        _set(keys.transfer("pay-1"), "credit_account_id", value="nobody-cny"),
        frozenset({"balances_match_transfers"}),
        "Bob's counters still hold the payment, which no longer names him",
    ),
    Corruption("pending_resolved_at_most_once", "resolved-twice", _duplicate_void),
    Corruption(
        "pending_resolved_at_most_once",
        "resolved-hold-without-state",
        _drop(keys.pending("h-voided")),
    ),
    Corruption(
        "pending_resolved_at_most_once",
        "state-names-another-resolver",
        _set(keys.pending("h-posted"), "resolved_by", value="v-1"),
    ),
    Corruption(
        "pending_resolved_at_most_once",
        "posted-without-a-post",
        _set(keys.pending("h-expired"), "status", value="posted"),
    ),
    Corruption(
        "pending_resolved_at_most_once",
        "post-beyond-its-hold",
        lambda state: _rebook(state, "p-1", HOLD + 1),
    ),
    Corruption("balances_match_transfers", "transfer-dropped", _drop(keys.transfer("pay-1"))),
    Corruption(
        "balances_match_transfers",
        "credit-moved-between-accounts",
        lambda state: _move_counter(state, "credits_posted", "alice-cny", "bob-cny", 100),
    ),
    Corruption(
        "balances_match_transfers",
        "hold-released-without-its-counters",
        _set(keys.pending("h-bank"), "status", value="expired"),
    ),
    Corruption(
        "expiry_index_consistent",
        "live-hold-missing",
        lambda state: _drop(_expiry_key(state, "h-live"))(state),
    ),
    Corruption(
        "expiry_index_consistent",
        "entry-without-a-live-hold",
        lambda state: state.update({keys.expiry(1, "h-posted"): "h-posted"}),
    ),
    Corruption("expiry_index_consistent", "entry-at-the-wrong-time", _move_expiry),
    Corruption(
        "fx_payments_consistent",
        "source-legs-do-not-add-up",
        lambda state: _fx(state).update(source_amount=10_001),
    ),
    Corruption(
        "fx_payments_consistent",
        "target-leg-unbalanced",
        lambda state: _rebook(state, "fx-1~target", 1_381),
    ),
    Corruption(
        "fx_payments_consistent",
        "rate-lowered",  # 9,970 CNY minor units at 0.1 pay 997 USD minor units, not 1,380
        lambda state: _fx(state).update(rate="0.1"),
    ),
    Corruption(
        "fx_payments_consistent",
        "rate-unreadable",
        lambda state: _fx(state).update(rate="fast"),
    ),
    Corruption(
        "fx_payments_consistent",
        "quote-use-not-recorded",
        _set(keys.quote("q-1"), "used_target_amount", value=0),
    ),
    Corruption(
        "fx_payments_consistent",
        "quote-beyond-capacity",
        _set(keys.quote("q-1"), "max_target_amount", value=1_379),
    ),
    Corruption(
        "fx_payments_consistent",
        "principal-leg-without-pricing",
        _set(keys.transfer("pay-1"), "kind", value="fx_source"),
    ),
    Corruption(
        "fx_payments_consistent",
        "leg-of-no-payment",
        _set(keys.transfer("pay-1"), "kind", value="fx_target"),
    ),
    Corruption(
        "refunds_within_payments",
        "total-not-recorded",
        _set(keys.refunded("buy-1"), "refunded_amount", value=0),
    ),
    Corruption(
        "refunds_within_payments",
        "refund-not-counted",
        _set(keys.refunded("buy-1"), "refunds", value=2),
    ),
    Corruption("refunds_within_payments", "beyond-its-payment", _refund_beyond_its_payment),
    Corruption("refunds_within_payments", "to-someone-else", _refund_to_someone_else),
    Corruption(
        "refunds_within_payments",
        "total-without-refunds",
        lambda state: state.update(
            {keys.refunded("pay-1"): {"refunded_amount": 1, "refunds": 1, "transfer_id": "pay-1"}}
        ),
    ),
)


def fired(state: State) -> set[str]:
    """The names of the invariants that report a problem in `state`."""
    return {violation.invariant for violation in find_violations(load_snapshot(MemoryState(state)))}


def test_the_sound_ledger_breaks_no_invariant(ledger: MemoryState) -> None:
    assert find_violations(load_snapshot(ledger)) == []


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_a_corrupted_state_is_reported_by_its_invariant(
    case: Corruption, ledger: MemoryState
) -> None:
    state = ledger.data  # a fresh decoded copy
    case.corrupt(state)
    assert fired(state) == {case.invariant, *case.also}


def _finds_nothing(snapshot: LedgerSnapshot) -> list[str]:
    return []


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_a_negative_case_fails_without_its_invariant(
    case: Corruption, ledger: MemoryState, monkeypatch: pytest.MonkeyPatch
) -> None:
    silenced = tuple(
        (name, _finds_nothing if name == case.invariant else check) for name, check in INVARIANTS
    )
    monkeypatch.setattr(invariants, "INVARIANTS", silenced)
    with pytest.raises(AssertionError):
        test_a_corrupted_state_is_reported_by_its_invariant(case, ledger)


def test_every_registered_invariant_has_a_negative_case() -> None:
    assert {case.invariant for case in CASES} == {name for name, _ in INVARIANTS}


def test_the_cases_are_well_formed() -> None:
    names = {name for name, _ in INVARIANTS}
    assert len({case.id for case in CASES}) == len(CASES)
    for case in CASES:
        assert case.also <= names - {case.invariant}, case.id
        assert bool(case.also) == bool(case.why), f"{case.id}: say why others break too"


def test_each_invariant_is_registered_once_under_its_function_name() -> None:
    assert [name for name, _ in INVARIANTS] == [check.__name__ for _, check in INVARIANTS]
    assert len({name for name, _ in INVARIANTS}) == len(INVARIANTS)


def test_a_report_names_the_invariant_and_the_problem(ledger: MemoryState) -> None:
    state = ledger.data
    _account(state, "bob-cny")["credits_posted"] += 1
    corrupted = MemoryState(state)
    violations = find_violations(load_snapshot(corrupted))
    assert violations[0] == Violation(
        "debits_equal_credits", "CNY: posted debits 103023400 != credits 103023401"
    )
    assert check_invariants(corrupted) == [str(violation) for violation in violations]
    assert (
        str(violations[0])
        == "debits_equal_credits: CNY: posted debits 103023400 != credits 103023401"
    )
    with pytest.raises(InvariantViolation, match="debits_equal_credits: CNY: posted debits"):
        assert_invariants(corrupted)


def test_every_block_of_a_test_chain_checks_the_registered_invariants() -> None:
    """`Chain.block` (every payments test's chain, in memory and on a database) stops at the
    first block after which a registered invariant fails, naming it."""
    chain = sound_ledger()
    key = keys.pending("h-bank")
    chain.state.raw[key] = canonical({**chain.state.data[key], "status": "expired"})
    with pytest.raises(InvariantViolation, match=r"^balances_match_transfers: account carol-cny"):
        chain.advance(1)
