"""Off-chain lending functions: keyword-only, shared by the API, the CLI, the demo, the keeper and
the bench.

Writes go through the member gateway (the node's member signs, vouching for a customer where
the customer acts) and wait for lending's query tables (`await_visible`: the API's 202 when
they are late); reads come from those tables.  An application is completed here: the credit
decision's facts from credit (`CreditDecisions`), the customer's KYC level from identity
(`KycLevels`), and the debt-to-income ratio from the declared income and debts and the
instalment the product would charge today; the contract then tests the product's conditions
on those facts and checks the decision's digest against credit's anchor on chain.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import date
from typing import Any

from zhijin.chain.contract import BlockInfo, BlockState, TxInfo, execute_tx
from zhijin.chain.errors import ContractError, NotFound, ZhijinError
from zhijin.lending import limits, projection
from zhijin.lending.codes import Code, LendingError
from zhijin.lending.contract import CONTRACT_NAME
from zhijin.lending.expected import LendingHost
from zhijin.lending.lifecycle import Status
from zhijin.lending.records import LprQuote, keys
from zhijin.lending.schedule import DayCount, Method, build_schedule, day_of
from zhijin.lending.settings import LendingSettings
from zhijin.platform.gateway import MemberGateway
from zhijin.platform.projections import await_visible

__all__ = [
    "CollectionsKeeper",
    "DecisionUnusable",
    "apply",
    "approve_product",
    "book",
    "create_product",
    "disburse",
    "get_loan",
    "get_product",
    "history",
    "list_loans",
    "list_products",
    "loan_action",
    "lpr_table",
    "preview_repayment",
    "queue",
    "repay",
    "review",
    "run_keeper_pass",
    "set_lpr",
]

log = logging.getLogger("zhijin.lending")
BPS = 10_000
LPR_TENORS = ("1y", "5y")


class LoanNotFound(NotFound):
    code = "loan_not_found"


class ProductNotFound(NotFound):
    code = "product_not_found"


class DecisionUnusable(ZhijinError):
    """The credit decision named cannot back this application (another subject or member)."""

    code = "decision_mismatch"
    http_status = 422


def _member(host: LendingHost) -> str:
    return host.node.key.did


def _refusal(code: str, message: str) -> ZhijinError:
    """A refused tx as the domain error its code names (payments' or the runtime's own)."""
    if code in set(Code):
        return LendingError(Code(code), message)
    return ContractError(code, message)


def _submit(
    host: LendingHost,
    gateway: MemberGateway,
    method: str,
    args: dict[str, Any],
    *,
    sender: str | None = None,
) -> dict[str, Any]:
    result = gateway.submit(CONTRACT_NAME, method, args, sender=sender)
    if result["status"] != "ok":
        raise _refusal(result["code"], result.get("message") or "")
    await_visible(host.projections, result, projection=projection.LendingProjection.name)
    value: dict[str, Any] = result["return"]
    log.info("lending %s ok at height %s (%s)", method, result["height"], result["tx_hash"])
    return {**value, "height": result["height"], "tx_hash": result["tx_hash"]}


# -- LPR and products ------------------------------------------------------------------------------


def set_lpr(
    host: LendingHost, gateway: MemberGateway, *, tenor: str, rate_bps: int, effective_day: str
) -> dict[str, Any]:
    return _submit(
        host,
        gateway,
        "set_lpr",
        {"tenor": tenor, "rate_bps": rate_bps, "effective_day": effective_day},
    )


def lpr_table(host: LendingHost) -> list[dict[str, Any]]:
    """The LPR quotes in force (1Y, 5Y+) as the chain holds them, with the one before each."""
    quotes = (_lpr(host, tenor) for tenor in LPR_TENORS)
    return [quote.to_json() for quote in quotes if quote is not None]


def create_product(
    host: LendingHost, gateway: MemberGateway, *, terms: dict[str, Any], officer: str
) -> dict[str, Any]:
    return _submit(host, gateway, "create_product", {**terms, "officer": officer})


def approve_product(
    host: LendingHost, gateway: MemberGateway, *, product_id: str, officer: str
) -> dict[str, Any]:
    return _submit(host, gateway, "approve_product", {"product_id": product_id, "officer": officer})


def get_product(host: LendingHost, *, product_id: str) -> dict[str, Any]:
    with host.platform_engine.connect() as conn:
        product = projection.get_product(conn, product_id)
    if product is None:
        raise ProductNotFound(message=f"no product {product_id}")
    return product


def list_products(
    host: LendingHost,
    *,
    member: str | None,
    status: str | None = None,
    after: str | None = None,
    limit: int = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    with host.platform_engine.connect() as conn:
        rows = projection.list_products(
            conn, member=member, status=status, after=after, limit=limit
        )
    return {
        "products": rows,
        "next_after": rows[-1]["product_id"] if len(rows) == limit else None,
    }


# -- applications ----------------------------------------------------------------------------------


def _lpr(host: LendingHost, tenor: str) -> LprQuote | None:
    raw = host.node.state_get(keys.lpr(tenor))
    return None if raw is None else LprQuote.from_json(raw)


def dti_bps(
    host: LendingHost,
    *,
    product: dict[str, Any],
    amount_minor: int,
    monthly_income_minor: int,
    monthly_debt_minor: int,
) -> int:
    """(existing monthly debt + the first instalment this loan would charge at today's LPR) /
    monthly income, in basis points, rounded up (a ratio just over a limit is over it)."""
    quote = _lpr(host, product["lpr_tenor"])
    rate = max((0 if quote is None else quote.rate_bps) + product["spread_bps"], 0)
    plan = build_schedule(
        principal_minor=amount_minor,
        rate_bps=min(rate, limits.RATE_BPS_MAX),
        term_months=product["term_months"],
        method=Method(product["method"]),
        day_count=DayCount(product["day_count"]),
        start_day=day_of(host.node.clock()),
    )
    debt = monthly_debt_minor + max(item.total_minor for item in plan[:-1] or plan)
    if Method(product["method"]) is Method.INTEREST_ONLY:
        debt = monthly_debt_minor + plan[0].total_minor  # the balloon is refinanced or saved for
    ratio = -(-debt * BPS // monthly_income_minor)
    return min(ratio, limits.DTI_BPS_MAX)


def apply(
    host: LendingHost,
    gateway: MemberGateway,
    *,
    loan_id: str,
    product_id: str,
    borrower: str,
    applied_by: str,
    amount_minor: int,
    decision_id: str,
    monthly_income_minor: int,
    monthly_debt_minor: int,
    kyc_level: int,
    repayment_account_id: str,
    collateral_account_id: str | None = None,
    collateral_minor: int = 0,
    vouch: bool = False,
) -> dict[str, Any]:
    """Submit an application with its decision's facts; the answer is the loan as the contract
    left it: approved at once, or in review with the reasons (the failed conditions)."""
    facts = host.lending_ports.decisions.decision(decision_id)
    if facts is None:
        raise LendingError(Code.DECISION_NOT_FOUND)
    if facts.subject != borrower or facts.member != _member(host):
        raise DecisionUnusable(message="the decision is about another subject or member")
    product = get_product(host, product_id=product_id)
    ratio = dti_bps(
        host,
        product=product,
        amount_minor=amount_minor,
        monthly_income_minor=monthly_income_minor,
        monthly_debt_minor=monthly_debt_minor,
    )
    args: dict[str, Any] = {
        "loan_id": loan_id,
        "product_id": product_id,
        "borrower": borrower,
        "applied_by": applied_by,
        "amount_minor": amount_minor,
        "decision": {
            "decision_id": decision_id,
            "record_sha256": facts.record_sha256,
            "outcome": facts.outcome,
            "score": max(0, min(facts.points, limits.SCORE_MAX)),
            "dti_bps": ratio,
            "kyc_level": kyc_level,
        },
        "repayment_account_id": repayment_account_id,
    }
    if collateral_account_id is not None:
        args["collateral_account_id"] = collateral_account_id
        args["collateral_minor"] = collateral_minor
    answer = _submit(host, gateway, "apply", args, sender=borrower if vouch else None)
    return {**answer, "decision_reasons": list(facts.reasons)}


def review(
    host: LendingHost,
    gateway: MemberGateway,
    *,
    loan_id: str,
    officer: str,
    approve: bool,
    reason: str,
) -> dict[str, Any]:
    args = {"loan_id": loan_id, "officer": officer, "approve": approve, "reason": reason}
    return _submit(host, gateway, "review", args)


def loan_action(
    host: LendingHost,
    gateway: MemberGateway,
    *,
    method: str,
    loan_id: str,
    officer: str | None = None,
    sender: str | None = None,
) -> dict[str, Any]:
    """withdraw, disburse, default, liquidate, write_off (with its officer)."""
    args: dict[str, Any] = {"loan_id": loan_id}
    if officer is not None:
        args["officer"] = officer
    return _submit(host, gateway, method, args, sender=sender)


def disburse(host: LendingHost, gateway: MemberGateway, *, loan_id: str) -> dict[str, Any]:
    return loan_action(host, gateway, method="disburse", loan_id=loan_id)


def repay(
    host: LendingHost,
    gateway: MemberGateway,
    *,
    loan_id: str,
    payment_id: str,
    mode: str,
    amount_minor: int | None = None,
    then: str | None = None,
    sender: str | None = None,
) -> dict[str, Any]:
    args = _repay_args(loan_id, payment_id, mode, amount_minor, then)
    return _submit(host, gateway, "repay", args, sender=sender)


def _repay_args(
    loan_id: str, payment_id: str, mode: str, amount_minor: int | None, then: str | None
) -> dict[str, Any]:
    args: dict[str, Any] = {"loan_id": loan_id, "payment_id": payment_id, "mode": mode}
    if amount_minor is not None:
        args["amount_minor"] = amount_minor
    if then is not None:
        args["then"] = then
    return args


class _Committed:
    """The committed chain state through one read connection (a `StateReader`)."""

    def __init__(self, host: LendingHost, conn: Any) -> None:
        self.store, self.conn = host.node.store, conn

    def get(self, key: str) -> Any | None:
        return self.store.state_get(self.conn, key)

    def scan(self, prefix: str, start_after: str, limit: int) -> list[tuple[str, Any]]:
        return self.store.state_scan(self.conn, prefix, start_after, limit)


def preview_repayment(
    host: LendingHost,
    *,
    loan_id: str,
    payment_id: str,
    mode: str,
    amount_minor: int | None = None,
    then: str | None = None,
    sender: str | None = None,
) -> dict[str, Any]:
    """What `repay` with these args would do in the next block, written nowhere: the contract's
    own `repay` runs over the committed state in a throw-away block state (accrual, allocation,
    the new schedule, its refusals), so the borrower confirms exactly what the chain will do
    (unless a day passes or money moves in between, when the chain's answer is the one kept)."""
    node = host.node
    args = _repay_args(loan_id, payment_id, mode, amount_minor, then)
    member = _member(host)
    head = node.head
    block = BlockInfo(
        chain_id=node.genesis.chain_id,
        height=head.height + 1,
        time_ms=max(head.time_ms + 1, node.clock()),
    )
    tx = TxInfo(
        tx_hash="0" * 64, sender=sender or member, signer=member, nonce=0,
        contract=CONTRACT_NAME, method="repay", vouched=sender is not None,
    )  # fmt: skip
    with node.store.read() as conn:
        state = BlockState(_Committed(host, conn))
        outcome = execute_tx(node.registry_at(block.height), state, tx, block, args)
    if not outcome.ok:
        raise _refusal(outcome.code or "tx_failed", outcome.message or "")
    value: dict[str, Any] = dict(outcome.value or {})
    return {**value, "time_ms": block.time_ms}


# -- reads -----------------------------------------------------------------------------------------


def get_loan(host: LendingHost, *, loan_id: str) -> dict[str, Any]:
    with host.platform_engine.connect() as conn:
        loan = projection.get_loan(conn, loan_id)
    if loan is None:
        raise LoanNotFound(message=f"no loan {loan_id}")
    return loan


def history(host: LendingHost, *, loan_id: str) -> dict[str, Any]:
    """A loan's transitions (status, height, block time, why) and its payments' allocations."""
    loan = get_loan(host, loan_id=loan_id)
    with host.platform_engine.connect() as conn:
        payments = projection.payments_of(conn, loan_id, limit=limits.PAYMENTS_PER_LOAN_MAX)
    steps = [
        {"status": status, "height": height, "time_ms": time_ms, "why": why}
        for status, height, time_ms, why in loan["history"]
    ]
    return {"loan_id": loan_id, "transitions": steps, "payments": payments}


def list_loans(
    host: LendingHost,
    *,
    member: str | None,
    borrower: str | None,
    status: str | None = None,
    after: str | None = None,
    limit: int = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    with host.platform_engine.connect() as conn:
        rows = projection.list_loans(
            conn, member=member, borrower=borrower, status=status, after=after, limit=limit
        )
    return {"loans": rows, "next_after": rows[-1]["loan_id"] if len(rows) == limit else None}


def queue(
    host: LendingHost, *, member: str | None, after: str | None = None, limit: int = 50
) -> dict[str, Any]:
    """The officer's review queue: applications whose conditions did not all hold."""
    return list_loans(
        host, member=member, borrower=None, status=Status.REVIEW, after=after, limit=limit
    )


def book(host: LendingHost, *, member: str | None) -> dict[str, Any]:
    with host.platform_engine.connect() as conn:
        return {"rows": projection.book_by_bucket(conn, member=member)}


# -- the collections keeper ------------------------------------------------------------------------


def _latest_due(record: dict[str, Any], now_ms: int) -> int | None:
    due = [item["number"] for item in record["schedule"] if item["due_ms"] <= now_ms]
    return due[-1] if due else None


def _keeper_calls(rows: list[dict[str, Any]], now_ms: int, products: dict[str, Any]) -> list[Any]:
    """(method, args) per loan: the day's collection of what is due, a default once its days
    past due reach the product's limit, or a reminder before a due day."""
    calls: list[tuple[str, dict[str, Any]]] = []
    for row in rows:
        record = json_record(row)
        loan_id = row["loan_id"]
        latest = _latest_due(record, now_ms)
        if latest is None:
            calls.append(("remind", {"loan_id": loan_id, "instalment": row["next_instalment"]}))
            continue
        product = products.get(record["product_id"])
        limit_days = None if product is None else product["default_after_days"]
        if (
            row["status"] == Status.OVERDUE
            and limit_days is not None
            and record["days_past_due"] >= limit_days
        ):
            calls.append(("default", {"loan_id": loan_id}))
        elif row["status"] in (Status.CURRENT, Status.OVERDUE):
            calls.append(("collect", {"loan_id": loan_id, "instalment": latest}))
    return calls


def json_record(row: dict[str, Any]) -> dict[str, Any]:
    import json

    record: dict[str, Any] = json.loads(row["record"])
    return record


def run_keeper_pass(
    host: LendingHost,
    gateway: MemberGateway,
    *,
    now_ms: int | None = None,
    max_loans: int = limits.COLLECTIONS_PER_PASS_MAX,
    timeout_s: float = 120.0,
) -> dict[str, int]:
    """One pass in block time: for this member's live loans with an instalment due (or due
    within the reminder window), submit the day's txs in batches and wait for their results.

    Idempotent by construction: the contract refuses a second collection of the same
    instalment on the same day (`already_collected`) and a second reminder answers `exists`,
    so a restarted keeper, or a second one, moves no money twice.
    """
    now = host.node.clock() if now_ms is None else now_ms
    member = _member(host)
    counts = {
        "submitted": 0, "ok": 0, "already_collected": 0, "refused": 0, "collected_minor": 0,
        "height": 0,
    }  # fmt: skip
    products: dict[str, Any] = {}
    after: str | None = None
    seen = 0
    while seen < max_loans:
        with host.platform_engine.connect() as conn:
            rows = projection.due_loans(
                conn,
                member=member,
                due_by_ms=now + limits.REMINDER_MS,
                after=after,
                limit=min(limits.KEEPER_BATCH_MAX * 10, max_loans - seen),
            )
            for row in rows:
                product_id = json_record(row)["product_id"]
                if product_id not in products:
                    products[product_id] = projection.get_product(conn, product_id)
        if not rows:
            break
        seen += len(rows)
        after = rows[-1]["loan_id"]
        calls = _keeper_calls(rows, now, products)
        for start in range(0, len(calls), limits.KEEPER_BATCH_MAX):
            _submit_batch(
                host, gateway, calls[start : start + limits.KEEPER_BATCH_MAX], counts, timeout_s
            )
    if counts["height"]:
        # The next pass (and whoever asked for this one) reads what this pass wrote.
        await_visible(host.projections, counts, projection=projection.LendingProjection.name)
    if counts["submitted"]:
        log.info("lending keeper pass: %s", counts)
    return counts


def _submit_batch(
    host: LendingHost,
    gateway: MemberGateway,
    calls: list[tuple[str, dict[str, Any]]],
    counts: dict[str, int],
    timeout_s: float,
) -> None:
    envelopes = [gateway.envelope(CONTRACT_NAME, method, args) for method, args in calls]
    admissions = host.node.submit_many(envelopes)
    counts["submitted"] += len(admissions)
    deadline = time.monotonic() + timeout_s
    for (method, _args), admission in zip(calls, admissions, strict=True):
        if not admission.accepted or admission.future is None:
            counts["refused"] += 1
            continue
        try:
            result = admission.future.result(timeout=max(deadline - time.monotonic(), 0.1))
        except FutureTimeout:
            counts["refused"] += 1
            continue
        counts["height"] = max(counts["height"], int(result["height"]))
        if result["status"] == "ok":
            counts["ok"] += 1
            payment = (result.get("return") or {}).get("payment")
            if method == "collect" and payment:
                counts["collected_minor"] += payment["amount_minor"]
        elif result["code"] == Code.ALREADY_COLLECTED:
            counts["already_collected"] += 1
        else:
            counts["refused"] += 1
            log.warning("lending keeper %s refused: %s", method, result["code"])


class CollectionsKeeper:
    """The node service that runs `run_keeper_pass` every `lending_keeper_interval_s`."""

    def __init__(self, host: Any) -> None:
        self.host = host
        self.interval_s = LendingSettings.of(host.settings).lending_keeper_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0

    def _run(self) -> None:
        gateway = MemberGateway(self.host.node)
        while not self._stop.wait(self.interval_s):
            try:
                run_keeper_pass(self.host, gateway)
                self.passes += 1
            except Exception:  # a pass that failed is retried next interval, never fatal
                log.exception("lending keeper pass failed")

    def start(self) -> None:
        if self.interval_s <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="lending-keeper", daemon=True)
        self._thread.start()

    def stop(self) -> int | None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        return None


def today(host: LendingHost) -> date:
    return day_of(host.node.clock())
