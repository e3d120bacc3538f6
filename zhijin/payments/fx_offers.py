"""What a customer sees of the FX quotes: which firm quotes are live for a currency pair, and
what one of them would do with an amount (the contract's own arithmetic, `calc.fx_from_source`
and `calc.fx_from_target`, with its named roundings), so the figures a page shows are the
figures `pay_fx` books.

Quotes live only in committed state (`payments/quote/<id>`: their used capacity changes with
every payment under them), so the live ones are found by a bounded scan of that prefix, newest
state as committed.  Expired quotes stay in state forever; the scan reads at most
`QUOTES_SCANNED_MAX` of them and says when it stopped short (`complete`), so a node with a long
history of quotes needs a projection of live quotes (noted in docs/payments.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from zhijin.chain.errors import NotFound
from zhijin.payments import calc, currency, service
from zhijin.payments.codes import Code, PaymentsError
from zhijin.payments.expected import PaymentsHost
from zhijin.payments.records import keys
from zhijin.payments.requests import SOURCE_SIDE, TARGET_SIDE

__all__ = [
    "QUOTES_SCANNED_MAX",
    "QUOTES_SHOWN_MAX",
    "FxPreview",
    "best",
    "live_quotes",
    "preview",
    "quote_pairs",
]

QUOTES_SCANNED_MAX = 2_000  # state rows read per listing (expired quotes included)
QUOTES_SHOWN_MAX = 50  # live quotes answered per pair
_SCAN_PAGE = 500
SIDES = (SOURCE_SIDE, TARGET_SIDE)


def _scan(platform: PaymentsHost) -> tuple[list[dict[str, Any]], bool]:
    """Every committed quote, up to QUOTES_SCANNED_MAX: (quotes, whether the scan finished)."""
    store = platform.node.store
    quotes: list[dict[str, Any]] = []
    after = ""
    with store.read() as conn:
        while len(quotes) < QUOTES_SCANNED_MAX:
            page = store.state_scan(conn, keys.QUOTE, after, _SCAN_PAGE)
            quotes.extend(value for _, value in page)
            if len(page) < _SCAN_PAGE:
                return quotes, True
            after = page[-1][0]
    return quotes, False


def _remaining(quote: dict[str, Any]) -> int | None:
    if quote["max_target_amount"] is None:
        return None
    return int(quote["max_target_amount"]) - int(quote["used_target_amount"])


def _view(quote: dict[str, Any], now_ms: int) -> dict[str, Any]:
    return {
        **quote,
        "remaining_target_amount": _remaining(quote),
        "expires_in_ms": max(0, int(quote["expires_at_ms"]) - now_ms),
        "spread_percent": str(Decimal(int(quote["spread_bps"])) / 100),
    }


def live_quotes(
    platform: PaymentsHost, *, source_currency: str, target_currency: str
) -> dict[str, Any]:
    """The quotes for the pair that have not expired (block time of the head) and have
    capacity left, soonest expiry last, at most QUOTES_SHOWN_MAX."""
    now_ms = platform.node.head.time_ms
    quotes, complete = _scan(platform)
    live = [
        _view(q, now_ms)
        for q in quotes
        if q["source_currency"] == source_currency
        and q["target_currency"] == target_currency
        and int(q["expires_at_ms"]) > now_ms
        and (_remaining(q) is None or (_remaining(q) or 0) > 0)
    ]
    live.sort(key=lambda q: (-int(q["expires_at_ms"]), q["id"]))
    return {
        "source_currency": source_currency,
        "target_currency": target_currency,
        "as_of_ms": now_ms,
        "quotes": live[:QUOTES_SHOWN_MAX],
        "complete": complete,
    }


def quote_pairs(platform: PaymentsHost, *, source_currency: str) -> list[str]:
    """The target currencies some live quote sells for `source_currency`, sorted."""
    now_ms = platform.node.head.time_ms
    quotes, _ = _scan(platform)
    return sorted(
        {
            q["target_currency"]
            for q in quotes
            if q["source_currency"] == source_currency
            and int(q["expires_at_ms"]) > now_ms
            and (_remaining(q) is None or (_remaining(q) or 0) > 0)
        }
    )


@dataclass(frozen=True, slots=True)
class FxPreview:
    """What `pay_fx` would book under one quote for one amount, by the contract's rules."""

    quote: dict[str, Any]
    side: str
    amount_minor: int
    source_exponent: int
    target_exponent: int
    amounts: calc.FxAmounts
    rounding: str
    refusal: str | None  # the contract's code if this quote would refuse it now

    def to_json(self) -> dict[str, Any]:
        return {
            "quote_id": self.quote["id"],
            "side": self.side,
            "requested_amount": self.amount_minor,
            "source_amount": self.amounts.source_amount,
            "principal_amount": self.amounts.principal_amount,
            "spread_amount": self.amounts.spread_amount,
            "target_amount": self.amounts.target_amount,
            "rate": self.quote["rate"],
            "rounding": self.rounding,
            "source_exponent": self.source_exponent,
            "target_exponent": self.target_exponent,
            "expires_at_ms": self.quote["expires_at_ms"],
            "refusal": self.refusal,
        }


