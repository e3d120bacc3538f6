"""Client-side helpers for cluster tests: signing, submitting, waiting (always bounded)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from zhijin.chain.crypto import KeyPair
from zhijin.chain.genesis import Genesis
from zhijin.chain.ordering.jetstream import ClusterStore
from zhijin.chain.tx import make_body, sign_tx
from zhijin.chain.verify import VerifyReport, verify_chain
from zhijin.node.cluster import LocalNetwork
from zhijin.node.modules import default_registry

WAIT_S_MAX = 30.0


def wait_until(
    condition: Callable[[], Any], *, timeout_s: float = WAIT_S_MAX, what: str = ""
) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.1)


def chain_id(network: LocalNetwork) -> str:
    return str(network.layout["chain_id"])


def anchor_envelope(
    network: LocalNetwork, key: KeyPair, nonce: int, document: str, **over: Any
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "chain_id": chain_id(network),
        "sender": key.did,
        "nonce": nonce,
        "contract": "notary",
        "method": "anchor",
        "args": {"hash": document},
        "valid_until": int(time.time() * 1000) + 120_000,
    }
    fields.update(over)
    return sign_tx(key, make_body(**fields))


def document_hash(tag: str, index: int) -> str:
    return (tag.encode().hex() + f"{index:x}").rjust(64, "0")[-64:]


def submit(url: str, envelope: dict[str, Any], *, wait: bool = False) -> httpx.Response:
    suffix = "?wait=true" if wait else ""
    return httpx.post(f"{url}/api/v1/chain/txs{suffix}", json=envelope, timeout=30)


def statuses(network: LocalNetwork, indices: list[int] | None = None) -> list[dict[str, Any]]:
    rows = network.status()
    return [rows[i] for i in (indices if indices is not None else range(len(rows)))]


def converged(
    network: LocalNetwork, *, log_size: int, indices: list[int] | None = None, final: bool = True
) -> bool:
    rows = statuses(network, indices)
    if any("error" in r or r["log_size"] < log_size for r in rows):
        return False
    if len({(r["height"], r["block_hash"], r["state_root"]) for r in rows}) != 1:
        return False
    return not final or all(r["final_height"] == r["height"] for r in rows)


def wait_converged(
    network: LocalNetwork,
    *,
    log_size: int,
    indices: list[int] | None = None,
    timeout_s: float = WAIT_S_MAX,
) -> list[dict[str, Any]]:
    try:
        wait_until(
            lambda: converged(network, log_size=log_size, indices=indices),
            timeout_s=timeout_s,
            what=f"peers {indices} to agree on {log_size} txs, final",
        )
    except AssertionError as exc:
        # Say where each peer stands: a flaky wait is diagnosed from this, not re-run blind.
        keys = ("height", "final_height", "log_size", "applied_seq", "stream_last_seq")
        rows = [{k: r.get(k, r.get("error")) for k in keys} for r in statuses(network, indices)]
        raise AssertionError(f"{exc}; peers: {rows}") from None
    return statuses(network, indices)


def peer_store(network: LocalNetwork, index: int) -> tuple[ClusterStore, Genesis]:
    data = Path(network.root / f"peer{index}")
    genesis = Genesis.load(data / "genesis.json")
    return ClusterStore(f"sqlite:///{data / 'chain.db'}"), genesis


def verify_peer(network: LocalNetwork, index: int) -> VerifyReport:
    store, genesis = peer_store(network, index)
    try:
        return verify_chain(store, genesis, default_registry())
    finally:
        store.close()


def member_key(network: LocalNetwork, index: int) -> KeyPair:
    config = json.loads(Path(network.layout["peers"][index]["config"]).read_text())
    return KeyPair.load(Path(config["member_key"]))
