"""Off-chain notary functions: hashing files, anchoring through the member gateway, lookups."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from zhijin.chain.errors import ContractError, NotFound
from zhijin.chain.store import ChainStore
from zhijin.notary.contract import record_key
from zhijin.notary.projection import NotaryProjection
from zhijin.platform.gateway import MemberGateway
from zhijin.platform.projections import ProjectionRunner, await_visible

__all__ = ["anchor", "hash_file", "lookup"]

READ_CHUNK_BYTES = 1 << 20


def hash_file(path: Path) -> str:
    """SHA-256 of a file of any size, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(READ_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def anchor(
    gateway: MemberGateway,
    *,
    document_hash: str,
    title: str = "",
    expires_at: int | None = None,
    projections: ProjectionRunner | None = None,
) -> dict[str, Any]:
    """Anchor through this node's member; returns {"created", "record"} once committed and,
    given the runner, once the notary table (the anchor list) shows it: CommittedNotYetVisible
    when it does not in time.  Lookups read committed state and need no wait."""
    args: dict[str, Any] = {"hash": document_hash, "title": title}
    if expires_at is not None:
        args["expires_at"] = expires_at
    result = gateway.submit("notary", "anchor", args)
    if result["status"] != "ok":
        raise ContractError(result["code"], result["message"])
    if projections is not None:
        await_visible(projections, result, projection=NotaryProjection.name)
    value: dict[str, Any] = result["return"]
    return value


def lookup(store: ChainStore, document_hash: str, *, now_ms: int) -> dict[str, Any]:
    with store.read() as conn:
        record = store.state_get(conn, record_key(document_hash))
    if record is None:
        raise NotFound("not_anchored", f"no anchor for hash {document_hash}")
    expires_at = record.get("expires_at")
    status = "expired" if expires_at is not None and expires_at <= now_ms else "valid"
    return {**record, "status": status}
