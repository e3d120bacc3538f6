"""ISO 20022: import pain.001.001.09 batches, export pacs.008.001.08 and camt.053.001.08.

Everything read is validated against its XSD before it is interpreted, and everything written is
validated against its XSD before it is returned, with `xmlschema` (a maintained validator).  The
schemas ship with the package (`schemas/`, MIT, see its LICENSE).  Uploaded XML is parsed with
entity declarations and external resources forbidden (no XXE, no entity expansion bombs).

Import turns each credit transfer of a pain.001 into a create_transfers item, or names why not
(`RejectedTransfer.code`, stable): IBAN and BIC are checked with python-stdnum, amounts are
converted to minor units exactly with `Decimal` (an amount with more decimals than its currency
has is refused, never rounded), and the transfer id is derived from the uploader's namespace,
the initiating party's identification and the file's own identifiers, so the same transaction
never books twice.  `Pain001Import.message_key` names the file's MsgId per initiating party for
the contract's once-only claim (`import_transfers`).

Dates and times in exported messages come from the caller (block time), never the wall clock.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import xmlschema
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban

from zhijin.chain.codec import canonical
from zhijin.chain.errors import ZhijinError
from zhijin.payments import currency, limits
from zhijin.payments.records import Transfer, TransferKind

__all__ = [
    "AccountIdentification",
    "Agent",
    "Amount",
    "CashAccount",
    "CrossBorderPayment",
    "ImportedTransfer",
    "Iso20022Error",
    "Pain001Import",
    "Party",
    "RejectedTransfer",
    "ResolvedAccount",
    "Statement",
    "StatementLine",
    "block_datetime",
    "export_camt053",
    "export_pacs008",
    "parse_pain001",
    "statement_lines",
]

SCHEMA_DIR = Path(__file__).parent / "schemas"
PAIN001 = "pain.001.001.09"
PACS008 = "pacs.008.001.08"
CAMT053 = "camt.053.001.08"
_NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:"
MAX35 = 35
# pacs.008's XchgRate (BaseOneRate) holds at most 10 fraction and 11 total digits; a quote's
# rate may have more.  The exported rate is informational (the amounts are exact), so it is
# rounded half-even to fit, and left out if it cannot fit at all.
EXCHANGE_RATE_ROUNDING = ROUND_HALF_EVEN
_RATE_FRACTION_DIGITS_MAX = 10
_RATE_TOTAL_DIGITS_MAX = 11
_TRANSFER_ID_PREFIX = "p1-"
_TRANSFER_ID_HASH_CHARS = 40
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Iso20022Error(ZhijinError):
    """A message that cannot be read or written; `details["errors"]` lists XSD problems."""

    code = "iso20022_invalid"
    http_status = 422


@functools.cache
def _schema(message: str) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(SCHEMA_DIR / f"{message}.xsd"))


def _xsd_problems(message: str, source: bytes | ET.Element) -> list[dict[str, str]]:
    problems = []
    for error in _schema(message).iter_errors(source):
        problems.append({"path": str(error.path), "reason": str(error.reason)})
        if len(problems) >= limits.XML_ERRORS_REPORTED_MAX:
            break
    return problems


def _is_iban(text: str) -> bool:
    return bool(stdnum_iban.is_valid(text))


def _is_bic(text: str) -> bool:
    return bool(stdnum_bic.is_valid(text))


# -- import: pain.001.001.09 ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountIdentification:
    """How a pain.001 names an account: an IBAN or another identifier, and maybe a currency."""

    iban: str | None
    other_id: str | None
    currency: str | None


@dataclass(frozen=True, slots=True)
class ResolvedAccount:
    account_id: str
    currency: str


AccountResolver = Callable[[AccountIdentification], ResolvedAccount | None]


@dataclass(frozen=True, slots=True)
class ImportedTransfer:
    index: int  # position among the file's credit transfers, from 0
    payment_information_id: str
    end_to_end_id: str
    transfer_id: str
    debit_account_id: str
    credit_account_id: str
    amount: int
    currency: str
    reference: str | None

    def request(self, *, linked: bool) -> dict[str, Any]:
        """The create_transfers item for this transfer."""
        item: dict[str, Any] = {
            "id": self.transfer_id,
            "debit_account_id": self.debit_account_id,
            "credit_account_id": self.credit_account_id,
            "amount": self.amount,
            "currency": self.currency,
        }
        if self.reference is not None:
            item["reference"] = self.reference
        if linked:
            item["flags"] = ["linked"]
        return item


@dataclass(frozen=True, slots=True)
class RejectedTransfer:
    index: int
    payment_information_id: str
    end_to_end_id: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Pain001Import:
    message_id: str
    accepted: tuple[ImportedTransfer, ...]
    rejected: tuple[RejectedTransfer, ...]
    # GrpHdr/InitgPty/Id as (path, text) leaves in document order, or None when the file names no party id
    # (then the uploader is the initiating party).
    initiating_party: tuple[tuple[str, str], ...] | None = None

    @property
    def message_key(self) -> str:
        """The file's message id per initiating party, hashed: the MsgId and a party's id stay
        off chain, the contract sees only this key (scoped again by the uploader)."""
        party = None if self.initiating_party is None else [list(p) for p in self.initiating_party]
        return hashlib.sha256(canonical([PAIN001, party, self.message_id])).hexdigest()

    def transfer_batches(self, *, linked: bool) -> list[dict[str, Any]]:
        """create_transfers args for the accepted transfers.

        Linked: one batch whose transfers all succeed or all fail (so at most
        TRANSFERS_PER_BATCH_MAX of them).  Not linked: batches of independent transfers.
        """
        items = self.accepted
        if not items:
            return []
        if linked:
            if len(items) > limits.TRANSFERS_PER_BATCH_MAX:
                raise Iso20022Error(
                    "batch_too_large_to_link",
                    f"at most {limits.TRANSFERS_PER_BATCH_MAX} transfers can be linked",
                )
            last = len(items) - 1
            return [{"transfers": [t.request(linked=i < last) for i, t in enumerate(items)]}]
        size = limits.TRANSFERS_PER_BATCH_MAX
        return [
            {"transfers": [t.request(linked=False) for t in items[start : start + size]]}
            for start in range(0, len(items), size)
        ]


class _Reject(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _load_pain001(xml: bytes) -> ET.Element:
    if len(xml) > limits.PAIN001_BYTES_MAX:
        raise Iso20022Error("pain001_too_large", f"at most {limits.PAIN001_BYTES_MAX} bytes")
    try:
        resource = xmlschema.XMLResource(xml, defuse="always", allow="none")
    except (xmlschema.XMLResourceError, ET.ParseError) as exc:
        raise Iso20022Error(
            "pain001_invalid",
            f"not well-formed XML: {exc}",
            errors=[{"path": "/", "reason": str(exc)}],
        ) from exc
    root = resource.root
    if root.tag != f"{{{_NAMESPACE}{PAIN001}}}Document":
        raise Iso20022Error(
            "pain001_invalid",
            f"expected a {PAIN001} Document, got {root.tag}",
            errors=[{"path": "/", "reason": f"root element {root.tag}"}],
        )
    problems = _xsd_problems(PAIN001, root)
    if problems:
        raise Iso20022Error(
            "pain001_invalid",
            f"does not validate against {PAIN001}.xsd: {problems[0]['reason']}",
            errors=problems,
        )
    return root


class _Reader:
    """Namespace-aware lookups in a validated pain.001 tree."""

    def __init__(self) -> None:
        self.ns = {"p": _NAMESPACE + PAIN001}

    def find(self, element: ET.Element, path: str) -> ET.Element | None:
        return element.find(path, self.ns)

    def text(self, element: ET.Element, path: str) -> str | None:
        found = element.find(path, self.ns)
        return None if found is None or found.text is None else found.text.strip()

    def all(self, element: ET.Element, path: str) -> list[ET.Element]:
        return element.findall(path, self.ns)


def _account_identification(reader: _Reader, element: ET.Element | None) -> AccountIdentification:
    if element is None:
        raise _Reject("account_missing", "no account given")
    iban = reader.text(element, "p:Id/p:IBAN")
    other = reader.text(element, "p:Id/p:Othr/p:Id")
    if iban is not None and not _is_iban(iban):
        raise _Reject("iban_invalid", f"IBAN {iban} fails its checksum or format")
    return AccountIdentification(iban=iban, other_id=other, currency=reader.text(element, "p:Ccy"))


def _check_agent(reader: _Reader, element: ET.Element | None) -> None:
    bic = None if element is None else reader.text(element, "p:FinInstnId/p:BICFI")
    if bic is not None and not _is_bic(bic):
        raise _Reject("bic_invalid", f"BIC {bic} is not a valid ISO 9362 code")


def _transfer_id(namespace: Any, message_id: str, information_id: str, end_to_end: str) -> str:
    digest = hashlib.sha256(canonical([namespace, message_id, information_id, end_to_end]))
    return _TRANSFER_ID_PREFIX + digest.hexdigest()[:_TRANSFER_ID_HASH_CHARS]


def _initiating_party(
    reader: _Reader, initiation: ET.Element
) -> tuple[tuple[str, str], ...] | None:
    """Every leaf of GrpHdr/InitgPty/Id (an OrgId's BIC, LEI or other id and its scheme, or a
    PrvtId's), as (path, text) in document order; None without an Id.  The name (Nm) is not an
    identification: two parties may share one, and one party may spell it two ways."""
    party = reader.find(initiation, "p:GrpHdr/p:InitgPty/p:Id")
    if party is None:
        return None
    leaves: list[tuple[str, str]] = []

    def walk(element: ET.Element, path: str) -> None:
        children = list(element)
        if not children:
            leaves.append((path, (element.text or "").strip()))
        for child in children:
            walk(child, f"{path}/{child.tag.rpartition('}')[2]}")

    walk(party, "Id")
    return tuple(leaves)


def _amount(reader: _Reader, element: ET.Element) -> tuple[int, str]:
    instructed = reader.find(element, "p:Amt/p:InstdAmt")
    if instructed is None:
        raise _Reject(
            "equivalent_amount_not_supported",
            "only InstdAmt is supported; an equivalent amount needs an FX payment",
        )
    code = instructed.get("Ccy", "")
    if not currency.is_valid(code):
        raise _Reject("currency_invalid", f"{code} is not an ISO 4217 currency in use")
    try:
        value = Decimal((instructed.text or "").strip())
        minor = currency.to_minor(value, code)
    except InvalidOperation as exc:
        raise _Reject("amount_invalid", "the amount is not a decimal") from exc
    except currency.CurrencyError as exc:
        raise _Reject(exc.code, exc.message) from exc
    if minor <= 0:
        raise _Reject("amount_must_be_positive", "the amount must be more than zero")
    if minor > limits.AMOUNT_MAX:
        raise _Reject("amount_exceeds_maximum", "the amount is too large")
    return minor, code


def _resolve(
    resolve_account: AccountResolver, identification: AccountIdentification, side: str
) -> ResolvedAccount:
    resolved = resolve_account(identification)
    if resolved is None:
        raise _Reject(f"{side}_account_unknown", f"no zhijin account for the {side} account")
    return resolved


def _control_sum_matches(declared: str | None, amounts: Iterable[Decimal]) -> bool:
    return declared is None or Decimal(declared) == sum(amounts, Decimal(0))


def parse_pain001(
    xml: bytes,
    *,
    resolve_account: AccountResolver,
    id_namespace: str,
) -> Pain001Import:
    """Validate a pain.001.001.09 file and turn it into transfer requests and named rejections.

    Raises Iso20022Error when the file as a whole is unusable (not well-formed, not valid
    against the XSD, too large, or its NbOfTxs/CtrlSum disagree with its content); otherwise
    each credit transfer is either accepted or rejected with a code, independently.
    `id_namespace` (the uploader's DID) keeps two uploaders' ids apart, and InitgPty/Id two
    initiating parties' (a file without one keeps the ids it had before parties counted).
    """
    root = _load_pain001(xml)
    reader = _Reader()
    initiation = reader.find(root, "p:CstmrCdtTrfInitn")
    assert initiation is not None  # the XSD requires it
    message_id = reader.text(initiation, "p:GrpHdr/p:MsgId") or ""
    party = _initiating_party(reader, initiation)
    # Two parties may use the same MsgId, PmtInfId and EndToEndId: a named party is part of the
    # ids.  Without one the ids are as before parties counted, so a file imported then and sent
    # again still finds its transfers.
    namespace: Any = id_namespace if party is None else [id_namespace, [list(p) for p in party]]
    _check_controls(reader, initiation)
    accepted: list[ImportedTransfer] = []
    rejected: list[RejectedTransfer] = []
    seen: set[tuple[str, str]] = set()
    index = 0
    for information in reader.all(initiation, "p:PmtInf"):
        information_id = reader.text(information, "p:PmtInfId") or ""
        debtor_problem: _Reject | None = None
        debtor: ResolvedAccount | None = None
        try:
            if reader.text(information, "p:PmtMtd") != "TRF":
                raise _Reject("payment_method_not_supported", "only credit transfers (TRF)")
            _check_agent(reader, reader.find(information, "p:DbtrAgt"))
            debtor_id = _account_identification(reader, reader.find(information, "p:DbtrAcct"))
            debtor = _resolve(resolve_account, debtor_id, "debtor")
        except _Reject as problem:
            debtor_problem = problem
        for element in reader.all(information, "p:CdtTrfTxInf"):
            end_to_end = reader.text(element, "p:PmtId/p:EndToEndId") or ""
            try:
                if debtor_problem is not None:
                    raise debtor_problem
                assert debtor is not None
                if (information_id, end_to_end) in seen:
                    raise _Reject("duplicate_end_to_end_id", f"EndToEndId {end_to_end} repeats")
                seen.add((information_id, end_to_end))
                accepted.append(
                    _credit_transfer(
                        reader,
                        element,
                        resolve_account=resolve_account,
                        debtor=debtor,
                        index=index,
                        ids=(namespace, message_id, information_id, end_to_end),
                    )
                )
            except _Reject as problem:
                rejected.append(
                    RejectedTransfer(
                        index=index,
                        payment_information_id=information_id,
                        end_to_end_id=end_to_end,
                        code=problem.code,
                        message=problem.message,
                    )
                )
            index += 1
    return Pain001Import(
        message_id=message_id,
        accepted=tuple(accepted),
        rejected=tuple(rejected),
        initiating_party=party,
    )


def _check_controls(reader: _Reader, initiation: ET.Element) -> None:
    """NbOfTxs and CtrlSum (group and per PmtInf) must agree with the transactions."""
    informations = reader.all(initiation, "p:PmtInf")
    all_amounts: list[Decimal] = []
    for information in informations:
        amounts = [
            Decimal(element.text or "0")
            for element in reader.all(information, "p:CdtTrfTxInf/p:Amt/p:InstdAmt")
            + reader.all(information, "p:CdtTrfTxInf/p:Amt/p:EqvtAmt/p:Amt")
        ]
        count = len(reader.all(information, "p:CdtTrfTxInf"))
        declared = reader.text(information, "p:NbOfTxs")
        if (declared is not None and int(declared) != count) or not _control_sum_matches(
            reader.text(information, "p:CtrlSum"), amounts
        ):
            raise Iso20022Error(
                "pain001_control_mismatch",
                f"PmtInf {reader.text(information, 'p:PmtInfId')}: NbOfTxs or CtrlSum is wrong",
            )
        all_amounts += amounts
    total = len(reader.all(initiation, "p:PmtInf/p:CdtTrfTxInf"))
    if total > limits.PAIN001_TRANSACTIONS_MAX:
        raise Iso20022Error(
            "pain001_too_large", f"at most {limits.PAIN001_TRANSACTIONS_MAX} transactions"
        )
    declared_total = reader.text(initiation, "p:GrpHdr/p:NbOfTxs")
    if (
        declared_total is None
        or int(declared_total) != total
        or not _control_sum_matches(reader.text(initiation, "p:GrpHdr/p:CtrlSum"), all_amounts)
    ):
        raise Iso20022Error("pain001_control_mismatch", "GrpHdr NbOfTxs or CtrlSum is wrong")


def _credit_transfer(
    reader: _Reader,
    element: ET.Element,
    *,
    resolve_account: AccountResolver,
    debtor: ResolvedAccount,
    index: int,
    ids: tuple[Any, str, str, str],
) -> ImportedTransfer:
    amount, code = _amount(reader, element)
    _check_agent(reader, reader.find(element, "p:CdtrAgt"))
    creditor_element = reader.find(element, "p:CdtrAcct")
    if creditor_element is None:
        raise _Reject("creditor_account_missing", "CdtrAcct is required")
    creditor_id = _account_identification(reader, creditor_element)
    creditor = _resolve(resolve_account, creditor_id, "creditor")
    if debtor.currency != code or creditor.currency != code:
        raise _Reject(
            "currency_mismatch",
            f"{code} payment between {debtor.currency} and {creditor.currency} accounts",
        )
    if debtor.account_id == creditor.account_id:
        raise _Reject("accounts_must_be_different", "debtor and creditor are the same account")
    namespace, message_id, information_id, end_to_end = ids
    return ImportedTransfer(
        index=index,
        payment_information_id=information_id,
        end_to_end_id=end_to_end,
        transfer_id=_transfer_id(namespace, message_id, information_id, end_to_end),
        debit_account_id=debtor.account_id,
        credit_account_id=creditor.account_id,
        amount=amount,
        currency=code,
        reference=end_to_end if end_to_end.isprintable() else None,
    )


# -- export: shared types -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Amount:
    """Integer minor units with the exponent they were recorded with."""

    minor: int
    currency: str
    exponent: int

    @classmethod
    def of(cls, minor: int, code: str) -> Amount:
        return cls(minor=minor, currency=code, exponent=currency.exponent(code))

    def text(self) -> str:
        return currency.format_minor(self.minor, self.currency, digits=self.exponent)


@dataclass(frozen=True, slots=True)
class Party:
    name: str
    country: str | None = None  # ISO 3166 alpha-2


@dataclass(frozen=True, slots=True)
class Agent:
    bic: str


@dataclass(frozen=True, slots=True)
class CashAccount:
    iban: str | None = None
    other_id: str | None = None  # e.g. the zhijin account id when there is no IBAN


class _Builder:
    """Builds one message's tree; children must be added in the XSD's sequence order."""

    def __init__(self, message: str) -> None:
        self.message = message

    def element(self, name: str) -> ET.Element:
        # Children stay unqualified under a default namespace declared on the root: ElementTree
        # cannot combine its default_namespace option with unqualified attributes such as Ccy.
        return ET.Element(name, {"xmlns": _NAMESPACE + self.message})

    def add(
        self, parent: ET.Element, name: str, text: str | None = None, **attributes: str
    ) -> ET.Element:
        child = ET.SubElement(parent, name, attributes)
        if text is not None:
            child.text = text
        return child

    def amount(self, parent: ET.Element, name: str, amount: Amount) -> None:
        self.add(parent, name, amount.text(), Ccy=amount.currency)

    def party(self, parent: ET.Element, name: str, party: Party) -> None:
        element = self.add(parent, name)
        self.add(element, "Nm", party.name)
        if party.country is not None:
            self.add(self.add(element, "PstlAdr"), "Ctry", party.country)

    def agent(self, parent: ET.Element, name: str, agent: Agent) -> None:
        if not _is_bic(agent.bic):
            raise Iso20022Error("bic_invalid", f"BIC {agent.bic} is not a valid ISO 9362 code")
        self.add(self.add(self.add(parent, name), "FinInstnId"), "BICFI", agent.bic)

    def account(
        self, parent: ET.Element, name: str, account: CashAccount, code: str | None = None
    ) -> None:
        element = self.add(parent, name)
        identification = self.add(element, "Id")
        if account.iban is not None:
            if not _is_iban(account.iban):
                raise Iso20022Error("iban_invalid", f"IBAN {account.iban} is not valid")
            self.add(identification, "IBAN", account.iban)
        elif account.other_id is not None:
            self.add(self.add(identification, "Othr"), "Id", account.other_id)
        else:
            raise Iso20022Error("account_missing", "an account needs an IBAN or another id")
        if code is not None:
            self.add(element, "Ccy", code)

    def finish(self, root: ET.Element) -> bytes:
        data = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
        problems = _xsd_problems(self.message, data)
        if problems:
            raise Iso20022Error(
                "export_invalid",
                f"the {self.message} written does not validate: {problems[0]['reason']}",
                errors=problems,
            )
        return data


def block_datetime(time_ms: int) -> datetime:
    """A block time (ms since the Unix epoch) as an aware UTC datetime, without floats."""
    return _EPOCH + timedelta(milliseconds=time_ms)


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("ISO 20022 times need a time zone; pass an aware datetime")
    return moment.isoformat(timespec="milliseconds")


def short_reference(identifier: str) -> str:
    """An id as Max35Text: itself if it fits, else a stable digest of it."""
    if len(identifier) <= MAX35:
        return identifier
    return "zj" + hashlib.sha256(identifier.encode()).hexdigest()[: MAX35 - 2]


def uetr_for(transfer_id: str) -> str:
    """A stable UUIDv4-shaped UETR for a transfer, so a re-export carries the same one."""
    digest = hashlib.sha256(b"zhijin-uetr:" + transfer_id.encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def message_rate(rate: str) -> str | None:
    """A quote's rate as a BaseOneRate (<= 10 decimals, <= 11 digits), rounded half-even."""
    value = Decimal(rate)
    integer_digits = len(str(int(value))) if value >= 1 else 0
    places = min(_RATE_FRACTION_DIGITS_MAX, _RATE_TOTAL_DIGITS_MAX - integer_digits)
    if places < 0:
        return None
    rounded = value.quantize(Decimal(1).scaleb(-places), rounding=EXCHANGE_RATE_ROUNDING)
    if rounded == 0:
        return None
    text = format(rounded.normalize(), "f")
    return text


# -- export: pacs.008.001.08 ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CrossBorderPayment:
    """What a pacs.008 says about one cross-border transfer; built by the caller from the
    transfer record (amounts, rate) and off-chain party data (names, IBANs, BICs)."""

    message_id: str
    created_at: datetime
    end_to_end_id: str
    transaction_id: str
    uetr: str
    settlement_date: date
    settlement_amount: Amount  # what the creditor agent receives
    instructed_amount: Amount | None  # what the debtor instructed, before conversion
    exchange_rate: str | None
    debtor: Party
    debtor_account: CashAccount
    debtor_agent: Agent
    creditor: Party
    creditor_account: CashAccount
    creditor_agent: Agent
    instructing_agent: Agent | None = None
    instructed_agent: Agent | None = None
    charge_bearer: str = "SHAR"
    settlement_method: str = "INDA"
    remittance_information: str | None = None

    @classmethod
    def from_transfer(
        cls,
        principal: Transfer,
        *,
        message_id: str,
        created_at: datetime,
        debtor: Party,
        debtor_account: CashAccount,
        debtor_agent: Agent,
        creditor: Party,
        creditor_account: CashAccount,
        creditor_agent: Agent,
        source_exponent: int,
        target_exponent: int,
        remittance_information: str | None = None,
    ) -> CrossBorderPayment:
        """From an FX payment's principal (fx_source) leg, which records its pricing."""
        fx = principal.fx
        if principal.kind != TransferKind.FX_SOURCE or fx is None:
            raise Iso20022Error("not_cross_border", f"{principal.id} is not an FX payment")
        from_source = fx.requested_side == "source"
        instructed = (
            Amount(fx.requested_amount, fx.source_currency, source_exponent)
            if from_source
            else Amount(fx.requested_amount, fx.target_currency, target_exponent)
        )
        return cls(
            message_id=message_id,
            created_at=created_at,
            end_to_end_id=principal.reference or short_reference(principal.id),
            transaction_id=short_reference(principal.id),
            uetr=uetr_for(principal.id),
            settlement_date=block_datetime(principal.created_at_ms).date(),
            settlement_amount=Amount(fx.target_amount, fx.target_currency, target_exponent),
            instructed_amount=instructed,
            exchange_rate=message_rate(fx.rate) if from_source else None,
            debtor=debtor,
            debtor_account=debtor_account,
            debtor_agent=debtor_agent,
            creditor=creditor,
            creditor_account=creditor_account,
            creditor_agent=creditor_agent,
            remittance_information=remittance_information,
        )


def export_pacs008(payment: CrossBorderPayment) -> bytes:
    """The payment as a pacs.008.001.08 document, validated against its XSD."""
    b = _Builder(PACS008)
    root = b.element("Document")
    transfer = b.add(root, "FIToFICstmrCdtTrf")
    header = b.add(transfer, "GrpHdr")
    b.add(header, "MsgId", payment.message_id)
    b.add(header, "CreDtTm", _timestamp(payment.created_at))
    b.add(header, "NbOfTxs", "1")
    b.add(b.add(header, "SttlmInf"), "SttlmMtd", payment.settlement_method)
    item = b.add(transfer, "CdtTrfTxInf")
    identification = b.add(item, "PmtId")
    b.add(identification, "InstrId", payment.transaction_id)
    b.add(identification, "EndToEndId", payment.end_to_end_id)
    b.add(identification, "TxId", payment.transaction_id)
    b.add(identification, "UETR", payment.uetr)
    b.amount(item, "IntrBkSttlmAmt", payment.settlement_amount)
    b.add(item, "IntrBkSttlmDt", payment.settlement_date.isoformat())
    if payment.instructed_amount is not None:
        b.amount(item, "InstdAmt", payment.instructed_amount)
    if payment.exchange_rate is not None:
        b.add(item, "XchgRate", payment.exchange_rate)
    b.add(item, "ChrgBr", payment.charge_bearer)
    if payment.instructing_agent is not None:
        b.agent(item, "InstgAgt", payment.instructing_agent)
    if payment.instructed_agent is not None:
        b.agent(item, "InstdAgt", payment.instructed_agent)
    b.party(item, "Dbtr", payment.debtor)
    b.account(item, "DbtrAcct", payment.debtor_account)
    b.agent(item, "DbtrAgt", payment.debtor_agent)
    b.agent(item, "CdtrAgt", payment.creditor_agent)
    b.party(item, "Cdtr", payment.creditor)
    b.account(item, "CdtrAcct", payment.creditor_account)
    if payment.remittance_information is not None:
        b.add(b.add(item, "RmtInf"), "Ustrd", payment.remittance_information)
    return b.finish(root)


# -- export: camt.053.001.08 ----------------------------------------------------------------------

CREDIT = "CRDT"
DEBIT = "DBIT"


@dataclass(frozen=True, slots=True)
class StatementLine:
    transfer_id: str
    booked_at: datetime
    amount: int  # minor units, positive
    direction: str  # CRDT or DBIT, from the account holder's side
    running_balance: int  # credits minus debits after this line
    end_to_end_id: str | None = None


@dataclass(frozen=True, slots=True)
class Statement:
    message_id: str
    statement_id: str
    sequence_number: int
    created_at: datetime
    from_time: datetime
    to_time: datetime
    account: CashAccount
    currency: str
    exponent: int
    opening_balance: int  # credits minus debits before the first line
    lines: tuple[StatementLine, ...]
    owner: Party | None = None
    servicer: Agent | None = None

    @property
    def closing_balance(self) -> int:
        return self.lines[-1].running_balance if self.lines else self.opening_balance


def statement_lines(
    *,
    account_id: str,
    transfers: Iterable[Transfer],
    opening_balance: int,
    booked_at: Callable[[Transfer], datetime],
) -> tuple[StatementLine, ...]:
    """Posted movements of one account, in the given (chain) order, with running balances.

    Holds and voids move no posted money and are left out; a post shows the posted amount.
    """
    lines = []
    balance = opening_balance
    for transfer in transfers:
        if transfer.is_pending or transfer.is_void:
            continue
        if transfer.credit_account_id == account_id:
            direction, balance = CREDIT, balance + transfer.amount
        elif transfer.debit_account_id == account_id:
            direction, balance = DEBIT, balance - transfer.amount
        else:
            continue
        lines.append(
            StatementLine(
                transfer_id=transfer.id,
                booked_at=booked_at(transfer),
                amount=transfer.amount,
                direction=direction,
                running_balance=balance,
                end_to_end_id=transfer.reference,
            )
        )
    return tuple(lines)


def _check_statement(statement: Statement) -> None:
    balance = statement.opening_balance
    for line in statement.lines:
        if line.amount <= 0 or line.direction not in (CREDIT, DEBIT):
            raise Iso20022Error("statement_inconsistent", f"line {line.transfer_id} is malformed")
        balance += line.amount if line.direction == CREDIT else -line.amount
        if balance != line.running_balance:
            raise Iso20022Error(
                "statement_inconsistent",
                f"line {line.transfer_id}: running balance {line.running_balance} != {balance}",
            )


def export_camt053(statement: Statement) -> bytes:
    """The statement as a camt.053.001.08 document, validated against its XSD."""
    _check_statement(statement)
    b = _Builder(CAMT053)
    money = functools.partial(Amount, currency=statement.currency, exponent=statement.exponent)
    root = b.element("Document")
    message = b.add(root, "BkToCstmrStmt")
    header = b.add(message, "GrpHdr")
    b.add(header, "MsgId", statement.message_id)
    b.add(header, "CreDtTm", _timestamp(statement.created_at))
    report = b.add(message, "Stmt")
    b.add(report, "Id", statement.statement_id)
    b.add(report, "ElctrncSeqNb", str(statement.sequence_number))
    b.add(report, "CreDtTm", _timestamp(statement.created_at))
    period = b.add(report, "FrToDt")
    b.add(period, "FrDtTm", _timestamp(statement.from_time))
    b.add(period, "ToDtTm", _timestamp(statement.to_time))
    account = b.add(report, "Acct")
    _account_id(b, account, statement.account)
    b.add(account, "Ccy", statement.currency)
    if statement.owner is not None:
        b.party(account, "Ownr", statement.owner)
    if statement.servicer is not None:
        b.agent(account, "Svcr", statement.servicer)
    for code, balance, moment in (
        ("OPBD", statement.opening_balance, statement.from_time),
        ("CLBD", statement.closing_balance, statement.to_time),
    ):
        element = b.add(report, "Bal")
        b.add(b.add(b.add(element, "Tp"), "CdOrPrtry"), "Cd", code)
        b.amount(element, "Amt", money(abs(balance)))
        b.add(element, "CdtDbtInd", CREDIT if balance >= 0 else DEBIT)
        b.add(b.add(element, "Dt"), "Dt", moment.date().isoformat())
    _summary(b, report, statement, money)
    for line in statement.lines:
        _entry(b, report, line, money)
    return b.finish(root)


def _account_id(b: _Builder, parent: ET.Element, account: CashAccount) -> None:
    identification = b.add(parent, "Id")
    if account.iban is not None:
        if not _is_iban(account.iban):
            raise Iso20022Error("iban_invalid", f"IBAN {account.iban} is not valid")
        b.add(identification, "IBAN", account.iban)
    elif account.other_id is not None:
        b.add(b.add(identification, "Othr"), "Id", account.other_id)
    else:
        raise Iso20022Error("account_missing", "an account needs an IBAN or another id")


def _summary(
    b: _Builder, report: ET.Element, statement: Statement, money: Callable[[int], Amount]
) -> None:
    summary = b.add(report, "TxsSummry")
    for name, direction in (("TtlCdtNtries", CREDIT), ("TtlDbtNtries", DEBIT)):
        lines = [line for line in statement.lines if line.direction == direction]
        totals = b.add(summary, name)
        b.add(totals, "NbOfNtries", str(len(lines)))
        b.add(totals, "Sum", money(sum(line.amount for line in lines)).text())


def _entry(
    b: _Builder, report: ET.Element, line: StatementLine, money: Callable[[int], Amount]
) -> None:
    reference = short_reference(line.transfer_id)
    entry = b.add(report, "Ntry")
    b.add(entry, "NtryRef", reference)
    b.amount(entry, "Amt", money(line.amount))
    b.add(entry, "CdtDbtInd", line.direction)
    b.add(b.add(entry, "Sts"), "Cd", "BOOK")
    b.add(b.add(entry, "BookgDt"), "DtTm", _timestamp(line.booked_at))
    b.add(b.add(entry, "ValDt"), "Dt", line.booked_at.date().isoformat())
    b.add(entry, "AcctSvcrRef", reference)
    domain = b.add(b.add(entry, "BkTxCd"), "Domn")
    b.add(domain, "Cd", "PMNT")
    family = b.add(domain, "Fmly")
    # Issued (ICDT) or received (RCDT) credit transfer, booked within one institution (BOOK).
    b.add(family, "Cd", "RCDT" if line.direction == CREDIT else "ICDT")
    b.add(family, "SubFmlyCd", "BOOK")
    references = b.add(b.add(b.add(entry, "NtryDtls"), "TxDtls"), "Refs")
    if line.end_to_end_id is not None:
        b.add(references, "EndToEndId", line.end_to_end_id)
    b.add(references, "AcctSvcrTxId", reference)
