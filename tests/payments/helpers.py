"""A tiny in-memory chain for payments tests: blocks of txs over MemoryState, invariants after each.

`Chain.block` runs txs through the real runtime (`execute_tx`, `run_end_block`), checks that every
value written is in the canonical domain, commits the block's writes, then checks every payments
invariant, so every test checks them after every block without asking.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from zhijin.chain.codec import decode
from zhijin.chain.contract import (
    MEMBER_PREFIX,
    BlockInfo,
    BlockState,
    Contract,
    ContractRegistry,
    Member,
    TxInfo,
    TxOutcome,
    execute_tx,
    run_end_block,
)
from zhijin.chain.memory import MemoryState
from zhijin.payments.contract import PAYMENTS_CONTRACT
from zhijin.payments.invariants import assert_invariants
from zhijin.payments.queries import read_account

CHAIN_ID = "zhijin-test"
GENESIS_TIME_MS = 1_700_000_000_000
BLOCK_INTERVAL_MS = 1_000

BANK = Member(did="did:key:z6MkBank", name="Bank", role="bank", weight=1)
FX_BANK = Member(did="did:key:z6MkFxBank", name="FX Bank", role="bank", weight=1)
PLATFORM = Member(did="did:key:z6MkPlatform", name="Platform", role="platform", weight=1)
REGULATOR = Member(did="did:key:z6MkRegulator", name="Regulator", role="regulator", weight=1)
INSURER = Member(did="did:key:z6MkInsurer", name="Insurer", role="insurer", weight=1)
MEMBERS = (BANK, FX_BANK, PLATFORM, REGULATOR, INSURER)

ALICE = "did:key:z6MkAlice"
BOB = "did:key:z6MkBob"
CAROL = "did:key:z6MkCarol"
SHOP = "did:key:z6MkShop"
MALLORY = "did:key:z6MkMallory"


@dataclass(frozen=True)
class Call:
    method: str
    args: Any
    sender: str
    signer: str | None = None  # default: the sender signed it
    contract: str = "payments"


@dataclass
class Chain:
    members: Sequence[Member] = MEMBERS
    contracts: Iterable[Contract] = ()
    time_ms: int = GENESIS_TIME_MS
    height: int = 0
    check_invariants: bool = True
    state: MemoryState = field(init=False)
    registry: ContractRegistry = field(init=False)
    events: list[dict[str, Any]] = field(default_factory=list)
    _tx_counter: int = 0

    def __post_init__(self) -> None:
        self.state = MemoryState({MEMBER_PREFIX + m.did: m.to_json() for m in self.members})
        self.registry = ContractRegistry([PAYMENTS_CONTRACT, *self.contracts])

    def block(
        self, calls: Sequence[Call], *, advance_ms: int = BLOCK_INTERVAL_MS
    ) -> list[TxOutcome]:
        """One block: every call as a tx in order, then end-of-block hooks, then commit."""
        self.height += 1
        self.time_ms += advance_ms
        block = BlockInfo(chain_id=CHAIN_ID, height=self.height, time_ms=self.time_ms)
        staged = BlockState(self.state)
        outcomes = []
        for call in calls:
            self._tx_counter += 1
            signer = call.sender if call.signer is None else call.signer
            tx = TxInfo(
                tx_hash=hashlib.sha256(f"tx-{self._tx_counter}".encode()).hexdigest(),
                sender=call.sender,
                signer=signer,
                nonce=self._tx_counter,
                contract=call.contract,
                method=call.method,
                vouched=signer != call.sender,
            )
            outcome = execute_tx(self.registry, staged, tx, block, call.args)
            self.events.extend(outcome.events)
            outcomes.append(outcome)
        self.events.extend(run_end_block(self.registry, staged, block))
        for _, value in staged.write_set():
            # Some records are written without a validation pass (`Context.put_record`): the
            # strict decoder checks that every value written is in the canonical domain.
            if value is not None:
                decode(value)
        self.state.commit(staged)
        if self.check_invariants:
            assert_invariants(self.state)
        return outcomes

    def tx(self, method: str, args: Any, *, sender: str, signer: str | None = None) -> TxOutcome:
        return self.block([Call(method, args, sender, signer)])[0]

    def ok(self, method: str, args: Any, *, sender: str, signer: str | None = None) -> Any:
        outcome = self.tx(method, args, sender=sender, signer=signer)
        assert outcome.ok, (outcome.code, outcome.message)
        return outcome.value

    def fails(
        self, method: str, args: Any, *, sender: str, signer: str | None = None
    ) -> str | None:
        """Run a tx that must fail; assert it changed nothing; return its code."""
        before = dict(self.state.data)
        outcome = self.tx(method, args, sender=sender, signer=signer)
        assert not outcome.ok, outcome.value
        assert self.state.data == before
        return outcome.code

    def advance(self, ms: int) -> None:
        """An empty block `ms` later: end-of-block hooks run (holds expire)."""
        self.block([], advance_ms=ms)

    # -- ledger shortcuts -----------------------------------------------------------------------
    def open_accounts(self, accounts: list[dict[str, Any]], *, by: Member = BANK) -> None:
        value = self.ok("create_accounts", {"accounts": accounts}, sender=by.did)
        assert value["failed"] == 0, value

    def transfers(
        self, transfers: list[Any], *, sender: str, signer: str | None = None
    ) -> list[dict[str, Any]]:
        value = self.ok("create_transfers", {"transfers": transfers}, sender=sender, signer=signer)
        results: list[dict[str, Any]] = value["results"]
        return results

    def transfer(self, *, sender: str, signer: str | None = None, **fields: Any) -> dict[str, Any]:
        return self.transfers([fields], sender=sender, signer=signer)[0]

    def account(self, account_id: str) -> Any:
        account = read_account(self.state, account_id)
        assert account is not None, account_id
        return account

    def balance(self, account_id: str) -> int:
        """Posted credits minus posted debits."""
        account = self.account(account_id)
        return int(account.credits_posted - account.debits_posted)


def account(
    account_id: str,
    owner: str,
    currency: str = "CNY",
    kind: str = "customer",
    **extra: Any,
) -> dict[str, Any]:
    return {"id": account_id, "owner": owner, "currency": currency, "kind": kind, **extra}


CURRENCIES = ("CNY", "USD", "HKD", "EUR", "JPY")


def world(**chain_options: Any) -> Chain:
    """A bank with settlement accounts, three customers and a merchant in CNY/USD/HKD/EUR/JPY,
    a fee account, and an FX bank with liquidity in every currency, all funded."""
    chain = Chain(**chain_options)
    for code in CURRENCIES:
        c = code.lower()
        chain.open_accounts(
            [
                account(f"settle-{c}", BANK.did, code, "settlement"),
                account(f"fee-{c}", BANK.did, code, "fee"),
                account(f"alice-{c}", ALICE, code),
                account(f"bob-{c}", BOB, code),
                account(f"carol-{c}", CAROL, code),
                account(f"shop-{c}", SHOP, code, "merchant"),
            ]
        )
        chain.open_accounts(
            [
                account(f"fxsettle-{c}", FX_BANK.did, code, "settlement"),
                account(f"fx-{c}", FX_BANK.did, code, "fx_liquidity"),
                account(f"fxfee-{c}", FX_BANK.did, code, "fee"),
            ],
            by=FX_BANK,
        )
        deposits = [
            {
                "id": f"dep-{who}-{c}",
                "debit_account_id": f"settle-{c}",
                "credit_account_id": f"{who}-{c}",
                "amount": 1_000_000,
                "currency": code,
            }
            for who in ("alice", "bob", "carol")
        ]
        results = chain.transfers(deposits, sender=BANK.did)
        assert all(r["result"] == "ok" for r in results), results
        result = chain.transfer(
            sender=FX_BANK.did,
            id=f"fund-fx-{c}",
            debit_account_id=f"fxsettle-{c}",
            credit_account_id=f"fx-{c}",
            amount=100_000_000,
            currency=code,
        )
        assert result["result"] == "ok", result
    return chain
