"""The commit pipeline (issue 16): block production with `Node(pipeline=True)` against the
synchronous node, alternated A B A B on fresh nodes in one run.

    .venv/bin/python bench/pipeline.py

Block production only: each case admits all its txs first (the orderer stopped), then starts a
solo orderer cutting BLOCK_TXS-tx blocks and times the first block's start to the last tx's
answer (every waiter answered only after its block's durable commit).  Two workloads, per-tx
signed: notary anchors (cheap execution, the commit dominates) and single-transfer payments
between ACCOUNTS accounts (the execution weighs more), on SQLite (WAL, synchronous=FULL) and on
the local PostgreSQL (ZHIJIN_BENCH_PG_URL, a scratch schema).  No projections: a bare node.

One JSON line per run, then one per workload and database with `ratio` = the mean of the
pipeline runs' tx/s over the mean of the synchronous runs' (the figure of record: absolute
figures swing 2x on this shared machine), and the load average seen.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zhijin.chain.contract import Member
from zhijin.chain.crypto import KeyPair
from zhijin.chain.genesis import Genesis
from zhijin.chain.node import Node, now_ms
from zhijin.chain.ordering.solo import SoloOrderer
from zhijin.chain.store import ChainStore
from zhijin.chain.tx import make_body, sign_batch, sign_tx
from zhijin.node.modules import default_registry
from zhijin.platform.scratch import scratch_schema

PG_URL = os.environ.get("ZHIJIN_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TXS = 6_000
BLOCK_TXS = 500
ACCOUNTS = 1_000
REPEATS = 2  # A B A B
WAIT_S = 300


def _genesis(member: KeyPair) -> Genesis:
    registry = default_registry()
    return Genesis(
        chain_id=f"pipebench-{os.getpid()}",
        time_ms=now_ms() - 1_000,
        members=(Member(did=member.did, name="Bench", role="bank", weight=1),),
        quorum_weight=1,
        ordering="solo",
        orderer=member.did,
        contracts=registry.versions(),
    )


def _body(genesis: Genesis, sender: str, nonce: int, contract: str, method: str, args: Any) -> Any:
    return make_body(
        chain_id=genesis.chain_id,
        sender=sender,
        nonce=nonce,
        contract=contract,
        method=method,
        args=args,
        valid_until=now_ms() + 3_600_000,
    )


def _wait_all(admissions: list[Any]) -> list[dict[str, Any]]:
    results = []
    for admission in admissions:
        assert admission.accepted, admission.code
        results.append(admission.future.result(timeout=WAIT_S))
    return results


def _setup_payments(node: Node, genesis: Genesis, member: KeyPair, owners: list[KeyPair]) -> None:
    """Open ACCOUNTS accounts and fund them (member batches, committed before the case)."""
    accounts = [{"id": "settle", "owner": member.did, "currency": "CNY", "kind": "settlement"}]
    accounts += [
        {"id": f"a{i}", "owner": key.did, "currency": "CNY", "kind": "customer"}
        for i, key in enumerate(owners)
    ]
    deposits = [
        {
            "id": f"dep{i}",
            "debit_account_id": "settle",
            "credit_account_id": f"a{i}",
            "amount": 10_000_000,
            "currency": "CNY",
        }
        for i in range(len(owners))
    ]
    nonce = 0
    orderer = SoloOrderer(node, block_txs_max=BLOCK_TXS)
    for method, name, items in (
        ("create_accounts", "accounts", accounts),
        ("create_transfers", "transfers", deposits),
    ):
        bodies = []
        for start in range(0, len(items), 100):
            nonce += 1
            bodies.append(
                _body(
                    genesis,
                    member.did,
                    nonce,
                    "payments",
                    method,
                    {name: items[start : start + 100]},
                )
            )
        admissions = node.submit(sign_batch(member, bodies))
        while orderer.cut_once() is not None:
            pass
        for result in _wait_all(admissions):
            assert result["status"] == "ok" and result["return"]["failed"] == 0, result


def _envelopes(workload: str, genesis: Genesis, owners: list[KeyPair]) -> list[Any]:
    envelopes = []
    for index in range(TXS):
        key = owners[index % len(owners)]
        nonce = 1_000 + index
        if workload == "notary":
            digest = hashlib.sha256(f"{genesis.chain_id} {index}".encode()).hexdigest()
            body = _body(genesis, key.did, nonce, "notary", "anchor", {"hash": digest})
        else:
            debit = index % len(owners)
            transfer = {
                "id": f"t{index}",
                "debit_account_id": f"a{debit}",
                "credit_account_id": f"a{(debit + 1 + index // len(owners)) % len(owners)}",
                "amount": 1 + index % 999,
                "currency": "CNY",
            }
            if transfer["credit_account_id"] == transfer["debit_account_id"]:
                transfer["credit_account_id"] = f"a{(debit + 1) % len(owners)}"
            body = _body(
                genesis, key.did, nonce, "payments", "create_transfers", {"transfers": [transfer]}
            )
        envelopes.append(sign_tx(key, body))
    return envelopes


def run_once(database: str, workload: str, pipeline: bool, owners: list[KeyPair]) -> dict[str, Any]:
    base_url = PG_URL if database == "postgresql" else None
    with (
        tempfile.TemporaryDirectory(prefix="zhijin-pipebench-") as tmp,
        scratch_schema(base_url, prefix="pipebench") as case_url,
    ):
        url = case_url or f"sqlite:///{Path(tmp) / 'chain.db'}"
        member = KeyPair.generate()
        genesis = _genesis(member)
        store = ChainStore(url)
        node = Node(
            store=store, genesis=genesis, registry=default_registry(), key=member, pipeline=pipeline
        )
        try:
            if workload == "payments":
                _setup_payments(node, genesis, member, owners)
            envelopes = _envelopes(workload, genesis, owners)
            admissions = node.submit_many(envelopes)
            cpu_before = dict(node.stage_cpu_s)
            orderer = SoloOrderer(node, block_txs_max=BLOCK_TXS, block_interval_ms=0)
            first_height = node.head.height + 1
            started = time.perf_counter()
            orderer.start()
            results = _wait_all(admissions)
            seconds = time.perf_counter() - started
            orderer.stop()
            assert all(r["status"] == "ok" for r in results), {r["status"] for r in results}
            blocks = node.head.height - first_height + 1
            cpu = {k: node.stage_cpu_s[k] - cpu_before[k] for k in cpu_before}
        finally:
            node.close()
            store.close()
    return {
        "bench": "pipeline",
        "database": database,
        "workload": workload,
        "pipeline": pipeline,
        "txs": TXS,
        "block_txs": BLOCK_TXS,
        "blocks": blocks,
        "seconds": round(seconds, 3),
        "committed_tx_per_s": round(TXS / seconds),
        "cpu_us_per_tx": {k: round(v / TXS * 1e6, 1) for k, v in cpu.items()},
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    owners = [KeyPair.generate() for _ in range(ACCOUNTS)]
    for database in ("sqlite", "postgresql"):
        for workload in ("notary", "payments"):
            runs: dict[bool, list[int]] = {False: [], True: []}
            loads = []
            try:
                for _ in range(REPEATS):
                    for pipeline in (False, True):
                        line = run_once(database, workload, pipeline, owners)
                        runs[pipeline].append(line["committed_tx_per_s"])
                        loads.append(line["load_average_1m"])
                        print(json.dumps(line), flush=True)
            except Exception as exc:  # a missing server is a figure line, not a crash
                print(
                    json.dumps({"bench": "pipeline", "database": database, "error": str(exc)[:200]})
                )
                continue
            sync = sum(runs[False]) / len(runs[False])
            piped = sum(runs[True]) / len(runs[True])
            print(
                json.dumps(
                    {
                        "bench": "pipeline",
                        "case": "ratio",
                        "database": database,
                        "workload": workload,
                        "sync_tx_per_s": round(sync),
                        "pipeline_tx_per_s": round(piped),
                        "ratio": round(piped / sync, 3),
                        "runs": {"sync": runs[False], "pipeline": runs[True]},
                        "load_average_1m": [min(loads), max(loads)],
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
