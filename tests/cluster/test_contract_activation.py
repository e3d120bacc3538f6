"""A 3-peer cluster whose genesis lacks the notary gains it by governance (the CLI flow): the
peers run code that has it, refuse anchors until the activation height, then all commit and
verify the same chain.  Bounded, and every process started here is stopped by the fixtures."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.cluster.conftest import NetworkFactory
from tests.cluster.helpers import (
    anchor_envelope,
    document_hash,
    statuses,
    submit,
    verify_peer,
    wait_converged,
)
from zhijin.chain.crypto import KeyPair
from zhijin.chain.genesis import Genesis
from zhijin.cli import app

pytestmark = pytest.mark.slow


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, ["cluster", *args])
    assert result.exit_code == 0, result.output
    return result.output


def _member_key_file(network: Any, index: int) -> str:
    config = json.loads(Path(network.layout["peers"][index]["config"]).read_text())
    return str(config["member_key"])


def test_a_cluster_gains_the_notary_by_governance(
    make_network: NetworkFactory, tmp_path: Path
) -> None:
    network = make_network(3, start=False)
    for index in range(3):  # the same genesis on every peer, without the notary
        path = network.root / f"peer{index}" / "genesis.json"
        genesis = Genesis.load(path)
        contracts = {k: v for k, v in genesis.contracts.items() if k != "notary"}
        replace(genesis, contracts=contracts).save(path)
    network.start()
    user = KeyPair.generate()
    early = submit(network.urls[0], anchor_envelope(network, user, 1, document_hash("g", 1)))
    assert early.status_code == 400 and early.json()["code"] == "contract_not_active", early.text

    height = max(r["height"] for r in statuses(network))
    activation_height = height + 3
    genesis_file = network.root / "peer0" / "genesis.json"
    document = tmp_path / "activate.json"
    _cli(
        "propose-contract",
        *("--genesis", str(genesis_file), "--out", str(document)),
        *("--name", "notary", "--activation-height", str(activation_height)),
    )
    for index in (0, 1):  # quorum 2 of 3
        _cli("approve", str(document), "--key", _member_key_file(network, index))
    output = _cli(
        "submit", str(document), "--key", _member_key_file(network, 2), "--peer", network.urls[2]
    )
    activated = json.loads(output)
    assert activated["height"] < activation_height
    assert activated["return"]["activation"]["activation_height"] == activation_height

    # Anchors until one lands at or past the activation height: before it they fail.
    results = []
    for nonce in range(2, 40):
        response = submit(
            network.urls[nonce % 3],
            anchor_envelope(network, user, nonce, document_hash("g", nonce)),
            wait=True,
        )
        assert response.status_code == 200, response.text
        results.append(response.json())
        if response.json()["status"] == "committed":
            break
    assert all(r["code"] == "contract_not_active" for r in results[:-1])
    assert all(r["height"] < activation_height for r in results[:-1])
    assert results[-1]["status"] == "committed" and results[-1]["height"] >= activation_height
    rows = statuses(network)
    wait_converged(network, log_size=max(r["log_size"] for r in rows))
    for index in range(3):
        report = verify_peer(network, index)
        assert report.ok, report.reason
