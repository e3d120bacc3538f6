"""TOTP against RFC 6238 Appendix B and RFC 4226 Appendix D; replay; enrolment; recovery codes."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlparse

import pytest

from zhijin.identity import totp
from zhijin.identity.totp import TotpConfig

SEEDS = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
# RFC 6238 Appendix B: (time, TOTP, mode), 8 digits, X = 30 s, T0 = 0.
RFC6238_APPENDIX_B = [
    (59, "94287082", "SHA1"),
    (59, "46119246", "SHA256"),
    (59, "90693936", "SHA512"),
    (1111111109, "07081804", "SHA1"),
    (1111111109, "68084774", "SHA256"),
    (1111111109, "25091201", "SHA512"),
    (1111111111, "14050471", "SHA1"),
    (1111111111, "67062674", "SHA256"),
    (1111111111, "99943326", "SHA512"),
    (1234567890, "89005924", "SHA1"),
    (1234567890, "91819424", "SHA256"),
    (1234567890, "93441116", "SHA512"),
    (2000000000, "69279037", "SHA1"),
    (2000000000, "90698825", "SHA256"),
    (2000000000, "38618901", "SHA512"),
    (20000000000, "65353130", "SHA1"),
    (20000000000, "77737706", "SHA256"),
    (20000000000, "47863826", "SHA512"),
]
# RFC 4226 Appendix D: HOTP for counters 0..9 with the SHA-1 seed, 6 digits.
RFC4226_APPENDIX_D = [
    "755224", "287082", "359152", "969429", "338314",
    "254676", "287922", "162583", "399871", "520489",
]  # fmt: skip


@pytest.mark.parametrize(("time_s", "expected", "mode"), RFC6238_APPENDIX_B)
def test_rfc6238_appendix_b(time_s: int, expected: str, mode: str) -> None:
    config = TotpConfig(algorithm=mode, digits=8)  # type: ignore[arg-type]
    step = totp.step_at(time_s, config)
    assert totp.code_for_step(SEEDS[mode], step, config) == expected
    assert (
        totp.match_step(SEEDS[mode], expected, now_s=time_s, last_used_step=None, config=config)
        == step
    )


def test_rfc4226_appendix_d() -> None:
    for counter, expected in enumerate(RFC4226_APPENDIX_D):
        assert totp.code_for_step(SEEDS["SHA1"], counter) == expected


def test_drift_window_accepts_neighbours_only() -> None:
    secret = totp.generate_secret()
    now_s = 1_750_000_000
    step = totp.step_at(now_s)
    for offset in (-1, 0, 1):
        code = totp.code_for_step(secret, step + offset)
        assert totp.match_step(secret, code, now_s=now_s, last_used_step=None) == step + offset
    for offset in (-3, -2, 2, 3):
        code = totp.code_for_step(secret, step + offset)
        if code not in {totp.code_for_step(secret, step + d) for d in (-1, 0, 1)}:
            assert totp.match_step(secret, code, now_s=now_s, last_used_step=None) is None


def test_replayed_code_is_refused() -> None:
    secret = totp.generate_secret()
    now_s = 1_750_000_000
    code = totp.code_for_step(secret, totp.step_at(now_s))
    used = totp.match_step(secret, code, now_s=now_s, last_used_step=None)
    assert used is not None
    # Same code, same window, 10 seconds later: refused because its step is not after `used`.
    assert totp.match_step(secret, code, now_s=now_s + 10, last_used_step=used) is None
    # An older code still inside the drift window is refused too.
    older = totp.code_for_step(secret, used - 1)
    if older != code:
        assert totp.match_step(secret, older, now_s=now_s, last_used_step=used) is None


@pytest.mark.parametrize("bad", ["", "12345", "1234567", "abcdef", "12 34 5x", "١٢٣٤٥٦"])
def test_malformed_codes_are_refused(bad: str) -> None:
    assert (
        totp.match_step(totp.generate_secret(), bad, now_s=1_750_000_000, last_used_step=None)
        is None
    )


def test_enrolment_uri_and_qr() -> None:
    secret = bytes(range(20))
    enrolment = totp.start_enrolment(account_name="alice@example.com", secret=secret)
    uri = urlparse(enrolment.uri)
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    query = parse_qs(uri.query)
    padded = query["secret"][0] + "=" * (-len(query["secret"][0]) % 8)
    assert base64.b32decode(padded) == secret
    assert query["issuer"] == ["zhijin"] and query["digits"] == ["6"] and query["period"] == ["30"]
    assert enrolment.qr_svg_data_uri.startswith("data:image/svg+xml")
    assert enrolment.qr_png_data_uri.startswith("data:image/png;base64,")
    assert "secret" not in repr(enrolment).replace("secret=<redacted>", "")


def test_recovery_codes() -> None:
    codes = totp.generate_recovery_codes()
    assert len(codes) == 10 and len(set(codes)) == 10
    for code in codes:
        assert len(code) == 19 and code.count("-") == 3
    # Typed in lower case without dashes: the same code.
    assert totp.hash_recovery_code(codes[0]) == totp.hash_recovery_code(
        codes[0].lower().replace("-", "")
    )
    assert totp.hash_recovery_code(codes[0]) != totp.hash_recovery_code(codes[1])
    assert len(totp.hash_recovery_code(codes[0])) == 64


def test_totp_factor_is_a_second_factor_and_hides_its_secret() -> None:
    secret = totp.generate_secret()
    factor: totp.SecondFactor = totp.TotpFactor(secret)
    now_ms = 1_750_000_000_000
    code = totp.code_for_step(secret, totp.step_at(now_ms // 1000))
    assert factor.verify(code, now_ms=now_ms, last_used=None) == totp.step_at(now_ms // 1000)
    assert secret.hex() not in repr(factor)
