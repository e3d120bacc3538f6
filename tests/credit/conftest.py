"""Credit's fixtures.  The tests read German Credit: it is fetched (pinned, hash-checked) if
`make credit-data` has not run yet, so `pytest tests/credit` works on a fresh clone too.  The
expensive ones are built once: a model trained on German Credit with the real optbinning and
LightGBM (fixed hyperparameters, so training takes about two seconds, not the grid search's
ten), and one node with the API over it, shared by a module's tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from zhijin.credit.datasets import fetch_german_credit
from zhijin.node.app import create_app
from zhijin.node.runtime import Platform, init_data_dir
from zhijin.node.settings import Settings

FAST = {"scorecard_c": 0.1, "gbdt_leaves": 4, "gbdt_rounds": 200}  # a point of the grid


@pytest.fixture(scope="session", autouse=True)
def german_credit_file() -> None:
    fetch_german_credit()


@pytest.fixture(scope="session")
def model_file(tmp_path_factory: pytest.TempPathFactory, german_credit_file: None) -> Path:
    from zhijin.credit.artifact import save_model
    from zhijin.credit.datasets import german_credit
    from zhijin.credit.training import Hyperparameters, train

    path = tmp_path_factory.mktemp("credit-model") / "german.json"
    model = train(german_credit(), seed=7, hyperparameters=Hyperparameters(**FAST))
    save_model(model, path)
    return path


@dataclass(frozen=True, slots=True)
class Node:
    platform: Platform
    client: TestClient
    operator: dict[str, str]

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None,
             **kwargs: Any) -> Any:  # fmt: skip
        return self.client.post(path, json=body, headers=headers or self.operator, **kwargs)

    def get(self, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self.client.get(path, headers=headers or self.operator, **kwargs)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    data = tmp_path_factory.mktemp("credit-node")
    settings = Settings(
        data=data,
        block_interval_ms=5,
        password_hashing="test",
        projector="thread",
        audit_anchor_interval_s=0,
    )
    genesis = init_data_dir(settings, members=1)
    assert genesis.contracts["credit"] == "1"  # in force from genesis on a new chain
    token = (data / "operator-token").read_text().strip()
    with (
        Platform(settings) as platform,
        TestClient(create_app(platform=platform), base_url="https://testserver") as client,
    ):
        yield Node(platform, client, {"Authorization": f"Bearer {token}"})
