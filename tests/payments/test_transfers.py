"""Single-phase transfers: booking, idempotency, every bad input, authority, limits, batches,
linked chains and the helpers other contracts call."""

from __future__ import annotations

from typing import Any

import pytest

from zhijin.chain.contract import Context, Contract
from zhijin.chain.errors import ContractError
from zhijin.payments import limits

from .helpers import (
    ALICE,
    BANK,
    BOB,
    FX_BANK,
    INSURER,
    MALLORY,
    PLATFORM,
    Call,
    Chain,
    account,
    world,
)


def pay(transfer_id: str = "t-1", amount: Any = 100, **fields: Any) -> dict[str, Any]:
    return {
        "id": transfer_id,
        "debit_account_id": "alice-cny",
        "credit_account_id": "bob-cny",
        "amount": amount,
        "currency": "CNY",
        **fields,
    }


@pytest.fixture
def chain() -> Chain:
    return world()


def test_a_transfer_moves_posted_balances_and_emits_an_event(chain: Chain) -> None:
    before = (chain.balance("alice-cny"), chain.balance("bob-cny"))
    chain.events.clear()
    assert chain.transfer(sender=ALICE, **pay(amount=12_345)) == {
        "id": "t-1",
        "result": "ok",
        "exists": False,
    }
    assert chain.balance("alice-cny") == before[0] - 12_345
    assert chain.balance("bob-cny") == before[1] + 12_345
    (event,) = chain.events
    assert event["type"] == "payments.transfer_created"
    assert event["attrs"]["amount"] == 12_345
    assert event["attrs"]["kind"] == "transfer"


def test_retry_answers_like_the_first_and_moves_nothing(chain: Chain) -> None:
    first = chain.transfer(sender=ALICE, **pay(reference="INV-1"))
    before = chain.state.data
    again = chain.transfer(sender=ALICE, **pay(reference="INV-1"))
    assert again == {**first, "exists": True}
    assert chain.state.data == before
    # Even after the accounts changed state, a retry is still "ok".
    chain.ok("set_account_status", {"account_id": "bob-cny", "status": "frozen"}, sender=BANK.did)
    assert chain.transfer(sender=ALICE, **pay(reference="INV-1"))["exists"] is True


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": 101}, "amount"),
        ({"credit_account_id": "carol-cny"}, "credit_account_id"),
        ({"reference": "other"}, "reference"),
        ({"flags": ["pending"]}, "flags"),
    ],
)
def test_same_id_with_another_body_is_refused(
    chain: Chain, change: dict[str, Any], field: str
) -> None:
    chain.transfer(sender=ALICE, **pay())
    before = chain.state.data
    result = chain.transfer(sender=ALICE, **{**pay(), **change})
    assert result["result"] == "exists_with_different_fields"
    assert field in result["message"]
    assert chain.state.data == before


def test_a_refused_transfer_is_not_recorded_so_its_id_stays_free(chain: Chain) -> None:
    assert chain.transfer(sender=ALICE, **pay(amount=10**9))["result"] == "exceeds_credits"
    assert chain.transfer(sender=ALICE, **pay(amount=10))["result"] == "ok"


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        (-1, "amount_must_be_positive"),
        (0, "amount_must_be_positive"),
        (-(2**63), "amount_must_be_positive"),
        (1.0, "amount_must_be_integer"),
        (0.5, "amount_must_be_integer"),
        (float("nan"), "amount_must_be_integer"),
        (True, "amount_must_be_integer"),
        ("100", "amount_must_be_integer"),
        (None, "amount_must_be_integer"),
        ([100], "amount_must_be_integer"),
        (2**63, "amount_exceeds_maximum"),
        (10**30, "amount_exceeds_maximum"),
        (2**63 - 1, "overflows_credits"),  # precedence: overflow before balance
    ],
)
def test_bad_amounts_get_stable_codes_and_change_nothing(
    chain: Chain, amount: Any, code: str
) -> None:
    before = chain.state.data
    assert chain.transfer(sender=ALICE, **pay(amount=amount))["result"] == code
    assert chain.state.data == before


