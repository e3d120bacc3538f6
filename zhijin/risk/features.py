"""The features a payment is scored on: their names and types (what rule expressions are
checked against when saved), the in-memory store that keeps them current, and the pure
calculators that turn a payment's facts and the store's history into one feature row.

The store is bounded (`limits`): per paying account the last payments and attempts, per payee
the last inbound payments, at most `ACCOUNTS_TRACKED_MAX` accounts (least recently used
forgotten), and the set of transfer ids already learned from, so a repeated event changes
nothing.  It is rebuilt at start from the payments ledger's recent history and identity's
credential changes (`RiskEngine.rebuild`), and learns from each screened payment as it goes.

A feature that cannot be known for a payment is None, never a guess: the account's first
payments have no amount statistics, an API client sends no device or location, a currency
without a reference rate has no reference amount.  Rules must say what a missing value means
(`known(x)`, `or_default(x, d)`); the expression checker refuses one that does not.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from typing import Any

from zhijin.payments import PaymentFacts
from zhijin.risk import limits

__all__ = [
    "FEATURES",
    "CredentialChange",
    "FeatureStore",
    "Learned",
    "ReferenceRates",
    "distance_km",
]

# name -> type: "int" | "bool" | "str", with "?" when the value may be missing (None).
FEATURES: Mapping[str, str] = {
    "amount_minor": "int",
    "currency": "str",
    "amount_ref_minor": "int?",  # in the reference currency's minor units (CNY fen)
    "history_payments": "int",  # the account's payments the store remembers
    "amount_zscore_x100": "int?",  # (amount - mean) / stdev of its own history, times 100
    "amount_quantile_bps": "int?",  # share of its own past payments below this amount
    "payments_1m": "int",  # attempts from this account in the last minute (before this one)
    "payments_1h": "int",
    "payments_24h": "int",
    "amount_24h_ref_minor": "int",  # moved out in the last 24 h (reference currency)
    "payee_new": "bool?",  # not paid before this sign-in (identity's novelty); None: unknown
    "payee_seen": "bool",  # this account paid this payee before, as far as the store knows
    "device_new": "bool?",
    "distance_km": "int?",  # from the last sign-in's location
    "speed_kmh": "int?",  # that distance over the time since the last sign-in
    "minutes_since_sign_in": "int?",
    "local_hour": "int",  # Beijing time, 0-23
    "night": "bool",  # within the policy's night hours
    "amount_round": "bool",  # a whole multiple of the policy's round unit
    "account_age_days": "int?",
    "hours_since_credential_change": "int?",  # password, phone number or authenticator
    "credential_changed_24h": "bool",
    "payee_senders_24h": "int",  # distinct accounts that paid the payee in 24 h
    "payee_outflow_share_bps": "int?",  # the payee's 24 h outflow over its 24 h inflow
    "payee_mule_score_bps": "int",  # many unrelated senders, fast outflow: 0-10000
}

_EARTH_RADIUS_KM = 6371.0
_BEIJING_OFFSET_MS = 8 * limits.HOUR_MS


def distance_km(lat1_e6: int, lon1_e6: int, lat2_e6: int, lon2_e6: int) -> int:
    """Great-circle distance, rounded down (floats are fine: no money)."""
    lat1, lon1 = math.radians(lat1_e6 / 1e6), math.radians(lon1_e6 / 1e6)
    lat2, lon2 = math.radians(lat2_e6 / 1e6), math.radians(lon2_e6 / 1e6)
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return int(2 * _EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h))))


@dataclass(frozen=True, slots=True)
class ReferenceRates:
    """Amounts in one reference currency (the policy's), rounded up: never understated."""

    currency: str
    exponent: int
    rates: Mapping[str, Decimal]  # reference units per one unit of the keyed currency

    def convert(self, amount_minor: int, currency: str, exponent: int) -> int | None:
        if currency == self.currency and exponent == self.exponent:
            return amount_minor
        rate = self.rates.get(currency)
        if rate is None:
            return None
        major = Decimal(amount_minor).scaleb(-exponent) * rate
        return int(major.scaleb(self.exponent).to_integral_value(rounding=ROUND_CEILING))


@dataclass(frozen=True, slots=True)
class Learned:
    """One payment the store learns from (screened and committed, or read back at start)."""

    transfer_id: str
    debit_account_id: str
    credit_account_id: str
    amount_ref_minor: int | None
    at_ms: int


@dataclass(frozen=True, slots=True)
class CredentialChange:
    user_id: str
    kind: str  # password | phone | authenticator
    at_ms: int


@dataclass(slots=True)
class _Account:
    payments: deque[tuple[int, int, str]] = field(
        default_factory=lambda: deque(maxlen=limits.HISTORY_PER_ACCOUNT_MAX)
    )  # (at_ms, amount_ref_minor, payee) of what moved out
    attempts: deque[int] = field(
        default_factory=lambda: deque(maxlen=limits.HISTORY_PER_ACCOUNT_MAX)
    )  # at_ms of every screened attempt (velocity counts a refused flood too)
    payees: set[str] = field(default_factory=set)
    inbound: deque[tuple[int, str, int]] = field(
        default_factory=lambda: deque(maxlen=limits.PAYEE_SENDERS_MAX)
    )  # (at_ms, sender account, amount_ref_minor) of what came in


class _Bounded(OrderedDict[str, Any]):
    """An LRU map holding at most `size` keys."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def touch(self, key: str, make: Any) -> Any:
        value = self.get(key)
        if value is None:
            value = make()
            self[key] = value
            if len(self) > self.size:
                self.popitem(last=False)
        else:
            self.move_to_end(key)
        return value


@dataclass(frozen=True, slots=True)
class FeaturePolicy:
    """The parts of the tier policy the calculators need (tiers.py holds the whole)."""

    reference: ReferenceRates
    night_from_hour: int
    night_to_hour: int
    round_unit_minor: int  # in the reference currency


class FeatureStore:
    """The bounded in-memory history behind the features; thread-safe (one lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: _Bounded = _Bounded(limits.ACCOUNTS_TRACKED_MAX)
        self._seen: _Bounded = _Bounded(limits.SEEN_TRANSFERS_MAX)
        self._attempted: _Bounded = _Bounded(limits.SEEN_TRANSFERS_MAX)
        self._credentials: _Bounded = _Bounded(limits.ACCOUNTS_TRACKED_MAX)
        self.credential_cursor = 0  # the audit log's seq read up to

    # -- learning --------------------------------------------------------------------------
    def learn(self, payment: Learned) -> bool:
        """Count a payment that moved; False (and nothing changes) when already counted."""
        with self._lock:
            if payment.transfer_id in self._seen:
                return False
            self._seen.touch(payment.transfer_id, lambda: True)
            amount = payment.amount_ref_minor or 0
            payer = self._accounts.touch(payment.debit_account_id, _Account)
            payer.payments.append((payment.at_ms, amount, payment.credit_account_id))
            if len(payer.payees) < limits.HISTORY_PER_ACCOUNT_MAX * 5:
                payer.payees.add(payment.credit_account_id)
            payee = self._accounts.touch(payment.credit_account_id, _Account)
            payee.inbound.append((payment.at_ms, payment.debit_account_id, amount))
            return True

    def attempt(self, transfer_id: str, debit_account_id: str, at_ms: int) -> None:
        """Count a screened attempt once per transfer id (a client's retry is not a flood)."""
        with self._lock:
            if transfer_id in self._attempted:
                return
            self._attempted.touch(transfer_id, lambda: True)
            self._accounts.touch(debit_account_id, _Account).attempts.append(at_ms)

    def credential_changed(self, change: CredentialChange) -> None:
        with self._lock:
            latest = self._credentials.get(change.user_id)
            if latest is None or change.at_ms > latest:
                self._credentials.touch(change.user_id, lambda: change.at_ms)
                self._credentials[change.user_id] = change.at_ms

    def size(self) -> dict[str, int]:
        with self._lock:
            return {"accounts": len(self._accounts), "transfers_learned": len(self._seen)}

    # -- features --------------------------------------------------------------------------
    def features(
        self,
        facts: PaymentFacts,
        policy: FeaturePolicy,
        *,
        last_sign_in: tuple[int | None, int | None, int | None] | None,
    ) -> dict[str, Any]:
        """The feature row of a payment, from its facts and the history before it.
        `last_sign_in`: (lat_e6, lon_e6, at_ms) of the user's last sign-in, or None."""
        amount_ref = policy.reference.convert(facts.amount_minor, facts.currency, facts.exponent)
        now = facts.at_ms
        with self._lock:
            payer = self._accounts.get(facts.debit_account_id)
            history = [a for _, a, _ in payer.payments] if payer is not None else []
            moved_24h = (
                sum(a for t, a, _ in payer.payments if now - t < limits.DAY_MS)
                if payer is not None
                else 0
            )
            attempts = list(payer.attempts) if payer is not None else []
            payee_seen = payer is not None and facts.credit_account_id in payer.payees
            payee = self._accounts.get(facts.credit_account_id)
            inbound = list(payee.inbound) if payee is not None else []
            payee_out = (
                sum(a for t, a, _ in payee.payments if now - t < limits.DAY_MS)
                if payee is not None
                else 0
            )
            changed_ms = None if facts.user_id is None else self._credentials.get(facts.user_id)
        row: dict[str, Any] = {
            "amount_minor": facts.amount_minor,
            "currency": facts.currency,
            "amount_ref_minor": amount_ref,
            "history_payments": len(history),
            "amount_24h_ref_minor": moved_24h,
            "payee_new": None if facts.payee_known is None else not facts.payee_known,
            "payee_seen": payee_seen,
            "device_new": None if facts.device_known is None else not facts.device_known,
            **_amount_statistics(amount_ref, history),
            **_velocity(attempts, now),
            **_travel(facts, last_sign_in),
            **_clock(now, amount_ref, policy),
            **_credentials(changed_ms, now),
            **_mule(inbound, payee_out, now),
        }
        row["account_age_days"] = (
            None
            if facts.account_created_ms is None
            else max(0, now - facts.account_created_ms) // limits.DAY_MS
        )
        return row


def _amount_statistics(amount_ref: int | None, history: list[int]) -> dict[str, int | None]:
    if amount_ref is None or len(history) < limits.HISTORY_FOR_STATISTICS_MIN:
        return {"amount_zscore_x100": None, "amount_quantile_bps": None}
    count = len(history)
    mean = sum(history) / count
    variance = sum((a - mean) ** 2 for a in history) / count
    # A history of equal amounts has no spread: one minor unit stands in for it, so that the
    # same amount again scores 0 and a larger one scores high, instead of dividing by zero.
    spread = max(math.sqrt(variance), 1.0, mean * 0.01)
    below = sum(1 for a in history if a < amount_ref)
    return {
        "amount_zscore_x100": int((amount_ref - mean) * 100 / spread),
        "amount_quantile_bps": below * 10_000 // count,
    }


def _velocity(attempts: list[int], now: int) -> dict[str, int]:
    ages = [now - t for t in attempts if now >= t]
    return {
        "payments_1m": sum(1 for age in ages if age < limits.MINUTE_MS),
        "payments_1h": sum(1 for age in ages if age < limits.HOUR_MS),
        "payments_24h": sum(1 for age in ages if age < limits.DAY_MS),
    }


def _travel(
    facts: PaymentFacts, last: tuple[int | None, int | None, int | None] | None
) -> dict[str, int | None]:
    since = None if facts.auth_at_ms is None else max(0, facts.at_ms - facts.auth_at_ms) // 60_000
    row: dict[str, int | None] = {
        "minutes_since_sign_in": since,
        "distance_km": None,
        "speed_kmh": None,
    }
    if last is None or facts.lat_e6 is None or facts.lon_e6 is None:
        return row
    lat, lon, at_ms = last
    if lat is None or lon is None:
        return row
    distance = distance_km(facts.lat_e6, facts.lon_e6, lat, lon)
    row["distance_km"] = distance
    if at_ms is not None:
        elapsed_ms = max(facts.at_ms - at_ms, limits.MINUTE_MS)  # at least a minute apart
        row["speed_kmh"] = distance * limits.HOUR_MS // elapsed_ms
    return row


def _clock(now: int, amount_ref: int | None, policy: FeaturePolicy) -> dict[str, Any]:
    hour = ((now + _BEIJING_OFFSET_MS) // limits.HOUR_MS) % 24
    start, end = policy.night_from_hour, policy.night_to_hour
    night = start <= hour < end if start <= end else (hour >= start or hour < end)
    unit = policy.round_unit_minor
    return {
        "local_hour": hour,
        "night": night,
        "amount_round": amount_ref is not None and amount_ref >= unit and amount_ref % unit == 0,
    }


def _credentials(changed_ms: int | None, now: int) -> dict[str, Any]:
    if changed_ms is None:
        return {"hours_since_credential_change": None, "credential_changed_24h": False}
    hours = max(0, now - changed_ms) // limits.HOUR_MS
    return {"hours_since_credential_change": hours, "credential_changed_24h": hours < 24}


def _mule(inbound: list[tuple[int, str, int]], outflow: int, now: int) -> dict[str, Any]:
    """Many unrelated senders and fast outflow: 5000 bps for ≥10 distinct senders in 24 h
    (proportionally fewer), plus up to 5000 bps for the share of the inflow paid out again."""
    recent = [(sender, amount) for t, sender, amount in inbound if now - t < limits.DAY_MS]
    senders = len({sender for sender, _ in recent})
    inflow = sum(amount for _, amount in recent)
    share = None if inflow <= 0 else min(10_000, outflow * 10_000 // inflow)
    score = min(senders, 10) * 500 + (0 if share is None else share // 2)
    return {
        "payee_senders_24h": senders,
        "payee_outflow_share_bps": share,
        "payee_mule_score_bps": min(10_000, score),
    }
