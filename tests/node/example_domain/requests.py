"""Request parsing: the contract's JSON args in, a small immutable request out, or a refusal,
checked in `codes.SIGN_PRECEDENCE` order.  Needs no state, so it runs first."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.node.example_domain import limits
from tests.node.example_domain.codes import Code, refuse

__all__ = ["SignRequest", "parse_sign"]

_ENTRY_ID = re.compile(limits.ENTRY_ID_PATTERN)


@dataclass(frozen=True, slots=True)
class SignRequest:
    id: str
    message: str


def parse_sign(args: object) -> SignRequest:
    if type(args) is not dict or set(args) != {"id", "message"}:
        refuse(Code.ARGS_INVALID)
    entry_id, message = args["id"], args["message"]
    if type(entry_id) is not str or _ENTRY_ID.fullmatch(entry_id) is None:
        refuse(Code.ID_INVALID)
    if type(message) is not str or not 0 < len(message) <= limits.MESSAGE_CHARS_MAX:
        refuse(Code.MESSAGE_INVALID)
    return SignRequest(entry_id, message)
