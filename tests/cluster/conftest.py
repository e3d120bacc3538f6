"""Fixtures for cluster tests: real nats-server processes on free loopback ports, real peers.

Every process a test starts is stopped in the fixture's `finally`, and every wait is bounded.
One 3-server JetStream cluster serves the module's tests (each network uses its own chain id,
so its own streams); the NATS fault tests start their own servers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from zhijin.node.cluster import LocalNetwork, NatsServer, init_network, make_nats_servers

NetworkFactory = Callable[..., LocalNetwork]


def start_nats(root: Path, count: int = 3) -> list[NatsServer]:
    servers = make_nats_servers(root, count)
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_listening()
    except BaseException:
        for server in servers:
            server.kill()
        raise
    return servers


@pytest.fixture(scope="session")
def shared_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[NatsServer]]:
    servers = start_nats(tmp_path_factory.mktemp("nats"))
    try:
        yield servers
    finally:
        for server in servers:
            server.kill()


@pytest.fixture
def make_network(tmp_path: Path, shared_nats: list[NatsServer]) -> Iterator[NetworkFactory]:
    """Lay out and start networks on the shared NATS cluster; all stopped at the end."""
    started: list[LocalNetwork] = []

    def make(members: int = 3, *, start: bool = True, **options: Any) -> LocalNetwork:
        root = tmp_path / f"net{len(started)}"
        chain_id = "t-" + uuid.uuid4().hex[:12]
        options.setdefault("block_interval_ms", 20)
        if "nats_urls" not in options:
            options["nats_urls"] = [s.url for s in shared_nats]
        init_network(root, members=members, nats=3, chain_id=chain_id, **options)
        network = LocalNetwork(root)
        started.append(network)
        if start:
            network.start()
        return network

    try:
        yield make
    finally:
        for network in started:
            network.stop()
