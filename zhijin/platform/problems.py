"""RFC 9457 problem+json responses with a stable `code` for every error the API returns.

The `detail` is for people: the code's template from the "messages" catalog
(`problem.<code>`), in the request's language (`i18n.request_locale`: the web's cookie, then
Accept-Language, else zh-CN), filled from the error's details.  The figures stay as they were in
the problem's extra fields for programs, and `diagnostic` keeps the raise site's own English
sentence for developers and support (it often names the one check of many that failed).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from zhijin.chain.errors import ZhijinError
from zhijin.platform import i18n
from zhijin.platform.catalogs import problem_msgid
from zhijin.platform.i18n import N_
from zhijin.platform.projections import CommittedNotYetVisible

__all__ = [
    "NOT_YET_VISIBLE_RESPONSES",
    "EdgeProblem",
    "NotYetVisibleAnswer",
    "install_problem_handlers",
    "localized_problem",
    "not_yet_visible",
    "problem",
    "problem_detail",
    "template_params",
    "validation_errors",
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


# Starlette's own HTTPExceptions carry no code: these are theirs (any other is "http_error").
_HTTP_CODES = {
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}
_REASON_SEPARATOR = {"zh_CN": "；", "en": "; "}
_LIST_SEPARATOR = {"zh_CN": "、", "en": ", "}
VALIDATION_PREFIX = "validation."
# pydantic's error types the catalog translates, each filled from the error's `ctx`; marked
# here so the extraction keeps them (a type not listed keeps pydantic's English sentence).
VALIDATION_MESSAGES = (
    N_("validation.missing"),
    N_("validation.extra_forbidden"),
    N_("validation.string_type"),
    N_("validation.string_too_short"),
    N_("validation.string_too_long"),
    N_("validation.string_pattern_mismatch"),
    N_("validation.int_type"),
    N_("validation.int_parsing"),
    N_("validation.int_from_float"),
    N_("validation.float_type"),
    N_("validation.float_parsing"),
    N_("validation.bool_type"),
    N_("validation.bool_parsing"),
    N_("validation.greater_than"),
    N_("validation.greater_than_equal"),
    N_("validation.less_than"),
    N_("validation.less_than_equal"),
    N_("validation.too_short"),
    N_("validation.too_long"),
    N_("validation.literal_error"),
    N_("validation.enum"),
    N_("validation.dict_type"),
    N_("validation.model_type"),
    N_("validation.model_attributes_type"),
    N_("validation.list_type"),
    N_("validation.json_invalid"),
    N_("validation.json_type"),
)


def problem_detail(locale: str, code: str, details: dict[str, Any], diagnostic: str) -> str:
    """The code's template in `locale`, filled from `details`.

    A code without a template (a test fails on it; strict mode raises) or a template naming a
    detail this raise did not pass is logged and answered with the diagnostic, so a gap in the
    catalog never turns a refusal into a server error."""
    msgid = problem_msgid(code)
    if not i18n.has_message(locale, msgid):
        if i18n.is_strict():
            raise i18n.MissingTranslation(f"messages/{locale}: no template {msgid!r}")
        log.warning("problem code without a template", extra={"code": code, "locale": locale})
        return diagnostic
    try:
        params = template_params(locale, details)
        detail = i18n.render(locale, msgid, params)
        if isinstance(details.get("fields"), list) and details["fields"]:
            # Which fields a request got wrong, for any code that names them (a shared code's
            # template cannot count on every domain passing them).
            detail += i18n.gettext(locale, "problem.suffix.fields", fields=params["fields"])
        return detail
    except (KeyError, IndexError) as exc:
        if i18n.is_strict():
            raise
        log.warning("problem template names a missing detail", extra={"code": code, "exc": exc})
        return diagnostic


def template_params(locale: str, details: dict[str, Any]) -> dict[str, object]:
    """The details as a template names them, plus their forms for people: `retry_after_s`
    from `retry_after_ms` (rounded up), `reasons` in the locale (each rule's own sentence when
    the policy gives one per language), a list of names as one list, and `<x>` as money for
    every `<x>_minor` with a currency; and a detail in words where the raise gives its words
    per locale (`words_by_locale`: {locale: {name: words}}), so that a machine value (a
    status) stays in the body while the sentence says it in the reader's language."""
    params: dict[str, object] = dict(details)
    words = details.get("words_by_locale")
    if isinstance(words, dict) and isinstance(words.get(locale), dict):
        params.update({str(k): str(v) for k, v in words[locale].items()})
    retry_after_ms = details.get("retry_after_ms")
    if isinstance(retry_after_ms, int) and not isinstance(retry_after_ms, bool):
        params["retry_after_s"] = max(1, -(-retry_after_ms // 1000))
    reasons = _reasons(locale, details)
    if reasons is not None:
        params["reasons"] = _REASON_SEPARATOR[locale].join(reasons)
    for name, value in details.items():
        if name != "reasons" and isinstance(value, list) and all(isinstance(v, str) for v in value):
            params[name] = _LIST_SEPARATOR[locale].join(value)  # field names, ids
    currency = details.get("currency")
    for name, value in details.items():
        if name.endswith("_minor") and isinstance(value, int) and isinstance(currency, str):
            params[name.removesuffix("_minor")] = i18n.format_money(value, currency, locale)
    return params


def _reasons(locale: str, details: dict[str, Any]) -> list[str] | None:
    by_locale = details.get("reasons_by_locale")
    if isinstance(by_locale, dict) and isinstance(by_locale.get(locale), list):
        return [str(reason) for reason in by_locale[locale]]
    reasons = details.get("reasons")
    if isinstance(reasons, list):
        # "rule_id: reason" (the policy's own text): a person needs the sentence only.
        return [str(reason).partition(": ")[2] or str(reason) for reason in reasons]
    return None


def localized_problem(
    request: Request, status: int, code: str, diagnostic: str, **extra: Any
) -> JSONResponse:
    """A problem whose detail is the code's template in the request's language."""
    detail = problem_detail(i18n.request_locale(request), code, extra, diagnostic)
    return problem(status, code, detail, diagnostic=diagnostic, **extra)


def validation_errors(locale: str, errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """pydantic's per-field errors with `msg` in the locale: the catalog's
    `validation.<type>` filled from the error's context.  A type the catalog lacks keeps
    pydantic's English sentence; its `type` is there for programs either way."""
    rendered = []
    for error in errors:
        kind = str(error.get("type", ""))
        context = {k: _plain(v) for k, v in (error.get("ctx") or {}).items()}
        msgid = VALIDATION_PREFIX + kind
        message = str(error.get("msg", ""))
        if i18n.has_message(locale, msgid):
            try:
                message = i18n.render(locale, msgid, context)
            except (KeyError, IndexError):
                log.warning("validation template names a missing context", extra={"type": kind})
        rendered.append({"loc": list(error.get("loc", ())), "msg": message, "type": kind})
    return rendered


def _plain(value: Any) -> object:
    """A context value as text a sentence can hold (pydantic passes numbers, strings, enums)."""
    return value if isinstance(value, int | str) else str(value)


def problem(
    status: int, code: str, detail: str, *, diagnostic: str | None = None, **extra: Any
) -> JSONResponse:
    body = {
        "type": f"https://zhijin.dev/problems/{code.replace('_', '-')}",
        "title": code.replace("_", " "),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    if diagnostic is not None and diagnostic != detail:
        body["diagnostic"] = diagnostic
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


def not_yet_visible(locale: str, exc: CommittedNotYetVisible) -> JSONResponse:
    """202 Accepted, not a problem: the write committed and stands; only the query tables the
    answer reads are behind.  The body names the tx; Retry-After says when to read again."""
    detail = problem_detail(locale, exc.code, exc.details, exc.message)
    body = {"status": exc.code, "code": exc.code, "detail": detail, **exc.details}
    response = JSONResponse(body, status_code=202)
    response.headers["Retry-After"] = str(exc.details["retry_after_s"])
    return response


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(CommittedNotYetVisible)
    async def _not_yet_visible(request: Request, exc: CommittedNotYetVisible) -> JSONResponse:
        return not_yet_visible(i18n.request_locale(request), exc)

    @app.exception_handler(ZhijinError)
    async def _domain(request: Request, exc: ZhijinError) -> JSONResponse:
        response = localized_problem(request, exc.http_status, exc.code, exc.message, **exc.details)
        retry_after_ms = exc.details.get("retry_after_ms")
        if exc.http_status in (429, 503) and isinstance(retry_after_ms, int):
            # RFC 9110 Retry-After in whole seconds, rounded up so a client never retries early.
            response.headers["Retry-After"] = str(max(1, -(-retry_after_ms // 1000)))
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(i18n.request_locale(request), exc.errors())
        return localized_problem(
            request, 422, "invalid_request", "the request does not match its schema", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, EdgeProblem):
            return localized_problem(
                request, exc.status_code, exc.code, str(exc.detail), **exc.extra
            )
        code = _HTTP_CODES.get(exc.status_code)
        if code is None:
            return localized_problem(request, exc.status_code, "http_error", str(exc.detail))
        return localized_problem(request, exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return localized_problem(
            request, 500, "internal_error", "an internal error occurred; it has been logged"
        )
