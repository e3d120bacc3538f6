"""Random sequences of credit operations (register, approve, retire, policy versions, anchors)
by two members and several officers: every block keeps every credit invariant (the test chain
checks them after each block), a refused tx changes nothing, and an anchor exists only for a
model that was approved and not retired when it was anchored."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.credit.helpers import CARD, POLICY, credit_chain, policy
from tests.payments.helpers import BANK, FX_BANK, Call

MODELS = ("a" * 64, "b" * 64, "c" * 64)
OFFICERS = ("u-1", "u-2", "u-3")
MEMBERS = (BANK.did, FX_BANK.did)
RULES = (POLICY, policy(income_multiple=3), policy(decline={"points_below": 700,
                                                             "pd_ppm_from": 450_000}))  # fmt: skip

operation = st.one_of(
    st.tuples(st.just("register_model"), st.sampled_from(MODELS), st.sampled_from(OFFICERS)),
    st.tuples(st.just("approve_model"), st.sampled_from(MODELS), st.sampled_from(OFFICERS)),
    st.tuples(st.just("retire_model"), st.sampled_from(MODELS), st.sampled_from(OFFICERS)),
    st.tuples(st.just("set_policy"), st.integers(1, 3), st.integers(0, len(RULES) - 1)),
    st.tuples(st.just("anchor_decision"), st.sampled_from(MODELS), st.integers(1, 3)),
)


def _args(op: tuple[Any, ...], index: int) -> dict[str, Any]:
    method = op[0]
    if method == "register_model":
        return {"sha256": op[1], "name": "m", "version": "1", "card_sha256": CARD,
                "trainer": op[2]}  # fmt: skip
    if method == "approve_model":
        return {"sha256": op[1], "approver": op[2]}
    if method == "retire_model":
        return {"sha256": op[1], "officer": op[2]}
    if method == "set_policy":
        return {"policy_id": "p", "version": op[1], "rules": RULES[op[2]], "officer": "u-1"}
    return {"decision_id": f"d-{index}", "record_sha256": "e" * 64, "model_sha256": op[1],
            "policy_id": "p", "policy_version": op[2]}  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    blocks=st.lists(
        st.lists(st.tuples(operation, st.sampled_from(MEMBERS)), min_size=1, max_size=4),
        min_size=1,
        max_size=8,
    )
)
def test_random_operations_keep_every_invariant(blocks: list[list[Any]]) -> None:
    chain = credit_chain()  # asserts credit's invariants after every block
    index = 0
    for block in blocks:
        calls = []
        for op, member in block:
            index += 1
            calls.append(Call(op[0], _args(op, index), member, contract="credit"))
        outcomes = chain.block(calls)
        for call, outcome in zip(calls, outcomes, strict=True):
            if call.method == "anchor_decision" and outcome.ok:
                model = chain.state.get(f"credit/model/{call.args['model_sha256']}")
                assert model["member"] == call.sender and model["approved_height"] is not None
            if call.method == "approve_model" and outcome.ok:
                model = chain.state.get(f"credit/model/{call.args['sha256']}")
                assert model["approver"] != model["trainer"]
            if call.method == "set_policy" and call.args["rules"] is RULES[2]:
                assert not outcome.ok and outcome.code == "policy_contradictory"
