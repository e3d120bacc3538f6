"""Off-chain payments functions the API, the CLI and the demo share.

Writes go through the member gateway: the node's member signs each request, in its own name
(operator, CLI, demo) or vouching for an authenticated user (`sender=<user DID>`), so the
contract's authorisation rule decides what the sender may do.  Each write waits for its block
and then for the payments projection (only it: the one these answers read) to apply it, so a
read right after a write sees it; when that wait ends first, the write raises
CommittedNotYetVisible (the API's 202 with the tx hash), never a not-found for what committed.
Reads come from the projection (`projection`), except FX quotes and the chain-side trial
balance, which read committed state: a quote's remaining capacity lives only there, and a trial
balance that checks the books must not trust a projection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import Connection, select

from zhijin.chain.codec import canonical, decode
from zhijin.chain.errors import NotFound, ZhijinError, invariant
from zhijin.identity import StepUpRequired
from zhijin.payments import iso20022 as iso
from zhijin.payments import limits, projection, queries
from zhijin.payments.codes import Code, fields_differing
from zhijin.payments.directory import IbanDirectory, mask, valid_iban
from zhijin.payments.expected import (
    PaymentFacts,
    PaymentScreen,
    PaymentsHost,
    ScreenTier,
    Verdict,
    screen_of,
)
from zhijin.payments.projection_verify import PaymentsProjectionVerifier
from zhijin.payments.records import Transfer, TransferFlag, keys
from zhijin.payments.types import AccountId, AmountMinor, QuoteId, TransferId
from zhijin.platform.errors import Forbidden
from zhijin.platform.gateway import MemberGateway
from zhijin.platform.projection_verify import verify_projections
from zhijin.platform.projections import await_visible

__all__ = [
    "CONTRACT",
    "MSG_ID_REUSED",
    "REFUSAL_DETAILS",
    "STATEMENT_LINES_MAX",
    "TRANSFER_ID_TAKEN",
    "PaymentNeedsReview",
    "PaymentRefused",
    "PaymentRefusedByRisk",
    "PaymentUnderReview",
    "account_iban",
    "create_fx_quote",
    "create_transfers",
    "export_camt053",
    "export_pacs008",
    "get_account",
    "get_fx_quote",
    "get_transfer",
    "http_status_for",
    "import_pain001",
    "list_accounts",
    "not_yet_visible",
    "open_accounts",
    "pay_fx",
    "refund_transfer",
    "register_iban",
    "remove_iban",
    "resolve_pending",
    "screened",
    "screened_fx_payment",
    "screened_transfer",
    "screened_transfers",
    "set_account_status",
    "set_fee_schedule",
    "statement",
    "transfer",
    "trial_balance",
]

CONTRACT = "payments"
STATEMENT_LINES_MAX = 10_000  # entries in one camt.053 export; page the period to get more

_NOT_FOUND = frozenset(
    {
        Code.ACCOUNT_NOT_FOUND,
        Code.DEBIT_ACCOUNT_NOT_FOUND,
        Code.CREDIT_ACCOUNT_NOT_FOUND,
        Code.PENDING_TRANSFER_NOT_FOUND,
        Code.TRANSFER_NOT_FOUND,
        Code.QUOTE_NOT_FOUND,
        Code.FEE_ACCOUNT_NOT_FOUND,
        Code.LIQUIDITY_ACCOUNT_NOT_FOUND,
        Code.FEE_SCHEDULE_NOT_FOUND,
        Code.REFUND_ORIGINAL_NOT_FOUND,
    }
)


# The API's answer to a client id that names a transfer the caller may not read: the id is
# taken, and nothing else (not which fields differ, which would confirm the other party's payee,
# amount or reference).  The contract itself answers exists_with_different_fields.
TRANSFER_ID_TAKEN = "transfer_id_taken"
TRANSFER_ID_TAKEN_MESSAGE = "this transfer id is already in use: choose another (a random one)"
MSG_ID_REUSED = Code.MSG_ID_REUSED.value
_CONFLICTS = frozenset({Code.EXISTS_WITH_DIFFERENT_FIELDS.value, TRANSFER_ID_TAKEN})


def http_status_for(code: str) -> int:
    """The HTTP status of a refusal: one status per contract code, stable like the code."""
    if code in _CONFLICTS or code in (Code.MSG_ID_REUSED, Code.REFUND_EXCEEDS_ORIGINAL):
        return 409
    if code == Code.NOT_AUTHORIZED:
        return 403
    if code in _NOT_FOUND:
        return 404
    return 422


class PaymentRefused(ZhijinError):
    """The contract (or an import check) refused a request, with its stable code."""

    # What the constructor adds from the contract's message, per code: the problem templates
    # may name these (the catalog scan reads this table).
    DERIVED_DETAILS: ClassVar[Mapping[str, tuple[str, ...]]] = {
        Code.EXISTS_WITH_DIFFERENT_FIELDS.value: ("fields",),
    }

    def __init__(self, code: str, message: str = "", **details: Any) -> None:
        if code == Code.EXISTS_WITH_DIFFERENT_FIELDS:
            details.setdefault("fields", fields_differing(message))
        super().__init__(code, message, **details)
        self.http_status = http_status_for(code)


# -- the write path -------------------------------------------------------------------------------


def _submit(
    platform: PaymentsHost,
    gateway: MemberGateway,
    method: str,
    args: dict[str, Any],
    *,
    sender: str | None,
) -> dict[str, Any]:
    """Sign, submit, wait for the block and for the payments projection; the method's return
    value.  CommittedNotYetVisible when the projection has not applied the block in time."""
    result = gateway.submit(CONTRACT, method, args, sender=sender)
    if result["status"] != "ok":
        raise PaymentRefused(result["code"], result["message"])
    await_visible(platform.projections, result, projection=projection.PaymentsProjection.name)
    value: dict[str, Any] = {**result["return"], "height": result["height"]}
    return value


def _only_item(summary: dict[str, Any]) -> dict[str, Any]:
    (item,) = summary["results"]
    if item["result"] != Code.OK:
        raise PaymentRefused(item["result"], item["message"], id=item["id"])
    result: dict[str, Any] = item
    return result


def open_accounts(
    platform: PaymentsHost,
    gateway: MemberGateway,
    *,
    accounts: Sequence[Mapping[str, Any]],
    sender: str | None = None,
) -> dict[str, Any]:
    """Open 1-100 accounts in one tx: the per-item results (each ok, exists or refused)."""
    return _submit(
        platform,
        gateway,
        "create_accounts",
        {"accounts": [dict(a) for a in accounts]},
        sender=sender,
    )


def open_account(
    platform: PaymentsHost,
    gateway: MemberGateway,
    *,
    account: Mapping[str, Any],
    sender: str | None = None,
) -> dict[str, Any]:
    """Open one account (or find it again, same body): the account with its balances."""
    item = _only_item(open_accounts(platform, gateway, accounts=[account], sender=sender))
    return {"exists": item["exists"], "account": get_account(platform, account_id=item["id"])}


def create_transfers(
    platform: PaymentsHost,
    gateway: MemberGateway,
    *,
    transfers: Sequence[Mapping[str, Any]],
    sender: str | None = None,
) -> dict[str, Any]:
    """A batch of 1-100 transfers in one tx; linked chains succeed or fail as a whole."""
    args = {"transfers": [dict(t) for t in transfers]}
    return _submit(platform, gateway, "create_transfers", args, sender=sender)


def transfer(
    platform: PaymentsHost,
    gateway: MemberGateway,
    *,
    request: Mapping[str, Any],
    sender: str | None = None,
) -> dict[str, Any]:
    """One transfer (single-phase, hold, post or void).  A retry with the same id and body
    answers exactly as the first time, flagged `exists`; a refusal raises PaymentRefused."""
    item = _only_item(create_transfers(platform, gateway, transfers=[request], sender=sender))
    return {**item, "transfer": get_transfer(platform, transfer_id=item["id"])}


RISK_REFUSED = "payment_refused_by_risk"


class PaymentRefusedByRisk(ZhijinError):
    """The fraud screen refused the payment before it went to the chain: nothing moved, and
    the next attempt needs a fresh second factor.  The reasons are the customer's to read."""

    code = "payment_refused_by_risk"
    http_status = 403


