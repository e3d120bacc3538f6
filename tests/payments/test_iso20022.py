"""ISO 20022: pain.001 import with per-item reasons, pacs.008 and camt.053 export, all against the
XSDs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from zhijin.payments import iso20022 as iso
from zhijin.payments.queries import read_transfer, scan_all
from zhijin.payments.records import Transfer, keys

from .helpers import ALICE, BANK, FX_BANK, Chain, world
from .pain001 import Pain001, PaymentInfo, Tx, build

ALICE_IBAN = "GB82WEST12345698765432"
BOB_IBAN = "DE89370400440532013000"
CAROL_IBAN = "FR1420041010050500013M02606"
UNKNOWN_IBAN = "NL91ABNA0417164300"
BAD_CHECKSUM_IBAN = "DE89370400440532013001"
DIRECTORY = {
    ALICE_IBAN: ("alice-eur", "EUR"),
    BOB_IBAN: ("bob-eur", "EUR"),
    CAROL_IBAN: ("carol-eur", "EUR"),
    "alice-usd": ("alice-usd", "USD"),
}


def resolve(identification: iso.AccountIdentification) -> iso.ResolvedAccount | None:
    hit = DIRECTORY.get(identification.iban or identification.other_id or "")
    return None if hit is None else iso.ResolvedAccount(*hit)


def parse(document: Pain001 | bytes) -> iso.Pain001Import:
    data = document if isinstance(document, bytes) else build(document)
    return iso.parse_pain001(data, resolve_account=resolve, id_namespace=ALICE)


def test_a_file_becomes_transfers_with_each_rejection_named() -> None:
    imported = parse(
        Pain001(
            "MSG-1",
            [
                PaymentInfo(
                    "PI-1",
                    [
                        Tx("ok-1", "10.50"),
                        Tx("ok-2", "7", creditor_iban=CAROL_IBAN),
                        Tx("bad-precision", "1.234"),
                        Tx("bad-currency", "5", currency="XYZ"),
                        Tx("bad-iban", "5", creditor_iban=BAD_CHECKSUM_IBAN),
                        Tx("bad-bic", "5", creditor_bic="ABCDXX22"),
                        Tx("zero", "0"),
                        Tx("unknown-creditor", "5", creditor_iban=UNKNOWN_IBAN),
                        Tx("no-creditor", "5", creditor_iban=None),
                        Tx("other-currency", "5", currency="USD"),
                        Tx("ok-1", "3"),
                        Tx("self", "5", creditor_iban=ALICE_IBAN),
                    ],
                ),
                PaymentInfo("PI-2", [Tx("a", "1"), Tx("b", "2")], debtor_iban=UNKNOWN_IBAN),
                PaymentInfo("PI-3", [Tx("c", "1")], method="CHK"),
            ],
        )
    )
    assert imported.message_id == "MSG-1"
    assert [(t.end_to_end_id, t.amount, t.credit_account_id) for t in imported.accepted] == [
        ("ok-1", 1_050, "bob-eur"),
        ("ok-2", 700, "carol-eur"),
    ]
    assert [(r.end_to_end_id, r.code) for r in imported.rejected] == [
        ("bad-precision", "amount_precision"),
        ("bad-currency", "currency_invalid"),
        ("bad-iban", "iban_invalid"),
        ("bad-bic", "bic_invalid"),
        ("zero", "amount_must_be_positive"),
        ("unknown-creditor", "creditor_account_unknown"),
        ("no-creditor", "creditor_account_missing"),
        ("other-currency", "currency_mismatch"),
        ("ok-1", "duplicate_end_to_end_id"),
        ("self", "accounts_must_be_different"),
        ("a", "debtor_account_unknown"),
        ("b", "debtor_account_unknown"),
        ("c", "payment_method_not_supported"),
    ]
    assert [r.index for r in imported.rejected][-3:] == [12, 13, 14]


def test_an_equivalent_amount_is_named_not_guessed() -> None:
    document = build(Pain001("MSG-E", [PaymentInfo("PI-1", [Tx("e", "1")])]))
    document = document.replace(
        b'<InstdAmt Ccy="EUR">1</InstdAmt>',
        b'<EqvtAmt><Amt Ccy="USD">1</Amt><CcyOfTrf>EUR</CcyOfTrf></EqvtAmt>',
    )
    (rejected,) = parse(document).rejected
    assert rejected.code == "equivalent_amount_not_supported"


def test_ids_are_stable_per_uploader_and_file() -> None:
    document = Pain001("MSG-1", [PaymentInfo("PI-1", [Tx("e2e", "1")])])
    first, again = parse(document), parse(document)
    assert first.accepted[0].transfer_id == again.accepted[0].transfer_id
    other = iso.parse_pain001(build(document), resolve_account=resolve, id_namespace=BANK.did)
    assert other.accepted[0].transfer_id != first.accepted[0].transfer_id
    assert first.accepted[0].transfer_id.startswith("p1-")


def import_into(chain: Chain, imported: iso.Pain001Import, *, linked: bool) -> list[str]:
    results = []
    for args in imported.transfer_batches(linked=linked):
        value = chain.ok("create_transfers", args, sender=ALICE)
        results += [r["result"] if not r.get("exists") else "exists" for r in value["results"]]
    return results


def test_importing_books_the_valid_transfers_once() -> None:
    chain = world()
    document = Pain001(
        "MSG-2", [PaymentInfo("PI-1", [Tx("x", "1.00"), Tx("y", "2.5", creditor_iban=CAROL_IBAN)])]
    )
    imported = parse(document)
    assert import_into(chain, imported, linked=False) == ["ok", "ok"]
    assert chain.balance("carol-eur") == 1_000_000 + 250
    assert import_into(chain, parse(document), linked=False) == ["exists", "exists"]
    transfer = read_transfer(chain.state, imported.accepted[0].transfer_id)
    assert transfer is not None and transfer.reference == "x"


def test_a_linked_import_books_all_or_nothing() -> None:
    chain = world()
    document = Pain001(
        "MSG-3",
        [PaymentInfo("PI-1", [Tx("small", "1"), Tx("huge", "9999999", creditor_iban=CAROL_IBAN)])],
    )
    before = chain.state.data
    assert import_into(chain, parse(document), linked=True) == [
        "linked_event_failed",
        "exceeds_credits",
    ]
    assert chain.state.data == before


def test_batches_respect_the_batch_size() -> None:
    txs = [Tx(f"e{i}", "1") for i in range(250)]
    imported = parse(Pain001("MSG-4", [PaymentInfo("PI-1", txs)]))
    assert [len(b["transfers"]) for b in imported.transfer_batches(linked=False)] == [100, 100, 50]
    with pytest.raises(iso.Iso20022Error) as error:
        imported.transfer_batches(linked=True)
    assert error.value.code == "batch_too_large_to_link"


@pytest.mark.parametrize(
    ("document", "code"),
    [
        (b"<Document><unclosed></Document>", "pain001_invalid"),
        (b"", "pain001_invalid"),
        (
            build(Pain001("", [PaymentInfo("PI-1", [Tx("e", "1")])])),  # MsgId is Max35Text, 1+
            "pain001_invalid",
        ),
        (
            build(Pain001("M", [PaymentInfo("PI-1", [Tx("e", "1")])], extra_header="<Bogus/>")),
            "pain001_invalid",
        ),
        (build(Pain001("M", [PaymentInfo("PI-1", [Tx("e", "-1")])])), "pain001_invalid"),
        (build(Pain001("M", [PaymentInfo("PI-1", [Tx("e", "1.123456")])])), "pain001_invalid"),
        (
            build(Pain001("M", [PaymentInfo("PI-1", [Tx("e", "1", currency="eur")])])),
            "pain001_invalid",
        ),
        (
            build(Pain001("M", [PaymentInfo("PI-1", [Tx("e", "1")])], number_of_transactions="2")),
            "pain001_control_mismatch",
        ),
        (
            build(Pain001("M", [PaymentInfo("PI-1", [Tx("e", "1")])], control_sum="1.01")),
            "pain001_control_mismatch",
        ),
        (
            build(Pain001("M", [PaymentInfo("PI-1", [Tx("e", "1")], number_of_transactions="3")])),
            "pain001_control_mismatch",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "xx">]>'
            b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09">&x;</Document>',
            "pain001_invalid",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09">&x;</Document>',
            "pain001_invalid",
        ),
    ],
)
def test_a_file_that_does_not_validate_is_refused_whole(document: bytes, code: str) -> None:
    with pytest.raises(iso.Iso20022Error) as error:
        parse(document)
    assert error.value.code == code
    if code == "pain001_invalid":
        assert error.value.details["errors"]


def test_the_shared_version_08_sample_is_not_a_version_09_file(shared_dir: Path) -> None:
    sample = (shared_dir / "iso20022" / "pain001_001_08.xml").read_bytes()
    with pytest.raises(iso.Iso20022Error) as error:
        parse(sample)
    assert error.value.code == "pain001_invalid"


def test_a_control_sum_that_matches_is_accepted() -> None:
    document = Pain001(
        "M",
        [PaymentInfo("PI-1", [Tx("a", "1.50"), Tx("b", "2")], control_sum="3.5")],
        control_sum="3.50",
    )
    assert len(parse(document).accepted) == 2


def test_files_larger_than_the_limit_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(iso.limits, "PAIN001_BYTES_MAX", 100)
    with pytest.raises(iso.Iso20022Error) as error:
        parse(Pain001("M", [PaymentInfo("PI-1", [Tx("e", "1")])]))
    assert error.value.code == "pain001_too_large"


def test_packaged_schemas_match_the_shared_ones(shared_dir: Path) -> None:
    for name in ("pain.001.001.09.xsd", "pacs.008.001.08.xsd", "camt.053.001.08.xsd", "LICENSE"):
        assert (iso.SCHEMA_DIR / name).read_bytes() == (shared_dir / "iso20022" / name).read_bytes()
    assert "MIT License" in (iso.SCHEMA_DIR / "LICENSE").read_text()


# -- pacs.008 -------------------------------------------------------------------------------------

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def decode(message: str, data: bytes) -> Any:
    return xmlschema.XMLSchema(str(iso.SCHEMA_DIR / f"{message}.xsd")).to_dict(data)


def fx_payment(side: str = "source_amount") -> tuple[Chain, Transfer]:
    chain = world()
    chain.ok(
        "create_fx_quote",
        {
            "id": "q-1",
            "source_currency": "EUR",
            "target_currency": "CNY",
            "rate": "7.812345678912",
            "spread_bps": 20,
            "expires_at_ms": chain.time_ms + 60_000,
            "source_liquidity_account_id": "fx-eur",
            "target_liquidity_account_id": "fx-cny",
        },
        sender=FX_BANK.did,
    )
    chain.ok(
        "pay_fx",
        {
            "id": "xb-1",
            "quote_id": "q-1",
            "debit_account_id": "alice-eur",
            "credit_account_id": "bob-cny",
            side: 12_345,
            "reference": "INV-2024-001",
        },
        sender=ALICE,
    )
    principal = read_transfer(chain.state, "xb-1")
    assert principal is not None
    return chain, principal


def cross_border(principal: Transfer, **changes: Any) -> iso.CrossBorderPayment:
    payment = iso.CrossBorderPayment.from_transfer(
        principal,
        message_id="ZJ-MSG-1",
        created_at=NOW,
        debtor=iso.Party("Alice Example", "GB"),
        debtor_account=iso.CashAccount(iban=ALICE_IBAN),
        debtor_agent=iso.Agent("WESTGB2L"),
        creditor=iso.Party("Bob Example", "CN"),
        creditor_account=iso.CashAccount(other_id="6222020200112233445"),
        creditor_agent=iso.Agent("ICBKCNBJ"),
        source_exponent=2,
        target_exponent=2,
        remittance_information="Invoice 2024-001",
    )
    return replace(payment, **changes)


def test_a_cross_border_payment_exports_as_a_valid_pacs008() -> None:
    _, principal = fx_payment()
    assert principal.fx is not None
    data = iso.export_pacs008(cross_border(principal))
    document = decode("pacs.008.001.08", data)["FIToFICstmrCdtTrf"]
    item = document["CdtTrfTxInf"][0]
    assert item["IntrBkSttlmAmt"]["@Ccy"] == "CNY"
    assert data.count(b'<IntrBkSttlmAmt Ccy="CNY">') == 1
    expected_target = f"{principal.fx.target_amount // 100}.{principal.fx.target_amount % 100:02d}"
    assert f'<IntrBkSttlmAmt Ccy="CNY">{expected_target}</IntrBkSttlmAmt>'.encode() in data
    assert b'<InstdAmt Ccy="EUR">123.45</InstdAmt>' in data
    assert b"<XchgRate>7.8123456789</XchgRate>" in data  # rounded half-even to fit BaseOneRate
    assert item["PmtId"]["EndToEndId"] == "INV-2024-001"
    assert item["PmtId"]["UETR"] == iso.uetr_for("xb-1")
    assert iso.export_pacs008(cross_border(principal)) == data  # deterministic


def test_a_target_side_payment_states_the_target_as_instructed() -> None:
    _, principal = fx_payment("target_amount")
    data = iso.export_pacs008(cross_border(principal))
    assert b'<InstdAmt Ccy="CNY">123.45</InstdAmt>' in data
    assert b"<XchgRate>" not in data


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"debtor_account": iso.CashAccount(iban=BAD_CHECKSUM_IBAN)}, "iban_invalid"),
        ({"creditor_agent": iso.Agent("ICBKXX22")}, "bic_invalid"),
        ({"debtor_account": iso.CashAccount()}, "account_missing"),
        ({"message_id": "M" * 36}, "export_invalid"),
        # An int64 amount can have more digits than ISO 20022 amounts (18) allow.
        ({"settlement_amount": iso.Amount(2**63 - 1, "CNY", 2)}, "export_invalid"),
        ({"charge_bearer": "ME"}, "export_invalid"),
    ],
)
def test_export_refuses_what_would_not_validate(changes: dict[str, Any], code: str) -> None:
    _, principal = fx_payment()
    with pytest.raises(iso.Iso20022Error) as error:
        iso.export_pacs008(cross_border(principal, **changes))
    assert error.value.code == code


def test_only_fx_payments_are_cross_border() -> None:
    chain, _ = fx_payment()
    plain = read_transfer(chain.state, "dep-alice-cny")
    assert plain is not None
    with pytest.raises(iso.Iso20022Error) as error:
        cross_border(plain)
    assert error.value.code == "not_cross_border"


def test_naive_datetimes_are_refused() -> None:
    _, principal = fx_payment()
    with pytest.raises(ValueError):
        iso.export_pacs008(cross_border(principal, created_at=datetime(2024, 5, 1)))


# -- camt.053 -------------------------------------------------------------------------------------


def test_a_statement_exports_as_a_valid_camt053_with_running_balances() -> None:
    chain, _ = fx_payment()
    chain.transfer(
        sender=ALICE,
        id="t-1",
        debit_account_id="alice-eur",
        credit_account_id="bob-eur",
        amount=2_000,
        currency="EUR",
        reference="E2E-9",
    )
    chain.transfer(
        sender=ALICE,
        id="h-1",
        debit_account_id="alice-eur",
        credit_account_id="bob-eur",
        amount=1,
        currency="EUR",
        flags=["pending"],
    )
    transfers = sorted(
        (Transfer.from_json(data) for _, data in scan_all(chain.state, keys.TRANSFER)),
        key=lambda t: (t.created_height, t.id),
    )
    lines = iso.statement_lines(
        account_id="alice-eur",
        transfers=transfers,
        opening_balance=0,
        booked_at=lambda t: iso.block_datetime(t.created_at_ms),
    )
    assert [(line.transfer_id, line.direction) for line in lines] == [
        ("dep-alice-eur", "CRDT"),
        ("xb-1", "DBIT"),
        ("xb-1~spread", "DBIT"),
        ("t-1", "DBIT"),
    ]
    assert lines[-1].running_balance == chain.balance("alice-eur")
    statement = iso.Statement(
        message_id="STMT-1",
        statement_id="alice-eur-2024-05",
        sequence_number=1,
        created_at=NOW,
        from_time=datetime(2023, 11, 1, tzinfo=UTC),
        to_time=NOW,
        account=iso.CashAccount(iban=ALICE_IBAN),
        currency="EUR",
        exponent=2,
        opening_balance=0,
        lines=lines,
        owner=iso.Party("Alice Example"),
        servicer=iso.Agent("WESTGB2L"),
    )
    data = iso.export_camt053(statement)
    report = decode("camt.053.001.08", data)["BkToCstmrStmt"]["Stmt"][0]
    balances = {b["Tp"]["CdOrPrtry"]["Cd"]: b for b in report["Bal"]}
    assert balances["OPBD"]["CdtDbtInd"] == "CRDT"
    assert len(report["Ntry"]) == 4
    closing = chain.balance("alice-eur")
    assert f'<Amt Ccy="EUR">{closing // 100}.{closing % 100:02d}</Amt>'.encode() in data
    assert b"<EndToEndId>E2E-9</EndToEndId>" in data


def test_a_negative_balance_is_a_debit_balance() -> None:
    statement = iso.Statement(
        message_id="S",
        statement_id="S",
        sequence_number=1,
        created_at=NOW,
        from_time=NOW,
        to_time=NOW,
        account=iso.CashAccount(other_id="loan-1"),
        currency="JPY",
        exponent=0,
        opening_balance=-500,
        lines=(iso.StatementLine("t", NOW, 100, "DBIT", -600),),
    )
    data = iso.export_camt053(statement)
    assert b'<Amt Ccy="JPY">600</Amt><CdtDbtInd>DBIT</CdtDbtInd>' in data


def test_an_inconsistent_statement_is_refused() -> None:
    statement = iso.Statement(
        message_id="S",
        statement_id="S",
        sequence_number=1,
        created_at=NOW,
        from_time=NOW,
        to_time=NOW,
        account=iso.CashAccount(other_id="a"),
        currency="CNY",
        exponent=2,
        opening_balance=0,
        lines=(iso.StatementLine("t", NOW, 100, "CRDT", 99),),
    )
    with pytest.raises(iso.Iso20022Error) as error:
        iso.export_camt053(statement)
    assert error.value.code == "statement_inconsistent"


def test_message_rate() -> None:
    assert iso.message_rate("0.1385") == "0.1385"
    assert iso.message_rate("7.123456789012") == "7.123456789"
    assert iso.message_rate("123456789012.5") is None
    assert iso.message_rate("0.000000000001") is None
    assert iso.block_datetime(0) == datetime(1970, 1, 1, tzinfo=UTC)
