"""A chain's ordering settings and the names of its streams and subjects."""

from __future__ import annotations

from dataclasses import dataclass

from zhijin.chain import limits
from zhijin.chain.errors import invariant
from zhijin.chain.ordering.jetstream.limits import STREAM_MAX_AGE_S

__all__ = ["OrderingSettings", "StreamNames"]


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
