"""The payments domain's named invariants, checked over a whole state (STYLE.md rule 6).

Each invariant is a small function from a `LedgerSnapshot` to a list of problems (empty when it
holds), registered by name in `INVARIANTS`; every problem is reported as a `Violation` carrying
that name, so a report says which invariant broke.  Tests run them after every block; an
auditor can run them over any committed height.  They recompute from the records rather than
trusting the counters, so a bug in the contract shows up as a named, located failure.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from zhijin.chain.contract import StateReader
from zhijin.chain.errors import InvariantViolation
from zhijin.payments import calc, limits
from zhijin.payments.queries import scan_all
from zhijin.payments.records import (
    Account,
    FxQuote,
    PendingState,
    PendingStatus,
    Transfer,
    TransferKind,
    keys,
)

__all__ = [
    "INVARIANTS",
    "LedgerSnapshot",
    "Violation",
    "assert_invariants",
    "check_invariants",
    "find_violations",
    "load_snapshot",
]


@dataclass(frozen=True, slots=True)
class LedgerSnapshot:
    accounts: Mapping[str, Account]
    transfers: Mapping[str, Transfer]
    pending: Mapping[str, PendingState]
    expiries: frozenset[tuple[int, str]]  # (expires_at_ms, transfer id) index entries
    quotes: Mapping[str, FxQuote]
    # payments/refunded/<transfer id>: a payment's refunded total, as the contract keeps it.
    refund_totals: Mapping[str, Mapping[str, int]] = field(
        default_factory=lambda: MappingProxyType({})
    )


def load_snapshot(reader: StateReader) -> LedgerSnapshot:
    prefix_length = len(keys.EXPIRY)
    return LedgerSnapshot(
        accounts=MappingProxyType(
            {data["id"]: Account.from_json(data) for _, data in scan_all(reader, keys.ACCOUNT)}
        ),
        transfers=MappingProxyType(
            {data["id"]: Transfer.from_json(data) for _, data in scan_all(reader, keys.TRANSFER)}
        ),
        pending=MappingProxyType(
            {
                data["transfer_id"]: PendingState.from_json(data)
                for _, data in scan_all(reader, keys.PENDING)
            }
        ),
        expiries=frozenset(
            (int(key[prefix_length : prefix_length + keys.EXPIRY_TIME_DIGITS]), value)
            for key, value in scan_all(reader, keys.EXPIRY)
        ),
        quotes=MappingProxyType(
            {data["id"]: FxQuote.from_json(data) for _, data in scan_all(reader, keys.QUOTE)}
        ),
        refund_totals=MappingProxyType(
            {
                key[len(keys.REFUNDED) :]: MappingProxyType(dict(data))
                for key, data in scan_all(reader, keys.REFUNDED)
            }
        ),
    )


def debits_equal_credits(snapshot: LedgerSnapshot) -> list[str]:
    """Per currency: Σ debits_posted = Σ credits_posted and Σ debits_pending = Σ credits_pending."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for account in snapshot.accounts.values():
        line = totals[account.currency]
        line[0] += account.debits_posted
        line[1] += account.credits_posted
        line[2] += account.debits_pending
        line[3] += account.credits_pending
    problems = []
    for code, (debits_posted, credits_posted, debits_pending, credits_pending) in sorted(
        totals.items()
    ):
        if debits_posted != credits_posted:
            problems.append(f"{code}: posted debits {debits_posted} != credits {credits_posted}")
        if debits_pending != credits_pending:
            problems.append(f"{code}: pending debits {debits_pending} != credits {credits_pending}")
    return problems


def counters_in_range(snapshot: LedgerSnapshot) -> list[str]:
    """No counter is negative, and neither side's pending + posted passes 2**63 - 1."""
    problems = []
    for account in snapshot.accounts.values():
        counters = (
            account.debits_pending,
            account.debits_posted,
            account.credits_pending,
            account.credits_posted,
        )
        if min(counters) < 0:
            problems.append(f"account {account.id} has a negative counter {counters}")
        if (
            account.debits_pending + account.debits_posted > limits.AMOUNT_MAX
            or account.credits_pending + account.credits_posted > limits.AMOUNT_MAX
        ):
            problems.append(f"account {account.id} overflows 2**63 - 1")
    return problems


