"""A platform served by uvicorn in a thread on loopback, on a fresh data directory: for tests
that need a real HTTP server (a browser, server-sent event streams)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import uvicorn

from zhijin.node.app import create_app
from zhijin.node.runtime import Platform, init_data_dir
from zhijin.node.settings import Settings

__all__ = ["LiveServer", "free_port"]

SERVER_START_S_MAX = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    def __init__(self, data: Path, *, members: int = 1) -> None:
        settings = Settings(data=data, block_interval_ms=5, password_hashing="test")
        init_data_dir(settings, members=members)
        self.platform = Platform(settings).start()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(platform=self.platform),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + SERVER_START_S_MAX
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        self.operator_token = (data / "operator-token").read_text().strip()

    def stop(self) -> None:
        """End the live streams (they never end on their own), the server, then the node."""
        self.platform.notifications.stop()
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.platform.stop()
