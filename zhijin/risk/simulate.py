"""A seeded fraud simulator, in the style of the Fraud Detection Handbook's generator: customers
with their own spending habits and payees, months of ordinary payments, and known fraud
scenarios injected among them.  It yields `PaymentFacts` with labels, in time order, for the
evaluation (evaluation.py); nothing in it reads the engine or its rules.

Scenarios (`SimulationParams.scenarios`):

- `account_takeover`: the password is changed from a new device at night, then one to three
  large payments go to a mule the customer never paid (the mule is paid by many victims);
- `card_testing`: a burst of 8-20 tiny payments within a couple of minutes to one merchant;
- `compromised_device` (**held out of development**: the rules were written without looking
  at it): payments from a new device, in daytime, to a known payee, of 3-8x the usual amount,
  with the session signed in from far away an hour before.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from zhijin.payments import PaymentFacts
from zhijin.risk.features import CredentialChange

__all__ = ["HELD_OUT", "Labelled", "SimulationParams", "simulate"]

HELD_OUT = "compromised_device"
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
START_MS = 1_780_243_200_000  # 2026-06-01 00:00 Beijing time
SHANGHAI = (31_230_000, 121_470_000)
URUMQI = (43_820_000, 87_610_000)


@dataclass(frozen=True)
class SimulationParams:
    seed: int = 20_261_203
    customers: int = 400
    payees: int = 300
    days: int = 60
    payments_per_customer_day: float = 0.8
    fraud_per_day: int = 6  # scenario instances a day, spread over the scenarios
    scenarios: tuple[str, ...] = ("account_takeover", "card_testing", HELD_OUT)


@dataclass(frozen=True)
class Labelled:
    facts: PaymentFacts
    fraud: bool
    scenario: str | None
    credential_change: CredentialChange | None = None
    sign_in: tuple[int, int, int] | None = None  # (lat, lon, at_ms) of the session's sign-in


def _payment(rng: random.Random, customer: int, n: int, at_ms: int, **kw: object) -> PaymentFacts:
    base: dict[str, object] = {
        "transfer_id": f"s-{customer}-{n}",
        "debit_account_id": f"c{customer}",
        "credit_account_id": f"p{rng.randrange(10**6)}",
        "payer": f"did:sim:c{customer}",
        "payee_owner": None,
        "currency": "CNY",
        "exponent": 2,
        "amount_minor": 1000,
        "at_ms": at_ms,
        "user_id": f"u{customer}",
        "payee_known": True,
        "device_known": True,
        "lat_e6": SHANGHAI[0],
        "lon_e6": SHANGHAI[1],
        "auth_at_ms": at_ms - 5 * 60_000,
        "mfa_at_ms": None,
        "account_created_ms": START_MS - rng.randrange(30, 2000) * DAY_MS,
    }
    base.update(kw)
    return PaymentFacts(**base)  # type: ignore[arg-type]


def simulate(params: SimulationParams) -> Iterator[Labelled]:
    """Every payment, ordinary and fraudulent, in time order."""
    rng = random.Random(params.seed)
    habits = [
        (rng.lognormvariate(9.5, 0.8), [rng.randrange(params.payees) for _ in range(5)])
        for _ in range(params.customers)
    ]  # (mean amount in fen, the customer's usual payees)
    mules = [f"mule{m}" for m in range(8)]
    events: list[Labelled] = []
    counter = 0
    for day in range(params.days):
        day_ms = START_MS + day * DAY_MS
        for customer, (mean, payees) in enumerate(habits):
            for _ in range(_poisson(rng, params.payments_per_customer_day)):
                counter += 1
                at = day_ms + int(rng.triangular(7, 23, 14) * HOUR_MS)
                amount = max(100, int(rng.gauss(mean, mean / 3)))
                new = rng.random() < 0.05
                payee = f"new{counter}" if new else f"p{rng.choice(payees)}"
                facts = _payment(rng, customer, counter, at, credit_account_id=payee,
                                 amount_minor=amount, payee_known=not new)  # fmt: skip
                events.append(Labelled(facts, False, None))
        for instance in range(params.fraud_per_day):
            scenario = params.scenarios[instance % len(params.scenarios)]
            customer = rng.randrange(params.customers)
            counter += 1
            events.extend(_fraud(rng, scenario, customer, counter, day_ms, habits, mules))
    events.sort(key=lambda e: (e.facts.at_ms, e.facts.transfer_id))
    yield from events


def _poisson(rng: random.Random, mean: float) -> int:
    count, threshold, product = 0, pow(2.718281828, -mean), rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def _fraud(
    rng: random.Random,
    scenario: str,
    customer: int,
    counter: int,
    day_ms: int,
    habits: list[tuple[float, list[int]]],
    mules: list[str],
) -> list[Labelled]:
    mean, payees = habits[customer]
    if scenario == "account_takeover":
        at = day_ms + rng.randrange(0, 5) * HOUR_MS + rng.randrange(HOUR_MS)
        change = CredentialChange(f"u{customer}", "password", at - rng.randrange(10, 60) * 60_000)
        mule = rng.choice(mules)
        out = []
        for k in range(rng.randint(1, 3)):
            facts = _payment(
                rng, customer, counter * 10 + k, at + k * 120_000, credit_account_id=mule,
                amount_minor=int(rng.uniform(3000_00, 30000_00)), payee_known=False,
                device_known=False, auth_at_ms=change.at_ms + 60_000,
            )  # fmt: skip
            out.append(
                Labelled(facts, True, scenario, credential_change=change if k == 0 else None)
            )
        return out
    if scenario == "card_testing":
        at = day_ms + rng.randrange(24) * HOUR_MS
        merchant = f"shop{rng.randrange(20)}"
        return [
            Labelled(
                _payment(
                    rng,
                    customer,
                    counter * 100 + k,
                    at + k * rng.randrange(3000, 9000),
                    credit_account_id=merchant,
                    amount_minor=rng.randrange(100, 300),
                    payee_known=False,
                ),
                True,
                scenario,
            )
            for k in range(rng.randint(8, 20))
        ]
    at = day_ms + int(rng.uniform(9, 20) * HOUR_MS)  # compromised_device
    facts = _payment(
        rng, customer, counter, at, credit_account_id=f"p{rng.choice(payees)}",
        amount_minor=int(mean * rng.uniform(3, 8)), device_known=False,
        lat_e6=URUMQI[0], lon_e6=URUMQI[1], auth_at_ms=at - HOUR_MS,
    )  # fmt: skip
    return [Labelled(facts, True, scenario, sign_in=(SHANGHAI[0], SHANGHAI[1], at - HOUR_MS))]
