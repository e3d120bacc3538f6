"""A local network: laid out on disk (genesis, keys, configs), its processes started and stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from zhijin.chain.contract import Member
from zhijin.chain.crypto import KeyPair
from zhijin.chain.files import make_private_dir, touch_private, write_private
from zhijin.chain.genesis import Genesis
from zhijin.chain.node import now_ms
from zhijin.identity.setup import create_local_vault_key
from zhijin.node.modules import default_registry
from zhijin.node.runtime import DEMO_MEMBER_NAMES, DEMO_MEMBER_ROLES
from zhijin.platform.cluster_config import ClusterConfig, ClusterError
from zhijin.platform.cluster_nats import NatsServer, free_port, make_nats_servers

__all__ = [
    "LocalNetwork",
    "init_network",
    "lay_out_joining_peer",
    "peer_statuses",
    "stop_by_pid_file",
]

PEER_START_S_MAX = 60.0
MEMBERS_MAX_LOCAL = 16
NETWORK_FILE = "network.json"


def init_network(
    root: Path,
    *,
    members: int = 3,
    nats: int = 3,
    chain_id: str = "zhijin-cluster",
    block_txs_target: int = 1_000,
    block_interval_ms: int = 50,
    stream_max_msgs: int = -1,
    nats_urls: Sequence[str] = (),
) -> dict[str, Any]:
    """Lay out a network: genesis, member keys and data dirs, NATS configs, peer configs.

    With `nats_urls` the peers use those (already running) servers and no NATS servers are
    laid out; `nats` is then the stream's replica count.
    """
    if not 1 <= members <= MEMBERS_MAX_LOCAL:
        raise ClusterError("bad_members", f"--members must be 1..{MEMBERS_MAX_LOCAL}")
    if (root / NETWORK_FILE).exists():
        raise ClusterError("network_exists", f"{root} holds a network already")
    make_private_dir(root)
    servers = [] if nats_urls else make_nats_servers(root / "nats", nats)
    urls = tuple(nats_urls) or tuple(s.url for s in servers)
    keys = [KeyPair.generate() for _ in range(members)]
    genesis = Genesis(
        chain_id=chain_id,
        time_ms=now_ms(),
        members=tuple(
            Member(
                did=key.did,
                name=DEMO_MEMBER_NAMES[i] if i < len(DEMO_MEMBER_NAMES) else f"Member {i}",
                role=DEMO_MEMBER_ROLES[i % len(DEMO_MEMBER_ROLES)],
                weight=1,
            )
            for i, key in enumerate(keys)
        ),
        # A simple majority: with crash faults and signed votes, any two quorums share a
        # member, so two different hashes can never both be final at one height.
        quorum_weight=members // 2 + 1,
        ordering="jetstream",
        orderer=keys[0].did,
        contracts=default_registry().versions(),
    )
    genesis.validate()
    http_ports = [free_port() for _ in range(members)]
    peers = []
    for i, key in enumerate(keys):
        data = root / f"peer{i}"
        make_private_dir(data / "keys")
        genesis.save(data / "genesis.json")
        key_path = data / "keys" / f"member-{i}.key"
        key.save(key_path)
        create_local_vault_key(data / "vault.key")  # this member's field vault (local)
        config = ClusterConfig(
            data=str(data),
            member_key=str(key_path),
            nats_urls=urls,
            port=http_ports[i],
            peers=tuple(f"http://127.0.0.1:{p}" for j, p in enumerate(http_ports) if j != i),
            stream_replicas=min(3, nats) if nats < 5 else 5,
            block_txs_target=block_txs_target,
            block_interval_ms=block_interval_ms,
            stream_max_msgs=stream_max_msgs,
        )
        config.save(root / f"peer{i}.json")
        peers.append(
            {"config": str(root / f"peer{i}.json"), "url": f"http://127.0.0.1:{http_ports[i]}"}
        )
    network = {
        "chain_id": chain_id,
        "nats": [
            {
                "name": s.name,
                "port": s.port,
                "cluster_port": s.cluster_port,
                "monitor_port": s.monitor_port,
                "routes": list(s.routes),
            }
            for s in servers
        ],
        "peers": peers,
    }
    write_private(root / NETWORK_FILE, json.dumps(network, indent=2) + "\n")
    return network


def lay_out_joining_peer(
    data: Path,
    *,
    genesis_path: Path,
    config_path: Path,
    nats_urls: Sequence[str],
    peers: Sequence[str],
    host: str = "127.0.0.1",
    port: int = 8000,
    key_path: Path | None = None,
    stream_replicas: int = 3,
    block_txs_target: int = 1_000,
    block_interval_ms: int = 50,
) -> tuple[ClusterConfig, KeyPair]:
    """Lay out a new member's peer: the consortium's genesis file, a key, a cluster config.

    The peer starts from block 0 like any other, catches up from the stream (or from `peers`
    past the stream's retention), and signs blocks once a governance tx has admitted its key
    (`add_member`), from the block after that tx.
    """
    genesis = Genesis.load(genesis_path)
    if genesis.ordering != "jetstream":
        raise ClusterError("not_a_cluster", "this genesis orders with 'solo', not 'jetstream'")
    if (data / "genesis.json").exists():
        raise ClusterError("data_dir_in_use", f"{data} holds a genesis already")
    make_private_dir(data / "keys")
    genesis.save(data / "genesis.json")
    create_local_vault_key(data / "vault.key")  # local origin: production brings its own
    if key_path is None:
        key = KeyPair.generate()
        key_path = data / "keys" / "member.key"
        key.save(key_path)
    else:
        key = KeyPair.load(key_path)
    config = ClusterConfig(
        data=str(data),
        member_key=str(key_path),
        nats_urls=tuple(nats_urls),
        host=host,
        port=port,
        peers=tuple(peers),
        stream_replicas=stream_replicas,
        block_txs_target=block_txs_target,
        block_interval_ms=block_interval_ms,
    )
    config.save(config_path)
    return config, key


@dataclass
class LocalNetwork:
    """Start, stop, kill and inspect a network laid out by `init_network` (all loopback)."""

    root: Path
    nats: list[NatsServer] = field(default_factory=list)
    peers: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    layout: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.layout = json.loads((self.root / NETWORK_FILE).read_text())
        self.nats = [
            NatsServer(
                n["name"],
                self.root / "nats" / n["name"],
                n["port"],
                n["cluster_port"],
                n["monitor_port"],
                tuple(n["routes"]),
            )
            for n in self.layout["nats"]
        ]
        self.peers = [None] * len(self.layout["peers"])

    @property
    def urls(self) -> list[str]:
        return [p["url"] for p in self.layout["peers"]]

    @property
    def nats_urls(self) -> list[str]:
        return [s.url for s in self.nats]

    def start_nats(self) -> None:
        for server in self.nats:
            if not server.running:
                server.start()
        for server in self.nats:
            server.wait_listening()

    def start_peer(self, index: int, *, wait: bool = True) -> None:
        config = self.layout["peers"][index]["config"]
        log_path = self.root / f"peer{index}.log"
        env = {**os.environ, "ZHIJIN_LOG": os.environ.get("ZHIJIN_LOG", "INFO")}
        touch_private(log_path)
        with open(log_path, "ab") as log_file:
            self.peers[index] = subprocess.Popen(
                [sys.executable, "-m", "zhijin", "serve", "--cluster", config],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        if wait:
            self.wait_peer(index)

    def wait_peer(self, index: int, timeout_s: float = PEER_START_S_MAX) -> None:
        deadline = time.monotonic() + timeout_s
        url = self.urls[index]
        while time.monotonic() < deadline:
            process = self.peers[index]
            if process is not None and process.poll() is not None:
                raise ClusterError(
                    "peer_failed", f"peer {index} exited ({process.returncode}); see its log"
                )
            try:
                if httpx.get(f"{url}/api/v1/cluster/status", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise ClusterError("peer_failed", f"peer {index} did not answer in time")

    def add_peer(self) -> tuple[int, KeyPair]:
        """Lay out one more peer (a member about to join by governance); not started."""
        index = len(self.layout["peers"])
        template = ClusterConfig.load(Path(self.layout["peers"][0]["config"]))
        port = free_port()
        config_path = self.root / f"peer{index}.json"
        _, key = lay_out_joining_peer(
            self.root / f"peer{index}",
            genesis_path=Path(template.data) / "genesis.json",
            config_path=config_path,
            nats_urls=template.nats_urls,
            peers=self.urls,
            port=port,
            stream_replicas=template.stream_replicas,
            block_txs_target=template.block_txs_target,
            block_interval_ms=template.block_interval_ms,
        )
        self.layout["peers"].append({"config": str(config_path), "url": f"http://127.0.0.1:{port}"})
        write_private(self.root / NETWORK_FILE, json.dumps(self.layout, indent=2) + "\n")
        self.peers.append(None)
        return index, key

    def start(self) -> None:
        self.start_nats()
        for index in range(len(self.peers)):
            self.start_peer(index, wait=False)
        for index in range(len(self.peers)):
            self.wait_peer(index)
        self._save_pids()

    def _save_pids(self) -> None:
        pids = {
            "nats": [s.process.pid if s.process else None for s in self.nats],
            "peers": [p.pid if p else None for p in self.peers],
        }
        write_private(self.root / "pids.json", json.dumps(pids))

    def kill_peer(self, index: int) -> None:
        process = self.peers[index]
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        self.peers[index] = None

    def stop_peer(self, index: int) -> None:
        process = self.peers[index]
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self.peers[index] = None

    def stop(self) -> None:
        for index in range(len(self.peers)):
            self.stop_peer(index)
        for server in self.nats:
            server.stop()

    def status(self, *, timeout_s: float = 2.0) -> list[dict[str, Any]]:
        return peer_statuses(self.urls, timeout_s=timeout_s)


def peer_statuses(urls: Sequence[str], *, timeout_s: float = 2.0) -> list[dict[str, Any]]:
    """Each peer's status (or its error), with its lag behind the highest peer."""
    rows: list[dict[str, Any]] = []
    for url in urls:
        try:
            response = httpx.get(f"{url}/api/v1/cluster/status", timeout=timeout_s)
            rows.append({"url": url, **response.json()})
        except (httpx.HTTPError, ValueError) as exc:
            rows.append({"url": url, "error": str(exc) or type(exc).__name__})
    top = max((r.get("height", 0) for r in rows), default=0)
    for row in rows:
        if "height" in row:
            row["lag"] = top - row["height"]
    return rows


def stop_by_pid_file(root: Path, *, timeout_s: float = 15.0) -> int:
    """Stop a detached network (`cluster down`): SIGTERM the processes `cluster up` recorded,
    wait for them (bounded), then SIGKILL any that remain."""
    path = root / "pids.json"
    if not path.exists():
        return 0
    recorded = json.loads(path.read_text())
    pids = [pid for pid in [*recorded.get("peers", []), *recorded.get("nats", [])] if pid]
    stopped = 0
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
            stopped += 1
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + timeout_s
    for pid in pids:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    path.unlink()
    return stopped


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child of this process that exited stays a zombie until reaped.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == 0