def limit_flags_respected(snapshot: LedgerSnapshot) -> list[str]:
    """No debits_must_not_exceed_credits account below minus its credit limit (0 by default),
    counting holds; no credits_must_not_exceed_debits account above zero."""
    problems = []
    for account in snapshot.accounts.values():
        if account.debits_must_not_exceed_credits and account.available < 0:
            problems.append(
                f"account {account.id} is {-account.available} beyond its credit limit "
                f"{account.credit_limit}"
            )
        if (
            account.credits_must_not_exceed_debits
            and account.credits_pending + account.credits_posted > account.debits_posted
        ):
            problems.append(f"account {account.id}'s credits exceed its debits")
    return problems


def one_exponent_per_currency(snapshot: LedgerSnapshot) -> list[str]:
    exponents: dict[str, set[int]] = defaultdict(set)
    for account in snapshot.accounts.values():
        exponents[account.currency].add(account.exponent)
    return [
        f"{code} accounts disagree on the exponent: {sorted(found)}"
        for code, found in sorted(exponents.items())
        if len(found) > 1
    ]


def transfers_well_formed(snapshot: LedgerSnapshot) -> list[str]:
    """Each transfer: a positive amount within range between two existing, distinct accounts of
    its currency."""
    problems = []
    for transfer in snapshot.transfers.values():
        debit = snapshot.accounts.get(transfer.debit_account_id)
        credit = snapshot.accounts.get(transfer.credit_account_id)
        if not 0 < transfer.amount <= limits.AMOUNT_MAX:
            problems.append(f"transfer {transfer.id} has amount {transfer.amount}")
        if debit is None or credit is None or debit.id == credit.id:
            problems.append(f"transfer {transfer.id} does not join two existing accounts")
        elif not debit.currency == credit.currency == transfer.currency:
            problems.append(f"transfer {transfer.id} mixes currencies")
    return problems


def pending_resolved_at_most_once(snapshot: LedgerSnapshot) -> list[str]:
    """Every hold has a state; a posted or voided hold names the one transfer that resolved it;
    no hold is posted or voided twice, and an expired or still pending one by none."""
    problems = []
    resolutions = Counter(
        t.pending_id for t in snapshot.transfers.values() if t.is_post or t.is_void
    )
    for pending_id, count in resolutions.items():
        if count > 1:
            problems.append(f"hold {pending_id} was resolved {count} times")
    for transfer in snapshot.transfers.values():
        if transfer.is_pending and transfer.id not in snapshot.pending:
            problems.append(f"hold {transfer.id} has no pending state")
        if transfer.is_post or transfer.is_void:
            assert transfer.pending_id is not None
            held = snapshot.transfers.get(transfer.pending_id)
            state = snapshot.pending.get(transfer.pending_id)
            expected = PendingStatus.POSTED if transfer.is_post else PendingStatus.VOIDED
            if held is None or not held.is_pending:
                problems.append(f"{transfer.id} resolves {transfer.pending_id}, not a hold")
            elif state is None or state.status != expected or state.resolved_by != transfer.id:
                problems.append(f"hold {held.id}'s state does not record {transfer.id}")
            elif transfer.amount > held.amount or (
                transfer.is_void and transfer.amount != held.amount
            ):
                problems.append(f"{transfer.id} moves more than hold {held.id} held")
    for state in snapshot.pending.values():
        resolved = state.status in (PendingStatus.POSTED, PendingStatus.VOIDED)
        if resolved != (resolutions[state.transfer_id] == 1):
            problems.append(f"hold {state.transfer_id} is {state.status} but resolved otherwise")
    return problems


