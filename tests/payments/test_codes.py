"""The documented precedence tables are the ones the code follows, in docs and docstring alike."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from zhijin.payments import codes, limits
from zhijin.payments.codes import Code

DOCS = Path(__file__).resolve().parents[2] / "docs" / "payments.md"
_ROW = re.compile(r"^\| (\d+) \| (\w+) \| .* \|$")


def tables_after(text: str, heading: str) -> list[str]:
    """The codes of the first precedence table after `heading`, in order, checking numbering."""
    lines = text[text.index(heading) :].splitlines()
    rows: list[str] = []
    for line in lines[1:]:
        match = _ROW.match(line)
        if match:
            assert int(match.group(1)) == len(rows) + 1, line
            rows.append(match.group(2))
        elif rows:
            break
    return rows


DOC_TABLES = [
    ("### create_transfers (per item)", codes.TRANSFER_PRECEDENCE),
    ("### create_accounts (per item)", codes.ACCOUNT_PRECEDENCE),
    ("### set_account_status", codes.ACCOUNT_STATUS_PRECEDENCE),
    ("### set_fee_schedule", codes.FEE_SCHEDULE_PRECEDENCE),
    ("### create_fx_quote", codes.FX_QUOTE_PRECEDENCE),
    ("### pay_fx", codes.FX_PAYMENT_PRECEDENCE),
    ("### refund_transfer", codes.REFUND_PRECEDENCE),
    ("### import_transfers (one part of a file)", codes.FILE_PART_PRECEDENCE),
]


@pytest.mark.parametrize(("heading", "table"), DOC_TABLES)
def test_docs_list_each_precedence_table_in_order(heading: str, table: tuple[Code, ...]) -> None:
    assert tables_after(DOCS.read_text(), heading) == [code.value for code in table]


@pytest.mark.parametrize(
    ("heading", "table"),
    [
        ("create_transfers, per item", codes.TRANSFER_PRECEDENCE),
        ("create_accounts, per item", codes.ACCOUNT_PRECEDENCE),
    ],
)
def test_the_docstring_tables_match_too(heading: str, table: tuple[Code, ...]) -> None:
    assert codes.__doc__ is not None
    assert tables_after(codes.__doc__, heading) == [code.value for code in table]


def test_every_code_is_unique_snake_case() -> None:
    values = [code.value for code in Code]
    assert len(values) == len(set(values))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", value) for value in values)
    for _, table in DOC_TABLES:
        assert len(table) == len(set(table))


def test_limits_fit_the_chain() -> None:
    from zhijin.chain import limits as chain_limits

    assert (
        limits.TRANSFERS_PER_BATCH_MAX * limits.WRITES_PER_TRANSFER_MAX
        <= chain_limits.WRITES_PER_TX_MAX
    )
    assert (
        limits.TRANSFERS_PER_BATCH_MAX * limits.EVENTS_PER_TRANSFER_MAX
        <= chain_limits.EVENTS_PER_TX_MAX
    )
    assert limits.AMOUNT_MAX == 2**63 - 1
