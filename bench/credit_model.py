"""Credit model benchmark: training time, and one decision's latency from the model file.

Cases, one JSON line each:
- train: both models on German Credit (with the 5-fold hyperparameter selection), seconds;
- score: `Scorer.score` on a parsed applicant (features, scorecard points, PD, reasons);
- decide_from_raw: `parse_applicant` on the raw fields, then `Scorer.score`;
- baseline_predict_contrib / baseline_predict: LightGBM's own `Booster.predict` on a one-row
  numpy array (with and without `pred_contrib`), the figure the scorer is measured against.

Latency percentiles are over DECISIONS single-threaded calls cycling through the 1,000
applicants, after a warm-up; `p99_cpu_us` is the same call's CPU time (thread time), which
leaves out the time the thread waited for a core on a shared machine; the load average is
printed with each line.  No arguments; well under three minutes on two cores.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from zhijin.credit.applicant import parse_applicant
from zhijin.credit.artifact import load_model, save_model
from zhijin.credit.datasets import german_credit
from zhijin.credit.features import feature_row
from zhijin.credit.scoring import Scorer
from zhijin.credit.training import train

DECISIONS = 10_000
WARM_UP = 1_000


def _percentile(ordered: list[int], fraction: float) -> float:
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)] / 1_000


def _measure(case: str, call: Callable[[int], object], baseline_p50_us: float | None) -> float:
    for i in range(WARM_UP):
        call(i)
    wall: list[int] = []
    cpu: list[int] = []
    started = time.perf_counter()
    for i in range(DECISIONS):
        wall_start, cpu_start = time.perf_counter_ns(), time.thread_time_ns()
        call(i)
        cpu.append(time.thread_time_ns() - cpu_start)
        wall.append(time.perf_counter_ns() - wall_start)
    elapsed_s = time.perf_counter() - started
    wall.sort()
    cpu.sort()
    p50 = _percentile(wall, 0.50)
    line: dict[str, object] = {
        "bench": "credit_model",
        "case": case,
        "decisions": DECISIONS,
        "p50_us": round(p50, 1),
        "p99_us": round(_percentile(wall, 0.99), 1),
        "p99_cpu_us": round(_percentile(cpu, 0.99), 1),
        "decisions_per_s": round(DECISIONS / elapsed_s),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    if baseline_p50_us is not None:
        line["p50_vs_baseline_predict_contrib"] = round(p50 / baseline_p50_us, 2)
    print(json.dumps(line), flush=True)
    return p50


def main() -> None:
    data = german_credit()
    started = time.perf_counter()
    model = train(data, seed=20260601, trained_at=datetime.now(UTC), trainer="bench")
    print(
        json.dumps(
            {
                "bench": "credit_model",
                "case": "train",
                "rows": len(data.bad),
                "features": len(model.features),
                "train_s": round(time.perf_counter() - started, 2),
                "chosen": model.card["parameters"]["chosen"],  # type: ignore[index]
            }
        ),
        flush=True,
    )
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "model.json"
        sha256 = save_model(model, path)
        loaded = load_model(path, expected_sha256=sha256)
    scorer = Scorer.from_model(loaded)
    applicants = data.applicants
    raws = [a.to_json() for a in applicants]
    rows = [np.array([feature_row(a, loaded.features)]) for a in applicants]
    booster = loaded.booster
    count = len(applicants)

    baseline = _measure(
        "baseline_predict_contrib",
        lambda i: booster.predict(rows[i % count], pred_contrib=True, num_threads=1),
        None,
    )
    _measure(
        "baseline_predict", lambda i: booster.predict(rows[i % count], num_threads=1), baseline
    )
    _measure("score", lambda i: scorer.score(applicants[i % count]), baseline)
    _measure("decide_from_raw", lambda i: scorer.score(parse_applicant(raws[i % count])), baseline)


if __name__ == "__main__":
    main()
