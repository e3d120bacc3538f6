"""Ed25519 keys and signatures (libsodium through PyNaCl) and did:key identifiers.

did:key for Ed25519 = "did:key:z" + base58btc(0xed 0x01 ‖ 32-byte public key)
(W3C CCG did:key method; checked against its published vectors in tests).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import base58
import nacl._sodium
import nacl.bindings
import nacl.exceptions
import nacl.signing

from zhijin.chain.errors import ZhijinError
from zhijin.chain.files import check_secret_file, write_private

__all__ = [
    "KeyPair",
    "SignatureVerifier",
    "did_from_public_key",
    "public_key_from_did",
    "verify",
]

# libsodium's crypto_sign_verify_detached through PyNaCl's cffi module (which releases the GIL
# around the call); None if a PyNaCl build ever stops exposing it, and the public binding serves.
_verify_detached = getattr(nacl._sodium.lib, "crypto_sign_verify_detached", None)

_ED25519_MULTICODEC = b"\xed\x01"
_DID_KEY_PREFIX = "did:key:z"
SIGNATURE_BYTES = 64
PUBLIC_KEY_BYTES = 32


class BadKey(ZhijinError):
    code = "bad_key"


def did_from_public_key(public_key: bytes) -> str:
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise BadKey(message="an Ed25519 public key is 32 bytes")
    return _DID_KEY_PREFIX + base58.b58encode(_ED25519_MULTICODEC + public_key).decode("ascii")


@lru_cache(maxsize=65_536)  # admission decodes the same signers' DIDs over and over
def public_key_from_did(did: str) -> bytes:
    """The raw Ed25519 key inside a did:key; BadKey for anything else."""
    if not isinstance(did, str) or not did.startswith(_DID_KEY_PREFIX) or len(did) > 64:
        raise BadKey(message="expected a did:key identifier (did:key:z6Mk...)")
    try:
        raw = base58.b58decode(did[len(_DID_KEY_PREFIX) :])
    except ValueError as exc:
        raise BadKey(message="did:key is not valid base58btc") from exc
    if len(raw) != 2 + PUBLIC_KEY_BYTES or raw[:2] != _ED25519_MULTICODEC:
        raise BadKey(message="did:key is not an Ed25519 key")
    return raw[2:]


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is a valid Ed25519 signature of `message` by `public_key`.

    libsodium's verification is strict (rejects non-canonical S and small-order keys).  The call
    releases the GIL, so verifying on several threads uses several cores.
    """
    if len(signature) != SIGNATURE_BYTES or len(public_key) != PUBLIC_KEY_BYTES:
        return False
    if (
        _verify_detached is not None
        and type(message) is type(signature) is type(public_key) is bytes
    ):
        # The detached form checks the same equation without copying the message into a
        # signed-message buffer and out again (crypto_sign_open is built on it).
        return bool(_verify_detached(signature, message, len(message), public_key) == 0)
    try:
        nacl.bindings.crypto_sign_open(signature + message, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    return True


VERIFY_CHUNK_MIN = 32  # fewer signatures than this are verified on the caller's thread


class SignatureVerifier:
    """Verifies many signatures on a few threads (libsodium releases the GIL, so they run on
    as many cores as there are threads: `bench/chain.py` measures it, "verify_gil").

    `threads` is the pool's size (by default the machine's cores); 0 verifies on the caller's
    thread.  The pool starts on first use and its threads are daemon-like executor threads.
    """

    def __init__(self, threads: int | None = None) -> None:
        self.threads = (os.cpu_count() or 1) if threads is None else threads
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def verify_all(self, items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
        """`verify(public_key, message, signature)` for each item, in order."""
        if self.threads <= 1 or len(items) < VERIFY_CHUNK_MIN * 2:
            return [verify(*item) for item in items]
        size = max(VERIFY_CHUNK_MIN, -(-len(items) // self.threads))
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        pool = self._executor()
        # The caller verifies the first chunk itself instead of waiting idle.
        futures = [pool.submit(_verify_chunk, chunk) for chunk in chunks[1:]]
        results = _verify_chunk(chunks[0])
        for future in futures:
            results.extend(future.result())
        return results

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.threads, thread_name_prefix="zhijin-verify"
                )
            return self._pool

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


def _verify_chunk(items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
    return [verify(public_key, message, signature) for public_key, message, signature in items]


@dataclass(frozen=True, slots=True)
class KeyPair:
    """An Ed25519 signing key.  `repr` never shows the seed."""

    seed: bytes
    public_key: bytes
    did: str

    @classmethod
    def from_seed(cls, seed: bytes) -> KeyPair:
        if len(seed) != 32:
            raise BadKey(message="an Ed25519 seed is 32 bytes")
        public_key, _ = nacl.bindings.crypto_sign_seed_keypair(seed)
        return cls(seed=seed, public_key=public_key, did=did_from_public_key(public_key))

    @classmethod
    def generate(cls) -> KeyPair:
        return cls.from_seed(os.urandom(32))

    def sign(self, message: bytes) -> bytes:
        return nacl.signing.SigningKey(self.seed).sign(message).signature

    def __repr__(self) -> str:
        return f"KeyPair(did={self.did!r})"

    def save(self, path: Path) -> None:
        """Write the seed as hex to a new file readable only by its owner (mode 0600)."""
        write_private(path, self.seed.hex() + "\n", exclusive=True)

    @classmethod
    def load(cls, path: Path) -> KeyPair:
        check_secret_file(path, "key file")
        try:
            seed = bytes.fromhex(path.read_text().strip())
        except ValueError as exc:
            raise BadKey(message=f"key file {path} does not hold a hex seed") from exc
        return cls.from_seed(seed)