class PaymentUnderReview(ZhijinError):
    """A customer asked to post or void a hold the fraud screen placed while its review is
    open: only the review decides it (cleared: posted; confirmed fraud: voided)."""

    code = "payment_under_review"
    http_status = 403


class PaymentNeedsReview(ZhijinError):
    """The fraud screen would hold the payment for a review, and the payment has no pending
    form to wait in (an FX payment): it was not submitted, nothing moved.  Not a refusal of
    the customer (no step-up is owed for it); the reasons are theirs to read."""

    code = "payment_needs_review"
    http_status = 403


def _verdict_view(verdict: Verdict) -> dict[str, Any]:
    return {
        "decision_id": verdict.decision_id,
        "tier": verdict.tier.value,
        "score_bps": verdict.score_bps,
        "reasons": list(verdict.reasons),
        "versions": dict(verdict.versions),
        "degraded": list(verdict.degraded),
        "notice": dict(verdict.notice),
    }


def _as_hold(request: Mapping[str, Any], verdict: Verdict) -> dict[str, Any]:
    """The transfer as a hold on the payer's funds (the same id, so a retry of the customer's
    request, screened to the same stored verdict, finds it again as `exists`)."""
    flags = sorted({*request.get("flags", ()), TransferFlag.PENDING.value})
    return {**request, "flags": flags, "timeout_ms": verdict.hold_timeout_ms}


def _refusal(verdict: Verdict, message: str) -> ZhijinError:
    """What the customer is told when the screen stops a payment: a fresh second factor first
    (STEP_UP), refused with the reasons in their language (REFUSE), or told that it needs a
    review it cannot wait for as a hold (HOLD of a payment with no pending form)."""
    reasons = list(verdict.reasons)
    by_locale = {k: list(v) for k, v in verdict.reasons_by_locale.items()}
    if verdict.tier == ScreenTier.HOLD:
        return PaymentNeedsReview(
            message=message,
            decision_id=verdict.decision_id,
            reasons=reasons,
            reasons_by_locale=by_locale,
        )
    if verdict.tier == ScreenTier.STEP_UP:
        return StepUpRequired(
            message="confirm this payment with a fresh code",
            decision_id=verdict.decision_id,
            reasons=reasons,
            reasons_by_locale=by_locale,
        )
    return PaymentRefusedByRisk(
        message=message,
        decision_id=verdict.decision_id,
        reasons=reasons,
        reasons_by_locale=by_locale,
    )


_STOPPED = (ScreenTier.REFUSE, ScreenTier.STEP_UP)
_SEVERITY = {ScreenTier.ALLOW: 0, ScreenTier.HOLD: 1, ScreenTier.REFUSE: 2, ScreenTier.STEP_UP: 3}


