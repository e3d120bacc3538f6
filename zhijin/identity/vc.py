"""W3C Verifiable Credentials 2.0 secured with Data Integrity `eddsa-jcs-2022`, and status
checks against the on-chain Bitstring Status List.

eddsa-jcs-2022 (W3C vc-di-eddsa, "Create Proof" / "Verify Proof" for this suite):

    proofConfig  = JCS(proof options, with the document's @context copied in if it has one)
    transformed  = JCS(document without its proof)
    hashData     = SHA-256(proofConfig) ‖ SHA-256(transformed)
    proofValue   = "z" + base58btc(Ed25519 signature over hashData)

Verification also checks, in this order: the proof's @context is a prefix of the document's;
type and cryptosuite; `created` is a valid date-time; the verification method resolves to the
key valid at `created` (did.Resolver) and is authorised for the proof purpose (the VM's DID
must be the issuer); the signature.  A credential then has its validity period, issuer trust
and status checked.  Each failure raises CredentialInvalid with its own code.

JCS here is `zhijin.chain.codec.canonical`: credentials are restricted to the wire format's
value domain (no floats), which every credential we issue meets.
"""

from __future__ import annotations

import base64
import gzip
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import base58

from zhijin.chain.codec import canonical, sha256
from zhijin.chain.contract import StateReader
from zhijin.chain.crypto import KeyPair, verify
from zhijin.chain.errors import EncodingError
from zhijin.identity import limits
from zhijin.identity.contracts import status_bit, status_list_record
from zhijin.identity.did import Resolver
from zhijin.identity.errors import CredentialInvalid

__all__ = [
    "CRYPTOSUITE",
    "VC_CONTEXT_V2",
    "StatusEntry",
    "VerifiedCredential",
    "VerifiedProof",
    "add_proof",
    "decode_status_list",
    "encoded_status_list",
    "format_datetime",
    "issue_credential",
    "parse_datetime",
    "status_entry_from_json",
    "verify_credential",
    "verify_proof",
]

CRYPTOSUITE = "eddsa-jcs-2022"
VC_CONTEXT_V2 = "https://www.w3.org/ns/credentials/v2"
_STATUS_URN = "urn:zhijin:status-list:"
CLOCK_SKEW_MS = 5 * 60 * 1000  # a proof dated this far in the future is still accepted