def test_a_missing_amount_is_not_an_integer(chain: Chain) -> None:
    item = {k: v for k, v in pay().items() if k != "amount"}
    assert chain.transfer(sender=ALICE, **item)["result"] == "amount_must_be_integer"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"id": "t/1"}, "id_invalid"),
        ({"id": "t~fee"}, "id_invalid"),
        ({"memo": "x"}, "fields_unknown"),
        ({"flags": ["urgent"]}, "flags_invalid"),
        ({"flags": "linked"}, "flags_invalid"),
        ({"debit_account_id": None}, "debit_account_id_invalid"),
        ({"debit_account_id": "a b"}, "debit_account_id_invalid"),
        ({"credit_account_id": 5}, "credit_account_id_invalid"),
        ({"credit_account_id": "alice-cny"}, "accounts_must_be_different"),
        ({"currency": "RMB"}, "currency_invalid"),
        ({"currency": None}, "currency_invalid"),
        ({"product": "Gold Card"}, "product_invalid"),
        ({"reference": "x" * 36}, "reference_invalid"),
        ({"debit_account_id": "nobody"}, "debit_account_not_found"),
        ({"credit_account_id": "nobody"}, "credit_account_not_found"),
        ({"currency": "USD"}, "currency_mismatch"),
        ({"credit_account_id": "bob-usd"}, "currency_mismatch"),
        ({"product": "unknown"}, "fee_schedule_not_found"),
    ],
)
def test_bad_transfer_fields(chain: Chain, change: dict[str, Any], code: str) -> None:
    before = chain.state.data
    assert chain.transfer(sender=ALICE, **{**pay(), **change})["result"] == code
    assert chain.state.data == before


def test_precedence_reports_the_first_applicable_code(chain: Chain) -> None:
    # Invalid amount and unknown account: the stateless check wins.
    item = pay(amount=-5, debit_account_id="nobody")
    assert chain.transfer(sender=ALICE, **item)["result"] == "amount_must_be_positive"
    # Unknown account and not authorised: not found comes first.
    item = pay(credit_account_id="nobody")
    assert chain.transfer(sender=MALLORY, **item)["result"] == "credit_account_not_found"
    # Not authorised and frozen: authority is checked before status.
    chain.ok("set_account_status", {"account_id": "alice-cny", "status": "frozen"}, sender=BANK.did)
    assert chain.transfer(sender=MALLORY, **pay())["result"] == "not_authorized"
    assert chain.transfer(sender=ALICE, **pay())["result"] == "debit_account_frozen"


def test_frozen_and_closed_accounts_neither_pay_nor_receive(chain: Chain) -> None:
    chain.ok("set_account_status", {"account_id": "bob-cny", "status": "frozen"}, sender=BANK.did)
    assert chain.transfer(sender=ALICE, **pay())["result"] == "credit_account_frozen"
    reverse = pay(debit_account_id="bob-cny", credit_account_id="alice-cny")
    assert chain.transfer(sender=BOB, **reverse)["result"] == "debit_account_frozen"
    chain.open_accounts([account("z-cny", ALICE)])
    chain.ok("set_account_status", {"account_id": "z-cny", "status": "closed"}, sender=BANK.did)
    assert chain.transfer(sender=ALICE, **pay(credit_account_id="z-cny"))["result"] == (
        "credit_account_closed"
    )
    assert chain.transfer(sender=ALICE, **pay(debit_account_id="z-cny"))["result"] == (
        "debit_account_closed"
    )


# -- authority ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "signer", "expected"),
    [
        (ALICE, None, "ok"),  # the owner signs
        (ALICE, PLATFORM.did, "ok"),  # the gateway vouches for the owner
        (ALICE, BANK.did, "ok"),
        (ALICE, INSURER.did, "not_authorized"),  # an insurer does not run the payment gateway
        (MALLORY, None, "not_authorized"),
        (MALLORY, PLATFORM.did, "not_authorized"),  # vouching for a non-owner grants nothing
        (BANK.did, None, "ok"),  # the custodian bank acting in its own name
        (MALLORY, BANK.did, "not_authorized"),  # ...but not while vouching for someone else
        (FX_BANK.did, None, "not_authorized"),  # another bank is not the custodian
        (PLATFORM.did, None, "not_authorized"),
    ],
)
def test_who_may_debit_alice(chain: Chain, sender: str, signer: str | None, expected: str) -> None:
    assert chain.transfer(sender=sender, signer=signer, **pay())["result"] == expected


def test_no_member_vouches_for_another_members_account(chain: Chain) -> None:
    move: dict[str, Any] = {
        "id": "m-1",
        "debit_account_id": "settle-cny",
        "credit_account_id": "bob-cny",
        "amount": 5,
        "currency": "CNY",
    }
    assert chain.transfer(sender=BANK.did, signer=PLATFORM.did, **move)["result"] == (
        "not_authorized"
    )
    assert chain.transfer(sender=BANK.did, **move)["result"] == "ok"


