"""Governance: quorum-approved member and quorum changes, judged against state, replayed by verify.

A 4-member solo chain (weights 1, quorum 3).  Every refusal is checked for its code and for
changing nothing: no member record, no proposal record, the same member set in the node.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chain.helpers import ChainHarness, open_chain
from zhijin.chain.contract import GOVERNANCE_CONFIG_KEY, MEMBER_PREFIX
from zhijin.chain.crypto import KeyPair
from zhijin.chain.governance import (
    PROPOSAL_PREFIX,
    Approval,
    Proposal,
    approve,
    governance_args,
    make_proposal,
)
from zhijin.chain.membership import MembershipHistory
from zhijin.chain.verify import verify_chain

HOUR_MS = 3600 * 1000


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[ChainHarness]:
    harness = open_chain(f"sqlite:///{tmp_path / 'chain.db'}", members=4)
    try:
        yield harness
    finally:
        harness.store.close()


_ids = iter(range(1, 1_000_000))


def proposal(chain: ChainHarness, action: str, params: dict[str, Any], **over: Any) -> Proposal:
    fields: dict[str, Any] = {
        "chain_id": chain.genesis.chain_id,
        "action": action,
        "params": params,
        "proposal_id": f"test-proposal-{next(_ids)}",
        "valid_until_ms": chain.clock() + HOUR_MS,
    }
    fields.update(over)
    return make_proposal(**fields)


def run(
    chain: ChainHarness, prop: Proposal, approvals: list[Approval], method: str | None = None
) -> dict[str, Any]:
    submitter = KeyPair.generate()  # anyone may carry an approved proposal
    envelope = chain.envelope(
        submitter, "governance", method or prop.action, governance_args(prop, approvals)
    )
    return chain.run(envelope)


def approvals(chain: ChainHarness, prop: Proposal, *indices: int) -> list[Approval]:
    return [approve(chain.members[i], prop) for i in indices]


def newcomer() -> tuple[KeyPair, dict[str, Any]]:
    key = KeyPair.generate()
    return key, {"did": key.did, "name": "Coastal Trust Bank", "role": "bank", "weight": 1}


def state(chain: ChainHarness, key: str) -> Any:
    return chain.node.state_get(key)


def test_a_quorum_admits_a_member_who_can_then_vouch(chain: ChainHarness) -> None:
    key, params = newcomer()
    prop = proposal(chain, "add_member", params)
    result = run(chain, prop, approvals(chain, prop, 0, 1, 2))
    assert result["status"] == "ok", result
    assert result["return"] == {
        "proposal_id": prop.proposal_id,
        "action": "add_member",
        "members": 5,
        "total_weight": 5,
        "quorum_weight": 3,
    }
    (event,) = result["events"]
    assert event["type"] == "governance.member_added" and event["attrs"]["did"] == key.did
    assert state(chain, MEMBER_PREFIX + key.did)["weight"] == 1
    assert state(chain, PROPOSAL_PREFIX + prop.proposal_id)["action"] == "add_member"
    height = result["height"]
    assert not chain.node.membership.after(height - 1).is_member(key.did)
    assert chain.node.membership.after(height).is_member(key.did)
    # Admission reads members from state now: the new member may vouch for a customer.
    customer = KeyPair.generate()
    body = chain.body(customer, "notary", "anchor", {"hash": "ab" * 32})
    from zhijin.chain.tx import sign_tx

    vouched = sign_tx(key, body)
    assert chain.run(vouched)["status"] == "ok"
    assert verify_chain(chain.store, chain.genesis, chain.node.registry).ok


def _refused(chain: ChainHarness, result: dict[str, Any], code: str) -> None:
    assert result["status"] == "failed" and result["code"] == code, result
    assert len(chain.node.membership.change_heights()) == 1, "membership did not change"
    assert len(chain.node.membership.latest().members) == 4


def test_too_little_approval_weight_is_refused_and_changes_nothing(chain: ChainHarness) -> None:
    key, params = newcomer()
    prop = proposal(chain, "add_member", params)
    _refused(chain, run(chain, prop, approvals(chain, prop, 0, 1)), "approval_below_quorum")
    assert state(chain, MEMBER_PREFIX + key.did) is None
    assert state(chain, PROPOSAL_PREFIX + prop.proposal_id) is None


def test_a_forged_approval_is_refused(chain: ChainHarness) -> None:
    _, params = newcomer()
    prop = proposal(chain, "add_member", params)
    forger = KeyPair.generate()
    forged = Approval(chain.members[2].did, forger.sign(prop.signed_bytes()))
    result = run(chain, prop, [*approvals(chain, prop, 0, 1), forged])
    _refused(chain, result, "bad_approval_signature")
    # A genuine approval of another proposal does not transfer either.
    other = proposal(chain, "add_member", params)
    moved = approve(chain.members[2], other)
    result = run(chain, prop, [*approvals(chain, prop, 0, 1), moved])
    _refused(chain, result, "bad_approval_signature")


def test_a_non_member_approver_is_refused(chain: ChainHarness) -> None:
    key, params = newcomer()
    prop = proposal(chain, "add_member", params)
    outsider = approve(key, prop)  # the candidate approving itself
    result = run(chain, prop, [*approvals(chain, prop, 0, 1, 2), outsider])
    _refused(chain, result, "approver_not_member")


def test_a_duplicate_approver_is_refused(chain: ChainHarness) -> None:
    _, params = newcomer()
    prop = proposal(chain, "add_member", params)
    result = run(chain, prop, approvals(chain, prop, 0, 1, 1))
    _refused(chain, result, "duplicate_approver")


def test_replayed_expired_and_foreign_proposals_are_refused(chain: ChainHarness) -> None:
    _, params = newcomer()
    prop = proposal(chain, "add_member", params)
    assert run(chain, prop, approvals(chain, prop, 0, 1, 2))["status"] == "ok"
    replay = run(chain, prop, approvals(chain, prop, 0, 1, 2))
    assert replay["status"] == "failed" and replay["code"] == "proposal_used"

    _, params = newcomer()
    expired = proposal(chain, "add_member", params, valid_until_ms=chain.clock() - 1)
    result = run(chain, expired, approvals(chain, expired, 0, 1, 2))
    assert result["code"] == "proposal_expired"
    too_long = proposal(
        chain, "add_member", params, valid_until_ms=chain.clock() + 8 * 24 * HOUR_MS
    )
    result = run(chain, too_long, approvals(chain, too_long, 0, 1, 2))
    assert result["code"] == "proposal_validity_too_long"
    foreign = proposal(chain, "add_member", params, chain_id="another-chain")
    assert run(chain, foreign, approvals(chain, foreign, 0, 1, 2))["code"] == "wrong_chain"
    mismatched = proposal(chain, "add_member", params)
    result = run(chain, mismatched, approvals(chain, mismatched, 0, 1, 2), method="set_quorum")
    assert result["code"] == "bad_proposal"
    assert len(chain.node.membership.latest().members) == 5


def test_action_rules(chain: ChainHarness) -> None:
    existing = chain.members[3].did
    cases: list[tuple[str, dict[str, Any], str]] = [
        (
            "add_member",
            {"did": existing, "name": "Again", "role": "bank", "weight": 1},
            "member_exists",
        ),
        (
            "add_member",
            {"did": "did:key:nope", "name": "X", "role": "bank", "weight": 1},
            "bad_member",
        ),
        ("add_member", {**newcomer()[1], "role": "pirate"}, "bad_member"),
        ("add_member", {**newcomer()[1], "weight": 0}, "bad_member"),
        ("remove_member", {"did": KeyPair.generate().did}, "unknown_member"),
        ("remove_member", {"did": chain.members[0].did}, "member_is_orderer"),
        ("remove_member", {"did": existing, "quorum_weight": 4}, "quorum_unreachable"),
        ("set_weight", {"did": existing, "weight": 5}, "quorum_too_low"),
        ("set_quorum", {"quorum_weight": 2}, "quorum_too_low"),
        ("set_quorum", {"quorum_weight": 5}, "quorum_unreachable"),
        ("add_member", {**newcomer()[1], "quorum_weight": 2}, "quorum_too_low"),
    ]
    for action, params, code in cases:
        prop = proposal(chain, action, params)
        result = run(chain, prop, approvals(chain, prop, 0, 1, 2))
        assert result["status"] == "failed" and result["code"] == code, (action, params, result)
    assert len(chain.node.membership.change_heights()) == 1


def test_removals_stop_before_the_quorum_becomes_unreachable(chain: ChainHarness) -> None:
    first = proposal(chain, "remove_member", {"did": chain.members[3].did})
    result = run(chain, first, approvals(chain, first, 0, 1, 2))
    assert result["status"] == "ok" and result["events"][0]["type"] == "governance.member_removed"
    assert state(chain, MEMBER_PREFIX + chain.members[3].did) is None
    # Three members of weight 1, quorum 3: removing one more leaves 2 < 3.
    second = proposal(chain, "remove_member", {"did": chain.members[2].did})
    assert run(chain, second, approvals(chain, second, 0, 1, 2))["code"] == "quorum_unreachable"
    # The removed member's approval no longer counts.
    third = proposal(chain, "remove_member", {"did": chain.members[2].did, "quorum_weight": 2})
    result = run(chain, third, approvals(chain, third, 0, 1, 3))
    assert result["code"] == "approver_not_member"
    result = run(chain, third, approvals(chain, third, 0, 1, 2))
    assert result["status"] == "ok"
    assert chain.node.membership.latest().quorum_weight == 2
    assert verify_chain(chain.store, chain.genesis, chain.node.registry).ok


def test_weights_and_quorum_come_from_state(chain: ChainHarness) -> None:
    heavy = chain.members[1].did
    prop = proposal(chain, "set_weight", {"did": heavy, "weight": 3, "quorum_weight": 4})
    result = run(chain, prop, approvals(chain, prop, 0, 1, 2))
    assert result["status"] == "ok", result
    types = [e["type"] for e in result["events"]]
    assert types == ["governance.weight_changed", "governance.quorum_changed"]
    assert state(chain, GOVERNANCE_CONFIG_KEY)["quorum_weight"] == 4
    # Now member 1 weighs 3 and the quorum is 4: members 0 + 1 suffice, 0 + 2 + 3 do not...
    _, params = newcomer()
    weak = proposal(chain, "add_member", params)
    assert run(chain, weak, approvals(chain, weak, 0, 2, 3))["code"] == "approval_below_quorum"
    strong = proposal(chain, "add_member", params)
    assert run(chain, strong, approvals(chain, strong, 0, 1))["status"] == "ok"
    members = chain.node.membership.latest()
    assert (members.total_weight, members.quorum_weight) == (7, 4)
    # ...and a restarted node loads the same history from the database.
    loaded = MembershipHistory.load(chain.store)
    assert loaded.change_heights() == chain.node.membership.change_heights()
    for height in loaded.change_heights():
        assert loaded.after(height) == chain.node.membership.after(height)
    assert verify_chain(chain.store, chain.genesis, chain.node.registry).ok


def test_verify_judges_each_block_by_the_members_before_it(chain: ChainHarness) -> None:
    """A removed member's signature is refused from the block after its removal; a new
    member's from its admission block, but accepted on the block after."""
    leaving = chain.members[3]
    joining, params = newcomer()
    prop = proposal(chain, "remove_member", {"did": leaving.did})
    removed_at = run(chain, prop, approvals(chain, prop, 0, 1, 2))["height"]
    prop = proposal(chain, "add_member", params)
    added_at = run(chain, prop, approvals(chain, prop, 0, 1, 2))["height"]
    filler = chain.envelope(KeyPair.generate(), "notary", "anchor", {"hash": "cd" * 32})
    after = chain.run(filler)["height"]
    assert verify_chain(chain.store, chain.genesis, chain.node.registry).ok

    def sign(height: int, key: KeyPair) -> None:
        block = chain.store.get_block(height)
        assert block is not None
        chain.store.add_block_signatures(
            height, [{"signer": key.did, "signature": key.sign(block.header).hex()}]
        )

    sign(removed_at, leaving)  # still a member as of the block before: fine
    sign(after, joining)  # admitted by an earlier block: fine
    assert verify_chain(chain.store, chain.genesis, chain.node.registry).ok
    sign(added_at, joining)  # not yet a member when its admission block was judged
    report = verify_chain(chain.store, chain.genesis, chain.node.registry)
    assert not report.ok and report.bad_height == added_at
    assert "not a member" in (report.reason or "")


