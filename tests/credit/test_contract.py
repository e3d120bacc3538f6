"""The credit contract: registry with maker-checker, policies as versioned data, decision
anchors, repayments; each refusal by its code and leaving state unchanged, retries idempotent."""

from __future__ import annotations

from typing import Any

import pytest

from tests.credit.helpers import CARD, POLICY, SHA_A, SHA_B, credit_chain, policy, register
from tests.payments.helpers import ALICE, BANK, FX_BANK, Call
from zhijin.credit.codes import MESSAGES, Code


def _call(method: str, args: dict[str, Any], sender: str = BANK.did) -> Call:
    return Call(method, args, sender, contract="credit")


@pytest.fixture
def chain() -> Any:
    return credit_chain()


def test_register_then_approve_by_a_second_officer(chain: Any) -> None:
    first = register(chain)
    assert first["exists"] is False and first["model"]["status"] == "registered"
    assert register(chain)["exists"] is True  # a retry answers like the first time
    approved = chain.ok(
        "approve_model", {"sha256": SHA_A, "approver": "u-checker"}, sender=BANK.did
    )
    assert approved["model"]["status"] == "approved"
    assert approved["model"]["approver"] == "u-checker"
    again = chain.ok("approve_model", {"sha256": SHA_A, "approver": "u-checker"}, sender=BANK.did)
    assert again["exists"] is True


def test_the_trainer_may_not_approve_their_own_model(chain: Any) -> None:
    register(chain, trainer="u-trainer")
    args = {"sha256": SHA_A, "approver": "u-trainer"}
    assert chain.fails("approve_model", args, sender=BANK.did) == Code.SELF_APPROVAL


def test_two_approvals_race_one_wins_the_other_is_refused(chain: Any) -> None:
    register(chain)
    outcomes = chain.block(
        [
            _call("approve_model", {"sha256": SHA_A, "approver": "u-one"}),
            _call("approve_model", {"sha256": SHA_A, "approver": "u-two"}),
        ]
    )
    assert [outcome.ok for outcome in outcomes] == [True, False]
    assert outcomes[1].code == Code.MODEL_ALREADY_APPROVED


def test_another_member_may_not_approve_and_a_user_is_not_a_member(chain: Any) -> None:
    register(chain)
    args = {"sha256": SHA_A, "approver": "u-other"}
    assert chain.fails("approve_model", args, sender=FX_BANK.did) == Code.NOT_AUTHORIZED
    # A user vouched for by the bank is not a member.
    assert chain.fails("approve_model", args, sender=ALICE, signer=BANK.did) == Code.NOT_MEMBER


def test_register_refusals_in_precedence_order(chain: Any) -> None:
    good = {"sha256": SHA_A, "name": "german", "version": "1", "card_sha256": CARD, "trainer": "u"}
    cases = [
        ({**good, "extra": 1}, Code.ARGS_INVALID),
        ({**good, "sha256": "A" * 64}, Code.SHA256_INVALID),
        ({**good, "sha256": "a" * 63, "name": "Bad Name"}, Code.SHA256_INVALID),
        ({**good, "name": "Bad Name"}, Code.MODEL_NAME_INVALID),
        ({**good, "version": ""}, Code.MODEL_VERSION_INVALID),
        ({**good, "card_sha256": 7}, Code.CARD_SHA256_INVALID),
        ({**good, "trainer": "x" * 65}, Code.OFFICER_INVALID),
    ]
    for args, code in cases:
        assert chain.fails("register_model", args, sender=BANK.did) == code, args
    assert chain.fails("register_model", good, sender=ALICE) == Code.NOT_MEMBER
    register(chain, trainer="u")
    other = {**good, "version": "2"}
    assert (
        chain.fails("register_model", other, sender=BANK.did) == Code.EXISTS_WITH_DIFFERENT_FIELDS
    )


def test_retired_models_neither_decide_nor_get_approved(chain: Any) -> None:
    register(chain)
    chain.ok("approve_model", {"sha256": SHA_A, "approver": "u-checker"}, sender=BANK.did)
    chain.ok("set_policy", _policy_args(1), sender=BANK.did)
    chain.ok("retire_model", {"sha256": SHA_A, "officer": "u-checker"}, sender=BANK.did)
    assert chain.fails("anchor_decision", _anchor("d-1"), sender=BANK.did) == (
        Code.MODEL_NOT_APPROVED
    )
    args = {"sha256": SHA_A, "approver": "u-other"}
    assert chain.fails("approve_model", args, sender=BANK.did) == Code.MODEL_RETIRED


