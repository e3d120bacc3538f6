"""Credit benchmark: one decision's latency (validation, features, scorecard points, the
gradient-boosted PD with its exact contributions, policy, reasons, the record and its hash)
over at least 10,000 German Credit applicants, against a baseline measured in the same run
(LightGBM's own single-row `predict`, single-threaded: the one call a decision cannot avoid);
then, separately, decisions through a real node, each recorded, sealed and anchored on chain.
No arguments; one JSON line per case; well under 3 minutes on a 2-core machine.

Cases:
- `decision`: the quiet loop, one thread and nothing else of this process running: wall-clock
  p50/p99 per decision, the same decision's thread CPU time, and over the whole loop the
  process's CPU time beside the wall time (`cpu_share`: 1.0 means the loop had a core all the
  time; on a machine loaded by others it falls, and the wall p99 is then mostly waiting);
- `decision_under_load`: LOAD_THREADS threads deciding at once on the one scorer: throughput
  and per-decision wall p99, against the quiet loop's throughput in the same run;
- `decision_anchored`: decisions through a node, each waiting for its anchor's block.
"""

from __future__ import annotations

import gc
import json
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DECISIONS = int(os.environ.get("ZHIJIN_BENCH_CREDIT_DECISIONS", "12000"))
LOAD_THREADS = 4
ANCHORED = int(os.environ.get("ZHIJIN_BENCH_CREDIT_ANCHORED", "200"))
WARMUP = 500
POLICY: dict[str, Any] = {
    "currency": "CNY",
    "approve": {"points_min": 600, "pd_ppm_max": 200_000},
    "decline": {"points_below": 450, "pd_ppm_from": 500_000},
    "tiers": [
        {"points_min": 450, "points_max": 599, "limit_minor": 1_000_000, "rate_bps": 2_000,
         "price_tier": "B"},
        {"points_min": 600, "points_max": 1_000, "limit_minor": 5_000_000, "rate_bps": 1_000,
         "price_tier": "A"},
    ],
    "income_multiple": None,
    "thin_file_behaviour_min": None,
}  # fmt: skip


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = np.sort(np.asarray(samples_ns, dtype=np.int64))
    return {
        "p50_us": round(float(np.percentile(ordered, 50)) / 1_000, 1),
        "p99_us": round(float(np.percentile(ordered, 99)) / 1_000, 1),
        "max_us": round(float(ordered[-1]) / 1_000, 1),
    }


@dataclass(frozen=True, slots=True)
class _Run:
    wall_ns: list[int]  # per call
    cpu_ns: list[int]  # per call, this thread's CPU time
    elapsed_s: float  # the whole loop, wall-clock
    process_cpu_s: float  # the whole loop, the process's CPU time


def _timed(count: int, step: Callable[[int], object]) -> _Run:
    """Wall-clock and this thread's CPU time per call (the machine is shared: CPU time shows
    what the code costs, wall-clock what a caller waited, preemption included), and the
    process's CPU time over the loop beside its wall time."""
    for index in range(min(WARMUP, count)):
        step(index)
    gc.collect()
    gc.freeze()  # the setup's objects are not the decisions' garbage
    wall, cpu = [], []
    started, started_cpu = time.perf_counter(), time.process_time()
    for index in range(count):
        begin, begin_cpu = time.perf_counter_ns(), time.thread_time_ns()
        step(index)
        cpu.append(time.thread_time_ns() - begin_cpu)
        wall.append(time.perf_counter_ns() - begin)
    return _Run(wall, cpu, time.perf_counter() - started, time.process_time() - started_cpu)


def _under_load(count: int, step: Callable[[int], object]) -> tuple[list[int], float]:
    """`count` calls shared by LOAD_THREADS threads started together: per-call wall times and
    the elapsed wall-clock of the whole."""
    share = count // LOAD_THREADS
    samples: list[list[int]] = [[] for _ in range(LOAD_THREADS)]
    barrier = threading.Barrier(LOAD_THREADS + 1)

    def worker(number: int) -> None:
        barrier.wait()
        mine = samples[number]
        for index in range(number * share, (number + 1) * share):
            begin = time.perf_counter_ns()
            step(index)
            mine.append(time.perf_counter_ns() - begin)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(LOAD_THREADS)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return [ns for part in samples for ns in part], time.perf_counter() - started


def _model(directory: Path) -> tuple[Path, str]:
    from zhijin.credit.artifact import save_model
    from zhijin.credit.datasets import german_credit
    from zhijin.credit.training import Hyperparameters, train

    fast = Hyperparameters(scorecard_c=0.1, gbdt_leaves=4, gbdt_rounds=200)
    path = directory / "german.json"
    sha = save_model(train(german_credit(), seed=7, hyperparameters=fast), path)
    return path, sha


