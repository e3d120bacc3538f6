"""A fixed, seeded payments workload whose every byte of output is pinned by a digest.

It runs blocks of txs through the real runtime (`execute_tx`, `run_end_block`) over
`MemoryState`, one `BlockState` per block committed between blocks, and hashes every write set,
every encoded outcome (both `canonical(to_json())` and the node's `encoded()`) and every
end-of-block event.  The traffic is varied on purpose: accounts with flags, credit limits and
non-ASCII references; good and bad transfers of every kind; linked chains that fail; holds that
are posted in full or in part, voided or expire; fee schedules; FX quotes and payments; retries
with the same and with different bodies; frozen and closed accounts; vouched txs; and a small
contract that reaches payments through `ctx.call` (two transfers in one tx, a caught refusal, a
refusal that fails the whole tx after an earlier transfer was staged, a caller that mutates the
record it read).  Several txs of a block touch the same hot accounts, with failing txs between.

The workload is generated from the seed alone (never from outcomes), so the digest changes only
if the contract's output does.  Run it as a script to print the digest:

    PYTHONPATH=<code root> python tests/payments/golden_workload.py
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from tests.payments.helpers import BANK, FX_BANK, INSURER, MEMBERS, PLATFORM, REGULATOR
from zhijin.chain.codec import canonical
from zhijin.chain.contract import (
    MEMBER_PREFIX,
    BlockInfo,
    BlockState,
    Context,
    Contract,
    ContractRegistry,
    TxInfo,
    execute_tx,
    run_end_block,
)
from zhijin.chain.errors import ZhijinError
from zhijin.chain.memory import MemoryState
from zhijin.payments.contract import PAYMENTS_CONTRACT

SEED = 20_261_123
BLOCKS = 120
GENESIS_TIME_MS = 1_700_000_000_000

USERS = ("did:key:z6MkAlice", "did:key:z6MkBob", "did:key:z6MkCarol", "did:key:z6MkShop")
MALLORY = "did:key:z6MkMallory"
CURRENCIES = ("CNY", "USD", "JPY")
REFERENCES = (None, None, None, "invoice-17", "工资 三月", 'naïve "q" \\ tab', "x" * 35)
BAD_AMOUNTS = (0, -5, 1.5, True, "100", 2**63, 2**63 - 1, None)


# -- a contract that reaches payments through ctx.call ---------------------------------------------


def _relay_pay_two(ctx: Context, args: dict[str, Any]) -> Any:
    """Two transfers in one tx: a refusal of the second fails the tx (and drops the first)."""
    first = ctx.call("payments", "transfer", args["first"])
    second = ctx.call("payments", "transfer", args["second"])
    return {"first": first, "second": second}


def _relay_pay_caught(ctx: Context, args: dict[str, Any]) -> Any:
    """A transfer whose refusal is caught, then another one."""
    try:
        first = ctx.call("payments", "transfer", args["first"])
    except ZhijinError as error:
        first = {"refused": error.code}
    return {"first": first, "second": ctx.call("payments", "transfer", args["second"])}


def _relay_peek(ctx: Context, args: dict[str, Any]) -> Any:
    """Read an account, mutate what was read, transfer, and read again."""
    before = ctx.call("payments", "get_account", {"account_id": args["account_id"]})
    before["debits_posted"] = -1
    before["flags"].append("mutated")
    paid = ctx.call("payments", "transfer", args["transfer"])
    after = ctx.call("payments", "get_account", {"account_id": args["account_id"]})
    held = ctx.call("payments", "get_transfer", {"transfer_id": args["transfer"]["id"]})
    return {"before": before, "paid": paid, "after": after, "held": held}


def _relay_open(ctx: Context, args: dict[str, Any]) -> Any:
    return ctx.call("payments", "create_accounts", args)


RELAY_CONTRACT = Contract(
    name="relay",
    version="1",
    methods={
        "pay_two": _relay_pay_two,
        "pay_caught": _relay_pay_caught,
        "peek": _relay_peek,
        "open": _relay_open,
    },
)


# -- the workload ----------------------------------------------------------------------------------


class _Generator:
    """Builds the blocks' calls from the seed; tracks issued ids, never outcomes."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.counter = 0
        # (account id, owner, currency, kind)
        self.accounts: list[tuple[str, str, str, str]] = []
        self.holds: list[tuple[str, str, str]] = []  # (hold id, debit owner, credit owner)
        self.sent: list[tuple[dict[str, Any], str]] = []  # transfer items and their senders
        self.quotes: list[tuple[str, str, str]] = []  # (quote id, source, target currency)

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    def customers(self, currency: str | None = None) -> list[tuple[str, str, str, str]]:
        return [
            a
            for a in self.accounts
            if a[1] in USERS and (currency is None or a[2] == currency) and a[3] != "loan"
        ]

    def hot_accounts(self) -> list[str]:
        """Each user's first two accounts per currency: touched by many txs of a block."""
        return [
            a[0]
            for owner in USERS
            for code in CURRENCIES
            for a in [a for a in self.customers(code) if a[1] == owner][:2]
        ]

    def genesis_calls(self) -> list[list[tuple[str, str, Any, str, str | None]]]:
        """The first blocks: platform books, fee schedules, customers, deposits."""
        blocks: list[list[tuple[str, str, Any, str, str | None]]] = []
        setup: list[tuple[str, str, Any, str, str | None]] = []
        for code in CURRENCIES:
            c = code.lower()
            books = [
                ("settle-" + c, BANK.did, code, "settlement", {}),
                ("fee-" + c, BANK.did, code, "fee", {}),
                (
                    "loan-" + c,
                    BANK.did,
                    code,
                    "loan",
                    {"flags": ["credits_must_not_exceed_debits"]},
                ),
            ]
            setup.append(("payments", "create_accounts", self._accounts(books), BANK.did, None))
            fx_books = [
                ("fxs-" + c, FX_BANK.did, code, "settlement", {}),
                ("fx-" + c, FX_BANK.did, code, "fx_liquidity", {}),
                ("fxfee-" + c, FX_BANK.did, code, "fee", {}),
            ]
            setup.append(
                ("payments", "create_accounts", self._accounts(fx_books), FX_BANK.did, None)
            )
            platform_books = [("plat-" + c, "role:platform", code, "settlement", {})]
            setup.append(
                (
                    "payments",
                    "create_accounts",
                    self._accounts(platform_books),
                    PLATFORM.did,
                    None,
                )
            )
        relay_books = [
            ("relay-" + code.lower(), "contract:relay", code, "escrow", {}) for code in CURRENCIES
        ]
        setup.append(("relay", "open", self._accounts(relay_books), BANK.did, None))
        blocks.append(setup)

        customers: list[tuple[str, str, Any, str, str | None]] = []
        for owner in USERS:
            for code in CURRENCIES:
                items = []
                for _ in range(3):
                    extra: dict[str, Any] = {}
                    if self.rng.random() < 0.3:
                        extra["credit_limit"] = self.rng.choice([1, 5_000, 2**63 - 1])
                    reference = self.rng.choice(REFERENCES)
                    if reference is not None:
                        extra["reference"] = reference
                    kind = "merchant" if owner == USERS[3] else "customer"
                    items.append((self.next_id("acct"), owner, code, kind, extra))
                customers.append(
                    ("payments", "create_accounts", self._accounts(items), BANK.did, None)
                )
        blocks.append(customers)

        fees: list[tuple[str, str, Any, str, str | None]] = []
        for code in CURRENCIES:
            c = code.lower()
            fees.append(
                (
                    "payments",
                    "set_fee_schedule",
                    {
                        "product": "std",
                        "currency": code,
                        "fee_account_id": "fee-" + c,
                        "fixed_amount": 1,
                        "rate_bps": 15,
                        "min_amount": 0,
                        "max_amount": 500,
                    },
                    BANK.did,
                    None,
                )
            )
            fees.append(
                (
                    "payments",
                    "set_fee_schedule",
                    {
                        "product": "open-ended",
                        "currency": code,
                        "fee_account_id": "fee-" + c,
                        "fixed_amount": 7,
                        "rate_bps": 1_000,
                    },
                    BANK.did,
                    None,
                )
            )
        # Deposits: a batch per currency from settlement to every customer account.
        for code in CURRENCIES:
            items = [
                self._item(
                    "settle-" + code.lower(), account[0], self.rng.randint(10**5, 10**7), code
                )
                for account in self.customers(code)
            ]
            fees.append(("payments", "create_transfers", {"transfers": items}, BANK.did, None))
            fund = self._item("fxs-" + code.lower(), "fx-" + code.lower(), 10**12, code)
            fees.append(("payments", "create_transfers", {"transfers": [fund]}, FX_BANK.did, None))
            relay_fund = self._item("settle-" + code.lower(), "relay-" + code.lower(), 10**6, code)
            fees.append(
                ("payments", "create_transfers", {"transfers": [relay_fund]}, BANK.did, None)
            )
        blocks.append(fees)
        return blocks

    def _accounts(self, rows: list[tuple[str, str, str, str, dict[str, Any]]]) -> dict[str, Any]:
        items = []
        for account_id, owner, code, kind, extra in rows:
            self.accounts.append((account_id, owner, code, kind))
            items.append(
                {"id": account_id, "owner": owner, "currency": code, "kind": kind, **extra}
            )
        return {"accounts": items}

    def _item(self, debit: str, credit: str, amount: Any, code: str, **extra: Any) -> Any:
        return {
            "id": self.next_id("t"),
            "debit_account_id": debit,
            "credit_account_id": credit,
            "amount": amount,
            "currency": code,
            **extra,
        }

    # -- random traffic ----------------------------------------------------------------------------
    def block_calls(self, hot: list[str]) -> list[tuple[str, str, Any, str, str | None]]:
        calls = []
        for _ in range(self.rng.randint(3, 30)):
            roll = self.rng.random()
            if roll < 0.40:
                calls.append(self._transfers(hot))
            elif roll < 0.50:
                calls.append(self._holds_and_resolutions())
            elif roll < 0.58:
                calls.append(self._retry())
            elif roll < 0.66:
                calls.extend(self._fx())
            elif roll < 0.72:
                calls.append(self._status())
            elif roll < 0.78:
                calls.append(self._open_accounts())
            elif roll < 0.88:
                calls.append(self._relay(hot))
            else:
                calls.append(self._malformed())
        return calls

    def _amount(self) -> Any:
        if self.rng.random() < 0.08:
            return self.rng.choice(BAD_AMOUNTS)
        return self.rng.choice([self.rng.randint(1, 5_000), self.rng.randint(1, 3 * 10**6)])

    def _transfer_item(self, hot: list[str], owner: str) -> dict[str, Any]:
        pool = self.customers()
        own = [a for a in pool if a[1] == owner]
        debit = self.rng.choice(own if own and self.rng.random() < 0.85 else pool)
        hot_own = [a for a in own if a[0] in hot]
        if hot_own and self.rng.random() < 0.5:
            debit = self.rng.choice(hot_own)
        same = self.customers(debit[2])
        hot_same = [a for a in same if a[0] in hot and a[0] != debit[0]]
        if hot_same and self.rng.random() < 0.4:
            same = hot_same
        credit = self.rng.choice(same) if self.rng.random() > 0.05 else self.rng.choice(pool)
        if self.rng.random() < 0.03:
            credit = debit
        extra: dict[str, Any] = {}
        if self.rng.random() < 0.2:
            extra["product"] = self.rng.choice(["std", "std", "open-ended", "none"])
        reference = self.rng.choice(REFERENCES)
        if reference is not None:
            extra["reference"] = reference
        item = self._item(debit[0], credit[0], self._amount(), debit[2], **extra)
        if self.rng.random() < 0.12:
            self._corrupt(item)
        return item

    def _corrupt(self, item: dict[str, Any]) -> None:
        """One way a transfer item can be wrong (or, for a few, an unusual but valid shape)."""
        own_id = item["id"]
        other = self.rng.choice(self.sent)[0].get("id", "x") if self.sent else "x"
        corruption: dict[str, Any] = self.rng.choice(
            [
                {"flags": ["pending", "post_pending_transfer"]},
                {"flags": ["bogus"]},
                {"flags": ["linked", "linked"]},
                {"flags": "linked"},
                {"flags": []},
                {"pending_id": "x"},
                {"flags": ["post_pending_transfer"]},
                {"flags": ["void_pending_transfer"], "pending_id": "bad id"},
                {"flags": ["void_pending_transfer"], "pending_id": own_id},
                {"flags": ["post_pending_transfer"], "pending_id": other},
                {"flags": ["pending"], "timeout_ms": -1},
                {"flags": ["pending"], "timeout_ms": 10**13},
                {"flags": ["pending"], "timeout_ms": 0},
                {"timeout_ms": 1_000},
                {"debit_account_id": "no/such"},
                {"credit_account_id": 5},
                {"credit_account_id": "acct-unknown"},
                {"debit_account_id": "acct-unknown"},
                {"currency": "XXX"},
                {"currency": 5},
                {"product": "BAD!"},
                {"product": "std", "flags": ["pending"]},
                {"reference": ""},
                {"reference": "a\nb"},
                {"reference": "x" * 36},
                {"id": None},
                {"id": "~fee"},
                {"amount": None},
            ]
        )
        item.update(corruption)
        if item["id"] is None:
            del item["id"]
        if item["amount"] is None:
            del item["amount"]

    def _transfers(self, hot: list[str]) -> tuple[str, str, Any, str, str | None]:
        if self.rng.random() < 0.1:
            return self._platform_transfer()
        size = self.rng.choice([1, 1, 1, 2, 5, 12])
        owner = self.rng.choice(USERS)
        sender, signer = owner, None
        roll = self.rng.random()
        if roll < 0.05:
            sender = MALLORY
        elif roll < 0.25:
            signer = BANK.did  # the bank vouches for its customer
        elif roll < 0.28:
            sender = BANK.did  # the custodian acting in its own name
        items = [self._transfer_item(hot, owner) for _ in range(size)]
        self.sent.extend((item, sender) for item in items)
        if size > 1 and self.rng.random() < 0.4:
            for item in items[:-1]:
                item["flags"] = ["linked"]
            if self.rng.random() < 0.2:
                items[-1]["flags"] = ["linked"]  # a chain left open
        return ("payments", "create_transfers", {"transfers": items}, sender, signer)

    def _platform_transfer(self) -> tuple[str, str, Any, str, str | None]:
        """The platform's own books: loans (credits may not exceed debits), role-owned books."""
        code = self.rng.choice(CURRENCIES)
        c = code.lower()
        amount = self.rng.choice([1, 10_000, 10**9, 2**63 - 1])
        pairs = [
            ("loan-" + c, "settle-" + c, BANK.did),
            ("settle-" + c, "loan-" + c, BANK.did),
            ("plat-" + c, "settle-" + c, PLATFORM.did),
            ("plat-" + c, "settle-" + c, BANK.did),
            ("fee-" + c, "settle-" + c, BANK.did),
        ]
        debit, credit, sender = self.rng.choice(pairs)
        item = self._item(debit, credit, amount, code)
        self.sent.append((item, sender))
        return ("payments", "create_transfers", {"transfers": [item]}, sender, None)

    def _holds_and_resolutions(self) -> tuple[str, str, Any, str, str | None]:
        items = []
        owner = self.rng.choice(USERS)
        own = [a for a in self.customers() if a[1] == owner]
        for _ in range(self.rng.randint(1, 4)):
            roll = self.rng.random()
            if roll < 0.5 or not self.holds:
                debit = self.rng.choice(own)
                credit = self.rng.choice(self.customers(debit[2]))
                if credit[0] == debit[0]:
                    continue
                timeout = self.rng.choice([0, 1_500, 4_000, 10_000, 0])
                item = self._item(
                    debit[0], credit[0], self.rng.randint(1, 200_000), debit[2], flags=["pending"]
                )
                if timeout or self.rng.random() < 0.5:
                    item["timeout_ms"] = timeout
                self.holds.append((item["id"], debit[1], credit[1]))
            else:
                mine = [hold for hold in self.holds if owner in hold[1:]]
                pending_id, debit_owner, _ = self.rng.choice(
                    mine if mine and self.rng.random() < 0.9 else self.holds
                )
                flag = self.rng.choice(["post_pending_transfer", "void_pending_transfer"])
                if debit_owner == owner and self.rng.random() < 0.8:
                    flag = "post_pending_transfer"  # the payer may post, not void
                item = {"id": self.next_id("r"), "pending_id": pending_id, "flags": [flag]}
                part = self.rng.random()
                if part < 0.3:
                    item["amount"] = self.rng.randint(1, 150_000)
                elif part < 0.4:
                    item["amount"] = 10**9
                if self.rng.random() < 0.1:
                    item["debit_account_id"] = self.rng.choice(own)[0]
                if self.rng.random() < 0.1:
                    item["currency"] = self.rng.choice(CURRENCIES)
            items.append(item)
            self.sent.append((item, owner))
        if not items:
            items = [{"id": "bad id!"}]
        return ("payments", "create_transfers", {"transfers": items}, owner, None)

    def _retry(self) -> tuple[str, str, Any, str, str | None]:
        if not self.sent:
            return self._malformed()
        item, sender = self.rng.choice(self.sent)
        item = dict(item)
        if self.rng.random() < 0.3:
            item["amount"] = 4_242
        if self.rng.random() < 0.1:
            item["reference"] = "changed"
        return ("payments", "create_transfers", {"transfers": [item]}, sender, None)

    def _fx(self) -> list[tuple[str, str, Any, str, str | None]]:
        calls: list[tuple[str, str, Any, str, str | None]] = []
        if not self.quotes or self.rng.random() < 0.5:
            source, target = self.rng.sample(CURRENCIES, 2)
            quote_id = self.next_id("q")
            quote: dict[str, Any] = {
                "id": quote_id,
                "source_currency": source,
                "target_currency": target,
                "rate": self.rng.choice(["0.1385", "7.2201", "153.25", "0.00673", "1"]),
                "spread_bps": self.rng.choice([0, 25, 1_000]),
                "expires_at_ms": self.rng.choice([500, 3_000, 600_000, 3_600_000]),  # relative
                "source_liquidity_account_id": "fx-" + source.lower(),
                "target_liquidity_account_id": "fx-" + target.lower(),
            }
            if self.rng.random() < 0.5:
                quote["spread_account_id"] = "fxfee-" + source.lower()
            if self.rng.random() < 0.3:
                quote["max_target_amount"] = self.rng.randint(1, 10**6)
            self.quotes.append((quote_id, source, target))
            sender = FX_BANK.did if self.rng.random() > 0.1 else BANK.did
            calls.append(("payments", "create_fx_quote", quote, sender, None))
        quote_id, source, target = self.rng.choice(self.quotes)
        payer = self.rng.choice(self.customers(source))
        beneficiary = self.rng.choice(self.customers(target))
        side = self.rng.choice(["source_amount", "target_amount"])
        payment: dict[str, Any] = {
            "id": self.next_id("fx"),
            "quote_id": quote_id,
            "debit_account_id": payer[0],
            "credit_account_id": beneficiary[0],
            side: self.rng.choice([1, self.rng.randint(1, 300_000), 10**15]),
        }
        if self.rng.random() < 0.3:
            payment["reference"] = self.rng.choice(REFERENCES[3:])
        calls.append(("payments", "pay_fx", payment, payer[1], None))
        if self.rng.random() < 0.3:
            calls.append(("payments", "pay_fx", dict(payment), payer[1], None))  # a retry
        return calls

    def _status(self) -> tuple[str, str, Any, str, str | None]:
        target = self.rng.choice(self.customers())[0]
        if self.rng.random() < 0.15:
            target = "fee-" + self.rng.choice(CURRENCIES).lower()
        status = self.rng.choice(["frozen", "open", "open", "closed"])
        sender = self.rng.choice([BANK.did, BANK.did, REGULATOR.did, INSURER.did])
        return (
            "payments",
            "set_account_status",
            {"account_id": target, "status": status},
            sender,
            None,
        )

    def _open_accounts(self) -> tuple[str, str, Any, str, str | None]:
        rows = []
        for _ in range(self.rng.randint(1, 3)):
            owner = self.rng.choice(USERS)
            code = self.rng.choice(CURRENCIES)
            extra: dict[str, Any] = {}
            if self.rng.random() < 0.3:
                extra["credit_limit"] = self.rng.choice([100, 10**6])
            rows.append((self.next_id("acct"), owner, code, "customer", extra))
        args = self._accounts(rows)
        roll = self.rng.random()
        if roll < 0.15:
            args["accounts"].append({"id": "bad id", "owner": USERS[0], "currency": "CNY"})
        elif roll < 0.3:
            args["accounts"].append({**args["accounts"][0], "kind": "merchant"})  # differs
        elif roll < 0.4:
            args["accounts"].append(
                {"id": self.next_id("acct"), "owner": USERS[0], "currency": "XXX", "kind": "fee"}
            )
        elif roll < 0.5:
            args["accounts"].append(dict(args["accounts"][0]))  # the same again: exists
        return ("payments", "create_accounts", args, BANK.did, None)

    def _relay(self, hot: list[str]) -> tuple[str, str, Any, str, str | None]:
        code = self.rng.choice(CURRENCIES)
        relay = "relay-" + code.lower()
        customer = self.rng.choice(self.customers(code))
        if hot and self.rng.random() < 0.5:
            hot_id = self.rng.choice(hot)
            hot_account = next(a for a in self.accounts if a[0] == hot_id)
            customer = hot_account
            code = hot_account[2]
            relay = "relay-" + code.lower()
        first = self._item(customer[0], relay, self.rng.randint(1, 50_000), code)
        second = self._item(relay, customer[0], self.rng.choice([1, 700, 10**8]), code)
        method = self.rng.choice(["pay_two", "pay_caught", "peek"])
        if method == "pay_caught" and self.rng.random() < 0.5:
            first["amount"] = 10**15  # refused, and caught
        if method == "peek":
            return (
                "relay",
                "peek",
                {"account_id": customer[0], "transfer": first},
                customer[1],
                None,
            )
        return ("relay", method, {"first": first, "second": second}, customer[1], None)

    def _malformed(self) -> tuple[str, str, Any, str, str | None]:
        return self.rng.choice(
            [
                ("payments", "create_transfers", {"transfers": []}, USERS[0], None),
                ("payments", "create_transfers", {"transfers": "x"}, USERS[0], None),
                ("payments", "create_transfers", ["x"], USERS[0], None),
                ("payments", "create_transfers", {"transfers": [7, None]}, USERS[0], None),
                ("payments", "transfer", {}, USERS[0], None),
                ("payments", "no_such_method", {}, USERS[0], None),
                ("payments", "set_account_status", {"account_id": "nope"}, BANK.did, None),
            ]
        )