def balances_match_transfers(snapshot: LedgerSnapshot) -> list[str]:
    """Every account's four counters equal what its transfers and holds add up to."""
    expected: dict[str, list[int]] = {
        account_id: [0, 0, 0, 0] for account_id in snapshot.accounts
    }  # debits_pending, debits_posted, credits_pending, credits_posted
    for transfer in snapshot.transfers.values():
        debit = expected.get(transfer.debit_account_id)
        credit = expected.get(transfer.credit_account_id)
        if debit is None or credit is None:
            continue  # reported by transfers_well_formed
        if transfer.is_pending:
            state = snapshot.pending.get(transfer.id)
            if state is not None and state.status == PendingStatus.PENDING:
                debit[0] += transfer.amount
                credit[2] += transfer.amount
        elif not transfer.is_void:  # a void moves nothing; a post or plain transfer posts
            debit[1] += transfer.amount
            credit[3] += transfer.amount
    problems = []
    for account_id, counters in sorted(expected.items()):
        account = snapshot.accounts[account_id]
        stored = [
            account.debits_pending,
            account.debits_posted,
            account.credits_pending,
            account.credits_posted,
        ]
        if stored != counters:
            problems.append(f"account {account_id} counters {stored} != transfers {counters}")
    return problems


def expiry_index_consistent(snapshot: LedgerSnapshot) -> list[str]:
    """The expiry index lists exactly the holds that are pending and have a timeout."""
    wanted = frozenset(
        (state.expires_at_ms, state.transfer_id)
        for state in snapshot.pending.values()
        if state.status == PendingStatus.PENDING and state.expires_at_ms
    )
    problems = [f"expiry entry {entry} has no live hold" for entry in snapshot.expiries - wanted]
    problems += [
        f"hold {entry} is missing from the expiry index" for entry in wanted - snapshot.expiries
    ]
    return problems


def _fx_legs_claimed(snapshot: LedgerSnapshot) -> list[str]:
    """Every principal leg carries its pricing, and every spread or target leg is named by
    exactly one FX payment: a leg no payment claims would escape every other FX check."""
    claimed: Counter[str] = Counter()
    problems = []
    for transfer in snapshot.transfers.values():
        if transfer.kind != TransferKind.FX_SOURCE:
            continue
        if transfer.fx is None:
            problems.append(f"FX payment {transfer.id} carries no pricing")
            continue
        claimed[transfer.fx.target_transfer_id] += 1
        if transfer.fx.spread_transfer_id is not None:
            claimed[transfer.fx.spread_transfer_id] += 1
    legs = (TransferKind.FX_SPREAD, TransferKind.FX_TARGET)
    problems += [
        f"FX leg {transfer.id} is claimed by {claimed[transfer.id]} FX payments"
        for transfer in snapshot.transfers.values()
        if transfer.kind in legs and claimed[transfer.id] != 1
    ]
    return problems


def fx_payments_consistent(snapshot: LedgerSnapshot) -> list[str]:
    """Each FX payment's legs exist and add up, within its quote's capacity, and the rounding
    never favoured the payer over the liquidity provider."""
    problems = _fx_legs_claimed(snapshot)
    used: Counter[str] = Counter()
    for transfer in snapshot.transfers.values():
        if transfer.kind != TransferKind.FX_SOURCE or transfer.fx is None:
            continue
        fx = transfer.fx
        used[fx.quote_id] += fx.target_amount
        target = snapshot.transfers.get(fx.target_transfer_id)
        spread = (
            None if fx.spread_transfer_id is None else snapshot.transfers.get(fx.spread_transfer_id)
        )
        spread_amount = 0 if spread is None else spread.amount
        if target is None or target.amount != fx.target_amount:
            problems.append(f"FX payment {transfer.id} lacks its target leg")
        if transfer.amount + spread_amount != fx.source_amount:
            problems.append(f"FX payment {transfer.id}'s source legs do not add up")
        rate = calc.parse_rate(fx.rate)
        source = snapshot.accounts.get(transfer.debit_account_id)
        beneficiary = snapshot.accounts.get(fx.credit_account_id)
        if rate is None or source is None or beneficiary is None:
            problems.append(f"FX payment {transfer.id} has an unreadable rate or accounts")
            continue
        # target / 10^e_t <= principal x rate / 10^e_s, compared exactly in integers.
        numerator, denominator = rate
        if (
            fx.target_amount * denominator * 10**source.exponent
            > transfer.amount * numerator * 10**beneficiary.exponent
        ):
            problems.append(f"FX payment {transfer.id} paid out more than the rate allows")
    for quote in snapshot.quotes.values():
        if quote.used_target_amount != used[quote.id]:
            problems.append(f"quote {quote.id} records {quote.used_target_amount} used")
        if (
            quote.max_target_amount is not None
            and quote.used_target_amount > quote.max_target_amount
        ):
            problems.append(f"quote {quote.id} is used beyond its capacity")
    return problems