def bench_decisions(path: Path, sha: str) -> list[dict[str, Any]]:
    from zhijin.credit.applicant import parse_applicant
    from zhijin.credit.artifact import load_model
    from zhijin.credit.datasets import german_credit
    from zhijin.credit.decision import DecisionInputs, decide, record_sha256
    from zhijin.credit.features import feature_row
    from zhijin.credit.policy import parse_policy
    from zhijin.credit.scoring import Scorer

    loaded = load_model(path, expected_sha256=sha)
    scorer, policy = Scorer.from_model(loaded), parse_policy(POLICY)
    raws = [applicant.to_json() for applicant in german_credit().applicants]
    inputs = DecisionInputs("bench", "did:key:bench", None, sha, "retail", 1, None, "none", 0)

    def one_decision(index: int) -> object:
        applicant = parse_applicant(raws[index % len(raws)])
        return record_sha256(decide(scorer, policy, applicant, inputs))

    rows = [
        np.array([feature_row(parse_applicant(raw), loaded.features)], dtype=np.float64)
        for raw in raws
    ]

    def baseline(index: int) -> object:
        return loaded.booster.predict(rows[index % len(rows)], num_threads=1)

    base = _timed(DECISIONS, baseline)
    quiet = _timed(DECISIONS, one_decision)
    figures, cpu_figures = _percentiles(quiet.wall_ns), _percentiles(quiet.cpu_ns)
    base_wall, base_cpu = _percentiles(base.wall_ns), _percentiles(base.cpu_ns)
    loaded_wall, loaded_elapsed = _under_load(DECISIONS, one_decision)
    under_load = _percentiles(loaded_wall)
    quiet_rate = DECISIONS / quiet.elapsed_s
    loaded_rate = len(loaded_wall) / loaded_elapsed
    decision = {
        "bench": "credit",
        "case": "decision",
        "decisions": DECISIONS,
        **figures,
        "cpu_p50_us": cpu_figures["p50_us"],
        "cpu_p99_us": cpu_figures["p99_us"],
        "loop_wall_s": round(quiet.elapsed_s, 3),
        "loop_process_cpu_s": round(quiet.process_cpu_s, 3),
        "cpu_share": round(quiet.process_cpu_s / quiet.elapsed_s, 3),
        "decisions_per_s": round(quiet_rate),
        "baseline": "lightgbm Booster.predict, one row, num_threads=1",
        "baseline_p50_us": base_wall["p50_us"],
        "baseline_p99_us": base_wall["p99_us"],
        "baseline_cpu_p99_us": base_cpu["p99_us"],
        "p50_vs_baseline": round(figures["p50_us"] / base_wall["p50_us"], 2),
        "p99_vs_baseline": round(figures["p99_us"] / base_wall["p99_us"], 2),
        "p99_within_1ms": figures["p99_us"] <= 1_000,
        "cpu_p99_within_1ms": cpu_figures["p99_us"] <= 1_000,
        "load_1min": round(os.getloadavg()[0], 2),
        "cores": os.cpu_count(),
    }
    loaded = {
        "bench": "credit",
        "case": "decision_under_load",
        "decisions": len(loaded_wall),
        "threads": LOAD_THREADS,
        **under_load,
        "decisions_per_s": round(loaded_rate),
        "throughput_vs_quiet": round(loaded_rate / quiet_rate, 2),
        "p99_vs_quiet": round(under_load["p99_us"] / figures["p99_us"], 2),
        "load_1min": round(os.getloadavg()[0], 2),
    }
    return [decision, loaded]


def bench_anchored(path: Path, directory: Path) -> dict[str, Any]:
    """Decisions through a node: the record stored, the input sealed, the hash anchored."""
    from zhijin.credit import service
    from zhijin.credit.datasets import german_credit
    from zhijin.node.runtime import Platform, init_data_dir
    from zhijin.node.settings import Settings
    from zhijin.platform.gateway import MemberGateway

    settings = Settings(data=directory / "node", block_interval_ms=2, password_hashing="test",
                        projector="thread", audit_anchor_interval_s=0)  # fmt: skip
    init_data_dir(settings, members=1)
    raws = [applicant.to_json() for applicant in german_credit().applicants]
    with Platform(settings) as platform:
        gateway = MemberGateway(platform.node)
        sha = service.register_model(platform, gateway, trainer="bench-maker", path=path)
        sha256 = sha["model"]["sha256"]
        service.approve_model(platform, gateway, sha256_hex=sha256, approver="bench-checker")
        service.save_policy(platform, gateway, policy_id="retail", version=1, rules=POLICY,
                            officer="bench-maker")  # fmt: skip

        def anchored(index: int) -> object:
            return service.decide_for(platform, gateway, decision_id=f"bench-{index}",
                                      policy_id="retail", applicant=raws[index % len(raws)],
                                      subject=None, requested_by="bench")  # fmt: skip

        for index in range(5):  # warm the node, not the figures
            anchored(ANCHORED + index)
        samples = []
        started = time.perf_counter()
        for index in range(ANCHORED):
            begin = time.perf_counter_ns()
            anchored(index)
            samples.append(time.perf_counter_ns() - begin)
        elapsed = time.perf_counter() - started
    figures = _percentiles(samples)
    return {
        "bench": "credit",
        "case": "decision_anchored",
        "decisions": ANCHORED,
        "p50_ms": round(figures["p50_us"] / 1_000, 2),
        "p99_ms": round(figures["p99_us"] / 1_000, 2),
        "decisions_per_s": round(ANCHORED / elapsed, 1),
        "block_interval_ms": settings.block_interval_ms,
        "note": "one at a time, each waiting for its anchor's block (solo ordering, SQLite)",
    }


if __name__ == "__main__":
    warnings.filterwarnings("ignore", category=UserWarning)  # LightGBM's params notice
    with tempfile.TemporaryDirectory() as tmp:
        model_path, model_sha = _model(Path(tmp))
        for line in bench_decisions(model_path, model_sha):
            print(json.dumps(line, sort_keys=True), flush=True)
        print(json.dumps(bench_anchored(model_path, Path(tmp)), sort_keys=True), flush=True)
