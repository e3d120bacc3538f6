"""`zhijin chain verify`: re-derive the whole chain from genesis without trusting stored roots.

For every block, in height order: the header's canonical bytes and hash, the link to the
previous block, the members' signatures (judged by the members in force before it), every transaction's canonical body, hash and
signature (single or batch), the tx root, a re-execution of every transaction with the
contracts in force at its height (genesis's, then those governance activated, replayed from
the re-executed writes exactly like the members; see zhijin/chain/contract_set.py) (results root and the exact write set against the stored state history), the state
root, the global log tree (recomputed in memory: root, size and the stored nodes) and the
signed tree head.  At the end the current-state table must equal the replayed state.  The
first height where anything differs is named with the reason.

Re-execution holds the replayed state in memory (`MemoryState`); a chain whose state outgrows
memory would replay into a scratch database instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from zhijin.chain.block import (
    BlockHeader,
    Signature,
    TreeHead,
    encode_write_set,
    next_state_root_encoded,
    results_root_encoded,
    tx_root,
    valid_signatures,
)
from zhijin.chain.codec import canonical, decode, sha256
from zhijin.chain.contract import (
    BlockInfo,
    BlockState,
    ContractRegistry,
    apply_tx,
    run_end_block,
)
from zhijin.chain.contract_set import ContractSchedule
from zhijin.chain.crypto import BadKey, public_key_from_did, verify
from zhijin.chain.errors import EncodingError
from zhijin.chain.genesis import Genesis
from zhijin.chain.membership import MemberSet, MembershipHistory
from zhijin.chain.memory import MemoryState
from zhijin.chain.merkle import LogTree, MemoryNodeStore, leaf_hash
from zhijin.chain.store import ChainStore, StoredBlock, StoredTx
from zhijin.chain.tx import batch_message

__all__ = ["VerifyReport", "verify_chain"]


class Divergence(Exception):
    def __init__(self, height: int, reason: str) -> None:
        super().__init__(f"height {height}: {reason}")
        self.height = height
        self.reason = reason


@dataclass(slots=True)
class VerifyReport:
    ok: bool
    blocks: int = 0
    txs: int = 0
    bad_height: int | None = None
    reason: str | None = None
    notes: list[str] = field(default_factory=list)
    # Cluster mode: the newest blocks may not hold a quorum of signatures yet.  They are
    # verified in every other respect and listed here instead of failing the chain.
    not_final: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "ok": self.ok,
            "blocks": self.blocks,
            "txs": self.txs,
            "bad_height": self.bad_height,
            "reason": self.reason,
        }
        if self.not_final:
            report["not_final"] = {"from": self.not_final[0], "count": len(self.not_final)}
        return report


@dataclass(slots=True)
class _Replay:
    genesis: Genesis
    registry: ContractRegistry
    store: ChainStore
    state: MemoryState = field(default_factory=MemoryState)
    log_tree: LogTree = field(init=False)
    log_store: MemoryNodeStore = field(default_factory=MemoryNodeStore)
    prev_hash: bytes = b""
    prev_state_root: bytes = bytes(32)
    prev_time_ms: int = -1
    nonces: set[tuple[str, int]] = field(default_factory=set)
    batches_checked: set[bytes] = field(default_factory=set)
    not_final: list[int] = field(default_factory=list)  # below quorum (cluster mode)
    # Members and quorum per height, replayed from the governance writes (block 0 first).
    membership: MembershipHistory | None = None
    # Contracts in force per height, replayed from the re-executed activation writes.
    contracts: ContractSchedule = field(init=False)
    in_force: tuple[dict[str, str], ContractRegistry] | None = None  # the last block's view

    def __post_init__(self) -> None:
        self.log_tree = LogTree(self.log_store, 0)
        self.contracts = ContractSchedule(self.genesis.contracts)


def verify_chain(
    store: ChainStore,
    genesis: Genesis,
    registry: ContractRegistry,
    *,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    report = VerifyReport(ok=True)
    replay = _Replay(genesis, registry, store)
    replay.prev_hash = genesis.hash()
    try:
        if store.get_meta("genesis_hash") != genesis.hash().hex():
            raise Divergence(0, "the database was created from a different genesis file")
        expected = 0
        for block in store.iter_blocks():
            if block.height != expected:
                raise Divergence(expected, "block is missing")
            report.txs += _verify_block(replay, block)
            report.blocks += 1
            expected += 1
            if progress is not None and block.height % 1000 == 0:
                progress(block.height)
        if expected == 0:
            raise Divergence(0, "no genesis block")
        _verify_final_state(replay, expected - 1)
        report.not_final = replay.not_final
    except Divergence as exc:
        report.ok = False
        report.bad_height = exc.height
        report.reason = exc.reason
    return report


def _verify_block(replay: _Replay, block: StoredBlock) -> int:
    height = block.height
    header = _decode_header(block)
    if header.hash() != block.block_hash:
        raise Divergence(height, "stored block hash does not match the header")
    if header.height != height or header.chain_id != replay.genesis.chain_id:
        raise Divergence(height, "header height or chain id is wrong")
    if header.prev_hash != replay.prev_hash:
        raise Divergence(height, "header does not link to the previous block")
    if header.time_ms <= replay.prev_time_ms:
        raise Divergence(height, "block time does not increase")
    if height == 0:
        _verify_genesis_block(replay, block, header)
    else:
        _verify_signatures(replay, block, header)
        stored_txs = replay.store.txs_at(height)
        if len(stored_txs) != header.tx_count:
            raise Divergence(
                height, f"header says {header.tx_count} txs, store has {len(stored_txs)}"
            )
        _replay_block(replay, block, header, stored_txs)
    replay.prev_hash = block.block_hash
    replay.prev_state_root = header.state_root
    replay.prev_time_ms = header.time_ms
    return header.tx_count


def _decode_header(block: StoredBlock) -> BlockHeader:
    try:
        data = decode(block.header)
        if canonical(data) != block.header:
            raise Divergence(block.height, "stored header is not canonical JSON")
        return BlockHeader.from_json(data)
    except (EncodingError, ValueError, KeyError, TypeError) as exc:
        raise Divergence(block.height, f"stored header is unreadable: {exc}") from exc


def _verify_genesis_block(replay: _Replay, block: StoredBlock, header: BlockHeader) -> None:
    from zhijin.chain.node import genesis_header

    if header != genesis_header(replay.genesis):
        raise Divergence(0, "block 0 does not follow from the genesis file")
    writes = encode_write_set(replay.genesis.write_set())
    _compare_writes(replay, 0, writes)
    state = BlockState(replay.state)
    state.writes.update(dict(writes))
    replay.state.commit(state)
    replay.membership = MembershipHistory(dict(replay.genesis.write_set()))


def _members_before(replay: _Replay, height: int) -> MemberSet:
    """The members who judge block `height`: those in force after the block before it."""
    assert replay.membership is not None
    return replay.membership.after(height - 1)


def _verify_signatures(replay: _Replay, block: StoredBlock, header: BlockHeader) -> None:
    members = _members_before(replay, block.height)
    weights = members.weights
    try:
        signatures = [Signature.from_json(s) for s in block.signatures]
    except (ValueError, KeyError, TypeError) as exc:
        raise Divergence(block.height, f"block signatures are unreadable: {exc}") from exc
    weight, problems = valid_signatures(header.encoded(), signatures, weights)
    if problems:
        raise Divergence(block.height, "block signature: " + "; ".join(problems))
    if replay.genesis.ordering == "solo":
        if header.proposer != replay.genesis.orderer or not any(
            s.signer == replay.genesis.orderer for s in signatures
        ):
            raise Divergence(block.height, "block is not signed by the solo orderer")
    elif weight < members.quorum_weight:
        # Signatures arrive after the commit: only the newest blocks may still lack a quorum.
        replay.not_final.append(block.height)
    elif replay.not_final:
        raise Divergence(
            replay.not_final[0],
            f"signed weight is below the quorum, yet block {block.height} after it is final",
        )


def _replay_block(
    replay: _Replay, block: StoredBlock, header: BlockHeader, stored_txs: list[StoredTx]
) -> None:
    height = block.height
    info = BlockInfo(chain_id=header.chain_id, height=height, time_ms=header.time_ms)
    registry = _registry_at(replay, height)
    state = BlockState(replay.state)
    results: list[bytes] = []
    for position, stored in enumerate(stored_txs):
        body = _verify_tx(replay, height, position, stored)
        outcome = apply_tx(
            registry,
            state,
            info,
            tx_hash=stored.tx_hash.hex(),
            signer=stored.signer,
            body=body,
        )
        # Encoded exactly as the node encodes it (`TxOutcome.encoded`; re-execution validated
        # every value, event and return, or a `Record` type encoded its own, in-domain by
        # construction) and compared byte for byte with the stored result.
        result = outcome.encoded()
        if result != stored.result:
            raise Divergence(height, f"tx {stored.tx_hash.hex()} result differs from re-execution")
        results.append(result)
    end_events = run_end_block(registry, state, info)
    if canonical(end_events) != block.end_block_events:
        raise Divergence(height, "end-of-block events differ from re-execution")
    if tx_root([t.tx_hash for t in stored_txs]) != header.tx_root:
        raise Divergence(height, "tx root does not match the block's transactions")
    if (
        results_root_encoded([*results, canonical({"end_block_events": end_events})])
        != header.results_root
    ):
        raise Divergence(height, "results root does not match re-execution")
    write_set = state.write_set()
    if next_state_root_encoded(replay.prev_state_root, write_set) != header.state_root:
        raise Divergence(height, "state root does not match re-execution")
    _compare_writes(replay, height, write_set)
    replay.state.commit(state)
    assert replay.membership is not None
    replay.membership.apply_writes(height, write_set)
    replay.contracts.apply_writes(height, write_set)
    _verify_log(replay, block, header, [t.tx_hash for t in stored_txs])


def _registry_at(replay: _Replay, height: int) -> ContractRegistry:
    """The verifier's code, restricted to the contracts in force at `height`; a contract in
    force that this code lacks (or runs at another version) cannot be re-executed."""
    versions = replay.contracts.in_force(height)
    if replay.in_force is not None and replay.in_force[0] == versions:
        return replay.in_force[1]
    ours = replay.registry.versions()
    for name, version in sorted(versions.items()):
        if ours.get(name) != version:
            raise Divergence(
                height,
                f"contract {name} version {version} is in force here; this verifier's code "
                f"runs {name} {ours.get(name) or 'not at all'}",
            )
    view = replay.registry.in_force(versions)
    replay.in_force = (versions, view)
    return view


def _verify_tx(replay: _Replay, height: int, position: int, stored: StoredTx) -> dict[str, Any]:
    where = f"tx {position} ({stored.tx_hash.hex()})"
    try:
        body = decode(stored.body)
    except EncodingError as exc:
        raise Divergence(height, f"{where} body is unreadable: {exc.message}") from exc
    if canonical(body) != stored.body or sha256(stored.body) != stored.tx_hash:
        raise Divergence(height, f"{where} body does not hash to its tx hash")
    if (body.get("sender"), body.get("nonce")) != (stored.sender, stored.nonce):
        raise Divergence(height, f"{where} indexed sender/nonce differ from its body")
    pair = (stored.sender, stored.nonce)
    if pair in replay.nonces:
        raise Divergence(height, f"{where} replays a nonce already used by its sender")
    replay.nonces.add(pair)
    try:
        public_key = public_key_from_did(stored.signer)
    except BadKey as exc:
        raise Divergence(height, f"{where} signer is not a did:key") from exc
    if stored.batch_hash is None:
        if not verify(public_key, stored.body, stored.signature):
            raise Divergence(height, f"{where} signature does not verify")
    else:
        _verify_batch(replay, height, where, stored, public_key)
    return dict(body)


def _verify_batch(
    replay: _Replay, height: int, where: str, stored: StoredTx, public_key: bytes
) -> None:
    batch_hash = stored.batch_hash
    assert batch_hash is not None
    if batch_hash in replay.batches_checked:
        return
    batch = replay.store.get_batch(batch_hash)
    if batch is None:
        raise Divergence(height, f"{where} names a batch that is not stored")
    signer, signature, hashes = batch
    bodies = replay.store.bodies(hashes)
    if len(bodies) != len(hashes) or stored.tx_hash not in bodies:
        raise Divergence(height, f"{where} batch members are missing")
    message = batch_message([bodies[h] for h in hashes])
    if sha256(message) != batch_hash or signer != stored.signer:
        raise Divergence(height, f"{where} batch does not hash to its batch hash")
    if not verify(public_key, message, signature) or signature != stored.signature:
        raise Divergence(height, f"{where} batch signature does not verify")
    replay.batches_checked.add(batch_hash)


def _compare_writes(replay: _Replay, height: int, expected: list[tuple[str, bytes | None]]) -> None:
    stored = replay.store.state_rows_at(height)
    if stored != expected:
        raise Divergence(height, _first_difference(stored, expected))


def _first_difference(
    stored: list[tuple[str, bytes | None]], expected: list[tuple[str, bytes | None]]
) -> str:
    for index in range(max(len(stored), len(expected))):
        got = stored[index] if index < len(stored) else None
        want = expected[index] if index < len(expected) else None
        if got != want:
            key = (got or want or ("?", None))[0]
            return f"stored state write for key {key!r} differs from re-execution"
    return "stored state writes differ"


def _verify_log(
    replay: _Replay, block: StoredBlock, header: BlockHeader, tx_hashes: list[bytes]
) -> None:
    height = block.height
    new_nodes = replay.log_tree.append([leaf_hash(h) for h in tx_hashes])
    replay.log_store.put_nodes(new_nodes)
    if replay.log_tree.size != header.log_size or replay.log_tree.root() != header.log_root:
        raise Divergence(height, "log root or size does not match the transactions so far")
    stored_nodes = replay.store.get_nodes([(level, index) for level, index, _ in new_nodes])
    for level, index, node in new_nodes:
        if stored_nodes.get((level, index)) != node:
            raise Divergence(height, f"stored log-tree node ({level}, {index}) is wrong")
    head = replay.store.tree_head(height)
    if head is None:
        raise Divergence(height, "signed tree head is missing")
    tree_head = TreeHead.from_json(replay.genesis.chain_id, head)
    if (tree_head.tree_size, tree_head.root, tree_head.block_hash) != (
        header.log_size,
        header.log_root,
        block.block_hash,
    ):
        raise Divergence(height, "signed tree head does not match the block")
    weight, problems = valid_signatures(
        tree_head.signed_bytes(), tree_head.signatures, _members_before(replay, height).weights
    )
    # A cluster peer signs its tree heads only while it is a member (a joining peer replays
    # earlier blocks unsigned); the tree head adds nothing the quorum-signed header does not
    # already commit to (log root, size, block hash), so there it may be unsigned.
    unsigned_ok = replay.genesis.ordering == "jetstream"
    if problems or (weight == 0 and not unsigned_ok):
        raise Divergence(height, "tree head signature: " + ("; ".join(problems) or "unsigned"))


def _verify_final_state(replay: _Replay, head_height: int) -> None:
    replayed: Iterator[tuple[str, bytes]] = iter(sorted(replay.state.raw.items()))
    for key, value, height in replay.store.iter_state():
        expected = next(replayed, None)
        if expected is None or expected[0] != key or expected[1] != value:
            # Name the block that last wrote the row: that is where the tampering shows.
            raise Divergence(min(height, head_height), f"current state row {key!r} differs")
    if next(replayed, None) is not None:
        raise Divergence(head_height, "current state is missing rows the replay produced")
