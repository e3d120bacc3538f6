"""create_accounts and set_account_status: happy paths, idempotency, every bad input, authority."""

from __future__ import annotations

from typing import Any

import pytest

from zhijin.payments.records import AccountFlag

from .helpers import (
    ALICE,
    BANK,
    BOB,
    FX_BANK,
    INSURER,
    PLATFORM,
    REGULATOR,
    Chain,
    Member,
    account,
    world,
)

DMNEC = AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS.value
CMNED = AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS.value


def create(chain: Chain, items: list[Any], *, by: Member | str = BANK) -> list[dict[str, Any]]:
    sender = by if isinstance(by, str) else by.did
    value = chain.ok("create_accounts", {"accounts": items}, sender=sender)
    results: list[dict[str, Any]] = value["results"]
    return results


def test_open_account_records_owner_custodian_exponent_and_default_flags() -> None:
    chain = Chain()
    results = create(
        chain,
        [
            account("a-cny", ALICE),
            account("a-jpy", ALICE, "JPY"),
            account("s-cny", BANK.did, kind="settlement"),
        ],
    )
    assert results == [
        {"id": "a-cny", "result": "ok", "exists": False},
        {"id": "a-jpy", "result": "ok", "exists": False},
        {"id": "s-cny", "result": "ok", "exists": False},
    ]
    alice = chain.account("a-cny")
    assert (alice.owner, alice.custodian, alice.exponent, alice.status) == (
        ALICE,
        BANK.did,
        2,
        "open",
    )
    assert alice.flags == (DMNEC,)
    assert chain.account("a-jpy").exponent == 0
    assert chain.account("s-cny").flags == ()  # settlement is debit-normal
    assert [e["type"] for e in chain.events] == ["payments.account_created"] * 3


def test_retry_with_same_body_is_ok_and_flagged_exists() -> None:
    chain = Chain()
    item = account("a-cny", ALICE, reference="branch-7")
    first = create(chain, [item])[0]
    before = chain.state.data
    again = create(chain, [item])[0]
    assert again == {**first, "exists": True}
    assert chain.state.data == before
    # Spelling out the default flags is the same body.
    assert create(chain, [{**item, "flags": [DMNEC]}])[0]["exists"] is True


@pytest.mark.parametrize(
    "change",
    [
        {"owner": BOB},
        {"currency": "USD"},
        {"kind": "merchant"},
        {"credit_limit": 5},
        {"reference": "other"},
    ],
)
def test_retry_with_different_body_is_refused(change: dict[str, Any]) -> None:
    chain = Chain()
    create(chain, [account("a-cny", ALICE)])
    before = chain.state.data
    result = create(chain, [{**account("a-cny", ALICE), **change}])[0]
    assert result["result"] == "exists_with_different_fields"
    assert next(iter(change)) in result["message"]
    assert chain.state.data == before


GOOD = account("x-1", ALICE)


