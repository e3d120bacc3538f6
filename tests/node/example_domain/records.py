"""The guestbook's stored records and its state key layout (every key under `guestbook/`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from zhijin.chain.codec import canonical

__all__ = ["Entry", "keys"]


class keys:  # lower case: a namespace of key builders, read as `keys.entry(id)`
    ENTRY = "guestbook/entry/"
    COUNT = "guestbook/count"  # {"entries": n}: what the count invariant checks

    @staticmethod
    def entry(entry_id: str) -> str:
        return keys.ENTRY + entry_id


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    author: str  # the tx's sender
    message: str
    signed_at_ms: int  # block time
    height: int
    tx_hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "author": self.author,
            "message": self.message,
            "signed_at_ms": self.signed_at_ms,
            "height": self.height,
            "tx_hash": self.tx_hash,
        }

    def canonical(self) -> bytes:
        return canonical(self.to_json())  # validated: no hand-written encoding to vouch for

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(**data)
