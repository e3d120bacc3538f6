"""Pay by phone number: which account a mobile number names, as its owner chose.

A person who wants to be paid by phone number registers their own mobile (the one in their
personal data: nobody can claim someone else's number) for one of their accounts; a payer who
types the number reaches that account and sees the owner's masked name first (confirmation of
payee).  The number is personal data, so like the IBAN directory it is sealed in the field
vault and found by a blind index, never in the clear, never on chain.  A number names at most
one account; registering it for another account of the same owner moves it there.
"""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from zhijin.platform.errors import Conflict, InvalidInput
from zhijin.platform.vault import FieldSpec, RecordSchema, Sensitivity, Vault, VaultStore

__all__ = ["MOBILE_SCHEMA", "MobileDirectory", "compact_mobile", "mask_mobile"]

_CN_PREFIX = "+86"


def compact_mobile(value: str) -> str:
    """A mainland China mobile number as E.164 (+86 and 11 digits), or InvalidInput."""
    digits = "".join(c for c in value if c.isdigit())
    if (value.strip().startswith("+") and digits.startswith("86")) or (
        len(digits) == 13 and digits.startswith("86")
    ):
        digits = digits[2:]
    if len(digits) != 11 or not digits.startswith("1") or digits[1] not in "3456789":
        raise InvalidInput("mobile_invalid", "not a mainland China mobile number")
    return _CN_PREFIX + digits


def _normalise(value: str) -> str:
    try:
        return compact_mobile(value)
    except InvalidInput:
        return value


def mask_mobile(mobile: str) -> str:
    """+8613800138000 -> 138****8000."""
    national = mobile.removeprefix(_CN_PREFIX)
    return f"{national[:3]}****{national[-4:]}"


MOBILE_SCHEMA = RecordSchema(
    "payments_mobile",
    (FieldSpec("mobile", Sensitivity.SENSITIVE, blind_index=True, normalize=_normalise),),
)

# One registration at a time per process (as for IBANs): a lookup and a write are not atomic.
_registering = threading.Lock()


class MobileDirectory:
    """Mobile-number records in the vault tables, keyed by account id."""

    def __init__(self, vault: Vault, engine: Engine) -> None:
        self.vault = vault
        self.store = VaultStore(engine)

    def register(self, account_id: str, mobile: str, *, same_owner: set[str], now_ms: int) -> bool:
        """Name `account_id` by the number, moving it from the owner's other account
        (`same_owner`: their account ids) if it named one; False if it already named this."""
        with _registering:
            holders = self.store.find(self.vault, MOBILE_SCHEMA, "mobile", mobile)
            if any(holder not in same_owner for holder in holders):
                raise Conflict("mobile_taken", "this number already names another account")
            if holders == [account_id]:
                return False
            for holder in holders:
                self.store.delete(MOBILE_SCHEMA.name, holder)
            self.store.put(
                self.vault.seal(MOBILE_SCHEMA, account_id, {"mobile": mobile}), now_ms=now_ms
            )
            return True

    def remove(self, account_id: str) -> bool:
        with _registering:
            if self.store.get(MOBILE_SCHEMA.name, account_id) is None:
                return False
            self.store.delete(MOBILE_SCHEMA.name, account_id)
            return True

    def mobile_of(self, account_id: str) -> str | None:
        record = self.store.get(MOBILE_SCHEMA.name, account_id)
        if record is None:
            return None
        value = self.vault.open(MOBILE_SCHEMA, record, ["mobile"])["mobile"]
        return value if isinstance(value, str) else value.decode("utf-8")

    def account_for(self, mobile: str) -> str | None:
        holders = self.store.find(self.vault, MOBILE_SCHEMA, "mobile", mobile)
        return holders[0] if len(holders) == 1 else None
