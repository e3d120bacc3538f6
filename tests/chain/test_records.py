"""Typed records in the runtime: `get_record` decodes a value at most once per block and shares
the record; `put_record` stages what `put` would and keeps the record for later reads; a failed
tx, a later write or a deletion is never hidden by a kept record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from zhijin.chain.codec import canonical, utf8
from zhijin.chain.contract import (
    BlockInfo,
    BlockState,
    Context,
    Contract,
    ContractRegistry,
    TxInfo,
    execute_tx,
)
from zhijin.chain.errors import ContractError, EncodingError
from zhijin.chain.memory import MemoryState

BLOCK = BlockInfo(chain_id="zhijin-test", height=1, time_ms=1_790_000_000_000)


@dataclass(frozen=True, slots=True)
class Tally:
    """A test record that counts how often it is parsed."""

    name: str
    count: int

    parsed: ClassVar[int] = 0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "count": self.count}

    def canonical(self) -> bytes:
        return canonical(self.to_json())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tally:
        Tally.parsed += 1
        return cls(data["name"], data["count"])


def tx(number: int, method: str) -> TxInfo:
    return TxInfo(
        tx_hash=f"{number:064x}",
        sender="did:key:sender",
        signer="did:key:sender",
        nonce=number,
        contract="probe",
        method=method,
    )


def bump(ctx: Context, args: dict[str, Any]) -> Any:
    """Add one to the tally; with "fail", refuse after staging the write."""
    tally = ctx.get_record("probe/t", Tally)
    assert tally is not None
    ctx.put_record("probe/t", Tally(tally.name, tally.count + 1))
    if args.get("fail"):
        raise ContractError("refused", "after the write")
    return tally.count + 1


def read(ctx: Context, args: dict[str, Any]) -> Any:
    tally = ctx.get_record("probe/t", Tally)
    return None if tally is None else tally.count


def overwrite(ctx: Context, args: dict[str, Any]) -> Any:
    ctx.put("probe/t", {"name": "t", "count": args["count"]})


def remove(ctx: Context, args: dict[str, Any]) -> Any:
    ctx.delete("probe/t")


PROBE = Contract(
    name="probe",
    version="1",
    methods={"bump": bump, "read": read, "overwrite": overwrite, "remove": remove},
)


class Block:
    def __init__(self) -> None:
        self.state = BlockState(MemoryState({"probe/t": {"name": "t", "count": 0}}))
        self.registry = ContractRegistry([PROBE])
        self.number = 0

    def run(self, method: str, **args: Any) -> Any:
        self.number += 1
        outcome = execute_tx(self.registry, self.state, tx(self.number, method), BLOCK, args)
        return outcome.value if outcome.ok else outcome.code


@pytest.fixture(autouse=True)
def reset_tally() -> None:
    Tally.parsed = 0


def test_a_committed_record_is_decoded_once_per_block_and_shared() -> None:
    block = Block()
    ctx = Context(
        registry=block.registry, state=block.state, tx=tx(1, "read"), block=BLOCK, contract="probe"
    )
    first = ctx.get_record("probe/t", Tally)
    assert first is not None and first is ctx.get_record("probe/t", Tally)
    assert [block.run("read") for _ in range(3)] == [0, 0, 0]
    assert Tally.parsed == 1


def test_a_record_written_by_a_tx_is_read_by_the_next_without_decoding() -> None:
    block = Block()
    assert [block.run("bump") for _ in range(3)] == [1, 2, 3]
    assert block.run("read") == 3
    assert Tally.parsed == 1  # the committed value; every later read got the record written


def test_a_failed_tx_leaves_no_record_behind() -> None:
    block = Block()
    assert block.run("bump") == 1
    assert block.run("bump", fail=True) == "refused"
    assert block.run("read") == 1
    assert block.run("bump") == 2


def test_a_plain_write_or_a_deletion_is_never_hidden_by_a_kept_record() -> None:
    block = Block()
    assert block.run("bump") == 1
    assert block.run("overwrite", count=7) is None
    assert block.run("read") == 7
    assert block.run("remove") is None
    assert block.run("read") is None


def test_records_are_kept_per_block() -> None:
    block = Block()
    block.run("read")
    block.state = BlockState(block.state.reader)
    block.run("read")
    assert Tally.parsed == 2


def test_put_record_stages_and_emits_exactly_what_put_does() -> None:
    record = Tally("t", 5)

    def context() -> Context:
        return Context(
            registry=ContractRegistry(),
            state=BlockState(MemoryState()),
            tx=tx(1, "bump"),
            block=BLOCK,
            contract="probe",
        )

    by_record, by_value = context(), context()
    by_record.put_record("probe/t", record, event="counted")
    by_value.put("probe/t", record.to_json(), event="counted")
    assert by_record.staged() == by_value.staged()
    assert by_record.get_record("probe/t", Tally) is record


def test_utf8_refuses_a_lone_surrogate_as_canonical_does() -> None:
    with pytest.raises(EncodingError) as by_text:
        utf8('"\ud800"')
    with pytest.raises(EncodingError) as by_value:
        canonical("\ud800")
    assert (by_text.value.code, by_text.value.message) == (
        by_value.value.code,
        by_value.value.message,
    )
