"""The contract's `import_transfers`: a file's message id is claimed on chain with its first
part, so two files under one message id never both book, even in one block."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from zhijin.chain.codec import canonical

from .helpers import ALICE, BANK, Call, Chain, world
from .pain001 import Pain001, PaymentInfo, Tx, build
from .test_iso20022 import CAROL_IBAN, parse


def _file(message_id: str, ends: list[str], **document: Any) -> bytes:
    txs = [Tx(end, "1.00", creditor_iban=CAROL_IBAN) for end in ends]
    return build(Pain001(message_id, [PaymentInfo("PI-1", txs)], **document))


def _parts(xml: bytes, *, linked: bool = False) -> list[dict[str, Any]]:
    imported = parse(xml)
    batches = imported.transfer_batches(linked=linked) or [{"transfers": []}]
    message = {
        "key": imported.message_key,
        "digest": hashlib.sha256(xml).hexdigest(),
        "plan": hashlib.sha256(canonical(batches)).hexdigest(),
        "parts": len(batches),
    }
    return [
        {"message": {**message, "part": part}, "transfers": batch["transfers"]}
        for part, batch in enumerate(batches)
    ]


def test_two_files_under_one_msg_id_in_one_block_book_only_the_first() -> None:
    chain = world()
    first, second = _file("M-1", ["a", "b"]), _file("M-1", ["c", "d"])
    outcomes = chain.block(
        [Call("import_transfers", _parts(xml)[0], ALICE) for xml in (first, second)]
    )
    assert outcomes[0].ok and outcomes[0].value["ok"] == 2
    assert (outcomes[1].ok, outcomes[1].code) == (False, "msg_id_reused")
    assert chain.balance("carol-eur") == 1_000_000 + 200


def test_the_same_file_again_is_refused_and_changes_nothing() -> None:
    chain = world()
    xml = _file("M-2", ["a"])
    assert chain.ok("import_transfers", _parts(xml)[0], sender=ALICE)["ok"] == 1
    assert chain.fails("import_transfers", _parts(xml)[0], sender=ALICE) == "msg_id_reused"


def test_parts_follow_in_order_once_each_and_only_of_the_claiming_file() -> None:
    chain = world()
    ends = [f"e{index}" for index in range(250)]
    parts = _parts(_file("M-3", ends))
    assert [p["message"]["part"] for p in parts] == [0, 1, 2]
    assert chain.fails("import_transfers", parts[1], sender=ALICE) == "message_invalid"
    chain.ok("import_transfers", parts[0], sender=ALICE)
    assert chain.fails("import_transfers", parts[2], sender=ALICE) == "message_invalid"
    other = _parts(_file("M-3", [f"x{index}" for index in range(250)]))
    assert chain.fails("import_transfers", other[1], sender=ALICE) == "msg_id_reused"
    # The same bytes whose accounts now resolve otherwise (another plan) are another file.
    replanned = {**parts[1], "message": {**parts[1]["message"], "plan": "1" * 64}}
    assert chain.fails("import_transfers", replanned, sender=ALICE) == "msg_id_reused"
    chain.ok("import_transfers", parts[1], sender=ALICE)
    assert chain.fails("import_transfers", parts[1], sender=ALICE) == "msg_id_reused"
    chain.ok("import_transfers", parts[2], sender=ALICE)
    assert chain.balance("carol-eur") == 1_000_000 + 250 * 100


def test_a_claim_is_the_senders_own() -> None:
    chain = world()
    xml = _file("M-4", ["a"])
    chain.ok("import_transfers", _parts(xml)[0], sender=ALICE)
    # The same message key sent by another sender is that sender's claim, not Alice's.
    claim = _parts(xml)[0]
    assert chain.ok("import_transfers", {**claim, "transfers": []}, sender=BANK.did)["ok"] == 0
    claims = {k: v for k, v in chain.state.raw.items() if k.startswith("payments/message/")}
    assert len(claims) == 2
    assert all(b"M-4" not in key.encode() + value for key, value in claims.items())


def test_initiating_party_ids_make_their_own_keys_and_transfer_ids() -> None:
    plain = parse(_file("M-5", ["a"]))
    one = parse(_file("M-5", ["a"], initiating_party_id="PARTY-1"))
    two = parse(_file("M-5", ["a"], initiating_party_id="PARTY-2"))
    assert len({plain.message_key, one.message_key, two.message_key}) == 3
    ids = {f.accepted[0].transfer_id for f in (plain, one, two)}
    assert len(ids) == 3
    assert one.initiating_party == (("Id/OrgId/Othr/Id", "PARTY-1"),)
    assert plain.initiating_party is None
    # The key hides the MsgId and the party's id: neither appears in it.
    assert "M-5" not in one.message_key and "PARTY-1" not in one.message_key


@pytest.mark.parametrize(
    "change",
    [
        {"message": None},
        {"message": {"key": "x", "digest": "0" * 64, "plan": "0" * 64, "part": 0, "parts": 1}},
        {"message": {"key": "0" * 64, "digest": "0" * 64, "plan": "0" * 64, "part": 1, "parts": 1}},
        {"message": {"key": "0" * 64, "digest": "0" * 64, "plan": "0" * 64, "part": 0, "parts": 0}},
        {
            "message": {
                "key": "0" * 64,
                "digest": "0" * 64,
                "plan": "0" * 64,
                "part": True,
                "parts": 2,
            }
        },
        {
            "message": {
                "key": "0" * 64,
                "digest": "0" * 64,
                "plan": "0" * 64,
                "part": 0,
                "parts": 101,
            }
        },
        {
            "message": {
                "key": "0" * 64,
                "digest": "0" * 64,
                "plan": "0" * 64,
                "part": 0,
                "parts": 2,
            },
            "transfers": [],
        },
        {
            "message": {
                "key": "0" * 64,
                "digest": "0" * 64,
                "plan": "0" * 64,
                "part": 0,
                "parts": 1,
                "more": 1,
            }
        },
    ],
)
def test_malformed_parts_are_refused_whole(change: dict[str, Any]) -> None:
    chain = Chain()
    args = {"message": {}, "transfers": [], **change}
    assert chain.fails("import_transfers", args, sender=ALICE) == "message_invalid"


def test_a_malformed_transfer_list_is_refused_whole() -> None:
    chain = Chain()
    message = {"key": "0" * 64, "digest": "0" * 64, "plan": "0" * 64, "part": 0, "parts": 1}
    for args in ({"message": message}, {"message": message, "transfers": [{}] * 101}):
        assert chain.fails("import_transfers", args, sender=ALICE) == "batch_invalid"
