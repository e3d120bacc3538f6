"""did:key and eddsa-jcs-2022 against the published vectors; on-chain DIDs with key rotation;
credentials with on-chain status."""

from __future__ import annotations

import copy
import json
from typing import Any

import base58
import pytest

from tests.identity.helpers import Chain, Clock, vectors_dir
from zhijin.chain.codec import canonical, sha256
from zhijin.chain.crypto import KeyPair
from zhijin.identity.did import (
    Resolver,
    did_key_document,
    multikey_from_public_key,
    registered_did_for,
    seed_from_private_multikey,
)
from zhijin.identity.errors import CredentialInvalid
from zhijin.identity.vc import (
    StatusEntry,
    add_proof,
    decode_status_list,
    encoded_status_list,
    format_datetime,
    issue_credential,
    verify_credential,
    verify_proof,
)

DAY_MS = 24 * 3600 * 1000


def load(path: str) -> Any:
    return json.loads((vectors_dir("vc-di-eddsa", "TestVectors") / path).read_text())


def text(path: str) -> str:
    return (vectors_dir("vc-di-eddsa", "TestVectors") / path).read_text().strip()


def refused(code: str, call: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(CredentialInvalid) as caught:
        call(*args, **kwargs)
    assert caught.value.code == code, caught.value


# -- did:key vectors -----------------------------------------------------------------------------
def test_did_key_vectors() -> None:
    vectors = json.loads(
        (vectors_dir("did-key", "test-vectors") / "ed25519-x25519.json").read_text()
    )
    assert len(vectors) == 5
    for did, vector in vectors.items():
        key = KeyPair.from_seed(bytes.fromhex(vector["seed"]))
        assert key.did == did
        key_format = vector["verificationKeyPair"]["type"]
        assert did_key_document(did, key_format=key_format) == vector["didDocument"]
        if key_format == "Ed25519VerificationKey2018":
            assert (
                vector["verificationKeyPair"]["publicKeyBase58"]
                == base58.b58encode(key.public_key).decode()
            )
        modern = did_key_document(did)
        assert modern["verificationMethod"][0]["publicKeyMultibase"] == did.removeprefix("did:key:")
        assert modern["assertionMethod"] == [f"{did}#{did.removeprefix('did:key:')}"]


def test_did_key_resolution() -> None:
    key = KeyPair.from_seed(bytes(32))
    vm = f"{key.did}#{key.did.removeprefix('did:key:')}"
    assert Resolver().key_for(vm, at_ms=0).public_key == key.public_key
    refused("unknown_key", Resolver().key_for, f"{key.did}#key-1", at_ms=0)
    refused("bad_verification_method", Resolver().key_for, key.did, at_ms=0)
    refused("unknown_did", Resolver().key_for, "did:key:z6MkNOTAKEY#z6MkNOTAKEY", at_ms=0)
    refused("unsupported_did_method", Resolver().key_for, "did:web:example.com#key-1", at_ms=0)
    refused("unknown_did", Resolver().key_for, "did:zhijin:z6Mkxyz#key-1", at_ms=0)


# -- eddsa-jcs-2022 vectors -----------------------------------------------------------------------
def test_eddsa_jcs_2022_every_intermediate_step() -> None:
    pair = load("keyPair.json")
    key = KeyPair.from_seed(seed_from_private_multikey(pair["privateKeyMultibase"]))
    assert multikey_from_public_key(key.public_key) == pair["publicKeyMultibase"]
    unsigned = load("unsigned.json")
    config = load("eddsa-jcs-2022/proofConfigJCS.json")
    assert canonical(unsigned).decode() == text("eddsa-jcs-2022/canonDocJCS.txt")
    assert sha256(canonical(unsigned)).hex() == text("eddsa-jcs-2022/docHashJCS.txt")
    assert canonical(config).decode() == text("eddsa-jcs-2022/proofCanonJCS.txt")
    assert sha256(canonical(config)).hex() == text("eddsa-jcs-2022/proofHashJCS.txt")
    combined = sha256(canonical(config)) + sha256(canonical(unsigned))
    assert combined.hex() == text("eddsa-jcs-2022/combinedHashJCS.txt")
    assert key.sign(combined).hex() == text("eddsa-jcs-2022/sigHexJCS.txt")
    signed = add_proof(
        unsigned, key, verification_method=config["verificationMethod"], created=config["created"]
    )
    assert signed["proof"]["proofValue"] == text("eddsa-jcs-2022/sigBTC58JCS.txt")
    assert signed == load("eddsa-jcs-2022/signedJCS.json")


def test_published_signed_credential_verifies() -> None:
    signed = load("eddsa-jcs-2022/signedJCS.json")
    proof = verify_proof(signed, resolver=Resolver())
    assert proof.controller == "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
    assert format_datetime(proof.created_ms) == "2023-02-24T23:36:38Z"
    # As a credential it fails issuer binding: the vector's issuer is a URL, not the key's DID.
    refused(
        "issuer_mismatch",
        verify_credential,
        signed,
        resolver=Resolver(),
        now_ms=proof.created_ms,
        trusted_issuer=lambda _: True,
    )


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda d: d["credentialSubject"].update(alumniOf="Another School"), "bad_signature"),
        (lambda d: d.update(extra="added after signing"), "bad_signature"),
        (lambda d: d["proof"].update(created="2023-02-24T23:36:39Z"), "bad_signature"),
        (
            lambda d: d["proof"].update(proofValue=d["proof"]["proofValue"][:-2] + "11"),
            "bad_signature",
        ),
        (lambda d: d["proof"].update(proofValue="not-multibase"), "bad_proof_value"),
        (lambda d: d["proof"].update(cryptosuite="eddsa-rdfc-2022"), "unsupported_cryptosuite"),
        (lambda d: d["proof"].update(type="Ed25519Signature2020"), "unsupported_cryptosuite"),
        (lambda d: d["proof"].update(proofPurpose="authentication"), "wrong_proof_purpose"),
        (lambda d: d["proof"].update(created="yesterday"), "invalid_datetime"),
        (lambda d: d["proof"].update(created="2023-02-24T23:36:38"), "invalid_datetime"),
        (
            lambda d: d.update({"@context": ["https://www.w3.org/ns/credentials/v2"]}),
            "context_mismatch",
        ),
        (lambda d: d.update(proof=[d["proof"]]), "unsupported_proof_set"),
        (lambda d: d.pop("proof"), "no_proof"),
        (
            lambda d: d["proof"].update(
                verificationMethod=f"{KeyPair.from_seed(bytes(32)).did}#{KeyPair.from_seed(bytes(32)).did[8:]}"
            ),
            "bad_signature",
        ),
        (
            lambda d: d["proof"].update(
                verificationMethod=d["proof"]["verificationMethod"].split("#")[0] + "#other"
            ),
            "unknown_key",
        ),
    ],
)
def test_tampered_proofs_are_refused(mutate: Any, code: str) -> None:
    signed = copy.deepcopy(load("eddsa-jcs-2022/signedJCS.json"))
    mutate(signed)
    refused(code, verify_proof, signed, resolver=Resolver())


