"""The contract runtime: how a contract is written and how a transaction executes.

A contract is a name, a version and a table of methods.  A method is a plain function
`method(ctx, args) -> return value`: it reads state through `ctx.get`/`ctx.scan`, stages writes
with `ctx.put`/`ctx.delete`, emits events with `ctx.emit` (or `ctx.put(key, value, event=...)`,
which writes a value and emits it as an event's attributes, validating it once), and may call
another contract's method with `ctx.call`.  It must be deterministic: no wall clock (use
`ctx.block.time_ms`), no randomness, no I/O, no floats.  Raising `ContractError` fails the
transaction: it is recorded with the error code and none of its writes or events survive.

A contract that keeps typed immutable records (`Record`) reads and writes them with
`ctx.get_record`/`ctx.put_record`: a record is decoded at most once per block however many txs
read it, and encoded by its own type.

A contract writes only keys under its own name (`"notary/..."`); another domain's state changes
only through that domain's methods (`ctx.call`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, Self, TypeVar

from zhijin.chain import limits
from zhijin.chain.codec import (
    canonical,
    canonical_trusted,
    decode_trusted,
    json_string_text,
    validate_value,
)
from zhijin.chain.errors import ContractError, InvariantViolation, ZhijinError, invariant

__all__ = [
    "DELETED",
    "BlockInfo",
    "BlockState",
    "Context",
    "Contract",
    "ContractRegistry",
    "Member",
    "Record",
    "StateReader",
    "TxInfo",
    "TxOutcome",
    "apply_tx",
    "execute_tx",
    "merged_scan",
    "run_end_block",
    "tx_info",
]

GOVERNANCE_PREFIX = "governance/"
MEMBER_PREFIX = "governance/member/"
# {"quorum_weight": int, "solo_orderer": did or null}: written by genesis, changed by governance.
GOVERNANCE_CONFIG_KEY = "governance/config"
# One record per contract activated by governance (zhijin/chain/contract_set.py).
CONTRACT_PREFIX = "governance/contract/"


class StateReader(Protocol):
    """Committed state as of the previous block."""

    def get(self, key: str) -> Any | None: ...

    def scan(self, prefix: str, start_after: str, limit: int) -> list[tuple[str, Any]]:
        """Keys with `prefix`, greater than `start_after`, in key order, at most `limit`."""
        ...


class Record(Protocol):
    """A stored record type, for `Context.get_record`/`put_record`.

    Its obligations, which those methods rely on instead of checking: instances are immutable
    (a decoded record is shared by every tx of the block that reads it);
    `from_json(decode(canonical(r.to_json())))` equals `r`; and `r.canonical()` is
    `codec.canonical(r.to_json())`, or raises what that raises.  A type whose JSON is in the
    canonical domain by construction may write its bytes out without a validation pass: say
    in the type why, and test it against `codec.canonical`.
    """

    def to_json(self) -> dict[str, Any]: ...

    def canonical(self) -> bytes: ...

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self: ...


_R = TypeVar("_R", bound=Record)


@dataclass(frozen=True, slots=True)
class TxInfo:
    tx_hash: str  # lowercase hex
    sender: str
    signer: str
    nonce: int
    contract: str
    method: str
    vouched: bool = False  # the signer is a member vouching for `sender` (batch or gateway)


@dataclass(frozen=True, slots=True)
class BlockInfo:
    chain_id: str
    height: int
    time_ms: int


@dataclass(frozen=True, slots=True)
class Member:
    did: str
    name: str
    role: str
    weight: int

    def to_json(self) -> dict[str, Any]:
        return {"did": self.did, "name": self.name, "role": self.role, "weight": self.weight}

    def canonical(self) -> bytes:
        return canonical(self.to_json())

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Member:
        return cls(did=data["did"], name=data["name"], role=data["role"], weight=data["weight"])


Method = Callable[["Context", dict[str, Any]], Any]
BlockHook = Callable[["Context"], None]
# Keys a tx will probably read, given the tx as its method will see it (sender, signer, vouched,
# method, ...) and its args: the node fetches them for a whole block in one query.  Only a speed
# hint; execution is correct whatever it returns.
Prefetch = Callable[[TxInfo, dict[str, Any]], list[str]]


@dataclass(frozen=True, slots=True)
class Contract:
    name: str
    version: str
    methods: Mapping[str, Method]
    end_block: BlockHook | None = None  # runs after the block's txs, e.g. to expire holds
    readonly_methods: frozenset[str] = frozenset()  # callable only through ctx.call, never a tx
    prefetch: Prefetch | None = None


class ContractRegistry:
    """Contracts by name: the code a node runs, or the part of it in force at one height.

    A node's code registry may hold contracts the chain never activated; blocks are executed
    with `in_force(...)`, the view holding only the contracts genesis or governance put in
    force by that height, so extra code can never change what a block does.
    """

    def __init__(self, contracts: Iterable[Contract] = ()) -> None:
        self._contracts: dict[str, Contract] = {}
        for contract in contracts:
            self.register(contract)

    def in_force(self, versions: Mapping[str, str]) -> ContractRegistry:
        """The view of the contracts named in `versions`, each of which this code must provide
        at that version (the node and `chain verify` check that first, to say so clearly)."""
        view = ContractRegistry()
        for name, version in sorted(versions.items()):
            contract = self._contracts.get(name)
            invariant(
                contract is not None and contract.version == version,
                f"contract {name} version {version} is in force but not in this code",
            )
            assert contract is not None
            view.register(contract)
        return view

    def register(self, contract: Contract) -> None:
        if contract.name in self._contracts:
            raise ValueError(f"contract {contract.name} registered twice")
        self._contracts[contract.name] = contract

    def get(self, name: str) -> Contract | None:
        return self._contracts.get(name)

    def versions(self) -> dict[str, str]:
        return {name: c.version for name, c in sorted(self._contracts.items())}

    def __iter__(self) -> Any:
        return iter(sorted(self._contracts.values(), key=lambda c: c.name))


class _Deleted:
    __slots__ = ()


DELETED: Any = _Deleted()
# The source of a record read from the committed state (no staged bytes hold its key).
_COMMITTED: Any = object()
_UNSTAGED: Any = object()  # a key the tx has not staged


# State values were canonical when written (`Context.put` validates them, a `Record` vouches for
# its own encoding), so reads decode them without the strict decoder's checks, which could never
# fire on them.
_loads = decode_trusted


class BlockState:
    """Writes staged by a block over the committed state, in application order.

    Staged values are kept as canonical bytes and decoded on every read, so a contract that
    mutates a dict it read or wrote can never change what another tx (or the cache) sees.

    Records (`Context.get_record`) are immutable, so they are shared instead: each key keeps the
    last record parsed from (or written as) its value, tagged with that value's source, the
    staged bytes object itself or `_COMMITTED` for the reader's value.  A read returns the kept
    record only while the key's current source is that same object, so a later write, a failed
    tx's writes (whose bytes never reach `writes`) or a deletion can never be seen through it.
    The reader must not change while the block runs (it is the previous block's state).
    """

    def __init__(self, reader: StateReader) -> None:
        self.reader = reader
        self.writes: dict[str, Any] = {}  # key -> canonical bytes, or DELETED
        # key -> (source, record type, record): at most one per key, so bounded by the keys
        # the block touches.
        self._records: dict[str, tuple[Any, type[Any], Any]] = {}

    def get(self, key: str) -> Any | None:
        if key in self.writes:
            value = self.writes[key]
            return None if value is DELETED else _loads(value)
        return self.reader.get(key)

    def parsed(self, key: str, source: Any, record_type: type[_R]) -> _R | None:
        """The record held by `source` (staged bytes, DELETED, or `_COMMITTED`), parsed once."""
        if source is DELETED:
            return None
        kept = self._records.get(key)
        if kept is not None and kept[0] is source and kept[1] is record_type:
            record: _R = kept[2]
            return record
        value = self.reader.get(key) if source is _COMMITTED else _loads(source)
        if value is None:
            return None
        record = record_type.from_json(value)
        self._records[key] = (source, record_type, record)
        return record

    def remember(self, key: str, encoded: bytes, record: Record) -> None:
        """`record` is what `encoded` (just staged under `key`) decodes to: keep it for reads."""
        self._records[key] = (encoded, type(record), record)

    def scan(self, prefix: str, start_after: str, limit: int) -> list[tuple[str, Any]]:
        return merged_scan(self.reader.scan, self.writes, prefix, start_after, limit)

    def exists(self, key: str) -> bool:
        """Whether `key` holds a value, without decoding it (when the reader can tell)."""
        if key in self.writes:
            return self.writes[key] is not DELETED
        reader_exists = getattr(self.reader, "exists", None)
        if reader_exists is not None:
            return bool(reader_exists(key))
        return self.reader.get(key) is not None

    def write_set(self) -> list[tuple[str, bytes | None]]:
        """Sorted (key, canonical value) pairs; None means deleted."""
        return [(k, None if v is DELETED else v) for k, v in sorted(self.writes.items())]


def merged_scan(
    base_scan: Callable[[str, str, int], list[tuple[str, Any]]],
    staged: Mapping[str, Any],
    prefix: str,
    start_after: str,
    limit: int,
) -> list[tuple[str, Any]]:
    limit = min(limit, limits.SCAN_ROWS_MAX)
    staged_keys = sorted(k for k in staged if k.startswith(prefix) and k > start_after)
    # Staged deletions may hide base rows, so ask the base for enough extra rows.
    base = base_scan(prefix, start_after, limit + len(staged_keys))
    merged: dict[str, Any] = dict(base)
    for key in staged_keys:
        value = staged[key]
        merged[key] = value if value is DELETED else _loads(value)
    rows = [(k, v) for k, v in sorted(merged.items()) if v is not DELETED]
    if len(base) == limit + len(staged_keys) and base:
        # The base may hold more rows past its last one: only rows up to it are known complete.
        last = base[-1][0]
        rows = [(k, v) for k, v in rows if k <= last]
    return rows[:limit]


def _quoted(text: str) -> bytes:
    """`text` as a canonical JSON string in UTF-8 (raises UnicodeEncodeError on surrogates)."""
    return json_string_text(text).encode("utf-8")


@dataclass(slots=True)
class TxOutcome:
    """What one transaction did: recorded in the block whether it succeeded or failed."""

    tx_hash: str
    ok: bool
    code: str | None = None
    message: str | None = None
    value: Any = None
    events: list[dict[str, Any]] = field(default_factory=list)
    # Event index -> its attrs' canonical bytes, for the events whose bytes were made anyway
    # (a value written and emitted by `put(key, value, event=...)`); None when there are none.
    encoded_events: dict[int, bytes] | None = None

    def encoded(self, as_json: dict[str, Any] | None = None) -> bytes:
        """`canonical(self.to_json())`, reusing the event bytes `put(..., event=)` made.

        `as_json` is `self.to_json()` when the caller has built it already.

        Everything in a success was validated when made (`Context.put`/`emit`, `execute_tx`).
        When no event has bytes already, one encoder pass over the whole result is cheapest;
        otherwise the parts are joined: the wrapper's keys are ASCII and in JCS order (events <
        return < status < tx_hash; attrs < type), so the join is the canonical form and a
        record written and emitted is encoded once.
        """
        known = self.encoded_events
        if not self.ok or not known:
            return canonical_trusted(self.to_json() if as_json is None else as_json)
        try:
            parts = [b'{"events":[']
            for index, event in enumerate(self.events):
                attrs = known.get(index)
                encoded_attrs = canonical_trusted(event["attrs"]) if attrs is None else attrs
                parts += (b'{"attrs":', encoded_attrs, b',"type":', _quoted(event["type"]), b"},")
            parts[-1] = b"}"  # no comma after the last event
            parts += (
                b'],"return":',
                canonical_trusted(self.value),
                b',"status":"ok","tx_hash":',
                _quoted(self.tx_hash),
                b"}",
            )
        except UnicodeEncodeError:  # a lone surrogate in a type: the full path names it
            return canonical(self.to_json())
        return b"".join(parts)

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {"tx_hash": self.tx_hash, "status": "ok" if self.ok else "failed"}
        if self.ok:
            result["return"] = self.value
            result["events"] = self.events
        else:
            result["code"] = self.code
            result["message"] = self.message
        return result


class Context:
    """What a contract method sees: the tx, the block, and its own slice of state."""

    __slots__ = (
        "_depth",
        "_encoded_events",
        "_events",
        "_root",
        "_staged",
        "_state",
        "block",
        "caller",
        "contract",
        "registry",
        "tx",
    )

    def __init__(
        self,
        *,
        registry: ContractRegistry,
        state: BlockState,
        tx: TxInfo,
        block: BlockInfo,
        contract: str,
        staged: dict[str, Any] | None = None,
        events: list[dict[str, Any]] | None = None,
        depth: int = 0,
        caller: str | None = None,
        root: Context | None = None,
    ) -> None:
        self.registry = registry
        # The contract that reached this method through ctx.call; None for a direct tx.
        self.caller = caller
        self._state = state
        self.tx = tx
        self.block = block
        self.contract = contract
        self._staged: dict[str, Any] = {} if staged is None else staged
        self._events: list[dict[str, Any]] = [] if events is None else events
        # The tx's outermost context (this one for a direct tx), which holds the tx's
        # event index -> attrs bytes for events made by `put(..., event=)`, created on first use.
        self._root: Context = self if root is None else root
        self._encoded_events: dict[int, bytes] | None = None
        self._depth = depth

    # -- reads ---------------------------------------------------------------------------------
    def get(self, key: str) -> Any | None:
        if key in self._staged:
            value = self._staged[key]
            return None if value is DELETED else _loads(value)
        return self._state.get(key)

    def scan(
        self, prefix: str, *, start_after: str = "", limit: int = 100
    ) -> list[tuple[str, Any]]:
        return merged_scan(self._state.scan, self._staged, prefix, start_after, limit)

    def get_record(self, key: str, record_type: type[_R]) -> _R | None:
        """The record under `key` (`record_type.from_json` of its value), or None.

        Decoded at most once per block while the value does not change: the record is shared
        with every other read of the same value, which is safe because records are immutable
        (`Record`).  A record this tx or an earlier one wrote with `put_record` is not decoded
        at all.
        """
        source = self._staged.get(key, _UNSTAGED)
        if source is _UNSTAGED:
            source = self._state.writes.get(key, _COMMITTED)
        return self._state.parsed(key, source, record_type)

    def member(self, did: str) -> Member | None:
        return self.get_record(MEMBER_PREFIX + did, Member)

    # -- writes --------------------------------------------------------------------------------
    def _check_key(self, key: str) -> None:
        if not isinstance(key, str) or not key.startswith(self.contract + "/"):
            raise InvariantViolation(f"contract {self.contract} may not write key {key!r}")
        if len(key) > limits.STATE_KEY_CHARS_MAX:
            raise ContractError(
                "key_too_long", f"state keys are at most {limits.STATE_KEY_CHARS_MAX}"
            )
        if key not in self._staged and len(self._staged) >= limits.WRITES_PER_TX_MAX:
            raise ContractError(
                "too_many_writes", f"at most {limits.WRITES_PER_TX_MAX} writes per tx"
            )

    def put(self, key: str, value: Any, *, event: str | None = None) -> None:
        """Stage `value` under `key`; with `event`, also emit the value as that event's attrs.

        `put(key, record, event="created")` is `put(key, record)` then
        `emit("created", **record)`, with the record validated once for both.
        """
        self._check_key(key)
        invariant(value is not None, "store None with delete()")
        if event is not None:
            invariant(type(value) is dict, "an event's attributes are an object")
            self._check_event_room()
        encoded = canonical(value)  # validates: no floats, no huge integers
        self._staged[key] = encoded
        if event is not None:
            # A shallow copy, as `emit(**attrs)` makes: the event keeps the value as written.
            self._emit_encoded(event, dict(value), encoded)

    def put_record(self, key: str, record: Record, *, event: str | None = None) -> None:
        """`put(key, record.to_json(), event=event)`, encoded by the record (`Record.canonical`).

        A record type whose JSON is in the domain by construction writes it out without a
        validation pass; the others validate as `put` does.  The record is kept for
        `get_record`, so neither this tx nor a later one of the block decodes it again.
        """
        self._check_key(key)
        if event is not None:
            self._check_event_room()
        encoded = record.canonical()
        self._staged[key] = encoded
        self._state.remember(key, encoded, record)
        if event is not None:
            # `to_json` builds a new dict that nothing else holds: the event may keep it.
            self._emit_encoded(event, record.to_json(), encoded)

    def _emit_encoded(self, event: str, attrs: dict[str, Any], encoded: bytes) -> None:
        """Emit `attrs`, whose canonical bytes are `encoded`, reused when the result is encoded."""
        root = self._root
        if root._encoded_events is None:
            root._encoded_events = {}
        root._encoded_events[len(self._events)] = encoded
        self._events.append({"type": f"{self.contract}.{event}", "attrs": attrs})

    def delete(self, key: str) -> None:
        self._check_key(key)
        self._staged[key] = DELETED

    def emit(self, event_type: str, **attrs: Any) -> None:
        self._check_event_room()
        # Validated only: small attrs are cheapest encoded with the whole result at the seal.
        validate_value(attrs)
        self._events.append({"type": f"{self.contract}.{event_type}", "attrs": attrs})

    def _check_event_room(self) -> None:
        if len(self._events) >= limits.EVENTS_PER_TX_MAX:
            raise ContractError(
                "too_many_events", f"at most {limits.EVENTS_PER_TX_MAX} events per tx"
            )

    # -- composition ---------------------------------------------------------------------------
    def call(self, contract: str, method: str, args: dict[str, Any]) -> Any:
        """Run another contract's method inside this tx, as this tx's sender."""
        if self._depth >= limits.CALL_DEPTH_MAX:
            raise ContractError("call_too_deep", f"at most {limits.CALL_DEPTH_MAX} nested calls")
        target = self.registry.get(contract)
        if target is None or method not in target.methods:
            raise ContractError("unknown_method", f"{contract}.{method} does not exist")
        callee = Context(
            registry=self.registry,
            state=self._state,
            tx=self.tx,
            block=self.block,
            contract=contract,
            staged=self._staged,
            events=self._events,
            depth=self._depth + 1,
            caller=self.contract,
            root=self._root,
        )
        return target.methods[method](callee, args)

    def staged(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return self._staged, self._events


def execute_tx(
    registry: ContractRegistry,
    state: BlockState,
    tx: TxInfo,
    block: BlockInfo,
    args: dict[str, Any],
) -> TxOutcome:
    """Apply one tx to the block's staged state; on failure nothing of it remains."""
    contract = registry.get(tx.contract)
    if contract is None:
        # An activation record names a contract governance put in force from a later height
        # (state, so every node and `chain verify` answer alike, whatever extra code they run).
        if state.exists(CONTRACT_PREFIX + tx.contract):
            return TxOutcome(
                tx.tx_hash,
                ok=False,
                code="contract_not_active",
                message=f"{tx.contract} is activated by governance from a later height",
            )
        return TxOutcome(tx.tx_hash, ok=False, code="unknown_contract", message=tx.contract)
    method = contract.methods.get(tx.method)
    if method is None or tx.method in contract.readonly_methods:
        return TxOutcome(tx.tx_hash, ok=False, code="unknown_method", message=tx.method)
    ctx = Context(registry=registry, state=state, tx=tx, block=block, contract=contract.name)
    try:
        value = method(ctx, args)
        validate_value(value)  # encoded with the result (`TxOutcome.encoded`) at the seal
    except ZhijinError as exc:
        return TxOutcome(tx.tx_hash, ok=False, code=exc.code, message=exc.message)
    staged, events = ctx.staged()
    state.writes.update(staged)
    return TxOutcome(
        tx.tx_hash,
        ok=True,
        value=value,
        events=events,
        encoded_events=ctx._encoded_events,
    )