def _digest_update(digest: Any, label: bytes, data: bytes) -> None:
    digest.update(label + len(data).to_bytes(8, "big") + data)


def run_workload(seed: int = SEED, blocks: int = BLOCKS) -> str:
    """Run the workload; return the sha256 (hex) over everything it produced, in order."""
    generator = _Generator(seed)
    state = MemoryState({MEMBER_PREFIX + m.did: m.to_json() for m in MEMBERS})
    registry = ContractRegistry([PAYMENTS_CONTRACT, RELAY_CONTRACT])
    digest = hashlib.sha256()
    time_ms = GENESIS_TIME_MS
    tx_counter = 0
    plan = generator.genesis_calls()
    for height in range(1, blocks + 1):
        if height <= len(plan):
            calls = plan[height - 1]
        else:
            calls = generator.block_calls(generator.hot_accounts())
        time_ms += generator.rng.choice([1, 500, 1_000, 1_000, 2_000, 5_000])
        block = BlockInfo(chain_id="golden", height=height, time_ms=time_ms)
        staged = BlockState(state)
        for contract, method, args, sender, signer in calls:
            tx_counter += 1
            if method == "create_fx_quote" and type(args) is dict:
                args = {**args, "expires_at_ms": time_ms + args["expires_at_ms"]}
            signer = sender if signer is None else signer
            tx = TxInfo(
                tx_hash=hashlib.sha256(f"golden-{tx_counter}".encode()).hexdigest(),
                sender=sender,
                signer=signer,
                nonce=tx_counter,
                contract=contract,
                method=method,
                vouched=signer != sender,
            )
            outcome = execute_tx(registry, staged, tx, block, args)
            as_json = outcome.to_json()
            _digest_update(digest, b"R", canonical(as_json))
            _digest_update(digest, b"E", outcome.encoded(as_json))
        _digest_update(
            digest, b"B", canonical({"end_block_events": run_end_block(registry, staged, block)})
        )
        for key, value in staged.write_set():
            _digest_update(digest, b"K", key.encode())
            _digest_update(digest, b"V", b"<deleted>" if value is None else value)
        state.commit(staged)
    for key, value in sorted(state.raw.items()):
        _digest_update(digest, b"S", key.encode() + b"=" + value)
    return digest.hexdigest()


if __name__ == "__main__":
    import zhijin

    print(zhijin.__file__)
    print(run_workload())