def format_datetime(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(value: Any, name: str) -> int:
    """An XML Schema dateTimeStamp (time zone required) as epoch milliseconds."""
    if not isinstance(value, str) or "T" not in value:
        raise CredentialInvalid("invalid_datetime", f"{name} is not a date-time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CredentialInvalid("invalid_datetime", f"{name} is not a date-time") from exc
    if parsed.tzinfo is None:
        raise CredentialInvalid("invalid_datetime", f"{name} has no time zone")
    return int(parsed.timestamp() * 1000)


def _jcs(value: Any) -> bytes:
    try:
        return canonical(value)
    except EncodingError as exc:
        raise CredentialInvalid("not_canonicalizable", exc.message) from exc


def _hash_data(document: Mapping[str, Any], proof_options: Mapping[str, Any]) -> bytes:
    return sha256(_jcs(dict(proof_options))) + sha256(_jcs(dict(document)))


def add_proof(
    document: Mapping[str, Any],
    key: KeyPair,
    *,
    verification_method: str,
    created: str,
    proof_purpose: str = "assertionMethod",
) -> dict[str, Any]:
    """The document with an eddsa-jcs-2022 DataIntegrityProof added."""
    if "proof" in document:
        raise CredentialInvalid("already_signed", "proof sets and chains are not supported")
    parse_datetime(created, "created")
    options: dict[str, Any] = {
        "type": "DataIntegrityProof",
        "cryptosuite": CRYPTOSUITE,
        "created": created,
        "verificationMethod": verification_method,
        "proofPurpose": proof_purpose,
    }
    if "@context" in document:
        options["@context"] = document["@context"]
    signature = key.sign(_hash_data(document, options))
    proof = {**options, "proofValue": "z" + base58.b58encode(signature).decode("ascii")}
    return {**document, "proof": proof}


@dataclass(frozen=True, slots=True)
class VerifiedProof:
    verification_method: str
    controller: str  # the DID the verification method belongs to
    created_ms: int
    proof_purpose: str


def _proof_parts(secured: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    proof = secured.get("proof")
    if isinstance(proof, list):
        raise CredentialInvalid("unsupported_proof_set", "proof sets and chains are not supported")
    if not isinstance(proof, dict):
        raise CredentialInvalid("no_proof", "the document has no proof")
    options = {k: v for k, v in proof.items() if k != "proofValue"}
    value = proof.get("proofValue")
    if not isinstance(value, str) or not value.startswith("z"):
        raise CredentialInvalid("bad_proof_value", "proofValue is base58btc multibase")
    try:
        signature = base58.b58decode(value[1:])
    except ValueError as exc:
        raise CredentialInvalid("bad_proof_value", "proofValue is not base58btc") from exc
    document = {k: v for k, v in secured.items() if k != "proof"}
    return document, options, signature


def verify_proof(
    secured: Mapping[str, Any],
    *,
    resolver: Resolver,
    expected_purpose: str = "assertionMethod",
) -> VerifiedProof:
    """Verify an eddsa-jcs-2022 proof; CredentialInvalid names the first failing check."""
    document, options, signature = _proof_parts(secured)
    if "@context" in options:
        context, proof_context = document.get("@context"), options["@context"]
        if not isinstance(context, list) or not isinstance(proof_context, list):
            raise CredentialInvalid("context_mismatch", "@context values are lists")
        if context[: len(proof_context)] != proof_context:
            raise CredentialInvalid(
                "context_mismatch", "the proof's @context is not the document's"
            )
        document["@context"] = proof_context
    if options.get("type") != "DataIntegrityProof" or options.get("cryptosuite") != CRYPTOSUITE:
        raise CredentialInvalid(
            "unsupported_cryptosuite", f"expected a {CRYPTOSUITE} DataIntegrityProof"
        )
    if options.get("proofPurpose") != expected_purpose:
        raise CredentialInvalid("wrong_proof_purpose", f"expected proofPurpose {expected_purpose}")
    created_ms = parse_datetime(options.get("created"), "created")
    if "expires" in options:
        expires_ms = parse_datetime(options["expires"], "expires")
        if expires_ms <= created_ms:
            raise CredentialInvalid("proof_expired", "the proof expires before it was created")
    vm = options.get("verificationMethod")
    if not isinstance(vm, str):
        raise CredentialInvalid("bad_verification_method", "verificationMethod is a string")
    resolved = resolver.key_for(vm, at_ms=created_ms)
    if not verify(resolved.public_key, _hash_data(document, options), signature):
        raise CredentialInvalid("bad_signature", "the proof's signature does not verify")
    return VerifiedProof(vm, resolved.did, created_ms, expected_purpose)


@dataclass(frozen=True, slots=True)
class StatusEntry:
    """A BitstringStatusListEntry pointing at an on-chain list of the credential's issuer."""

    issuer: str
    list_id: str
    index: int
    purpose: str = "revocation"

    @property
    def list_url(self) -> str:
        return f"{_STATUS_URN}{self.issuer}:{self.list_id}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": f"{self.list_url}#{self.index}",
            "type": "BitstringStatusListEntry",
            "statusPurpose": self.purpose,
            "statusListIndex": str(self.index),
            "statusListCredential": self.list_url,
        }


def status_entry_from_json(entry: Any) -> StatusEntry:
    if not isinstance(entry, dict) or entry.get("type") != "BitstringStatusListEntry":
        raise CredentialInvalid("bad_status", "credentialStatus is a BitstringStatusListEntry")
    url, index = entry.get("statusListCredential"), entry.get("statusListIndex")
    if not isinstance(url, str) or not url.startswith(_STATUS_URN):
        raise CredentialInvalid("bad_status", "the status list is not one on this chain")
    if not isinstance(index, str) or not index.isdigit() or len(index) > 8:
        raise CredentialInvalid("bad_status", "statusListIndex is a decimal string")
    issuer, _, list_id = url[len(_STATUS_URN) :].rpartition(":")
    purpose = entry.get("statusPurpose")
    if not isinstance(purpose, str):
        raise CredentialInvalid("bad_status", "statusPurpose is a string")
    return StatusEntry(issuer=issuer, list_id=list_id, index=int(index), purpose=purpose)


def issue_credential(
    *,
    issuer_key: KeyPair,
    issuer: str,
    verification_method: str,
    credential_id: str,
    types: tuple[str, ...],
    subject: Mapping[str, Any],
    now_ms: int,
    valid_until_ms: int | None = None,
    status: StatusEntry | None = None,
    extra_contexts: tuple[str, ...] = (),
    valid_from_ms: int | None = None,
) -> dict[str, Any]:
    if len(types) > limits.CREDENTIAL_TYPES_MAX:
        raise CredentialInvalid("too_many_types", "too many credential types")
    credential: dict[str, Any] = {
        "@context": [VC_CONTEXT_V2, *extra_contexts],
        "id": credential_id,
        "type": ["VerifiableCredential", *types],
        "issuer": issuer,
        "validFrom": format_datetime(now_ms if valid_from_ms is None else valid_from_ms),
        "credentialSubject": dict(subject),
    }
    if valid_until_ms is not None:
        credential["validUntil"] = format_datetime(valid_until_ms)
    if status is not None:
        credential["credentialStatus"] = status.to_json()
    return add_proof(
        credential,
        issuer_key,
        verification_method=verification_method,
        created=format_datetime(now_ms),
    )


@dataclass(frozen=True, slots=True)
class VerifiedCredential:
    issuer: str
    subject: Mapping[str, Any]
    types: tuple[str, ...]
    proof: VerifiedProof


def _issuer_id(credential: Mapping[str, Any]) -> str:
    issuer = credential.get("issuer")
    if isinstance(issuer, dict):
        issuer = issuer.get("id")
    if not isinstance(issuer, str):
        raise CredentialInvalid("bad_issuer", "issuer is a URL or an object with an id")
    return issuer


def _check_validity(credential: Mapping[str, Any], now_ms: int) -> None:
    if "validFrom" in credential and parse_datetime(credential["validFrom"], "validFrom") > now_ms:
        raise CredentialInvalid("not_yet_valid", "the credential's validFrom is in the future")
    if (
        "validUntil" in credential
        and parse_datetime(credential["validUntil"], "validUntil") <= now_ms
    ):
        raise CredentialInvalid("expired", "the credential's validUntil has passed")


def _check_status(credential: Mapping[str, Any], issuer: str, state: StateReader | None) -> None:
    raw = credential.get("credentialStatus")
    if raw is None:
        return
    entries = raw if isinstance(raw, list) else [raw]
    for item in entries:
        entry = status_entry_from_json(item)
        # A status list that someone other than the issuer controls would let them pass off a
        # revoked credential as valid (their list never says "revoked").
        if entry.issuer != issuer:
            raise CredentialInvalid(
                "status_list_not_issuers", "the status list is not the issuer's"
            )
        if state is None:
            raise CredentialInvalid("status_unavailable", "no chain state to check status against")
        record = status_list_record(state, entry.issuer, entry.list_id)
        if record is None or record["purpose"] != entry.purpose or entry.index >= record["size"]:
            raise CredentialInvalid("bad_status", "the status list entry does not exist on chain")
        if status_bit(state, entry.issuer, entry.list_id, entry.index):
            # Two literal codes, not one computed: the catalog scan finds each one's template.
            if entry.purpose == "revocation":
                raise CredentialInvalid("revoked", "the credential is revoked")
            raise CredentialInvalid("suspended", "the credential is suspended")


def verify_credential(
    credential: Mapping[str, Any],
    *,
    resolver: Resolver,
    now_ms: int,
    trusted_issuer: Callable[[str], bool],
) -> VerifiedCredential:
    """Proof, issuer binding, trust, validity period and status, in that order."""
    if len(_jcs(dict(credential))) > limits.CREDENTIAL_BYTES_MAX:
        raise CredentialInvalid("too_large", "the credential is too large")
    contexts = credential.get("@context")
    if not isinstance(contexts, list) or not contexts or contexts[0] != VC_CONTEXT_V2:
        raise CredentialInvalid("bad_context", "a VC 2.0 credential starts its @context with v2")
    types = credential.get("type")
    if not isinstance(types, list) or "VerifiableCredential" not in types:
        raise CredentialInvalid("bad_type", "type includes VerifiableCredential")
    proof = verify_proof(credential, resolver=resolver)
    issuer = _issuer_id(credential)
    if proof.controller != issuer:
        raise CredentialInvalid("issuer_mismatch", "the proof's key does not belong to the issuer")
    if proof.created_ms > now_ms + CLOCK_SKEW_MS:
        raise CredentialInvalid("created_in_future", "the proof is dated in the future")
    if not trusted_issuer(issuer):
        raise CredentialInvalid("untrusted_issuer", "the issuer is not a trusted member")
    _check_validity(credential, now_ms)
    _check_status(credential, issuer, resolver.state)
    subject = credential.get("credentialSubject")
    if not isinstance(subject, dict):
        raise CredentialInvalid("bad_subject", "credentialSubject is an object")
    return VerifiedCredential(issuer, subject, tuple(str(t) for t in types), proof)


def encoded_status_list(state: StateReader, issuer: str, list_id: str) -> str:
    """The list as a Bitstring Status List `encodedList`: multibase base64url (no padding) of
    the GZIP-compressed bitstring, index 0 the leftmost bit.  For publishing a
    BitstringStatusListCredential off chain; verifiers on this chain read the state directly."""
    record = status_list_record(state, issuer, list_id)
    if record is None:
        raise CredentialInvalid("bad_status", "no such status list")
    bits = bytearray(record["size"] // 8 + (record["size"] % 8 > 0))
    prefix = f"status_list/bit/{issuer}/{list_id}/"
    after = ""
    for _ in range(record["size"] // 1000 + 2):  # bounded: at most one page per 1000 bits
        rows = state.scan(prefix, after, 1000)
        for key, _value in rows:
            index = int(key[len(prefix) :])
            bits[index // 8] |= 0x80 >> (index % 8)
        if len(rows) < 1000:
            break
        after = rows[-1][0]
    compressed = gzip.compress(bytes(bits), mtime=0)
    return "u" + base64.urlsafe_b64encode(compressed).decode("ascii").rstrip("=")


def decode_status_list(encoded: str) -> bytes:
    """The bitstring inside an `encodedList`, refusing anything that inflates past the largest
    list we allow (a small gzip can expand enormously)."""
    if not encoded.startswith("u"):
        raise CredentialInvalid("bad_status", "encodedList is multibase base64url")
    raw = base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4))
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing
    bits_bytes_max = limits.STATUS_LIST_SIZE_MAX // 8
    bits = inflater.decompress(raw, bits_bytes_max + 1)
    if len(bits) > bits_bytes_max or inflater.unconsumed_tail:
        raise CredentialInvalid("bad_status", "encodedList is larger than any list we accept")
    return bits
