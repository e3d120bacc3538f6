"""Fault tests on loopback: kill -9 a peer, lose NATS servers, tamper a database, run a wrong
contract, fall behind the stream's retention.  Each is bounded in time and stops what it
started (the fixtures' `finally`)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.cluster.conftest import NetworkFactory, start_nats
from tests.cluster.helpers import (
    anchor_envelope,
    document_hash,
    peer_store,
    statuses,
    submit,
    verify_peer,
    wait_converged,
    wait_until,
)
from zhijin.chain.codec import canonical
from zhijin.chain.contract import Contract, ContractRegistry
from zhijin.chain.crypto import KeyPair
from zhijin.node.cluster import ClusterConfig, ClusterPlatform, LocalNetwork
from zhijin.node.modules import default_registry
from zhijin.notary import contract as notary

pytestmark = pytest.mark.slow


class Load:
    """Clients submitting anchors to some peers until stopped; remembers what was accepted."""

    def __init__(self, network: LocalNetwork, peers: list[int], clients: int = 2) -> None:
        self.network = network
        self.peers = peers
        self.accepted: set[str] = set()
        self.refused: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(40)

    def _run(self, worker: int) -> None:
        key = KeyPair.generate()
        for nonce in range(1, 100_000):
            if self._stop.is_set():
                return
            url = self.network.urls[self.peers[nonce % len(self.peers)]]
            envelope = anchor_envelope(self.network, key, nonce, document_hash(f"w{worker}", nonce))
            try:
                response = submit(url, envelope)
            except Exception as exc:  # a killed peer: the client moves on
                self.refused.append({"error": repr(exc)})
                time.sleep(0.05)
                continue
            with self._lock:
                if response.status_code == 202:
                    self.accepted.add(response.json()["tx_hash"])
                else:
                    self.refused.append(response.json())
            time.sleep(0.01)

    def count(self) -> int:
        with self._lock:
            return len(self.accepted)


def _committed_hashes(network: LocalNetwork, index: int) -> set[str]:
    store, _ = peer_store(network, index)
    try:
        with store.read() as conn:
            return {row[0].hex() for row in conn.execute(text("SELECT hash FROM chain_txs"))}
    finally:
        store.close()


def test_kill_9_peer_under_load_then_catch_up(make_network: NetworkFactory) -> None:
    network = make_network(3)
    with Load(network, peers=[0, 1]) as load:
        wait_until(lambda: statuses(network, [2])[0]["log_size"] >= 20, what="some load")
        network.kill_peer(2)
        at_kill = load.count()
        wait_until(lambda: load.count() >= at_kill + 30, what="load while peer 2 is down")
        network.start_peer(2)
        time.sleep(1.0)
    rows = wait_converged(network, log_size=len(load.accepted))
    assert rows[2]["log_size"] == len(load.accepted)
    assert _committed_hashes(network, 2) == load.accepted == _committed_hashes(network, 0)
    report = verify_peer(network, 2)
    assert report.ok, report.reason


def test_nats_server_failures(make_network: NetworkFactory, tmp_path: Path) -> None:
    servers = start_nats(tmp_path / "own-nats")
    try:
        network = make_network(3, nats_urls=[s.url for s in servers])
        with Load(network, peers=[0, 1, 2]) as load:
            wait_until(lambda: load.count() >= 20, what="some load")
            servers[0].kill()  # one of three: the stream keeps its quorum
            at_kill = load.count()
            wait_until(lambda: load.count() >= at_kill + 30, timeout_s=40, what="ordering on 2/3")
        wait_converged(network, log_size=len(load.accepted), timeout_s=40)

        servers[1].kill()  # two of three: no quorum, writes must stop with a clear error
        key = KeyPair.generate()
        response = submit(network.urls[0], anchor_envelope(network, key, 1, document_hash("q", 1)))
        assert response.status_code == 400
        assert response.json()["code"] == "ordering_unavailable"
        committed = _committed_hashes(network, 0)
        assert load.accepted <= committed, "everything acknowledged before is committed"

        servers[1].start()  # a server returns: writes resume
        servers[1].wait_listening()

        def accepted() -> bool:
            envelope = anchor_envelope(network, key, 2, document_hash("q", 2))
            return submit(network.urls[1], envelope).status_code == 202

        wait_until(accepted, timeout_s=60, what="writes to resume")
        wait_converged(network, log_size=len(committed) + 1, timeout_s=60)
        assert committed <= _committed_hashes(network, 2)
        assert verify_peer(network, 1).ok
    finally:
        for server in servers:
            server.kill()


def test_tampered_database_halts_at_the_first_differing_block(
    make_network: NetworkFactory,
) -> None:
    network = make_network(3)
    key = KeyPair.generate()
    target = document_hash("tamper", 1)
    assert submit(network.urls[0], anchor_envelope(network, key, 1, target), wait=True).is_success
    wait_converged(network, log_size=1)
    network.stop_peer(2)
    store, _ = peer_store(network, 2)
    try:
        with store.engine.begin() as conn:
            row = conn.execute(
                text("SELECT value FROM chain_state WHERE key = :k"),
                {"k": notary.record_key(target)},
            ).scalar_one()
            forged = canonical({**__import__("json").loads(row), "title": "forged"})
            conn.execute(
                text("UPDATE chain_state SET value = :v WHERE key = :k"),
                {"v": forged, "k": notary.record_key(target)},
            )
    finally:
        store.close()
    network.start_peer(2)
    # Anchoring the same hash again returns the stored record: peer 2 returns the forged one.
    assert submit(network.urls[0], anchor_envelope(network, key, 2, target)).status_code == 202
    halted = wait_until(lambda: statuses(network, [2])[0]["halted"], what="peer 2 to halt")
    rows = wait_converged(network, log_size=2, indices=[0, 1])
    assert halted["height"] == rows[0]["height"] == 2
    assert halted["other_hash"] == rows[0]["block_hash"] != halted["local_hash"]
    # The others go on.
    assert (
        submit(network.urls[1], anchor_envelope(network, key, 3, document_hash("t", 3))).status_code
        == 202
    )
    wait_converged(network, log_size=3, indices=[0, 1])
    refused = submit(network.urls[2], anchor_envelope(network, key, 4, document_hash("t", 4)))
    assert refused.status_code == 400 and refused.json()["code"] == "peer_halted"


def _wrong_notary() -> ContractRegistry:
    """The notary with the same name and version but a changed rule: a bad deployment."""

    def anchor(ctx: Any, args: dict[str, Any]) -> Any:
        result = notary.anchor(ctx, args)
        ctx.emit("audited", by="a patched build")
        return result

    wrong = Contract(
        name="notary", version=notary.NOTARY_CONTRACT.version, methods={"anchor": anchor}
    )
    others = [c for c in default_registry() if c.name != "notary"]
    return ContractRegistry([*others, wrong])


def test_wrong_contract_build_halts_that_peer_only(make_network: NetworkFactory) -> None:
    network = make_network(3, start=False)
    network.start_nats()
    network.start_peer(0)
    network.start_peer(1)
    config = ClusterConfig.load(Path(network.layout["peers"][2]["config"]))
    wrong = ClusterPlatform(config, registry=_wrong_notary()).start()
    try:
        key = KeyPair.generate()
        assert (
            submit(
                network.urls[0], anchor_envelope(network, key, 1, document_hash("w", 1))
            ).status_code
            == 202
        )
        wait_until(lambda: wrong.orderer.halted, what="the wrong build to halt")
        assert wrong.orderer.halted is not None and wrong.orderer.halted.height == 1
        rows = wait_converged(network, log_size=1, indices=[0, 1])
        assert wrong.orderer.halted.other_hash == rows[0]["block_hash"]
        assert (
            submit(
                network.urls[1], anchor_envelope(network, key, 2, document_hash("w", 2))
            ).status_code
            == 202
        )
        wait_converged(network, log_size=2, indices=[0, 1])
        assert wrong.node.head.height == 1, "a halted peer applies nothing more"
    finally:
        wrong.stop()


def test_catch_up_from_peers_past_stream_retention(make_network: NetworkFactory) -> None:
    network = make_network(3, stream_max_msgs=20)
    key = KeyPair.generate()
    network.stop_peer(2)
    for nonce in range(1, 41):
        envelope = anchor_envelope(network, key, nonce, document_hash("r", nonce))
        assert submit(network.urls[nonce % 2], envelope, wait=True).is_success
    wait_converged(network, log_size=40, indices=[0, 1])
    network.start_peer(2)
    rows = wait_converged(network, log_size=40)
    assert len({r["state_root"] for r in rows}) == 1
    assert verify_peer(network, 2).ok
    log_text = (network.root / "peer2.log").read_text()
    assert "catch-up: block 1 from a peer" in log_text
    # A whole block holds tx bodies: a peer gives it to members only (signed requests).
    unsigned = httpx.get(f"{network.urls[0]}/api/v1/cluster/blocks/1", timeout=10)
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "member_signature_required"
