"""A seeded generator of payments with known laundering typologies, in the style of IBM's
AMLSim: ordinary customers paying merchants, each other and cash in and out, with fan-in,
fan-out, cycles, scatter-gather and structuring injected among them, each instance labelled.

Parameters (`SimulationParams`, all documented in docs/aml.md): the seed, how many customers,
merchants and days, how many ordinary payments a day, and how many instances of each typology.
Amounts are integer fen (CNY minor units); times are epoch milliseconds from `start_ms`.

The held-out variant: cycles of 5-6 hops spread over days (`cycle_long`) were kept out of
development: the detectors were written and tuned against the other variants only, and the
evaluation reports the held-out variant on its own line.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from zhijin.aml.facts import Movement
from zhijin.aml.rules import Channel, Party, Scope

__all__ = ["Instance", "SimulationParams", "Stream", "simulate"]

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS
YUAN = 100
BANK = "did:key:z6MkSimulatedBank"
CASH = "role:settlement"


@dataclass(frozen=True, slots=True)
class SimulationParams:
    seed: int = 20_261_203
    customers: int = 3_000
    merchants: int = 150
    days: int = 60
    payments_per_day: int = 2_000
    start_ms: int = 1_780_279_200_000  # 2026-06-01 10:00 Beijing time
    # Instances per typology variant.
    fan_in: int = 25
    fan_out: int = 25
    cycle: int = 25
    cycle_long: int = 25  # the held-out variant
    scatter_gather: int = 20
    structuring: int = 25


@dataclass(frozen=True, slots=True)
class Instance:
    typology: str  # the detector's typology name it should raise
    variant: str
    transfer_ids: frozenset[str]


@dataclass
class Stream:
    movements: list[Movement] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)
    opened: dict[str, int] = field(default_factory=dict)  # customer -> account opened at


class _Builder:
    def __init__(self, params: SimulationParams) -> None:
        self.p = params
        self.rng = random.Random(params.seed)
        self.stream = Stream()
        self._n = 0
        self.customers = [f"did:sim:c{i:05d}" for i in range(params.customers)]
        self.merchants = [f"did:sim:m{i:04d}" for i in range(params.merchants)]
        # Accounts opened over the year before the window, so a few are dormant-looking.
        for customer in self.customers:
            opened = params.start_ms - self.rng.randrange(30, 400) * DAY_MS
            self.stream.opened[customer] = opened
        # Launderers' accounts are drawn apart from the ordinary ones' busiest (AMLSim picks
        # accounts from the same population; so do we, without replacement per instance).
        self.pool = list(self.customers)
        self.rng.shuffle(self.pool)

    def move(
        self, payer: str, payee: str, amount: int, at_ms: int, *, channel: str = Channel.TRANSFER
    ) -> str:
        self._n += 1
        transfer_id = f"s{self._n:08d}"
        payer_party = self._party(payer)
        payee_party = self._party(payee)
        self.stream.movements.append(
            Movement(
                transfer_id=transfer_id,
                seq=0,
                time_ms=at_ms,
                payer=payer,
                payee=payee,
                payer_account=f"acc:{payer}",
                payee_account=f"acc:{payee}",
                payer_party=payer_party,
                payee_party=payee_party,
                payer_member=BANK,
                payee_member=BANK,
                amount_minor=amount,
                currency="CNY",
                channel=channel,
                scope=Scope.DOMESTIC,
            )
        )
        return transfer_id

    @staticmethod
    def _party(party: str) -> str:
        if party == CASH:
            return Party.PLATFORM
        return Party.ENTITY if party.startswith("did:sim:m") else Party.INDIVIDUAL

    def at(self, day: int) -> int:
        return self.p.start_ms + day * DAY_MS + self.rng.randrange(0, 14 * HOUR_MS)

    def take(self, count: int) -> list[str]:
        taken, self.pool = self.pool[:count], self.pool[count:]
        if len(taken) < count:
            raise ValueError("more launderers asked for than customers: raise `customers`")
        return taken

    def label(self, typology: str, variant: str, ids: list[str]) -> None:
        self.stream.instances.append(Instance(typology, variant, frozenset(ids)))


def _ordinary(b: _Builder) -> None:
    for day in range(b.p.days):
        for _ in range(b.p.payments_per_day):
            at = b.at(day)
            roll = b.rng.random()
            customer = b.rng.choice(b.customers)
            if roll < 0.70:
                amount = int(b.rng.lognormvariate(5.0, 1.1) * YUAN) + YUAN
                b.move(customer, b.rng.choice(b.merchants), amount, at)
            elif roll < 0.93:
                amount = int(b.rng.lognormvariate(7.0, 1.3) * YUAN) + YUAN
                b.move(customer, b.rng.choice(b.customers), amount, at)
            elif roll < 0.965:
                b.move(
                    CASH, customer, b.rng.randrange(500, 30_000) * YUAN, at, channel=Channel.CASH
                )
            else:
                b.move(
                    customer, CASH, b.rng.randrange(200, 20_000) * YUAN, at, channel=Channel.CASH
                )


def _day(b: _Builder) -> int:
    return b.rng.randrange(8, b.p.days - 8)


def _fan_in(b: _Builder) -> None:
    for _ in range(b.p.fan_in):
        mule, *senders = b.take(b.rng.randrange(11, 17))
        start = b.at(_day(b))
        ids = [
            b.move(
                s,
                mule,
                b.rng.randrange(3_000, 9_000) * YUAN,
                start + b.rng.randrange(0, 40 * HOUR_MS),
            )
            for s in senders
        ]
        b.label("fan_in", "fan_in", ids)


def _fan_out(b: _Builder) -> None:
    for _ in range(b.p.fan_out):
        mule, *payees = b.take(b.rng.randrange(11, 17))
        start = b.at(_day(b))
        ids = [
            b.move(
                mule,
                r,
                b.rng.randrange(3_000, 9_000) * YUAN,
                start + b.rng.randrange(0, 40 * HOUR_MS),
            )
            for r in payees
        ]
        b.label("fan_out", "fan_out", ids)


def _cycle(
    b: _Builder, count: int, hops: tuple[int, int], gap_ms: tuple[int, int], variant: str
) -> None:
    for _ in range(count):
        members = b.take(b.rng.randrange(hops[0], hops[1] + 1))
        amount = b.rng.randrange(100_000, 400_000) * YUAN
        at = b.at(_day(b))
        ids = []
        for index, payer in enumerate(members):
            payee = members[(index + 1) % len(members)]
            ids.append(b.move(payer, payee, amount, at))
            amount -= amount * b.rng.randrange(0, 300) // 10_000  # a fee or a cut per hop
            at += b.rng.randrange(*gap_ms)
        b.label("cycle", variant, ids)


def _scatter_gather(b: _Builder) -> None:
    for _ in range(b.p.scatter_gather):
        source, sink, *middle = b.take(b.rng.randrange(7, 11))
        at = b.at(_day(b))
        ids = []
        for hop in middle:
            amount = b.rng.randrange(20_000, 60_000) * YUAN
            first = at + b.rng.randrange(0, 12 * HOUR_MS)
            ids.append(b.move(source, hop, amount, first))
            ids.append(
                b.move(
                    hop,
                    sink,
                    amount - amount // 100,
                    first + b.rng.randrange(HOUR_MS, 24 * HOUR_MS),
                )
            )
        b.label("scatter_gather", "scatter_gather", ids)


def _structuring(b: _Builder) -> None:
    threshold = 50_000 * YUAN  # the cash rule
    for _ in range(b.p.structuring):
        (customer,) = b.take(1)
        at = b.at(_day(b))
        ids = []
        for _deposit in range(b.rng.randrange(3, 7)):
            amount = threshold * b.rng.randrange(8_500, 9_990) // 10_000
            ids.append(b.move(CASH, customer, amount, at, channel=Channel.CASH))
            at += b.rng.randrange(6 * HOUR_MS, 26 * HOUR_MS)
        b.label("structuring", "structuring", ids)


def simulate(params: SimulationParams | None = None) -> Stream:
    """The stream, movements in time order with `seq` numbered along it."""
    b = _Builder(params or SimulationParams())
    _ordinary(b)
    _fan_in(b)
    _fan_out(b)
    _cycle(b, b.p.cycle, (3, 4), (HOUR_MS, 8 * HOUR_MS), "cycle")
    _cycle(b, b.p.cycle_long, (5, 6), (8 * HOUR_MS, 26 * HOUR_MS), "cycle_long")
    _scatter_gather(b)
    _structuring(b)
    ordered = sorted(b.stream.movements, key=lambda m: (m.time_ms, m.transfer_id))
    from dataclasses import replace

    b.stream.movements = [replace(m, seq=index + 1) for index, m in enumerate(ordered)]
    return b.stream


def batches(stream: Stream, block_ms: int = HOUR_MS) -> Iterator[list[Movement]]:
    """The stream cut into blocks of `block_ms` (each movement takes its block's time)."""
    current: list[Movement] = []
    block_end = None
    for move in stream.movements:
        if block_end is not None and move.time_ms >= block_end:
            yield current
            current = []
        if not current:
            block_end = move.time_ms - move.time_ms % block_ms + block_ms
        current.append(move)
    if current:
        yield current