# -- on-chain DIDs: rotation keeps old signatures valid, and only them ----------------------------
def sign_with(
    key: KeyPair, did: str, key_id: str, created_ms: int, body: str = "statement"
) -> dict[str, Any]:
    document = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": f"urn:doc:{body}",
        "claim": body,
    }
    return add_proof(
        document, key, verification_method=f"{did}#{key_id}", created=format_datetime(created_ms)
    )


def test_rotation_keeps_old_signatures_and_stops_the_old_key(chain: Chain, clock: Clock) -> None:
    old, new = KeyPair.generate(), KeyPair.generate()
    did = chain.ok(old.did, "did", "register", {})["did"]
    assert did == registered_did_for(old.public_key)
    before = sign_with(old, did, "key-1", clock(), "before")
    clock.advance(DAY_MS)
    rotated_at = clock()
    chain.ok(
        old.did,
        "did",
        "rotate_key",
        {"did": did, "public_key_multibase": multikey_from_public_key(new.public_key)},
    )
    clock.advance(DAY_MS)
    resolver = Resolver(chain.state)
    # The credential signed before the rotation still verifies, for its time.
    assert verify_proof(before, resolver=resolver).controller == did
    # The old key cannot sign anything dated after the rotation ...
    refused(
        "key_not_valid_at_time",
        verify_proof,
        sign_with(old, did, "key-1", clock(), "after"),
        resolver=resolver,
    )
    # ... nor pass itself off as the new key.
    refused(
        "bad_signature",
        verify_proof,
        sign_with(old, did, "key-2", clock(), "after"),
        resolver=resolver,
    )
    # The new key signs from the rotation on, and not before it.
    assert verify_proof(sign_with(new, did, "key-2", clock()), resolver=resolver)
    refused(
        "key_not_valid_at_time",
        verify_proof,
        sign_with(new, did, "key-2", rotated_at - 1),
        resolver=resolver,
    )
    # And control moved with the key: the old key can no longer change the DID.
    outcome = chain.run(
        old.did,
        "did",
        "rotate_key",
        {
            "did": did,
            "public_key_multibase": multikey_from_public_key(KeyPair.generate().public_key),
        },
    )
    assert not outcome.ok and outcome.code == "not_controller"


