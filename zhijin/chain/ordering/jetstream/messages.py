"""Wire messages of the ordering and signature streams: cut markers, block votes.

Decoding authenticates what it can without the chain (a marker's signature, a vote's
header shape); membership is judged by the cutter and the finality tracker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from zhijin.chain.block import BlockHeader, Signature
from zhijin.chain.codec import canonical, decode, sha256
from zhijin.chain.crypto import BadKey, KeyPair, public_key_from_did, verify
from zhijin.chain.errors import EncodingError

__all__ = ["BlockVote", "CutMarker", "StreamMessage"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CutMarker:
    chain_id: str
    height: int
    time_ms: int
    first_seq: int  # stream sequence of the first pending tx the proposer saw (dedupe id)
    proposer: str
    signature: bytes

    def _unsigned_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "height": self.height,
            "time_ms": self.time_ms,
            "first_seq": self.first_seq,
            "proposer": self.proposer,
        }

    def signed_bytes(self) -> bytes:
        return canonical(self._unsigned_json())

    def encode(self) -> bytes:
        return canonical({**self._unsigned_json(), "signature": self.signature.hex()})

    @property
    def msg_id(self) -> str:
        return f"cut:{self.height}:{self.first_seq}"

    @classmethod
    def make(
        cls, key: KeyPair, *, chain_id: str, height: int, time_ms: int, first_seq: int
    ) -> CutMarker:
        unsigned = cls(chain_id, height, time_ms, first_seq, key.did, b"")
        return cls(chain_id, height, time_ms, first_seq, key.did, key.sign(unsigned.signed_bytes()))

    @classmethod
    def decode(cls, raw: bytes) -> CutMarker:
        """Parse and authenticate a marker; ValueError if it is malformed or badly signed."""
        try:
            data = decode(raw)
            marker = cls(
                chain_id=_typed(data["chain_id"], str),
                height=_typed(data["height"], int),
                time_ms=_typed(data["time_ms"], int),
                first_seq=_typed(data["first_seq"], int),
                proposer=_typed(data["proposer"], str),
                signature=bytes.fromhex(_typed(data["signature"], str)),
            )
            public_key = public_key_from_did(marker.proposer)
        except (EncodingError, BadKey, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed cut marker: {exc}") from exc
        if set(data) != {"chain_id", "height", "time_ms", "first_seq", "proposer", "signature"}:
            raise ValueError("cut marker fields do not match the wire format")
        if not verify(public_key, marker.signed_bytes(), marker.signature):
            raise ValueError("cut marker signature does not verify")
        return marker


@dataclass(frozen=True, slots=True)
class BlockVote:
    """A member's signature over a block header, as published on the signature stream."""

    height: int
    header: bytes  # canonical header bytes: the signed message
    signature: Signature

    @property
    def block_hash(self) -> bytes:
        return sha256(self.header)

    def encode(self) -> bytes:
        return canonical(
            {
                "height": self.height,
                "header": decode(self.header),
                "signer": self.signature.signer,
                "signature": self.signature.signature.hex(),
            }
        )

    @property
    def msg_id(self) -> str:
        return f"sig:{self.height}:{self.signature.signer}:{self.block_hash.hex()[:16]}"

    @classmethod
    def decode(cls, raw: bytes) -> BlockVote:
        try:
            data = decode(raw)
            header = canonical(BlockHeader.from_json(data["header"]).to_json())
            height = _typed(data["height"], int)
            signature = Signature(
                _typed(data["signer"], str), bytes.fromhex(_typed(data["signature"], str))
            )
        except (EncodingError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed vote: {exc}") from exc
        if decode(header)["height"] != height:
            raise ValueError("vote height differs from its header's")
        return cls(height, header, signature)


def _typed(value: Any, kind: type[T]) -> T:
    if type(value) is not kind:
        raise TypeError(f"expected {kind.__name__}")
    return value


@dataclass(frozen=True, slots=True)
class StreamMessage:
    seq: int
    kind: str  # "tx" or "cut"
    data: bytes
    pending_after: int  # messages the stream holds past this one (0: we are at the tail)
