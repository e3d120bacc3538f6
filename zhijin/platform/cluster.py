"""Cluster mode: one member's peer on the JetStream ordering service, and local networks.

A peer is a data directory (genesis with `"ordering": "jetstream"`, this member's key, the
chain database) plus a cluster config file naming the NATS servers and the other peers' HTTP
addresses.  `zhijin serve --cluster CONFIG` runs one; `zhijin cluster up` lays out and starts
a whole network on loopback ports for development and tests: NATS servers from the machine's
`nats-server` binary (a 3- or 5-server JetStream cluster with routes between them) and one peer
process per member.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any

import httpx
from fastapi import APIRouter, FastAPI, Query, Request
from sqlalchemy import Engine

from zhijin.chain.block import BlockHeader, Signature, valid_signatures
from zhijin.chain.codec import decode
from zhijin.chain.contract import ContractRegistry, Member
from zhijin.chain.crypto import KeyPair
from zhijin.chain.errors import NotFound, ZhijinError
from zhijin.chain.genesis import Genesis
from zhijin.chain.membership import MembershipHistory
from zhijin.chain.node import now_ms
from zhijin.chain.ordering.jetstream import (
    ClusterNode,
    ClusterStore,
    JetStreamOrderer,
    OrderingSettings,
    StreamCursor,
    stored_final_height,
)
from zhijin.chain.store import make_engine
from zhijin.chain.tx import Tx, parse_envelope
from zhijin.identity.anchoring import AuditAnchorer
from zhijin.identity.chainops import IdentityChain
from zhijin.identity.personal import PersonalDataService
from zhijin.identity.service import IdentityService
from zhijin.identity.setup import create_local_vault_key, load_identity_keys
from zhijin.platform.contracts import default_notifiers, default_projections, default_registry
from zhijin.platform.gateway import MemberGateway
from zhijin.platform.notifications import NotificationHub
from zhijin.platform.projections import ProjectionRunner
from zhijin.platform.runtime import (
    DEMO_MEMBER_NAMES,
    DEMO_MEMBER_ROLES,
    _lock_data_dir,
    build_identity_services,
)
from zhijin.platform.settings import Settings

__all__ = [
    "ClusterConfig",
    "ClusterError",
    "ClusterPlatform",
    "LocalNetwork",
    "NatsServer",
    "cluster_router",
    "init_network",
]

log = logging.getLogger("zhijin.cluster")

NATS_SERVER_BINARY = os.environ.get("ZHIJIN_NATS_SERVER", "nats-server")
NATS_START_S_MAX = 15.0
PEER_START_S_MAX = 60.0
CATCH_UP_BLOCKS_MAX = 1_000_000  # one catch-up run never loops for ever
HTTP_TIMEOUT_S = 10.0
SIGNATURE_FETCH_AFTER_S = 3.0  # final height stuck this long below the head: ask the peers
SIGNATURE_FETCH_HEIGHTS_MAX = 16  # heights asked for per round
SIGNATURE_FETCH_TIMEOUT_S = 2.0
# A stopping peer waits this long for its shutdown audit anchor to become final (after the
# anchorer's own wait for the commit), so that a stop still fits `LocalNetwork`'s 15 s.
SHUTDOWN_FINALITY_WAIT_S = 5.0
FINALITY_POLL_S = 0.05
MEMBERS_MAX_LOCAL = 16
NATS_SERVERS_ALLOWED = (1, 3, 5)
NETWORK_FILE = "network.json"
PEER_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> ClusterConfig:
        try:
            data = json.loads(path.read_text())
            data["nats_urls"] = tuple(data["nats_urls"])
            data["peers"] = tuple(data.get("peers", ()))
            return cls(**data)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ClusterError("bad_cluster_config", f"cannot read {path}: {exc}") from exc


# -- one peer -----------------------------------------------------------------------------------


@dataclass
class ClusterPlatform:
    """A member's peer: the node, the JetStream orderer and catch-up, on one data directory.

    It offers what the HTTP app uses of `Platform` (settings, genesis, store, node, status,
    projections and the identity services, built by the same `build_identity_services`), so
    `create_app(platform=...)` serves it with every route.
    """

    config: ClusterConfig
    registry: ContractRegistry = field(default_factory=default_registry)
    settings: Settings = field(init=False)
    genesis: Genesis = field(init=False)
    store: ClusterStore = field(init=False)
    node: ClusterNode = field(init=False)
    orderer: JetStreamOrderer = field(init=False)
    platform_engine: Engine = field(init=False)
    projections: ProjectionRunner = field(init=False)
    identity: IdentityService = field(init=False)
    personal: PersonalDataService = field(init=False)
    identity_gateway: MemberGateway = field(init=False)
    audit_anchorer: AuditAnchorer = field(init=False)
    identity_chain: IdentityChain = field(init=False)
    notifications: NotificationHub = field(init=False)
    _lock_file: IO[str] | None = field(default=None, init=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)
    _recovery: threading.Thread | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.settings = Settings(data=Path(self.config.data))
        self.genesis = Genesis.load(self.settings.genesis_path)
        if self.genesis.ordering != "jetstream":
            raise ClusterError("not_a_cluster", "this genesis orders with 'solo', not 'jetstream'")
        vault_keys = load_identity_keys(self.settings)  # refuses weak production settings
        self._lock_file = _lock_data_dir(self.settings.data)
        key = KeyPair.load(Path(self.config.member_key))
        self.store = ClusterStore(self.settings.chain_database_url())
        self.node = ClusterNode(
            store=self.store, genesis=self.genesis, registry=self.registry, key=key
        )
        if not self.node.membership.latest().is_member(key.did):
            log.warning(
                "this key %s is not a member yet: the peer follows the chain and signs from "
                "the block after a governance tx admits it",
                key.did,
            )
        self.orderer = JetStreamOrderer(
            self.node, self.store, self.config.ordering(), name=key.did[-12:]
        )
        # Query tables follow FINAL blocks only: a peer that committed a block the consortium
        # did not sign (and then halts) never shows it to API clients.
        self.platform_engine = make_engine(self.settings.platform_database_url_resolved())
        self.projections = ProjectionRunner(
            self.store,
            self.platform_engine,
            default_projections(),
            head=lambda: self.orderer.finality.final_height,
            factory=default_projections if self.settings.projector == "process" else None,
        )
        self.orderer.final_listeners.append(self.projections.notify)
        services = build_identity_services(
            self.settings, self.platform_engine, self.node, vault_keys
        )
        self.identity = services.identity
        self.identity_gateway = services.gateway
        self.personal = services.personal
        self.identity_chain = services.chain
        self.audit_anchorer = services.anchorer
        self.notifications = NotificationHub(
            self.store, self.projections, default_notifiers(self.platform_engine)
        )

    def start(self) -> ClusterPlatform:
        self.orderer.start(catch_up=self.catch_up_from_peers)
        self.projections.catch_up()
        self.projections.start()
        self.notifications.start()
        self.audit_anchorer.start()
        self._recovery = threading.Thread(
            target=self._recover_signatures, name="zhijin-signature-recovery", daemon=True
        )
        self._recovery.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._recovery is not None:
            self._recovery.join(SIGNATURE_FETCH_TIMEOUT_S * 3)
            self._recovery = None
        self.audit_anchorer.stop()
        if self.audit_anchorer.anchor_at_shutdown() is not None:  # needs the orderer running
            self._await_final(self.audit_anchorer.last_anchor_height)
        self.orderer.stop()
        self.notifications.stop()
        self.projections.stop()
        self.projections.catch_up()  # the last final blocks, the shutdown anchor among them
        self.store.close()
        self.platform_engine.dispose()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _await_final(self, height: int | None) -> None:
        """Give the shutdown anchor's block a bounded time to become final: the query tables
        this peer leaves behind hold final blocks only, and `audit verify` reads them."""
        deadline = time.monotonic() + SHUTDOWN_FINALITY_WAIT_S
        while height is not None and self.orderer.finality.final_height < height:
            if time.monotonic() >= deadline:
                log.warning("the audit anchor at height %d is not final yet at shutdown", height)
                return
            time.sleep(FINALITY_POLL_S)

    def __enter__(self) -> ClusterPlatform:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def final_height(self) -> int:
        """The highest block signed by a quorum of the members in force."""
        return self.orderer.finality.final_height

    def status(self) -> dict[str, Any]:
        return {
            "chain_id": self.genesis.chain_id,
            "member": self.node.key.did,
            "ordering": self.genesis.ordering,
            "mempool": 0,
            "time_ms": self.node.head.time_ms,
            "log_size": self.node.head.log_size,
            "member_now": self.node.membership.latest().is_member(self.node.key.did),
            "members": len(self.node.membership.latest().members),
            "quorum_weight": self.node.membership.latest().quorum_weight,
            "projected_height": self.projections.projected_height,
            **self.orderer.status(),
        }

    # -- finality recovery: signatures from other peers -------------------------------------------
    def _recover_signatures(self) -> None:
        """Ask the other peers for their stored signatures when finality here is stuck.

        Votes normally come from the signature stream.  One can be missing there for good: a
        member's vote published just before it crashed, or votes a bounded stream dropped
        before this peer read them.  The other peers keep the quorum signatures of every final
        block in their block rows, so after `SIGNATURE_FETCH_AFTER_S` without progress this
        peer fetches those of its first non-final blocks and counts them like votes (same
        checks: a member's valid signature over a header; another header's quorum halts).
        """
        final_seen, since = -1, time.monotonic()
        while not self._stopping.wait(1.0):
            try:
                final = self.orderer.finality.final_height
                head = self.node.head.height
                if final != final_seen or final >= head or self.orderer.halted is not None:
                    final_seen, since = final, time.monotonic()
                    continue
                if time.monotonic() - since < SIGNATURE_FETCH_AFTER_S:
                    continue
                since = time.monotonic()
                last = min(head, final + SIGNATURE_FETCH_HEIGHTS_MAX)
                offered = sum(self._fetch_signatures(h) for h in range(final + 1, last + 1))
                log.info(
                    "final height stuck at %d below %d: %d signatures fetched from peers",
                    final,
                    head,
                    offered,
                )
            except Exception:
                log.exception("signature recovery failed; retrying")

    def _fetch_signatures(self, height: int) -> int:
        offered = 0
        for peer in self.config.peers:
            try:
                response = httpx.get(
                    f"{peer}/api/v1/cluster/signatures/{height}",
                    timeout=SIGNATURE_FETCH_TIMEOUT_S,
                )
            except httpx.HTTPError:
                continue
            if response.status_code == 200:
                document = response.json()
                offered += self.orderer.offer_signatures(document["header"], document["signatures"])
        return offered

    # -- catch-up from another peer (past the stream's retention) --------------------------------
    def catch_up_from_peers(self, first_seq: int) -> None:
        """Fetch, verify and re-execute blocks from other peers until the stream takes over.

        A fetched block is used only if members holding a quorum signed its header (so it is
        final) and re-executing its txs here gives exactly that header; anything else stops
        the catch-up with an error, so a lying peer can waste time but not corrupt the chain.
        """
        if not self.config.peers:
            raise ClusterError(
                "catch_up_impossible",
                f"the stream starts at {first_seq} and no peers are configured to catch up from",
            )
        for _ in range(CATCH_UP_BLOCKS_MAX):
            cursor = self.store.cursor_at(self.node.head.height) or StreamCursor(1)
            if cursor.seq >= first_seq and cursor.marker_seq is None:
                return
            block = self._fetch_block(self.node.head.height + 1)
            if block is None:
                raise ClusterError(
                    "catch_up_impossible",
                    f"no peer has block {self.node.head.height + 1} and the stream starts at "
                    f"{first_seq}",
                )
            self._apply_fetched(block)
        raise ClusterError("catch_up_impossible", "catch-up did not converge")

    def _fetch_block(self, height: int) -> dict[str, Any] | None:
        for peer in self.config.peers:
            try:
                response = httpx.get(
                    f"{peer}/api/v1/cluster/blocks/{height}", timeout=HTTP_TIMEOUT_S
                )
            except httpx.HTTPError as exc:
                log.info("catch-up: peer %s unreachable: %s", peer, exc)
                continue
            if response.status_code == 200:
                document: dict[str, Any] = response.json()
                return document
        return None

    def _apply_fetched(self, document: dict[str, Any]) -> None:
        header = BlockHeader.from_json(document["header"])
        height = header.height
        if height != self.node.head.height + 1 or header.prev_hash != self.node.head.block_hash:
            raise ClusterError("catch_up_refused", f"fetched block {height} does not link here")
        signatures = [Signature.from_json(s) for s in document["signatures"]]
        members = self.node.membership.after(height - 1)  # the judges of this block
        message = header.encoded()
        valid = [s for s in signatures if valid_signatures(message, [s], members.weights)[0]]
        if sum(members.weights[s.signer] for s in {s.signer: s for s in valid}.values()) < (
            members.quorum_weight
        ):
            raise ClusterError("catch_up_refused", f"fetched block {height} is not final")
        txs = _txs_of(document)
        cursor = document["cursor"]
        self.store.next_cursor = StreamCursor(int(cursor["seq"]), cursor.get("marker_seq"))
        self.node.produce_block(txs, time_ms=header.time_ms, proposer=header.proposer)
        if self.node.head.block_hash != header.hash():
            raise ClusterError(
                "catch_up_divergence",
                f"re-executing fetched block {height} gave another hash: this peer's contracts "
                "or database differ from the consortium's",
            )
        self.store.add_block_signatures(height, [s.to_json() for s in valid])
        log.info("catch-up: block %d from a peer, verified and re-executed", height)


def _txs_of(document: dict[str, Any]) -> list[Tx]:
    batches: dict[str, dict[bytes, Tx]] = {}
    for batch_hash, envelope in document.get("batches", {}).items():
        batches[batch_hash] = {tx.tx_hash: tx for tx in parse_envelope(envelope)}
    txs: list[Tx] = []
    for item in document["txs"]:
        if "batch" in item:
            txs.append(batches[item["batch"]][bytes.fromhex(item["tx_hash"])])
        else:
            (tx,) = parse_envelope(item["envelope"])
            txs.append(tx)
    return txs


# -- HTTP: status, blocks for catch-up, finality -------------------------------------------------

cluster_router = APIRouter(prefix="/api/v1/cluster", tags=["cluster"])


def _platform(app: FastAPI) -> ClusterPlatform:
    platform: ClusterPlatform = app.state.platform
    return platform


@cluster_router.get("/status", summary="This peer's height, hashes, finality and lag")
def _status(request: Request) -> dict[str, Any]:
    return _platform(request.app).status()


@cluster_router.get("/blocks/{height}", summary="A whole block, to catch up from")
def _block(height: int, request: Request) -> dict[str, Any]:
    return block_document(_platform(request.app).store, height)


@cluster_router.get("/signatures/{height}", summary="A block's header and stored signatures")
def _signatures(height: int, request: Request) -> dict[str, Any]:
    block = _platform(request.app).store.get_block(height) if height > 0 else None
    if block is None:
        raise NotFound("block_not_found", f"no block at height {height}")
    return {"header": block.header_json(), "signatures": block.signatures}


@cluster_router.get("/final/{height}", summary="Wait until a block is final on this peer")
def _final(
    height: int,
    request: Request,
    timeout_s: Annotated[float, Query(gt=0, le=60)] = 10.0,
) -> dict[str, Any]:
    finality = _platform(request.app).orderer.finality
    final = finality.wait_final(height, timeout_s=timeout_s)
    return {"height": height, "final": final, "final_height": finality.final_height}


def install_cluster_routes(app: FastAPI) -> None:
    app.include_router(cluster_router)


def block_document(store: ClusterStore, height: int) -> dict[str, Any]:
    block = store.get_block(height) if height > 0 else None
    cursor = store.cursor_at(height)
    if block is None or cursor is None:
        raise NotFound("block_not_found", f"no block at height {height}")
    txs: list[dict[str, Any]] = []
    batches: dict[str, Any] = {}
    for stored in store.txs_at(height):
        if stored.batch_hash is None:
            txs.append({"envelope": stored.envelope()})
            continue
        key = stored.batch_hash.hex()
        txs.append({"batch": key, "tx_hash": stored.tx_hash.hex()})
        if key not in batches:
            found = store.get_batch(stored.batch_hash)
            assert found is not None
            signer, signature, hashes = found
            bodies = store.bodies(hashes)
            batches[key] = {
                "bodies": [decode(bodies[h]) for h in hashes],
                "signer": signer,
                "signature": signature.hex(),
            }
    return {
        "header": block.header_json(),
        "signatures": block.signatures,
        "txs": txs,
        "batches": batches,
        "cursor": {"seq": cursor.seq, "marker_seq": cursor.marker_seq},
    }


def reindex_peer(data: Path) -> tuple[int, int]:
    """Rebuild a stopped peer's query tables over its final blocks only.

    A running peer projects only blocks a quorum signed (a committed block the consortium did
    not sign is never shown), so a rebuild must stop at the same place: the highest block whose
    stored signatures reach the quorum in force before it.  Later blocks are projected by the
    peer once they are final.  Returns (block applications, final height).
    """
    settings = Settings(data=data)
    genesis = Genesis.load(settings.genesis_path)
    if genesis.ordering != "jetstream":
        raise ClusterError("not_a_cluster", "this genesis orders with 'solo', not 'jetstream'")
    lock = _lock_data_dir(settings.data)  # refuses while the peer runs
    try:
        store = ClusterStore(settings.chain_database_url())
        engine = make_engine(settings.platform_database_url_resolved())
        try:
            head = store.head_height() or 0
            final = stored_final_height(store, MembershipHistory.load(store), head)
            runner = ProjectionRunner(store, engine, default_projections(), head=lambda: final)
            return runner.reindex(), final
        finally:
            store.close()
            engine.dispose()
    finally:
        lock.close()


def _exit_on_sigterm(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # the status a process killed by the signal reports


def serve_peer(config_path: Path) -> None:
    """Run one peer and its HTTP API until interrupted (`zhijin serve --cluster`)."""

    from zhijin.platform.app import create_app, serve

    # A peer's log is read next to the NATS servers' and the other peers' logs: time it.
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter(PEER_LOG_FORMAT))
    config = ClusterConfig.load(config_path)
    platform = ClusterPlatform(config)
    platform.start()
    server_file = platform.settings.data / "server.json"
    url = f"http://{config.host}:{config.port}"
    server_file.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    # uvicorn re-raises the signal that stopped it once it has shut down; SIGTERM's default
    # action would then end the process before `platform.stop()` below (no shutdown anchor,
    # no clean stop of the projector): make it unwind instead.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        app = create_app(platform.settings, platform=platform)  # type: ignore[arg-type]
        install_cluster_routes(app)
        serve(app, host=config.host, port=config.port, log_level="warning")
    finally:
        server_file.unlink(missing_ok=True)
        platform.stop()


# -- NATS servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class NatsServer:
    """One nats-server process with JetStream, on loopback ports, routed to its siblings."""

    name: str
    directory: Path
    port: int
    cluster_port: int
    monitor_port: int
    routes: tuple[int, ...] = ()  # the other servers' cluster ports
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        store = self.directory / "jetstream"
        lines = [
            f"server_name: {self.name}",
            f"listen: 127.0.0.1:{self.port}",
            f"http: 127.0.0.1:{self.monitor_port}",
            "max_payload: 8MB",
            "jetstream {",
            f'  store_dir: "{store}"',
            "  max_memory_store: 256MB",
            "  max_file_store: 8GB",
            "}",
        ]
        if self.routes:
            routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in self.routes)
            lines += [
                "cluster {",
                "  name: zhijin",
                f"  listen: 127.0.0.1:{self.cluster_port}",
                f"  routes: [{routes}]",
                "}",
            ]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        binary = shutil.which(NATS_SERVER_BINARY) or shutil.which(
            "nats-server", path="/usr/sbin:/usr/bin:/usr/local/bin"
        )
        if binary is None:
            raise ClusterError(
                "nats_server_missing",
                "no nats-server binary: install it (apt-get install nats-server) "
                "or set ZHIJIN_NATS_SERVER",
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "nats.conf"
        config.write_text(self.config_text())
        log_file = open(self.directory / "nats.log", "ab")  # noqa: SIM115 - the child holds it
        self.process = subprocess.Popen(
            [binary, "-c", str(config)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log_file.close()

    def wait_listening(self, timeout_s: float = NATS_START_S_MAX) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ClusterError("nats_server_failed", f"{self.name} exited; see its nats.log")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise ClusterError("nats_server_failed", f"{self.name} did not listen in time")

    def kill(self) -> None:
        """SIGKILL: the fault tests' way to lose a server."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def make_nats_servers(root: Path, count: int) -> list[NatsServer]:
    if count not in NATS_SERVERS_ALLOWED:
        raise ClusterError("bad_nats_count", f"--nats must be one of {NATS_SERVERS_ALLOWED}")
    ports = [(free_port(), free_port(), free_port()) for _ in range(count)]
    servers = []
    for i, (port, cluster_port, monitor_port) in enumerate(ports):
        routes = tuple(p[1] for j, p in enumerate(ports) if j != i) if count > 1 else ()
        servers.append(
            NatsServer(f"n{i}", root / f"n{i}", port, cluster_port, monitor_port, routes)
        )
    return servers


# -- a local network ----------------------------------------------------------------------------


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
    root.mkdir(parents=True, exist_ok=True)
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
        (data / "keys").mkdir(parents=True, exist_ok=True)
        genesis.save(data / "genesis.json")
        key_path = data / "keys" / f"member-{i}.key"
        key.save(key_path)
        create_local_vault_key(data / "vault.key")  # this member's identity vault (local)
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
    (root / NETWORK_FILE).write_text(json.dumps(network, indent=2) + "\n")
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
    (data / "keys").mkdir(parents=True, exist_ok=True)
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
        (self.root / NETWORK_FILE).write_text(json.dumps(self.layout, indent=2) + "\n")
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
        (self.root / "pids.json").write_text(json.dumps(pids))

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
