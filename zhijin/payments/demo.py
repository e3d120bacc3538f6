"""Demo data for payments: the platform's books, customer and merchant accounts in five
currencies, a fee schedule, FX quotes and a few transfers, one of them cross-border.

Everything is booked through the contract by this node's member (a bank), customers' payments
vouched for their owners, so the demo exercises the same rules as real traffic.  Re-running it
changes nothing: every id is fixed, a retried request answers `exists`, and the fee schedule and
quotes are only published when they are not there yet.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from zhijin.chain.errors import invariant
from zhijin.identity.rbac import Principal, Role
from zhijin.payments import service
from zhijin.payments.codes import Code
from zhijin.payments.currency import exponent
from zhijin.payments.expected import PaymentsHost
from zhijin.payments.opening import AccountOpening
from zhijin.payments.opening_store import create_tables
from zhijin.payments.records import keys
from zhijin.platform.demo_clock import DemoClock
from zhijin.platform.errors import InvalidInput
from zhijin.platform.gateway import MemberGateway

__all__ = [
    "DEMO_CURRENCIES",
    "DemoPayments",
    "demo_account_id",
    "seed_account_request",
    "seed_payments_demo",
]

DEMO_CURRENCIES = ("CNY", "USD", "HKD", "EUR", "JPY")
CUSTOMER_CURRENCIES = ("CNY", "USD", "HKD")
DEPOSIT_MAJOR_UNITS = 50_000
LIQUIDITY_MAJOR_UNITS = 10_000_000
QUOTE_TTL_MS = 23 * 3600 * 1000  # inside the contract's 24 h
FEE_PRODUCT = "p2p"
# (quote id suffix, source, target, rate: target major units per source major unit)
DEMO_QUOTES = (
    ("cny-usd", "CNY", "USD", "0.1385"),
    ("usd-cny", "USD", "CNY", "7.21"),
    ("cny-hkd", "CNY", "HKD", "1.0812"),
    ("eur-cny", "EUR", "CNY", "7.83"),
    ("cny-jpy", "CNY", "JPY", "20.91"),
)
log = logging.getLogger("zhijin.demo")
_NAME_CHARACTERS = re.compile(r"[^a-z0-9]")
NAME_CHARS_MAX = 24


@dataclass(frozen=True, slots=True)
class DemoPayments:
    accounts: tuple[str, ...]
    quotes: tuple[str, ...]
    transfers: tuple[str, ...]


def demo_account_id(name: str, code: str) -> str:
    slug = _NAME_CHARACTERS.sub("", name.lower())[:NAME_CHARS_MAX] or "user"
    return f"demo-{slug}-{code.lower()}"


def _minor(major: int, code: str) -> int:
    return major * 10 ** exponent(code)


def _books(member: str) -> list[dict[str, Any]]:
    accounts = []
    for code in DEMO_CURRENCIES:
        c = code.lower()
        accounts += [
            {"id": f"demo-settlement-{c}", "owner": member, "currency": code, "kind": "settlement"},
            {"id": f"demo-fee-{c}", "owner": member, "currency": code, "kind": "fee"},
            {"id": f"demo-fx-{c}", "owner": member, "currency": code, "kind": "fx_liquidity"},
        ]
    return accounts


def _check(summary: dict[str, Any]) -> None:
    failed = [item for item in summary["results"] if item["result"] != Code.OK]
    invariant(not failed, f"demo requests were refused: {failed}")


def seed_payments_demo(
    platform: PaymentsHost,
    owners: Mapping[str, str],
    *,
    merchant: str | None = None,
    clock: DemoClock | None = None,
) -> DemoPayments:
    """Seed the demo for `owners` (name -> DID): each gets customer accounts in CNY, USD and
    HKD; `merchant` (default: the last name) also gets a CNY merchant account.  On a demo
    chain whose story starts in the past (`clock`), a fresh set of FX quotes is published once
    it reaches the present."""
    invariant(len(owners) >= 2, "the demo needs at least two owners")
    gateway = MemberGateway(platform.node)
    member = platform.node.key.did
    names = list(owners)
    merchant = merchant or names[-1]
    books = _books(member)
    customers = [
        {"id": demo_account_id(n, code), "owner": owners[n], "currency": code, "kind": "customer"}
        for n in names
        for code in CUSTOMER_CURRENCIES
    ]
    shop = demo_account_id(merchant + "-shop", "cny")
    customers.append({"id": shop, "owner": owners[merchant], "currency": "CNY", "kind": "merchant"})
    accounts = books + customers
    for start in range(0, len(accounts), 100):
        _check(service.open_accounts(platform, gateway, accounts=accounts[start : start + 100]))
    transfers = _fund(platform, gateway, names)
    _publish_fee_schedule(platform, gateway)
    quotes = _publish_quotes(platform, gateway)
    transfers += _payments(platform, gateway, owners, names, shop)
    if clock is not None:
        clock.at_present(lambda: _publish_quotes(platform, gateway, day=_today(platform)))
    return DemoPayments(
        accounts=tuple(a["id"] for a in accounts), quotes=quotes, transfers=tuple(transfers)
    )


def _fund(platform: PaymentsHost, gateway: MemberGateway, names: list[str]) -> list[str]:
    deposits: list[dict[str, Any]] = []
    for code in DEMO_CURRENCIES:
        c = code.lower()
        deposits.append(
            {
                "id": f"demo-liquidity-{c}",
                "debit_account_id": f"demo-settlement-{c}",
                "credit_account_id": f"demo-fx-{c}",
                "amount": _minor(LIQUIDITY_MAJOR_UNITS, code),
                "currency": code,
            }
        )
    for name in names:
        for code in CUSTOMER_CURRENCIES:
            account_id = demo_account_id(name, code)
            deposits.append(
                {
                    "id": f"{account_id}-deposit",
                    "debit_account_id": f"demo-settlement-{code.lower()}",
                    "credit_account_id": account_id,
                    "amount": _minor(DEPOSIT_MAJOR_UNITS, code),
                    "currency": code,
                    "reference": "opening deposit",
                }
            )
    for start in range(0, len(deposits), 100):
        _check(service.create_transfers(platform, gateway, transfers=deposits[start : start + 100]))
    return [d["id"] for d in deposits]


def _today(platform: PaymentsHost) -> str:
    return datetime.fromtimestamp(platform.node.clock() / 1000, UTC).strftime("%Y%m%d")


def _publish_fee_schedule(platform: PaymentsHost, gateway: MemberGateway) -> None:
    if platform.node.state_get(keys.fee(FEE_PRODUCT, "CNY")) is not None:
        return
    service.set_fee_schedule(
        platform,
        gateway,
        schedule={
            "product": FEE_PRODUCT,
            "currency": "CNY",
            "fee_account_id": "demo-fee-cny",
            "fixed_amount": 100,
            "rate_bps": 10,
            "min_amount": 100,
            "max_amount": 5_000,
        },
    )


def _publish_quotes(
    platform: PaymentsHost, gateway: MemberGateway, *, day: str | None = None
) -> tuple[str, ...]:
    """The demo's FX quotes; `day` (YYYYMMDD) names a later set, published when the demo
    chain's story reaches the present (the first set expired long before)."""
    ids = []
    for suffix, source, target, rate in DEMO_QUOTES:
        quote_id = f"demo-quote-{suffix}" if day is None else f"demo-quote-{suffix}-{day}"
        ids.append(quote_id)
        if platform.node.state_get(keys.quote(quote_id)) is not None:
            continue  # published on an earlier run (perhaps expired since: it stays as it was)
        service.create_fx_quote(
            platform,
            gateway,
            quote={
                "id": quote_id,
                "source_currency": source,
                "target_currency": target,
                "rate": rate,
                "spread_bps": 25,
                "expires_at_ms": platform.node.clock() + QUOTE_TTL_MS,
                "source_liquidity_account_id": f"demo-fx-{source.lower()}",
                "target_liquidity_account_id": f"demo-fx-{target.lower()}",
                "spread_account_id": f"demo-fee-{source.lower()}",
            },
        )
    return tuple(ids)


