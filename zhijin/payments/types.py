"""Named types for the ids and amounts that cross payments' module boundaries (STYLE.md rule 2).

`Annotated` aliases rather than `NewType`s: a value read from JSON, a path or a row is already
the plain type, so an alias names what a parameter holds without a cast at every call site, and
the pydantic metadata makes the same alias the API's validation (one bound, from `limits`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from zhijin.payments import limits

__all__ = ["AccountId", "AmountMinor", "ClientId", "QuoteId", "TransferId"]

# A client-chosen id (account, transfer, quote): `limits.ID_PATTERN`.
ClientId = Annotated[str, Field(pattern=limits.ID_PATTERN, description="client id, 1-64 chars")]
AccountId = ClientId
QuoteId = ClientId
# Any transfer's id, a client's or a leg the contract booked (`<id>~fee`): at most
# `limits.TRANSFER_ID_CHARS_MAX` characters.
TransferId = Annotated[str, Field(max_length=limits.TRANSFER_ID_CHARS_MAX)]
# Integer minor units of the account's currency (ISO 4217 exponent), never a float.
AmountMinor = Annotated[int, Field(strict=True, ge=1, le=limits.AMOUNT_MAX)]
