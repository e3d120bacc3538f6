"""Transactions and envelopes (ARCHITECTURE.md, "Wire format").

A single envelope is `{"body": {...}, "signer": did:key, "signature": hex}`; a member's batch
envelope is `{"bodies": [...], "signer": did:key, "signature": hex}` with one signature over the
canonical list of bodies.  Each body has its own `tx_hash` = SHA-256(canonical(body)).

Parsing does every check that needs no state: shape, types, sizes, canonical form and the
signature.  Checks against state (chain id, nonce reuse, expiry against block time, membership
of a vouching signer) belong to the node.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from zhijin.chain import limits
from zhijin.chain.codec import canonical, canonical_trusted, decode, sha256
from zhijin.chain.crypto import BadKey, KeyPair, SignatureVerifier, public_key_from_did, verify
from zhijin.chain.errors import EncodingError, TxRejected

__all__ = [
    "BODY_FIELDS",
    "Batch",
    "OpenedEnvelope",
    "Tx",
    "batch_message",
    "make_body",
    "open_envelope",
    "parse_envelope",
    "parse_envelopes",
    "sign_batch",
    "sign_tx",
]

BODY_FIELDS = frozenset(
    {"chain_id", "sender", "nonce", "contract", "method", "args", "valid_until"}
)
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_HEX_SIGNATURE = re.compile(r"^[0-9a-f]{128}$")


@dataclass(frozen=True, slots=True)
class Tx:
    """A signed transaction whose body is canonical and whose signature has been checked."""

    body: Mapping[str, Any]
    body_bytes: bytes
    tx_hash: bytes
    signer: str
    signature: bytes
    batch_hash: bytes | None = None  # set when the tx came inside a member batch envelope
    batch_members: tuple[bytes, ...] = ()  # every tx hash of that batch, in order (shared)

    @property
    def sender(self) -> str:
        return str(self.body["sender"])

    @property
    def nonce(self) -> int:
        return int(self.body["nonce"])

    @property
    def hash_hex(self) -> str:
        return self.tx_hash.hex()

    def envelope(self) -> dict[str, Any]:
        return {
            "body": dict(self.body),
            "signer": self.signer,
            "signature": self.signature.hex(),
        }


@dataclass(frozen=True, slots=True)
class Batch:
    """A member batch envelope: one signature over the canonical list of its bodies."""

    batch_hash: bytes  # SHA-256 of the signed bytes
    signer: str
    signature: bytes
    txs: tuple[Tx, ...]


def _check_body(body: Any) -> None:
    if not isinstance(body, dict):
        raise TxRejected("bad_body", "body must be an object")
    missing = BODY_FIELDS - body.keys()
    extra = body.keys() - BODY_FIELDS
    if missing or extra:
        raise TxRejected(
            "bad_body",
            f"body fields: missing {sorted(missing)}, unexpected {sorted(extra)}",
        )
    for name in ("chain_id", "sender", "contract", "method"):
        if not isinstance(body[name], str):
            raise TxRejected("bad_body", f"{name} must be a string")
    if len(body["chain_id"]) > limits.STRING_ID_CHARS_MAX:
        raise TxRejected("bad_body", "chain_id is too long")
    if not 0 < len(body["sender"]) <= limits.SENDER_CHARS_MAX:
        raise TxRejected("bad_body", "sender must be 1 to 256 characters")
    if not _NAME.match(body["contract"]) or not _NAME.match(body["method"]):
        raise TxRejected("bad_body", "contract and method are lowercase names")
    for name in ("nonce", "valid_until"):
        value = body[name]
        if type(value) is not int or value < 0:
            raise TxRejected("bad_body", f"{name} must be a non-negative integer")
    if not isinstance(body["args"], dict):
        raise TxRejected("bad_body", "args must be an object")


def _parse_signer(envelope: Mapping[str, Any]) -> tuple[str, bytes, bytes]:
    signer = envelope.get("signer")
    signature = envelope.get("signature")
    if not isinstance(signer, str) or not isinstance(signature, str):
        raise TxRejected("bad_envelope", "signer and signature must be strings")
    if not _HEX_SIGNATURE.match(signature):
        raise TxRejected("bad_signature", "signature must be 128 lowercase hex digits")
    try:
        public_key = public_key_from_did(signer)
    except BadKey as exc:
        raise TxRejected("bad_signer", exc.message) from exc
    return signer, public_key, bytes.fromhex(signature)


def _body_bytes(body: Any, *, validated: bool) -> bytes:
    """The body's canonical bytes; `validated` when `decode` has already checked the value
    (bytes on the wire), so only the encoding remains to do."""
    _check_body(body)
    try:
        encoded = canonical_trusted(body) if validated else canonical(body)
    except EncodingError as exc:
        raise TxRejected(exc.code, exc.message) from exc
    if len(encoded) > limits.TX_BYTES_MAX:
        raise TxRejected("tx_too_large", f"a tx body is at most {limits.TX_BYTES_MAX} bytes")
    return encoded


@dataclass(frozen=True, slots=True)
class OpenedEnvelope:
    """An envelope parsed and checked in every way but its signature (`parse_envelopes`
    verifies the signatures of many at once, on several threads)."""

    txs: tuple[Tx, ...]
    public_key: bytes
    signed: bytes  # the bytes the signature covers
    is_batch: bool

    def verified(self, ok: bool) -> list[Tx]:
        """The txs if the signature verified (`ok`), else TxRejected(bad_signature)."""
        if not ok:
            if self.is_batch:
                raise TxRejected("bad_signature", "batch signature does not verify")
            raise TxRejected("bad_signature", "signature does not verify for this signer and body")
        return list(self.txs)


def open_envelope(raw: bytes | str | Mapping[str, Any], *, decoded: bool = False) -> OpenedEnvelope:
    """Decode (once) and check a single or batch envelope, all but the signature; TxRejected
    with a stable code if bad.  `decoded`: `raw` is a value `codec.decode` returned (a request
    of many envelopes, decoded as a whole), so its values need no second check."""
    validated = decoded or isinstance(raw, bytes | str)
    if not decoded and isinstance(raw, bytes | str):
        if len(raw) > limits.TX_BYTES_MAX * limits.BATCH_TXS_MAX:
            raise TxRejected("tx_too_large", "envelope is too large")
        try:
            envelope = decode(raw)
        except EncodingError as exc:
            raise TxRejected(exc.code, exc.message) from exc
    else:
        envelope = raw
    if not isinstance(envelope, dict):
        raise TxRejected("bad_envelope", "an envelope is a JSON object")
    if "bodies" in envelope:
        return _open_batch(envelope, validated=validated)
    if set(envelope) != {"body", "signer", "signature"}:
        raise TxRejected("bad_envelope", "envelope fields are body, signer and signature")
    signer, public_key, signature = _parse_signer(envelope)
    body_bytes = _body_bytes(envelope["body"], validated=validated)
    tx = Tx(envelope["body"], body_bytes, sha256(body_bytes), signer, signature)
    return OpenedEnvelope((tx,), public_key, body_bytes, is_batch=False)


def parse_envelope(raw: bytes | str | Mapping[str, Any]) -> list[Tx]:
    """Parse and authenticate a single or batch envelope; TxRejected with a stable code if bad.

    Returns the transactions in envelope order.  A batch is accepted or refused as a whole.
    """
    opened = open_envelope(raw)
    return opened.verified(verify(opened.public_key, opened.signed, opened.txs[0].signature))


def parse_envelopes(
    raws: Iterable[bytes | str | Mapping[str, Any]],
    verifier: SignatureVerifier,
    *,
    decoded: bool = False,
) -> list[list[Tx] | TxRejected]:
    """`parse_envelope` for each of many envelopes: each is opened on the caller's thread,
    then every signature is verified through `verifier` (several threads).  Each item is the
    envelope's txs or the TxRejected that refuses it alone."""
    opened: list[OpenedEnvelope | TxRejected] = []
    for raw in raws:
        try:
            opened.append(open_envelope(raw, decoded=decoded))
        except TxRejected as exc:
            opened.append(exc)
    checks = verifier.verify_all(
        [
            (item.public_key, item.signed, item.txs[0].signature)
            for item in opened
            if isinstance(item, OpenedEnvelope)
        ]
    )
    verdicts = iter(checks)
    parsed: list[list[Tx] | TxRejected] = []
    for item in opened:
        if isinstance(item, TxRejected):
            parsed.append(item)
            continue
        try:
            parsed.append(item.verified(next(verdicts)))
        except TxRejected as exc:
            parsed.append(exc)
    return parsed