def _payments(
    platform: PaymentsHost,
    gateway: MemberGateway,
    owners: Mapping[str, str],
    names: list[str],
    shop: str,
) -> list[str]:
    payer, payee = names[0], names[1]
    payer_cny = demo_account_id(payer, "cny")
    done = []
    for request in (
        {
            "id": "demo-p2p-1",
            "debit_account_id": payer_cny,
            "credit_account_id": demo_account_id(payee, "cny"),
            "amount": 128_800,
            "currency": "CNY",
            "product": FEE_PRODUCT,
            "reference": "dinner split",
        },
        {
            "id": "demo-hold-1",
            "debit_account_id": payer_cny,
            "credit_account_id": shop,
            "amount": 59_900,
            "currency": "CNY",
            "flags": ["pending"],
            "reference": "hotel deposit",
        },
    ):
        service.transfer(platform, gateway, request=request, sender=owners[payer])
        done.append(str(request["id"]))
    service.resolve_pending(
        platform,
        gateway,
        pending_id="demo-hold-1",
        transfer_id="demo-hold-1-capture",
        post=True,
        amount=45_000,
        sender=owners[payer],
    )
    done.append("demo-hold-1-capture")
    service.pay_fx(
        platform,
        gateway,
        payment={
            "id": "demo-xborder-1",
            "quote_id": "demo-quote-cny-usd",
            "debit_account_id": payer_cny,
            "credit_account_id": demo_account_id(payee, "usd"),
            "source_amount": 1_000_000,
            "reference": "tuition 2026",
        },
        sender=owners[payer],
    )
    done.append("demo-xborder-1")
    return done


def seed_account_request(platform: PaymentsHost, user_id: str) -> None:
    """The onboarding customer (KYC pending) asks for a USD savings account, so the officer's
    queue has one to decide.  Approving their KYC opens their CNY account by the opening
    policy; this one waits for an officer (idempotent: the request id is fixed)."""
    create_tables(platform.platform_engine)
    try:
        AccountOpening(platform, MemberGateway(platform.node)).request(
            principal=Principal(user_id, frozenset({Role.CUSTOMER})),
            request_id=None,
            currency_code="USD",
            kind="customer",
            purpose="savings",
        )
    except InvalidInput as exc:
        # Someone rejected the demo customer's KYC since the first run: nothing to ask for.
        log.warning("demo account request not made: %s", exc.code)
