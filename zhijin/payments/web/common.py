"""What payments' pages share: reading a typed amount, who is calling, the viewer's own
accounts, a statement line's signed amount and a form's dates.  The step-up prompt and its
reasons are identity's (zhijin/identity/web/stepup.py), shared with lending's pages."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Form

from zhijin.chain.errors import ZhijinError
from zhijin.identity.web.stepup import caller_of
from zhijin.payments import limits, service
from zhijin.payments.expected import PaymentsHost
from zhijin.platform.shell import ShellViewer

__all__ = [
    "AmountField",
    "AmountInvalid",
    "CodeField",
    "ConfirmedField",
    "DateInvalid",
    "IdField",
    "PasswordField",
    "PayeeField",
    "ReferenceField",
    "caller_of",
    "my_accounts",
    "parse_amount",
    "parse_day",
    "signed",
]

ACCOUNTS_SHOWN_MAX = limits.PAGE_SIZE_MAX
INT64_MAX = 2**63 - 1
_AMOUNT = re.compile(r"^([0-9]{1,19})(?:\.([0-9]{1,18}))?$")  # ASCII digits only
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")

# The fields of the forms that move money (/pay, /fx), bounded as the API bounds them: an id,
# the payee as typed (an account id, an IBAN with spaces or a phone number), an amount as typed,
# a memo (twice the limit: the contract says which characters are too many), a step-up code.
IdField = Annotated[str, Form(max_length=limits.ID_CHARS_MAX)]
PayeeField = Annotated[str, Form(max_length=limits.IBAN_INPUT_CHARS_MAX + limits.ID_CHARS_MAX)]
AmountField = Annotated[str, Form(max_length=48)]
ReferenceField = Annotated[str, Form(max_length=limits.REFERENCE_CHARS_MAX * 2)]
CodeField = Annotated[str, Form(max_length=16)]
ConfirmedField = Annotated[str, Form(max_length=1)]  # "1": the review's confirm button
PasswordField = Annotated[str, Form(max_length=1024)]  # re-authentication before enrolment


class AmountInvalid(ZhijinError):
    code = "amount_invalid"
    http_status = 422


class DateInvalid(ZhijinError):
    code = "date_invalid"
    http_status = 422


def parse_amount(text: str, exponent: int) -> int:
    """A decimal amount a person typed ("1,234.5" is refused: digits and one point only) as
    integer minor units of a currency with `exponent` decimals; exact, never through float."""
    matched = _AMOUNT.match(text.strip())
    if matched is None:
        raise AmountInvalid(message="enter the amount as digits, with a decimal point if needed")
    fraction = matched.group(2) or ""
    if len(fraction) > exponent:
        raise AmountInvalid("amount_too_precise", f"at most {exponent} decimals", exponent=exponent)
    minor = int(Decimal(matched.group(1) + "." + (fraction or "0")).scaleb(exponent))
    if minor <= 0:
        raise AmountInvalid("amount_not_positive", "the amount must be more than zero")
    if minor > INT64_MAX:
        raise AmountInvalid("amount_too_large", "the amount is too large")
    return minor


def parse_day(text: str) -> date | None:
    """A date field of a form (YYYY-MM-DD, what <input type=date> sends); empty: None."""
    text = text.strip()
    if not text:
        return None
    try:
        if _DAY.match(text) is None:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise DateInvalid(message="enter the date as YYYY-MM-DD") from None


def my_accounts(platform: PaymentsHost, viewer: ShellViewer) -> list[dict[str, Any]]:
    if viewer.did is None:
        return []
    page = service.list_accounts(platform, owner=viewer.did, limit=ACCOUNTS_SHOWN_MAX)
    accounts: list[dict[str, Any]] = page["accounts"]
    return accounts


def signed(line: dict[str, Any]) -> int:
    """A people-statement line's amount in minor units, negative for money out."""
    amount = int(line["amount_minor"])
    return -amount if line["direction"] == "debit" else amount