def _open_batch(envelope: Mapping[str, Any], *, validated: bool = False) -> OpenedEnvelope:
    if set(envelope) != {"bodies", "signer", "signature"}:
        raise TxRejected("bad_envelope", "batch envelope fields are bodies, signer and signature")
    bodies = envelope["bodies"]
    if not isinstance(bodies, list) or not 0 < len(bodies) <= limits.BATCH_TXS_MAX:
        raise TxRejected("bad_envelope", f"bodies must list 1 to {limits.BATCH_TXS_MAX} bodies")
    signer, public_key, signature = _parse_signer(envelope)
    encoded = [_body_bytes(body, validated=validated) for body in bodies]
    # canonical(list) is "[" + the canonical items joined by "," + "]": no re-encoding needed.
    signed = b"[" + b",".join(encoded) + b"]"
    batch_hash = sha256(signed)
    hashes = tuple(sha256(data) for data in encoded)
    if len(set(hashes)) != len(hashes):
        raise TxRejected("duplicate_tx", "a batch holds the same body twice")
    txs = tuple(
        Tx(body, data, tx_hash, signer, signature, batch_hash, hashes)
        for body, data, tx_hash in zip(bodies, encoded, hashes, strict=True)
    )
    return OpenedEnvelope(txs, public_key, signed, is_batch=True)


def batch_message(body_bytes: list[bytes]) -> bytes:
    return b"[" + b",".join(body_bytes) + b"]"


def make_body(
    *,
    chain_id: str,
    sender: str,
    nonce: int,
    contract: str,
    method: str,
    args: Mapping[str, Any],
    valid_until: int,
) -> dict[str, Any]:
    return {
        "chain_id": chain_id,
        "sender": sender,
        "nonce": nonce,
        "contract": contract,
        "method": method,
        "args": dict(args),
        "valid_until": valid_until,
    }


def sign_tx(key: KeyPair, body: Mapping[str, Any]) -> dict[str, Any]:
    """A single envelope for `body`, signed by `key` (client side)."""
    return {"body": dict(body), "signer": key.did, "signature": key.sign(canonical(body)).hex()}


def sign_batch(key: KeyPair, bodies: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A member batch envelope over `bodies`, signed by the member's `key`."""
    message = batch_message([canonical(body) for body in bodies])
    return {
        "bodies": [dict(body) for body in bodies],
        "signer": key.did,
        "signature": key.sign(message).hex(),
    }
