"""Test helpers for building chains with a controllable clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zhijin.chain.contract import ContractRegistry, Member
from zhijin.chain.crypto import KeyPair
from zhijin.chain.genesis import Genesis
from zhijin.chain.node import Admission, Node
from zhijin.chain.store import ChainStore
from zhijin.chain.tx import make_body, sign_tx
from zhijin.node.modules import default_registry

GENESIS_TIME_MS = 1_790_000_000_000


class Clock:
    def __init__(self, now_ms: int = GENESIS_TIME_MS + 1_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms


def make_genesis(members: list[KeyPair], registry: ContractRegistry | None = None) -> Genesis:
    registry = registry or default_registry()
    return Genesis(
        chain_id="zhijin-test",
        time_ms=GENESIS_TIME_MS,
        members=tuple(
            Member(did=k.did, name=f"Member {i}", role="bank", weight=1)
            for i, k in enumerate(members)
        ),
        quorum_weight=len(members) * 2 // 3 + 1,
        ordering="solo",
        orderer=members[0].did,
        contracts=registry.versions(),
    )


@dataclass
class ChainHarness:
    node: Node
    store: ChainStore
    genesis: Genesis
    clock: Clock
    members: list[KeyPair]
    nonce: int = 0
    users: list[KeyPair] = field(default_factory=lambda: [KeyPair.generate() for _ in range(3)])

    def body(
        self, key: KeyPair, contract: str, method: str, args: dict[str, Any], **over: Any
    ) -> dict[str, Any]:
        self.nonce += 1
        fields: dict[str, Any] = {
            "chain_id": self.genesis.chain_id,
            "sender": key.did,
            "nonce": self.nonce,
            "contract": contract,
            "method": method,
            "args": args,
            "valid_until": self.clock() + 60_000,
        }
        fields.update(over)
        return make_body(**fields)

    def envelope(
        self, key: KeyPair, contract: str, method: str, args: dict[str, Any], **over: Any
    ) -> dict[str, Any]:
        return sign_tx(key, self.body(key, contract, method, args, **over))

    def submit(self, envelope: Any) -> list[Admission]:
        return self.node.submit(envelope)

    def commit(self) -> int | None:
        """Cut one block from whatever the mempool holds."""
        txs = self.node.take(10_000, timeout_s=0)
        if not txs:
            return None
        self.clock.advance(10)
        height = self.node.produce_block(txs)
        self.node.drain()  # durable when this returns, with the pipeline on too
        return height

    def run(self, envelope: Any) -> dict[str, Any]:
        """Submit one envelope, commit, and return the tx's recorded result."""
        (admission,) = self.submit(envelope)
        assert admission.accepted, (admission.code, admission.message)
        self.commit()
        assert admission.future is not None
        return admission.future.result(timeout=5)


def open_chain(
    url: str,
    members: int = 1,
    registry: ContractRegistry | None = None,
    *,
    pipeline: bool = False,
) -> ChainHarness:
    keys = [KeyPair.generate() for _ in range(members)]
    registry = registry or default_registry()
    genesis = make_genesis(keys, registry)
    clock = Clock()
    store = ChainStore(url)
    node = Node(
        store=store, genesis=genesis, registry=registry, key=keys[0], clock=clock, pipeline=pipeline
    )
    return ChainHarness(node=node, store=store, genesis=genesis, clock=clock, members=keys)
