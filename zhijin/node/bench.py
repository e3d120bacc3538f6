"""The chain benchmark (`bench/chain.py`, `zhijin bench chain`).

Signed notary transactions from many senders go through the node's admission (signature
checks on the client threads), the solo orderer, execution and the durable commit; a tx's
latency runs from its submission to the moment its block is committed.  A second case sends
the same kind of transactions in member batch envelopes (one signature per batch).  The
machine's own Ed25519 verification rate is measured too: cores x that rate is the ceiling for
per-tx-signed throughput.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from zhijin.chain.codec import canonical
from zhijin.chain.crypto import KeyPair, verify
from zhijin.chain.tx import make_body, sign_batch, sign_tx
from zhijin.node.runtime import Platform, init_data_dir
from zhijin.platform.scratch import scratch_schema
from zhijin.platform.settings import Settings

__all__ = ["latency_percentiles", "measure_verify_rate", "run_chain_bench"]

SENDERS = 1_000
CLIENT_THREADS = 2
SUBMIT_CHUNK = 500
BATCH_BODIES = 1_000
PACED_RATE_PER_S = 2_000
PACED_SECONDS = 5


def measure_verify_rate(samples: int = 4_000) -> float:
    """Ed25519 verifications per second on one core (libsodium through PyNaCl)."""
    key = KeyPair.generate()
    messages = [os.urandom(180) for _ in range(samples)]
    signatures = [key.sign(m) for m in messages]
    start = time.perf_counter()
    for message, signature in zip(messages, signatures, strict=True):
        verify(key.public_key, message, signature)
    return samples / (time.perf_counter() - start)


def latency_percentiles(latencies_ms: list[float]) -> dict[str, float | None]:
    """p50 and p99 of commit latencies in ms (None when there are none)."""
    ordered = sorted(latencies_ms)
    if not ordered:
        return {"p50_commit_ms": None, "p99_commit_ms": None}
    return {
        "p50_commit_ms": round(statistics.median(ordered), 1),
        "p99_commit_ms": round(ordered[max(int(len(ordered) * 0.99) - 1, 0)], 1),
    }


def _bodies(chain_id: str, senders: list[KeyPair], count: int, tag: str) -> list[dict[str, Any]]:
    valid_until = int(time.time() * 1000) + 3_600_000
    return [
        make_body(
            chain_id=chain_id,
            sender=senders[i % len(senders)].did,
            nonce=i,
            contract="notary",
            method="anchor",
            args={"hash": canonical([tag, i]).hex().ljust(64, "0")[:64], "title": f"doc {i}"},
            valid_until=valid_until,
        )
        for i in range(count)
    ]


def _run_case(
    platform: Platform, envelopes: list[Any], submit: Callable[[list[Any]], Any]
) -> dict[str, Any]:
    """Submit `envelopes` from client threads; collect per-tx commit latency."""
    latencies_ms: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    done = threading.Event()
    expected = [0]

    def on_commit(started: float) -> Callable[[Future[dict[str, Any]]], None]:
        def record(future: Future[dict[str, Any]]) -> None:
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies_ms.append(elapsed)
                if future.exception() is not None or future.result()["status"] != "ok":
                    failures.append("tx failed")
                if len(latencies_ms) + len(failures) >= expected[0]:
                    done.set()

        return record

    chunks = [envelopes[i : i + SUBMIT_CHUNK] for i in range(0, len(envelopes), SUBMIT_CHUNK)]

    admission_cpu_s = [0.0] * CLIENT_THREADS

    def client(worker: int) -> None:
        for chunk in chunks[worker::CLIENT_THREADS]:
            started = time.perf_counter()
            cpu_started = time.thread_time()
            admissions = submit(chunk)
            admission_cpu_s[worker] += time.thread_time() - cpu_started
            for admission in admissions:
                if admission.accepted and admission.future is not None:
                    admission.future.add_done_callback(on_commit(started))
                else:
                    with lock:
                        failures.append(f"rejected {admission.code}")

    expected[0] = sum(len(_txs_in(e)) for e in envelopes)
    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(w,)) for w in range(CLIENT_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.wait(timeout=600)
    seconds = time.perf_counter() - start
    latencies_ms.sort()
    return {
        "txs": expected[0],
        "committed": len(latencies_ms) - len([f for f in failures if f == "tx failed"]),
        "failed_or_rejected": len(failures),
        "seconds": round(seconds, 3),
        "committed_tx_per_s": round(len(latencies_ms) / seconds),
        **latency_percentiles(latencies_ms),
        "blocks": platform.node.head.height,
        "admission_cpu_s": sum(admission_cpu_s),
    }


def _run_paced(platform: Platform, envelopes: list[Any], rate_per_s: int) -> dict[str, Any]:
    """Offer per-tx-signed envelopes at a steady rate: commit latency at a load the node can
    carry, rather than the queueing delay of an all-at-once burst."""
    latencies_ms: list[float] = []
    lock = threading.Lock()
    tick_s = 0.01
    per_tick = max(1, rate_per_s * tick_s)
    admission_cpu_s = 0.0
    start = time.perf_counter()
    for index in range(0, len(envelopes), int(per_tick)):
        target = start + (index / rate_per_s)
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent = time.perf_counter()
        cpu_started = time.thread_time()
        admissions = platform.node.submit_many(envelopes[index : index + int(per_tick)])
        admission_cpu_s += time.thread_time() - cpu_started
        for admission in admissions:
            assert admission.future is not None, admission.code

            def record(_future: Future[dict[str, Any]], sent: float = sent) -> None:
                with lock:
                    latencies_ms.append((time.perf_counter() - sent) * 1000)

            admission.future.add_done_callback(record)
    deadline = time.monotonic() + 60
    while len(latencies_ms) < len(envelopes) and time.monotonic() < deadline:
        time.sleep(0.01)
    seconds = time.perf_counter() - start
    latencies_ms.sort()
    return {
        "txs": len(envelopes),
        "offered_tx_per_s": rate_per_s,
        "committed": len(latencies_ms),
        "seconds": round(seconds, 3),
        **latency_percentiles(latencies_ms),
        "blocks": platform.node.head.height,
        "admission_cpu_s": admission_cpu_s,
    }


def _stage_cpu_us_per_tx(platform: Platform, admission_cpu_s: float, txs: int) -> dict[str, float]:
    """CPU (thread time) per committed tx by stage: admission on the client threads, each
    stage of block production on the producing thread, and the projections' catch-up."""
    seconds = {
        "admission": admission_cpu_s,
        **platform.node.stage_cpu_s,
        "projections": platform.projections.cpu_s,
    }
    return {stage: round(cpu / max(txs, 1) * 1e6, 1) for stage, cpu in seconds.items()}


