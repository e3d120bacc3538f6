"""Result codes of the guestbook contract, their precedence, and their messages.

A refused request gets the first applicable code of `SIGN_PRECEDENCE`, so the same request
always gets the same answer.  Codes are stable (clients switch on them); each has an English
message (the problem's `detail`) and a zh-CN one for the web app, side by side in `MESSAGES`.

| # | code | when |
|---|---|---|
| 1 | args_invalid | args are not an object of `id` and `message` |
| 2 | id_invalid | the id is not 1-64 of `A-Za-z0-9._:-` |
| 3 | message_invalid | the message is not 1-280 characters |
| 4 | exists_with_different_fields | the id was signed before with another message or author |
"""

from __future__ import annotations

from enum import StrEnum
from typing import NoReturn

from zhijin.chain.errors import ContractError

__all__ = ["MESSAGES", "SIGN_PRECEDENCE", "Code", "GuestbookError", "http_status_for", "refuse"]


class Code(StrEnum):
    ARGS_INVALID = "args_invalid"
    ID_INVALID = "id_invalid"
    MESSAGE_INVALID = "message_invalid"
    EXISTS_WITH_DIFFERENT_FIELDS = "exists_with_different_fields"


SIGN_PRECEDENCE: tuple[Code, ...] = (
    Code.ARGS_INVALID,
    Code.ID_INVALID,
    Code.MESSAGE_INVALID,
    Code.EXISTS_WITH_DIFFERENT_FIELDS,
)

# (zh-CN, English) per code.
MESSAGES: dict[Code, tuple[str, str]] = {
    Code.ARGS_INVALID: (
        "参数须为包含 id 与 message 的对象",
        "args are an object of id and message",
    ),
    Code.ID_INVALID: ("编号须为 1-64 个字母、数字或 ._:-", "id is 1-64 of A-Z a-z 0-9 . _ : -"),
    Code.MESSAGE_INVALID: ("留言须为 1-280 个字符", "message is 1-280 characters"),
    Code.EXISTS_WITH_DIFFERENT_FIELDS: (
        "该编号已用于另一条留言",
        "this id was signed with another message or author",
    ),
}


def http_status_for(code: str) -> int:
    """One HTTP status per code, stable like the code."""
    return 409 if code == Code.EXISTS_WITH_DIFFERENT_FIELDS else 422


# A refusal's message is the one text a failed tx keeps on chain: for a conflict it lists the
# fields that differ, so the API can name them in every language (the `{fields}` of the
# code's template in the messages catalog).
DIFFERS_IN = "differs in: "


class GuestbookError(ContractError):
    """A guestbook request refused with one stable `Code`; the tx changes no state."""

    def __init__(self, code: Code, fields: tuple[str, ...] = ()) -> None:
        message = DIFFERS_IN + ", ".join(fields) if fields else MESSAGES[code][1]
        super().__init__(code.value, message, **({"fields": list(fields)} if fields else {}))
        self.http_status = http_status_for(code.value)

    @classmethod
    def from_result(cls, code: Code, message: str) -> GuestbookError:
        """The refusal again from a failed tx's code and message (the fields it listed)."""
        if not message.startswith(DIFFERS_IN):
            return cls(code)
        return cls(code, tuple(message.removeprefix(DIFFERS_IN).split(", ")))


def refuse(code: Code, fields: tuple[str, ...] = ()) -> NoReturn:
    raise GuestbookError(code, fields)
