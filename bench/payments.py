"""Payments benchmark: committed transfers per second between 5,000 accounts.

    .venv/bin/python bench/payments.py

The first line calibrates the machine (Ed25519 verifications and a pure-Python loop on one
core), so figures from different machines, or one machine on a busy day, can be compared.
Then one JSON line per case: SQLite and PostgreSQL (a scratch schema, dropped afterwards) x
uniform traffic or one hot account (every transfer debits it) x
- per_tx_signed: each tx carries one transfer, signed by its sender (the account owner), as a
  wallet would;
- member_batch: each tx carries one transfer; the bank signs batches of bodies vouching for its
  customers;
- member_batch_multi: each tx carries MULTI_TRANSFERS_PER_TX transfers (a bank's batch of its
  customers' payments, as the batch API or a pain.001 import submits them).
A tx's latency runs from its submission to the commit of its block.  A last line measures the
contract alone (in memory, no signatures, no database), to separate the payments code from the
chain's costs.

A paced case per database offers per-tx-signed transfers at a steady PACED_RATE_PER_S for
PACED_SECONDS: its latencies are those of a load the node carries, where the burst cases'
latencies are mostly queueing.  Every node case also reports the CPU time spent producing blocks
(thread time of the producing thread) and applying the query tables (the projector process's
CPU time, which includes loading the blocks), per transfer.

The anchor is measured in the same run (this machine's speed swings 2x between runs, so the
ratios are the figures of record): bench/pg_ledger.py, a minimal double-entry ledger in plain
PostgreSQL (100 transfers per database transaction, SELECT ... FOR UPDATE in READ COMMITTED, 8
client connections, fsync on), run before the node cases and again after them, for each
traffic.  Every node case prints `ratio_to_pg_ledger`: its committed transfers/s over the mean
of the two anchor runs of the same traffic.  Fabric 2.5 reports ~3k tx/s.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from zhijin.chain.contract import (
    MEMBER_PREFIX,
    BlockInfo,
    BlockState,
    ContractRegistry,
    Member,
    TxInfo,
    execute_tx,
)
from zhijin.chain.crypto import KeyPair
from zhijin.chain.memory import MemoryState
from zhijin.chain.tx import make_body, sign_batch, sign_tx
from zhijin.node.bench import latency_percentiles, measure_verify_rate
from zhijin.node.runtime import Platform, init_data_dir
from zhijin.node.settings import Settings
from zhijin.payments import service
from zhijin.payments.contract import PAYMENTS_CONTRACT
from zhijin.platform.gateway import MemberGateway
from zhijin.platform.scratch import scratch_schema

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pg_ledger  # bench/pg_ledger.py, the anchor

# Sized to run in under 3 minutes with no arguments on a quiet 2-core machine (the house rule):
# halved on 2026-12-03 from 10,000 accounts, 4,000 / 20,000 transfers and 6 paced seconds
# (3 min 40 s), every case and the anchor's ratio kept.  Most of a case's time is its set-up
# (opening and funding ACCOUNTS accounts, then projecting them), so ACCOUNTS weighs most.
ACCOUNTS = pg_ledger.ACCOUNTS  # the anchor's traffic is the same
TRANSFERS_PER_CASE = 2_000
BATCH_BODIES = 500
MULTI_TRANSFERS_PER_TX = 100  # the member_batch_multi case: one tx carries 100 transfers
MULTI_TRANSFERS_PER_CASE = 10_000
SETUP_ITEMS = 100  # accounts or deposits per setup tx
DEPOSIT_MINOR = 10_000_000
HOT_DEPOSIT_MINOR = 10**15
PG_URL = os.environ.get("ZHIJIN_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CLIENT_THREADS = 2
SUBMIT_CHUNK = 500  # envelopes per submit call in the burst cases
PACED_RATE_PER_S = 1_000
PACED_SECONDS = 4
PACED_TICK_S = 0.01  # the paced client submits every 10 ms
COMMIT_WAIT_S_MAX = 600


class _Latencies:
    """Commit latencies of a case's txs, recorded by the futures' callbacks."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.ms: list[float] = []
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self.done = threading.Event()

    def watch(self, admission: Any, sent: float) -> None:
        if not admission.accepted or admission.future is None:
            self._add(None, f"rejected {admission.code}")
            return

        def record(future: Future[dict[str, Any]]) -> None:
            failed = future.exception() is not None or future.result()["status"] != "ok"
            self._add((time.perf_counter() - sent) * 1000, "tx failed" if failed else None)

        admission.future.add_done_callback(record)

    def _add(self, elapsed_ms: float | None, failure: str | None) -> None:
        with self._lock:
            if elapsed_ms is not None:
                self.ms.append(elapsed_ms)
            if failure is not None:
                self.failures.append(failure)
            if len(self.ms) + len(self.failures) - self.failures.count("tx failed") >= (
                self.expected
            ):
                self.done.set()

    def figures(self, seconds: float) -> dict[str, Any]:
        latencies = sorted(self.ms)
        return {
            "committed": len(latencies) - self.failures.count("tx failed"),
            "failed_or_rejected": len(self.failures),
            "seconds": round(seconds, 3),
            "committed_tx_per_s": round(len(latencies) / seconds),
            **latency_percentiles(latencies),
        }


