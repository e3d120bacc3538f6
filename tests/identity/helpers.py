"""Helpers for the identity tests: test vectors, a movable clock, an in-memory chain."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from zhijin.chain.contract import (
    BlockInfo,
    BlockState,
    ContractRegistry,
    TxInfo,
    TxOutcome,
    execute_tx,
)
from zhijin.chain.crypto import KeyPair
from zhijin.chain.memory import MemoryState
from zhijin.identity.contracts import IDENTITY_CONTRACTS
from zhijin.notary.contract import NOTARY_CONTRACT

START_MS = 1_750_000_000_000  # 2025-06-15, a fixed start so tests never depend on the date


def shared_dir() -> Path:
    """../shared beside the repository, or $ZHIJIN_SHARED_DIR."""
    override = os.environ.get("ZHIJIN_SHARED_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[3] / "shared"


def vectors_dir(*parts: str) -> Path:
    """A test-vector folder; a missing one fails the test (it must never silently skip)."""
    path = shared_dir().joinpath("testvectors", *parts)
    if not path.is_dir():
        pytest.fail(f"test vectors missing at {path} (set ZHIJIN_SHARED_DIR)")
    return path


class Clock:
    def __init__(self, now_ms: int = START_MS) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms


class Chain:
    """Blocks of one tx each over MemoryState, with members in genesis state."""

    def __init__(self, clock: Clock, members: dict[str, KeyPair]) -> None:
        self.clock = clock
        self.registry = ContractRegistry([*IDENTITY_CONTRACTS, NOTARY_CONTRACT])
        data: dict[str, Any] = {}
        for role, key in members.items():
            data[f"governance/member/{key.did}"] = {
                "did": key.did,
                "name": role,
                "role": role.rstrip("0123456789"),
                "weight": 1,
            }
        self.state = MemoryState(data)
        self.height = 0
        self.members = members

    def run(
        self,
        sender: str,
        contract: str,
        method: str,
        args: dict[str, Any],
        *,
        vouched: bool = False,
    ) -> TxOutcome:
        self.height += 1
        block = BlockInfo(chain_id="test", height=self.height, time_ms=self.clock())
        tx = TxInfo(
            tx_hash=f"{self.height:064x}",
            sender=sender,
            signer=sender,
            nonce=self.height,
            contract=contract,
            method=method,
            vouched=vouched,
        )
        block_state = BlockState(self.state)
        outcome = execute_tx(self.registry, block_state, tx, block, args)
        self.state.commit(block_state)
        return outcome

    def ok(self, sender: str, contract: str, method: str, args: dict[str, Any]) -> Any:
        outcome = self.run(sender, contract, method, args)
        assert outcome.ok, (outcome.code, outcome.message)
        return outcome.value


class MemberWriter:
    """A ChainWriter that signs as one member (what MemberGateway does in the platform)."""

    def __init__(self, chain: Chain, key: KeyPair) -> None:
        self.chain = chain
        self.key = key

    def submit(self, contract: str, method: str, args: dict[str, Any]) -> dict[str, Any]:
        outcome = self.chain.run(self.key.did, contract, method, args)
        if not outcome.ok:
            raise AssertionError(f"{contract}.{method} failed: {outcome.code} {outcome.message}")
        return outcome.to_json()
