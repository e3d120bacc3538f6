"""KYC data: validation of Chinese identifiers, the vault schemas personal data is declared in,
and the commitments that go on chain instead of the data.

Validation follows python-stdnum's verbs: `validate_*` returns the compact form or raises
InvalidInput with a precise code; nothing here logs or echoes the value.

- Resident identity card number (居民身份证号码, GB 11643): stdnum `cn.ric` (region, birth
  date, sequence, ISO 7064 MOD 11-2 check character); we also refuse birth dates in the future.
- Unified social credit code (统一社会信用代码, GB 32100): stdnum `cn.uscc`.
- Mainland mobile numbers: stdnum has no phone module, so `validate_cn_mobile` checks the
  E.164 form +86 followed by 11 digits whose first three are a mobile network prefix allocated
  by MIIT (13x, 145-149, 150-153, 155-159, 162, 165-167, 170-178, 18x, 190-193, 195-199).
  It normalises "+86", "0086", "86" prefixes, spaces and dashes.
- Names: NFC-normalised; Chinese names may contain the middle dot of transliterated names
  (U+00B7, e.g. 阿卜杜·热合曼); Latin names letters, spaces, apostrophes, hyphens, dots.

Commitments: an 18-digit ID number has well under 2^40 plausible values, so its bare hash on
a public ledger could be reversed by enumeration.  Everything that goes on chain is therefore a
*salted* commitment SHA-256(domain ‖ salt ‖ data) with a 256-bit salt kept in the vault.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError

from zhijin.chain.codec import canonical
from zhijin.identity import limits
from zhijin.platform.errors import InvalidInput
from zhijin.platform.vault import FieldSpec, RecordSchema, Sensitivity

__all__ = [
    "BUSINESS_SCHEMA",
    "KYC_DOCUMENT_SCHEMA",
    "MFA_SCHEMA",
    "PERSON_SCHEMA",
    "KycDocument",
    "commitment",
    "new_salt",
    "validate_cn_mobile",
    "validate_fields",
    "validate_person_name",
    "validate_resident_id",
    "validate_uscc",
]

_MOBILE_PREFIXES = frozenset(
    [f"13{d}" for d in range(10)]
    + ["145", "146", "147", "148", "149", "150", "151", "152", "153"]
    + ["155", "156", "157", "158", "159", "162", "165", "166", "167"]
    + [f"17{d}" for d in range(9)]
    + [f"18{d}" for d in range(10)]
    + ["190", "191", "192", "193", "195", "196", "197", "198", "199"]
)
_CJK_NAME = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0002ebef·]+$")
_LATIN_NAME = re.compile(r"^[A-Za-zÀ-ÖØ-öø-ÿ][A-Za-zÀ-ÖØ-öø-ÿ .'\-]*$")
_COMMITMENT_DOMAIN = b"zhijin/kyc/commitment/v1\x00"
SALT_BYTES = 32


def _compact_ric(value: str) -> str:
    # stdnum's cn.ric.compact keeps inner spaces; people type the number in groups.
    return re.sub(r"[\s\-]", "", value).upper()


def validate_resident_id(value: str, *, today: date | None = None) -> str:
    try:
        number = ric.validate(_compact_ric(value))
        born = ric.get_birth_date(number)
    except ValidationError as exc:
        raise InvalidInput(
            "invalid_resident_id", "not a valid resident identity card number"
        ) from exc
    if born > (today or date.today()):
        raise InvalidInput("invalid_resident_id", "the birth date in the number is in the future")
    return str(number)


def validate_uscc(value: str) -> str:
    try:
        return str(uscc.validate(value))
    except ValidationError as exc:
        raise InvalidInput("invalid_uscc", "not a valid unified social credit code") from exc


def validate_cn_mobile(value: str) -> str:
    """A mainland China mobile number in E.164 form (+86 and 11 digits)."""
    digits = re.sub(r"[\s\-()]", "", value)
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix) :]
            break
    if len(digits) != 11 or not digits.isdigit() or digits[:3] not in _MOBILE_PREFIXES:
        raise InvalidInput("invalid_mobile", "not a mainland China mobile number")
    return "+86" + digits


def validate_person_name(value: str) -> str:
    name = unicodedata.normalize("NFC", value).strip()
    name = re.sub(r"\s+", " ", name).replace("•", "·").replace("・", "·")
    if not 0 < len(name) <= limits.PERSON_NAME_CHARS_MAX:
        raise InvalidInput(
            "invalid_name", f"a name has 1 to {limits.PERSON_NAME_CHARS_MAX} characters"
        )
    if _CJK_NAME.match(name):
        if len(name) < 2 or name.startswith("·") or name.endswith("·") or "··" in name:
            raise InvalidInput("invalid_name", "not a valid Chinese name")
        return name
    if _LATIN_NAME.match(name):
        return name
    raise InvalidInput("invalid_name", "a name is written in Chinese characters or Latin letters")


def validate_fields(checks: dict[str, tuple[Callable[[str], str], str]]) -> dict[str, str]:
    """Run every field's validator (field -> (validator, value)) and report all failures at
    once, so a form can mark each wrong field: the compact values, or InvalidInput whose code
    is the first failure's (one wrong field answers as it always did) with `errors`, a list of
    {field, code, message} in field order."""
    values: dict[str, str] = {}
    errors: list[dict[str, str]] = []
    for field, (validate, value) in checks.items():
        try:
            values[field] = validate(value)
        except InvalidInput as exc:
            errors.append({"field": field, "code": exc.code, "message": exc.message})
    if errors:
        first = errors[0]
        raise InvalidInput(first["code"], first["message"], errors=errors)
    return values


def _compact_mobile(value: str) -> str:
    try:
        return validate_cn_mobile(value)
    except InvalidInput:
        return value


# Where personal data is declared, it is classified.  Blind indexes exist only where a lookup
# by value is a real need: finding a customer by ID number or by phone.
PERSON_SCHEMA = RecordSchema(
    "person",
    (
        FieldSpec("name", Sensitivity.SENSITIVE),
        FieldSpec(
            "resident_id", Sensitivity.HIGHLY_SENSITIVE, blind_index=True, normalize=_compact_ric
        ),
        FieldSpec("mobile", Sensitivity.SENSITIVE, blind_index=True, normalize=_compact_mobile),
        FieldSpec("birth_date", Sensitivity.SENSITIVE),
        FieldSpec("commitment_salt", Sensitivity.HIGHLY_SENSITIVE),
        FieldSpec("kyc_level", Sensitivity.INTERNAL),
    ),
)
BUSINESS_SCHEMA = RecordSchema(
    "business",
    (
        # A company's registered name and code are public records in China.
        FieldSpec("company_name", Sensitivity.PUBLIC),
        FieldSpec(
            "uscc", Sensitivity.PUBLIC, blind_index=True, normalize=lambda v: str(uscc.compact(v))
        ),
        FieldSpec("owner_user_id", Sensitivity.INTERNAL),
    ),
)
KYC_DOCUMENT_SCHEMA = RecordSchema(
    "kyc_document",
    (
        FieldSpec("content", Sensitivity.HIGHLY_SENSITIVE),
        FieldSpec("media_type", Sensitivity.INTERNAL),
        FieldSpec("kind", Sensitivity.INTERNAL),
        FieldSpec("owner_user_id", Sensitivity.INTERNAL),
    ),
)
MFA_SCHEMA = RecordSchema(
    "mfa",
    (
        FieldSpec("totp_secret", Sensitivity.HIGHLY_SENSITIVE),
        FieldSpec("totp_pending_secret", Sensitivity.HIGHLY_SENSITIVE),
    ),
)


@dataclass(frozen=True, slots=True)
class KycDocument:
    kind: str  # "id_card_front", "id_card_back", "business_licence", ...
    media_type: str
    content: bytes

    def __repr__(self) -> str:
        return f"KycDocument(kind={self.kind!r}, media_type={self.media_type!r}, bytes={len(self.content)})"


def new_salt() -> bytes:
    return secrets.token_bytes(SALT_BYTES)


def commitment(salt: bytes, *, fields: dict[str, str], documents: Sequence[bytes]) -> str:
    """SHA-256 over the salt, the canonical fields and each document's SHA-256.

    Whoever holds the salt and the data (the KYC bank, an auditor given both) can show what was
    checked; the chain alone reveals nothing about the person.
    """
    if len(salt) != SALT_BYTES:
        raise InvalidInput("invalid_salt", "a commitment salt is 32 bytes")
    payload = canonical(
        {"fields": fields, "documents": [hashlib.sha256(d).hexdigest() for d in documents]}
    )
    return hashlib.sha256(_COMMITMENT_DOMAIN + salt + payload).hexdigest()