def test_a_removed_member_cannot_vouch(chain: ChainHarness) -> None:
    leaving = chain.members[3]
    prop = proposal(chain, "remove_member", {"did": leaving.did})
    assert run(chain, prop, approvals(chain, prop, 0, 1, 2))["status"] == "ok"
    from zhijin.chain.tx import sign_tx

    customer = KeyPair.generate()
    (admission,) = chain.submit(
        sign_tx(leaving, chain.body(customer, "notary", "anchor", {"hash": "ef" * 32}))
    )
    assert not admission.accepted and admission.code == "unauthorized_signer"


# -- property: whatever sequence of actions is tried, accepted ones keep quorums overlapping ----

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from zhijin.chain.contract import Member  # noqa: E402
from zhijin.chain.governance import GovernanceError, apply_action  # noqa: E402
from zhijin.chain.membership import MemberSet  # noqa: E402

_POOL = [KeyPair.from_seed(bytes([i]) * 32).did for i in range(1, 9)]
_action = st.one_of(
    st.tuples(
        st.just("add_member"),
        st.fixed_dictionaries(
            {
                "did": st.sampled_from(_POOL),
                "name": st.just("M"),
                "role": st.just("bank"),
                "weight": st.integers(1, 5),
            },
            optional={"quorum_weight": st.integers(1, 30)},
        ),
    ),
    st.tuples(
        st.just("remove_member"),
        st.fixed_dictionaries(
            {"did": st.sampled_from(_POOL)}, optional={"quorum_weight": st.integers(1, 30)}
        ),
    ),
    st.tuples(
        st.just("set_weight"),
        st.fixed_dictionaries(
            {"did": st.sampled_from(_POOL), "weight": st.integers(1, 5)},
            optional={"quorum_weight": st.integers(1, 30)},
        ),
    ),
    st.tuples(st.just("set_quorum"), st.fixed_dictionaries({"quorum_weight": st.integers(1, 30)})),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_action, max_size=30))
def test_accepted_changes_always_keep_quorums_overlapping(actions: list[Any]) -> None:
    members = MemberSet({_POOL[0]: Member(_POOL[0], "Orderer", "bank", 1)}, 1)
    for action, params in actions:
        try:
            after = apply_action(action, params, members, solo_orderer=_POOL[0])
        except GovernanceError:
            continue  # refused: nothing changes
        assert after.total_weight // 2 < after.quorum_weight <= after.total_weight
        assert _POOL[0] in after.members, "the solo orderer is never removed"
        members = after
