"""The monitor over memory: the same detectors and alert rules as the projection, with the
window and the alerts held in dicts.  The evaluation runs on it (months of simulated payments in
seconds), and the tests compare it with the projection over the same stream."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from zhijin.aml import limits
from zhijin.aml.alerts import Alert, record_findings
from zhijin.aml.detect import detect
from zhijin.aml.facts import Movement
from zhijin.aml.rules import RuleSet, default_rules

__all__ = ["MemoryMonitor"]


def _bounded(moves: list[Movement], since_ms: int, until_seq: int) -> list[Movement]:
    """The tail of a seq-ordered (hence time-ordered) list within the window, walked from the
    end: a long history costs nothing."""
    selected: list[Movement] = []
    for move in reversed(moves):
        if move.time_ms < since_ms or len(selected) >= limits.WINDOW_ROWS_MAX:
            break
        if move.seq <= until_seq:
            selected.append(move)
    selected.reverse()
    return selected


@dataclass
class MemoryMonitor:
    rules: RuleSet = field(default_factory=default_rules)
    alerts: dict[str, Alert] = field(default_factory=dict)
    _by_party: dict[tuple[str, str], list[Movement]] = field(
        default_factory=lambda: defaultdict(list)
    )
    _out: dict[str, list[Movement]] = field(default_factory=lambda: defaultdict(list))
    _in: dict[str, list[Movement]] = field(default_factory=lambda: defaultdict(list))
    _opened: dict[tuple[str, str], int] = field(default_factory=dict)
    _seen: set[str] = field(default_factory=set)
    _episodes: dict[tuple[str, str, str], str] = field(default_factory=dict)

    # -- feeding -------------------------------------------------------------------------------
    def open_account(self, *, owner: str, member: str, opened_at_ms: int) -> None:
        self._opened.setdefault((owner, member), opened_at_ms)

    def apply(self, batch: Iterable[Movement]) -> list[Alert]:
        """One batch (a block's movements, in seq order); repeated transfers are ignored."""
        fresh = []
        for move in batch:
            if move.transfer_id in self._seen:
                continue
            self._seen.add(move.transfer_id)
            fresh.append(move)
        if not fresh:
            return []
        for move in fresh:
            self._by_party[(move.payer, move.payer_member)].append(move)
            if (move.payee, move.payee_member) != (move.payer, move.payer_member):
                self._by_party[(move.payee, move.payee_member)].append(move)
            self._out[move.payer].append(move)
            self._in[move.payee].append(move)
        return record_findings(detect(fresh, self, self.rules), self, self.rules)

    # -- WindowSource ----------------------------------------------------------------------------
    def flows(self, party: str, member: str, *, since_ms: int, until_seq: int) -> list[Movement]:
        return _bounded(self._by_party.get((party, member), []), since_ms, until_seq)

    def outflows(self, parties: Sequence[str], *, since_ms: int, until_seq: int) -> list[Movement]:
        moves = [m for p in parties for m in _bounded(self._out.get(p, []), since_ms, until_seq)]
        return sorted(moves, key=lambda m: m.seq)[-limits.WINDOW_ROWS_MAX :]

    def inflows(self, parties: Sequence[str], *, since_ms: int, until_seq: int) -> list[Movement]:
        moves = [m for p in parties for m in _bounded(self._in.get(p, []), since_ms, until_seq)]
        return sorted(moves, key=lambda m: m.seq)[-limits.WINDOW_ROWS_MAX :]

    def last_seen_ms(self, party: str, member: str, *, before_seq: int) -> int | None:
        for move in reversed(self._by_party.get((party, member), [])):
            if move.seq < before_seq:
                return move.time_ms
        return self._opened.get((party, member))

    # -- AlertSink -------------------------------------------------------------------------------
    def get(self, alert_id: str) -> Alert | None:
        return self.alerts.get(alert_id)

    def latest_episode(self, *, member: str, customer: str, typology: str) -> Alert | None:
        key = self._episodes.get((member, customer, typology))
        return None if key is None else self.alerts[key]

    def put(self, alert: Alert) -> None:
        self.alerts[alert.alert_id] = alert
        key = (alert.member, alert.customer, alert.typology)
        current = self._episodes.get(key)
        if current is None or self.alerts[current].last_seq <= alert.last_seq:
            self._episodes[key] = alert.alert_id
