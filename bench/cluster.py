"""Cluster benchmark: 3 members + 3 NATS servers (JetStream, R3) on this machine.

Run with no arguments (about two minutes); prints one JSON line per case.

The bench plays a member's gateway: it signs notary txs and publishes them to the ordering
stream (the same messages `ClusterNode.admit` publishes after its checks), and watches the
signature stream itself: a block counts as committed when the first member's vote for it
arrives (a peer votes right after its commit) and as final when votes of a quorum of
members over the same header have arrived.  Each tx's height comes from a peer's block API.

Cases: `burst` publishes every tx at once (throughput); `paced` publishes at a steady rate
well below saturation (time to finality without queueing).  The last line reports the CPU
seconds each process used, which is where the time goes on a small machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import nats

from zhijin.chain.block import valid_signatures
from zhijin.chain.codec import canonical, sha256
from zhijin.chain.crypto import KeyPair
from zhijin.chain.genesis import Genesis
from zhijin.chain.ordering.jetstream import BlockVote, StreamNames
from zhijin.chain.tx import make_body, sign_tx
from zhijin.node.cluster import LocalNetwork, init_network

BURST_TXS = int(os.environ.get("ZHIJIN_BENCH_CLUSTER_TXS", "15000"))
PACED_TX_S = 200
PACED_S = 10
SENDERS = 200
PUBLISH_WINDOW = 500  # publishes in flight at once
CASE_S_MAX = 90.0


def _envelopes(chain_id: str, count: int, tag: str) -> list[tuple[str, bytes]]:
    senders = [KeyPair.generate() for _ in range(SENDERS)]
    valid_until = int(time.time() * 1000) + 3_600_000
    out = []
    for i in range(count):
        body = make_body(
            chain_id=chain_id,
            sender=senders[i % SENDERS].did,
            nonce=i,
            contract="notary",
            method="anchor",
            args={"hash": canonical([tag, i]).hex().ljust(64, "0")[:64], "title": f"doc {i}"},
            valid_until=valid_until,
        )
        envelope = sign_tx(senders[i % SENDERS], body)
        out.append((sha256(canonical(body)).hex(), canonical(envelope)))
    return out


class VoteWatcher:
    """Times, per height, the first vote (committed) and the quorum-th vote (final)."""

    def __init__(self, genesis: Genesis) -> None:
        self.weights = genesis.member_weights()
        self.quorum = genesis.quorum_weight
        self.committed_at: dict[int, float] = {}
        self.final_at: dict[int, float] = {}
        self._signers: dict[tuple[int, bytes], set[str]] = {}

    async def on_message(self, msg: Any) -> None:
        now = time.perf_counter()
        vote = BlockVote.decode(msg.data)
        weight, _ = valid_signatures(vote.header, [vote.signature], self.weights)
        if weight == 0:
            return
        self.committed_at.setdefault(vote.height, now)
        signers = self._signers.setdefault((vote.height, vote.block_hash), set())
        signers.add(vote.signature.signer)
        if sum(self.weights[s] for s in signers) >= self.quorum:
            self.final_at.setdefault(vote.height, now)


async def _run_case(
    network: LocalNetwork,
    genesis: Genesis,
    case: str,
    txs: list[tuple[str, bytes]],
    rate: float,
    log_base: int,
) -> dict[str, Any]:
    names = StreamNames(genesis.chain_id)
    nc = await nats.connect(servers=network_urls(network))
    js = nc.jetstream(timeout=10)
    watcher = VoteWatcher(genesis)
    start_seq = (await js.stream_info(names.sig_stream)).state.last_seq + 1
    sub = await js.subscribe(
        names.sig_subject,
        stream=names.sig_stream,
        ordered_consumer=True,
        deliver_policy=nats.js.api.DeliverPolicy.BY_START_SEQUENCE,
        config=nats.js.api.ConsumerConfig(opt_start_seq=start_seq),
        cb=watcher.on_message,
    )
    submitted_at: dict[str, float] = {}
    started = time.perf_counter()
    window: list[Any] = []
    for index, (tx_hash, data) in enumerate(txs):
        if rate > 0:
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        submitted_at[tx_hash] = time.perf_counter()
        window.append(js.publish(names.tx_subject, data, headers={"Nats-Msg-Id": f"tx:{tx_hash}"}))
        if len(window) >= PUBLISH_WINDOW or rate > 0:
            await asyncio.gather(*window)
            window = []
    await asyncio.gather(*window)
    published_s = time.perf_counter() - started
    heights = await asyncio.to_thread(_wait_all_final, network, log_base + len(txs), watcher)
    await sub.unsubscribe()
    await nc.close()
    tx_heights = await asyncio.to_thread(_tx_heights, network.urls[0], heights)
    ttf_ms = sorted(
        (watcher.final_at[tx_heights[h]] - submitted_at[h]) * 1000
        for h in submitted_at
        if h in tx_heights
    )
    last_commit = max(watcher.committed_at[h] for h in set(tx_heights.values()))
    last_final = max(watcher.final_at[h] for h in set(tx_heights.values()))
    blocks = len(set(tx_heights.values()))
    return {
        "bench": "cluster",
        "case": case,
        "members": len(genesis.members),
        "nats_servers": len(network.nats),
        "txs": len(txs),
        "blocks": blocks,
        "txs_per_block": round(len(txs) / max(blocks, 1), 1),
        "publish_tx_s": round(len(txs) / published_s),
        "committed_tx_s": round(len(txs) / (last_commit - started)),
        "final_tx_s": round(len(txs) / (last_final - started)),
        "ttf_p50_ms": round(statistics.median(ttf_ms), 1),
        "ttf_p99_ms": round(ttf_ms[int(len(ttf_ms) * 0.99) - 1], 1),
        "committed_all": len(tx_heights) == len(txs),
    }


def network_urls(network: LocalNetwork) -> list[str]:
    return network.nats_urls


def _wait_all_final(network: LocalNetwork, log_size: int, watcher: VoteWatcher) -> int:
    """Every peer holds `log_size` txs, all final; and the watcher saw each block finalise."""
    deadline = time.monotonic() + CASE_S_MAX
    while time.monotonic() < deadline:
        rows = network.status()
        if all(r.get("log_size", 0) >= log_size and r["final_height"] == r["height"] for r in rows):
            top = int(rows[0]["height"])
            if all(h in watcher.final_at for h in range(_first_new_height(), top + 1)):
                return top
        time.sleep(0.05)
    raise RuntimeError("the cluster did not finalise every tx in time")


_SEEN_BEFORE: set[int] = set()  # heights of earlier cases


def _first_new_height() -> int:
    return max(_SEEN_BEFORE, default=0) + 1


def _tx_heights(url: str, top: int) -> dict[str, int]:
    heights: dict[str, int] = {}
    with httpx.Client(base_url=url, timeout=10) as client:
        for height in range(1, top + 1):
            if height in _SEEN_BEFORE:
                continue
            block = client.get(f"/api/v1/chain/blocks/{height}").json()
            for tx_hash in block["txs"]:
                heights[tx_hash] = height
            _SEEN_BEFORE.add(height)
    return heights


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="zhijin-cluster-bench-") as tmp:
        root = Path(tmp) / "net"
        init_network(root, members=3, nats=3, chain_id="bench-cluster", block_interval_ms=50)
        network = LocalNetwork(root)
        try:
            network.start()
            genesis = Genesis.load(root / "peer0" / "genesis.json")
            cpu_before = _cpu_snapshot(network)
            wall = time.perf_counter()
            burst = _envelopes(genesis.chain_id, BURST_TXS, "burst")
            print(
                json.dumps(asyncio.run(_run_case(network, genesis, "burst", burst, 0, 0))),
                flush=True,
            )
            paced = _envelopes(genesis.chain_id, PACED_TX_S * PACED_S, "paced")
            print(
                json.dumps(
                    asyncio.run(_run_case(network, genesis, "paced", paced, PACED_TX_S, BURST_TXS))
                ),
                flush=True,
            )
            wall_s = time.perf_counter() - wall
            cpu_after = _cpu_snapshot(network)
            statuses = network.status()
            print(
                json.dumps(
                    {
                        "bench": "cluster",
                        "case": "cpu_seconds",
                        "wall_s": round(wall_s, 1),
                        "cores": os.cpu_count(),
                        **{k: round(cpu_after[k] - cpu_before.get(k, 0.0), 1) for k in cpu_after},
                        "peer_apply_s": [round(s.get("apply_s", 0.0), 1) for s in statuses],
                    }
                ),
                flush=True,
            )
        finally:
            network.stop()


def _cpu_snapshot(network: LocalNetwork) -> dict[str, float]:
    snapshot: dict[str, float] = {"bench_client": time.process_time()}
    for i, process in enumerate(network.peers):
        if process is not None:
            snapshot[f"peer{i}"] = _cpu_seconds(process.pid)
    for server in network.nats:
        if server.process is not None:
            snapshot[f"nats_{server.name}"] = _cpu_seconds(server.process.pid)
    return snapshot


if __name__ == "__main__":
    main()
