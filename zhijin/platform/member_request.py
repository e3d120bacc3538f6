"""Member-signed HTTP reads between peers: a whole block (its bodies) goes to members only.

A peer catching up fetches whole blocks from the others (`GET /api/v1/cluster/blocks/{h}`),
and a whole block holds every tx body: by the chain's read policy (zhijin/platform/chain_read.py)
those are for members.  So the fetching peer signs what it asks for with its member key, and
the serving peer answers only a member in force whose signature is fresh:

    X-Zhijin-Member: <did:key of the member>
    X-Zhijin-Time: <the requester's clock, ms>
    X-Zhijin-Signature: <hex Ed25519 over canonical {"chain_id", "purpose", "height", "time_ms"}>

The time bounds replay to REQUEST_SKEW_MS_MAX; a replayed request only ever gets the block it
named, to whoever could already read the request off the wire.
"""

from __future__ import annotations

from collections.abc import Mapping

from zhijin.chain.codec import canonical
from zhijin.chain.crypto import BadKey, KeyPair, public_key_from_did, verify
from zhijin.chain.errors import ZhijinError

__all__ = [
    "MEMBER_HEADER",
    "REQUEST_SKEW_MS_MAX",
    "MemberSignatureRequired",
    "check_member_request",
    "member_request_headers",
]

MEMBER_HEADER = "X-Zhijin-Member"
TIME_HEADER = "X-Zhijin-Time"
SIGNATURE_HEADER = "X-Zhijin-Signature"
REQUEST_SKEW_MS_MAX = 60_000  # peers' clocks agree far better; a minute allows for NTP steps
PURPOSE_BLOCK = "cluster.block"
_TIME_DIGITS_MAX = 16
_SIGNATURE_HEX_CHARS = 128


class MemberSignatureRequired(ZhijinError):
    code = "member_signature_required"
    http_status = 401


def _message(chain_id: str, height: int, time_ms: int) -> bytes:
    return canonical(
        {"chain_id": chain_id, "purpose": PURPOSE_BLOCK, "height": height, "time_ms": time_ms}
    )


def member_request_headers(
    key: KeyPair, *, chain_id: str, height: int, time_ms: int
) -> dict[str, str]:
    """The headers that let this member fetch whole block `height` from a peer."""
    signature = key.sign(_message(chain_id, height, time_ms))
    return {MEMBER_HEADER: key.did, TIME_HEADER: str(time_ms), SIGNATURE_HEADER: signature.hex()}


def check_member_request(
    headers: Mapping[str, str],
    *,
    chain_id: str,
    height: int,
    now_ms: int,
    members: Mapping[str, object],
) -> str:
    """The requesting member's DID, or MemberSignatureRequired (401)."""
    did = headers.get(MEMBER_HEADER, "")
    time_text = headers.get(TIME_HEADER, "")
    signature_hex = headers.get(SIGNATURE_HEADER, "")
    refused = MemberSignatureRequired(
        message="a whole block holds every tx body: only a member may fetch it, signing the "
        "request with its key"
    )
    if did not in members or not time_text.isdigit() or len(time_text) > _TIME_DIGITS_MAX:
        raise refused
    time_ms = int(time_text)
    if abs(now_ms - time_ms) > REQUEST_SKEW_MS_MAX or len(signature_hex) != _SIGNATURE_HEX_CHARS:
        raise refused
    try:
        public_key = public_key_from_did(did)
        signature = bytes.fromhex(signature_hex)
    except (BadKey, ValueError) as exc:
        raise refused from exc
    if not verify(public_key, _message(chain_id, height, time_ms), signature):
        raise refused
    return did
