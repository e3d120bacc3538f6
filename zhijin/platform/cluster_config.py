"""A cluster peer's config file (`zhijin serve --cluster CONFIG`) and the cluster's error."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from zhijin.chain.errors import ZhijinError
from zhijin.chain.files import write_private
from zhijin.chain.ordering.jetstream import OrderingSettings

__all__ = ["ClusterConfig", "ClusterError"]


class ClusterError(ZhijinError):
    code = "cluster"


# -- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """One peer's cluster settings (the file `zhijin serve --cluster` reads)."""

    data: str  # the member's data directory
    member_key: str  # this member's key file
    nats_urls: tuple[str, ...]
    host: str = "127.0.0.1"
    port: int = 8000
    peers: tuple[str, ...] = ()  # other peers' HTTP base URLs, for catch-up past retention
    stream_replicas: int = 3
    block_txs_target: int = 1_000
    block_interval_ms: int = 50
    stream_max_msgs: int = -1

    def ordering(self) -> OrderingSettings:
        return OrderingSettings(
            nats_urls=self.nats_urls,
            stream_replicas=self.stream_replicas,
            block_txs_target=self.block_txs_target,
            block_interval_ms=self.block_interval_ms,
            stream_max_msgs=self.stream_max_msgs,
        )

    def save(self, path: Path) -> None:
        write_private(path, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> ClusterConfig:
        try:
            data = json.loads(path.read_text())
            data["nats_urls"] = tuple(data["nats_urls"])
            data["peers"] = tuple(data.get("peers", ()))
            return cls(**data)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ClusterError("bad_cluster_config", f"cannot read {path}: {exc}") from exc