def _policy_args(version: int, rules: Any = None, policy_id: str = "retail") -> dict[str, Any]:
    return {
        "policy_id": policy_id,
        "version": version,
        "rules": POLICY if rules is None else rules,
        "officer": "u-risk",
    }


def _anchor(decision_id: str, *, record: str = "e" * 64, model: str = SHA_A) -> dict[str, Any]:
    return {
        "decision_id": decision_id,
        "record_sha256": record,
        "model_sha256": model,
        "policy_id": "retail",
        "policy_version": 1,
    }


def test_policy_versions_run_in_order_and_retry(chain: Any) -> None:
    assert chain.ok("set_policy", _policy_args(1), sender=BANK.did)["exists"] is False
    assert chain.ok("set_policy", _policy_args(1), sender=BANK.did)["exists"] is True
    code = chain.fails("set_policy", _policy_args(3), sender=BANK.did)
    assert code == Code.POLICY_VERSION_OUT_OF_ORDER
    changed = policy(income_multiple=3)
    code = chain.fails("set_policy", _policy_args(1, changed), sender=BANK.did)
    assert code == Code.EXISTS_WITH_DIFFERENT_FIELDS
    assert chain.ok("set_policy", _policy_args(2, changed), sender=BANK.did)["exists"] is False
    code = chain.fails("set_policy", _policy_args(3, changed), sender=FX_BANK.did)
    assert code == Code.NOT_AUTHORIZED


def test_a_contradictory_policy_is_refused_when_saved_saying_why(chain: Any) -> None:
    bad = policy(decline={"points_below": 650, "pd_ppm_from": 450_000})
    outcome = chain.tx("set_policy", _policy_args(1, bad), sender=BANK.did)
    assert outcome.code == Code.POLICY_CONTRADICTORY
    assert "decline.points_below 650 is above approve.points_min 620" in (outcome.message or "")
    assert chain.state.get("credit/policy_head/retail") is None


def test_anchors_need_an_approved_model_and_a_saved_policy(chain: Any) -> None:
    register(chain)
    assert chain.fails("anchor_decision", _anchor("d-1"), sender=BANK.did) == (
        Code.MODEL_NOT_APPROVED
    )
    chain.ok("approve_model", {"sha256": SHA_A, "approver": "u-checker"}, sender=BANK.did)
    assert chain.fails("anchor_decision", _anchor("d-1"), sender=BANK.did) == Code.POLICY_NOT_FOUND
    chain.ok("set_policy", _policy_args(1), sender=BANK.did)
    code = chain.fails("anchor_decision", _anchor("d-1", model=SHA_B), sender=BANK.did)
    assert code == Code.MODEL_NOT_FOUND
    first = chain.ok("anchor_decision", _anchor("d-1"), sender=BANK.did)
    assert first["exists"] is False and first["anchor"]["record_sha256"] == "e" * 64
    assert chain.ok("anchor_decision", _anchor("d-1"), sender=BANK.did)["exists"] is True
    code = chain.fails("anchor_decision", _anchor("d-1", record="f" * 64), sender=BANK.did)
    assert code == Code.EXISTS_WITH_DIFFERENT_FIELDS
    code = chain.fails("anchor_decision", _anchor("d-2"), sender=FX_BANK.did)
    assert code == Code.NOT_AUTHORIZED  # another member's model


def test_repayments_are_recorded_once_and_paid_once(chain: Any) -> None:
    args = {"id": "r-1", "subject": ALICE, "due_at_ms": 1_000, "paid_at_ms": None}
    assert chain.ok("record_repayment", args, sender=BANK.did)["exists"] is False
    assert chain.ok("record_repayment", args, sender=BANK.did)["exists"] is True
    paid = chain.ok("record_repayment", {**args, "paid_at_ms": 2_000}, sender=BANK.did)
    assert paid["repayment"]["paid_at_ms"] == 2_000 and paid["exists"] is False
    code = chain.fails("record_repayment", {**args, "paid_at_ms": 3_000}, sender=BANK.did)
    assert code == Code.EXISTS_WITH_DIFFERENT_FIELDS
    bad = {**args, "id": "r-2", "due_at_ms": True}
    assert chain.fails("record_repayment", bad, sender=BANK.did) == Code.DUE_AT_INVALID
    bad = {**args, "id": "r-2", "subject": "alice"}
    assert chain.fails("record_repayment", bad, sender=BANK.did) == Code.SUBJECT_INVALID


def test_every_code_has_both_messages() -> None:
    for code in Code:
        zh, en = MESSAGES[code]
        assert zh and en and zh != en
