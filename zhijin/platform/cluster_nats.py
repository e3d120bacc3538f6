"""Local NATS servers: nats-server processes with JetStream on loopback ports, routed together."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from zhijin.chain.files import touch_private, write_private
from zhijin.platform.cluster_config import ClusterError

__all__ = ["NatsServer", "free_port", "make_nats_servers"]

NATS_SERVER_BINARY = os.environ.get("ZHIJIN_NATS_SERVER", "nats-server")
NATS_START_S_MAX = 15.0
NATS_SERVERS_ALLOWED = (1, 3, 5)


# Below the kernel's ephemeral range (Linux: 32768-60999), from which every outbound
# connection takes its local port: a port picked there (bind to 0) could be taken by some
# client's socket between the pick and the server's own bind, and the server then fails to
# start.  Here only another listener can take it, and the bind check skips those.
PORT_RANGE = (20_000, 32_000)
_PORT_TRIES = 200
# The OS's randomness, not the `random` module's state: a test run reseeds that the same way in
# every worker (pytest-randomly), and the workers would then all pick the same ports.
_PORTS = random.SystemRandom()


def free_port() -> int:
    """A loopback port nothing listens on now, outside the ephemeral range."""
    low, high = PORT_RANGE
    for _ in range(_PORT_TRIES):
        port = _PORTS.randrange(low, high)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # the range is full: let the kernel choose
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class NatsServer:
    """One nats-server process with JetStream, on loopback ports, routed to its siblings."""

    name: str
    directory: Path
    port: int
    cluster_port: int
    monitor_port: int
    routes: tuple[int, ...] = ()  # the other servers' cluster ports
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        store = self.directory / "jetstream"
        lines = [
            f"server_name: {self.name}",
            f"listen: 127.0.0.1:{self.port}",
            f"http: 127.0.0.1:{self.monitor_port}",
            "max_payload: 8MB",
            "jetstream {",
            f'  store_dir: "{store}"',
            "  max_memory_store: 256MB",
            "  max_file_store: 8GB",
            "}",
        ]
        if self.routes:
            routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in self.routes)
            lines += [
                "cluster {",
                "  name: zhijin",
                f"  listen: 127.0.0.1:{self.cluster_port}",
                f"  routes: [{routes}]",
                "}",
            ]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        binary = shutil.which(NATS_SERVER_BINARY) or shutil.which(
            "nats-server", path="/usr/sbin:/usr/bin:/usr/local/bin"
        )
        if binary is None:
            raise ClusterError(
                "nats_server_missing",
                "no nats-server binary: install it (apt-get install nats-server) "
                "or set ZHIJIN_NATS_SERVER",
            )
        config = self.directory / "nats.conf"
        write_private(config, self.config_text())
        touch_private(self.directory / "nats.log")
        log_file = open(self.directory / "nats.log", "ab")  # noqa: SIM115 - the child holds it
        self.process = subprocess.Popen(
            [binary, "-c", str(config)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log_file.close()

    def wait_listening(self, timeout_s: float = NATS_START_S_MAX) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ClusterError("nats_server_failed", f"{self.name} exited; see its nats.log")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise ClusterError("nats_server_failed", f"{self.name} did not listen in time")

    def kill(self) -> None:
        """SIGKILL: the fault tests' way to lose a server."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def make_nats_servers(root: Path, count: int) -> list[NatsServer]:
    if count not in NATS_SERVERS_ALLOWED:
        raise ClusterError("bad_nats_count", f"--nats must be one of {NATS_SERVERS_ALLOWED}")
    ports = [(free_port(), free_port(), free_port()) for _ in range(count)]
    servers = []
    for i, (port, cluster_port, monitor_port) in enumerate(ports):
        routes = tuple(p[1] for j, p in enumerate(ports) if j != i) if count > 1 else ()
        servers.append(
            NatsServer(f"n{i}", root / f"n{i}", port, cluster_port, monitor_port, routes)
        )
    return servers
