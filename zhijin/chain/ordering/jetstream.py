"""JetStream ordering: every member's peer reads one replicated stream and cuts the same blocks.

Consensus is not made here: it is NATS JetStream's (Raft over 3 or 5 servers).  This module
only turns the stream's total order into blocks, deterministically, and collects the members'
signatures that make a block final.

The ordering stream holds two kinds of message, in one total order:

- **tx**: a transaction envelope (single or member batch), published by any member's gateway
  with `Nats-Msg-Id` = its tx (or batch) hash, so JetStream drops a re-submission inside the
  duplicate window.
- **cut marker**: `{chain_id, height, time_ms, first_seq, proposer, signature}`, published by
  any peer whose view holds enough uncut txs or has waited long enough.  `Nats-Msg-Id` is
  `cut:<height>:<first_seq>`: peers with the same view publish the same id, so JetStream keeps
  one of them.

Every peer applies the same rule to the same messages (`StreamCutter`):

1. A tx message is parsed and authenticated again (a gateway's check is not trusted), then
   checked for chain id, contract and method, and for `(sender, nonce)` reuse against the
   chain *and* the txs already pending in the stream: the first copy in stream order wins,
   later ones are skipped by every peer alike.  A batch is kept or skipped as a whole.
   Checks that need a clock are not done here: expiry is decided against the block time
   when the block executes (recorded as failed `expired`), `valid_until_too_far` against the
   marker's time when the block is cut.
2. A cut marker for height h wins if h is the next height (the first marker for h in stream
   order); any other marker is ignored.  The winner's block holds the pending txs in stream
   order (at most `BLOCK_TXS_MAX` per block: a longer segment becomes several consecutive
   blocks from the same marker), block time = max(marker time, previous block time + 1), and
   proposer = the marker's signer.  A marker whose segment is empty after the checks cuts
   nothing and does not use up its height.

After each block the peer commits, signs the header and publishes its vote on the signature
stream.  A block is final when members holding `quorum_weight` signed the same header
(`FinalityTracker`); votes from non-members, bad signatures and votes over another header
never count.  A peer that sees the rest of the consortium finalise a different hash at a
height, or that can no longer reach a quorum for its own hash, halts: it stops applying and
reports the first differing height (`Divergence`).

Where the peer is in the stream is committed with every block (`cluster_cursors`, in the
block's own database transaction), so after a crash it resumes exactly where its last block
left off; see docs/cluster.md for the catch-up from another peer past the stream's retention.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext, api
from nats.js.errors import Error as JetStreamError
from sqlalchemy import BigInteger, Column, MetaData, Table, insert, select

from zhijin.chain import limits
from zhijin.chain.block import BlockHeader, Signature, valid_signatures
from zhijin.chain.codec import canonical, decode, sha256
from zhijin.chain.crypto import BadKey, KeyPair, public_key_from_did, verify
from zhijin.chain.errors import EncodingError, TxRejected, Unavailable, invariant
from zhijin.chain.membership import MembershipHistory
from zhijin.chain.node import Admission, Node, NodeError
from zhijin.chain.store import BlockRecord, ChainStore
from zhijin.chain.tx import Tx, parse_envelope

__all__ = [
    "BlockVote",
    "ClusterNode",
    "ClusterStore",
    "CutMarker",
    "Divergence",
    "FinalityTracker",
    "JetStreamOrderer",
    "OrderingSettings",
    "StreamCursor",
    "StreamCutter",
    "StreamNames",
    "VotePublisher",
    "stored_final_height",
]

log = logging.getLogger("zhijin.chain.jetstream")

# -- limits (STYLE.md rule 7) -------------------------------------------------------------------
DUPLICATE_WINDOW_S = 120.0  # JetStream drops a re-published tx or marker id inside this window
PUBLISH_TIMEOUT_S = 3.0  # a publish not acknowledged by the stream's quorum in time fails
CONNECT_TIMEOUT_S = 2.0
STREAM_SETUP_S_MAX = 30.0  # how long a peer waits for JetStream to elect its leaders at start
MESSAGE_BYTES_MAX = 8 * 1024 * 1024  # also the servers' max_payload (cluster.py writes it)
STREAM_MAX_AGE_S = 24 * 3600.0  # past this a peer catches up from another peer's blocks
STREAM_MAX_BYTES = -1  # bounded by age instead: a byte bound is reserved up front on every server
APPLY_QUEUE_MAX = 20_000  # stream messages read but not yet applied
APPLY_BATCH_MAX = 2_000  # messages applied per turn (one nonce query per run of txs)
PENDING_TXS_MAX = limits.MEMPOOL_TXS_MAX  # uncut txs a peer holds; beyond, txs are skipped
VOTE_QUEUE_MAX = 50_000
VOTE_BUFFER_HEIGHTS_MAX = 100_000  # future heights whose votes wait for the local block
STALL_S = 3.0  # no message for this long while the stream has more: re-subscribe
CUT_RETRY_S = 1.0  # a marker not seen back in the stream after this is published again
VOTE_RETRY_FIRST_S = 0.2  # an own vote the stream did not acknowledge is retried after this,
VOTE_RETRY_MAX_S = 2.0  # doubling up to this (bounded backoff), until the stream acknowledges it
VOTE_PUBLISH_PARALLEL_MAX = 64  # own votes in flight at once
UNACKED_VOTES_MAX = 100_000  # own votes waiting for the stream's acknowledgement
VOTE_REPLAY_MARGIN_S = 300.0  # a restarted peer re-reads votes from this long before its
# first non-final block's time (clock skew between members)
VOTE_LOCATE_S = 2.0  # wait for the first vote at or after that time, else start at the tail
IDLE_HEARTBEAT_S = 1.0
FAILURE_BACKOFF_S = 0.5

T = TypeVar("T")


class OrderingUnavailable(Unavailable):
    code = "ordering_unavailable"


@dataclass(frozen=True, slots=True)
class OrderingSettings:
    nats_urls: tuple[str, ...]
    stream_replicas: int = 3
    block_txs_target: int = 1_000  # propose a cut once this many txs wait...
    block_interval_ms: int = 50  # ...or this long after the first of them arrived
    stream_max_age_s: float = STREAM_MAX_AGE_S
    stream_max_msgs: int = -1  # tests set a small bound to force catch-up from peers

    def __post_init__(self) -> None:
        invariant(len(self.nats_urls) > 0, "at least one NATS server URL")
        invariant(self.stream_replicas in (1, 3, 5), "stream replicas are 1, 3 or 5")
        invariant(0 < self.block_txs_target <= limits.BLOCK_TXS_MAX, "block_txs_target bounds")
        invariant(0 <= self.block_interval_ms <= 60_000, "block_interval_ms bounds")


@dataclass(frozen=True, slots=True)
class StreamNames:
    """Stream and subject names of one chain (stream names allow no dots)."""

    chain_id: str

    @property
    def order_stream(self) -> str:
        return f"ZJ-{self.chain_id}-ORDER"

    @property
    def sig_stream(self) -> str:
        return f"ZJ-{self.chain_id}-SIGS"

    @property
    def tx_subject(self) -> str:
        return f"zhijin.{self.chain_id}.order.tx"

    @property
    def cut_subject(self) -> str:
        return f"zhijin.{self.chain_id}.order.cut"

    @property
    def order_filter(self) -> str:
        return f"zhijin.{self.chain_id}.order.*"

    @property
    def sig_subject(self) -> str:
        return f"zhijin.{self.chain_id}.sig"


# -- wire messages ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CutMarker:
    chain_id: str
    height: int
    time_ms: int
    first_seq: int  # stream sequence of the first pending tx the proposer saw (dedupe id)
    proposer: str
    signature: bytes

    def signed_bytes(self) -> bytes:
        return canonical(
            {
                "chain_id": self.chain_id,
                "height": self.height,
                "time_ms": self.time_ms,
                "first_seq": self.first_seq,
                "proposer": self.proposer,
            }
        )

    def encode(self) -> bytes:
        return canonical(
            {
                "chain_id": self.chain_id,
                "height": self.height,
                "time_ms": self.time_ms,
                "first_seq": self.first_seq,
                "proposer": self.proposer,
                "signature": self.signature.hex(),
            }
        )

    @property
    def msg_id(self) -> str:
        return f"cut:{self.height}:{self.first_seq}"

    @classmethod
    def make(
        cls, key: KeyPair, *, chain_id: str, height: int, time_ms: int, first_seq: int
    ) -> CutMarker:
        unsigned = cls(chain_id, height, time_ms, first_seq, key.did, b"")
        return cls(chain_id, height, time_ms, first_seq, key.did, key.sign(unsigned.signed_bytes()))

    @classmethod
    def decode(cls, raw: bytes) -> CutMarker:
        """Parse and authenticate a marker; ValueError if it is malformed or badly signed."""
        try:
            data = decode(raw)
            marker = cls(
                chain_id=_typed(data["chain_id"], str),
                height=_typed(data["height"], int),
                time_ms=_typed(data["time_ms"], int),
                first_seq=_typed(data["first_seq"], int),
                proposer=_typed(data["proposer"], str),
                signature=bytes.fromhex(_typed(data["signature"], str)),
            )
            public_key = public_key_from_did(marker.proposer)
        except (EncodingError, BadKey, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed cut marker: {exc}") from exc
        if set(data) != {"chain_id", "height", "time_ms", "first_seq", "proposer", "signature"}:
            raise ValueError("cut marker fields do not match the wire format")
        if not verify(public_key, marker.signed_bytes(), marker.signature):
            raise ValueError("cut marker signature does not verify")
        return marker


@dataclass(frozen=True, slots=True)
class BlockVote:
    """A member's signature over a block header, as published on the signature stream."""

    height: int
    header: bytes  # canonical header bytes: the signed message
    signature: Signature

    @property
    def block_hash(self) -> bytes:
        return sha256(self.header)

    def encode(self) -> bytes:
        return canonical(
            {
                "height": self.height,
                "header": decode(self.header),
                "signer": self.signature.signer,
                "signature": self.signature.signature.hex(),
            }
        )

    @property
    def msg_id(self) -> str:
        return f"sig:{self.height}:{self.signature.signer}:{self.block_hash.hex()[:16]}"

    @classmethod
    def decode(cls, raw: bytes) -> BlockVote:
        try:
            data = decode(raw)
            header = canonical(BlockHeader.from_json(data["header"]).to_json())
            height = _typed(data["height"], int)
            signature = Signature(
                _typed(data["signer"], str), bytes.fromhex(_typed(data["signature"], str))
            )
        except (EncodingError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed vote: {exc}") from exc
        if decode(header)["height"] != height:
            raise ValueError("vote height differs from its header's")
        return cls(height, header, signature)


def _typed(value: Any, kind: type[T]) -> T:
    if type(value) is not kind:
        raise TypeError(f"expected {kind.__name__}")
    return value


# -- storage: the stream position committed with each block -------------------------------------

cluster_metadata = MetaData()
cursors = Table(
    "cluster_cursors",
    cluster_metadata,
    Column("height", BigInteger, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),  # next stream sequence to read after this block
    Column("marker_seq", BigInteger, nullable=True),  # a marker whose segment is not yet done
)


@dataclass(frozen=True, slots=True)
class StreamCursor:
    """Where to resume reading the ordering stream after a block.

    `seq` is the next message to read.  When a marker's segment spans several blocks and only
    some are committed, `seq` is the segment's start and `marker_seq` names that marker: on
    replay the committed txs are skipped (their nonces are used) and the marker wins again.
    """

    seq: int
    marker_seq: int | None = None


class ClusterStore(ChainStore):
    """The chain store plus the stream cursor, written in each block's database transaction."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.next_cursor: StreamCursor | None = None

    def create_schema(self) -> None:
        super().create_schema()
        cluster_metadata.create_all(self.engine)

    def commit_block(self, conn: Any, record: BlockRecord) -> None:
        super().commit_block(conn, record)
        cursor = self.next_cursor if record.height > 0 else StreamCursor(1)
        invariant(cursor is not None, "a cluster block needs its stream cursor")
        assert cursor is not None
        conn.execute(
            insert(cursors).values(
                height=record.height, seq=cursor.seq, marker_seq=cursor.marker_seq
            )
        )
        self.next_cursor = None

    def cursor_at(self, height: int) -> StreamCursor | None:
        with self.read() as conn:
            row = conn.execute(select(cursors).where(cursors.c.height == height)).first()
        return None if row is None else StreamCursor(row.seq, row.marker_seq)


# -- the NATS connection, on its own event loop thread ------------------------------------------


class NatsLink:
    """One NATS connection driven by an asyncio loop on a daemon thread.

    The chain's work (parsing, executing, committing) runs on ordinary threads; they hand
    coroutines to this loop with `call` (wait for the answer) or `spawn` (fire and forget).
    """

    def __init__(self, urls: Sequence[str], name: str) -> None:
        self.urls = list(urls)
        self.name = name
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=f"nats-{name}", daemon=True)
        self.nc: NatsClient | None = None
        self.js: JetStreamContext | None = None
        # Called on the loop after every reconnect (e.g. to retry what failed meanwhile).
        self.reconnect_listeners: list[Callable[[], None]] = []

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self, *, timeout_s: float = STREAM_SETUP_S_MAX) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.call(self._connect(), timeout_s=CONNECT_TIMEOUT_S * 2 + 1)
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise OrderingUnavailable(
                        message=f"cannot reach any NATS server of {self.urls}: {exc}"
                    ) from exc
                time.sleep(FAILURE_BACKOFF_S)

    async def _connect(self) -> None:
        async def on_error(exc: Exception) -> None:
            log.debug("nats %s: %s", self.name, exc)

        async def on_disconnect() -> None:
            log.info("nats %s: disconnected, reconnecting", self.name)

        async def on_reconnect() -> None:
            log.info("nats %s: reconnected", self.name)
            for listener in self.reconnect_listeners:
                listener()

        self.nc = await nats.connect(
            servers=self.urls,
            name=self.name,
            connect_timeout=CONNECT_TIMEOUT_S,
            reconnect_time_wait=0.2,
            max_reconnect_attempts=-1,
            error_cb=on_error,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
        )
        self.js = self.nc.jetstream(timeout=PUBLISH_TIMEOUT_S)

    def call(self, coro: Coroutine[Any, Any, T], *, timeout_s: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout_s)
        except TimeoutError:
            future.cancel()
            raise

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        if self.nc is not None:
            with contextlib.suppress(Exception):
                self.call(self.nc.close(), timeout_s=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


async def ensure_streams(
    js: JetStreamContext, names: StreamNames, ordering: OrderingSettings
) -> None:
    """Create the ordering and signature streams if they do not exist (idempotent)."""
    for name, subjects in (
        (names.order_stream, [names.tx_subject, names.cut_subject]),
        (names.sig_stream, [names.sig_subject]),
    ):
        try:
            await js.stream_info(name)
            continue
        except JetStreamError:
            pass
        await js.add_stream(
            api.StreamConfig(
                name=name,
                subjects=subjects,
                storage=api.StorageType.FILE,
                num_replicas=ordering.stream_replicas,
                duplicate_window=DUPLICATE_WINDOW_S,
                max_age=ordering.stream_max_age_s,
                max_bytes=STREAM_MAX_BYTES,
                max_msgs=ordering.stream_max_msgs,
                max_msg_size=MESSAGE_BYTES_MAX,
                discard=api.DiscardPolicy.OLD,
            )
        )


# -- divergence ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Divergence:
    """Why a peer halted: at `height` its block differs from what the consortium signed."""

    height: int
    local_hash: str
    reason: str
    other_hash: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "local_hash": self.local_hash,
            "other_hash": self.other_hash,
            "reason": self.reason,
        }


class PeerHalted(Unavailable):
    code = "peer_halted"


# -- the node in cluster mode -------------------------------------------------------------------


class ClusterNode(Node):
    """A node whose admission publishes to the ordering stream instead of a local mempool.

    Admission does the same stateless and nonce checks as solo mode (a fast, local refusal),
    then publishes the envelope; it is accepted once the stream's quorum has stored it.
    Waiters are answered when the tx's block commits on this peer, as in solo mode.
    """

    orderer: JetStreamOrderer | None = None

    def admit(self, txs: Sequence[Tx], *, atomic: bool) -> list[Admission]:
        orderer = self.orderer
        if orderer is None:
            raise NodeError("not_started", "the cluster peer is not started")
        if orderer.halted is not None:
            error = PeerHalted(message=f"this peer halted: {orderer.halted.reason}")
            return [Admission(tx.hash_hex, False, error.code, error.message) for tx in txs]
        now = self.clock()
        problems = [self._stateless_problem(tx, now) for tx in txs]
        used = self.store.used_nonces(
            [(tx.sender, tx.nonce) for tx, p in zip(txs, problems, strict=True) if p is None]
        )
        for i, tx in enumerate(txs):
            if problems[i] is None and (tx.sender, tx.nonce) in used:
                problems[i] = ("nonce_used", "this sender already used this nonce")
        if atomic and any(problems):
            first = next(p for p in problems if p is not None)
            return [
                Admission(
                    tx.hash_hex, False, *(p or ("batch_refused", f"batch refused: {first[1]}"))
                )
                for tx, p in zip(txs, problems, strict=True)
            ]
        wanted = [tx for tx, p in zip(txs, problems, strict=True) if p is None]
        errors = orderer.publish_txs(wanted, as_batch=atomic)
        answers: list[Admission] = []
        for tx, problem in zip(txs, problems, strict=True):
            if problem is None:
                problem = errors.get(tx.tx_hash)
            if problem is not None:
                answers.append(Admission(tx.hash_hex, False, problem[0], problem[1]))
            else:
                answers.append(Admission(tx.hash_hex, True, _node=self))
        return answers

    def drop_waiters(self, tx_hashes: Iterable[bytes], code: str, message: str) -> None:
        """Answer the waiters of txs the stream skipped (a later copy of a used nonce, ...)."""
        error = NodeError(code, message)
        futures: list[Future[dict[str, Any]]] = []
        with self._lock:
            for tx_hash in tx_hashes:
                futures.extend(self._waiters.pop(tx_hash, ()))
        for future in futures:
            if not future.done():
                future.set_exception(error)


# -- the deterministic cutter -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamMessage:
    seq: int
    kind: str  # "tx" or "cut"
    data: bytes
    pending_after: int  # messages the stream holds past this one (0: we are at the tail)


@dataclass(slots=True)
class _Pending:
    seq: int
    tx: Tx


class StreamCutter:
    """Turns the ordering stream into blocks: the same messages give every peer the same blocks.

    Only the applier thread calls it.  Its state is the pending txs (valid, not yet cut, in
    stream order) and the next height; both follow from the stream and the chain alone.
    """

    def __init__(
        self, node: ClusterNode, store: ClusterStore, cursor: StreamCursor, *, chain_id: str
    ) -> None:
        self.node = node
        self.store = store
        self.chain_id = chain_id
        self.next_seq = cursor.seq
        self.segment_start = cursor.seq
        self.resume_marker = cursor.marker_seq
        self.pending: OrderedDict[tuple[str, int], _Pending] = OrderedDict()
        self.first_pending_at = 0.0  # monotonic time the first pending tx was seen (proposing)
        self.skipped = 0
        self.markers_ignored = 0

    # -- txs -------------------------------------------------------------------------------------
    def _admissible(self, tx: Tx) -> str | None:
        body = tx.body
        if body["chain_id"] != self.chain_id:
            return "wrong_chain"
        contract = self.node.registry.get(body["contract"])
        if contract is None:
            return "unknown_contract"
        if body["method"] not in contract.methods or body["method"] in contract.readonly_methods:
            return "unknown_method"
        return None

    def add_txs(self, messages: Sequence[StreamMessage]) -> None:
        """A run of tx messages with no marker between them: one nonce query for all."""
        parsed: list[tuple[int, list[Tx]]] = []
        for message in messages:
            try:
                txs = parse_envelope(message.data)
            except TxRejected as exc:
                log.info("stream seq %d skipped: %s", message.seq, exc.code)
                self.skipped += 1
                continue
            parsed.append((message.seq, txs))
        pairs = [(tx.sender, tx.nonce) for _, txs in parsed for tx in txs]
        used = self.store.used_nonces(pairs) if pairs else set()
        dropped: dict[str, list[bytes]] = {}
        for seq, txs in parsed:
            problem = self._group_problem(txs, used)
            if problem is not None:
                self.skipped += 1
                # A re-sent copy of a pending or committed tx keeps its waiters: the first
                # copy answers them.  Another tx reusing the nonce is told why it is dropped.
                dropped.setdefault(problem, []).extend(
                    tx.tx_hash for tx in txs if not self._is_known(tx)
                )
                continue
            if not self.pending:
                self.first_pending_at = time.monotonic()
            for tx in txs:
                self.pending[(tx.sender, tx.nonce)] = _Pending(seq, tx)
        for code, hashes in dropped.items():
            if hashes:
                self.node.drop_waiters(hashes, code, f"the ordering stream skipped the tx: {code}")

    def _group_problem(self, txs: Sequence[Tx], used: set[tuple[str, int]]) -> str | None:
        if len(self.pending) + len(txs) > PENDING_TXS_MAX:
            return "ordering_backlog"
        seen: set[tuple[str, int]] = set()
        for tx in txs:
            problem = self._admissible(tx)
            if problem is not None:
                return problem
            pair = (tx.sender, tx.nonce)
            if pair in used or pair in self.pending or pair in seen:
                return "nonce_used"
            seen.add(pair)
        return None

    def _is_known(self, tx: Tx) -> bool:
        entry = self.pending.get((tx.sender, tx.nonce))
        if entry is not None:
            return entry.tx.tx_hash == tx.tx_hash
        return self.store.get_tx(tx.tx_hash) is not None

    # -- markers ---------------------------------------------------------------------------------
    def on_marker(
        self, message: StreamMessage, weights: Mapping[str, int]
    ) -> list[tuple[int, CutMarker]]:
        """Apply a marker; returns the heights it committed (with the marker)."""
        try:
            marker = CutMarker.decode(message.data)
        except ValueError as exc:
            log.warning("stream seq %d: %s", message.seq, exc)
            self.markers_ignored += 1
            return []
        resuming = self.resume_marker == message.seq
        expected = self.node.head.height + 1
        # A marker being resumed won before (its segment's first blocks are committed), when
        # its proposer was a member: a governance tx inside the segment must not undo that.
        if marker.chain_id != self.chain_id or not (resuming or marker.proposer in weights):
            log.warning("stream seq %d: marker from a non-member or another chain", message.seq)
            self.markers_ignored += 1
            return []
        if not resuming and marker.height != expected:
            self.markers_ignored += 1  # a later marker for a height already cut: expected
            return []
        self.resume_marker = None
        committed = self._cut(message.seq, marker)
        self.segment_start = message.seq + 1
        return [(height, marker) for height in committed]

    def _cut(self, marker_seq: int, marker: CutMarker) -> list[int]:
        # Too far ahead is judged against the marker's own time, not the (adjusted) block
        # time, so a replay after a crash in the middle of a long segment decides the same.
        horizon = marker.time_ms + limits.VALIDITY_MS_MAX
        too_far = [p.tx for p in self.pending.values() if p.tx.body["valid_until"] > horizon]
        for tx in too_far:
            del self.pending[(tx.sender, tx.nonce)]
        if too_far:
            self.node.drop_waiters(
                [tx.tx_hash for tx in too_far],
                "valid_until_too_far",
                "valid_until may be at most 24 hours after the block time",
            )
        heights: list[int] = []
        while self.pending:
            chunk: list[Tx] = []
            while self.pending and len(chunk) < limits.BLOCK_TXS_MAX:
                chunk.append(self.pending.popitem(last=False)[1].tx)
            time_ms = max(marker.time_ms, self.node.head.time_ms + 1)
            last = not self.pending
            self.store.next_cursor = (
                StreamCursor(marker_seq + 1)
                if last
                else StreamCursor(self.segment_start, marker_seq)
            )
            heights.append(
                self.node.produce_block(chunk, time_ms=time_ms, proposer=marker.proposer)
            )
        return heights


# -- finality -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _HeightVotes:
    by_hash: dict[bytes, dict[str, Signature]] = field(default_factory=dict)
    headers: dict[bytes, bytes] = field(default_factory=dict)


class FinalityTracker:
    """Collects votes; decides finality per block; detects a divergent local chain.

    Only the finality thread calls `on_vote`/`on_commit`; readers use `final_height` and
    `wait_final`, guarded by the condition.
    """

    def __init__(
        self,
        store: ClusterStore,
        membership: MembershipHistory,
        *,
        start_height: int,
        listeners: list[Callable[[int], None]] | None = None,
    ) -> None:
        self.store = store
        self.membership = membership
        # Called with the new final height whenever it advances (projections follow it).
        self.listeners = listeners if listeners is not None else []
        self._cond = threading.Condition()
        self.final_height = start_height  # every block up to here is final on this peer
        self._final_above: set[int] = set()
        self._votes: dict[int, _HeightVotes] = {}
        self._future: dict[int, list[BlockVote]] = {}  # votes for blocks not committed here yet
        self.rejected_votes = 0
        self.halted: Divergence | None = None

    def weights_after(self, height: int) -> Mapping[str, int]:
        """Member weights in force after block `height` (the judges of block height + 1)."""
        return self.membership.after(height).weights

    def quorum_for(self, height: int) -> int:
        """The signed weight that makes block `height` final."""
        return self.membership.after(height - 1).quorum_weight

    def on_vote(self, vote: BlockVote, local_head: int) -> None:
        if vote.height <= self.final_height or vote.height in self._final_above:
            return
        if vote.height > local_head:
            if vote.height not in self._future and len(self._future) >= VOTE_BUFFER_HEIGHTS_MAX:
                log.warning("vote buffer full: vote for height %d dropped", vote.height)
                return
            self._future.setdefault(vote.height, []).append(vote)
            return
        weights = self.weights_after(vote.height - 1)
        weight, problems = valid_signatures(vote.header, [vote.signature], weights)
        if weight == 0 or problems:
            self.rejected_votes += 1
            log.warning(
                "vote for height %d rejected: %s", vote.height, "; ".join(problems) or "no weight"
            )
            return
        entry = self._votes.setdefault(vote.height, _HeightVotes())
        entry.by_hash.setdefault(vote.block_hash, {})[vote.signature.signer] = vote.signature
        entry.headers[vote.block_hash] = vote.header
        self._evaluate(vote.height, weights)

    def on_commit(self, height: int) -> None:
        """The local block at `height` committed: count the votes that waited for it."""
        for vote in self._future.pop(height, []):
            self.on_vote(vote, height)
        if height in self._votes:
            self._evaluate(height, self.weights_after(height - 1))

    def _evaluate(self, height: int, weights: Mapping[str, int]) -> None:
        if self.halted is not None:
            return
        block = self.store.get_block(height)
        if block is None:
            return
        entry = self._votes.get(height, _HeightVotes())
        local = block.block_hash
        # The local signature is in the block row already; count it with the received ones.
        own = {s["signer"]: Signature.from_json(s) for s in block.signatures}
        signers = {**own, **entry.by_hash.get(local, {})}
        weight = sum(weights.get(signer, 0) for signer in signers)
        others = {h: sum(weights.get(s, 0) for s in sigs) for h, sigs in entry.by_hash.items()}
        others.pop(local, None)
        quorum = self.quorum_for(height)
        if weight >= quorum:
            new = [s.to_json() for signer, s in signers.items() if signer not in own]
            if new:
                self.store.add_block_signatures(height, new)
            self._mark_final(height)
            return
        for other_hash, other_weight in others.items():
            if other_weight >= quorum:
                self._halt(height, local, "a quorum of members signed another block", other_hash)
                return
        total = sum(weights.values())
        if total - sum(others.values()) < quorum:
            other_hash = max(others, key=lambda h: others[h])
            self._halt(height, local, "this peer's block can no longer reach a quorum", other_hash)

    def halt_for(self, height: int, local: bytes, reason: str) -> None:
        """Halt for a reason other than votes (a broken database, a hole in the stream)."""
        self._halt(height, local, reason, None)

    def _halt(self, height: int, local: bytes, reason: str, other: bytes | None) -> None:
        self.halted = Divergence(
            height, local.hex(), reason, None if other is None else other.hex()
        )
        log.error(
            "DIVERGENCE at height %d: local block %s, consortium %s: %s; this peer halts",
            height,
            local.hex(),
            None if other is None else other.hex(),
            reason,
        )
        with self._cond:
            self._cond.notify_all()

    def _mark_final(self, height: int) -> None:
        self._votes.pop(height, None)
        with self._cond:
            before = self.final_height
            self._final_above.add(height)
            while self.final_height + 1 in self._final_above:
                self.final_height += 1
                self._final_above.discard(self.final_height)
            self._cond.notify_all()
            advanced = self.final_height > before
        if advanced:
            for listener in self.listeners:
                try:
                    listener(self.final_height)
                except Exception:  # a projection's failure must not stop finality
                    log.exception("finality listener failed at height %d", self.final_height)

    def is_final(self, height: int) -> bool:
        with self._cond:
            return height <= self.final_height or height in self._final_above

    def wait_final(self, height: int, *, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not (height <= self.final_height or height in self._final_above):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.halted is not None:
                    return False
                self._cond.wait(remaining)
            return True

    def pending_heights(self) -> list[int]:
        return sorted(self._votes)


def stored_final_height(store: ChainStore, membership: MembershipHistory, head: int) -> int:
    """The highest stored block that already holds a quorum of signatures.

    Blocks become final in order, so only the tail after it can be non-final: the scan walks
    down from `head` and stops at the first final block (bounded by the tail).
    """
    for height in range(head, 0, -1):
        block = store.get_block(height)
        invariant(block is not None, f"block {height} is missing below the head")
        assert block is not None
        members = membership.after(height - 1)
        signatures = [Signature.from_json(s) for s in block.signatures]
        weight, _ = valid_signatures(block.header, signatures, members.weights)
        if weight >= members.quorum_weight:
            return height
    return 0


# -- own votes: published until the stream acknowledges them ------------------------------------


@dataclass(slots=True)
class _Unacked:
    vote: BlockVote
    attempts: int = 0
    due: float = 0.0  # monotonic time of the next attempt


class VotePublisher:
    """This peer's votes, each published until the signature stream acknowledges it.

    Finality *here* is no reason to stop: while the stream elects a new leader it refuses
    publishes (`NoStreamResponseError`), and this peer may meanwhile finalise a block with the
    other members' votes while its own never reached the stream; the others may then need
    exactly that vote, and would wait for it forever.  A vote the stream acknowledged (a
    duplicate acknowledgement included) is stored on a quorum of its servers, so every peer
    reads it; only then is it dropped here.  Retries back off per vote from
    `VOTE_RETRY_FIRST_S` to `VOTE_RETRY_MAX_S`, at most `VOTE_PUBLISH_PARALLEL_MAX` are in
    flight, and a reconnect makes every waiting vote due at once.

    `add` and `retry_now` may be called from any thread; `run` runs on the NATS loop.
    """

    def __init__(
        self,
        publish: Callable[[BlockVote], Awaitable[Any]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._publish = publish
        self._clock = clock
        self._lock = threading.Lock()
        self._unacked: OrderedDict[str, _Unacked] = OrderedDict()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self.acked = 0
        self.failures = 0

    def add(self, vote: BlockVote) -> None:
        with self._lock:
            if vote.msg_id in self._unacked:
                return
            if len(self._unacked) >= UNACKED_VOTES_MAX:
                _, dropped = self._unacked.popitem(last=False)
                log.error("too many unacknowledged votes: giving up on %d", dropped.vote.height)
            self._unacked[vote.msg_id] = _Unacked(vote, due=self._clock())
        self._wake_up()

    def retry_now(self) -> None:
        now = self._clock()
        with self._lock:
            for entry in self._unacked.values():
                entry.due = now
        self._wake_up()

    def pending(self) -> int:
        with self._lock:
            return len(self._unacked)

    def _wake_up(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(wake.set)

    async def run(self, stopping: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while not stopping.is_set():
            if not await self.publish_due():
                await self._sleep_until_due()

    async def publish_due(self) -> bool:
        """One round: publish the votes that are due; returns whether there were any."""
        now = self._clock()
        with self._lock:
            due = [e for e in self._unacked.values() if e.due <= now][:VOTE_PUBLISH_PARALLEL_MAX]
        if not due:
            return False
        outcomes = await asyncio.gather(
            *(self._publish(e.vote) for e in due), return_exceptions=True
        )
        now = self._clock()
        with self._lock:
            for entry, outcome in zip(due, outcomes, strict=True):
                if not isinstance(outcome, BaseException):
                    self._unacked.pop(entry.vote.msg_id, None)
                    self.acked += 1
                    continue
                self.failures += 1
                entry.attempts += 1
                entry.due = now + min(
                    VOTE_RETRY_MAX_S, VOTE_RETRY_FIRST_S * 2 ** min(entry.attempts - 1, 16)
                )
                if entry.attempts == 1 or entry.attempts % 10 == 0:
                    log.info(
                        "vote for %d not stored yet after %d attempt(s) (%r); retrying",
                        entry.vote.height,
                        entry.attempts,
                        outcome,
                    )
        return True

    async def _sleep_until_due(self) -> None:
        assert self._wake is not None
        with self._lock:
            next_due = min((e.due for e in self._unacked.values()), default=None)
        wait_s = 0.5 if next_due is None else min(0.5, max(0.0, next_due - self._clock()))
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=wait_s)


# -- the orderer: stream reader, applier and finality threads -----------------------------------


@dataclass(slots=True)
class OrdererStats:
    applied_seq: int = 0
    stream_last_seq: int = 0
    blocks: int = 0
    markers_published: int = 0
    resubscribes: int = 0
    apply_s: float = 0.0  # time spent applying (parse, verify, execute, commit)
    votes_seen: int = 0
    vote_start_seq: int = 0  # where this run began reading the signature stream


class JetStreamOrderer:
    """Runs a ClusterNode against the JetStream ordering service.

    Threads: the NATS loop (reading both streams into bounded queues, publishing), the applier
    (the only caller of `StreamCutter` and `produce_block`) and the finality thread.
    """

    def __init__(
        self,
        node: ClusterNode,
        store: ClusterStore,
        settings: OrderingSettings,
        *,
        name: str = "peer",
    ) -> None:
        self.node = node
        self.store = store
        self.settings = settings
        self.names = StreamNames(node.genesis.chain_id)
        self.link = NatsLink(settings.nats_urls, name)
        cursor = store.cursor_at(node.head.height) or StreamCursor(1)
        self.cutter = StreamCutter(node, store, cursor, chain_id=node.genesis.chain_id)
        self.final_listeners: list[Callable[[int], None]] = []
        self.finality = FinalityTracker(
            store,
            node.membership,
            start_height=self._final_start(),
            listeners=self.final_listeners,
        )
        self.stats = OrdererStats(applied_seq=cursor.seq - 1)
        self._messages: queue.Queue[StreamMessage] = queue.Queue(APPLY_QUEUE_MAX)
        self._votes: queue.Queue[tuple[int, bytes]] = queue.Queue(VOTE_QUEUE_MAX)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._tasks: list[Future[Any]] = []
        self._proposed: tuple[int, int, float] = (0, 0, 0.0)  # height, first seq, when
        self.votes = VotePublisher(self._send_vote)
        self.link.reconnect_listeners.append(self.votes.retry_now)
        self._counted_head = node.head.height  # heights the finality thread has seen commit
        node.orderer = self

    @property
    def halted(self) -> Divergence | None:
        return self.finality.halted

    def _final_start(self) -> int:
        return stored_final_height(self.store, self.node.membership, self.node.head.height)

    # -- life cycle ------------------------------------------------------------------------------
    def start(self, catch_up: Callable[[int], None] | None = None) -> None:
        """Connect, create the streams, then read and apply.

        `catch_up(first_seq)` is called when the stream no longer holds the messages this
        peer needs next (they are past its retention): it must bring the chain up to a block
        whose cursor is at or past `first_seq`, from another peer's blocks.
        """
        self.link.start()
        self._setup_streams()
        first_seq = self.link.call(self._first_seq(), timeout_s=PUBLISH_TIMEOUT_S * 2)
        if self.cutter.next_seq < first_seq and not self._stream_is_empty:
            if catch_up is None:
                raise OrderingUnavailable(
                    message=f"the stream starts at {first_seq}, this peer needs "
                    f"{self.cutter.next_seq}: catch up from another peer first"
                )
            catch_up(first_seq)
            cursor = self.store.cursor_at(self.node.head.height) or StreamCursor(1)
            self.cutter = StreamCutter(
                self.node, self.store, cursor, chain_id=self.node.genesis.chain_id
            )
            self.finality = FinalityTracker(
                self.store,
                self.node.membership,
                start_height=self._final_start(),
                listeners=self.final_listeners,
            )
            self._counted_head = self.node.head.height
        # Votes for blocks not final here are published again.  A vote for a block final here
        # that never reached the stream before a crash is not re-published (that would fill a
        # bounded stream with old votes): a peer that needs it fetches the stored quorum
        # signatures from the other peers instead (`offer_signatures`, cluster.py).
        for height in range(self.finality.final_height + 1, self.node.head.height + 1):
            self._queue_own_vote(height)
        self._tasks.append(self.link.spawn(self.votes.run(self._stopping)))
        self._tasks.append(self.link.spawn(self._read_orders()))
        self._tasks.append(self.link.spawn(self._read_votes()))
        for target, name in ((self._apply_loop, "applier"), (self._finality_loop, "finality")):
            thread = threading.Thread(target=target, name=f"zhijin-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info(
            "cluster peer %s: chain %s at height %d, stream seq %d, final %d",
            self.node.key.did,
            self.node.genesis.chain_id,
            self.node.head.height,
            self.cutter.next_seq,
            self.finality.final_height,
        )

    def _setup_streams(self) -> None:
        deadline = time.monotonic() + STREAM_SETUP_S_MAX
        while True:
            try:
                js = self._js()
                self.link.call(
                    ensure_streams(js, self.names, self.settings), timeout_s=PUBLISH_TIMEOUT_S * 3
                )
                return
            except Exception as exc:
                # JetStream answers "unavailable" until its meta leader is elected.
                if time.monotonic() > deadline:
                    raise OrderingUnavailable(message=f"JetStream is not ready: {exc}") from exc
                time.sleep(FAILURE_BACKOFF_S)

    _stream_is_empty = False

    async def _first_seq(self) -> int:
        info = await self._js().stream_info(self.names.order_stream)
        self._stream_is_empty = info.state.messages == 0 and info.state.last_seq == 0
        return int(info.state.first_seq)

    def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        for thread in self._threads:
            thread.join(10)
        self.link.stop()

    def _js(self) -> JetStreamContext:
        js = self.link.js
        if js is None:
            raise OrderingUnavailable(message="not connected to NATS")
        return js

    # -- publishing (gateway side) ---------------------------------------------------------------
    def publish_txs(self, txs: Sequence[Tx], *, as_batch: bool) -> dict[bytes, tuple[str, str]]:
        """Publish admitted txs; returns the problems of those the stream did not take."""
        if not txs:
            return {}
        messages: list[tuple[str, bytes, list[Tx]]] = []
        if as_batch and txs[0].batch_hash is not None:
            envelope = {
                "bodies": [dict(tx.body) for tx in txs],
                "signer": txs[0].signer,
                "signature": txs[0].signature.hex(),
            }
            messages.append((f"tx:{txs[0].batch_hash.hex()}", canonical(envelope), list(txs)))
        else:
            for tx in txs:
                messages.append((f"tx:{tx.hash_hex}", canonical(tx.envelope()), [tx]))
        problems: dict[bytes, tuple[str, str]] = {}
        for _, data, group in messages:
            if len(data) > MESSAGE_BYTES_MAX:
                for tx in group:
                    problems[tx.tx_hash] = ("tx_too_large", "the envelope exceeds the stream limit")
        to_send = [
            (msg_id, data) for msg_id, data, group in messages if group[0].tx_hash not in problems
        ]
        try:
            results = self.link.call(
                self._publish_all(self.names.tx_subject, to_send),
                timeout_s=PUBLISH_TIMEOUT_S + 2,
            )
        except Exception as exc:
            results = [exc] * len(to_send)
        sent = iter(results)
        for msg_id, _data, group in messages:
            if group[0].tx_hash in problems:
                continue
            outcome = next(sent)
            if isinstance(outcome, BaseException):
                problem = (
                    "ordering_unavailable",
                    f"the ordering service did not store the tx ({type(outcome).__name__}): "
                    "it may have lost its quorum; retry later",
                )
                for tx in group:
                    problems[tx.tx_hash] = problem
                log.warning("publish %s failed: %r", msg_id, outcome)
        return problems

    async def _publish_all(self, subject: str, messages: Sequence[tuple[str, bytes]]) -> list[Any]:
        js = self._js()
        return await asyncio.gather(
            *(
                js.publish(
                    subject, data, timeout=PUBLISH_TIMEOUT_S, headers={"Nats-Msg-Id": msg_id}
                )
                for msg_id, data in messages
            ),
            return_exceptions=True,
        )

    # -- reading the streams ---------------------------------------------------------------------
    async def _subscribe(self, subject: str, stream: str, start_seq: int) -> Any:
        js = self._js()
        return await js.subscribe(
            subject,
            stream=stream,
            ordered_consumer=True,
            idle_heartbeat=IDLE_HEARTBEAT_S,
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            config=api.ConsumerConfig(opt_start_seq=start_seq),
            pending_msgs_limit=APPLY_QUEUE_MAX,
        )

    async def _read_orders(self) -> None:
        await self._read(
            self.names.order_filter,
            self.names.order_stream,
            lambda: self.cutter.next_seq,
            self._enqueue_order,
        )

    async def _read_votes(self) -> None:
        start_seq = 1
        for _ in range(10):  # bounded: on persistent failure, re-read the whole stream
            try:
                start_seq = await self._vote_start_seq(self._vote_replay_start())
                break
            except Exception as exc:
                log.info("locating the vote replay start failed (%r); retrying", exc)
                await asyncio.sleep(FAILURE_BACKOFF_S)
        self.stats.vote_start_seq = start_seq
        await self._read(
            self.names.sig_subject, self.names.sig_stream, lambda: start_seq, self._enqueue_vote
        )

    async def _vote_start_seq(self, start_time: datetime) -> int:
        """The first signature-stream sequence at or after `start_time`."""
        js = self._js()
        info = await js.stream_info(self.names.sig_stream)
        after_last = int(info.state.last_seq) + 1
        if info.state.messages == 0:
            return after_last
        sub = await js.subscribe(
            self.names.sig_subject,
            stream=self.names.sig_stream,
            ordered_consumer=True,
            deliver_policy=api.DeliverPolicy.BY_START_TIME,
            config=api.ConsumerConfig(opt_start_time=start_time),
        )
        try:
            msg = await sub.next_msg(timeout=VOTE_LOCATE_S)
            return int(msg.metadata.sequence.stream)
        except nats.errors.TimeoutError:
            return after_last  # nothing since then: read only what comes next
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    def _vote_replay_start(self) -> datetime:
        """Where a (re)started peer begins reading votes: shortly before the first block that
        is not final here, so votes published while it was down rebuild its finality, without
        re-reading (and re-verifying) the whole retained signature stream.

        A vote is published after its signer committed the block, hence after the block time
        (the proposer's clock); `VOTE_REPLAY_MARGIN_S` absorbs clock skew between members.
        """
        height = min(self.finality.final_height + 1, self.node.head.height)
        block = self.store.get_block(height)
        time_ms = block.header_json()["time_ms"] if block is not None else self.node.head.time_ms
        start_s = time_ms / 1000 - VOTE_REPLAY_MARGIN_S
        return datetime.fromtimestamp(max(start_s, 0), tz=UTC)

    async def _read(
        self,
        subject: str,
        stream: str,
        start: Callable[[], int],
        handle: Callable[[Any], Coroutine[Any, Any, int]],
    ) -> None:
        """Read `stream` in order from `start()`, re-subscribing when the reader stalls.

        The ordered consumer lives on one server: when that server dies the consumer goes with
        it, so a reader that hears nothing while the stream has more re-creates it from the
        next sequence it needs.
        """
        next_seq = start()
        while not self._stopping.is_set():
            try:
                sub = await self._subscribe(subject, stream, next_seq)
            except Exception as exc:
                log.info("subscribe to %s failed (%r); retrying", stream, exc)
                await asyncio.sleep(FAILURE_BACKOFF_S)
                continue
            log.info("reading %s from %d", stream, next_seq)
            quiet_since = time.monotonic()
            try:
                while not self._stopping.is_set():
                    try:
                        msg = await sub.next_msg(timeout=0.5)
                    except nats.errors.TimeoutError:
                        if time.monotonic() - quiet_since > STALL_S and await self._behind(
                            stream, next_seq
                        ):
                            self.stats.resubscribes += 1
                            log.info("reader of %s stalled at %d: re-subscribing", stream, next_seq)
                            break
                        continue
                    quiet_since = time.monotonic()
                    seq = msg.metadata.sequence.stream
                    if seq < next_seq:
                        continue  # a redelivery after a reset
                    if seq > next_seq:
                        if not await self._gap_is_purged(stream, next_seq, seq):
                            break  # a message went missing: re-read from the one we need
                        if stream == self.names.order_stream and next_seq > 1:
                            # Applying past a hole would cut other blocks than the members
                            # did: stop, and catch up from other peers on the next start.
                            self.finality.halt_for(
                                self.node.head.height + 1,
                                self.node.head.block_hash,
                                f"stream messages {next_seq}..{seq - 1} are past retention: "
                                "restart this peer to catch up from other peers",
                            )
                            return
                    next_seq = await handle(msg)
            except Exception:
                # A reader that died here would leave this peer deaf to the stream with no
                # sign but a stalled height: log it and read again from where it stood.
                log.exception("reading %s failed at %d; re-subscribing", stream, next_seq)
                await asyncio.sleep(FAILURE_BACKOFF_S)
            finally:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    async def _behind(self, stream: str, next_seq: int) -> bool:
        try:
            info = await self._js().stream_info(stream)
        except Exception:
            return True
        if stream == self.names.order_stream:
            self.stats.stream_last_seq = info.state.last_seq
        return bool(info.state.last_seq >= next_seq)

    async def _gap_is_purged(self, stream: str, next_seq: int, seq: int) -> bool:
        """A jump in sequence is fine only if the messages in between are gone from the stream
        (retention); then the chain must come from another peer (cluster.py's catch-up)."""
        try:
            info = await self._js().stream_info(stream)
        except Exception:
            return False
        if info.state.first_seq > next_seq:
            log.error(
                "%s: messages %d..%d are past the stream's retention", stream, next_seq, seq - 1
            )
            return True
        return False

    async def _enqueue_order(self, msg: Any) -> int:
        seq = msg.metadata.sequence.stream
        kind = "cut" if msg.subject == self.names.cut_subject else "tx"
        item = StreamMessage(seq, kind, msg.data, msg.metadata.num_pending)
        while not self._stopping.is_set():
            try:
                self._messages.put_nowait(item)
                break
            except queue.Full:
                await asyncio.sleep(0.005)  # the applier is behind: hold the reader (bounded)
        return int(seq) + 1

    async def _enqueue_vote(self, msg: Any) -> int:
        seq = msg.metadata.sequence.stream
        while not self._stopping.is_set():
            try:
                self._votes.put_nowait((seq, msg.data))
                break
            except queue.Full:
                await asyncio.sleep(0.005)
        return int(seq) + 1

    # -- applying --------------------------------------------------------------------------------
    def _take(self, timeout_s: float) -> list[StreamMessage]:
        try:
            first = self._messages.get(timeout=timeout_s)
        except queue.Empty:
            return []
        taken = [first]
        while len(taken) < APPLY_BATCH_MAX:
            try:
                taken.append(self._messages.get_nowait())
            except queue.Empty:
                break
        return taken

    def _apply_loop(self) -> None:
        at_tail = False
        while not self._stopping.is_set():
            if self.halted is not None:
                time.sleep(0.2)
                continue
            messages = self._take(0.01 if self.cutter.pending else 0.2)
            try:
                if messages:
                    started = time.perf_counter()
                    self._apply(messages)
                    self.stats.apply_s += time.perf_counter() - started
                    at_tail = messages[-1].pending_after == 0
                elif self.cutter.pending:
                    at_tail = True
                if at_tail:
                    self._maybe_propose()
            except Exception:
                # An exception here is a bug or a broken database, not a stream condition: the
                # peer cannot go on applying without risking a gap, so it halts loudly.
                log.exception("applying the stream failed; this peer halts")
                self.finality.halt_for(
                    self.node.head.height + 1, self.node.head.block_hash, "applying failed"
                )

    def _apply(self, messages: Sequence[StreamMessage]) -> None:
        run: list[StreamMessage] = []
        for message in messages:
            if message.seq < self.cutter.next_seq:
                continue
            self.cutter.next_seq = message.seq + 1
            self.stats.applied_seq = message.seq
            if message.kind == "tx":
                run.append(message)
                continue
            if run:
                self.cutter.add_txs(run)
                run = []
            members = self.node.membership.latest().weights  # as of the head: marker rule
            for height, _ in self.cutter.on_marker(message, members):
                self.stats.blocks += 1
                self._after_commit(height)
                if self.halted is not None:
                    return
        if run:
            self.cutter.add_txs(run)

    def _after_commit(self, height: int) -> None:
        self._queue_own_vote(height)

    def _queue_own_vote(self, height: int) -> None:
        block = self.store.get_block(height)
        if block is None:
            return
        own = next((s for s in block.signatures if s["signer"] == self.node.key.did), None)
        if own is None:
            return
        self.votes.add(BlockVote(height, block.header, Signature.from_json(own)))
        # Wake the finality thread: votes that arrived before this block can now count.
        with contextlib.suppress(queue.Full):
            self._votes.put_nowait((0, b""))

    def offer_signatures(self, header: Mapping[str, Any], signatures: Sequence[Any]) -> int:
        """Count signatures over `header` obtained elsewhere (another peer's stored block) as
        votes; they pass the same checks as votes from the stream.  Returns how many queued."""
        encoded = canonical(BlockHeader.from_json(header).to_json())
        height = int(header["height"])
        queued = 0
        for item in signatures:
            vote = BlockVote(height, encoded, Signature.from_json(item))
            try:
                self._votes.put_nowait((-1, vote.encode()))
                queued += 1
            except queue.Full:
                break
        return queued

    async def _send_vote(self, vote: BlockVote) -> None:
        await self._js().publish(
            self.names.sig_subject,
            vote.encode(),
            timeout=PUBLISH_TIMEOUT_S,
            headers={"Nats-Msg-Id": vote.msg_id},
        )

    def _maybe_propose(self) -> None:
        cutter = self.cutter
        if not cutter.pending:
            return
        if not self.node.membership.latest().is_member(self.node.key.did):
            return  # a joining (or removed) member's marker would be ignored by every peer
        waited_ms = (time.monotonic() - cutter.first_pending_at) * 1000
        if len(cutter.pending) < self.settings.block_txs_target and (
            waited_ms < self.settings.block_interval_ms
        ):
            return
        height = self.node.head.height + 1
        first_seq = next(iter(cutter.pending.values())).seq
        last_height, last_first, last_at = self._proposed
        if (height, first_seq) == (last_height, last_first) and (
            time.monotonic() - last_at < CUT_RETRY_S
        ):
            return
        marker = CutMarker.make(
            self.node.key,
            chain_id=self.node.genesis.chain_id,
            height=height,
            time_ms=self.node.clock(),
            first_seq=first_seq,
        )
        self._proposed = (height, first_seq, time.monotonic())
        self.stats.markers_published += 1

        async def send() -> None:
            try:
                await self._js().publish(
                    self.names.cut_subject,
                    marker.encode(),
                    timeout=PUBLISH_TIMEOUT_S,
                    headers={"Nats-Msg-Id": marker.msg_id},
                )
            except Exception as exc:
                log.info("cut marker for %d not published (%r); will retry", height, exc)

        self.link.spawn(send())

    # -- finality --------------------------------------------------------------------------------
    def _finality_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                seq, data = self._votes.get(timeout=0.2)
            except queue.Empty:
                seq, data = 0, b""
            try:
                head = self.node.head.height
                if seq == 0 and data == b"":
                    for height in self._committed_since_last(head):
                        self.finality.on_commit(height)
                else:
                    self._on_vote_message(seq, data, head)
            except Exception:
                log.exception("finality bookkeeping failed")
                time.sleep(FAILURE_BACKOFF_S)

    def _committed_since_last(self, head: int) -> list[int]:
        start = max(self._counted_head, self.finality.final_height) + 1
        self._counted_head = max(self._counted_head, head)
        return list(range(start, head + 1))

    def _on_vote_message(self, seq: int, data: bytes, head: int) -> None:
        self.stats.votes_seen += 1
        try:
            vote = BlockVote.decode(data)
        except ValueError as exc:
            self.finality.rejected_votes += 1
            log.warning("signature stream seq %d: %s", seq, exc)
            return
        for height in self._committed_since_last(head):
            self.finality.on_commit(height)
        self.finality.on_vote(vote, head)

    # -- status ----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        head = self.node.head
        return {
            "height": head.height,
            "block_hash": head.block_hash.hex(),
            "state_root": head.state_root.hex(),
            "final_height": self.finality.final_height,
            "applied_seq": self.stats.applied_seq,
            "stream_last_seq": self.stats.stream_last_seq,
            "pending_txs": len(self.cutter.pending),
            "apply_queue": self._messages.qsize(),
            "markers_published": self.stats.markers_published,
            "markers_ignored": self.cutter.markers_ignored,
            "skipped_msgs": self.cutter.skipped,
            "rejected_votes": self.finality.rejected_votes,
            "votes_unacked": self.votes.pending(),
            "vote_start_seq": self.stats.vote_start_seq,
            "resubscribes": self.stats.resubscribes,
            "blocks_applied": self.stats.blocks,
            "apply_s": round(self.stats.apply_s, 3),
            "halted": None if self.halted is None else self.halted.to_json(),
        }
