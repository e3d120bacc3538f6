"""The chain benchmark (`bench/chain.py`, `zhijin bench chain`).

Signed notary transactions from many senders go through the node's admission (signature
checks on the client threads), the solo orderer, execution and the durable commit; a tx's
latency runs from its submission to the moment its block is committed.  A second case sends
the same kind of transactions in member batch envelopes (one signature per batch).  The
machine's own Ed25519 verification rate is measured too, in the same run: cores x that rate is
the ceiling for per-tx-signed throughput, and each burst case prints `ratio_to_verify_limit`
(its committed tx/s over that ceiling; the figure of record, since the machine's speed swings).
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
from zhijin.node.settings import Settings
from zhijin.platform.scratch import scratch_schema

__all__ = [
    "latency_percentiles",
    "measure_admission",
    "measure_verify_gil",
    "measure_verify_rate",
    "run_chain_bench",
]

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


def measure_verify_gil(message_bytes: int = 8 * 1024 * 1024) -> dict[str, float]:
    """Does libsodium's verify release the GIL?  One verification of a large message (its
    SHA-512 is one long C call) on a second thread while this thread runs Python, against the
    same with the second thread in `time.sleep` (which surely releases it) for as long.  The
    CPU this thread gets meanwhile, as a share of the wall time, is the same in both when the
    verify releases the GIL (on a busy machine both shares are low), and near 0 if it held it.
    """
    key = KeyPair.generate()
    message = os.urandom(message_bytes)
    signature = key.sign(message)

    def share_while(work: Callable[[], None]) -> tuple[float, float]:
        inside = threading.Event()
        finished = threading.Event()
        spans: list[float] = []

        def run() -> None:
            inside.set()
            started = time.perf_counter()
            work()
            spans.append(time.perf_counter() - started)
            finished.set()

        thread = threading.Thread(target=run)
        thread.start()
        inside.wait()
        cpu_started = time.thread_time()
        while not finished.is_set():
            pass
        python_cpu_s = time.thread_time() - cpu_started
        thread.join()
        return spans[0], python_cpu_s / spans[0]

    def verify_once() -> None:
        if not verify(key.public_key, message, signature):
            raise RuntimeError("the large message's signature does not verify")

    verify_s, verify_share = share_while(verify_once)
    _, sleep_share = share_while(lambda: time.sleep(verify_s))
    return {
        "verify_call_ms": round(verify_s * 1000, 1),
        "python_share_during_verify": round(verify_share, 3),
        "python_share_during_sleep": round(sleep_share, 3),
        "verify_over_sleep": round(verify_share / sleep_share, 3) if sleep_share else 0.0,
    }


def measure_admission(txs: int = 6_000, rounds: int = 2) -> dict[str, Any]:
    """Admission alone (no block production): per-tx-signed envelopes as wire bytes through
    `Node.submit_envelopes` from one caller thread, signatures verified inline (0 threads)
    and on the verifier pool (one thread per core), alternated `rounds` times on fresh nodes."""
    from zhijin.chain.contract import Member
    from zhijin.chain.genesis import Genesis
    from zhijin.chain.node import Node
    from zhijin.chain.store import ChainStore
    from zhijin.node.modules import default_registry

    member = KeyPair.generate()
    registry = default_registry()
    genesis = Genesis(
        chain_id="bench-admission",
        time_ms=int(time.time() * 1000) - 1_000,
        members=(Member(did=member.did, name="Bench", role="bank", weight=1),),
        quorum_weight=1,
        ordering="solo",
        orderer=member.did,
        contracts=registry.versions(),
    )
    senders = [KeyPair.generate() for _ in range(SENDERS)]
    keys = {k.did: k for k in senders}
    bodies = _bodies(genesis.chain_id, senders, txs, "admission")
    wire = [canonical(sign_tx(keys[b["sender"]], b)) for b in bodies]
    rates: dict[int, list[float]] = {}
    cores = os.cpu_count() or 1
    for _ in range(rounds):
        for threads in (0, cores):
            with tempfile.TemporaryDirectory(prefix="zhijin-admission-") as tmp:
                store = ChainStore(f"sqlite:///{tmp}/chain.db")
                node = Node(
                    store=store,
                    genesis=genesis,
                    registry=registry,
                    key=member,
                    verify_threads=threads,
                )
                started = time.perf_counter()
                for i in range(0, len(wire), SUBMIT_CHUNK):
                    groups = node.submit_envelopes(wire[i : i + SUBMIT_CHUNK])
                    assert all(g[0].accepted for g in groups), groups[0][0].code
                rates.setdefault(threads, []).append(txs / (time.perf_counter() - started))
                node.verifier.close()
                store.close()
    inline = statistics.mean(rates[0])
    pooled = statistics.mean(rates[cores])
    return {
        "txs": txs,
        "rounds": rounds,
        "inline_tx_per_s": round(inline),
        "pool_tx_per_s": round(pooled),
        "pool_threads": cores,
        "pool_over_inline": round(pooled / inline, 3),
    }


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
    if database_url is None:  # once per run: the engine does not matter to these two
        for name, measured in (
            ("verify_gil", measure_verify_gil()),
            ("admission_only", measure_admission()),
        ):
            line = {"bench": "chain", "case": name, **measured, "cores": cores}
            emit(json.dumps(line))
            results.append(line)
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
        if "committed_tx_per_s" in figures:  # a burst case: how far from the signature limit
            line["ratio_to_verify_limit"] = round(
                figures["committed_tx_per_s"] / (verify_rate * cores), 3
            )
        emit(json.dumps(line))
        results.append(line)
    return results
