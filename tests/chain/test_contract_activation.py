"""Contracts activated by governance: a chain whose genesis lacks a contract gains it.

A 4-member solo chain (weights 1, quorum 3) whose genesis names the platform's contracts; the
node's code also has `counter`, a tiny contract with a method and an end-of-block hook, which
the chain knows nothing of until a quorum activates it from a height.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from tests.chain.helpers import ChainHarness, Clock, make_genesis
from zhijin.chain import store as tables
from zhijin.chain.codec import canonical, decode
from zhijin.chain.contract import CONTRACT_PREFIX, Context, Contract, ContractRegistry
from zhijin.chain.crypto import KeyPair
from zhijin.chain.governance import (
    ACTIVATION_DELAY_BLOCKS_MAX,
    PROPOSAL_PREFIX,
    Approval,
    Proposal,
    approve,
    governance_args,
    make_proposal,
)
from zhijin.chain.node import Node, NodeError
from zhijin.chain.store import ChainStore
from zhijin.chain.tx import parse_envelope
from zhijin.chain.verify import verify_chain
from zhijin.node.modules import default_registry

HOUR_MS = 3600 * 1000
ACTIVATION = CONTRACT_PREFIX + "counter"


def _bump(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    count = (ctx.get("counter/count") or 0) + 1
    ctx.put("counter/count", count)
    return {"count": count}


def _end_block(ctx: Context) -> None:
    ctx.put("counter/last_block", ctx.block.height)


COUNTER = Contract(name="counter", version="1", methods={"bump": _bump}, end_block=_end_block)


def code_with_counter() -> ContractRegistry:
    return ContractRegistry([*default_registry(), COUNTER])


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[ChainHarness]:
    keys = [KeyPair.generate() for _ in range(4)]
    genesis = make_genesis(keys, default_registry())  # no counter
    clock = Clock()
    store = ChainStore(f"sqlite:///{tmp_path / 'chain.db'}")
    node = Node(
        store=store, genesis=genesis, registry=code_with_counter(), key=keys[0], clock=clock
    )
    harness = ChainHarness(node=node, store=store, genesis=genesis, clock=clock, members=keys)
    try:
        yield harness
    finally:
        store.close()


_ids = iter(range(1, 1_000_000))


def activation(chain: ChainHarness, **params: Any) -> Proposal:
    return make_proposal(
        chain_id=chain.genesis.chain_id,
        action="activate_contract",
        params={"name": "counter", "version": "1", "activation_height": 3, **params},
        proposal_id=f"activate-{next(_ids):06d}",
        valid_until_ms=chain.clock() + HOUR_MS,
    )


def run(chain: ChainHarness, prop: Proposal, approvals: list[Approval]) -> dict[str, Any]:
    args = governance_args(prop, approvals)
    return chain.run(chain.envelope(KeyPair.generate(), "governance", prop.action, args))


def quorum(chain: ChainHarness, prop: Proposal) -> list[Approval]:
    return [approve(chain.members[i], prop) for i in (0, 1, 2)]


def bump(chain: ChainHarness) -> dict[str, Any]:
    return chain.envelope(chain.users[0], "counter", "bump", {})


def activate_at(chain: ChainHarness, height: int) -> dict[str, Any]:
    prop = activation(chain, activation_height=height)
    result = run(chain, prop, quorum(chain, prop))
    assert result["status"] == "ok", result
    return result


def test_a_chain_gains_a_contract_from_the_activation_height(chain: ChainHarness) -> None:
    (refused,) = chain.submit(bump(chain))
    assert (refused.accepted, refused.code) == (False, "contract_not_active")

    result = activate_at(chain, 3)
    assert result["height"] == 1
    assert result["return"]["activation"] == {
        "name": "counter",
        "version": "1",
        "activation_height": 3,
        "proposal_id": result["return"]["proposal_id"],
    }
    (event,) = result["events"]
    assert event["type"] == "governance.contract_activated"
    assert event["attrs"]["activation_height"] == 3 and len(event["attrs"]["approvers"]) == 3
    assert chain.node.state_get(ACTIVATION)["activation_height"] == 3

    early = chain.run(bump(chain))  # block 2: scheduled, not yet in force
    assert (early["height"], early["status"], early["code"]) == (2, "failed", "contract_not_active")
    assert chain.node.state_get("counter/last_block") is None, "its hook did not run before"

    on_time = chain.run(bump(chain))  # block 3
    assert (on_time["height"], on_time["status"], on_time["return"]) == (3, "ok", {"count": 1})
    assert chain.node.state_get("counter/last_block") == 3
    assert chain.run(bump(chain))["return"] == {"count": 2}

    report = verify_chain(chain.store, chain.genesis, code_with_counter())
    assert report.ok, report.reason
    assert report.blocks == 5


def test_a_restarted_node_keeps_the_activated_contract(chain: ChainHarness) -> None:
    activate_at(chain, 2)
    assert chain.run(bump(chain))["status"] == "ok"
    chain.node = Node(
        store=chain.store,
        genesis=chain.genesis,
        registry=code_with_counter(),
        key=chain.members[0],
        clock=chain.clock,
    )
    assert chain.node.contracts.in_force(chain.node.head.height)["counter"] == "1"
    assert chain.run(bump(chain))["return"] == {"count": 2}


def test_a_node_without_the_activated_code_refuses_to_start(chain: ChainHarness) -> None:
    activate_at(chain, 5)  # scheduled only: the node could not run block 5
    with pytest.raises(NodeError) as caught:
        Node(
            store=chain.store,
            genesis=chain.genesis,
            registry=default_registry(),
            key=chain.members[0],
            clock=chain.clock,
        )
    assert caught.value.code == "contract_code_missing"
    assert "counter version 1 from height 5" in caught.value.message


def test_a_verifier_without_the_code_names_the_first_height_that_needs_it(
    chain: ChainHarness,
) -> None:
    activate_at(chain, 3)
    for _ in range(3):
        chain.run(bump(chain))
    report = verify_chain(chain.store, chain.genesis, default_registry())
    assert not report.ok and report.bad_height == 3
    assert "counter version 1 is in force" in (report.reason or "")


def test_extra_code_never_activated_changes_nothing(chain: ChainHarness) -> None:
    """The counter's hook is in this node's code but not in force: blocks run without it, and
    a verifier whose code lacks it agrees."""
    filler = chain.envelope(KeyPair.generate(), "notary", "anchor", {"hash": "ab" * 32})
    assert chain.run(filler)["status"] == "ok"
    assert chain.node.state_get("counter/last_block") is None
    assert verify_chain(chain.store, chain.genesis, default_registry()).ok


def test_too_little_approval_weight_activates_nothing(chain: ChainHarness) -> None:
    prop = activation(chain)
    result = run(chain, prop, quorum(chain, prop)[:2])
    assert (result["status"], result["code"]) == ("failed", "approval_below_quorum")
    assert chain.node.state_get(ACTIVATION) is None
    assert chain.node.state_get(PROPOSAL_PREFIX + prop.proposal_id) is None
    assert chain.node.contracts.activations() == ()
    (refused,) = chain.submit(bump(chain))
    assert refused.code == "contract_not_active"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"activation_height": 1}, "activation_height_passed"),  # the block executing it is 1
        ({"activation_height": 0}, "activation_height_passed"),
        ({"activation_height": 2 + ACTIVATION_DELAY_BLOCKS_MAX}, "activation_too_far"),
        ({"activation_height": "3"}, "bad_contract"),
        ({"version": ""}, "bad_contract"),
        ({"name": "Counter!"}, "bad_contract"),
        ({"name": "notary", "version": "1"}, "contract_exists"),  # in force from genesis
    ],
)
def test_activation_rules(chain: ChainHarness, params: dict[str, Any], code: str) -> None:
    prop = activation(chain, **params)
    result = run(chain, prop, quorum(chain, prop))
    assert (result["status"], result["code"]) == ("failed", code), result
    assert chain.node.contracts.activations() == ()


def executed(chain: ChainHarness, prop: Proposal) -> dict[str, Any]:
    """Execute a governance tx in a block without this node's admission (as a cluster peer
    executes what another peer admitted) and return its recorded result."""
    args = governance_args(prop, quorum(chain, prop))
    txs = parse_envelope(chain.envelope(KeyPair.generate(), "governance", prop.action, args))
    chain.clock.advance(10)
    height = chain.node.produce_block(txs)
    (stored,) = chain.store.txs_at(height)
    return dict(decode(stored.result))


def test_a_contract_is_activated_once_and_never_upgraded(chain: ChainHarness) -> None:
    activate_at(chain, 4)
    for version in ("1", "2"):  # the same again, or an upgrade (which admission would refuse)
        result = executed(chain, activation(chain, version=version, activation_height=10))
        assert (result["status"], result["code"]) == ("failed", "contract_exists")
    assert [a.activation_height for a in chain.node.contracts.activations()] == [4]


def test_admission_refuses_an_activation_this_code_lacks(chain: ChainHarness) -> None:
    for name, version in (("ghost", "1"), ("counter", "2")):
        prop = activation(chain, name=name, version=version)
        envelope = chain.envelope(
            KeyPair.generate(),
            "governance",
            prop.action,
            governance_args(prop, quorum(chain, prop)),
        )
        (answer,) = chain.submit(envelope)
        assert (answer.accepted, answer.code) == (False, "contract_code_missing")
        assert f"no {name} version {version}" in (answer.message or "")


def test_tampering_with_an_activation_is_caught_by_verify(chain: ChainHarness) -> None:
    activate_at(chain, 4)
    chain.run(bump(chain))
    assert verify_chain(chain.store, chain.genesis, code_with_counter()).ok
    record = chain.node.state_get(ACTIVATION)
    earlier = canonical({**record, "activation_height": 2})
    with chain.store.engine.begin() as conn:
        conn.execute(
            update(tables.state_history)
            .where(tables.state_history.c.key == ACTIVATION)
            .values(value=earlier)
        )
        conn.execute(
            update(tables.state_current)
            .where(tables.state_current.c.key == ACTIVATION)
            .values(value=earlier)
        )
    report = verify_chain(chain.store, chain.genesis, code_with_counter())
    assert not report.ok and report.bad_height == 1
    assert repr(ACTIVATION) in (report.reason or "")


def test_a_forged_activation_row_is_caught_by_verify(chain: ChainHarness) -> None:
    """An activation written into the state tables without a governance tx."""
    chain.run(chain.envelope(KeyPair.generate(), "notary", "anchor", {"hash": "ef" * 32}))
    forged = {"name": "counter", "version": "1", "activation_height": 2, "proposal_id": "forged-1"}
    with chain.store.engine.begin() as conn:
        conn.execute(
            tables.state_history.insert().values(height=1, key=ACTIVATION, value=canonical(forged))
        )
        conn.execute(
            tables.state_current.insert().values(key=ACTIVATION, value=canonical(forged), height=1)
        )
    report = verify_chain(chain.store, chain.genesis, code_with_counter())
    assert not report.ok and report.bad_height == 1


@pytest.fixture
def notaryless(tmp_path: Path) -> Iterator[ChainHarness]:
    """A chain whose genesis lacks the notary, run by the platform's code (which has it)."""
    keys = [KeyPair.generate() for _ in range(4)]
    code = default_registry()
    genesis = make_genesis(keys, ContractRegistry([c for c in code if c.name != "notary"]))
    assert "notary" not in genesis.contracts
    clock = Clock()
    store = ChainStore(f"sqlite:///{tmp_path / 'notary.db'}")
    node = Node(store=store, genesis=genesis, registry=code, key=keys[0], clock=clock)
    try:
        yield ChainHarness(node=node, store=store, genesis=genesis, clock=clock, members=keys)
    finally:
        store.close()


