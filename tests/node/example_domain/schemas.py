"""What the guestbook API takes (strict input models) and returns (output models, the
OpenAPI's response schemas).  Bounds come from `limits`, as the contract's do."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tests.node.example_domain import limits

__all__ = ["EntryListOut", "EntryOut", "EntryView", "SignIn"]


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: str = Field(pattern=limits.ENTRY_ID_PATTERN, description="client id: a retry is safe")
    message: str = Field(min_length=1, max_length=limits.MESSAGE_CHARS_MAX)


class EntryView(BaseModel):
    id: str
    author: str = Field(description="the sender's DID")
    message: str
    signed_at_ms: int = Field(description="block time in ms")
    height: int
    tx_hash: str


class EntryOut(BaseModel):
    entry: EntryView
    exists: bool = Field(description="true for a retry of an entry signed before")


class EntryListOut(BaseModel):
    entries: list[EntryView]
    next_before_height: int | None = Field(description="the next page's `before_height`")
