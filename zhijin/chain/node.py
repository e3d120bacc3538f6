"""The chain node: admission, mempool, block production and durable commit.

Admission (`submit`) runs on the caller's thread: it parses and authenticates envelopes (the
Ed25519 check releases the GIL, so several submitting threads use several cores), then reserves
each (sender, nonce) pair before checking the database, so two submissions of the same pair can
never both get in.  The ordering service decides the order; `produce_block` executes a list of
transactions, derives every root, signs the header and the tree head, and commits the block in
one database transaction.  Only after that commit are waiters told "committed".

With `pipeline=True` (solo ordering, `ZHIJIN_CHAIN_PIPELINE`), block h's database commit runs
on a committer thread while the producing thread executes and seals block h+1 (SQLite and
psycopg release the interpreter lock while they write): at most one block in flight, commits in
strict height order, one database transaction per block.  Block h+1 reads h's write set first
(`_overlay`), then the state cache, then the database.  h's hash, state root, log-tree nodes,
membership and contracts are applied when h is sealed (`_tip`); `head` stays the last durable
block.  Waiters are answered and nonce reservations released only after h's durable commit.  If
h's commit fails, its waiters fail, h+1 is discarded and its waiters fail too, and the cache,
log tree, members, contracts and tip go back to the store's last durable block.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from zhijin.chain import limits
from zhijin.chain.block import (
    ZERO_HASH,
    BlockHeader,
    TreeHead,
    encode_write_set,
    next_state_root,
    next_state_root_encoded,
    results_root_encoded,
    sign_header,
    sign_tree_head,
)
from zhijin.chain.codec import canonical_trusted, decode, decode_trusted
from zhijin.chain.contract import (
    DELETED,
    BlockInfo,
    BlockState,
    ContractRegistry,
    TxInfo,
    TxOutcome,
    apply_tx,
    merged_scan,
    run_end_block,
    tx_info,
)
from zhijin.chain.contract_set import ContractSchedule
from zhijin.chain.crypto import KeyPair, SignatureVerifier
from zhijin.chain.errors import TxRejected, Unavailable, invariant
from zhijin.chain.genesis import Genesis
from zhijin.chain.governance import activation_code_problem
from zhijin.chain.membership import MembershipHistory
from zhijin.chain.merkle import LogTree, leaf_hash, merkle_root
from zhijin.chain.store import BlockRecord, ChainStore, TxRecord
from zhijin.chain.tx import Tx, parse_envelope, parse_envelopes

__all__ = ["Admission", "Head", "Node", "NodeError"]

log = logging.getLogger("zhijin.chain.node")

STATE_CACHE_ENTRIES_MAX = 200_000
PRODUCE_STAGES = ("prefetch", "execute", "seal", "commit", "finish")
RECENT_RESULTS_MAX = 200_000


class NodeError(Unavailable):
    code = "node_unavailable"


@dataclass(frozen=True, slots=True)
class Head:
    height: int
    block_hash: bytes
    state_root: bytes
    time_ms: int
    log_size: int


@dataclass(slots=True)
class Admission:
    """The answer to one submitted transaction: accepted or rejected with a code.

    `future` (for accepted txs) resolves to the recorded result once the tx's block commits;
    it is created on first use, so submitters that never wait pay nothing for it.
    """

    tx_hash: str | None
    accepted: bool
    code: str | None = None
    message: str | None = None
    batch: bool = False  # the tx came in a member batch envelope
    _node: Node | None = field(default=None, repr=False)
    _future: Future[dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def future(self) -> Future[dict[str, Any]] | None:
        if self._future is None and self.accepted and self._node is not None:
            assert self.tx_hash is not None
            self._future = self._node.waiter(bytes.fromhex(self.tx_hash))
        return self._future


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class _Sealed:
    """A block executed and sealed, not yet durable."""

    txs: Sequence[Tx]
    record: BlockRecord
    head: Head  # what the head becomes once the block commits
    results: list[dict[str, Any]]
    writes: list[tuple[str, bytes | None]]


@dataclass(slots=True)
class _InFlight:
    """A sealed block whose commit runs on the committer thread (pipeline mode)."""

    sealed: _Sealed
    durable: threading.Event = field(default_factory=threading.Event)  # committed or failed
    failed: bool = False
    job: Future[None] | None = None  # done once its waiters are answered too


class _CachedReader:
    """State reads for one block: the in-flight block's writes (pipeline mode), then the
    node's cache, then the block's DB connection."""

    def __init__(self, node: Node, conn: Connection) -> None:
        self._node = node
        self._conn = conn
        self._overlay = node._overlay  # the in-flight block's writes, fixed for this block

    def get(self, key: str) -> Any | None:
        overlay = self._overlay
        cache = self._node._state_cache
        if key in overlay:
            raw = overlay[key]
        elif key in cache:
            raw = cache[key]
        else:
            raw = self._node.store.state_get_raw(self._conn, key)
            self._node._cache_put(key, raw)
        # Cached and stored values are canonical bytes written by committed blocks.
        return None if raw is None else decode_trusted(raw)

    def exists(self, key: str) -> bool:
        if key in self._overlay:
            return self._overlay[key] is not None
        cache = self._node._state_cache
        if key in cache:
            return cache[key] is not None
        raw = self._node.store.state_get_raw(self._conn, key)
        self._node._cache_put(key, raw)
        return raw is not None

    def scan(self, prefix: str, start_after: str, limit: int) -> list[tuple[str, Any]]:
        store, conn = self._node.store, self._conn

        def committed(p: str, after: str, n: int) -> list[tuple[str, Any]]:
            return store.state_scan(conn, p, after, n)

        staged = {
            key: DELETED if raw is None else raw
            for key, raw in self._overlay.items()
            if key.startswith(prefix) and key > start_after
        }
        if not staged:
            return committed(prefix, start_after, limit)
        # The two-level scan: the in-flight block's writes over the committed rows.
        return merged_scan(committed, staged, prefix, start_after, limit)


class Node:
    def __init__(
        self,
        *,
        store: ChainStore,
        genesis: Genesis,
        registry: ContractRegistry,
        key: KeyPair,
        clock: Callable[[], int] = now_ms,
        mempool_txs_max: int = limits.MEMPOOL_TXS_MAX,
        verify_threads: int | None = None,
        pipeline: bool = False,
    ) -> None:
        """`pipeline`: commit each block on a committer thread while the next one executes
        (see the module's docstring); the JetStream orderer keeps the synchronous path."""
        self.store = store
        self.pipeline = pipeline
        # Signatures of many envelopes at once (submit_envelopes) are verified on this many
        # threads (default: the cores); libsodium runs them without the GIL.
        self.verifier = SignatureVerifier(verify_threads)
        self.genesis = genesis
        self.registry = registry
        self.key = key
        self.clock = clock
        self.mempool_txs_max = mempool_txs_max
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._mempool: OrderedDict[bytes, Tx] = OrderedDict()
        self._reserved: set[tuple[str, int]] = set()
        self._waiters: dict[bytes, list[Future[dict[str, Any]]]] = {}
        # Results of the latest txs, so a waiter that arrives after the commit is answered.
        self._recent: OrderedDict[bytes, dict[str, Any] | NodeError] = OrderedDict()
        self._arrived = threading.Condition(self._lock)
        self._state_cache: OrderedDict[str, bytes | None] = OrderedDict()  # canonical values
        self._listeners: list[Callable[[int], None]] = []
        # CPU seconds (of the producing thread) per stage of block production, summed over the
        # node's life: for benchmarks and profiling.  "commit" is writing the block's rows and
        # the database commit; "finish" answers waiters and runs the commit listeners.
        self.stage_cpu_s: dict[str, float] = dict.fromkeys(PRODUCE_STAGES, 0.0)
        self._stale = False  # a failed block left head and log tree unverified (see produce)
        # Pipeline mode: the block whose commit is running, its writes (read first by the next
        # block), and the one committer thread.
        self._inflight: _InFlight | None = None
        self._overlay: dict[str, bytes | None] = {}
        self._committer: ThreadPoolExecutor | None = None
        self._check_genesis_contracts()
        store.create_schema()
        self.head = self._load_or_create_head()  # the last durable block
        self._tip = self.head  # the last sealed block (the head, unless one is in flight)
        self.log_tree = LogTree(store, self.head.log_size)
        # Members and quorum per height, from state (genesis only seeds block 0); extended on
        # every commit that writes governance/ keys.
        self.membership = MembershipHistory.load(store)
        # Contracts in force per height: genesis's, then those governance activated.
        self.contracts = ContractSchedule.load(store, genesis.contracts)
        self._check_activated_contracts()
        self._in_force: tuple[dict[str, str], ContractRegistry] | None = None  # the last view

    # -- start-up --------------------------------------------------------------------------------
    def _check_genesis_contracts(self) -> None:
        """This node's code must run every genesis contract at its version; extra contracts,
        which the chain never activated, are fine (blocks run only the contracts in force)."""
        ours = self.registry.versions()
        wanted = dict(self.genesis.contracts)
        if any(ours.get(name) != version for name, version in wanted.items()):
            raise NodeError(
                "contract_mismatch",
                f"genesis names contracts {wanted}, this node runs {ours}",
            )

    def _check_activated_contracts(self) -> None:
        """Refuse to start without the code of a contract governance activated (in force or
        scheduled): this node could not execute the blocks that use it."""
        missing = self._missing_code()
        if missing is not None:
            raise missing

    def _missing_code(self, height: int | None = None) -> NodeError | None:
        """An activated contract this node's code lacks (in force at `height`, or at all)."""
        ours = self.registry.versions()
        for activation in self.contracts.activations():
            if height is not None and activation.activation_height > height:
                continue
            if ours.get(activation.name) != activation.version:
                return NodeError(
                    "contract_code_missing",
                    f"governance activated contract {activation.name} version "
                    f"{activation.version} from height {activation.activation_height} "
                    f"(proposal {activation.proposal_id}); this node's code runs "
                    f"{activation.name} {ours.get(activation.name) or 'not at all'}: "
                    "install the code that has it",
                )
        return None

    def registry_at(self, height: int) -> ContractRegistry:
        """The contracts in force for the block at `height` (a view of this node's code)."""
        versions = self.contracts.in_force(height)
        last = self._in_force
        if last is not None and last[0] == versions:
            return last[1]
        missing = self._missing_code(height)
        if missing is not None:  # activated while this node ran older code: it stops here
            raise missing
        view = self.registry.in_force(versions)
        self._in_force = (versions, view)
        return view

    def _load_or_create_head(self) -> Head:
        stored_genesis = self.store.get_meta("genesis_hash")
        if stored_genesis is None:
            self._commit_genesis_block()
        elif stored_genesis != self.genesis.hash().hex():
            raise NodeError("genesis_mismatch", "the database belongs to another genesis")
        height = self.store.head_height()
        invariant(height is not None, "a chain database without block 0")
        block = self.store.get_block(height or 0)
        invariant(block is not None, "head block missing")
        assert block is not None
        header = block.header_json()
        return Head(
            height=block.height,
            block_hash=block.block_hash,
            state_root=bytes.fromhex(header["state_root"]),
            time_ms=header["time_ms"],
            log_size=header["log_size"],
        )

    def _commit_genesis_block(self) -> None:
        writes = encode_write_set(self.genesis.write_set())
        header = genesis_header(self.genesis)
        record = BlockRecord(
            height=0,
            block_hash=header.hash(),
            header=header.encoded(),
            signatures=[],
            end_block_events=[],
            txs=[],
            batches=[],
            writes=writes,
            log_nodes=[],
            tree_size=0,
            log_root=header.log_root,
            tree_head_signatures=[],
        )
        with self.store.engine.begin() as conn:
            self.store.commit_block(conn, record)
        self.store.set_meta("genesis_hash", self.genesis.hash().hex())
        self.store.set_meta("chain_id", self.genesis.chain_id)

    # -- admission -------------------------------------------------------------------------------
    def submit(self, envelope: bytes | str | dict[str, Any]) -> list[Admission]:
        """Admit one envelope (single or batch).  A batch is admitted or refused as a whole."""
        try:
            txs = parse_envelope(envelope)
        except TxRejected as exc:
            return [Admission(None, False, exc.code, exc.message)]
        answers = self.admit(txs, atomic=len(txs) > 1)
        if txs[0].batch_hash is not None:
            for answer in answers:
                answer.batch = True
        return answers

    def submit_many(self, envelopes: Iterable[bytes | str | dict[str, Any]]) -> list[Admission]:
        """Admit many envelopes, one answer per tx (`submit_envelopes`, flattened)."""
        return [answer for group in self.submit_envelopes(envelopes) for answer in group]

    def submit_envelopes(
        self, envelopes: Iterable[bytes | str | dict[str, Any]], *, decoded: bool = False
    ) -> list[list[Admission]]:
        """Admit many envelopes (single or batch), each accepted or refused on its own; a
        batch envelope still as a whole.  One answer list per envelope, in order.

        Each envelope is decoded once; the signatures are verified together on the
        verifier's threads, and the single envelopes share one nonce query.  `decoded`: the
        envelopes are values `codec.decode` returned (checked already, see `open_envelope`).
        """
        parsed = parse_envelopes(envelopes, self.verifier, decoded=decoded)
        answers: list[list[Admission] | None] = []
        singles: list[Tx] = []
        for item in parsed:
            if isinstance(item, TxRejected):
                answers.append([Admission(None, False, item.code, item.message)])
            elif item[0].batch_hash is not None:
                group = self.admit(item, atomic=len(item) > 1)
                for answer in group:
                    answer.batch = True
                answers.append(group)
            else:
                singles.extend(item)
                answers.append(None)
        admitted = iter(self.admit(singles, atomic=False)) if singles else iter(())
        return [group if group is not None else [next(admitted)] for group in answers]

    def admit(self, txs: Sequence[Tx], *, atomic: bool) -> list[Admission]:
        """Stateless checks, nonce reservation, the committed-nonce query, then the mempool."""
        now = self.clock()
        problems = [self._stateless_problem(tx, now) for tx in txs]
        if atomic and any(problems):
            return _refuse_all(txs, problems)
        wanted = [i for i, problem in enumerate(problems) if problem is None]
        reserved = self._reserve(txs, wanted)
        for i in wanted:
            if i not in reserved:
                problems[i] = ("nonce_used", "this sender's nonce is already pending")
        used = self.store.used_nonces([(txs[i].sender, txs[i].nonce) for i in reserved])
        for i in reserved:
            if (txs[i].sender, txs[i].nonce) in used:
                problems[i] = ("nonce_used", "this sender already used this nonce")
        if atomic and any(problems):
            self._release(txs[i] for i in reserved)
            return _refuse_all(txs, problems)
        self._release(txs[i] for i in reserved if problems[i] is not None)
        return self._enqueue(txs, problems, atomic=atomic)

    def _stateless_problem(self, tx: Tx, now: int) -> tuple[str, str] | None:
        body = tx.body
        if body["chain_id"] != self.genesis.chain_id:
            return ("wrong_chain", f"this chain is {self.genesis.chain_id}")
        if body["valid_until"] < now:
            return ("expired", "valid_until has passed")
        if body["valid_until"] > now + limits.VALIDITY_MS_MAX:
            return ("valid_until_too_far", "valid_until may be at most 24 hours ahead")
        contract = self.registry.get(body["contract"])
        if contract is None:
            return ("unknown_contract", f"no contract named {body['contract']}")
        if body["contract"] not in self.contracts.known():
            # A tx to a scheduled contract is admitted: its block decides (contract_not_active
            # before the activation height).
            return (
                "contract_not_active",
                f"this chain has not activated {body['contract']} (governance activate_contract)",
            )
        if body["method"] not in contract.methods or body["method"] in contract.readonly_methods:
            return ("unknown_method", f"{body['contract']} has no method {body['method']}")
        if (body["contract"], body["method"]) == ("governance", "activate_contract"):
            problem = activation_code_problem(body["args"], self.registry)
            if problem is not None:
                return problem
        if tx.signer != tx.sender and not self.membership.latest().is_member(tx.signer):
            return ("unauthorized_signer", "the signer is neither the sender nor a member")
        return None

    def _reserve(self, txs: Sequence[Tx], indices: Sequence[int]) -> set[int]:
        reserved: set[int] = set()
        with self._lock:
            for i in indices:
                pair = (txs[i].sender, txs[i].nonce)
                if pair in self._reserved:
                    continue
                self._reserved.add(pair)
                reserved.add(i)
        return reserved

    def _release(self, txs: Iterable[Tx]) -> None:
        with self._lock:
            for tx in txs:
                self._reserved.discard((tx.sender, tx.nonce))

    def _enqueue(
        self, txs: Sequence[Tx], problems: list[tuple[str, str] | None], *, atomic: bool
    ) -> list[Admission]:
        answers: list[Admission] = []
        with self._lock:
            room = self.mempool_txs_max - len(self._mempool)
            if atomic and room < len(txs):
                for tx in txs:
                    self._reserved.discard((tx.sender, tx.nonce))
                return [
                    Admission(tx.hash_hex, False, "mempool_full", "the node is saturated")
                    for tx in txs
                ]
            for tx, problem in zip(txs, problems, strict=True):
                if problem is None and room <= 0:
                    problem = ("mempool_full", "the node is saturated; retry later")
                    self._reserved.discard((tx.sender, tx.nonce))
                if problem is not None:
                    answers.append(Admission(tx.hash_hex, False, problem[0], problem[1]))
                    continue
                self._mempool[tx.tx_hash] = tx
                # A resubmission after its block failed: its waiters wait for the new block.
                self._recent.pop(tx.tx_hash, None)
                room -= 1
                answers.append(Admission(tx.hash_hex, True, _node=self))
            if room < self.mempool_txs_max:
                self._arrived.notify_all()
        return answers

    # -- ordering side ---------------------------------------------------------------------------
    def mempool_size(self) -> int:
        with self._lock:
            return len(self._mempool)

    def take(self, count: int, *, timeout_s: float) -> list[Tx]:
        """Up to `count` txs in arrival order, waiting up to `timeout_s` for the first one."""
        with self._lock:
            if not self._mempool:
                self._arrived.wait(timeout_s)
            taken: list[Tx] = []
            while self._mempool and len(taken) < count:
                taken.append(self._mempool.popitem(last=False)[1])
            return taken

    def wait_for(self, count: int, *, deadline: float) -> None:
        """Block until the mempool holds `count` txs or the monotonic `deadline` passes."""
        with self._lock:
            while len(self._mempool) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._arrived.wait(remaining)

    def add_listener(self, listener: Callable[[int], None]) -> None:
        """Call `listener(height)` after each commit (projections, notifications)."""
        self._listeners.append(listener)

    # -- block production ------------------------------------------------------------------------
    def produce_block(
        self, txs: Sequence[Tx], *, time_ms: int | None = None, proposer: str | None = None
    ) -> int:
        """Execute, commit and sign one block of `txs`; returns its height.

        `time_ms` is the block time when the ordering service fixes it (cluster mode: every
        peer must use the same); by default the node's clock, kept strictly increasing.
        `proposer` is the header's proposer when the ordering service names it (cluster mode:
        the member whose cut marker won, so every peer derives the same header); by default
        this node's member.
        """
        invariant(0 < len(txs) <= limits.BLOCK_TXS_MAX, "block size out of bounds")
        if self.pipeline:
            return self._produce_pipelined(txs, time_ms, proposer)
        with self._commit_lock:
            if self._stale and not self._resync_with_store():
                self._fail_waiters(txs)
                raise NodeError("store_unreadable", "the chain database cannot be read now")
            expected = self.head.height + 1
            try:
                height, results = self._produce(txs, time_ms, proposer)
            except Exception:
                # Forget cached state and the log tree's staged nodes, and take head, log tree
                # and members from the store again: whatever failed, the store is the truth.
                self._state_cache.clear()
                if not self._resync_with_store():
                    self._fail_waiters(txs)
                    raise
                if self.head.height != expected:
                    self._fail_waiters(txs)  # nothing was committed: no client left hanging
                    raise
                # The block committed before the failure (in the steps after the database
                # commit): it stands, and its txs are answered with their stored results.
                log.exception("block %d committed, then its bookkeeping failed", expected)
                height = expected
                results = [decode_trusted(stored.result) for stored in self.store.txs_at(height)]
        started = time.thread_time()
        self._finish(txs, height, results)
        self.stage_cpu_s["finish"] += time.thread_time() - started
        return height

    def _resync_with_store(self) -> bool:
        """Head, log tree and members from the store again, after a failed block.

        False if the store cannot be read now: the node is then marked stale and re-reads
        before its next block, so it never builds on a log tree holding a lost block's nodes.
        """
        try:
            head = self._load_or_create_head()
            membership = MembershipHistory.load(self.store)
            contracts = ContractSchedule.load(self.store, self.genesis.contracts)
            log_tree = LogTree(self.store, head.log_size)
        except Exception:
            log.exception("cannot re-read the head from the store")
            self._stale = True
            return False
        self.head, self.membership, self.log_tree = head, membership, log_tree
        self._tip = head
        self.contracts = contracts
        self._stale = False
        return True

    def _produce(
        self, txs: Sequence[Tx], time_ms: int | None, proposer: str | None = None
    ) -> tuple[int, list[dict[str, Any]]]:
        with self.store.engine.begin() as conn:
            sealed = self._execute_and_seal(conn, txs, time_ms, proposer)
            started = time.thread_time()
            self.store.commit_block(conn, sealed.record)
        self.stage_cpu_s["commit"] += time.thread_time() - started
        for key, raw in sealed.writes:
            self._cache_put(key, raw)
        self._apply_governance(sealed.head.height, sealed.writes)
        self.head = sealed.head
        return sealed.head.height, sealed.results

    def _execute_and_seal(
        self, conn: Connection, txs: Sequence[Tx], time_ms: int | None, proposer: str | None
    ) -> _Sealed:
        """Execute `txs` as the block after the tip, reading state through `conn`, and seal it:
        tip, log tree, members and contracts then include it (the caller commits it)."""
        tip = self._tip
        if time_ms is None:
            time_ms = max(tip.time_ms + 1, self.clock())
        invariant(time_ms > tip.time_ms, "block time must increase")
        block = BlockInfo(chain_id=self.genesis.chain_id, height=tip.height + 1, time_ms=time_ms)
        cpu = self.stage_cpu_s
        started = time.thread_time()
        registry = self.registry_at(block.height)
        infos = self._prefetch(conn, txs)
        state = BlockState(_CachedReader(self, conn))
        prefetched = time.thread_time()
        results: list[dict[str, Any]] = []
        encoded_results: list[bytes] = []
        for tx, info in zip(txs, infos, strict=True):
            # Encoded at once: an outcome is dropped as soon as its result is recorded.
            outcome = self._execute(registry, state, tx, info, block)
            result = outcome.to_json()
            results.append(result)
            encoded_results.append(outcome.encoded(result))
        end_events = run_end_block(registry, state, block)
        write_set = state.write_set()
        executed = time.thread_time()
        record, header = self._seal(
            txs, block, encoded_results, end_events, write_set, proposer or self.key.did
        )
        cpu["prefetch"] += prefetched - started
        cpu["execute"] += executed - prefetched
        cpu["seal"] += time.thread_time() - executed
        self._tip = Head(
            height=block.height,
            block_hash=record.block_hash,
            state_root=header.state_root,
            time_ms=block.time_ms,
            log_size=header.log_size,
        )
        return _Sealed(txs, record, self._tip, results, write_set)

    def _apply_governance(self, height: int, writes: list[tuple[str, bytes | None]]) -> None:
        """Members and contracts after block `height` (synchronous mode: once it committed;
        pipeline mode: once it is sealed, and read again from the store if it fails)."""
        # Before the head moves: whoever sees height h also sees the members after h.
        self.membership.apply_writes(height, writes)
        if self.contracts.apply_writes(height, writes):
            missing = self._missing_code()
            if missing is not None:  # committed by the others' quorum; this code cannot follow
                log.error("%s", missing.message)

    # -- the pipeline (pipeline=True) ------------------------------------------------------------
    def _produce_pipelined(
        self, txs: Sequence[Tx], time_ms: int | None, proposer: str | None
    ) -> int:
        """Execute and seal the block after the tip while the in-flight block commits, then
        hand it to the committer; returns its height (durable once `head` reaches it)."""
        with self._commit_lock:
            previous = self._inflight
            if previous is not None and previous.durable.is_set():
                self._settle(previous)
                previous = None
            if self._stale and not self._resync_with_store():
                self._fail_waiters(txs)
                raise NodeError("store_unreadable", "the chain database cannot be read now")
            try:
                with self.store.read() as conn:
                    sealed = self._execute_and_seal(conn, txs, time_ms, proposer)
                self._apply_governance(sealed.head.height, sealed.writes)
            except Exception:
                if previous is not None:
                    previous.durable.wait()
                    self._settle(previous)
                self._rollback()
                self._fail_waiters(txs)
                raise
            if previous is not None:
                previous.durable.wait()
                if not self._settle(previous):
                    # Built on a block that did not commit: discarded, its waiters fail too.
                    self._fail_waiters(txs)
                    raise NodeError(
                        "commit_failed",
                        f"block {previous.sealed.head.height} was not committed; block "
                        f"{sealed.head.height}, built on it, is discarded",
                    )
            flight = _InFlight(sealed)
            self._inflight = flight
            self._overlay = dict(sealed.writes)
            if self._committer is None:
                self._committer = ThreadPoolExecutor(1, thread_name_prefix="zhijin-committer")
            flight.job = self._committer.submit(self._commit_in_flight, flight)
            return sealed.head.height

    def _settle(self, flight: _InFlight) -> bool:
        """After `flight` is durable or failed (the caller holds the commit lock): fold its
        writes into the cache, or go back to the store's last durable block."""
        if self._inflight is flight:
            self._inflight = None
        if flight.failed:
            self._rollback()
            return False
        for key, raw in flight.sealed.writes:
            self._cache_put(key, raw)
        if self._inflight is None:
            self._overlay = {}
        return True

    def _rollback(self) -> None:
        """Forget cached state, the in-flight writes and the log tree's staged nodes; head, tip,
        log tree, members and contracts from the store again (the caller holds the lock)."""
        self._state_cache.clear()
        self._overlay = {}
        self._inflight = None
        self._resync_with_store()

    def _commit_in_flight(self, flight: _InFlight) -> None:
        """The committer thread: one database transaction for the block, then (only then) the
        head moves and the waiters are answered."""
        sealed = flight.sealed
        height = sealed.head.height
        started = time.thread_time()
        try:
            with self.store.engine.begin() as conn:
                self.store.commit_block(conn, sealed.record)
        except Exception:
            if not self._committed_anyway(height):
                log.exception("block %d did not commit", height)
                flight.failed = True
                self._fail_waiters(sealed.txs)
                flight.durable.set()
                return
            log.exception("block %d committed, then the commit reported a failure", height)
        self.stage_cpu_s["commit"] += time.thread_time() - started
        self.head = sealed.head
        flight.durable.set()
        started = time.thread_time()
        self._finish(sealed.txs, height, sealed.results)
        self.stage_cpu_s["finish"] += time.thread_time() - started

    def _committed_anyway(self, height: int) -> bool:
        """Whether block `height` is in the store after its commit raised (a lost reply)."""
        try:
            return self.store.head_height() == height
        except Exception:
            log.exception("cannot read the store's head after block %d failed", height)
            return False

    def drain(self, timeout_s: float | None = None) -> None:
        """Wait until the in-flight block (pipeline mode) is committed and answered, or failed;
        then the tip is the head again.  Nothing to do in synchronous mode."""
        with self._commit_lock:
            flight = self._inflight
            if flight is None:
                return
            invariant(flight.job is not None, "an in-flight block without its commit")
            assert flight.job is not None
            flight.job.result(timeout_s)
            self._settle(flight)

    def close(self) -> None:
        """Commit the in-flight block and stop the committer thread (pipeline mode)."""
        self.drain()
        if self._committer is not None:
            self._committer.shutdown(wait=True)
            self._committer = None

    def _prefetch(self, conn: Connection, txs: Sequence[Tx]) -> list[TxInfo]:
        """Load the keys the block's txs declare they will read, in a few queries.

        Returns each tx's `TxInfo`, built once for its prefetch hint and its execution.
        """
        wanted: set[str] = set()
        infos: list[TxInfo] = []
        for tx in txs:
            body = tx.body
            info = tx_info(tx.hash_hex, tx.signer, body)
            infos.append(info)
            contract = self.registry.get(body["contract"])
            if contract is not None and contract.prefetch is not None:
                try:
                    wanted.update(contract.prefetch(info, body["args"]))
                except Exception:  # a hint that fails is just no hint
                    log.debug("prefetch hint failed for %s", tx.hash_hex, exc_info=True)
        cache, overlay = self._state_cache, self._overlay
        missing = sorted(key for key in wanted if key not in cache and key not in overlay)
        for key, value in self.store.prefetch(conn, missing).items():
            self._cache_put(key, value)
        return infos

    def _execute(
        self,
        registry: ContractRegistry,
        state: BlockState,
        tx: Tx,
        info: TxInfo,
        block: BlockInfo,
    ) -> TxOutcome:
        return apply_tx(
            registry,
            state,
            block,
            tx_hash=info.tx_hash,
            signer=tx.signer,
            body=dict(tx.body),
            info=info,
        )

    def _seal(
        self,
        txs: Sequence[Tx],
        block: BlockInfo,
        encoded_results: list[bytes],
        end_events: list[dict[str, Any]],
        encoded_writes: list[tuple[str, bytes | None]],
        proposer: str,
    ) -> tuple[BlockRecord, BlockHeader]:
        # Every result and value is encoded once; the roots and the stored rows share the bytes.
        tx_hashes = [tx.tx_hash for tx in txs]
        # The tx root and the log tree share the block's leaf hashes.
        leaves = [leaf_hash(h) for h in tx_hashes]
        new_nodes = self.log_tree.append(leaves)
        header = BlockHeader(
            chain_id=block.chain_id,
            height=block.height,
            prev_hash=self._tip.block_hash,
            time_ms=block.time_ms,
            tx_count=len(txs),
            tx_root=merkle_root(leaves),  # = tx_root(tx_hashes)
            results_root=results_root_encoded(
                [*encoded_results, canonical_trusted({"end_block_events": end_events})]
            ),
            state_root=next_state_root_encoded(self._tip.state_root, encoded_writes),
            log_root=self.log_tree.root(),
            log_size=self.log_tree.size,
            proposer=proposer,
        )
        block_hash = header.hash()
        tree_head = TreeHead(
            block.chain_id, header.log_size, header.log_root, block.height, block_hash
        )
        # Only a member (as of the previous block) signs: a joining peer replays the blocks
        # before its admission without signing them, and a removed member's peer stops.
        signing = self.membership.after(block.height - 1).is_member(self.key.did)
        record = BlockRecord(
            height=block.height,
            block_hash=block_hash,
            header=header.encoded(),
            signatures=[sign_header(self.key, header).to_json()] if signing else [],
            end_block_events=end_events,
            txs=[
                _tx_record(i, tx, encoded)
                for i, (tx, encoded) in enumerate(zip(txs, encoded_results, strict=True))
            ],
            batches=_batches(txs),
            writes=encoded_writes,
            log_nodes=new_nodes,
            tree_size=header.log_size,
            log_root=header.log_root,
            tree_head_signatures=[sign_tree_head(self.key, tree_head).to_json()] if signing else [],
        )
        return record, header

    def _finish(self, txs: Sequence[Tx], height: int, results: list[dict[str, Any]]) -> None:
        answered: list[tuple[Future[dict[str, Any]], dict[str, Any]]] = []
        with self._lock:
            for tx, result in zip(txs, results, strict=True):
                self._reserved.discard((tx.sender, tx.nonce))
                recorded = {"height": height, **result}
                self._remember(tx.tx_hash, recorded)
                for future in self._waiters.pop(tx.tx_hash, ()):
                    answered.append((future, recorded))
        for future, recorded in answered:
            future.set_result(recorded)
        for listener in self._listeners:
            try:
                listener(height)
            except Exception:  # a projection's failure must not stop the chain
                log.exception("block listener failed at height %d", height)

    def _fail_waiters(self, txs: Sequence[Tx]) -> None:
        error = NodeError("commit_failed", "the block was not committed; submit the tx again")
        futures: list[Future[dict[str, Any]]] = []
        with self._lock:
            for tx in txs:
                self._reserved.discard((tx.sender, tx.nonce))
                self._remember(tx.tx_hash, error)
                futures.extend(self._waiters.pop(tx.tx_hash, ()))
        for future in futures:
            future.set_exception(error)

    def _remember(self, tx_hash: bytes, outcome: dict[str, Any] | NodeError) -> None:
        self._recent[tx_hash] = outcome
        if len(self._recent) > RECENT_RESULTS_MAX:
            self._recent.popitem(last=False)

    def waiter(self, tx_hash: bytes) -> Future[dict[str, Any]]:
        """A future for an admitted tx's recorded result (or NodeError if its block failed)."""
        future: Future[dict[str, Any]] = Future()
        with self._lock:
            outcome = self._recent.get(tx_hash)
            if outcome is None:
                self._waiters.setdefault(tx_hash, []).append(future)
        if isinstance(outcome, NodeError):
            future.set_exception(outcome)
        elif outcome is not None:
            future.set_result(outcome)
        return future

    def _cache_put(self, key: str, value: bytes | None) -> None:
        cache = self._state_cache
        cache[key] = value
        cache.move_to_end(key)
        if len(cache) > STATE_CACHE_ENTRIES_MAX:
            cache.popitem(last=False)

    # -- reads -----------------------------------------------------------------------------------
    def state_get(self, key: str) -> Any | None:
        """The committed value of a state key (for queries outside block execution)."""
        with self.store.read() as conn:
            return self.store.state_get(conn, key)


def genesis_header(genesis: Genesis) -> BlockHeader:
    """Block 0: derived from the genesis file alone, so anyone can recompute it."""
    from zhijin.chain.merkle import EMPTY_ROOT

    return BlockHeader(
        chain_id=genesis.chain_id,
        height=0,
        prev_hash=genesis.hash(),
        time_ms=genesis.time_ms,
        tx_count=0,
        tx_root=EMPTY_ROOT,
        results_root=EMPTY_ROOT,
        state_root=next_state_root(ZERO_HASH, genesis.write_set()),
        log_root=EMPTY_ROOT,
        log_size=0,
        proposer="genesis",
    )


def _tx_record(position: int, tx: Tx, result: bytes) -> TxRecord:
    return TxRecord(
        tx_hash=tx.tx_hash,
        position=position,
        sender=tx.sender,
        nonce=tx.nonce,
        body=tx.body_bytes,
        signer=tx.signer,
        signature=tx.signature,
        batch_hash=tx.batch_hash,
        result=result,
    )


def _batches(txs: Sequence[Tx]) -> list[tuple[bytes, str, bytes, bytes]]:
    """The batch envelopes first seen in this block (a batch may span blocks: stored once)."""
    seen: dict[bytes, list[Tx]] = {}
    for tx in txs:
        if tx.batch_hash is not None:
            seen.setdefault(tx.batch_hash, []).append(tx)
    return [
        (h, group[0].signer, group[0].signature, b"".join(group[0].batch_members))
        for h, group in seen.items()
    ]


def _refuse_all(txs: Sequence[Tx], problems: list[tuple[str, str] | None]) -> list[Admission]:
    first = next(p for p in problems if p is not None)
    return [
        Admission(tx.hash_hex, False, *(problem or ("batch_refused", f"batch refused: {first[1]}")))
        for tx, problem in zip(txs, problems, strict=True)
    ]


def decode_result(raw: bytes) -> dict[str, Any]:
    return dict(decode(raw))
