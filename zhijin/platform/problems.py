"""RFC 9457 problem+json responses with a stable `code` for every error the API returns."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from zhijin.chain.errors import ZhijinError
from zhijin.platform.projections import CommittedNotYetVisible

__all__ = [
    "NOT_YET_VISIBLE_RESPONSES",
    "EdgeProblem",
    "NotYetVisibleAnswer",
    "install_problem_handlers",
    "not_yet_visible",
    "problem",
]

log = logging.getLogger("zhijin.api")

PROBLEM_JSON = "application/problem+json"


class EdgeProblem(StarletteHTTPException):
    """A request refused at the HTTP edge, before its route runs, with a stable code.

    An HTTPException rather than a ZhijinError because FastAPI passes only HTTPExceptions
    unchanged out of its request body parsing (anything else becomes a bare 400)."""

    def __init__(self, status_code: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(status_code=status_code, detail=detail)
        self.code = code
        self.extra = extra


# Starlette's own HTTPExceptions carry no code: these are theirs.
_HTTP_CODES = {
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    body = {
        "type": f"https://zhijin.dev/problems/{code.replace('_', '-')}",
        "title": code.replace("_", " "),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


class NotYetVisibleAnswer(BaseModel):
    status: str = Field(description="committed_not_yet_visible")
    code: str = Field(description="committed_not_yet_visible (stable)")
    detail: str
    tx_hash: str | None = Field(description="the committed tx (null when a read names none)")
    height: int = Field(description="the block it committed in")
    projections: list[str] = Field(description="the query tables that do not show it yet")
    retry_after_s: int = Field(description="as the Retry-After header")


# For the routes that write then read a query table (and the reads that may meet a write
# before its table does): their 202 in the OpenAPI document.
NOT_YET_VISIBLE_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "model": NotYetVisibleAnswer,
        "description": "Committed, not yet in the query tables: read again (or retry the same"
        " request, which is idempotent) after Retry-After seconds",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    }
}


def not_yet_visible(exc: CommittedNotYetVisible) -> JSONResponse:
    """202 Accepted, not a problem: the write committed and stands; only the query tables the
    answer reads are behind.  The body names the tx; Retry-After says when to read again."""
    body = {"status": exc.code, "code": exc.code, "detail": exc.message, **exc.details}
    response = JSONResponse(body, status_code=202)
    response.headers["Retry-After"] = str(exc.details["retry_after_s"])
    return response


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(CommittedNotYetVisible)
    async def _not_yet_visible(_request: Request, exc: CommittedNotYetVisible) -> JSONResponse:
        return not_yet_visible(exc)

    @app.exception_handler(ZhijinError)
    async def _domain(_request: Request, exc: ZhijinError) -> JSONResponse:
        response = problem(exc.http_status, exc.code, exc.message, **exc.details)
        retry_after_ms = exc.details.get("retry_after_ms")
        if exc.http_status in (429, 503) and isinstance(retry_after_ms, int):
            # RFC 9110 Retry-After in whole seconds, rounded up so a client never retries early.
            response.headers["Retry-After"] = str(max(1, -(-retry_after_ms // 1000)))
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()
        ]
        return problem(
            422, "invalid_request", "the request does not match its schema", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, EdgeProblem):
            return problem(exc.status_code, exc.code, str(exc.detail), **exc.extra)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return problem(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem(500, "internal_error", "an internal error occurred; it has been logged")