def test_role_owned_accounts_are_operated_by_any_member_with_the_role() -> None:
    chain = Chain()
    chain.open_accounts(
        [account("ops", "role:bank", kind="settlement"), account("a-cny", ALICE)], by=BANK
    )
    move: dict[str, Any] = {
        "id": "r-1",
        "debit_account_id": "ops",
        "credit_account_id": "a-cny",
        "amount": 5,
        "currency": "CNY",
    }
    assert chain.transfer(sender=FX_BANK.did, **move)["result"] == "ok"
    assert chain.transfer(sender=PLATFORM.did, **{**move, "id": "r-2"})["result"] == (
        "not_authorized"
    )
    vouched = chain.transfer(sender=ALICE, signer=BANK.did, **{**move, "id": "r-3"})
    assert vouched["result"] == "not_authorized"


# -- limits ---------------------------------------------------------------------------------------


def test_debits_must_not_exceed_credits_counts_to_the_last_unit(chain: Chain) -> None:
    balance = chain.balance("alice-cny")
    assert chain.transfer(sender=ALICE, **pay(amount=balance + 1))["result"] == "exceeds_credits"
    assert chain.transfer(sender=ALICE, **pay(amount=balance))["result"] == "ok"
    assert chain.balance("alice-cny") == 0


def test_a_credit_limit_allows_exactly_that_overdraft() -> None:
    chain = Chain()
    chain.open_accounts(
        [
            account("a", ALICE, credit_limit=500),
            account("b", BOB),
            account("s", BANK.did, kind="settlement"),
        ]
    )
    move = {"debit_account_id": "a", "credit_account_id": "b", "currency": "CNY"}
    assert chain.transfer(sender=ALICE, id="1", amount=501, **move)["result"] == "exceeds_credits"
    assert chain.transfer(sender=ALICE, id="2", amount=500, **move)["result"] == "ok"
    assert chain.balance("a") == -500


def test_credits_must_not_exceed_debits() -> None:
    chain = Chain()
    chain.open_accounts(
        [
            account("loan", BANK.did, kind="loan", flags=["credits_must_not_exceed_debits"]),
            account("a", ALICE),
            account("s", BANK.did, kind="settlement"),
        ]
    )
    move = {"currency": "CNY", "credit_account_id": "a"}
    assert (
        chain.transfer(sender=BANK.did, id="dep", debit_account_id="s", amount=5_000, **move)[
            "result"
        ]
        == "ok"
    )
    assert (
        chain.transfer(sender=BANK.did, id="d", debit_account_id="loan", amount=1_000, **move)[
            "result"
        ]
        == "ok"
    )
    repay = {"debit_account_id": "a", "credit_account_id": "loan", "currency": "CNY"}
    assert chain.transfer(sender=ALICE, id="r1", amount=1_001, **repay)["result"] == (
        "exceeds_debits"
    )
    assert chain.transfer(sender=ALICE, id="r2", amount=1_000, **repay)["result"] == "ok"


def test_counters_never_pass_the_int64_limit() -> None:
    chain = Chain()
    chain.open_accounts(
        [
            account("s1", BANK.did, kind="settlement"),
            account("s2", BANK.did, kind="settlement"),
            account("a", ALICE),
        ]
    )
    big: dict[str, Any] = {"amount": limits.AMOUNT_MAX, "currency": "CNY"}
    assert (
        chain.transfer(
            sender=BANK.did, id="1", debit_account_id="s1", credit_account_id="a", **big
        )["result"]
        == "ok"
    )
    one: dict[str, Any] = {"amount": 1, "currency": "CNY"}
    result = chain.transfer(
        sender=BANK.did, id="2", debit_account_id="s2", credit_account_id="a", **one
    )
    assert result["result"] == "overflows_credits"
    result = chain.transfer(
        sender=BANK.did, id="3", debit_account_id="s1", credit_account_id="s2", **one
    )
    assert result["result"] == "overflows_debits"


# -- batches and linked chains --------------------------------------------------------------------