@pytest.mark.parametrize(
    ("item", "code"),
    [
        ([1, 2], "item_must_be_object"),
        ("x-1", "item_must_be_object"),
        ({**GOOD, "balance": 5}, "fields_unknown"),
        ({**GOOD, "id": ""}, "id_invalid"),
        ({**GOOD, "id": "a/b"}, "id_invalid"),
        ({**GOOD, "id": "a~fee"}, "id_invalid"),
        ({**GOOD, "id": "x" * 65}, "id_invalid"),
        ({**GOOD, "id": "bad\n"}, "id_invalid"),
        ({**GOOD, "id": 7}, "id_invalid"),
        ({k: v for k, v in GOOD.items() if k != "id"}, "id_invalid"),
        ({**GOOD, "owner": "alice"}, "owner_invalid"),
        ({**GOOD, "owner": "role:king"}, "owner_invalid"),
        ({**GOOD, "owner": "contract:Lending"}, "owner_invalid"),
        ({**GOOD, "owner": None}, "owner_invalid"),
        ({**GOOD, "currency": "XYZ"}, "currency_invalid"),
        ({**GOOD, "currency": "cny"}, "currency_invalid"),
        ({**GOOD, "currency": "DEM"}, "currency_invalid"),  # withdrawn
        ({**GOOD, "currency": "XAU"}, "currency_invalid"),  # not money a customer pays
        ({**GOOD, "currency": 156}, "currency_invalid"),
        ({**GOOD, "kind": "wallet"}, "kind_invalid"),
        ({**GOOD, "flags": ["overdraft"]}, "flags_invalid"),
        ({**GOOD, "flags": DMNEC}, "flags_invalid"),
        ({**GOOD, "flags": [DMNEC, DMNEC]}, "flags_invalid"),
        ({**GOOD, "flags": [DMNEC, CMNED]}, "flags_are_mutually_exclusive"),
        ({**GOOD, "flags": []}, "flags_invalid_for_kind"),
        ({**GOOD, "flags": [CMNED]}, "flags_invalid_for_kind"),
        ({**GOOD, "credit_limit": -1}, "credit_limit_invalid"),
        ({**GOOD, "credit_limit": 1.5}, "credit_limit_invalid"),
        ({**GOOD, "credit_limit": True}, "credit_limit_invalid"),
        ({**GOOD, "credit_limit": 2**63}, "credit_limit_invalid"),
        (
            {**account("s-1", BANK.did, kind="settlement"), "credit_limit": 10},
            "credit_limit_invalid",
        ),
        ({**GOOD, "reference": ""}, "reference_invalid"),
        ({**GOOD, "reference": "x" * 36}, "reference_invalid"),
        ({**GOOD, "reference": "tab\there"}, "reference_invalid"),
    ],
)
def test_bad_account_items_are_refused_with_stable_codes(item: Any, code: str) -> None:
    chain = Chain()
    before = chain.state.data
    result = create(chain, [item])[0]
    assert result["result"] == code, result
    assert chain.state.data == before


def test_precedence_reports_the_first_applicable_code() -> None:
    chain = Chain()
    bad_everything = {"id": "", "owner": "x", "currency": "XYZ", "kind": "wallet"}
    assert create(chain, [bad_everything])[0]["result"] == "id_invalid"
    assert create(chain, [{**bad_everything, "id": "ok"}])[0]["result"] == "owner_invalid"
    # An existing id with another body is reported before authority.
    create(chain, [account("a-1", ALICE)])
    result = create(chain, [account("a-1", BOB)], by=INSURER)[0]
    assert result["result"] == "exists_with_different_fields"


def test_items_of_a_batch_are_independent() -> None:
    chain = Chain()
    results = create(chain, [account("a-1", ALICE), {"id": "bad"}, account("b-1", BOB)])
    assert [r["result"] for r in results] == ["ok", "owner_invalid", "ok"]
    assert chain.account("a-1") and chain.account("b-1")


@pytest.mark.parametrize(
    "args",
    [{}, {"accounts": []}, {"accounts": "x"}, {"accounts": [{}] * 101}, {"accounts": [], "x": 1}],
)
def test_malformed_batch_fails_the_tx(args: Any) -> None:
    assert Chain().fails("create_accounts", args, sender=BANK.did) == "batch_invalid"


@pytest.mark.parametrize(
    ("by", "item", "code"),
    [
        (ALICE, account("a-1", ALICE), "not_authorized"),  # users do not open accounts
        (INSURER, account("a-1", ALICE), "not_authorized"),  # nor members outside banking
        (INSURER, account("i-fee", INSURER.did, kind="fee"), "ok"),  # its own books
        (BANK, account("f-1", FX_BANK.did, kind="fee"), "platform_account_owner_must_be_member"),
        (BANK, account("s-1", ALICE, kind="settlement"), "platform_account_owner_must_be_member"),
        (BANK, account("r-1", "role:bank", kind="settlement"), "ok"),
        (BANK, account("r-2", "role:platform", kind="settlement"), "not_authorized"),
        (PLATFORM, account("r-3", "role:platform", kind="fee"), "ok"),
        (BANK, account("e-1", "contract:escrow", kind="escrow"), "not_authorized"),
        (REGULATOR, account("a-1", ALICE), "not_authorized"),
        (PLATFORM, account("m-1", BOB, kind="merchant"), "ok"),
    ],
)
def test_who_may_open_which_account(by: Member | str, item: dict[str, Any], code: str) -> None:
    assert create(Chain(), [item], by=by)[0]["result"] == code