def test_a_notary_activated_by_governance_gives_receipts_that_verify(
    notaryless: ChainHarness,
) -> None:
    """Governance activates the notary; a receipt for an anchor carries the activation block
    in its governance history and verifies from the genesis file alone."""
    from zhijin.notary.receipt import build_receipt, verify_receipt

    chain, code = notaryless, default_registry()
    digest = "5e" * 32
    anchor = chain.envelope(chain.users[0], "notary", "anchor", {"hash": digest})
    assert chain.submit(anchor)[0].code == "contract_not_active"
    activated = activate_at_named(chain, "notary", code.versions()["notary"], 2)
    anchored = chain.run(chain.envelope(chain.users[0], "notary", "anchor", {"hash": digest}))
    assert anchored["status"] == "ok" and anchored["height"] == 2
    receipt = build_receipt(chain.store, digest)
    assert [e["block"]["header"]["height"] for e in receipt["membership"]] == [activated]
    report = verify_receipt(receipt, chain.genesis)
    assert report.ok, [c.name for c in report.checks if not c.ok]
    assert verify_chain(chain.store, chain.genesis, code).ok


def activate_at_named(chain: ChainHarness, name: str, version: str, height: int) -> int:
    prop = activation(chain, name=name, version=version, activation_height=height)
    result = run(chain, prop, quorum(chain, prop))
    assert result["status"] == "ok", result
    return int(result["height"])