def screened(
    platform: PaymentsHost,
    *,
    facts: PaymentFacts | None,
    submit: Callable[[Verdict | None], dict[str, Any]],
    holdable: bool = True,
) -> dict[str, Any]:
    """One customer payment through the host's fraud screen, then `submit(verdict)`: allowed
    as asked (`submit` gets the verdict, ALLOW), held (HOLD: `submit` books it as a pending
    transfer a reviewer posts or voids, and the case opens when it committed), or refused
    before anything is submitted.  A payment with no pending form (`holdable=False`: FX) that
    the screen holds is not submitted (`PaymentNeedsReview`), so nothing moves unreviewed.
    With no screen on the host, or no facts (the operator's own payments), `submit(None)`.
    The answer carries the verdict as `risk`; the decision is settled with what became of
    the payment (the risk service records it by transfer id, and opens the case of a hold)."""
    screen = screen_of(platform)
    if screen is None or facts is None:
        return submit(None)
    verdict = screen.screen(facts)
    if verdict.tier in _STOPPED or (verdict.tier == ScreenTier.HOLD and not holdable):
        screen.settled(verdict, facts, outcome="refused")
        message = "the fraud screen refused this payment"
        if verdict.tier == ScreenTier.HOLD:
            message = "the fraud screen holds this payment for review, and it cannot be held"
        raise _refusal(verdict, message)
    try:
        result = submit(verdict)
    except PaymentRefused:
        screen.settled(verdict, facts, outcome="ledger_refused")
        raise
    held = verdict.tier == ScreenTier.HOLD
    screen.settled(verdict, facts, outcome="held" if held else "submitted")
    return {**result, "risk": _verdict_view(verdict)}


def screened_transfer(
    platform: PaymentsHost,
    gateway: MemberGateway,
    *,
    request: Mapping[str, Any],
    sender: str | None,
    facts: PaymentFacts | None,
) -> dict[str, Any]:
    """A customer's transfer through the screen (`screened`): a held one is the same transfer
    as a hold.  With no screen or no facts, exactly `transfer`."""

    def submit(verdict: Verdict | None) -> dict[str, Any]:
        held = verdict is not None and verdict.tier == ScreenTier.HOLD
        asked = _as_hold(request, verdict) if held and verdict is not None else request
        return transfer(platform, gateway, request=asked, sender=sender)

    return screened(platform, facts=facts, submit=submit)


def screened_fx_payment(
    platform: PaymentsHost,
    gateway: MemberGateway,
    *,
    payment: Mapping[str, Any],
    sender: str | None,
    facts: PaymentFacts | None,
) -> dict[str, Any]:
    """A customer's FX payment through the screen, on its source amount and currency.  The
    ledger has no pending FX payment (its legs settle at once under a firm quote that expires
    sooner than a review ends), so a payment the screen holds is not submitted: 403
    `payment_needs_review`, nothing moved."""
    return screened(
        platform,
        facts=facts,
        submit=lambda _verdict: pay_fx(platform, gateway, payment=payment, sender=sender),
        holdable=False,
    )


@dataclass(frozen=True, slots=True)
class _Screened:
    """One batch item (its place in the batch) and the screen's verdict on it (None: not
    screened)."""

    index: int
    request: Mapping[str, Any]
    facts: PaymentFacts | None
    verdict: Verdict | None


def _chains(items: Sequence[_Screened]) -> list[list[_Screened]]:
    """The batch cut into its linked chains (a `linked` item chains to the next; an item
    alone is a chain of one): the contract applies each all or nothing, so the screen does."""
    chains: list[list[_Screened]] = [[]]
    for item in items:
        chains[-1].append(item)
        if TransferFlag.LINKED.value not in item.request.get("flags", ()):
            chains.append([])
    return [chain for chain in chains if chain]


def _worst(chain: Sequence[_Screened]) -> Verdict | None:
    """The most severe verdict of a chain: it decides for every item of the chain."""
    verdicts = [item.verdict for item in chain if item.verdict is not None]
    return max(verdicts, key=lambda v: _SEVERITY[v.tier], default=None)


# The key of a batch item's answer under which the screen's refusal hands the API what the
# customer's sentence is made of (`problem_detail`: the reasons per locale); never returned.
REFUSAL_DETAILS = "_refusal_details"


def _risk_refused(item: _Screened, chain_verdict: Verdict) -> dict[str, Any]:
    """The per-item answer of a chain the screen refused: the refused item's own code, its
    chain's other items `linked_event_failed` (as the contract says of a failed chain)."""
    request_id = str(item.request["id"])
    if item.verdict is chain_verdict:
        reasons_by_locale = {k: list(v) for k, v in chain_verdict.reasons_by_locale.items()}
        result: dict[str, Any] = {
            "id": request_id,
            "result": RISK_REFUSED,
            "message": "the fraud screen refused this payment",
            "risk": _verdict_view(chain_verdict),
            REFUSAL_DETAILS: {
                "reasons": list(chain_verdict.reasons),
                "reasons_by_locale": reasons_by_locale,
            },
        }
        return result
    return {
        "id": request_id,
        "result": Code.LINKED_EVENT_FAILED.value,
        "message": "the fraud screen refused another transfer of this linked chain",
        REFUSAL_DETAILS: {},
    }


