"""Each credit invariant holds on a sound chain and names itself on a corrupted one."""

from __future__ import annotations

from typing import Any

from tests.credit.helpers import POLICY, SHA_A, credit_chain, register
from tests.payments.helpers import BANK
from zhijin.chain.memory import MemoryState
from zhijin.credit.invariants import check_invariants
from zhijin.credit.records import keys


def _sound() -> Any:
    chain = credit_chain()
    register(chain)
    chain.ok("approve_model", {"sha256": SHA_A, "approver": "u-checker"}, sender=BANK.did)
    policy = {"policy_id": "retail", "version": 1, "rules": POLICY, "officer": "u-risk"}
    chain.ok("set_policy", policy, sender=BANK.did)
    anchor = {
        "decision_id": "d-1",
        "record_sha256": "e" * 64,
        "model_sha256": SHA_A,
        "policy_id": "retail",
        "policy_version": 1,
    }
    chain.ok("anchor_decision", anchor, sender=BANK.did)
    assert check_invariants(chain.state) == []
    return chain


def _corrupted(chain: Any, key: str, change: dict[str, Any]) -> MemoryState:
    """A copy of the chain's state with one record's fields changed."""
    data = chain.state.data
    data[key] = {**data[key], **change}
    return MemoryState(data)


def _names(state: MemoryState) -> list[str]:
    return [problem.split(":", 1)[0] for problem in check_invariants(state)]


def test_a_self_approved_model_is_named() -> None:
    chain = _sound()
    state = _corrupted(chain, keys.model(SHA_A), {"approver": "u-trainer"})
    assert "models_are_maker_checked" in _names(state)


def test_an_approved_model_without_approver_is_named() -> None:
    chain = _sound()
    state = _corrupted(chain, keys.model(SHA_A), {"approver": None})
    assert "models_are_maker_checked" in _names(state)


def test_a_decision_before_its_models_approval_is_named() -> None:
    chain = _sound()
    state = _corrupted(chain, keys.model(SHA_A), {"approved_height": 99})
    assert "decisions_used_approved_models" in _names(state)


def test_a_decision_without_its_policy_is_named() -> None:
    chain = _sound()
    state = _corrupted(chain, keys.decision("d-1"), {"policy_version": 2})
    assert "decisions_used_approved_models" in _names(state)


def test_a_contradictory_or_missing_policy_version_is_named() -> None:
    chain = _sound()
    bad_rules = {**POLICY, "decline": {"points_below": 700, "pd_ppm_from": 450_000}}
    state = _corrupted(chain, keys.policy("retail", 1), {"rules": bad_rules})
    assert _names(state) == ["policies_are_coherent"]
    state = _corrupted(chain, keys.policy_head("retail"), {"version": 2})
    assert _names(state) == ["policies_are_coherent"]
