"""HTTP API of lending: LPR quotes, loan products (maker-checker), applications and their
decisions with reasons, the officer's queue, disbursement, schedules, early repayments (and
their preview), a loan's history, a borrower's loans and the loan book by delinquency bucket.

Routes are thin: the strict input model, then an `Acting` action (`acting.py`: who asks, the
permissions lending's manifest declares, then `service`), which the web pages share.  Refusals
are problem+json with a stable code: the contract's (`codes.http_status_for`) or RBAC's
(`permission_denied`, `out_of_scope`, `sod_self_approval`, 403).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from zhijin.lending import limits
from zhijin.lending.acting import ActingDep
from zhijin.lending.schemas import (
    ApplicationIn,
    BookOut,
    HistoryOut,
    LoanListOut,
    LoanOut,
    LprIn,
    LprOut,
    ProductIn,
    ProductListOut,
    ProductOut,
    RepaymentIn,
    RepaymentPreviewOut,
    ReviewIn,
    ScheduleOut,
)
from zhijin.platform.http_edge import EdgeRoute, body_limit
from zhijin.platform.problems import NOT_YET_VISIBLE_RESPONSES

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/lending", tags=["lending"], route_class=EdgeRoute)

IdPath = Annotated[str, Path(pattern=limits.ID_PATTERN)]
PageSize = Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)]
After = Annotated[str | None, Query(pattern=limits.ID_PATTERN)]
_BODY = body_limit(limits.BODY_BYTES_MAX)
# A write: it waits for the query tables its answer reads (202 `not_yet_visible` when late).
_WRITE: dict[str, Any] = {"responses": NOT_YET_VISIBLE_RESPONSES}
_WRITE_BODY: dict[str, Any] = {**_WRITE, "openapi_extra": _BODY}


# -- LPR and products ------------------------------------------------------------------------------
@router.post("/lpr", summary="Publish an LPR quote (1Y or 5Y+) on chain", response_model=LprOut, **_WRITE_BODY)  # fmt: skip
def set_lpr(body: LprIn, acting: ActingDep) -> dict[str, Any]:
    return acting.set_lpr(
        tenor=body.tenor, rate_bps=body.rate_bps, effective_day=body.effective_day
    )


@router.get("/products", summary="Loan products (a regulator sees every member's)",
            response_model=ProductListOut)  # fmt: skip
def list_products(
    acting: ActingDep,
    status: Annotated[str | None, Query(pattern="^(pending_approval|approved)$")] = None,
    after: After = None,
    limit: PageSize = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    return acting.list_products(status=status, after=after, limit=limit)


@router.post("/products", summary="Create a loan product (a second officer approves it)",
             response_model=ProductOut, **_WRITE_BODY)  # fmt: skip
def create_product(body: ProductIn, acting: ActingDep) -> dict[str, Any]:
    return acting.create_product(body.model_dump(mode="json"))


@router.post("/products/{product_id}/approve",
             summary="Approve a product (never its creator: maker-checker)",
             response_model=ProductOut, **_WRITE)  # fmt: skip
def approve_product(product_id: IdPath, acting: ActingDep) -> dict[str, Any]:
    return acting.approve_product(product_id)


# -- applications ----------------------------------------------------------------------------------
@router.post("/applications",
             summary="Apply with a credit decision: approved at once or queued, with reasons",
             response_model=LoanOut, **_WRITE_BODY)  # fmt: skip
def apply(body: ApplicationIn, acting: ActingDep) -> dict[str, Any]:
    return acting.apply(body)


@router.get("/queue", summary="The officer's review queue (applications with failed conditions)",
            response_model=LoanListOut)  # fmt: skip
def queue(
    acting: ActingDep, after: After = None, limit: PageSize = limits.PAGE_SIZE_DEFAULT
) -> dict[str, Any]:
    return acting.queue(after=after, limit=limit)


@router.post("/loans/{loan_id}/review",
             summary="Approve or reject a queued application (never one's own)",
             response_model=LoanOut, **_WRITE_BODY)  # fmt: skip
def review(loan_id: IdPath, body: ReviewIn, acting: ActingDep) -> dict[str, Any]:
    return acting.review(loan_id, approve=body.approve, reason=body.reason)


@router.post("/loans/{loan_id}/disburse", summary="Disburse an approved loan through payments",
             response_model=LoanOut, **_WRITE)  # fmt: skip
def disburse(loan_id: IdPath, acting: ActingDep) -> dict[str, Any]:
    return acting.disburse(loan_id)


@router.post("/loans/{loan_id}/withdraw", summary="Withdraw an application before disbursement",
             response_model=LoanOut, **_WRITE)  # fmt: skip
def withdraw(loan_id: IdPath, acting: ActingDep) -> dict[str, Any]:
    return acting.withdraw(loan_id)


@router.post("/loans/{loan_id}/repayments",
             summary="Repay early, in full or in part (re-amortise or shorten)",
             response_model=LoanOut, **_WRITE_BODY)  # fmt: skip
def repay(loan_id: IdPath, body: RepaymentIn, acting: ActingDep) -> dict[str, Any]:
    return acting.repay(loan_id, body)


@router.post("/loans/{loan_id}/repayments/preview",
             summary="What an early repayment would do now (new schedule, allocation): nothing is written",
             response_model=RepaymentPreviewOut, openapi_extra=_BODY)  # fmt: skip
def preview_repayment(loan_id: IdPath, body: RepaymentIn, acting: ActingDep) -> dict[str, Any]:
    return acting.preview_repayment(loan_id, body)


# -- reads -----------------------------------------------------------------------------------------
@router.get("/loans/{loan_id}", summary="One loan as its contract holds it", response_model=LoanOut)
def get_loan(loan_id: IdPath, acting: ActingDep) -> dict[str, Any]:
    return {"loan": acting.read_loan(loan_id)}


@router.get("/loans/{loan_id}/schedule", summary="The repayment schedule, exact to the cent",
            response_model=ScheduleOut)  # fmt: skip
def schedule(loan_id: IdPath, acting: ActingDep) -> dict[str, Any]:
    return acting.schedule(loan_id)


@router.get("/loans/{loan_id}/history", summary="A loan's transitions and payments",
            response_model=HistoryOut)  # fmt: skip
def history(loan_id: IdPath, acting: ActingDep) -> dict[str, Any]:
    return acting.history(loan_id)


@router.get("/loans", summary="Loans: a customer's own, a member's, or (regulator) all",
            response_model=LoanListOut)  # fmt: skip
def list_loans(
    acting: ActingDep,
    status: Annotated[str | None, Query(pattern="^[a-z_]{1,24}$")] = None,
    borrower: Annotated[str | None, Query(max_length=limits.DID_CHARS_MAX)] = None,
    after: After = None,
    limit: PageSize = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    return acting.list_loans(status=status, borrower=borrower, after=after, limit=limit)


@router.get("/book", summary="The loan book by member, status and delinquency bucket",
            response_model=BookOut)  # fmt: skip
def loan_book(acting: ActingDep) -> dict[str, Any]:
    return acting.book()