def screened_transfers(
    platform: PaymentsHost,
    gateway: MemberGateway,
    *,
    transfers: Sequence[Mapping[str, Any]],
    sender: str | None,
    facts: Sequence[PaymentFacts | None],
) -> dict[str, Any]:
    """A customer's batch through the screen, item by item, in one tx for what may move.

    Each item with facts is screened as a single transfer would be; a linked chain takes its
    most severe verdict for all its items (the contract applies a chain all or nothing).  A
    refused chain is left out of the tx: its refused item answers `payment_refused_by_risk`,
    the rest of its chain `linked_event_failed`, nothing of it moves.  A held chain goes in
    as holds, each with a case.  A step-up verdict stops the whole batch (401 before anything
    is submitted: the customer confirms with a fresh code, then sends it again).  With no
    screen on the host, or no facts at all, exactly `create_transfers`."""
    invariant(len(facts) == len(transfers), "one facts entry per batch item")
    screen = screen_of(platform)
    if screen is None or all(f is None for f in facts):
        return create_transfers(platform, gateway, transfers=transfers, sender=sender)
    items = [
        _Screened(index, request, fact, None if fact is None else screen.screen(fact))
        for index, (request, fact) in enumerate(zip(transfers, facts, strict=True))
    ]
    _step_up_first(screen, items)
    answers, submitted = _plan(screen, items)
    height: int | None = None
    if submitted:
        try:
            summary = create_transfers(
                platform, gateway, transfers=[asked for _, asked, _ in submitted], sender=sender
            )
        except PaymentRefused:  # the whole tx refused: nothing of it moved
            for item, _, _ in submitted:
                if item.verdict is not None and item.facts is not None:
                    screen.settled(item.verdict, item.facts, outcome="ledger_refused")
            raise
        height = summary["height"]
        for (item, _, hold), result in zip(submitted, summary["results"], strict=True):
            answers[item.index] = _settle_item(screen, item, hold, result)
    results = [answers[index] for index in range(len(transfers))]
    ok = sum(1 for r in results if r["result"] == Code.OK)
    return {"results": results, "ok": ok, "failed": len(results) - ok, "height": height}


def _step_up_first(screen: PaymentScreen, items: Sequence[_Screened]) -> None:
    """A step-up verdict on any item (the customer's last payment was refused): the whole
    batch waits for a fresh second factor, every decision settled as not submitted."""
    stepping_up = [i.verdict for i in items if i.verdict and i.verdict.tier == ScreenTier.STEP_UP]
    if not stepping_up:
        return
    for item in items:
        if item.verdict is not None and item.facts is not None:
            screen.settled(item.verdict, item.facts, outcome="refused")
    raise _refusal(stepping_up[0], "the fraud screen refused this payment")


_Submitted = tuple[_Screened, dict[str, Any], Verdict | None]  # item, as asked, the hold's verdict


def _plan(
    screen: PaymentScreen, items: Sequence[_Screened]
) -> tuple[dict[int, dict[str, Any]], list[_Submitted]]:
    """Per chain: refused (answered here, settled, left out of the tx), held (every item as
    a hold under the chain's verdict) or as asked.  The answers so far by batch index, and
    what goes in the tx, in batch order."""
    answers: dict[int, dict[str, Any]] = {}
    submitted: list[_Submitted] = []
    for chain in _chains(items):
        worst = _worst(chain)
        if worst is not None and worst.tier == ScreenTier.REFUSE:
            for item in chain:
                answers[item.index] = _risk_refused(item, worst)
                if item.verdict is not None and item.facts is not None:
                    screen.settled(item.verdict, item.facts, outcome="refused")
            continue
        hold = worst if worst is not None and worst.tier == ScreenTier.HOLD else None
        for item in chain:
            asked = item.request if hold is None else _as_hold(item.request, hold)
            submitted.append((item, dict(asked), hold))
    return answers, submitted


def _settle_item(
    screen: PaymentScreen, item: _Screened, hold: Verdict | None, result: dict[str, Any]
) -> dict[str, Any]:
    """What became of one submitted item, told to the screen, and its answer with the
    verdict (`held` when it went in as a hold: its chain's verdict held it)."""
    if item.verdict is None or item.facts is None:
        return result
    if result["result"] != Code.OK:
        screen.settled(item.verdict, item.facts, outcome="ledger_refused")
        return result
    screen.settled(item.verdict, item.facts, outcome="submitted" if hold is None else "held")
    risk = _verdict_view(item.verdict)
    if hold is not None:
        risk["notice"] = dict(hold.notice)
    return {**result, "risk": risk, "held": hold is not None}


def resolve_pending(
    platform: PaymentsHost,
    gateway: MemberGateway,
    *,
    pending_id: TransferId,
    transfer_id: TransferId,
    post: bool,
    amount: AmountMinor | None = None,
    reference: str | None = None,
    sender: str | None = None,
) -> dict[str, Any]:
    """Post (all, or `amount` of) or void the hold `pending_id`, as transfer `transfer_id`."""
    flag = TransferFlag.POST_PENDING_TRANSFER if post else TransferFlag.VOID_PENDING_TRANSFER
    request: dict[str, Any] = {"id": transfer_id, "pending_id": pending_id, "flags": [flag.value]}
    if amount is not None:
        request["amount"] = amount
    if reference is not None:
        request["reference"] = reference
    return transfer(platform, gateway, request=request, sender=sender)


def set_account_status(
    platform: PaymentsHost,
    gateway: MemberGateway,
    *,
    account_id: AccountId,
    status: str,
    sender: str | None = None,
) -> dict[str, Any]:
    """Freeze, unfreeze (status open) or close an account."""
    args = {"account_id": account_id, "status": status}
    return _submit(platform, gateway, "set_account_status", args, sender=sender)


