"""The member gateway: transactions this node's member signs and submits on its own behalf
(operator actions, demo data, the CLI).  Clients that hold their own keys sign envelopes
themselves and post them to `/api/v1/chain/txs`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from zhijin.chain import limits
from zhijin.chain.errors import TxRejected, Unavailable
from zhijin.chain.node import Node
from zhijin.chain.tx import make_body, sign_tx

__all__ = ["MemberGateway"]

DEFAULT_VALIDITY_MS = 10 * 60 * 1000


class MemberGateway:
    def __init__(self, node: Node) -> None:
        self.node = node
        self._nonce_lock = threading.Lock()
        self._last_nonce = 0

    def next_nonce(self) -> int:
        # Microseconds since the epoch, strictly increasing within this process: unique across
        # restarts too, as long as the clock does not step back by more than the restart took.
        with self._nonce_lock:
            self._last_nonce = max(self._last_nonce + 1, time.time_ns() // 1000)
            return self._last_nonce

    def envelope(
        self, contract: str, method: str, args: dict[str, Any], *, sender: str | None = None
    ) -> dict[str, Any]:
        """A tx this member signs: in its own name, or vouching for `sender` (a user DID the
        platform authenticated; the contract decides what a vouched sender may do)."""
        key = self.node.key
        body = make_body(
            chain_id=self.node.genesis.chain_id,
            sender=sender or key.did,
            nonce=self.next_nonce(),
            contract=contract,
            method=method,
            args=args,
            valid_until=self.node.clock() + DEFAULT_VALIDITY_MS,
        )
        return sign_tx(key, body)

    def submit(
        self,
        contract: str,
        method: str,
        args: dict[str, Any],
        *,
        sender: str | None = None,
        timeout_s: float = 30.0,
    ) -> dict[str, Any]:
        """Sign, submit and wait for the commit; returns the recorded result with its height and
        its `tx_hash` (which an answer names when the query tables do not show it yet)."""
        (admission,) = self.node.submit(self.envelope(contract, method, args, sender=sender))
        if not admission.accepted or admission.future is None:
            raise TxRejected(admission.code or "tx_rejected", admission.message or "")
        try:
            result = admission.future.result(timeout=min(timeout_s, limits.VALIDITY_MS_MAX / 1000))
        except TimeoutError as exc:
            raise Unavailable("commit_timeout", "the tx was not committed in time") from exc
        return {**result, "tx_hash": admission.tx_hash}
