"""Shared builders for receipt tests."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tests.chain.helpers import ChainHarness, Clock, make_genesis
from zhijin.chain.crypto import KeyPair
from zhijin.chain.governance import approve, governance_args, make_proposal
from zhijin.chain.node import Node
from zhijin.chain.store import ChainStore
from zhijin.node.modules import default_registry

CONTENT = b"supply contract 2026-12, countersigned\n"
DIGEST = hashlib.sha256(CONTENT).hexdigest()
OLD_DIGEST = "0a" * 32
HOUR_MS = 3600 * 1000


@dataclass
class Consortium:
    chain: ChainHarness
    newcomer: KeyPair
    leaving: KeyPair
    changes: list[int]  # heights of the two governance blocks
    anchored_at: int


def _sign_to_quorum(chain: ChainHarness, height: int, signers: list[KeyPair]) -> None:
    """Add the other members' signatures, as cluster finality does."""
    block = chain.store.get_block(height)
    assert block is not None
    present = {s["signer"] for s in block.signatures}
    chain.store.add_block_signatures(
        height,
        [
            {"signer": k.did, "signature": k.sign(block.header).hex()}
            for k in signers
            if k.did not in present
        ],
    )


def _govern(
    chain: ChainHarness, action: str, params: dict[str, Any], approvers: list[KeyPair]
) -> int:
    proposal = make_proposal(
        chain_id=chain.genesis.chain_id,
        action=action,
        params=params,
        proposal_id=f"receipt-test-{action}-{chain.nonce}",
        valid_until_ms=chain.clock() + HOUR_MS,
    )
    args = governance_args(proposal, [approve(k, proposal) for k in approvers])
    result = chain.run(chain.envelope(KeyPair.generate(), "governance", action, args))
    assert result["status"] == "ok", result
    return int(result["height"])


@contextmanager
def consortium_chain(tmp_path: Path) -> Iterator[Consortium]:
    """A 4-member cluster-mode chain (weights 1, quorum 3): a fifth member admitted, then an
    original one removed, then DIGEST anchored in a block signed by two original members and
    the newcomer."""
    keys = [KeyPair.generate() for _ in range(4)]
    registry = default_registry()
    genesis = replace(make_genesis(keys, registry), ordering="jetstream", quorum_weight=3)
    genesis.validate()
    clock = Clock()
    store = ChainStore(f"sqlite:///{tmp_path / 'chain.db'}")
    node = Node(store=store, genesis=genesis, registry=registry, key=keys[0], clock=clock)
    chain = ChainHarness(node=node, store=store, genesis=genesis, clock=clock, members=keys)
    a, b, c, _ = keys
    newcomer = KeyPair.generate()
    try:
        old = chain.run(chain.envelope(chain.users[0], "notary", "anchor", {"hash": OLD_DIGEST}))
        _sign_to_quorum(chain, old["height"], [a, b, c])
        added = _govern(
            chain,
            "add_member",
            {"did": newcomer.did, "name": "Coastal Trust", "role": "bank", "weight": 1},
            [a, b, c],
        )
        _sign_to_quorum(chain, added, [a, b, c])  # judged by the genesis four
        removed = _govern(chain, "remove_member", {"did": b.did}, [a, c, newcomer])
        _sign_to_quorum(chain, removed, [a, c, newcomer])  # the newcomer counts from here
        doc = chain.run(
            chain.envelope(chain.users[1], "notary", "anchor", {"hash": DIGEST, "title": "c"})
        )
        _sign_to_quorum(chain, doc["height"], [a, c, newcomer])  # b is gone
        yield Consortium(chain, newcomer, b, [added, removed], doc["height"])
    finally:
        store.close()