def set_fee_schedule(
    platform: PaymentsHost,
    gateway: MemberGateway,
    *,
    schedule: Mapping[str, Any],
    sender: str | None = None,
) -> dict[str, Any]:
    return _submit(platform, gateway, "set_fee_schedule", dict(schedule), sender=sender)


def create_fx_quote(
    platform: PaymentsHost,
    gateway: MemberGateway,
    *,
    quote: Mapping[str, Any],
    sender: str | None = None,
) -> dict[str, Any]:
    """Publish a firm FX quote (the node's member is the liquidity provider)."""
    result = _submit(platform, gateway, "create_fx_quote", dict(quote), sender=sender)
    return {**result, "quote": get_fx_quote(platform, quote_id=result["id"])}


def pay_fx(
    platform: PaymentsHost,
    gateway: MemberGateway,
    *,
    payment: Mapping[str, Any],
    sender: str | None = None,
) -> dict[str, Any]:
    """Quote, lock and settle a cross-currency payment in one tx."""
    return _submit(platform, gateway, "pay_fx", dict(payment), sender=sender)


def refund_transfer(
    platform: PaymentsHost,
    gateway: MemberGateway,
    *,
    refund: Mapping[str, Any],
    sender: str | None = None,
) -> dict[str, Any]:
    """Return part or all of a payment received (`refund_transfer`: the contract refuses a
    refund past what the payment brought); the answer with the refund's transfer record."""
    value = _submit(platform, gateway, "refund_transfer", dict(refund), sender=sender)
    return {**value, "transfer": get_transfer(platform, transfer_id=value["id"])}


# -- reads ----------------------------------------------------------------------------------------


@contextmanager
def _read(platform: PaymentsHost) -> Iterator[Connection]:
    with platform.platform_engine.connect() as conn:
        yield conn


def get_account(platform: PaymentsHost, *, account_id: AccountId) -> dict[str, Any]:
    with _read(platform) as conn:
        account = projection.read_account(conn, account_id)
    if account is None:
        raise NotFound(Code.ACCOUNT_NOT_FOUND.value, f"no account {account_id}")
    return account


