"""Cluster mode: one member's peer on the JetStream ordering service, and local networks.

This module is the peer (`ClusterPlatform`, its HTTP routes, `serve_peer`, `reindex_peer`) and
the public face of cluster mode: it re-exports the config (`cluster_config`), the local NATS
servers (`cluster_nats`) and the local networks (`cluster_network`) so importers need one name.

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
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any

import httpx
from fastapi import APIRouter, FastAPI, Query, Request
from sqlalchemy import Engine

from zhijin.chain.block import BlockHeader, Signature, valid_signatures
from zhijin.chain.codec import decode
from zhijin.chain.contract import ContractRegistry
from zhijin.chain.crypto import KeyPair
from zhijin.chain.errors import NotFound
from zhijin.chain.files import write_private
from zhijin.chain.genesis import Genesis
from zhijin.chain.membership import MembershipHistory
from zhijin.chain.node import now_ms
from zhijin.chain.ordering.jetstream import (
    ClusterNode,
    ClusterStore,
    JetStreamOrderer,
    StreamCursor,
    stored_final_height,
)
from zhijin.chain.store import make_engine
from zhijin.chain.tx import Tx, parse_envelope
from zhijin.identity.setup import load_identity_keys
from zhijin.node.cluster_network import (
    NETWORK_FILE,
    LocalNetwork,
    init_network,
    lay_out_joining_peer,
    peer_statuses,
    stop_by_pid_file,
)
from zhijin.node.modules import (
    default_projections,
    default_registry,
    node_services,
)
from zhijin.node.runtime import DomainServices
from zhijin.node.settings import CoreSettings, Settings
from zhijin.platform.cluster_config import ClusterConfig, ClusterError
from zhijin.platform.cluster_nats import NatsServer, make_nats_servers
from zhijin.platform.data_dir import check_data_dir, lock_data_dir
from zhijin.platform.gc_tuning import tune_gc
from zhijin.platform.http_edge import EdgeRoute
from zhijin.platform.lifecycle import NodeLifecycle
from zhijin.platform.member_request import check_member_request, member_request_headers
from zhijin.platform.params import Height
from zhijin.platform.projections import ProjectionRunner

__all__ = [
    "NETWORK_FILE",
    "ClusterConfig",
    "ClusterError",
    "ClusterPlatform",
    "LocalNetwork",
    "NatsServer",
    "cluster_router",
    "init_network",
    "lay_out_joining_peer",
    "make_nats_servers",
    "peer_statuses",
    "reindex_peer",
    "serve_peer",
    "stop_by_pid_file",
]

log = logging.getLogger("zhijin.cluster")

CATCH_UP_BLOCKS_MAX = 1_000_000  # one catch-up run never loops for ever
HTTP_TIMEOUT_S = 10.0
SIGNATURE_FETCH_AFTER_S = 3.0  # final height stuck this long below the head: ask the peers
SIGNATURE_FETCH_HEIGHTS_MAX = 16  # heights asked for per round
SIGNATURE_FETCH_TIMEOUT_S = 2.0
# A stopping peer waits this long for its shutdown audit anchor to become final (after the
# anchorer's own wait for the commit), so that a stop still fits `LocalNetwork`'s 15 s.
SHUTDOWN_FINALITY_WAIT_S = 5.0
FINALITY_POLL_S = 0.05
PEER_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# -- one peer -----------------------------------------------------------------------------------


@dataclass
class ClusterPlatform(DomainServices):
    """A member's peer: the node, the JetStream orderer and catch-up, on one data directory.

    It offers what the HTTP app uses of `Platform` (settings, genesis, store, node, status,
    projections and the domain services, wired by the same `DomainServices`), so
    `create_app(platform=...)` serves it with every route.
    """

    config: ClusterConfig
    registry: ContractRegistry = field(default_factory=default_registry)
    settings: CoreSettings = field(init=False)
    genesis: Genesis = field(init=False)
    store: ClusterStore = field(init=False)
    node: ClusterNode = field(init=False)
    orderer: JetStreamOrderer = field(init=False)
    platform_engine: Engine = field(init=False)
    projections: ProjectionRunner = field(init=False)
    lifecycle: NodeLifecycle = field(init=False)
    _lock_file: IO[str] | None = field(default=None, init=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)
    _recovery: threading.Thread | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.settings = Settings(data=Path(self.config.data))
        self.genesis = Genesis.load(self.settings.genesis_path)
        check_data_dir(self.settings)
        if self.genesis.ordering != "jetstream":
            raise ClusterError("not_a_cluster", "this genesis orders with 'solo', not 'jetstream'")
        vault_keys = load_identity_keys(self.settings)  # refuses weak production settings
        self._lock_file = lock_data_dir(self.settings.data)
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
            wait_timeout_s=self.settings.projection_wait_s,
            gc_mode=self.settings.gc,
        )
        self.orderer.final_listeners.append(self.projections.notify)
        self._wire_services(vault_keys)
        self.lifecycle = NodeLifecycle(
            start_orderer=lambda: self.orderer.start(catch_up=self.catch_up_from_peers),
            stop_orderer=self.orderer.stop,
            await_final=self._await_final,
            projections=self.projections,
            notifications=self.notifications,
            services=node_services(self),
            release=self._release,
        )

    def start(self) -> ClusterPlatform:
        self.lifecycle.start()
        tune_gc(self.settings.gc)
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
        self.lifecycle.stop()

    def _release(self) -> None:
        self.store.close()
        self.platform_engine.dispose()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _await_final(self, height: int) -> None:
        """Give the block a service wrote at shutdown (the audit anchor) a bounded time to
        become final: the query tables this peer leaves behind hold final blocks only, and
        `audit verify` reads them."""
        deadline = time.monotonic() + SHUTDOWN_FINALITY_WAIT_S
        while self.orderer.finality.final_height < height:
            if time.monotonic() >= deadline:
                log.warning("the block written at shutdown (height %d) is not final yet", height)
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
            # A whole block holds tx bodies: peers answer members only (member_request.py).
            headers = member_request_headers(
                self.node.key, chain_id=self.genesis.chain_id, height=height, time_ms=now_ms()
            )
            try:
                response = httpx.get(
                    f"{peer}/api/v1/cluster/blocks/{height}",
                    headers=headers,
                    timeout=HTTP_TIMEOUT_S,
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

cluster_router = APIRouter(prefix="/api/v1/cluster", tags=["cluster"], route_class=EdgeRoute)


def _platform(app: FastAPI) -> ClusterPlatform:
    platform: ClusterPlatform = app.state.platform
    return platform


@cluster_router.get("/status", summary="This peer's height, hashes, finality and lag")
def _status(request: Request) -> dict[str, Any]:
    return _platform(request.app).status()


@cluster_router.get("/blocks/{height}", summary="A whole block, to catch up from (members only)")
def _block(height: Height, request: Request) -> dict[str, Any]:
    platform = _platform(request.app)
    check_member_request(
        request.headers,
        chain_id=platform.genesis.chain_id,
        height=height,
        now_ms=now_ms(),
        members=platform.node.membership.latest().members,
    )
    return block_document(platform.store, height)


@cluster_router.get("/signatures/{height}", summary="A block's header and stored signatures")
def _signatures(height: Height, request: Request) -> dict[str, Any]:
    block = _platform(request.app).store.get_block(height) if height > 0 else None
    if block is None:
        raise NotFound("block_not_found", f"no block at height {height}")
    return {"header": block.header_json(), "signatures": block.signatures}


@cluster_router.get("/final/{height}", summary="Wait until a block is final on this peer")
def _final(
    height: Height,
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
    lock = lock_data_dir(settings.data)  # refuses while the peer runs
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

    from zhijin.node.app import create_app, serve

    # A peer's log is read next to the NATS servers' and the other peers' logs: time it.
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter(PEER_LOG_FORMAT))
    config = ClusterConfig.load(config_path)
    platform = ClusterPlatform(config)
    platform.start()
    server_file = platform.settings.data / "server.json"
    url = f"http://{config.host}:{config.port}"
    write_private(server_file, json.dumps({"url": url, "pid": os.getpid()}))
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
