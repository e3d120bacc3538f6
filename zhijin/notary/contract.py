"""The notary contract: anchor a document hash with a title, an owner and an optional expiry.

Anchoring a hash that is already anchored changes nothing and returns the first record, so a
retried or repeated anchor never creates a second claim to the same document.
"""

from __future__ import annotations

import re
from typing import Any

from zhijin.chain.contract import Context, Contract, TxInfo
from zhijin.chain.errors import ContractError
from zhijin.notary import limits

__all__ = ["NOTARY_CONTRACT", "record_key"]

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_ARGS = frozenset({"hash", "title", "expires_at"})


def record_key(document_hash: str) -> str:
    return f"notary/doc/{document_hash}"


def _validated(ctx: Context, args: dict[str, Any]) -> tuple[str, str, int | None]:
    if not set(args) <= _ARGS or "hash" not in args:
        raise ContractError("invalid_args", "args are hash, title and optional expires_at")
    document_hash = args["hash"]
    if not isinstance(document_hash, str) or not _SHA256_HEX.match(document_hash):
        raise ContractError("invalid_hash", "hash must be 64 lowercase hex digits (SHA-256)")
    title = args.get("title", "")
    if not isinstance(title, str) or len(title) > limits.TITLE_CHARS_MAX:
        raise ContractError(
            "invalid_title", f"title is a string of at most {limits.TITLE_CHARS_MAX}"
        )
    expires_at = args.get("expires_at")
    if expires_at is not None and (type(expires_at) is not int or expires_at <= ctx.block.time_ms):
        raise ContractError("invalid_expiry", "expires_at must be a block time (ms) in the future")
    return document_hash, title, expires_at


def anchor(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    document_hash, title, expires_at = _validated(ctx, args)
    key = record_key(document_hash)
    existing = ctx.get(key)
    if existing is not None:
        return {"created": False, "record": existing}
    record = {
        "hash": document_hash,
        "title": title,
        "owner": ctx.tx.sender,
        "anchored_at": ctx.block.time_ms,
        "height": ctx.block.height,
        "tx_hash": ctx.tx.tx_hash,
        "expires_at": expires_at,
    }
    ctx.put(key, record)
    ctx.emit("anchored", hash=document_hash, owner=ctx.tx.sender, title=title)
    return {"created": True, "record": record}


def _prefetch(_tx: TxInfo, args: dict[str, Any]) -> list[str]:
    document_hash = args.get("hash")
    return [record_key(document_hash)] if isinstance(document_hash, str) else []


NOTARY_CONTRACT = Contract(
    name="notary", version="1", methods={"anchor": anchor}, prefetch=_prefetch
)
