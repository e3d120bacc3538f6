"""The HTTP edge: what a request body must be before any route sees it.

Every API router is built with `route_class=EdgeRoute` (`create_app` refuses a route that is
not), so each of its routes

- takes a body of at most `http_limits.BODY_BYTES_MAX` bytes, or what it declares with
  `openapi_extra=body_limit(n)` (shown in the OpenAPI as `x-max-body-bytes`).  A declared
  `Content-Length` over the limit is refused before a byte is read; a body without one (chunked)
  is counted as it arrives and refused once it passes the limit.  Either way: 413
  `body_too_large`, and the route never runs.
- parses a JSON body by the chain codec's rules for text (docs/chain.md): an object with the
  same key twice is 400 `duplicate_key` (parsers disagree on which one wins), a lone surrogate
  (`"\\ud800"`) 400 `bad_string`; an integer outside the signed 64-bit range (which no schema
  here takes: every column is 64-bit), `NaN`/`Infinity` and other non-JSON 422
  `invalid_request`, as any other schema error.
  Floats stay allowed here: the routes' schemas refuse them where amounts are concerned.

Routes that read their body themselves (chain envelopes, pain.001 files) get the same size
limit; chain envelopes are then parsed by the codec itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.types import Message, Receive

from zhijin.chain.codec import INT_MAX, INT_MIN, refuse_lone_surrogates, unique_keys
from zhijin.chain.errors import EncodingError
from zhijin.platform.http_limits import BODY_BYTES_MAX
from zhijin.platform.problems import EdgeProblem

__all__ = ["BODY_LIMIT_KEY", "EdgeRequest", "EdgeRoute", "body_limit", "strict_json"]

BODY_LIMIT_KEY = "x-max-body-bytes"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_INT_DIGITS_SAFE = 18  # any integer of at most this many digits fits in 64 bits


def body_limit(limit_bytes: int) -> dict[str, Any]:
    """`openapi_extra` for a route that takes more (or less) than the default body."""
    return {BODY_LIMIT_KEY: limit_bytes}


def _too_large(limit_bytes: int) -> EdgeProblem:
    return EdgeProblem(
        413,
        "body_too_large",
        f"the request body is larger than this route's {limit_bytes} bytes",
        limit_bytes=limit_bytes,
    )


def _int64(text: str) -> int:
    value = int(text)
    if len(text) > _INT_DIGITS_SAFE and not INT_MIN <= value <= INT_MAX:
        raise EncodingError("integer_out_of_range", "integers must fit in a signed 64-bit range")
    return value


def _not_json(text: str) -> Any:
    # json.JSONDecodeError, so that FastAPI answers as for any other malformed body.
    raise json.JSONDecodeError(f"{text} is not JSON", text, 0)


_decoder = json.JSONDecoder(
    object_pairs_hook=unique_keys, parse_int=_int64, parse_constant=_not_json
)


def strict_json(body: bytes) -> Any:
    """Parse a request body by the edge's rules (module docstring); raise EdgeProblem (400) or
    json.JSONDecodeError."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EdgeProblem(400, "bad_string", "the body is not valid UTF-8") from exc
    try:
        value = _decoder.decode(text)
        if "\\u" in text:
            refuse_lone_surrogates(value)
    except EncodingError as exc:
        if exc.code == "integer_out_of_range":
            # No schema here takes such an integer (every column is 64-bit): a schema error.
            raise EdgeProblem(
                422,
                "invalid_request",
                "the request does not match its schema",
                errors=[{"loc": ["body"], "msg": exc.message}],
            ) from exc
        raise EdgeProblem(400, exc.code, exc.message) from exc
    except RecursionError as exc:
        raise EdgeProblem(400, "too_deep", "the body nests too deep") from exc
    return value


class EdgeRequest(Request):
    """A request whose JSON body is parsed by `strict_json` (FastAPI calls `json()` for every
    body it validates against a model)."""

    async def json(self) -> Any:
        if not hasattr(self, "_edge_json"):
            self._edge_json = strict_json(await self.body())
        return self._edge_json


def _limited(receive: Receive, limit_bytes: int) -> Receive:
    """`receive` that refuses a body once more than `limit_bytes` of it have arrived."""
    received = 0

    async def receive_limited() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit_bytes:
                raise _too_large(limit_bytes)
        return message

    return receive_limited


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length", "")
    # More digits than any limit has is over it; int() of a long header would be slow.
    if not value.isdigit():
        return None
    return int(value) if len(value) <= _INT_DIGITS_SAFE else INT_MAX


class EdgeRoute(APIRoute):
    """An API route behind the edge's body rules (module docstring)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        extra = kwargs.get("openapi_extra") or {}
        # Before APIRoute.__init__, which builds the handler.
        self.body_bytes_max: int = extra.get(BODY_LIMIT_KEY, BODY_BYTES_MAX)
        super().__init__(path, endpoint, **kwargs)
        if self.methods and self.methods & _BODY_METHODS:
            self.openapi_extra = {BODY_LIMIT_KEY: self.body_bytes_max, **extra}

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        limit_bytes = self.body_bytes_max

        async def edge_handler(request: Request) -> Response:
            declared = _declared_length(request)
            if declared is not None and declared > limit_bytes:
                raise _too_large(limit_bytes)
            receive = _limited(request.receive, limit_bytes)
            return await handler(EdgeRequest(request.scope, receive))

        return edge_handler
