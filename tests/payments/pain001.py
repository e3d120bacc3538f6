"""Build pain.001.001.09 test files from a few plain values."""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"


@dataclass
class Tx:
    end_to_end_id: str
    amount: str
    currency: str = "EUR"
    creditor_iban: str | None = "DE89370400440532013000"
    creditor_other_id: str | None = None
    creditor_bic: str | None = "COBADEFFXXX"
    creditor_name: str = "Creditor GmbH"


@dataclass
class PaymentInfo:
    payment_information_id: str
    transactions: list[Tx]
    debtor_iban: str | None = "GB82WEST12345698765432"
    debtor_other_id: str | None = None
    debtor_bic: str = "WESTGB2L"
    method: str = "TRF"
    number_of_transactions: str | None = None  # default: the right count
    control_sum: str | None = None


@dataclass
class Pain001:
    message_id: str
    payments: list[PaymentInfo]
    number_of_transactions: str | None = None
    control_sum: str | None = None
    extra_header: str = ""  # raw XML inserted in GrpHdr, to break the schema on purpose
    created_at: str = "2024-05-01T09:30:00+08:00"
    initiating_party: str = "Zhijin Trading Co"
    initiating_party_id: str | None = None  # an OrgId/Othr/Id, e.g. a unified social credit code
    raw: list[str] = field(default_factory=list)


def _account(iban: str | None, other_id: str | None) -> str:
    if iban is not None:
        return f"<Id><IBAN>{escape(iban)}</IBAN></Id>"
    return f"<Id><Othr><Id>{escape(other_id or '')}</Id></Othr></Id>"


def build(document: Pain001) -> bytes:
    count = sum(len(p.transactions) for p in document.payments)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<Document xmlns="{NAMESPACE}"><CstmrCdtTrfInitn><GrpHdr>',
        f"<MsgId>{escape(document.message_id)}</MsgId>",
        f"<CreDtTm>{document.created_at}</CreDtTm>",
        f"<NbOfTxs>{document.number_of_transactions or count}</NbOfTxs>",
    ]
    if document.control_sum is not None:
        parts.append(f"<CtrlSum>{document.control_sum}</CtrlSum>")
    parts.append(document.extra_header)
    party_id = (
        ""
        if document.initiating_party_id is None
        else f"<Id><OrgId><Othr><Id>{escape(document.initiating_party_id)}</Id></Othr></OrgId></Id>"
    )
    parts.append(
        f"<InitgPty><Nm>{escape(document.initiating_party)}</Nm>{party_id}</InitgPty></GrpHdr>"
    )
    for payment in document.payments:
        parts.append(
            f"<PmtInf><PmtInfId>{escape(payment.payment_information_id)}</PmtInfId>"
            f"<PmtMtd>{payment.method}</PmtMtd>"
        )
        if payment.number_of_transactions is not None:
            parts.append(f"<NbOfTxs>{payment.number_of_transactions}</NbOfTxs>")
        if payment.control_sum is not None:
            parts.append(f"<CtrlSum>{payment.control_sum}</CtrlSum>")
        parts.append(
            "<ReqdExctnDt><Dt>2024-05-02</Dt></ReqdExctnDt><Dbtr><Nm>Debtor</Nm></Dbtr>"
            f"<DbtrAcct>{_account(payment.debtor_iban, payment.debtor_other_id)}</DbtrAcct>"
            f"<DbtrAgt><FinInstnId><BICFI>{payment.debtor_bic}</BICFI></FinInstnId></DbtrAgt>"
        )
        for tx in payment.transactions:
            parts.append(
                f"<CdtTrfTxInf><PmtId><EndToEndId>{escape(tx.end_to_end_id)}</EndToEndId></PmtId>"
                f'<Amt><InstdAmt Ccy="{tx.currency}">{tx.amount}</InstdAmt></Amt>'
            )
            if tx.creditor_bic is not None:
                parts.append(
                    f"<CdtrAgt><FinInstnId><BICFI>{tx.creditor_bic}</BICFI></FinInstnId></CdtrAgt>"
                )
            parts.append(f"<Cdtr><Nm>{escape(tx.creditor_name)}</Nm></Cdtr>")
            if tx.creditor_iban is not None or tx.creditor_other_id is not None:
                parts.append(
                    f"<CdtrAcct>{_account(tx.creditor_iban, tx.creditor_other_id)}</CdtrAcct>"
                )
            parts.append("<RmtInf><Ustrd>Invoice</Ustrd></RmtInf></CdtTrfTxInf>")
        parts.append("</PmtInf>")
    parts.extend(document.raw)
    parts.append("</CstmrCdtTrfInitn></Document>")
    return "".join(parts).encode()
