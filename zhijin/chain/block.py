"""Block headers, signatures, signed tree heads and the roots they commit to.

All functions here are pure: the node uses them to build a block and `chain verify` uses the
same functions to re-derive every root from the stored data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from zhijin.chain.codec import canonical, canonical_trusted, sha256
from zhijin.chain.crypto import BadKey, KeyPair, public_key_from_did, verify
from zhijin.chain.merkle import leaf_hash, merkle_root

__all__ = [
    "HEADER_FIELDS",
    "ZERO_HASH",
    "BlockHeader",
    "Signature",
    "TreeHead",
    "encode_write_set",
    "next_state_root",
    "next_state_root_encoded",
    "result_leaves",
    "results_root",
    "results_root_encoded",
    "sign_header",
    "sign_tree_head",
    "tx_root",
    "valid_signatures",
]

ZERO_HASH = bytes(32)
HEADER_FIELDS = (
    "chain_id",
    "height",
    "prev_hash",
    "time_ms",
    "tx_count",
    "tx_root",
    "results_root",
    "state_root",
    "log_root",
    "log_size",
    "proposer",
)


@dataclass(frozen=True, slots=True)
class Signature:
    signer: str  # did:key of a member
    signature: bytes

    def to_json(self) -> dict[str, str]:
        return {"signer": self.signer, "signature": self.signature.hex()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Signature:
        return cls(signer=str(data["signer"]), signature=bytes.fromhex(str(data["signature"])))


@dataclass(frozen=True, slots=True)
class BlockHeader:
    chain_id: str
    height: int
    prev_hash: bytes
    time_ms: int
    tx_count: int
    tx_root: bytes
    results_root: bytes
    state_root: bytes
    log_root: bytes
    log_size: int
    proposer: str

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "height": self.height,
            "prev_hash": self.prev_hash.hex(),
            "time_ms": self.time_ms,
            "tx_count": self.tx_count,
            "tx_root": self.tx_root.hex(),
            "results_root": self.results_root.hex(),
            "state_root": self.state_root.hex(),
            "log_root": self.log_root.hex(),
            "log_size": self.log_size,
            "proposer": self.proposer,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BlockHeader:
        if set(data) != set(HEADER_FIELDS):
            raise ValueError("header fields do not match the wire format")
        return cls(
            chain_id=str(data["chain_id"]),
            height=int(data["height"]),
            prev_hash=bytes.fromhex(data["prev_hash"]),
            time_ms=int(data["time_ms"]),
            tx_count=int(data["tx_count"]),
            tx_root=bytes.fromhex(data["tx_root"]),
            results_root=bytes.fromhex(data["results_root"]),
            state_root=bytes.fromhex(data["state_root"]),
            log_root=bytes.fromhex(data["log_root"]),
            log_size=int(data["log_size"]),
            proposer=str(data["proposer"]),
        )

    def encoded(self) -> bytes:
        return canonical(self.to_json())

    def hash(self) -> bytes:
        return sha256(self.encoded())


@dataclass(frozen=True, slots=True)
class TreeHead:
    """A signed tree head: the global log tree's size and root as of a block."""

    chain_id: str
    tree_size: int
    root: bytes
    height: int
    block_hash: bytes
    signatures: tuple[Signature, ...] = ()

    def signed_bytes(self) -> bytes:
        return canonical(
            {
                "chain_id": self.chain_id,
                "tree_size": self.tree_size,
                "root": self.root.hex(),
                "height": self.height,
                "block_hash": self.block_hash.hex(),
            }
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "root": self.root.hex(),
            "height": self.height,
            "block_hash": self.block_hash.hex(),
            "signatures": [s.to_json() for s in self.signatures],
        }

    @classmethod
    def from_json(cls, chain_id: str, data: Mapping[str, Any]) -> TreeHead:
        return cls(
            chain_id=chain_id,
            tree_size=int(data["tree_size"]),
            root=bytes.fromhex(data["root"]),
            height=int(data["height"]),
            block_hash=bytes.fromhex(data["block_hash"]),
            signatures=tuple(Signature.from_json(s) for s in data["signatures"]),
        )


def sign_header(key: KeyPair, header: BlockHeader) -> Signature:
    return Signature(key.did, key.sign(header.encoded()))


def sign_tree_head(key: KeyPair, head: TreeHead) -> Signature:
    return Signature(key.did, key.sign(head.signed_bytes()))


def valid_signatures(
    message: bytes, signatures: Iterable[Signature], member_weights: Mapping[str, int]
) -> tuple[int, list[str]]:
    """Total weight of distinct members whose signature over `message` verifies, and problems.

    A signature from a non-member, a repeated signer or a bad signature counts for nothing.
    """
    weight = 0
    seen: set[str] = set()
    problems: list[str] = []
    for sig in signatures:
        if sig.signer not in member_weights:
            problems.append(f"signer {sig.signer} is not a member")
            continue
        if sig.signer in seen:
            problems.append(f"signer {sig.signer} signed twice")
            continue
        try:
            public_key = public_key_from_did(sig.signer)
        except BadKey:
            problems.append(f"signer {sig.signer} is not a did:key")
            continue
        if not verify(public_key, message, sig.signature):
            problems.append(f"signature by {sig.signer} does not verify")
            continue
        seen.add(sig.signer)
        weight += member_weights[sig.signer]
    return weight, problems


def tx_root(tx_hashes: Sequence[bytes]) -> bytes:
    return merkle_root([leaf_hash(h) for h in tx_hashes])


def result_leaves(results: Sequence[Mapping[str, Any]]) -> list[bytes]:
    return [leaf_hash(sha256(canonical(result))) for result in results]


def results_root(results: Sequence[Mapping[str, Any]]) -> bytes:
    return merkle_root(result_leaves(results))


def results_root_encoded(encoded_results: Sequence[bytes]) -> bytes:
    """`results_root` over results already in canonical form (the node encodes each once)."""
    return merkle_root([leaf_hash(sha256(result)) for result in encoded_results])


def next_state_root(prev_state_root: bytes, write_set: Sequence[tuple[str, Any]]) -> bytes:
    """H(previous root ‖ canonical sorted write set): any divergence in any write shows."""
    return sha256(prev_state_root + canonical([[key, value] for key, value in write_set]))


def encode_write_set(write_set: Sequence[tuple[str, Any]]) -> list[tuple[str, bytes | None]]:
    """Each (key, value) with the value in canonical form (None for a deletion)."""
    return [(key, None if value is None else canonical_trusted(value)) for key, value in write_set]


def next_state_root_encoded(
    prev_state_root: bytes, encoded_writes: Sequence[tuple[str, bytes | None]]
) -> bytes:
    """`next_state_root` from pre-encoded values: canonical lists are their items joined by
    commas in brackets, so the bytes are assembled without encoding any value again."""
    items = [
        b"[" + canonical_trusted(key) + b"," + (b"null" if value is None else value) + b"]"
        for key, value in encoded_writes
    ]
    return sha256(prev_state_root + b"[" + b",".join(items) + b"]")