def _txs_in(envelope: Any) -> list[Any]:
    bodies: list[Any] = envelope.get("bodies", [envelope])
    return bodies


def run_chain_bench(
    *, txs: int = 20_000, database_url: str | None = None, emit: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    verify_rate = measure_verify_rate()
    cores = os.cpu_count() or 1
    engine = (database_url or "sqlite").split(":")[0].split("+")[0]
    results = []
    for case in ("per_tx_signed", "member_batch", "paced_latency"):
        with (
            tempfile.TemporaryDirectory(prefix="zhijin-bench-") as tmp,
            scratch_schema(database_url, prefix="bench") as case_url,
        ):
            settings = Settings(data=Path(tmp), database_url=case_url)
            genesis = init_data_dir(settings, members=1, chain_id=f"bench-{os.getpid()}")
            senders = [KeyPair.generate() for _ in range(SENDERS)]
            count = min(txs, PACED_RATE_PER_S * PACED_SECONDS) if case == "paced_latency" else txs
            bodies = _bodies(genesis.chain_id, senders, count, case)
            with Platform(settings) as platform:
                if case == "paced_latency":
                    keys = {k.did: k for k in senders}
                    signed = [sign_tx(keys[b["sender"]], b) for b in bodies]
                    figures = _run_paced(platform, signed, PACED_RATE_PER_S)
                elif case == "per_tx_signed":
                    keys = {k.did: k for k in senders}
                    envelopes: list[Any] = [sign_tx(keys[b["sender"]], b) for b in bodies]
                    figures = _run_case(platform, envelopes, platform.node.submit_many)
                else:
                    member = platform.node.key
                    envelopes = [
                        sign_batch(member, bodies[i : i + BATCH_BODIES])
                        for i in range(0, len(bodies), BATCH_BODIES)
                    ]
                    figures = _run_case(
                        platform,
                        envelopes,
                        lambda chunk: [a for e in chunk for a in platform.node.submit(e)],
                    )
            # After the platform stopped: the projections have caught up with the last block.
            figures["cpu_us_per_tx"] = _stage_cpu_us_per_tx(
                platform, figures.pop("admission_cpu_s"), figures["committed"]
            )
        line = {
            "bench": "chain",
            "case": case,
            "database": engine,
            **figures,
            "ed25519_verify_per_s_per_core": round(verify_rate),
            "cores": cores,
            "verify_limit_tx_per_s": round(verify_rate * cores),
        }
        emit(json.dumps(line))
        results.append(line)
    return results