def tx_info(tx_hash: str, signer: str, body: Mapping[str, Any]) -> TxInfo:
    """The tx as its contract method (and its prefetch hint) sees it."""
    sender = body["sender"]
    return TxInfo(
        tx_hash=tx_hash,
        sender=sender,
        signer=signer,
        nonce=body["nonce"],
        contract=body["contract"],
        method=body["method"],
        vouched=signer != sender,
    )


def apply_tx(
    registry: ContractRegistry,
    state: BlockState,
    block: BlockInfo,
    *,
    tx_hash: str,
    signer: str,
    body: dict[str, Any],
    info: TxInfo | None = None,
) -> TxOutcome:
    """The chain's rule for one admitted tx, shared by the node and `chain verify`.

    A tx past its `valid_until` is recorded as expired; a signer other than the sender must be
    a member (as of this block's state); otherwise the contract method runs.  `info` is
    `tx_info(tx_hash, signer, body)` when the caller already built it (the node, for prefetch).
    """
    if body["valid_until"] < block.time_ms:
        return TxOutcome(tx_hash, ok=False, code="expired", message="valid_until passed")
    if info is None:
        info = tx_info(tx_hash, signer, body)
    invariant(info.tx_hash == tx_hash and info.signer == signer, "tx info of another tx")
    if info.vouched and not state.exists(MEMBER_PREFIX + signer):
        return TxOutcome(
            tx_hash, ok=False, code="unauthorized_signer", message="signer is not a member"
        )
    return execute_tx(registry, state, info, block, body["args"])


def run_end_block(
    registry: ContractRegistry, state: BlockState, block: BlockInfo
) -> list[dict[str, Any]]:
    """Run every contract's end-of-block hook in name order; returns the events they emitted.

    A hook runs as the system: it has no sender and must not fail for expected reasons, so a
    ContractError from a hook is an invariant violation.
    """
    events: list[dict[str, Any]] = []
    for contract in registry:
        if contract.end_block is None:
            continue
        tx = TxInfo(
            tx_hash="",
            sender="system",
            signer="system",
            nonce=0,
            contract=contract.name,
            method="end_block",
        )
        ctx = Context(registry=registry, state=state, tx=tx, block=block, contract=contract.name)
        try:
            contract.end_block(ctx)
        except ZhijinError as exc:
            raise InvariantViolation(f"{contract.name}.end_block failed: {exc}") from exc
        staged, hook_events = ctx.staged()
        state.writes.update(staged)
        events.extend(hook_events)
    return events
