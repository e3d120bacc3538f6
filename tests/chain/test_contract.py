"""The contract runtime's write API and the prefetch hint, alone and through the node."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhijin.chain import limits
from zhijin.chain.codec import INT_MAX, INT_MIN, canonical
from zhijin.chain.contract import (
    MEMBER_PREFIX,
    BlockInfo,
    BlockState,
    Context,
    Contract,
    ContractRegistry,
    TxInfo,
    execute_tx,
)
from zhijin.chain.errors import ContractError, EncodingError, InvariantViolation
from zhijin.chain.memory import MemoryState
from zhijin.chain.tx import sign_batch
from zhijin.node.modules import default_registry
from zhijin.payments.contract import PAYMENTS_CONTRACT

from .helpers import open_chain

TX = TxInfo(
    tx_hash="ab" * 32,
    sender="did:key:sender",
    signer="did:key:sender",
    nonce=1,
    contract="probe",
    method="touch",
)
TX_RUN = TxInfo(
    tx_hash="cd" * 32,
    sender="did:key:sender",
    signer="did:key:sender",
    nonce=2,
    contract="probe",
    method="run",
)
BLOCK = BlockInfo(chain_id="zhijin-test", height=1, time_ms=1_790_000_000_000)


def context() -> Context:
    return Context(
        registry=ContractRegistry(),
        state=BlockState(MemoryState()),
        tx=TX,
        block=BLOCK,
        contract="probe",
    )


RECORD = {"id": "t1", "amount": 5, "flags": ["linked"], "owner": None}


def test_put_with_event_stages_and_emits_like_put_then_emit() -> None:
    combined, separate = context(), context()
    combined.put("probe/t1", RECORD, event="created")
    separate.put("probe/t1", RECORD)
    separate.emit("created", **RECORD)
    assert combined.staged() == separate.staged()
    _staged, events = combined.staged()
    assert events == [{"type": "probe.created", "attrs": RECORD}]
    assert events[0]["attrs"] is not RECORD  # the event keeps the value as written


def test_put_with_event_refuses_a_bad_value_and_keeps_nothing() -> None:
    ctx = context()
    with pytest.raises(EncodingError):
        ctx.put("probe/t1", {"amount": 1.5}, event="created")
    assert ctx.staged() == ({}, [])


def test_put_with_event_needs_an_object_and_a_key_of_its_own() -> None:
    ctx = context()
    with pytest.raises(InvariantViolation):
        ctx.put("probe/t1", ["not", "an", "object"], event="created")
    with pytest.raises(InvariantViolation):
        ctx.put("notary/t1", RECORD, event="created")
    assert ctx.staged() == ({}, [])


def test_put_with_event_counts_against_the_event_bound() -> None:
    ctx = context()
    for i in range(limits.EVENTS_PER_TX_MAX):
        ctx.emit("noise", i=i)
    with pytest.raises(ContractError) as refused:
        ctx.put("probe/t1", RECORD, event="created")
    assert refused.value.code == "too_many_events"
    assert "probe/t1" not in ctx.staged()[0]


def test_block_state_reads_return_fresh_copies_of_staged_values() -> None:
    state = BlockState(MemoryState({"probe/a": {"n": 1}}))
    ctx = Context(registry=ContractRegistry(), state=state, tx=TX, block=BLOCK, contract="probe")
    ctx.put("probe/b", {"n": 2})
    first = ctx.get("probe/b")
    first["n"] = 3
    assert ctx.get("probe/b") == {"n": 2}
    assert ctx.get("probe/a") == {"n": 1}


def payments_prefetch(*, vouched: bool) -> list[str]:
    tx = TxInfo(
        tx_hash="ab" * 32,
        sender="did:key:user",
        signer="did:key:member" if vouched else "did:key:user",
        nonce=1,
        contract="payments",
        method="create_transfers",
        vouched=vouched,
    )
    args = {"transfers": [{"id": "t1", "debit_account_id": "a", "credit_account_id": "b"}]}
    assert PAYMENTS_CONTRACT.prefetch is not None
    return PAYMENTS_CONTRACT.prefetch(tx, args)


def test_payments_prefetch_asks_for_the_sender_member_key_only_when_vouched() -> None:
    member_key = MEMBER_PREFIX + "did:key:user"
    assert member_key in payments_prefetch(vouched=True)
    assert member_key not in payments_prefetch(vouched=False)
    assert set(payments_prefetch(vouched=False)) == {
        "payments/transfer/t1",
        "payments/account/a",
        "payments/account/b",
    }


def test_node_gives_prefetch_the_tx_with_signer_and_vouched(db_url: str) -> None:
    seen: list[tuple[TxInfo, dict[str, Any]]] = []

    def prefetch(tx: TxInfo, args: dict[str, Any]) -> list[str]:
        seen.append((tx, args))
        return ["probe/" + args["id"]]

    def touch(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        ctx.put("probe/" + args["id"], {"by": ctx.tx.sender}, event="touched")
        return {"id": args["id"]}

    registry = default_registry()
    registry.register(
        Contract(name="probe", version="1", methods={"touch": touch}, prefetch=prefetch)
    )
    chain = open_chain(db_url, registry=registry)
    try:
        user = chain.users[0]
        own = chain.envelope(user, "probe", "touch", {"id": "own"})
        vouched = sign_batch(
            chain.members[0], [chain.body(user, "probe", "touch", {"id": "vouched"})]
        )
        answers = [*chain.submit(own), *chain.submit(vouched)]
        assert all(answer.accepted for answer in answers)
        chain.commit()
        results = [answer.future.result(timeout=5) for answer in answers if answer.future]
        assert [r["events"] for r in results] == [
            [{"type": "probe.touched", "attrs": {"by": user.did}}]
        ] * 2
        by_id = {args["id"]: tx for tx, args in seen}
        assert by_id["own"].vouched is False and by_id["own"].signer == user.did
        assert by_id["vouched"].vouched is True
        assert by_id["vouched"].signer == chain.members[0].did
        assert by_id["vouched"].sender == user.did
        assert by_id["vouched"].method == "touch" and by_id["vouched"].contract == "probe"
        assert by_id["own"].tx_hash == answers[0].tx_hash
    finally:
        chain.store.close()


def json_objects() -> st.SearchStrategy[dict[str, Any]]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=INT_MIN, max_value=INT_MAX)
        | st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
    )
    values = st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(
                st.text(st.characters(exclude_categories=("Cs",)), max_size=4), children, max_size=3
            )
        ),
        max_leaves=10,
    )
    return st.dictionaries(
        st.text(st.characters(exclude_categories=("Cs",)), max_size=6), values, max_size=4
    )


@given(st.lists(json_objects(), max_size=4), json_objects(), st.booleans())
@settings(max_examples=150, deadline=None)
def test_outcome_bytes_are_the_canonical_encoding_of_its_json(
    events: list[dict[str, Any]], value: dict[str, Any], nested: bool
) -> None:
    def inner(ctx: Context, args: dict[str, Any]) -> None:
        ctx.emit("inner", **args)

    def method(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        for i, attrs in enumerate(events):
            if i % 2:
                ctx.put(f"probe/{i}", attrs, event="stored")
            else:
                ctx.emit("plain", **attrs)
            if nested:
                ctx.call("probe", "inner", {"i": i})
        return value

    registry = ContractRegistry(
        [Contract(name="probe", version="1", methods={"run": method, "inner": inner})]
    )
    outcome = execute_tx(registry, BlockState(MemoryState()), TX_RUN, BLOCK, {})
    assert outcome.ok
    assert outcome.encoded() == canonical(outcome.to_json())


def test_failed_outcome_bytes_are_canonical_too() -> None:
    def method(ctx: Context, args: dict[str, Any]) -> Any:
        ctx.emit("lost", n=1)
        return {"amount": 1.5}

    registry = ContractRegistry([Contract(name="probe", version="1", methods={"run": method})])
    outcome = execute_tx(registry, BlockState(MemoryState()), TX_RUN, BLOCK, {})
    assert not outcome.ok and outcome.code == "float_not_allowed"
    assert outcome.encoded() == canonical(outcome.to_json())
