"""kill -9 a server running the commit pipeline (ZHIJIN_CHAIN_PIPELINE=true) while it commits a
stream of txs: with a block always in flight, nothing answered "committed" is lost, nothing
half-written is kept, and the chain verifies after restart (tests/platform/test_crash.py's
pattern, with the pipeline on)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from zhijin.chain.crypto import KeyPair
from zhijin.chain.genesis import Genesis
from zhijin.chain.store import ChainStore
from zhijin.chain.tx import make_body, sign_tx
from zhijin.chain.verify import verify_chain
from zhijin.node.modules import default_registry

STARTUP_S_MAX = 120  # a start-up on a busy 2-core machine can take 40 s
STREAM_S = 2.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(data: Path, port: int) -> subprocess.Popen:
    """Start `zhijin serve`; its log goes to data/../serve.log."""
    env = {
        **os.environ,
        "ZHIJIN_BLOCK_INTERVAL_MS": "5",
        "ZHIJIN_BLOCK_TXS_MAX": "50",
        "ZHIJIN_CHAIN_PIPELINE": "true",
        "ZHIJIN_LOG": "INFO",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "zhijin", "serve", "--data", str(data), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(data.parent / "serve.log").open("ab"),
    )
    deadline = time.monotonic() + STARTUP_S_MAX
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not start")


def test_kill_9_mid_pipeline_keeps_every_committed_tx(tmp_path: Path) -> None:
    data = tmp_path / "var"
    subprocess.run(
        [sys.executable, "-m", "zhijin", "chain", "init", "--data", str(data), "--members", "1"],
        check=True,
        capture_output=True,
    )
    genesis = Genesis.load(data / "genesis.json")
    port = _free_port()
    proc = _start(data, port)
    committed: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        key = KeyPair.generate()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for nonce in range(1, 100_000):
                if stop.is_set():
                    return
                body = make_body(
                    chain_id=genesis.chain_id,
                    sender=key.did,
                    nonce=nonce,
                    contract="notary",
                    method="anchor",
                    args={"hash": f"{worker:08x}{nonce:056x}"},
                    valid_until=int(time.time() * 1000) + 60_000,
                )
                try:
                    answer = http.post(
                        "/api/v1/chain/txs?wait=true", json=sign_tx(key, body)
                    ).json()
                except httpx.HTTPError:
                    return  # the server died mid-request: that tx was never answered
                if answer.get("status") == "committed":
                    with lock:
                        committed.append(answer["tx_hash"])

    threads = [threading.Thread(target=client, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(STREAM_S)
    os.kill(proc.pid, signal.SIGKILL)
    assert "commit pipeline on" in (tmp_path / "serve.log").read_text()
    proc.wait(timeout=10)
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
    with lock:
        answered = list(committed)
    assert len(answered) > 20, "the stream should have committed txs before the kill"

    store = ChainStore(f"sqlite:///{(data / 'chain.db').resolve()}")
    try:
        for tx_hash in answered:
            assert store.get_tx(bytes.fromhex(tx_hash)) is not None, f"lost committed tx {tx_hash}"
        report = verify_chain(store, genesis, default_registry())
        assert report.ok, report.reason
    finally:
        store.close()

    # The restarted node carries on from the stored head.
    proc = _start(data, port)
    try:
        head = httpx.get(f"http://127.0.0.1:{port}/api/v1/chain/head").json()
        assert head["log_size"] >= len(answered)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
