"""The engine's models: River's HalfSpaceTrees, an online anomaly score that learns from every
payment that moves, and a supervised LightGBM classifier trained on analysts' case verdicts
(cleared = 0, confirmed fraud = 1) once enough exist.

A supervised model is a LightGBM text file written under the data directory and registered
with its SHA-256 (store.py).  `load_supervised` re-hashes the file and refuses one whose hash
differs from its registration: the engine then scores with rules (and the anomaly score) alone
and says so in every decision (`degraded`), until a sound model is registered again.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zhijin.chain.errors import ZhijinError
from zhijin.risk import limits
from zhijin.risk.features import FEATURES

__all__ = [
    "MODEL_FEATURES",
    "AnomalyModel",
    "ModelRefused",
    "SupervisedModel",
    "file_sha256",
    "load_supervised",
    "train_supervised",
    "vector",
]

# The numeric features, in a fixed order (the supervised model's columns); a missing value is
# NaN, which LightGBM routes down its learned default branch.
MODEL_FEATURES: tuple[str, ...] = tuple(
    name for name, kind in FEATURES.items() if kind.rstrip("?") in ("int", "bool")
)


class ModelRefused(ZhijinError):
    code = "risk_model_refused"
    http_status = 422


def vector(row: Mapping[str, Any]) -> list[float]:
    values = []
    for name in MODEL_FEATURES:
        value = row.get(name)
        values.append(math.nan if value is None else float(value))
    return values


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- the online anomaly score ---------------------------------------------------------------------


def _squash(value: int | None, scale: float) -> float:
    """A non-negative count or amount mapped into [0, 1) (HalfSpaceTrees wants unit ranges)."""
    if value is None or value <= 0:
        return 0.0
    return value / (value + scale)


def _anomaly_inputs(row: Mapping[str, Any]) -> dict[str, float]:
    zscore = row.get("amount_zscore_x100")
    return {
        "amount": _squash(row.get("amount_ref_minor"), 500_000.0),
        "zscore": _squash(None if zscore is None else max(0, zscore), 300.0),
        "burst": _squash(row.get("payments_1h"), 10.0),
        "day_volume": _squash(row.get("amount_24h_ref_minor"), 2_000_000.0),
        "hour": row["local_hour"] / 24.0,
        "payee_new": 1.0 if row.get("payee_new") else 0.0,
        "device_new": 1.0 if row.get("device_new") else 0.0,
        "mule": row["payee_mule_score_bps"] / 10_000.0,
    }


class AnomalyModel:
    """HalfSpaceTrees over a few squashed features; thread-safe (River models are not)."""

    VERSION = "hst-1"

    def __init__(self, *, seed: int = 20_261_203) -> None:
        from river.anomaly import HalfSpaceTrees

        self._model = HalfSpaceTrees(n_trees=15, height=8, window_size=250, seed=seed)
        self._lock = threading.Lock()
        self.learned = 0

    def score_bps(self, row: Mapping[str, Any]) -> int:
        inputs = _anomaly_inputs(row)
        with self._lock:
            score = self._model.score_one(inputs)
        return max(0, min(10_000, int(score * 10_000)))

    def learn(self, row: Mapping[str, Any]) -> None:
        inputs = _anomaly_inputs(row)
        with self._lock:
            self._model.learn_one(inputs)
            self.learned += 1


# -- the supervised model -------------------------------------------------------------------------


@dataclass(frozen=True)
class SupervisedModel:
    version: str
    sha256: str
    booster: Any  # lightgbm.Booster

    def probability_bps(self, row: Mapping[str, Any]) -> int:
        import numpy as np

        probability = float(self.booster.predict(np.array([vector(row)]))[0])
        return max(0, min(10_000, int(probability * 10_000)))


def train_supervised(
    rows: Sequence[Mapping[str, Any]], labels: Sequence[int], path: Path, *, seed: int = 7
) -> str:
    """Train on labelled feature rows and write the model file; its SHA-256.  Refuses too
    few labels or a single class (nothing to learn from)."""
    if len(rows) != len(labels):
        raise ModelRefused(message="one label per row", problem="labels_rows_differ")
    if len(rows) < limits.TRAIN_LABELS_MIN or len(set(labels)) < 2:
        raise ModelRefused(
            message=f"training needs at least {limits.TRAIN_LABELS_MIN} labelled cases of both "
            "verdicts",
            problem="too_few_labels",
            labels_min=limits.TRAIN_LABELS_MIN,
        )
    import lightgbm as lgb
    import numpy as np

    data = lgb.Dataset(
        np.array([vector(row) for row in rows[: limits.TRAIN_ROWS_MAX]]),
        label=np.array(labels[: limits.TRAIN_ROWS_MAX]),
        feature_name=list(MODEL_FEATURES),
        free_raw_data=True,
    )
    params = {
        "objective": "binary",
        "learning_rate": 0.1,
        "num_leaves": 15,
        "min_data_in_leaf": 3,
        "verbosity": -1,
        "seed": seed,
        "deterministic": True,
        "num_threads": 1,
    }
    booster = lgb.train(params, data, num_boost_round=60)
    path.parent.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(path))
    return file_sha256(path)


def load_supervised(version: str, path: Path, registered_sha256: str) -> SupervisedModel:
    """The registered model, or ModelRefused when the file is missing or its hash differs."""
    if not path.is_file():
        raise ModelRefused(message=f"model file {path.name} is missing", problem="model_missing")
    found = file_sha256(path)
    if found != registered_sha256:
        raise ModelRefused(
            message=f"model {version}: the file's SHA-256 {found[:12]}… differs from its "
            f"registration {registered_sha256[:12]}…",
            problem="model_hash_mismatch",
        )
    import lightgbm as lgb

    booster = lgb.Booster(model_str=path.read_text("utf-8"))
    return SupervisedModel(version=version, sha256=found, booster=booster)
