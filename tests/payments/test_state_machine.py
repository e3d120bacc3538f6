"""A hypothesis state machine over the whole contract: random sequences of account openings,
deposits, transfers (good and bad), linked and independent batches, holds, full and partial
posts, voids, expiries, freezes, FX payments and retries.  `Chain.block` checks every payments
invariant after every block; the rules add what only the model knows: a refused request changes
nothing, and a retry answers exactly like the first time."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from zhijin.payments import limits
from zhijin.payments.invariants import check_invariants
from zhijin.payments.queries import read_quote

from .helpers import ALICE, BANK, BOB, CAROL, FX_BANK, MALLORY, SHOP, Call, Chain, account

USERS = (ALICE, BOB, CAROL, SHOP)
CURRENCIES = ("CNY", "JPY", "USD")
# Mostly sensible amounts, sometimes wrong ones: zero, negative, float, bool, string, too large.
AMOUNTS = st.one_of(
    st.integers(1, 50_000),
    st.integers(1, 50_000),
    st.integers(1, 50_000),
    st.sampled_from([0, -1, 1.5, True, "100", 2**63, 2**63 - 1, None]),
)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain = Chain()
        self.accounts: list[tuple[str, str, str]] = []  # (id, owner, currency)
        self.holds: list[str] = []
        # First answers of fully successful batches, by their first id, for retries.
        self.answers: dict[str, tuple[list[Any], str, list[dict[str, Any]]]] = {}
        self.counter = 0
        self.payments: list[tuple[str, int, str]] = []  # (transfer id, amount, payee's owner)
        self.refunded: dict[str, int] = {}

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    @initialize()
    def platform_books(self) -> None:
        for code in CURRENCIES:
            c = code.lower()
            self.chain.open_accounts(
                [
                    account(f"settle-{c}", BANK.did, code, "settlement"),
                    account(f"fee-{c}", BANK.did, code, "fee"),
                ]
            )
            self.chain.open_accounts(
                [
                    account(f"fxs-{c}", FX_BANK.did, code, "settlement"),
                    account(f"fx-{c}", FX_BANK.did, code, "fx_liquidity"),
                ],
                by=FX_BANK,
            )
            funded = self.chain.transfer(
                sender=FX_BANK.did,
                id=f"fund-{c}",
                debit_account_id=f"fxs-{c}",
                credit_account_id=f"fx-{c}",
                amount=10**9,
                currency=code,
            )
            assert funded["result"] == "ok"
            schedule = {
                "product": "std",
                "currency": code,
                "fee_account_id": f"fee-{c}",
                "fixed_amount": 1,
                "rate_bps": 15,
                "min_amount": 0,
                "max_amount": 500,
            }
            self.chain.ok("set_fee_schedule", schedule, sender=BANK.did)
        # Every user starts with a funded account in every currency, so every rule is enabled
        # from the first step.
        for owner in USERS:
            for code in CURRENCIES:
                account_id = self.next_id("acct")
                self.chain.open_accounts([account(account_id, owner, code)])
                self.accounts.append((account_id, owner, code))
                funded = self.chain.transfer(
                    sender=BANK.did,
                    id=self.next_id("dep"),
                    debit_account_id=f"settle-{code.lower()}",
                    credit_account_id=account_id,
                    amount=200_000,
                    currency=code,
                )
                assert funded["result"] == "ok"

    # -- helpers -----------------------------------------------------------------------------
    def pick(
        self, data: st.DataObject, same_currency_as: str | None = None
    ) -> tuple[str, str, str]:
        pool = [a for a in self.accounts if same_currency_as in (None, a[2])] or self.accounts
        return data.draw(st.sampled_from(pool))

    def send(self, items: list[Any], sender: str) -> list[dict[str, Any]]:
        """Run one create_transfers tx in a block at the same block time (so no hold expires
        in it): a fully refused batch must leave the state untouched."""
        before = self.chain.state.raw.copy()
        call = Call("create_transfers", {"transfers": items}, sender)
        outcome = self.chain.block([call], advance_ms=0)[0]
        assert outcome.ok, outcome
        results: list[dict[str, Any]] = outcome.value["results"]
        for result in results:
            event(f"item {result['result']}")  # shown by --hypothesis-show-statistics
        if all(r["result"] != "ok" for r in results):
            assert self.chain.state.raw == before
        if all(r["result"] == "ok" and not r["exists"] for r in results):
            self.answers[str(items[0]["id"])] = (items, sender, results)
        owners = {account_id: owner for account_id, owner, _ in self.accounts}
        for item, result in zip(items, results, strict=True):
            # A plain payment between two users' accounts: a refund may return it.
            if result["result"] == "ok" and not result["exists"] and not item.get("flags"):
                payee = owners.get(item["credit_account_id"])
                if payee is not None:
                    self.payments.append((item["id"], item["amount"], payee))
        return results

    def transfer_item(self, data: st.DataObject, amount: Any) -> tuple[dict[str, Any], str]:
        debit = self.pick(data)
        credit = self.pick(data, same_currency_as=debit[2])
        if data.draw(st.integers(0, 9)) == 0:  # sometimes a currency mismatch
            credit = self.pick(data)
        item: dict[str, Any] = {
            "id": self.next_id("t"),
            "debit_account_id": debit[0],
            "credit_account_id": credit[0],
            "amount": amount,
            "currency": debit[2],
        }
        if data.draw(st.integers(0, 4)) == 0:
            item["product"] = "std"
        sender = debit[1] if data.draw(st.integers(0, 9)) else MALLORY
        return item, sender

    # -- rules -------------------------------------------------------------------------------
    @rule(
        owner=st.sampled_from(USERS),
        code=st.sampled_from(CURRENCIES),
        credit_limit=st.sampled_from([0, 0, 0, 5_000]),
    )
    def open_account(self, owner: str, code: str, credit_limit: int) -> None:
        account_id = self.next_id("acct")
        self.chain.open_accounts([account(account_id, owner, code, credit_limit=credit_limit)])
        self.accounts.append((account_id, owner, code))

    @precondition(lambda self: self.accounts)
    @rule(data=st.data(), amount=st.integers(1, 200_000))
    def deposit(self, data: st.DataObject, amount: int) -> None:
        target = self.pick(data)
        item = {
            "id": self.next_id("dep"),
            "debit_account_id": f"settle-{target[2].lower()}",
            "credit_account_id": target[0],
            "amount": amount,
            "currency": target[2],
        }
        self.send([item], BANK.did)

    @precondition(lambda self: self.accounts)
    @rule(data=st.data(), amount=AMOUNTS)
    def transfer(self, data: st.DataObject, amount: Any) -> None:
        item, sender = self.transfer_item(data, amount)
        if amount is None:
            del item["amount"]
        self.send([item], sender)

    @precondition(lambda self: self.accounts)
    @rule(data=st.data(), size=st.integers(2, 5), linked=st.booleans())
    def batch(self, data: st.DataObject, size: int, linked: bool) -> None:
        owner = data.draw(st.sampled_from(USERS))
        own = [a for a in self.accounts if a[1] == owner]
        if not own:
            return
        items = []
        for _ in range(size):
            debit = data.draw(st.sampled_from(own))
            credit = self.pick(data, same_currency_as=debit[2])
            items.append(
                {
                    "id": self.next_id("b"),
                    "debit_account_id": debit[0],
                    "credit_account_id": credit[0],
                    "amount": data.draw(st.integers(1, 80_000)),
                    "currency": debit[2],
                    "flags": ["linked"] if linked else [],
                }
            )
        if linked:
            items[-1]["flags"] = []
        results = self.send(items, owner)
        outcomes = {r["result"] for r in results}
        if linked:  # all or nothing
            assert outcomes == {"ok"} or "ok" not in outcomes, results

    @precondition(lambda self: self.accounts)
    @rule(
        data=st.data(), amount=st.integers(1, 80_000), timeout_ms=st.sampled_from([0, 1_500, 4_000])
    )
    def hold(self, data: st.DataObject, amount: int, timeout_ms: int) -> None:
        debit = self.pick(data)
        credit = self.pick(data, same_currency_as=debit[2])
        item = {
            "id": self.next_id("h"),
            "debit_account_id": debit[0],
            "credit_account_id": credit[0],
            "amount": amount,
            "currency": debit[2],
            "flags": ["pending"],
            "timeout_ms": timeout_ms,
        }
        if self.send([item], debit[1])[0]["result"] == "ok":
            self.holds.append(str(item["id"]))

    @precondition(lambda self: self.holds)
    @rule(data=st.data(), part=st.sampled_from([None, 1, 100, 10**6]))
    def post(self, data: st.DataObject, part: int | None) -> None:
        pending_id = data.draw(st.sampled_from(self.holds))
        item: dict[str, Any] = {
            "id": self.next_id("p"),
            "pending_id": pending_id,
            "flags": ["post_pending_transfer"],
        }
        if part is not None:
            item["amount"] = part
        self.send([item], data.draw(st.sampled_from(USERS)))

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def void(self, data: st.DataObject) -> None:
        item = {
            "id": self.next_id("v"),
            "pending_id": data.draw(st.sampled_from(self.holds)),
            "flags": ["void_pending_transfer"],
        }
        self.send([item], data.draw(st.sampled_from([*USERS, BANK.did])))

    @rule(ms=st.sampled_from([1, 500, 2_000, 5_000]))
    def advance_time(self, ms: int) -> None:
        events = len(self.chain.events)
        self.chain.advance(ms)  # runs end_block: holds past their timeout expire
        expired = sum(e["type"] == "payments.pending_expired" for e in self.chain.events[events:])
        event(f"expired {min(expired, 2)}+")

    @precondition(lambda self: self.accounts)
    @rule(data=st.data(), status=st.sampled_from(["frozen", "open"]))
    def freeze(self, data: st.DataObject, status: str) -> None:
        target = self.pick(data)
        self.chain.ok(
            "set_account_status", {"account_id": target[0], "status": status}, sender=BANK.did
        )

    @precondition(lambda self: len({a[2] for a in self.accounts}) > 1)
    @rule(
        data=st.data(),
        amount=st.integers(1, 100_000),
        side=st.sampled_from(["source_amount", "target_amount"]),
        rate=st.sampled_from(["0.1385", "7.2201", "20.5678", "0.00673", "1"]),
        spread_bps=st.sampled_from([0, 25, 1_000]),
        ttl_ms=st.sampled_from([500, 60_000]),
    )
    def fx_payment(
        self, data: st.DataObject, amount: int, side: str, rate: str, spread_bps: int, ttl_ms: int
    ) -> None:
        payer = self.pick(data)
        beneficiary = data.draw(
            st.sampled_from([a for a in self.accounts if a[2] != payer[2]] or [payer])
        )
        if beneficiary[2] == payer[2]:
            return
        quote_id = self.next_id("q")
        s, t = payer[2].lower(), beneficiary[2].lower()
        quote = {
            "id": quote_id,
            "source_currency": payer[2],
            "target_currency": beneficiary[2],
            "rate": rate,
            "spread_bps": spread_bps,
            "expires_at_ms": self.chain.time_ms + ttl_ms,
            "source_liquidity_account_id": f"fx-{s}",
            "target_liquidity_account_id": f"fx-{t}",
        }
        args = {
            "id": self.next_id("fx"),
            "quote_id": quote_id,
            "debit_account_id": payer[0],
            "credit_account_id": beneficiary[0],
            side: amount,
        }
        # Quote, lock and settle in one block; sometimes the pay comes a block after expiry.
        late = data.draw(st.booleans()) and ttl_ms < 1_000
        calls = [Call("create_fx_quote", quote, FX_BANK.did)]
        if not late:
            calls.append(Call("pay_fx", args, payer[1]))
        outcomes = self.chain.block(calls, advance_ms=0)
        assert outcomes[0].ok, outcomes[0]
        if late:
            outcome = self.chain.block([Call("pay_fx", args, payer[1])], advance_ms=2_000)[0]
            assert outcome.code == "quote_expired"
        else:
            outcome = outcomes[1]
        event(f"pay_fx {outcome.code or 'ok'}")
        if not outcome.ok:
            # A refused payment booked nothing and left the quote unused.
            assert f"payments/transfer/{args['id']}" not in self.chain.state.raw
            stored = read_quote(self.chain.state, quote_id)
            assert stored is not None and stored.used_target_amount == 0

    @precondition(lambda self: self.answers)
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.answers)))
        items, sender, first = self.answers[key]
        before = self.chain.state.raw.copy()
        call = Call("create_transfers", {"transfers": items}, sender)
        outcome = self.chain.block([call], advance_ms=0)[0]
        assert outcome.value["results"] == [{**result, "exists": True} for result in first]
        assert self.chain.state.raw == before

    @precondition(lambda self: self.payments)
    @rule(data=st.data(), share=st.sampled_from([1, 2, 3]), racing=st.booleans())
    def refund(self, data: st.DataObject, share: int, racing: bool) -> None:
        """Refunds of a payment, sometimes two in one block, sometimes by someone else: never
        past what it brought (the invariant), and the cap's own code when that is the reason."""
        original, amount, payee = data.draw(st.sampled_from(self.payments))
        sender = payee if data.draw(st.integers(0, 9)) else MALLORY
        size = max(1, amount * share // 2)  # a half, all of it, or one and a half times
        calls = [
            Call(
                "refund_transfer",
                {"id": self.next_id("rf"), "original_transfer_id": original, "amount": size},
                sender,
            )
            for _ in range(2 if racing else 1)
        ]
        for outcome in self.chain.block(calls, advance_ms=0):
            event(f"refund {outcome.code or 'ok'}")
            if outcome.ok:
                self.refunded[original] = self.refunded.get(original, 0) + size
            elif sender == payee and outcome.code == "refund_exceeds_original":
                assert self.refunded.get(original, 0) + size > amount
        assert self.refunded.get(original, 0) <= amount

    @invariant()
    def ledger_is_sound(self) -> None:
        assert check_invariants(self.chain.state) == []


LedgerMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestLedgerMachine = LedgerMachine.TestCase


def test_batch_limit_is_what_the_machine_assumes() -> None:
    assert limits.TRANSFERS_PER_BATCH_MAX >= 5
