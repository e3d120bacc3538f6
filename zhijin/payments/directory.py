"""The IBAN directory: which of this node's accounts an IBAN names, for pain.001 imports.

A bank keeps the IBANs of the accounts it holds in custody; a pain.001 names debtor and creditor
accounts by IBAN, and the import resolves them here.  An IBAN is a bank account number, which
is personal information (PIPL treats financial accounts as sensitive), so it stays off the chain
and is sealed in the field vault (zhijin/platform/vault.py) like any other personal field:
encrypted at rest under the record's data key, found by a blind index (HMAC under the vault's
index secret) of its compact form, never by decrypting.  Records are keyed by account id, so an account has at most one
IBAN; an IBAN names at most one account (registration refuses a second).

Each node keeps its own directory of the accounts its member holds in custody: other members'
IBANs are theirs to publish.  `service.register_iban` checks custody and writes the audit entry;
this module only keeps the records.
"""

from __future__ import annotations

import threading

from sqlalchemy import Engine
from stdnum import iban as stdnum_iban
from stdnum.exceptions import ValidationError

from zhijin.platform.errors import Conflict, InvalidInput
from zhijin.platform.vault import FieldSpec, RecordSchema, Sensitivity, Vault, VaultStore

__all__ = ["IBAN_SCHEMA", "IbanDirectory", "mask", "valid_iban"]

IBAN_SCHEMA = RecordSchema(
    "payments_iban",
    (FieldSpec("iban", Sensitivity.SENSITIVE, blind_index=True, normalize=stdnum_iban.compact),),
)

# One registration at a time per process, so two requests cannot give one IBAN two accounts
# between the lookup and the write (a node's platform database has one writing process).
_registering = threading.Lock()


def valid_iban(iban: str) -> str:
    """The compact, upper-case form of a valid IBAN (ISO 13616 checksum and country format)."""
    try:
        compact: str = stdnum_iban.validate(iban)
    except ValidationError as exc:
        raise InvalidInput("iban_invalid", f"not a valid IBAN: {exc}") from None
    return compact


def mask(iban: str) -> str:
    """Country code and last four characters, for audit entries and API answers."""
    compact = stdnum_iban.compact(iban)
    return f"{compact[:2]}**{compact[-4:]}"


class IbanDirectory:
    """IBAN records in the vault tables of the platform database."""

    def __init__(self, vault: Vault, engine: Engine) -> None:
        self.vault = vault
        self.store = VaultStore(engine)

    def register(self, account_id: str, compact: str, *, now_ms: int) -> bool:
        """Name `account_id` by the IBAN (replacing one it had); False if it already was."""
        with _registering:
            holders = self.store.find(self.vault, IBAN_SCHEMA, "iban", compact)
            if any(holder != account_id for holder in holders):
                raise Conflict("iban_taken", "this IBAN already names another account")
            if holders and self.iban_of(account_id) == compact:
                return False
            self.store.put(
                self.vault.seal(IBAN_SCHEMA, account_id, {"iban": compact}), now_ms=now_ms
            )
            return True

    def remove(self, account_id: str) -> str | None:
        """Forget the account's IBAN; returns it, or None when there was none."""
        with _registering:
            current = self.iban_of(account_id)
            if current is not None:
                self.store.delete(IBAN_SCHEMA.name, account_id)
            return current

    def iban_of(self, account_id: str) -> str | None:
        """The account's IBAN (compact), decrypted; None when it has none."""
        record = self.store.get(IBAN_SCHEMA.name, account_id)
        if record is None:
            return None
        value = self.vault.open(IBAN_SCHEMA, record, ["iban"])["iban"]
        return value if isinstance(value, str) else value.decode("utf-8")

    def account_for(self, iban: str) -> str | None:
        """The account the IBAN (any spacing or case) names here, if any."""
        holders = self.store.find(self.vault, IBAN_SCHEMA, "iban", stdnum_iban.compact(iban))
        return holders[0] if len(holders) == 1 else None