def list_accounts(
    platform: PaymentsHost,
    *,
    owner: str | None = None,
    custodian: str | None = None,
    currency: str | None = None,
    after_id: str | None = None,
    limit: int = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    """A page of accounts in id order, and the cursor of the next page (None at the end)."""
    with _read(platform) as conn:
        rows = projection.list_accounts(
            conn,
            owner=owner,
            custodian=custodian,
            currency=currency,
            after_id=after_id,
            limit=limit,
        )
    return {"accounts": rows, "next_after_id": rows[-1]["id"] if len(rows) == limit else None}


def statement(
    platform: PaymentsHost,
    *,
    account_id: AccountId,
    after_entry: int = 0,
    limit: int = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    """A page of an account's posted entries, oldest first, each with the running balance."""
    with _read(platform) as conn:
        account = projection.read_account(conn, account_id)
        if account is None:
            raise NotFound(Code.ACCOUNT_NOT_FOUND.value, f"no account {account_id}")
        entries = projection.statement_page(
            conn, account_id=account_id, after_entry=after_entry, limit=limit
        )
    return {
        "account": account,
        "entries": entries,
        "next_after_entry": entries[-1]["entry_no"] if len(entries) == limit else None,
    }


def recent_statement(
    platform: PaymentsHost,
    *,
    account_id: AccountId,
    before_entry: int | None = None,
    limit: int = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    """A page of an account's posted entries, newest first, and the cursor of the older page."""
    with _read(platform) as conn:
        entries = projection.recent_entries(
            conn, account_id=account_id, before_entry=before_entry, limit=limit
        )
    older = (
        entries[-1]["entry_no"] if len(entries) == limit and entries[-1]["entry_no"] > 1 else None
    )
    return {"entries": entries, "next_before_entry": older}


def balance_history(
    platform: PaymentsHost, *, account_id: AccountId, from_ms: int, to_ms: int
) -> tuple[int, list[dict[str, Any]]]:
    """(balance at `from_ms`, the entries of [from_ms, to_ms)): at most the window's first
    `PAGE_SIZE_MAX` entries, which a chart of daily balances summarises."""
    with _read(platform) as conn:
        return projection.entries_between(
            conn, account_id=account_id, from_ms=from_ms, to_ms=to_ms, limit=limits.PAGE_SIZE_MAX
        )


def has_paid(
    platform: PaymentsHost,
    *,
    debit_account_id: AccountId,
    credit_account_id: AccountId,
    before_ms: int,
) -> bool:
    """Whether `debit_account_id` paid `credit_account_id` (a posted debit entry) in a block
    before `before_ms`: the step-up policy's payee novelty.  The caller passes the time of the
    user's sign-in, so a payee first paid within this session is still new: a stolen session
    cannot make a payee "known" with a small payment and then send a large one."""
    entries = projection.entries_table
    query = (
        select(entries.c.entry_no)
        .where(
            (entries.c.account_id == debit_account_id)
            & (entries.c.counterparty_id == credit_account_id)
            & (entries.c.direction == "debit")
            & (entries.c.time_ms < before_ms)
        )
        .limit(1)
    )
    with _read(platform) as conn:
        return conn.execute(query).first() is not None


def recent_customer_payments(platform: PaymentsHost, *, limit: int) -> list[dict[str, Any]]:
    """The latest `limit` payments out of customers' and merchants' accounts (single-phase
    transfers: no holds, no posts of holds), oldest first: the step-up policy's preview."""
    transfers, accounts = projection.transfers_table, projection.accounts_table
    query = (
        select(
            transfers.c.debit_account_id,
            transfers.c.credit_account_id,
            transfers.c.amount,
            transfers.c.currency,
            transfers.c.time_ms,
            accounts.c.exponent,
        )
        .join(accounts, accounts.c.id == transfers.c.debit_account_id)
        .where(
            accounts.c.kind.in_(("customer", "merchant")),
            transfers.c.pending_id.is_(None),
            transfers.c.hold_status.is_(None),
        )
        .order_by(transfers.c.time_ms.desc(), transfers.c.id.desc())
        .limit(max(1, limit))
    )
    with _read(platform) as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
    return rows[::-1]


def get_transfer(platform: PaymentsHost, *, transfer_id: TransferId) -> dict[str, Any]:
    with _read(platform) as conn:
        record = projection.read_transfer(conn, transfer_id)
    if record is None:
        raise NotFound(Code.TRANSFER_NOT_FOUND.value, f"no transfer {transfer_id}")
    return record


def not_yet_visible(
    platform: PaymentsHost, *, transfer_id: str | None = None, account_id: str | None = None
) -> dict[str, Any] | None:
    """The committed record of a transfer or account the projection does not show yet (its
    block is not applied), or None: a read that misses tells "later" from "never"."""
    key = keys.transfer(transfer_id) if transfer_id is not None else keys.account(account_id or "")
    record: dict[str, Any] | None = platform.node.state_get(key)
    return record


def get_fx_quote(platform: PaymentsHost, *, quote_id: QuoteId) -> dict[str, Any]:
    """The quote as committed, with how much of its capacity is used."""
    quote = platform.node.state_get(keys.quote(quote_id))
    if quote is None:
        raise NotFound(Code.QUOTE_NOT_FOUND.value, f"no quote {quote_id}")
    expired = quote["expires_at_ms"] <= platform.node.head.time_ms
    return {**quote, "expired": expired}


@dataclass(frozen=True, slots=True)
class _CommittedState:
    """Committed chain state as a `StateReader`, for queries that must not trust projections."""

    platform: PaymentsHost
    conn: Connection

    def get(self, key: str) -> Any | None:
        return self.platform.store.state_get(self.conn, key)

    def scan(self, prefix: str, start_after: str, limit: int) -> list[tuple[str, Any]]:
        return self.platform.store.state_scan(self.conn, prefix, start_after, limit)


def trial_balance(platform: PaymentsHost, *, source: str = "projection") -> dict[str, Any]:
    """Per currency: accounts and the sums of the four counters, and whether they balance.

    `source="projection"` reads the query table (cheap); `source="chain"` scans committed state
    (every account, page by page), the check an auditor runs.  Either way the payments query
    tables are verified against the chain (`projections`); `ok` is balanced and no mismatch.
    """
    if source == "chain":
        with platform.store.read() as conn:
            height = platform.store.head_height()
            lines = queries.trial_balance(_CommittedState(platform, conn))
        currencies = [
            {
                "currency": line.currency,
                "accounts": line.accounts,
                "debits_pending": line.debits_pending,
                "debits_posted": line.debits_posted,
                "credits_pending": line.credits_pending,
                "credits_posted": line.credits_posted,
                "balanced": line.balanced,
            }
            for line in lines
        ]
    else:
        height = platform.projections.heights.get(projection.PaymentsProjection.name)
        with _read(platform) as conn:
            currencies = projection.currency_totals(conn)
    balanced = all(line["balanced"] for line in currencies)
    projections = verify_projections(
        platform.store, platform.platform_engine, [PaymentsProjectionVerifier()]
    )
    return {
        "source": source,
        "height": height,
        "balanced": balanced,
        "currencies": currencies,
        # The query tables customers read, checked against the ledger on chain: a tampered
        # account row balances in both sums above, so it is caught here.
        "projections": projections.to_json(),
        "ok": balanced and projections.ok,
    }


# -- ISO 20022 ------------------------------------------------------------------------------------


def _directory(platform: PaymentsHost) -> IbanDirectory:
    return IbanDirectory(platform.vault, platform.platform_engine)


def _custodied(platform: PaymentsHost, account_id: AccountId) -> dict[str, Any]:
    account = get_account(platform, account_id=account_id)
    if account["custodian"] != platform.node.key.did:
        raise Forbidden(
            "not_custodian", "only the member holding the account in custody names it by IBAN"
        )
    return account


def _audit_iban(
    platform: PaymentsHost, *, actor: str, action: str, account_id: AccountId, iban: str
) -> None:
    platform.audit.append(
        actor=actor,
        action=action,
        target=f"account:{account_id}",
        outcome="ok",
        at_ms=platform.node.clock(),
        reason=None,
        details={"iban": mask(iban)},
    )


def register_iban(
    platform: PaymentsHost, *, account_id: AccountId, iban: str, actor: str
) -> dict[str, Any]:
    """Name an account this node's member holds in custody by an IBAN, for pain.001 imports
    (idempotent; replaces an IBAN it had; audited with the IBAN masked)."""
    compact = valid_iban(iban)
    account = _custodied(platform, account_id)
    if account["status"] == "closed":
        raise PaymentRefused(Code.ACCOUNT_CLOSED.value, f"account {account_id} is closed")
    registered = _directory(platform).register(account_id, compact, now_ms=platform.node.clock())
    if registered:
        _audit_iban(
            platform,
            actor=actor,
            action="payments.iban.register",
            account_id=account_id,
            iban=compact,
        )
    return {"account_id": account_id, "iban": mask(compact), "registered": registered}


def remove_iban(platform: PaymentsHost, *, account_id: AccountId, actor: str) -> dict[str, Any]:
    """Forget an account's IBAN, for instance once it is closed (idempotent; audited)."""
    _custodied(platform, account_id)
    removed = _directory(platform).remove(account_id)
    if removed is not None:
        _audit_iban(
            platform,
            actor=actor,
            action="payments.iban.remove",
            account_id=account_id,
            iban=removed,
        )
    return {"account_id": account_id, "removed": removed is not None}


def account_iban(platform: PaymentsHost, *, account_id: AccountId) -> dict[str, Any]:
    """The account's IBAN, masked (the full number is its holder's to know)."""
    get_account(platform, account_id=account_id)
    iban = _directory(platform).iban_of(account_id)
    return {"account_id": account_id, "iban": None if iban is None else mask(iban)}


def _resolver(platform: PaymentsHost) -> iso.AccountResolver:
    """pain.001 accounts named by IBAN (this node's directory, `register_iban`) or, without
    one, by their zhijin id (Othr/Id).  An IBAN the directory does not hold resolves to nothing
    (`*_account_unknown`), even beside an Othr/Id: the two could name different accounts."""

    def resolve(identification: iso.AccountIdentification) -> iso.ResolvedAccount | None:
        if identification.iban is not None:
            account_id = _directory(platform).account_for(identification.iban)
        else:
            account_id = identification.other_id
        if account_id is None:
            return None
        with _read(platform) as conn:
            account = projection.read_account(conn, account_id)
        if account is None:
            return None
        return iso.ResolvedAccount(account_id=account["id"], currency=account["currency"])

    return resolve


def _file_claim(platform: PaymentsHost, sender: str, message_key: str) -> dict[str, Any] | None:
    claim: dict[str, Any] | None = platform.node.state_get(keys.message(sender, message_key))
    return claim


def _reused(
    platform: PaymentsHost, error: PaymentRefused, *, sender: str, message_key: str, digest: str
) -> PaymentRefused:
    """msg_id_reused with what the committed claim says: when the MsgId was first booked, and
    whether it was this very file (a client retrying after a lost answer: it was booked)."""
    claim = _file_claim(platform, sender, message_key)
    if claim is None:  # cannot happen once refused; keep the contract's answer as it is
        return error
    return PaymentRefused(
        MSG_ID_REUSED,
        error.message,
        same_file=claim["digest"] == digest,
        first_height=claim["height"],
        parts_booked=claim["parts_booked"],
        parts=claim["parts"],
    )


def _named(item: iso.ImportedTransfer | iso.RejectedTransfer) -> dict[str, Any]:
    return {
        "index": item.index,
        "payment_information_id": item.payment_information_id,
        "end_to_end_id": item.end_to_end_id,
    }


def _booked_parts(
    platform: PaymentsHost, claim: dict[str, Any] | None, message: dict[str, Any]
) -> list[dict[str, Any]]:
    """The results of the parts of this very file (same bytes, same plan) that an interrupted
    import booked, read from their committed txs; none for a file not begun, or another file,
    or one fully booked (whose resend the contract refuses)."""
    if claim is None or claim["parts_booked"] >= claim["parts"]:
        return []
    if any(claim[name] != message[name] for name in ("digest", "plan", "parts")):
        return []
    summaries = []
    for tx_hash in claim["tx_hashes"]:
        stored = platform.store.get_tx(bytes.fromhex(tx_hash))
        if stored is None:  # committed state names it, so the store holds it
            raise NotFound("tx_not_found", f"no committed tx {tx_hash}")
        summaries.append(decode(stored.result)["return"])
    return summaries


def import_pain001(
    platform: PaymentsHost,
    gateway: MemberGateway,
    *,
    xml: bytes,
    linked: bool,
    sender: str | None = None,
) -> dict[str, Any]:
    """Book a pain.001's credit transfers: each is booked or named as rejected with a code.

    A MsgId is accepted once per uploader and initiating party: the first part of the file
    claims it on chain in the same tx as its transfers (`import_transfers`), so a second file
    under it, whatever its content and even the very same bytes, is refused `msg_id_reused`
    and books nothing.  The one exception completes the first acceptance: the same bytes again
    after an import stopped between two parts book only the parts not booked yet, and answer
    for the whole file.  `linked`: all the accepted transfers in one all-or-nothing chain (at
    most 100).  Ids derive from the uploader, party, MsgId, PmtInfId and EndToEndId.
    """
    if len(xml) > limits.PAIN001_BYTES_MAX:
        raise PaymentRefused("pain001_too_large", f"at most {limits.PAIN001_BYTES_MAX} bytes")
    uploader = sender or gateway.node.key.did
    parsed = iso.parse_pain001(xml, resolve_account=_resolver(platform), id_namespace=uploader)
    # A file with nothing to book still claims its MsgId: it was received and answered.
    batches = parsed.transfer_batches(linked=linked) or [{"transfers": []}]
    message: dict[str, Any] = {
        "key": parsed.message_key,
        "digest": hashlib.sha256(xml).hexdigest(),
        "plan": hashlib.sha256(canonical(batches)).hexdigest(),
        "parts": len(batches),
    }
    summaries = _booked_parts(
        platform, _file_claim(platform, uploader, parsed.message_key), message
    )
    resumed_from = len(summaries)
    for part in range(resumed_from, len(batches)):
        args = {"message": {**message, "part": part}, "transfers": batches[part]["transfers"]}
        try:
            summaries.append(_submit(platform, gateway, "import_transfers", args, sender=sender))
        except PaymentRefused as error:
            if error.code != MSG_ID_REUSED:
                raise
            raise _reused(
                platform,
                error,
                sender=uploader,
                message_key=parsed.message_key,
                digest=message["digest"],
            ) from None
    return {
        "message_id": parsed.message_id,
        "linked": linked,
        **_answer(parsed, summaries),
        "resumed_from_part": resumed_from,
    }


def _answer(parsed: iso.Pain001Import, summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The file's booked and rejected transactions, in file order, from the parse (rejected
    before booking) and each part's results (the contract answers with the ids it was given)."""
    by_id = {item.transfer_id: item for item in parsed.accepted}
    booked: list[dict[str, Any]] = []
    rejected = [{**_named(r), "code": r.code, "message": r.message} for r in parsed.rejected]
    for result in (result for summary in summaries for result in summary["results"]):
        item = by_id[result["id"]]
        if result["result"] == Code.OK:
            booked.append(
                {**_named(item), "transfer_id": item.transfer_id, "exists": result["exists"]}
            )
        else:
            code, text = result["result"], result["message"]
            rejected.append({**_named(item), "code": code, "message": text})
    rejected.sort(key=lambda r: r["index"])
    return {"booked": booked, "rejected": rejected}


def export_pacs008(
    platform: PaymentsHost,
    *,
    transfer_id: TransferId,
    debtor_agent_bic: str,
    creditor_agent_bic: str,
    debtor_name: str | None = None,
    creditor_name: str | None = None,
    debtor_iban: str | None = None,
    creditor_iban: str | None = None,
    remittance_information: str | None = None,
) -> bytes:
    """The FX payment `transfer_id` as a pacs.008.001.08 message.  Names, IBANs and BICs are
    off-chain data the caller supplies; without a name the account id stands in."""
    record = get_transfer(platform, transfer_id=transfer_id)
    record.pop("hold", None)
    principal = Transfer.from_json(record)
    if principal.fx is None:
        raise PaymentRefused("not_cross_border", f"{transfer_id} is not an FX payment")
    fx = principal.fx
    source = get_account(platform, account_id=principal.debit_account_id)
    target = get_account(platform, account_id=fx.credit_account_id)
    document = iso.CrossBorderPayment.from_transfer(
        principal,
        message_id=iso.short_reference(f"pacs008-{principal.id}"),
        created_at=iso.block_datetime(principal.created_at_ms),
        debtor=iso.Party(debtor_name or f"account {source['id']}"),
        debtor_account=iso.CashAccount(iban=debtor_iban, other_id=source["id"]),
        debtor_agent=iso.Agent(debtor_agent_bic),
        creditor=iso.Party(creditor_name or f"account {target['id']}"),
        creditor_account=iso.CashAccount(iban=creditor_iban, other_id=target["id"]),
        creditor_agent=iso.Agent(creditor_agent_bic),
        source_exponent=source["exponent"],
        target_exponent=target["exponent"],
        remittance_information=remittance_information,
    )
    return iso.export_pacs008(document)


def export_camt053(
    platform: PaymentsHost,
    *,
    account_id: AccountId,
    from_ms: int,
    to_ms: int,
    iban: str | None = None,
    servicer_bic: str | None = None,
) -> bytes:
    """The account's posted entries booked in [from_ms, to_ms) as a camt.053.001.08 statement,
    naming the account by `iban` or, without one, by the IBAN the directory holds for it."""
    if not 0 <= from_ms < to_ms:
        raise PaymentRefused("period_invalid", "from_ms must be before to_ms")
    account = get_account(platform, account_id=account_id)
    with _read(platform) as conn:
        opening, entries = projection.entries_between(
            conn,
            account_id=account_id,
            from_ms=from_ms,
            to_ms=to_ms,
            limit=STATEMENT_LINES_MAX + 1,
        )
    if len(entries) > STATEMENT_LINES_MAX:
        raise PaymentRefused(
            "statement_too_large", f"more than {STATEMENT_LINES_MAX} entries: shorten the period"
        )
    lines = tuple(
        iso.StatementLine(
            transfer_id=entry["transfer_id"],
            booked_at=iso.block_datetime(entry["time_ms"]),
            amount=entry["amount"],
            direction=iso.CREDIT if entry["direction"] == projection.CREDIT else iso.DEBIT,
            running_balance=entry["balance"],
            end_to_end_id=entry["reference"],
        )
        for entry in entries
    )
    identity = f"{account_id}:{from_ms}:{to_ms}"
    document = iso.Statement(
        message_id=iso.short_reference(f"camt053-{identity}"),
        statement_id=iso.short_reference(identity),
        sequence_number=entries[-1]["entry_no"] if entries else 0,
        created_at=iso.block_datetime(min(to_ms, platform.node.head.time_ms)),
        from_time=iso.block_datetime(from_ms),
        to_time=iso.block_datetime(to_ms),
        account=iso.CashAccount(
            iban=iban if iban is not None else _directory(platform).iban_of(account_id),
            other_id=account_id,
        ),
        currency=account["currency"],
        exponent=account["exponent"],
        opening_balance=opening,
        lines=lines,
        servicer=None if servicer_bic is None else iso.Agent(servicer_bic),
    )
    return iso.export_camt053(document)
