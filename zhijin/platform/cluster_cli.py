"""`zhijin cluster ...`: lay out, start, inspect and stop a local multi-member network."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Annotated

import typer

cluster_app = typer.Typer(
    help="A multi-member network on JetStream ordering (local, loopback).", no_args_is_help=True
)

NetworkOption = Annotated[
    Path, typer.Option("--dir", envvar="ZHIJIN_CLUSTER_DIR", help="network directory")
]
DEFAULT_DIR = Path("./var-cluster")
STATUS_INTERVAL_S = 5.0


@cluster_app.command("up")
def up(
    directory: NetworkOption = DEFAULT_DIR,
    members: Annotated[int, typer.Option(min=1, max=16, help="consortium members")] = 3,
    nats: Annotated[int, typer.Option(help="NATS servers: 1, 3 or 5")] = 3,
    chain_id: Annotated[str, typer.Option(help="chain id")] = "zhijin-cluster",
    detach: Annotated[
        bool, typer.Option(help="leave it running; stop with `cluster down`")
    ] = False,
) -> None:
    """Start NATS servers and one peer per member; lays the network out on first use."""
    from zhijin.platform.cluster import NETWORK_FILE, LocalNetwork, init_network

    if not (directory / NETWORK_FILE).exists():
        init_network(directory, members=members, nats=nats, chain_id=chain_id)
    network = LocalNetwork(directory)
    try:
        network.start()
    except BaseException:
        network.stop()
        raise
    typer.echo(f"network up in {directory}: NATS {', '.join(network.nats_urls)}")
    for index, url in enumerate(network.urls):
        typer.echo(f"  peer {index}: {url}  (config {directory / f'peer{index}.json'})")
    if detach:
        return
    typer.echo("Ctrl-C stops the network")
    stopping = False

    def interrupt(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, interrupt)
    try:
        while not stopping:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        network.stop()
        typer.echo("network stopped")


@cluster_app.command("status")
def status(
    directory: NetworkOption = DEFAULT_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Each peer's height, block hash, state root, final height and lag."""
    from zhijin.platform.cluster import NETWORK_FILE, peer_statuses

    layout = json.loads((directory / NETWORK_FILE).read_text())
    rows = peer_statuses([p["url"] for p in layout["peers"]])
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{'peer':<26} {'height':>7} {'final':>7} {'lag':>4}  block hash        state root")
    for row in rows:
        if "error" in row:
            typer.echo(f"{row['url']:<26} down ({row['error']})")
            continue
        halted = "  HALTED: " + row["halted"]["reason"] if row.get("halted") else ""
        typer.echo(
            f"{row['url']:<26} {row['height']:>7} {row['final_height']:>7} {row['lag']:>4}  "
            f"{row['block_hash'][:16]}  {row['state_root'][:16]}{halted}"
        )


@cluster_app.command("down")
def down(directory: NetworkOption = DEFAULT_DIR) -> None:
    """Stop a network started with `cluster up --detach`."""
    from zhijin.platform.cluster import stop_by_pid_file

    typer.echo(f"stopped {stop_by_pid_file(directory)} processes")
