"""The node in cluster mode: admission publishes to the ordering stream, not a mempool."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from typing import Any, Protocol

from zhijin.chain.errors import Unavailable
from zhijin.chain.node import Admission, Node, NodeError
from zhijin.chain.ordering.jetstream.finality import Divergence
from zhijin.chain.tx import Tx

__all__ = ["ClusterNode", "PeerHalted", "TxPublisher"]


class PeerHalted(Unavailable):
    code = "peer_halted"


class TxPublisher(Protocol):
    """What admission needs of the orderer (which imports this module, not the reverse)."""

    @property
    def halted(self) -> Divergence | None: ...

    def publish_txs(self, txs: Sequence[Tx], *, as_batch: bool) -> dict[bytes, tuple[str, str]]: ...


class ClusterNode(Node):
    """A node whose admission publishes to the ordering stream instead of a local mempool.

    Admission does the same stateless and nonce checks as solo mode (a fast, local refusal),
    then publishes the envelope; it is accepted once the stream's quorum has stored it.
    Waiters are answered when the tx's block commits on this peer, as in solo mode.
    """

    orderer: TxPublisher | None = None

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
