"""Decentralised identifiers: did:key documents and resolution of verification methods,
including DIDs registered on chain (`did:zhijin:`) whose keys rotate.

did:key (W3C CCG did-method-key) reuses `zhijin.chain.crypto` for the identifier itself; this
module adds the DID document, the Multikey encoding, and the X25519 key-agreement key derived
from the Ed25519 key (the form of the published test vectors).

A registered DID `did:zhijin:<multikey of its first key>` keeps a key history on chain (see
contracts.py): key-1 valid from registration, key-2 from the first rotation, and so on.
`Resolver.key_for(verification_method, at_ms=...)` returns the key the method names only if it
was the DID's current key at `at_ms` (a proof's `created` time), so a credential signed before
a rotation still verifies, and the old key cannot sign anything dated after it.  A key rotated
out as *compromised* verifies nothing at all, since whoever holds it can backdate `created`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import base58
import nacl.bindings

from zhijin.chain.contract import StateReader
from zhijin.chain.crypto import BadKey, did_from_public_key, public_key_from_did
from zhijin.identity import limits
from zhijin.identity.errors import CredentialInvalid

__all__ = [
    "DID_ZHIJIN_PREFIX",
    "Resolver",
    "did_key_document",
    "multikey_from_public_key",
    "private_jwk",
    "private_multikey",
    "public_key_from_multikey",
    "registered_did_for",
    "registry_record",
    "seed_from_private_multikey",
]

DID_KEY_PREFIX = "did:key:"
DID_ZHIJIN_PREFIX = "did:zhijin:"
_ED25519_PUB = b"\xed\x01"
_ED25519_PRIV = b"\x80\x26"
_X25519_PUB = b"\xec\x01"


def multikey_from_public_key(public_key: bytes) -> str:
    """Multikey `publicKeyMultibase`: "z" + base58btc(0xed01 ‖ key), the did:key suffix."""
    return did_from_public_key(public_key)[len(DID_KEY_PREFIX) :]


def public_key_from_multikey(value: str) -> bytes:
    try:
        return public_key_from_did(DID_KEY_PREFIX + value)
    except BadKey as exc:
        raise CredentialInvalid("bad_key", "not an Ed25519 Multikey") from exc


def seed_from_private_multikey(value: str) -> bytes:
    """The 32-byte seed inside an Ed25519 `privateKeyMultibase` (multicodec 0x1300)."""
    raw = base58.b58decode(value[1:]) if value.startswith("z") else b""
    if len(raw) != 34 or raw[:2] != _ED25519_PRIV:
        raise CredentialInvalid("bad_key", "not an Ed25519 private Multikey")
    return raw[2:]


def private_multikey(seed: bytes) -> str:
    """Multikey `secretKeyMultibase` of an Ed25519 seed: "z" + base58btc(0x8026 ‖ seed)."""
    return "z" + base58.b58encode(_ED25519_PRIV + seed).decode("ascii")


def private_jwk(seed: bytes, public_key: bytes) -> dict[str, str]:
    """The RFC 8037 private JWK of an Ed25519 key (`d` is the seed)."""
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(public_key), "d": _b64url(seed)}


def _x25519_multikey(ed25519_public: bytes) -> tuple[str, bytes]:
    x_public = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(ed25519_public)
    return "z" + base58.b58encode(_X25519_PUB + x_public).decode("ascii"), x_public


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def did_key_document(did: str, *, key_format: str = "Multikey") -> dict[str, Any]:
    """The DID document of an Ed25519 did:key.

    `key_format="Multikey"` gives the current did:key form; `"Ed25519VerificationKey2018"`
    (base58 keys) and `"JsonWebKey2020"` (JWKs) give the older forms the method's published
    test vectors use.
    """
    public_key = public_key_from_did(did)
    fragment = did[len(DID_KEY_PREFIX) :]
    vm_id = f"{did}#{fragment}"
    x_fragment, x_public = _x25519_multikey(public_key)
    ka_id = f"{did}#{x_fragment}"
    signing: dict[str, Any]
    agreement: dict[str, Any]
    if key_format == "Multikey":
        contexts = ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"]
        signing = {
            "id": vm_id,
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": fragment,
        }
        agreement = {
            "id": ka_id,
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": x_fragment,
        }
    elif key_format == "Ed25519VerificationKey2018":
        contexts = [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/suites/ed25519-2018/v1",
            "https://w3id.org/security/suites/x25519-2019/v1",
        ]
        signing = {
            "id": vm_id,
            "type": "Ed25519VerificationKey2018",
            "controller": did,
            "publicKeyBase58": base58.b58encode(public_key).decode("ascii"),
        }
        agreement = {
            "id": ka_id,
            "type": "X25519KeyAgreementKey2019",
            "controller": did,
            "publicKeyBase58": base58.b58encode(x_public).decode("ascii"),
        }
    elif key_format == "JsonWebKey2020":
        contexts = ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/suites/jws-2020/v1"]
        signing = {
            "id": vm_id,
            "type": "JsonWebKey2020",
            "controller": did,
            "publicKeyJwk": {"kty": "OKP", "crv": "Ed25519", "x": _b64url(public_key)},
        }
        agreement = {
            "id": ka_id,
            "type": "JsonWebKey2020",
            "controller": did,
            "publicKeyJwk": {"kty": "OKP", "crv": "X25519", "x": _b64url(x_public)},
        }
    else:
        raise ValueError(f"unknown key format {key_format}")
    return {
        "@context": contexts,
        "id": did,
        "verificationMethod": [signing, agreement],
        "assertionMethod": [vm_id],
        "authentication": [vm_id],
        "capabilityInvocation": [vm_id],
        "capabilityDelegation": [vm_id],
        "keyAgreement": [ka_id],
    }


def registered_did_for(public_key: bytes) -> str:
    """The on-chain DID a key registers as: it names its first key, so nobody can squat it."""
    return DID_ZHIJIN_PREFIX + multikey_from_public_key(public_key)


def registry_key(did: str) -> str:
    return f"did/doc/{did}"


def registry_record(state: StateReader, did: str) -> dict[str, Any] | None:
    if len(did) > limits.DID_CHARS_MAX:
        return None
    record = state.get(registry_key(did))
    return None if record is None else dict(record)


def _split_vm(verification_method: str) -> tuple[str, str]:
    did, sep, fragment = verification_method.partition("#")
    if not sep or not fragment or len(verification_method) > 2 * limits.DID_CHARS_MAX:
        raise CredentialInvalid("bad_verification_method", "a verification method is did#fragment")
    return did, fragment


@dataclass(frozen=True, slots=True)
class ResolvedKey:
    did: str  # the controller DID of the verification method
    verification_method: str
    public_key: bytes


class Resolver:
    """Resolves verification methods of did:key and of registered did:zhijin DIDs.

    `state` is the chain's committed state (any StateReader); without it only did:key works.
    """

    def __init__(self, state: StateReader | None = None) -> None:
        self.state = state

    def key_for(self, verification_method: str, *, at_ms: int) -> ResolvedKey:
        did, fragment = _split_vm(verification_method)
        if did.startswith(DID_KEY_PREFIX):
            return self._did_key(did, fragment, verification_method)
        if did.startswith(DID_ZHIJIN_PREFIX):
            return self._registered(did, fragment, verification_method, at_ms)
        raise CredentialInvalid(
            "unsupported_did_method", "only did:key and did:zhijin resolve here"
        )

    @staticmethod
    def _did_key(did: str, fragment: str, vm: str) -> ResolvedKey:
        try:
            public_key = public_key_from_did(did)
        except BadKey as exc:
            raise CredentialInvalid("unknown_did", exc.message) from exc
        if fragment != did[len(DID_KEY_PREFIX) :]:
            raise CredentialInvalid("unknown_key", "a did:key has one key, named by its own suffix")
        return ResolvedKey(did, vm, public_key)

    def _registered(self, did: str, fragment: str, vm: str, at_ms: int) -> ResolvedKey:
        record = None if self.state is None else registry_record(self.state, did)
        if record is None:
            raise CredentialInvalid("unknown_did", "the DID is not registered on chain")
        deactivated = record.get("deactivated_ms")
        if deactivated is not None and at_ms >= deactivated:
            raise CredentialInvalid("did_deactivated", "the DID was deactivated before that time")
        for key in record["keys"]:
            if key["id"] != fragment:
                continue
            if key["compromised"]:
                raise CredentialInvalid(
                    "key_compromised", "this key was rotated out as compromised"
                )
            until = key["valid_until_ms"]
            if at_ms < key["valid_from_ms"] or (until is not None and at_ms >= until):
                raise CredentialInvalid(
                    "key_not_valid_at_time", "this key was not the DID's key at the proof's time"
                )
            return ResolvedKey(did, vm, public_key_from_multikey(key["public_key_multibase"]))
        raise CredentialInvalid("unknown_key", "the DID has no such key")