def test_a_member_vouching_for_a_user_opens_as_itself() -> None:
    chain = Chain()
    value = chain.ok(
        "create_accounts", {"accounts": [account("a-1", ALICE)]}, sender=ALICE, signer=BANK.did
    )
    assert value["ok"] == 1
    assert chain.account("a-1").custodian == BANK.did


# -- set_account_status ---------------------------------------------------------------------------


def status(account_id: str, value: str) -> dict[str, str]:
    return {"account_id": account_id, "status": value}


def test_custodian_and_regulator_freeze_and_unfreeze() -> None:
    chain = world()
    assert chain.ok("set_account_status", status("alice-cny", "frozen"), sender=BANK.did) == {
        "account_id": "alice-cny",
        "status": "frozen",
        "previous_status": "open",
        "changed": True,
    }
    again = chain.ok("set_account_status", status("alice-cny", "frozen"), sender=REGULATOR.did)
    assert again["changed"] is False
    chain.ok("set_account_status", status("alice-cny", "open"), sender=REGULATOR.did)
    assert chain.account("alice-cny").status == "open"


@pytest.mark.parametrize(
    ("args", "sender", "code"),
    [
        ({"account_id": "alice-cny"}, BANK.did, "status_invalid"),
        ([], BANK.did, "args_invalid"),
        ({**status("alice-cny", "open"), "why": "x"}, BANK.did, "args_invalid"),
        (status("alice cny", "frozen"), BANK.did, "account_id_invalid"),
        (status("alice-cny", "blocked"), BANK.did, "status_invalid"),
        (status("nobody", "frozen"), BANK.did, "account_not_found"),
        (status("alice-cny", "frozen"), ALICE, "not_authorized"),
        (status("alice-cny", "frozen"), FX_BANK.did, "not_authorized"),
        (status("alice-cny", "closed"), BANK.did, "account_balance_not_zero"),
    ],
)
def test_bad_status_changes(args: Any, sender: str, code: str) -> None:
    assert world().fails("set_account_status", args, sender=sender) == code


def test_vouching_does_not_lend_a_member_its_administrative_authority() -> None:
    chain = world()
    code = chain.fails(
        "set_account_status", status("alice-cny", "frozen"), sender=ALICE, signer=BANK.did
    )
    assert code == "not_authorized"


def test_close_needs_no_holds_and_a_zero_balance_and_is_final() -> None:
    chain = world()
    hold = chain.transfer(
        sender=ALICE,
        id="h-1",
        debit_account_id="alice-cny",
        credit_account_id="bob-cny",
        amount=1_000_000,
        currency="CNY",
        flags=["pending"],
    )
    assert hold["result"] == "ok"
    code = chain.fails("set_account_status", status("alice-cny", "closed"), sender=BANK.did)
    assert code == "account_has_pending_balance"
    chain.transfer(sender=ALICE, id="p-1", pending_id="h-1", flags=["post_pending_transfer"])
    assert chain.balance("alice-cny") == 0
    chain.ok("set_account_status", status("alice-cny", "closed"), sender=BANK.did)
    code = chain.fails("set_account_status", status("alice-cny", "open"), sender=BANK.did)
    assert code == "account_closed"
    refused = chain.transfer(
        sender=BOB,
        id="t-1",
        debit_account_id="bob-cny",
        credit_account_id="alice-cny",
        amount=1,
        currency="CNY",
    )
    assert refused["result"] == "credit_account_closed"