def test_independent_items_succeed_or_fail_alone(chain: Chain) -> None:
    items: list[Any] = [pay("a", 1), pay("b", -1), pay("c", 10**12), pay("d", 2), "junk"]
    results = chain.transfers(items, sender=ALICE)
    assert [r["result"] for r in results] == [
        "ok",
        "amount_must_be_positive",
        "exceeds_credits",
        "ok",
        "item_must_be_object",
    ]
    assert [r["id"] for r in results] == ["a", "b", "c", "d", None]


def test_a_repeated_id_in_one_batch_is_a_retry(chain: Chain) -> None:
    results = chain.transfers([pay("a", 1), pay("a", 1), pay("a", 2)], sender=ALICE)
    assert [(r["result"], r.get("exists")) for r in results] == [
        ("ok", False),
        ("ok", True),
        ("exists_with_different_fields", None),
    ]


def test_a_linked_chain_is_all_or_nothing(chain: Chain) -> None:
    before = chain.state.data
    results = chain.transfers(
        [
            pay("l1", 10, flags=["linked"]),
            pay("l2", 10**12, flags=["linked"]),
            pay("l3", 10),
            pay("free", 1),
        ],
        sender=ALICE,
    )
    assert [r["result"] for r in results] == [
        "linked_event_failed",
        "exceeds_credits",
        "linked_event_failed",
        "ok",
    ]
    after = chain.state.data
    assert "payments/transfer/l1" not in after and "payments/transfer/free" in after
    assert chain.balance("alice-cny") == before["payments/account/alice-cny"]["credits_posted"] - (
        before["payments/account/alice-cny"]["debits_posted"] + 1
    )


def test_a_linked_chain_moving_one_balance_twice_sees_its_own_effects(chain: Chain) -> None:
    # Alice pays Bob everything, then Bob passes it on: only possible if the chain sees step 1.
    everything = chain.balance("alice-cny") + chain.balance("bob-cny")
    results = chain.transfers(
        [
            pay("x1", chain.balance("alice-cny"), flags=["linked"]),
            pay("x2", everything, debit_account_id="bob-cny", credit_account_id="carol-cny"),
        ],
        sender=ALICE,
    )
    # Alice may not debit Bob's account: the whole chain fails, and nothing moved.
    assert [r["result"] for r in results] == ["linked_event_failed", "not_authorized"]
    assert chain.balance("alice-cny") == everything - chain.balance("bob-cny")


def test_a_chain_left_open_fails(chain: Chain) -> None:
    results = chain.transfers(
        [pay("a", 1), pay("b", 1, flags=["linked"]), pay("c", 1, flags=["linked"])], sender=ALICE
    )
    assert [r["result"] for r in results] == [
        "ok",
        "linked_event_failed",
        "linked_event_chain_open",
    ]


def test_an_invalid_linked_item_fails_its_chain(chain: Chain) -> None:
    results = chain.transfers([pay("a", 1, flags=["linked", "bogus"]), pay("b", 1)], sender=ALICE)
    assert [r["result"] for r in results] == ["flags_invalid", "linked_event_failed"]


@pytest.mark.parametrize(
    "args",
    [
        {},
        {"transfers": []},
        {"transfers": {}},
        {"transfers": [pay()] * (limits.TRANSFERS_PER_BATCH_MAX + 1)},
        {"transfer": [pay()]},
    ],
)
def test_malformed_batches_fail_the_tx(chain: Chain, args: Any) -> None:
    assert chain.fails("create_transfers", args, sender=ALICE) == "batch_invalid"


def test_a_full_batch_fits_the_chain_limits(chain: Chain) -> None:
    items = [
        pay(f"f{i}", 1, product=None) if i % 2 else pay(f"f{i}", 1)
        for i in range(limits.TRANSFERS_PER_BATCH_MAX)
    ]
    results = chain.transfers(
        [{k: v for k, v in i.items() if v is not None} for i in items], sender=ALICE
    )
    assert all(r["result"] == "ok" for r in results)


# -- contract-to-contract helpers -----------------------------------------------------------------


def _release(ctx: Context, args: dict[str, Any]) -> Any:
    return ctx.call("payments", "transfer", args)


def _open(ctx: Context, args: dict[str, Any]) -> Any:
    return ctx.call("payments", "create_accounts", args)


def _swallow(ctx: Context, args: dict[str, Any]) -> Any:
    try:
        ctx.call("payments", "transfer", args)
    except ContractError as error:
        return error.code
    return "ok"