def _run_burst(
    envelopes: list[Any], expected: int, submit: Callable[[list[Any]], list[Any]]
) -> dict[str, Any]:
    """Submit every envelope at once from client threads; latency includes queueing."""
    latencies = _Latencies(expected)
    chunks = [envelopes[i : i + SUBMIT_CHUNK] for i in range(0, len(envelopes), SUBMIT_CHUNK)]

    def client(worker: int) -> None:
        for chunk in chunks[worker::CLIENT_THREADS]:
            sent = time.perf_counter()
            for admission in submit(chunk):
                latencies.watch(admission, sent)

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(w,)) for w in range(CLIENT_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.done.wait(timeout=COMMIT_WAIT_S_MAX)
    return latencies.figures(time.perf_counter() - start)


def _run_paced(platform: Platform, envelopes: list[Any], rate_per_s: int) -> dict[str, Any]:
    """Offer per-tx-signed envelopes at a steady rate, PACED_TICK_S apart."""
    latencies = _Latencies(len(envelopes))
    per_tick = max(1, round(rate_per_s * PACED_TICK_S))
    start = time.perf_counter()
    for index in range(0, len(envelopes), per_tick):
        delay = start + index / rate_per_s - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent = time.perf_counter()
        for admission in platform.node.submit_many(envelopes[index : index + per_tick]):
            latencies.watch(admission, sent)
    latencies.done.wait(timeout=COMMIT_WAIT_S_MAX)
    return {"offered_tx_per_s": rate_per_s, **latencies.figures(time.perf_counter() - start)}


class _CpuMeter:
    """Thread CPU time spent in wrapped calls (block production, projection applies)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._lock = threading.Lock()

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                with self._lock:
                    self.seconds += time.thread_time() - started
                    self.calls += 1

        return timed


def _meter(platform: Platform) -> _CpuMeter:
    """A meter on the node's block production (the projections report their own CPU time)."""
    blocks = _CpuMeter()
    node = platform.node
    node.produce_block = blocks.wrap(node.produce_block)  # type: ignore[method-assign]
    return blocks


def _setup(platform: Platform, owners: list[str]) -> None:
    """Open and fund the accounts through the contract, in member batches of 100 items."""
    gateway = MemberGateway(platform.node)
    member = platform.node.key.did
    service.open_accounts(
        platform,
        gateway,
        accounts=[{"id": "settle", "owner": member, "currency": "CNY", "kind": "settlement"}],
    )
    accounts = [
        {"id": f"a{i}", "owner": owner, "currency": "CNY", "kind": "customer"}
        for i, owner in enumerate(owners)
    ]
    deposits = [
        {
            "id": f"dep{i}",
            "debit_account_id": "settle",
            "credit_account_id": f"a{i}",
            "amount": HOT_DEPOSIT_MINOR if i == 0 else DEPOSIT_MINOR,
            "currency": "CNY",
        }
        for i in range(len(owners))
    ]
    for method, name, items in (
        ("create_accounts", "accounts", accounts),
        ("create_transfers", "transfers", deposits),
    ):
        bodies = [
            make_body(
                chain_id=platform.genesis.chain_id,
                sender=member,
                nonce=gateway.next_nonce(),
                contract="payments",
                method=method,
                args={name: items[start : start + SETUP_ITEMS]},
                valid_until=platform.node.clock() + 3_600_000,
            )
            for start in range(0, len(items), SETUP_ITEMS)
        ]
        admissions = platform.node.submit(sign_batch(platform.node.key, bodies))
        for admission in admissions:
            assert admission.future is not None, admission.code
            result = admission.future.result(timeout=300)
            assert result["status"] == "ok" and result["return"]["failed"] == 0, result


def _transfer_bodies(
    platform: Platform, owners: list[str], *, count: int, hot: bool, seed: int
) -> list[dict[str, Any]]:
    """One body per transfer, each sent by the debited account's owner."""
    rng = random.Random(seed)
    valid_until = platform.node.clock() + 3_600_000
    bodies = []
    for index in range(count):
        debit = 0 if hot else rng.randrange(len(owners))
        credit = rng.randrange(1, len(owners))
        if credit == debit:
            credit = credit % (len(owners) - 1) + 1
        transfer = {
            "id": f"t{seed}-{index}",
            "debit_account_id": f"a{debit}",
            "credit_account_id": f"a{credit}",
            "amount": rng.randint(1, 1_000),
            "currency": "CNY",
        }
        bodies.append(
            make_body(
                chain_id=platform.genesis.chain_id,
                sender=owners[debit],
                nonce=index + 1,
                contract="payments",
                method="create_transfers",
                args={"transfers": [transfer]},
                valid_until=valid_until,
            )
        )
    return bodies


def _multi_transfer_bodies(
    platform: Platform, owners: list[str], *, count: int, hot: bool, seed: int
) -> list[dict[str, Any]]:
    """The member's bodies of MULTI_TRANSFERS_PER_TX transfers each (a bank's batch of its
    customers' payments, as the batch API and a pain.001 import submit them)."""
    singles = _transfer_bodies(platform, owners, count=count, hot=hot, seed=seed)
    gateway = MemberGateway(platform.node)
    return [
        make_body(
            chain_id=platform.genesis.chain_id,
            sender=platform.node.key.did,
            nonce=gateway.next_nonce(),
            contract="payments",
            method="create_transfers",
            args={
                "transfers": [
                    body["args"]["transfers"][0]
                    for body in singles[start : start + MULTI_TRANSFERS_PER_TX]
                ]
            },
            valid_until=singles[0]["valid_until"],
        )
        for start in range(0, len(singles), MULTI_TRANSFERS_PER_TX)
    ]


def _booked(platform: Platform, bodies: list[dict[str, Any]]) -> int:
    """How many of the case's transfers the chain holds (each must be there exactly once)."""
    keys = [
        f"payments/transfer/{transfer['id']}"
        for body in bodies
        for transfer in body["args"]["transfers"]
    ]
    with platform.store.read() as conn:
        found = platform.store.prefetch(conn, keys)
    return sum(value is not None for value in found.values())


def _drive(
    platform: Platform, keys: list[KeyPair], bodies: list[dict[str, Any]], signing: str
) -> dict[str, Any]:
    """Sign the bodies as `signing` says and push them through the node."""
    by_did = {key.did: key for key in keys}
    if signing == "paced":
        signed = [sign_tx(by_did[b["sender"]], b) for b in bodies]
        return _run_paced(platform, signed, PACED_RATE_PER_S)
    if signing == "per_tx_signed":
        envelopes: list[Any] = [sign_tx(by_did[b["sender"]], b) for b in bodies]
        return _run_burst(envelopes, len(bodies), platform.node.submit_many)
    member = platform.node.key
    per_envelope = BATCH_BODIES // len(bodies[0]["args"]["transfers"])  # 500 transfers each
    envelopes = [
        sign_batch(member, bodies[i : i + per_envelope])
        for i in range(0, len(bodies), per_envelope)
    ]
    return _run_burst(
        envelopes, len(bodies), lambda chunk: [a for e in chunk for a in platform.node.submit(e)]
    )


def run_case(database: str, traffic: str, signing: str, keys: list[KeyPair]) -> dict[str, Any]:
    """One node case: `signing` is per_tx_signed, member_batch, member_batch_multi (bursts) or
    paced."""
    base_url = PG_URL if database == "postgresql" else None
    count = {
        "paced": PACED_RATE_PER_S * PACED_SECONDS,
        "member_batch_multi": MULTI_TRANSFERS_PER_CASE,
    }.get(signing, TRANSFERS_PER_CASE)
    with (
        tempfile.TemporaryDirectory(prefix="zhijin-paybench-") as tmp,
        scratch_schema(base_url, prefix="paybench") as case_url,
    ):
        settings = Settings(data=Path(tmp), database_url=case_url, platform_database_url=case_url)
        init_data_dir(settings, members=1, chain_id=f"paybench-{os.getpid()}")
        with Platform(settings) as platform:
            owners = [key.did for key in keys]
            started = time.perf_counter()
            _setup(platform, owners)
            setup_s = time.perf_counter() - started
            make_bodies = (
                _multi_transfer_bodies if signing == "member_batch_multi" else _transfer_bodies
            )
            bodies = make_bodies(
                platform, owners, count=count, hot=traffic == "hot_account", seed=len(signing)
            )
            platform.projections.wait_for(platform.node.head.height, timeout_s=120)
            first_block = platform.node.head.height + 1
            blocks_cpu = _meter(platform)
            projection_cpu_before = platform.projections.cpu_s
            figures = _drive(platform, keys, bodies, signing)
            # The projection may trail the chain: its cost counts once it has caught up.
            platform.projections.wait_for(platform.node.head.height, timeout_s=120)
            projection_cpu_s = platform.projections.cpu_s - projection_cpu_before
            booked = _booked(platform, bodies)
            books = service.trial_balance(platform, source="chain")
            assert books["balanced"], books
            blocks = platform.node.head.height - first_block + 1
    return {
        "bench": "payments",
        "database": database,
        "traffic": traffic,
        "signing": signing,
        "accounts": ACCOUNTS,
        "transfers": count,
        "transfers_per_tx": len(bodies[0]["args"]["transfers"]),
        "booked": booked,
        "committed_transfers_per_s": round(
            figures["committed"] * len(bodies[0]["args"]["transfers"]) / figures["seconds"]
        ),
        "committed_tx_per_s": figures["committed_tx_per_s"],
        **({"offered_transfers_per_s": PACED_RATE_PER_S} if signing == "paced" else {}),
        "p50_commit_ms": figures["p50_commit_ms"],
        "p99_commit_ms": figures["p99_commit_ms"],
        "failed_or_rejected": figures["failed_or_rejected"],
        "seconds": figures["seconds"],
        "blocks": blocks,
        "block_cpu_us_per_transfer": round(blocks_cpu.seconds / count * 1e6, 1),
        "projection_cpu_us_per_transfer": round(projection_cpu_s / count * 1e6, 1),
        "projection_cpu_ms_per_block": round(projection_cpu_s / max(blocks, 1) * 1e3, 2),
        "setup_s": round(setup_s, 2),
        "cores": os.cpu_count(),
    }


def contract_only(transfers: int = 10_000) -> dict[str, Any]:
    """The payments contract alone: execute_tx over in-memory state, one transfer per tx."""
    bank = Member(did="did:key:z6MkBenchBank", name="Bank", role="bank", weight=1)
    state = MemoryState({MEMBER_PREFIX + bank.did: bank.to_json()})
    registry = ContractRegistry([PAYMENTS_CONTRACT])
    block = BlockInfo(chain_id="bench", height=1, time_ms=1_700_000_000_000)
    staged = BlockState(state)
    counter = [0]

    def run(method: str, args: dict[str, Any]) -> Any:
        counter[0] += 1
        tx = TxInfo(
            tx_hash=hashlib.sha256(counter[0].to_bytes(8, "big")).hexdigest(),
            sender=bank.did,
            signer=bank.did,
            nonce=counter[0],
            contract="payments",
            method=method,
            vouched=False,
        )
        outcome = execute_tx(registry, staged, tx, block, args)
        assert outcome.ok, outcome.message
        return outcome.value

    accounts = [{"id": "settle", "owner": bank.did, "currency": "CNY", "kind": "settlement"}] + [
        {"id": f"a{i}", "owner": bank.did, "currency": "CNY", "kind": "customer"}
        for i in range(1_000)
    ]
    for start in range(0, len(accounts), 100):
        run("create_accounts", {"accounts": accounts[start : start + 100]})
    run(
        "create_transfers",
        {
            "transfers": [
                {
                    "id": f"d{i}",
                    "debit_account_id": "settle",
                    "credit_account_id": f"a{i}",
                    "amount": 10**12,
                    "currency": "CNY",
                }
                for i in range(100)
            ]
        },
    )
    rng = random.Random(7)
    started = time.perf_counter()
    for index in range(transfers):
        debit = rng.randrange(100)
        run(
            "create_transfers",
            {
                "transfers": [
                    {
                        "id": f"t{index}",
                        "debit_account_id": f"a{debit}",
                        "credit_account_id": f"a{debit + 100}",
                        "amount": 1 + index % 999,
                        "currency": "CNY",
                    }
                ]
            },
        )
    seconds = time.perf_counter() - started
    return {
        "bench": "payments",
        "case": "contract_only",
        "transfers": transfers,
        "transfers_per_s": round(transfers / seconds),
        "us_per_transfer": round(seconds / transfers * 1e6, 1),
    }


def calibration() -> dict[str, Any]:
    """This machine's speed on one core: Ed25519 verifications and a plain Python loop."""
    started = time.perf_counter()
    total = 0
    for index in range(5_000_000):
        total += index
    loop_s = time.perf_counter() - started
    return {
        "bench": "payments",
        "case": "machine",
        "ed25519_verifies_per_s_core": round(measure_verify_rate()),
        "python_loop_ns_per_iteration": round(loop_s / 5_000_000 * 1e9, 1),
        "cores": os.cpu_count(),
    }


TRAFFICS = ("uniform", "hot_account")


def _anchor(runs: dict[str, list[int]]) -> None:
    """One run of the PostgreSQL ledger per traffic, printed and kept for the ratios."""
    for traffic in TRAFFICS:
        try:
            line = pg_ledger.run(traffic, url=PG_URL)
        except Exception as exc:  # a missing server is a figure line, not a crash
            print(json.dumps({"bench": "pg_ledger", "traffic": traffic, "error": str(exc)[:200]}))
            continue
        runs[traffic].append(line["committed_transfers_per_s"])
        print(json.dumps(line), flush=True)


def main() -> None:
    print(json.dumps(calibration()), flush=True)
    anchor: dict[str, list[int]] = {traffic: [] for traffic in TRAFFICS}
    _anchor(anchor)
    keys = [KeyPair.generate() for _ in range(ACCOUNTS)]
    lines = []
    for database in ("sqlite", "postgresql"):
        for traffic in TRAFFICS:
            for signing in ("per_tx_signed", "member_batch"):
                lines.append(run_case(database, traffic, signing, keys))
                print(json.dumps(lines[-1]), flush=True)
        lines.append(run_case(database, "uniform", "member_batch_multi", keys))
        print(json.dumps(lines[-1]), flush=True)
        lines.append(run_case(database, "uniform", "paced", keys))
        print(json.dumps(lines[-1]), flush=True)
    print(json.dumps(contract_only()), flush=True)
    _anchor(anchor)
    for line in (line for line in lines if line["signing"] != "paced"):  # paced: offered load
        runs = anchor[line["traffic"]]
        mean = sum(runs) / len(runs) if runs else None
        print(
            json.dumps(
                {
                    "bench": "payments",
                    "case": "ratio",
                    "database": line["database"],
                    "traffic": line["traffic"],
                    "signing": line["signing"],
                    "committed_transfers_per_s": line["committed_transfers_per_s"],
                    "pg_ledger_transfers_per_s": None if mean is None else round(mean),
                    "ratio_to_pg_ledger": (
                        None if not mean else round(line["committed_transfers_per_s"] / mean, 3)
                    ),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
