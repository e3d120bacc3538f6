"""The guestbook contract: `sign` records an entry under the client's id.

| method | args | returns |
|---|---|---|
| sign | {"id", "message"} | {"entry": entry, "exists": bool} |

A retry with the same id and body answers as the first time with `exists: true` (a client may
retry safely); the same id with another body is refused (`exists_with_different_fields`).
Success writes `guestbook/entry/<id>` (emitted as `guestbook.entry_signed`) and the count.
"""

from __future__ import annotations

from typing import Any

from tests.node.example_domain.codes import Code, refuse
from tests.node.example_domain.records import Entry, keys
from tests.node.example_domain.requests import parse_sign
from zhijin.chain.contract import Context, Contract, TxInfo

__all__ = ["CONTRACT_NAME", "EVENT_ENTRY_SIGNED", "GUESTBOOK_CONTRACT"]

CONTRACT_NAME = "guestbook"
CONTRACT_VERSION = "1"
EVENT_ENTRY_SIGNED = "entry_signed"


def sign(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    request = parse_sign(args)
    existing = ctx.get_record(keys.entry(request.id), Entry)
    if existing is not None:
        differing = tuple(
            name
            for name, before, now in (
                ("message", existing.message, request.message),
                ("author", existing.author, ctx.tx.sender),
            )
            if before != now
        )
        if differing:
            refuse(Code.EXISTS_WITH_DIFFERENT_FIELDS, differing)
        return {"entry": existing.to_json(), "exists": True}
    entry = Entry(
        id=request.id,
        author=ctx.tx.sender,
        message=request.message,
        signed_at_ms=ctx.block.time_ms,
        height=ctx.block.height,
        tx_hash=ctx.tx.tx_hash,
    )
    ctx.put_record(keys.entry(entry.id), entry, event=EVENT_ENTRY_SIGNED)
    count = ctx.get(keys.COUNT) or {"entries": 0}
    ctx.put(keys.COUNT, {"entries": count["entries"] + 1})
    return {"entry": entry.to_json(), "exists": False}


def _prefetch(_tx: TxInfo, args: dict[str, Any]) -> list[str]:
    entry_id = args.get("id")
    return [keys.entry(entry_id), keys.COUNT] if type(entry_id) is str else [keys.COUNT]


GUESTBOOK_CONTRACT = Contract(
    name=CONTRACT_NAME, version=CONTRACT_VERSION, methods={"sign": sign}, prefetch=_prefetch
)
