"""The detectors: pure functions of a batch of new movements and the window before them.

Each returns findings (a typology, the customer it concerns at one member, the transfers that
show it); `alerts.py` turns findings into alerts.  The window is read through `WindowSource`, a
small protocol the monitor implements over its tables and the evaluation over memory, so the
same code decides in both.  A detector sees only movements with `seq` up to the batch's last, so
a finding depends on the stream's order, never on when the monitor ran.

Typologies (parameters in the rules file's `suspicion`):

- large_value: PBOC Art. 5, the same day's single or cumulative flows of a customer, inflows
  and outflows apart, per rule (channel, kind of party, scope, currency), at or above its
  threshold.
- structuring: at least `structuring_count_min` flows of one direction within the window, each
  "just below" the single threshold that would apply to it (at least `structuring_band_bps` of
  it, below it) and together at or above it.
- fan_in / fan_out: a natural person's account receiving from (paying to) at least
  `fan_counterparties_min` distinct natural persons within the window.  Entities (merchants)
  are left out on both sides: many payers are a shop's business and paying many shops is
  shopping; an entity's flows meet the large-value rules.
- cycle: a transfer of at least the currency's floor that closes a path of earlier transfers
  back to its payer (round-tripping) through at least three parties (two people paying each
  other back is ordinary), at most `cycle_hops_max` hops, in time order, one currency, each
  hop at least
  `cycle_amount_ratio_min_bps` of the closing amount and at most its inverse; found with
  networkx's simple paths on the windowed graph reachable from the payee.
- pass_through: outflows within `pass_through_window_ms` of inflows taking at least
  `pass_through_share_min_bps` of them, the inflows at least the currency's floor.
- dormant: a flow at or above the floor on an account idle (no movement, or opened and unused)
  for at least `dormant_ms`.
- scatter_gather: a sink receiving from at least `scatter_intermediaries_min` distinct parties
  that each received, within the window and before paying the sink, from one same source.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import networkx as nx

from zhijin.aml import limits
from zhijin.aml.facts import Movement
from zhijin.aml.rules import Channel, Party, RuleBook, RuleSet

__all__ = ["Finding", "Typology", "WindowSource", "detect"]


class Typology(StrEnum):
    LARGE_VALUE = "large_value"
    STRUCTURING = "structuring"
    FAN_IN = "fan_in"
    FAN_OUT = "fan_out"
    CYCLE = "cycle"
    PASS_THROUGH = "pass_through"
    DORMANT = "dormant"
    SCATTER_GATHER = "scatter_gather"


class WindowSource(Protocol):
    def flows(self, party: str, member: str, *, since_ms: int, until_seq: int) -> list[Movement]:
        """The party's movements at the member (either side), time >= since, seq <= until, in
        seq order, at most `limits.WINDOW_ROWS_MAX` (the latest)."""
        ...

    def outflows(self, parties: Sequence[str], *, since_ms: int, until_seq: int) -> list[Movement]:
        """Movements paid by any of `parties`, bounded like `flows`."""
        ...

    def inflows(
        self, parties: Sequence[str], *, since_ms: int, until_seq: int
    ) -> list[Movement]: ...

    def last_seen_ms(self, party: str, member: str, *, before_seq: int) -> int | None:
        """The time of the party's last movement before `before_seq`, else when its first
        account at the member opened, else None."""
        ...


@dataclass(frozen=True, slots=True)
class Finding:
    typology: str
    customer: str
    member: str
    direction: str  # "in", "out" or "both"
    currency: str
    amount_minor: int
    transfer_ids: tuple[str, ...]
    first_seq: int
    last_seq: int
    first_time_ms: int
    last_time_ms: int
    rule_id: str = ""  # the large-value rule; "" for patterns
    day: str = ""  # the large-value day (Beijing)


def _finding(
    typology: str,
    customer: str,
    member: str,
    direction: str,
    moves: Sequence[Movement],
    **extra: str,
) -> Finding:
    moves = sorted(moves, key=lambda m: m.seq)
    return Finding(
        typology=typology,
        customer=customer,
        member=member,
        direction=direction,
        currency=moves[-1].currency,
        amount_minor=sum(m.amount_minor for m in moves),
        transfer_ids=tuple(dict.fromkeys(m.transfer_id for m in moves)),
        first_seq=moves[0].seq,
        last_seq=moves[-1].seq,
        first_time_ms=moves[0].time_ms,
        last_time_ms=moves[-1].time_ms,
        **extra,
    )


def _party_kind(move: Movement, direction: str) -> str:
    return move.payer_party if direction == "out" else move.payee_party


def _subjects(batch: Iterable[Movement]) -> dict[tuple[str, str], list[Movement]]:
    """The customers a batch touches (never the platform's books), with their new movements."""
    subjects: dict[tuple[str, str], list[Movement]] = defaultdict(list)
    for move in batch:
        if move.payer_party != Party.PLATFORM:
            subjects[(move.payer, move.payer_member)].append(move)
        if move.payee_party != Party.PLATFORM and (move.payee, move.payee_member) != (
            move.payer,
            move.payer_member,
        ):
            subjects[(move.payee, move.payee_member)].append(move)
    return subjects


def detect(batch: Sequence[Movement], source: WindowSource, book: RuleBook) -> list[Finding]:
    """Every finding the batch (movements in seq order, after everything the source holds up
    to the batch's first seq) brings to light.  Each customer is judged by the rules of the
    member that holds their account (`book.of(member)`); a cycle by its first payer's."""
    if not batch:
        return []
    until = batch[-1].seq
    now_ms = batch[-1].time_ms
    findings: list[Finding] = []
    for (party, member), new in sorted(_subjects(batch).items()):
        rules = book.of(member)
        policy = rules.suspicion
        window = source.flows(
            party, member, since_ms=now_ms - limits.WINDOW_MS_MAX, until_seq=until
        )
        findings += _large_value(party, member, window, {m.day for m in new}, rules)
        findings += _structuring(party, member, window, now_ms, rules)
        findings += _fan(
            party, member, window, now_ms, policy.fan_counterparties_min, policy.fan_window_ms
        )
        findings += _pass_through(party, member, window, new, rules)
        findings += _dormant(party, member, new, source, rules)
        findings += _scatter_gather(party, member, window, now_ms, source, rules)
    for move in batch:
        findings += _cycles(move, source, book.of(move.payer_member))
    return findings


def _large_value(
    party: str, member: str, window: Sequence[Movement], days: set[str], rules: RuleSet
) -> list[Finding]:
    groups: dict[tuple[str, str, str], list[Movement]] = defaultdict(list)
    for move in window:
        day = move.day
        if day not in days:
            continue
        direction = move.side_of(party, member)
        if direction is None:
            continue
        kind = _party_kind(move, direction)
        for rule in rules.large_value_rules(
            channel=move.channel, party=kind, scope=move.scope, currency=move.currency
        ):
            groups[(rule.id, day, direction)].append(move)
    thresholds = {rule.id: rule.threshold_minor for rule in rules.large_value}
    return [
        _finding(Typology.LARGE_VALUE, party, member, direction, moves, rule_id=rule_id, day=day)
        for (rule_id, day, direction), moves in sorted(groups.items())
        if sum(m.amount_minor for m in moves) >= thresholds[rule_id]
    ]


def _structuring(
    party: str, member: str, window: Sequence[Movement], now_ms: int, rules: RuleSet
) -> list[Finding]:
    policy = rules.suspicion
    groups: dict[tuple[str, int, str], list[Movement]] = defaultdict(list)
    for move in window:
        direction = move.side_of(party, member)
        if direction is None or move.time_ms < now_ms - policy.structuring_window_ms:
            continue
        threshold = rules.single_threshold(
            channel=move.channel,
            party=_party_kind(move, direction),
            scope=move.scope,
            currency=move.currency,
        )
        if threshold is None:
            continue
        # "Just below": band * threshold <= amount < threshold, in integers (no float).
        if move.amount_minor * 10_000 >= threshold * policy.structuring_band_bps and (
            move.amount_minor < threshold
        ):
            groups[(move.currency, threshold, direction)].append(move)
    return [
        _finding(Typology.STRUCTURING, party, member, direction, moves)
        for (_currency, threshold, direction), moves in sorted(groups.items())
        if len(moves) >= policy.structuring_count_min
        and sum(m.amount_minor for m in moves) >= threshold
    ]


def _fan(
    party: str, member: str, window: Sequence[Movement], now_ms: int, count_min: int, window_ms: int
) -> list[Finding]:
    found = []
    for direction, typology in (("in", Typology.FAN_IN), ("out", Typology.FAN_OUT)):
        moves = [
            m
            for m in window
            if m.time_ms >= now_ms - window_ms
            and m.channel == Channel.TRANSFER
            and m.side_of(party, member) == direction
            and _party_kind(m, direction) == Party.INDIVIDUAL
            and m.counterparty(direction)[1] == Party.INDIVIDUAL
        ]
        counterparties = {m.counterparty(direction)[0] for m in moves}
        if len(counterparties) >= count_min:
            found.append(_finding(typology, party, member, direction, moves))
    return found


def _pass_through(
    party: str, member: str, window: Sequence[Movement], new: Sequence[Movement], rules: RuleSet
) -> list[Finding]:
    policy = rules.suspicion
    found = []
    for out in new:
        if out.side_of(party, member) != "out":
            continue
        floor = policy.floors_minor.get(out.currency)
        if floor is None:
            continue
        since = out.time_ms - policy.pass_through_window_ms
        moves = [
            m
            for m in window
            if m.currency == out.currency and m.time_ms >= since and m.seq <= out.seq
        ]
        inflows = [m for m in moves if m.side_of(party, member) == "in"]
        if not inflows:
            continue
        first_in = min(m.seq for m in inflows)
        outflows = [m for m in moves if m.side_of(party, member) == "out" and m.seq > first_in]
        total_in = sum(m.amount_minor for m in inflows)
        total_out = sum(m.amount_minor for m in outflows)
        if total_in >= floor and total_out * 10_000 >= total_in * policy.pass_through_share_min_bps:
            found.append(
                _finding(Typology.PASS_THROUGH, party, member, "both", [*inflows, *outflows])
            )
            break  # one finding per subject and batch: the episode merges the rest
    return found


def _dormant(
    party: str, member: str, new: Sequence[Movement], source: WindowSource, rules: RuleSet
) -> list[Finding]:
    policy = rules.suspicion
    previous: int | None = None
    first = True
    for move in new:
        if first:
            previous = source.last_seen_ms(party, member, before_seq=move.seq)
            first = False
        floor = policy.floors_minor.get(move.currency)
        idle = previous is not None and move.time_ms - previous >= policy.dormant_ms
        if idle and floor is not None and move.amount_minor >= floor:
            direction = move.side_of(party, member) or "both"
            return [_finding(Typology.DORMANT, party, member, direction, [move])]
        previous = move.time_ms
    return []


def _scatter_gather(
    sink: str,
    member: str,
    window: Sequence[Movement],
    now_ms: int,
    source: WindowSource,
    rules: RuleSet,
) -> list[Finding]:
    policy = rules.suspicion
    since = now_ms - policy.scatter_window_ms
    into_sink = [
        m
        for m in window
        if m.time_ms >= since
        and m.side_of(sink, member) == "in"
        and m.channel == Channel.TRANSFER
        and m.payer_party != Party.PLATFORM
    ]
    intermediaries = sorted({m.payer for m in into_sink})
    if len(intermediaries) < policy.scatter_intermediaries_min:
        return []
    last_to_sink = {m.payer: m.seq for m in into_sink}
    feeds: dict[str, dict[str, list[Movement]]] = defaultdict(lambda: defaultdict(list))
    for move in source.inflows(intermediaries, since_ms=since, until_seq=into_sink[-1].seq):
        if (
            move.payer not in (sink, move.payee)
            and move.payer_party != Party.PLATFORM
            and move.seq < last_to_sink[move.payee]
        ):
            feeds[move.payer][move.payee].append(move)
    found = []
    for _origin, fed in sorted(feeds.items()):
        if len(fed) >= policy.scatter_intermediaries_min:
            legs = [m for moves in fed.values() for m in moves]
            legs += [m for m in into_sink if m.payer in fed]
            found.append(_finding(Typology.SCATTER_GATHER, sink, member, "in", legs))
    return found


def _cycles(closing: Movement, source: WindowSource, rules: RuleSet) -> list[Finding]:
    """Cycles the transfer `closing` (u -> v) completes: time-ordered paths v -> ... -> u."""
    policy = rules.suspicion
    if (
        closing.channel != Channel.TRANSFER
        or Party.PLATFORM in (closing.payer_party, closing.payee_party)
        or closing.payer == closing.payee
        or closing.amount_minor < policy.floors_minor.get(closing.currency, 2**63)
    ):
        return []
    since = closing.time_ms - policy.cycle_window_ms
    graph = nx.MultiDiGraph()
    frontier, seen, visited = [closing.payee], {closing.payee}, 0
    for _hop in range(policy.cycle_hops_max - 1):
        if not frontier or visited >= limits.CYCLE_EDGES_VISITED_MAX:
            break
        next_frontier = []
        for move in source.outflows(frontier, since_ms=since, until_seq=closing.seq - 1):
            if move.currency != closing.currency or move.payee_party == Party.PLATFORM:
                continue
            if move.channel != Channel.TRANSFER or not _similar(
                move, closing, policy.cycle_amount_ratio_min_bps
            ):
                continue
            visited += 1
            graph.add_edge(move.payer, move.payee, key=move.transfer_id, move=move)
            if move.payee not in seen:
                seen.add(move.payee)
                next_frontier.append(move.payee)
        frontier = next_frontier
    if closing.payer not in graph:
        return []
    found = []
    paths = nx.all_simple_edge_paths(
        graph, closing.payee, closing.payer, cutoff=policy.cycle_hops_max - 1
    )
    for path in paths:
        moves = [graph.edges[edge]["move"] for edge in path]
        if len(moves) >= 2 and all(a.seq < b.seq for a, b in itertools.pairwise(moves)):
            cycle = [*moves, closing]
            for move in cycle:  # one alert per customer on the cycle, at the member paying
                found.append(_finding(Typology.CYCLE, move.payer, move.payer_member, "both", cycle))
            break  # one cycle per closing transfer is enough to raise it
    return found


def _similar(move: Movement, closing: Movement, ratio_bps: int) -> bool:
    a, b = move.amount_minor, closing.amount_minor
    return a * 10_000 >= b * ratio_bps and b * 10_000 >= a * ratio_bps
