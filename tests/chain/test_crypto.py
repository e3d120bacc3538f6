from __future__ import annotations

import json
import os
import stat

import pytest

from zhijin.chain.crypto import (
    BadKey,
    KeyPair,
    SignatureVerifier,
    did_from_public_key,
    public_key_from_did,
    verify,
)
from zhijin.chain.files import LooseFileMode


def test_did_key_vectors(shared_dir) -> None:
    vectors = json.loads(
        (shared_dir / "testvectors/did-key/test-vectors/ed25519-x25519.json").read_text()
    )
    assert vectors
    for did, vector in vectors.items():
        key = KeyPair.from_seed(bytes.fromhex(vector["seed"]))
        assert key.did == did
        assert public_key_from_did(did) == key.public_key


def test_sign_and_verify() -> None:
    key = KeyPair.generate()
    signature = key.sign(b"message")
    assert verify(key.public_key, b"message", signature)
    assert not verify(key.public_key, b"messagE", signature)
    assert not verify(KeyPair.generate().public_key, b"message", signature)
    forged = bytes([signature[0] ^ 1]) + signature[1:]
    assert not verify(key.public_key, b"message", forged)
    assert not verify(key.public_key, b"message", signature[:-1])


@pytest.mark.parametrize(
    "did",
    [
        "did:web:example.com",
        "did:key:zzzz",
        "did:key:z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW",
        42,
    ],
)
def test_bad_did_keys_are_refused(did: object) -> None:
    with pytest.raises(BadKey):
        public_key_from_did(did)  # type: ignore[arg-type]


def test_public_key_length_is_checked() -> None:
    with pytest.raises(BadKey):
        did_from_public_key(b"short")


def test_key_files_are_private_and_round_trip(tmp_path) -> None:
    key = KeyPair.generate()
    path = tmp_path / "keys" / "member.key"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert KeyPair.load(path) == key
    assert key.seed.hex() not in repr(key)
    os.chmod(path, 0o644)
    with pytest.raises(LooseFileMode, match=f"key file {path} has mode 0644.*chmod 600 {path}"):
        KeyPair.load(path)


def test_verify_refuses_a_changed_message_or_signature() -> None:
    key = KeyPair.generate()
    message = b"zhijin"
    signature = key.sign(message)
    assert verify(key.public_key, message, signature)
    assert not verify(key.public_key, message + b"!", signature)
    assert not verify(key.public_key, message, bytes([signature[0] ^ 1]) + signature[1:])
    assert not verify(KeyPair.generate().public_key, message, signature)


@pytest.mark.parametrize("threads", [0, 1, 2, 4])
def test_the_verifier_pool_answers_each_signature_in_order(threads: int) -> None:
    """Many signatures, a few forged at known places: the pool's verdicts match verify's."""
    keys = [KeyPair.generate() for _ in range(3)]
    items = []
    for i in range(301):
        key = keys[i % 3]
        message = f"message {i}".encode()
        signature = key.sign(message)
        if i % 37 == 5:
            signature = bytes([signature[0] ^ 1]) + signature[1:]
        if i % 53 == 7:
            message += b"!"
        items.append((key.public_key, message, signature))
    verifier = SignatureVerifier(threads)
    try:
        verdicts = verifier.verify_all(items)
    finally:
        verifier.close()
    expected = [not (i % 37 == 5 or i % 53 == 7) for i in range(301)]
    assert verdicts == expected
    assert verdicts == [verify(*item) for item in items]
    assert SignatureVerifier(2).verify_all([]) == []