def test_the_cli_proposes_and_approves_an_activation(
    notaryless: ChainHarness, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from zhijin.chain.node import now_ms
    from zhijin.cli import app

    chain = notaryless
    chain.clock.now_ms = now_ms()  # the CLI dates the proposal by the wall clock
    genesis_file, document = tmp_path / "genesis.json", tmp_path / "activate.json"
    chain.genesis.save(genesis_file)
    runner = CliRunner()
    common = ["cluster", "propose-contract", "--genesis", str(genesis_file), "--out", str(document)]
    missing = runner.invoke(app, [*common, "--name", "counter", "--activation-height", "3"])
    assert missing.exit_code == 2 and "contract_code_missing" in missing.output
    assert not document.exists()
    made = runner.invoke(app, [*common, "--name", "notary", "--activation-height", "3"])
    assert made.exit_code == 0, made.output
    for index in (0, 1, 2):
        key_file = tmp_path / f"member{index}.key"
        chain.members[index].save(key_file)
        approved = runner.invoke(app, ["cluster", "approve", str(document), "--key", str(key_file)])
        assert approved.exit_code == 0, approved.output
    args = json.loads(document.read_text())
    assert args["proposal"]["params"] == {
        "name": "notary",
        "version": default_registry().versions()["notary"],
        "activation_height": 3,
    }
    envelope = chain.envelope(KeyPair.generate(), "governance", "activate_contract", args)
    result = chain.run(envelope)
    assert result["status"] == "ok", result
    assert chain.node.contracts.in_force(3)["notary"] == "1"


def test_a_running_node_without_the_code_stops_at_the_activation_height(
    chain: ChainHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """The quorum activated a contract (another peer admitted it) this node's code lacks: it
    commits the activation, says so, and refuses to produce the block where it takes force."""
    chain.node = Node(
        store=chain.store,
        genesis=chain.genesis,
        registry=default_registry(),
        key=chain.members[0],
        clock=chain.clock,
    )
    with caplog.at_level("ERROR", logger="zhijin.chain.node"):
        result = executed(chain, activation(chain, activation_height=3))
    assert result["status"] == "ok", result
    assert "counter version 1 from height 3" in caplog.text
    filler = chain.envelope(KeyPair.generate(), "notary", "anchor", {"hash": "ab" * 32})
    assert chain.run(filler)["height"] == 2
    (admitted,) = chain.submit(
        chain.envelope(KeyPair.generate(), "notary", "anchor", {"hash": "cd" * 32})
    )
    assert admitted.accepted
    txs = chain.node.take(10, timeout_s=0)
    chain.clock.advance(10)
    with pytest.raises(NodeError) as caught:
        chain.node.produce_block(txs)
    assert caught.value.code == "contract_code_missing"
    assert chain.node.head.height == 2