def test_compromised_key_verifies_nothing(chain: Chain, clock: Clock) -> None:
    old, new = KeyPair.generate(), KeyPair.generate()
    did = chain.ok(old.did, "did", "register", {})["did"]
    honest = sign_with(old, did, "key-1", clock())
    clock.advance(DAY_MS)
    chain.ok(
        old.did,
        "did",
        "rotate_key",
        {
            "did": did,
            "public_key_multibase": multikey_from_public_key(new.public_key),
            "compromised": True,
        },
    )
    # A thief can backdate `created`, so after a compromise no key-1 proof is believed.
    refused("key_compromised", verify_proof, honest, resolver=Resolver(chain.state))


def test_deactivated_did(chain: Chain, clock: Clock) -> None:
    key = KeyPair.generate()
    did = chain.ok(key.did, "did", "register", {})["did"]
    early = sign_with(key, did, "key-1", clock())
    clock.advance(DAY_MS)
    chain.ok(key.did, "did", "deactivate", {"did": did})
    resolver = Resolver(chain.state)
    assert verify_proof(early, resolver=resolver)
    refused(
        "did_deactivated",
        verify_proof,
        sign_with(key, did, "key-1", clock() + 1),
        resolver=resolver,
    )


# -- credentials with on-chain status ---------------------------------------------------------------
@pytest.fixture
def bank(chain: Chain, member_keys: dict[str, KeyPair]) -> KeyPair:
    key = member_keys["bank1"]
    chain.ok(
        key.did,
        "status_list",
        "create",
        {"list_id": "kyc-2025", "purpose": "revocation", "size": 131_072},
    )
    chain.ok(
        key.did,
        "status_list",
        "create",
        {"list_id": "hold", "purpose": "suspension", "size": 131_072},
    )
    return key