def refunds_within_payments(snapshot: LedgerSnapshot) -> list[str]:
    """Every refund (a client transfer naming its original in `parent_id`) returns money the
    original's payee received to its payer; a payment's refunds add up to its recorded total,
    counted, and never to more than the payment brought."""
    returned: dict[str, int] = Counter()
    counted: dict[str, int] = Counter()
    problems = []
    for transfer in snapshot.transfers.values():
        if transfer.kind != TransferKind.TRANSFER or transfer.parent_id is None:
            continue
        original = snapshot.transfers.get(transfer.parent_id)
        if original is None or (
            transfer.debit_account_id,
            transfer.credit_account_id,
            transfer.currency,
        ) != (original.credit_account_id, original.debit_account_id, original.currency):
            problems.append(f"refund {transfer.id} does not return its payment's money")
            continue
        returned[original.id] += transfer.amount
        counted[original.id] += 1
    for original_id in sorted(set(returned) | set(snapshot.refund_totals)):
        total = snapshot.refund_totals.get(original_id)
        recorded = (None, None) if total is None else (total["refunded_amount"], total["refunds"])
        if recorded != (returned[original_id], counted[original_id]):
            problems.append(f"payment {original_id} records refunds {recorded}")
        original = snapshot.transfers.get(original_id)
        if original is None or returned[original_id] > original.amount:
            problems.append(f"payment {original_id} is refunded beyond what it brought")
    return problems


Invariant = Callable[[LedgerSnapshot], list[str]]

INVARIANTS: tuple[tuple[str, Invariant], ...] = (
    ("debits_equal_credits", debits_equal_credits),
    ("counters_in_range", counters_in_range),
    ("limit_flags_respected", limit_flags_respected),
    ("one_exponent_per_currency", one_exponent_per_currency),
    ("transfers_well_formed", transfers_well_formed),
    ("pending_resolved_at_most_once", pending_resolved_at_most_once),
    ("balances_match_transfers", balances_match_transfers),
    ("expiry_index_consistent", expiry_index_consistent),
    ("fx_payments_consistent", fx_payments_consistent),
    ("refunds_within_payments", refunds_within_payments),
)


@dataclass(frozen=True, slots=True)
class Violation:
    """One problem found by one invariant, named as it is registered in `INVARIANTS`."""

    invariant: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.detail}"


def find_violations(snapshot: LedgerSnapshot) -> list[Violation]:
    """Every problem every registered invariant finds, in registration order."""
    # INVARIANTS is read at call time, so the one registered list is what every run checks.
    return [Violation(name, problem) for name, check in INVARIANTS for problem in check(snapshot)]


def check_invariants(reader: StateReader) -> list[str]:
    """Every broken invariant as "name: problem"; empty when the ledger is sound."""
    return [str(violation) for violation in find_violations(load_snapshot(reader))]


def assert_invariants(reader: StateReader) -> None:
    """Raise InvariantViolation listing every broken invariant (works under python -O)."""
    problems = check_invariants(reader)
    if problems:
        raise InvariantViolation("; ".join(problems))
