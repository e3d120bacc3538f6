"""A trained model as one file: its identity is the SHA-256 of the file's bytes.

The file is UTF-8 JSON with sorted keys and no whitespace: `format`, `card` (the model card:
data, features, parameters, metrics, fairness, trained_at, trainer), `features` (the feature
order both models read), `scorecard` (the lookup table), `gbdt` (LightGBM's model string) and
`reasons` (the reason table).  The chain registers that hash; `load_model` refuses a file whose
bytes no longer hash to the registered value, naming the model and both hashes, before it
parses anything in it.

The file holds floats (bin edges, exact points, LightGBM's leaf values): it is never chain
state, only its hash is.  Python writes each float as its shortest round-trip text, so the same
model writes the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb

from zhijin.chain.errors import ZhijinError
from zhijin.credit.reasons import ReasonTable
from zhijin.credit.scorecard import ScorecardTable

__all__ = [
    "MODEL_BYTES_MAX",
    "MODEL_FORMAT",
    "InvalidModelFile",
    "LoadedModel",
    "ModelTampered",
    "TrainedModel",
    "load_model",
    "model_bytes",
    "save_model",
]

MODEL_FORMAT = "zhijin.credit.model/1"
MODEL_BYTES_MAX = 64 * 1024 * 1024  # a few hundred trees are ~1 MB; far above any real model


@dataclass(frozen=True, slots=True)
class TrainedModel:
    """What `artifact.save_model` writes: both models, the reason table and the model card."""

    name: str
    features: tuple[str, ...]
    scorecard: ScorecardTable
    gbdt_model: str  # LightGBM's model string
    reasons: ReasonTable
    card: Mapping[str, object]


class ModelTampered(ZhijinError):
    """The model file's bytes do not hash to the registered SHA-256: it is refused."""

    code = "model_hash_mismatch"
    http_status = 409


class InvalidModelFile(ZhijinError):
    code = "model_file_invalid"
    http_status = 422


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A model file whose hash was checked, parsed for the scorer."""

    name: str
    sha256: str
    features: tuple[str, ...]
    scorecard: ScorecardTable
    booster: lgb.Booster
    reasons: ReasonTable
    card: dict[str, Any]


def model_bytes(model: TrainedModel) -> bytes:
    document = {
        "format": MODEL_FORMAT,
        "card": dict(model.card),
        "features": list(model.features),
        "scorecard": model.scorecard.to_json(),
        "gbdt": {"model": model.gbdt_model},
        "reasons": model.reasons.to_json(),
    }
    text = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def save_model(model: TrainedModel, path: Path) -> str:
    """Write the model's file (atomically) and return its SHA-256 hex, the model's identity."""
    data = model_bytes(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)
    return hashlib.sha256(data).hexdigest()


def load_model(path: Path, *, expected_sha256: str) -> LoadedModel:
    """The model in `path`, if its bytes hash to `expected_sha256` (the registered hash)."""
    size = path.stat().st_size
    if size > MODEL_BYTES_MAX:
        raise InvalidModelFile(message=f"{path.name} is {size} bytes; at most {MODEL_BYTES_MAX}")
    data = path.read_bytes()
    found = hashlib.sha256(data).hexdigest()
    if found != expected_sha256.lower():
        raise ModelTampered(
            message=f"model file {path.name} does not match its registered hash: "
            f"registered {expected_sha256.lower()}, file {found}; it is refused",
            model=path.name,
            expected_sha256=expected_sha256.lower(),
            found_sha256=found,
        )
    try:
        return _parse(data, found)
    except (ValueError, KeyError, TypeError, lgb.basic.LightGBMError) as exc:
        raise InvalidModelFile(message=f"{path.name} is not a {MODEL_FORMAT} file: {exc}") from exc


def _parse(data: bytes, sha256: str) -> LoadedModel:
    document = json.loads(data.decode("utf-8"))
    if not isinstance(document, dict) or document.get("format") != MODEL_FORMAT:
        raise ValueError(f"format is not {MODEL_FORMAT}")
    features = tuple(str(name) for name in document["features"])
    scorecard = ScorecardTable.from_json(document["scorecard"])
    reasons = ReasonTable.from_json(document["reasons"])
    booster = lgb.Booster(model_str=document["gbdt"]["model"])
    names = tuple(booster.feature_name())
    if names != features or tuple(c.feature for c in scorecard.characteristics) != features:
        raise ValueError("the models' features differ from the file's feature list")
    if tuple(entry.feature for entry in reasons.entries) != features:
        raise ValueError("the reason table's features differ from the file's feature list")
    card = document["card"]
    return LoadedModel(str(card["name"]), sha256, features, scorecard, booster, reasons, card)
