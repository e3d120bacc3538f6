"""Chain benchmark: signed notary txs to durable commit.

Cases: per-tx signed (burst), member-batched (burst), and paced per-tx signed at a steady rate
(latency at a load the node carries).  Runs with no arguments on SQLite and on the local
PostgreSQL (ZHIJIN_BENCH_PG_URL, default the `test` database); one JSON line per case.
"""

import json
import os

from zhijin.node.bench import run_chain_bench

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

if __name__ == "__main__":
    txs = int(os.environ.get("ZHIJIN_BENCH_TXS", "20000"))
    run_chain_bench(txs=txs)
    pg_url = os.environ.get("ZHIJIN_BENCH_PG_URL", DEFAULT_PG_URL)
    try:
        run_chain_bench(txs=txs, database_url=pg_url)
    except Exception as exc:  # a missing server is reported as a figure line, not a crash
        print(json.dumps({"bench": "chain", "database": "postgresql", "error": str(exc)[:200]}))
