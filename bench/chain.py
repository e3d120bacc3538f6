"""Chain benchmark: signed notary txs to durable commit, per-tx signed and member-batched.

Run with no arguments (about a minute); prints one JSON line per case.
Set ZHIJIN_BENCH_PG_URL to also run against PostgreSQL.
"""

import os

from zhijin.platform.bench import run_chain_bench

if __name__ == "__main__":
    run_chain_bench(txs=int(os.environ.get("ZHIJIN_BENCH_TXS", "20000")))
    if os.environ.get("ZHIJIN_BENCH_PG_URL"):
        run_chain_bench(txs=20_000, database_url=os.environ["ZHIJIN_BENCH_PG_URL"])
