"""Two error tiers (STYLE.md rule 5).

`ZhijinError` and its subclasses are expected failures: each has a stable `code` that the API
maps one to one to a problem+json response.  `InvariantViolation` is an impossible state: it
stops the block and is never caught by request handlers.
"""

from __future__ import annotations

from typing import Any


class ZhijinError(Exception):
    """An expected, client-visible failure with a stable machine-readable code."""

    code: str = "error"
    http_status: int = 400

    def __init__(self, code: str | None = None, message: str = "", **details: Any) -> None:
        if code is not None:
            self.code = code
        self.message = message or self.code.replace("_", " ")
        self.details = details
        super().__init__(f"{self.code}: {self.message}")


class EncodingError(ZhijinError):
    """Input is not canonical-JSON encodable (floats, huge integers, bad types, bad JSON)."""

    code = "malformed_json"


class TxRejected(ZhijinError):
    """A transaction refused at admission: it is not stored and changes nothing."""

    code = "tx_rejected"


class NotFound(ZhijinError):
    code = "not_found"
    http_status = 404


class Unavailable(ZhijinError):
    code = "unavailable"
    http_status = 503


class ContractError(ZhijinError):
    """A contract refused a transaction: the tx is recorded with this code, state unchanged."""

    code = "contract_error"
    http_status = 422


class InvariantViolation(AssertionError):
    """An impossible state.  Raised by `invariant`, which works even under `python -O`."""


def invariant(condition: object, message: str) -> None:
    if not condition:
        raise InvariantViolation(message)
