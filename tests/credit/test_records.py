"""Credit's records against the codec: canonical bytes and a lossless round trip."""

from __future__ import annotations

from typing import Any

import pytest

from tests.credit.helpers import CARD, POLICY, SHA_A
from zhijin.chain.codec import canonical, decode
from zhijin.credit.records import DecisionAnchor, ModelRecord, PolicyRecord, Repayment

RECORDS: list[Any] = [
    ModelRecord(SHA_A, "german", "1", CARD, "did:key:z6MkBank", "u-1", "approved", "u-2",
                1, 10, 2, 20, None, None, "d" * 64),
    PolicyRecord("retail", 1, "did:key:z6MkBank", "u-3", POLICY, 3, 30, "e" * 64),
    DecisionAnchor("d-1", "f" * 64, SHA_A, "retail", 1, "did:key:z6MkBank", 4, 40, "a" * 64),
    Repayment("r-1", "did:key:z6MkAlice", "did:key:z6MkBank", 100, None, 5, "b" * 64),
]  # fmt: skip


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_record_round_trips_through_the_codec(record: Any) -> None:
    assert record.canonical() == canonical(record.to_json())
    assert type(record).from_json(decode(record.canonical())) == record