def credential(
    bank: KeyPair,
    clock: Clock,
    index: int = 7,
    list_id: str = "kyc-2025",
    issuer: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    issuer = issuer or bank.did
    return issue_credential(
        issuer_key=bank,
        issuer=issuer,
        verification_method=f"{bank.did}#{bank.did[8:]}",
        credential_id="urn:uuid:00000000-0000-4000-8000-000000000001",
        types=("KycCredential",),
        subject={
            "id": "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
            "kycLevel": "verified",
        },
        now_ms=clock(),
        valid_until_ms=clock() + 365 * DAY_MS,
        status=StatusEntry(
            issuer=issuer,
            list_id=list_id,
            index=index,
            purpose="revocation" if list_id == "kyc-2025" else "suspension",
        ),
        **kwargs,
    )


def check(chain: Chain, clock: Clock, vc: dict[str, Any], trusted: bool = True) -> Any:
    return verify_credential(
        vc, resolver=Resolver(chain.state), now_ms=clock(), trusted_issuer=lambda _: trusted
    )


def test_revoked_credential_is_refused(chain: Chain, clock: Clock, bank: KeyPair) -> None:
    vc = credential(bank, clock)
    assert check(chain, clock, vc).issuer == bank.did
    chain.ok(bank.did, "status_list", "revoke", {"list_id": "kyc-2025", "index": 7})
    refused("revoked", check, chain, clock, vc)
    outcome = chain.run(bank.did, "status_list", "unrevoke", {"list_id": "kyc-2025", "index": 7})
    assert not outcome.ok and outcome.code == "status_irreversible"


def test_suspension_is_reversible(chain: Chain, clock: Clock, bank: KeyPair) -> None:
    vc = credential(bank, clock, index=99, list_id="hold")
    chain.ok(bank.did, "status_list", "revoke", {"list_id": "hold", "index": 99})
    refused("suspended", check, chain, clock, vc)
    chain.ok(bank.did, "status_list", "unrevoke", {"list_id": "hold", "index": 99})
    check(chain, clock, vc)


def test_status_list_of_someone_else_is_refused(
    chain: Chain, clock: Clock, bank: KeyPair, member_keys: dict[str, KeyPair]
) -> None:
    other = member_keys["bank2"]
    chain.ok(
        other.did,
        "status_list",
        "create",
        {"list_id": "kyc-2025", "purpose": "revocation", "size": 131_072},
    )
    vc = credential(bank, clock)
    vc_status = copy.deepcopy(vc)
    # Point the status at bank2's list (which never revokes it): the proof breaks, and even a
    # bank1-signed credential that does this is refused.
    signed_wrong = issue_credential(
        issuer_key=bank,
        issuer=bank.did,
        verification_method=f"{bank.did}#{bank.did[8:]}",
        credential_id="urn:uuid:x",
        types=("KycCredential",),
        subject={"id": "did:example:x"},
        now_ms=clock(),
        status=StatusEntry(issuer=other.did, list_id="kyc-2025", index=7),
    )
    refused("status_list_not_issuers", check, chain, clock, signed_wrong)
    vc_status["credentialStatus"]["statusListCredential"] = (
        f"urn:zhijin:status-list:{other.did}:kyc-2025"
    )
    refused("bad_signature", check, chain, clock, vc_status)
    refused("bad_status", check, chain, clock, credential(bank, clock, list_id="nonexistent"))


def test_credential_checks(chain: Chain, clock: Clock, bank: KeyPair) -> None:
    vc = credential(bank, clock)
    refused("untrusted_issuer", check, chain, clock, vc, trusted=False)
    clock.advance(366 * DAY_MS)
    refused("expired", check, chain, clock, vc)
    clock.advance(-367 * DAY_MS)
    refused("created_in_future", check, chain, clock, vc)
    clock.advance(DAY_MS)
    later = credential(bank, clock, valid_from_ms=clock() + DAY_MS)
    refused("not_yet_valid", check, chain, clock, later)
    forged = copy.deepcopy(vc)
    forged["credentialSubject"]["kycLevel"] = "enhanced"
    refused("bad_signature", check, chain, clock, forged)
    impostor = credential(KeyPair.generate(), clock, issuer=bank.did)
    refused("issuer_mismatch", check, chain, clock, impostor)
    not_vc = copy.deepcopy(vc)
    not_vc["type"] = ["KycCredential"]
    refused("bad_type", check, chain, clock, not_vc)


def test_status_list_outside_members_and_bounds(chain: Chain, bank: KeyPair) -> None:
    stranger = KeyPair.generate()
    outcome = chain.run(
        stranger.did,
        "status_list",
        "create",
        {"list_id": "x", "purpose": "revocation", "size": 131_072},
    )
    assert not outcome.ok and outcome.code == "not_member"
    outcome = chain.run(
        bank.did, "status_list", "revoke", {"list_id": "kyc-2025", "index": 131_072}
    )
    assert not outcome.ok and outcome.code == "invalid_index"
    outcome = chain.run(
        bank.did,
        "status_list",
        "create",
        {"list_id": "small", "purpose": "revocation", "size": 1024},
    )
    assert not outcome.ok and outcome.code == "invalid_args"
    outcome = chain.run(
        bank.did, "status_list", "revoke", {"list_id": "kyc-2025", "index": 1}, vouched=True
    )
    assert not outcome.ok and outcome.code == "signature_required"


def test_encoded_list_round_trip(chain: Chain, bank: KeyPair) -> None:
    for index in (0, 7, 8, 1_001, 131_071):
        chain.ok(bank.did, "status_list", "revoke", {"list_id": "kyc-2025", "index": index})
    encoded = encoded_status_list(chain.state, bank.did, "kyc-2025")
    assert encoded.startswith("u")
    bits = decode_status_list(encoded)
    assert len(bits) == 131_072 // 8
    on = {i for i in range(131_072) if bits[i // 8] & (0x80 >> (i % 8))}
    assert on == {0, 7, 8, 1_001, 131_071}


def test_decode_refuses_a_gzip_bomb() -> None:
    import base64
    import gzip

    bomb = gzip.compress(bytes(10 * 1024 * 1024))
    refused(
        "bad_status", decode_status_list, "u" + base64.urlsafe_b64encode(bomb).decode().rstrip("=")
    )


def test_member_issuing_under_a_registered_did_survives_rotation(
    chain: Chain, clock: Clock, member_keys: dict[str, KeyPair]
) -> None:
    member = member_keys["bank2"]
    did = chain.ok(member.did, "did", "register", {})["did"]
    chain.ok(
        member.did,
        "status_list",
        "create",
        {"list_id": "kyc", "purpose": "revocation", "size": 131_072, "issuer": did},
    )
    old = issue_credential(
        issuer_key=member,
        issuer=did,
        verification_method=f"{did}#key-1",
        credential_id="urn:uuid:old",
        types=("KycCredential",),
        subject={"id": "did:example:holder"},
        now_ms=clock(),
        status=StatusEntry(issuer=did, list_id="kyc", index=5),
    )
    clock.advance(DAY_MS)
    new_key = KeyPair.generate()
    chain.ok(
        member.did,
        "did",
        "rotate_key",
        {"did": did, "public_key_multibase": multikey_from_public_key(new_key.public_key)},
    )
    clock.advance(DAY_MS)
    check(chain, clock, old)  # still valid after the issuer's key rotation
    # The new key (the DID's controller now) can still revoke under the DID.
    chain.ok(new_key.did, "status_list", "revoke", {"list_id": "kyc", "index": 5, "issuer": did})
    refused("revoked", check, chain, clock, old)
    # The old member key no longer speaks for the DID.
    outcome = chain.run(
        member.did, "status_list", "revoke", {"list_id": "kyc", "index": 6, "issuer": did}
    )
    assert not outcome.ok and outcome.code == "not_controller"