def _exponent(platform: PaymentsHost, account_id: str, code: str) -> int:
    """The exponent the contract uses: the one its liquidity account recorded when opened."""
    try:
        return int(service.get_account(platform, account_id=account_id)["exponent"])
    except NotFound:
        return currency.exponent(code)


def preview(
    platform: PaymentsHost, quote: dict[str, Any], *, side: str, amount_minor: int
) -> FxPreview:
    """The payment this quote makes of `amount_minor` (in the source currency for side
    `source`, the target's for `target`): principal, spread and target as `pay_fx` computes
    them, and the code it would refuse with for a reason known now (too small, capacity)."""
    if side not in SIDES:
        raise PaymentsError(Code.AMOUNT_SIDE_INVALID, "side is source or target")
    rate = calc.parse_rate(quote["rate"])
    assert rate is not None  # the contract stored only valid rates
    source_exponent = _exponent(
        platform, quote["source_liquidity_account_id"], quote["source_currency"]
    )
    target_exponent = _exponent(
        platform, quote["target_liquidity_account_id"], quote["target_currency"]
    )
    spread_bps = int(quote["spread_bps"])
    if side == SOURCE_SIDE:
        amounts = calc.fx_from_source(
            source_amount=amount_minor,
            rate=rate,
            spread_bps=spread_bps,
            source_exponent=source_exponent,
            target_exponent=target_exponent,
        )
    else:
        amounts = calc.fx_from_target(
            target_amount=amount_minor,
            rate=rate,
            spread_bps=spread_bps,
            source_exponent=source_exponent,
            target_exponent=target_exponent,
        )
    refusal = None
    remaining = _remaining(quote)
    if amounts.principal_amount <= 0 or amounts.target_amount <= 0:
        refusal = Code.AMOUNT_TOO_SMALL.value
    elif remaining is not None and amounts.target_amount > remaining:
        refusal = Code.QUOTE_CAPACITY_EXCEEDED.value
    return FxPreview(
        quote=quote,
        side=side,
        amount_minor=amount_minor,
        source_exponent=source_exponent,
        target_exponent=target_exponent,
        amounts=amounts,
        rounding=calc.FX_TARGET_ROUNDING if side == SOURCE_SIDE else calc.FX_PRINCIPAL_ROUNDING,
        refusal=refusal,
    )


def best(previews: list[FxPreview]) -> FxPreview | None:
    """The quote that serves the payer best among those that would not refuse: the most
    received for a fixed source amount, the least paid for a fixed target amount; a tie goes
    to the quote that stays open longer."""
    usable = [p for p in previews if p.refusal is None]
    if not usable:
        return None

    def score(p: FxPreview) -> tuple[int, int]:
        value = p.amounts.target_amount if p.side == SOURCE_SIDE else -p.amounts.source_amount
        return value, int(p.quote["expires_at_ms"])

    return max(usable, key=score)