def _peek(ctx: Context, args: dict[str, Any]) -> Any:
    return {
        "account": ctx.call("payments", "get_account", {"account_id": args["account_id"]}),
        "transfer": ctx.call("payments", "get_transfer", {"transfer_id": args["transfer_id"]}),
    }


ESCROW = Contract(
    name="escrow",
    version="1",
    methods={"release": _release, "open": _open, "swallow": _swallow, "peek": _peek},
)


@pytest.fixture
def escrow_chain() -> Chain:
    chain = world(contracts=[ESCROW])
    opened = chain.block(
        [
            Call(
                "open",
                {"accounts": [account("escrow-1", "contract:escrow", kind="escrow")]},
                ALICE,
                contract="escrow",
            )
        ]
    )[0]
    assert opened.ok and opened.value["ok"] == 1, opened
    assert (
        chain.transfer(sender=ALICE, **pay("fund", 5_000, credit_account_id="escrow-1"))["result"]
        == "ok"
    )
    return chain


def release(amount: Any = 1_000, **fields: Any) -> dict[str, Any]:
    return pay("rel-1", amount, debit_account_id="escrow-1", credit_account_id="bob-cny", **fields)


def test_only_the_owning_contract_debits_its_accounts(escrow_chain: Chain) -> None:
    chain = escrow_chain
    assert chain.transfer(sender=ALICE, **release())["result"] == "not_authorized"
    outcome = chain.block([Call("release", release(), ALICE, contract="escrow")])[0]
    assert outcome.ok and outcome.value == {"id": "rel-1", "result": "ok", "exists": False}
    assert chain.balance("escrow-1") == 4_000


def test_helpers_cannot_be_called_by_a_tx(escrow_chain: Chain) -> None:
    for method in ("transfer", "get_account", "get_transfer"):
        assert escrow_chain.fails(method, release(), sender=ALICE) == "unknown_method"


def test_a_refused_helper_call_raises_and_leaves_nothing(escrow_chain: Chain) -> None:
    chain = escrow_chain
    before = chain.state.data
    failed = chain.block([Call("release", release(10**9), ALICE, contract="escrow")])[0]
    assert (failed.ok, failed.code) == (False, "exceeds_credits")
    caught = chain.block([Call("swallow", release(10**9), ALICE, contract="escrow")])[0]
    assert caught.ok and caught.value == "exceeds_credits"
    assert chain.state.data == before
    linked = chain.block([Call("release", release(flags=["linked"]), ALICE, contract="escrow")])[0]
    assert linked.code == "linked_event_chain_open"


def test_read_helpers(escrow_chain: Chain) -> None:
    outcome = escrow_chain.block(
        [Call("peek", {"account_id": "escrow-1", "transfer_id": "fund"}, ALICE, contract="escrow")]
    )[0]
    assert outcome.ok
    assert outcome.value["account"]["credits_posted"] == 5_000
    assert outcome.value["transfer"]["amount"] == 5_000
    assert outcome.value["transfer"]["pending"] is None
    missing = escrow_chain.block(
        [Call("peek", {"account_id": "nope", "transfer_id": "fund"}, ALICE, contract="escrow")]
    )[0]
    assert missing.code == "account_not_found"
    missing = escrow_chain.block(
        [Call("peek", {"account_id": "escrow-1", "transfer_id": "nope"}, ALICE, contract="escrow")]
    )[0]
    assert missing.code == "transfer_not_found"


def test_a_contract_cannot_open_accounts_for_another_contract() -> None:
    chain = Chain(contracts=[ESCROW])
    outcome = chain.block(
        [
            Call(
                "open",
                {"accounts": [account("l-1", "contract:lending", kind="loan")]},
                BANK.did,
                contract="escrow",
            )
        ]
    )[0]
    assert outcome.value["results"][0]["result"] == "not_authorized"


@pytest.mark.parametrize(
    ("length", "code"),
    [
        (limits.TRANSFER_ID_CHARS_MAX, "transfer_not_found"),
        (limits.TRANSFER_ID_CHARS_MAX + 1, "id_invalid"),
    ],
)
def test_get_transfer_takes_ids_up_to_the_transfer_id_limit(
    escrow_chain: Chain, length: int, code: str
) -> None:
    """The contract's bound on a transfer id (the API's transfer paths take the same one)."""
    peek = {"account_id": "escrow-1", "transfer_id": "t" * length}
    outcome = escrow_chain.block([Call("peek", peek, ALICE, contract="escrow")])[0]
    assert outcome.code == code
