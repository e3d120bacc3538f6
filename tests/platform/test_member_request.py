"""Member-signed block fetches: only a member in force, with a fresh signature over exactly the
block it asks for, gets a whole block (its tx bodies) from a peer."""

from __future__ import annotations

import pytest

from zhijin.chain.crypto import KeyPair
from zhijin.platform.member_request import (
    MEMBER_HEADER,
    REQUEST_SKEW_MS_MAX,
    MemberSignatureRequired,
    check_member_request,
    member_request_headers,
)

CHAIN = "zhijin-cluster"
NOW_MS = 1_800_000_000_000
MEMBER = KeyPair.generate()
MEMBERS = {MEMBER.did: object()}


def _check(headers: dict[str, str], *, height: int = 7, now_ms: int = NOW_MS) -> str:
    return check_member_request(
        headers, chain_id=CHAIN, height=height, now_ms=now_ms, members=MEMBERS
    )


def _signed(key: KeyPair = MEMBER, **overrides: object) -> dict[str, str]:
    fields: dict = {"chain_id": CHAIN, "height": 7, "time_ms": NOW_MS, **overrides}
    return member_request_headers(key, **fields)


def test_a_member_with_a_fresh_signature_is_answered() -> None:
    assert _check(_signed()) == MEMBER.did
    assert _check(_signed(time_ms=NOW_MS - REQUEST_SKEW_MS_MAX)) == MEMBER.did


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="unsigned"),
        pytest.param(_signed(KeyPair.generate()), id="not a member"),
        pytest.param(_signed(height=8), id="another block"),
        pytest.param(_signed(chain_id="other-chain"), id="another chain"),
        pytest.param(_signed(time_ms=NOW_MS - REQUEST_SKEW_MS_MAX - 1), id="stale"),
        pytest.param(_signed(time_ms=NOW_MS + REQUEST_SKEW_MS_MAX + 1), id="from the future"),
        pytest.param({**_signed(), "X-Zhijin-Signature": "zz" * 64}, id="signature not hex"),
        pytest.param({**_signed(), "X-Zhijin-Signature": "00" * 64}, id="wrong signature"),
        pytest.param({**_signed(), "X-Zhijin-Time": "-5"}, id="time not digits"),
        pytest.param({**_signed(), MEMBER_HEADER: "did:key:nonsense"}, id="bad did"),
    ],
)
def test_anyone_else_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(MemberSignatureRequired) as refused:
        _check(headers)
    assert refused.value.code == "member_signature_required" and refused.value.http_status == 401
