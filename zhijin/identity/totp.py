"""TOTP second factor (RFC 6238 on RFC 4226 HOTP, through pyotp), enrolment QR codes, and
recovery codes.

Replay protection: a code is accepted only for a time step later than the last step the user
used, so a code seen over a shoulder or in a proxy log is worthless once used, even within its
30-second window.  The caller stores the returned step (store.users.totp_last_step).

Recovery codes are 80-bit random values shown once; only their SHA-256 is stored.  80 bits is
beyond search, so a fast unsalted hash is enough (unlike passwords, which need Argon2).

WebAuthn seam: `SecondFactor` is the interface a login or step-up check needs; TOTP is one
implementation, a WebAuthn assertion verifier can be another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import quote

import pyotp
import segno

from zhijin.identity import limits

__all__ = [
    "Enrolment",
    "SecondFactor",
    "TotpConfig",
    "code_for_step",
    "generate_recovery_codes",
    "generate_secret",
    "hash_recovery_code",
    "match_step",
    "normalize_recovery_code",
    "provisioning_uri",
    "secret_text",
    "start_enrolment",
    "step_at",
]

Algorithm = Literal["SHA1", "SHA256", "SHA512"]
_DIGESTS: dict[str, Callable[..., Any]] = {
    "SHA1": hashlib.sha1,
    "SHA256": hashlib.sha256,
    "SHA512": hashlib.sha512,
}
_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over a phone


@dataclass(frozen=True, slots=True)
class TotpConfig:
    """What authenticator apps assume unless told otherwise: SHA-1, 6 digits, 30 s."""

    algorithm: Algorithm = "SHA1"
    digits: int = limits.TOTP_DIGITS
    step_s: int = limits.TOTP_STEP_S
    window_steps: int = limits.TOTP_WINDOW_STEPS


DEFAULT_CONFIG = TotpConfig()


class SecondFactor(Protocol):
    """What login and step-up need from a second factor: check a response, say which counter
    or time step it consumed (for replay protection), or None when it does not verify."""

    kind: str

    def verify(self, response: str, *, now_ms: int, last_used: int | None) -> int | None: ...


def generate_secret() -> bytes:
    return secrets.token_bytes(limits.TOTP_SECRET_BYTES)


def _otp(secret: bytes, config: TotpConfig) -> pyotp.TOTP:
    encoded = base64.b32encode(secret).decode("ascii")
    return pyotp.TOTP(
        encoded, digits=config.digits, digest=_DIGESTS[config.algorithm], interval=config.step_s
    )


def step_at(time_s: int, config: TotpConfig = DEFAULT_CONFIG) -> int:
    """RFC 6238 T = floor((unix time - T0) / X) with T0 = 0."""
    return time_s // config.step_s


def code_for_step(secret: bytes, step: int, config: TotpConfig = DEFAULT_CONFIG) -> str:
    return _otp(secret, config).generate_otp(step)


def match_step(
    secret: bytes,
    code: str,
    *,
    now_s: int,
    last_used_step: int | None,
    config: TotpConfig = DEFAULT_CONFIG,
) -> int | None:
    """The time step `code` belongs to, within the drift window and after `last_used_step`.

    Every candidate step is compared (constant-time) even after a match, so the time taken
    does not say which step matched.
    """
    code = code.strip().replace(" ", "")
    if len(code) != config.digits or not code.isdigit():
        return None
    current = step_at(now_s, config)
    matched: int | None = None
    for step in range(current - config.window_steps, current + config.window_steps + 1):
        expected = code_for_step(secret, step, config)
        fresh = last_used_step is None or step > last_used_step
        if hmac.compare_digest(expected.encode(), code.encode()) and fresh and matched is None:
            matched = step
    return matched


@dataclass(frozen=True, slots=True)
class TotpFactor:
    """A user's TOTP as a `SecondFactor`."""

    secret: bytes
    config: TotpConfig = DEFAULT_CONFIG
    kind: str = "totp"

    def verify(self, response: str, *, now_ms: int, last_used: int | None) -> int | None:
        return match_step(
            self.secret,
            response,
            now_s=now_ms // 1000,
            last_used_step=last_used,
            config=self.config,
        )

    def __repr__(self) -> str:
        return "TotpFactor(secret=<redacted>)"


def secret_text(secret: bytes) -> str:
    """The secret as authenticator apps take it typed in: base32, no padding."""
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def provisioning_uri(secret: bytes, *, account_name: str, issuer: str = limits.TOTP_ISSUER) -> str:
    """The otpauth:// URI authenticator apps read (Google Authenticator key URI format)."""
    encoded = secret_text(secret)
    label = quote(f"{issuer}:{account_name}", safe=":@")
    return f"otpauth://totp/{label}?secret={encoded}&issuer={quote(issuer)}&algorithm=SHA1&digits={limits.TOTP_DIGITS}&period={limits.TOTP_STEP_S}"


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A pending enrolment: show the QR (or the URI as text), then confirm with a first code."""

    secret: bytes
    uri: str
    qr_svg_data_uri: str
    qr_png_data_uri: str

    def __repr__(self) -> str:
        return "Enrolment(secret=<redacted>)"


def start_enrolment(*, account_name: str, secret: bytes | None = None) -> Enrolment:
    secret = generate_secret() if secret is None else secret
    uri = provisioning_uri(secret, account_name=account_name)
    # Error level M survives a smudged screen; the URI is short enough for a small symbol.
    qr = segno.make(uri, error="m", micro=False)
    return Enrolment(
        secret=secret,
        uri=uri,
        qr_svg_data_uri=qr.svg_data_uri(scale=4),
        qr_png_data_uri=qr.png_data_uri(scale=4),
    )


def generate_recovery_codes(count: int = limits.RECOVERY_CODES_COUNT) -> tuple[str, ...]:
    """Codes like `ABCD-EFGH-JKLM-NPQR`: 16 symbols of 5 bits = 80 bits each."""
    symbols = limits.RECOVERY_CODE_BYTES * 8 // 5
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(symbols))
        codes.append("-".join(raw[i : i + 4] for i in range(0, len(raw), 4)))
    return tuple(codes)


def normalize_recovery_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def hash_recovery_code(code: str) -> str:
    return hashlib.sha256(
        b"zhijin/recovery-code/v1\x00" + normalize_recovery_code(code).encode()
    ).hexdigest()
