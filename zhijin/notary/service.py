"""Off-chain notary functions: hashing files, anchoring through the member gateway, lookups."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from zhijin.chain.errors import ContractError, NotFound
from zhijin.chain.store import ChainStore
from zhijin.notary.contract import record_key
from zhijin.notary.projection import NotaryProjection, anchors_titled
from zhijin.platform.gateway import MemberGateway
from zhijin.platform.projections import ProjectionRunner, await_visible

__all__ = ["NotaryService", "anchor", "hash_file", "lookup"]

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
    timeout_s: float = 30.0,
    sender: str | None = None,
) -> dict[str, Any]:
    """Anchor through this node's member; returns {"created", "record", "height"} once
    committed and, given the runner, once the notary table (the anchor list) shows it:
    CommittedNotYetVisible when it does not in time.  Lookups read committed state and need no
    wait.  `sender`: a signed-in user's DID that the member vouches for (the anchor is then
    theirs: its owner, who alone with members reads its receipt); default the member's own."""
    args: dict[str, Any] = {"hash": document_hash, "title": title}
    if expires_at is not None:
        args["expires_at"] = expires_at
    result = gateway.submit("notary", "anchor", args, sender=sender, timeout_s=timeout_s)
    if result["status"] != "ok":
        raise ContractError(result["code"], result["message"])
    if projections is not None:
        await_visible(projections, result, projection=NotaryProjection.name)
    value: dict[str, Any] = result["return"]
    return {**value, "height": int(result["height"])}


def lookup(store: ChainStore, document_hash: str, *, now_ms: int) -> dict[str, Any]:
    with store.read() as conn:
        record = store.state_get(conn, record_key(document_hash))
    if record is None:
        raise NotFound("not_anchored", f"no anchor for hash {document_hash}")
    expires_at = record.get("expires_at")
    status = "expired" if expires_at is not None and expires_at <= now_ms else "valid"
    return {**record, "status": status}


class NotaryService:
    """The notary as other domains use it (identity anchors its audit log's head here): anchor
    a hash in this member's name, read an anchor record from committed chain state, list the
    member's anchors by title from the query table.  Built once by the composition root; a
    read-only one (no gateway) serves offline commands."""

    def __init__(
        self, *, store: ChainStore, engine: Engine, gateway: MemberGateway | None = None
    ) -> None:
        self._store = store
        self._engine = engine
        self._gateway = gateway

    def anchor(self, *, document_hash: str, title: str, timeout_s: float) -> int:
        """Anchor `document_hash` under `title`; the height of the block that holds it (or
        held it first).  ContractError when the contract refuses it."""
        if self._gateway is None:
            raise RuntimeError("a read-only notary service anchors nothing")
        answer = anchor(
            self._gateway, document_hash=document_hash, title=title, timeout_s=timeout_s
        )
        return int(answer["height"])

    def anchor_record(self, document_hash: str) -> dict[str, Any] | None:
        """The anchor record of `document_hash` as the chain holds it, or None."""
        with self._store.read() as conn:
            record: dict[str, Any] | None = self._store.state_get(conn, record_key(document_hash))
        return record

    def anchors_titled(self, *, owner: str, title_prefix: str, limit: int) -> list[tuple[str, str]]:
        """(title, hash) of `owner`'s anchors whose title starts with `title_prefix`, from the
        query table (whoever can write the platform database can forge rows there: check each
        against `anchor_record` before trusting it)."""
        return anchors_titled(self._engine, owner=owner, title_prefix=title_prefix, limit=limit)
