"""The `zhijin` command: the chain, projections, serve and bench commands here, and each
domain's command groups from its manifest (zhijin/node/modules.py)."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from zhijin.chain.errors import ZhijinError
from zhijin.chain.files import write_private
from zhijin.node.cluster_cli import cluster_app
from zhijin.node.modules import cli_groups

if TYPE_CHECKING:
    from zhijin.platform.host import Host
    from zhijin.platform.settings import Settings

app = typer.Typer(help="zhijin (智金): smart finance on a consortium chain.", no_args_is_help=True)
chain_app = typer.Typer(help="Initialise, inspect and verify the chain.", no_args_is_help=True)
proof_app = typer.Typer(help="Merkle proofs over the global log tree.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks (one JSON line per case).", no_args_is_help=True)
projections_app = typer.Typer(
    help="Query tables checked against the chain's state.", no_args_is_help=True
)
app.add_typer(chain_app, name="chain")
chain_app.add_typer(proof_app, name="proof")
app.add_typer(bench_app, name="bench")
app.add_typer(projections_app, name="projections")
app.add_typer(cluster_app, name="cluster")
for _name, _group in cli_groups():
    app.add_typer(_group, name=_name)


def _open_host(settings: Settings) -> Host:
    from zhijin.node.runtime import Platform

    return Platform(settings)


@app.callback()
def _wire(ctx: typer.Context) -> None:
    # Domain commands open a host, and read the modules' vault schemas, through the root.
    from zhijin.node.modules import vault_schemas
    from zhijin.platform.host import CliRoot

    ctx.obj = CliRoot(open_host=_open_host, vault_schemas=vault_schemas)


DataOption = Annotated[
    Path, typer.Option("--data", envvar="ZHIJIN_DATA", help="data directory", show_default=True)
]
DEFAULT_DATA = Path("./var")


def _settings(data: Path, **overrides: Any) -> Any:
    from zhijin.platform.settings import Settings

    return Settings(data=data, **overrides)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _store(data: Path) -> Any:
    from zhijin.chain.store import ChainStore
    from zhijin.node.runtime import load_genesis

    settings = _settings(data)
    genesis = load_genesis(settings)
    return ChainStore(settings.chain_database_url()), genesis, settings


# -- chain ------------------------------------------------------------------------------------


@chain_app.command("init")
def chain_init(
    data: DataOption = DEFAULT_DATA,
    members: Annotated[int, typer.Option(min=1, max=64, help="consortium members")] = 4,
    chain_id: Annotated[str, typer.Option(help="chain id")] = "zhijin-local",
    demo: Annotated[bool, typer.Option(help="also load demo data")] = False,
) -> None:
    """Create genesis and member keys (mode 0600) in a new data directory."""
    from zhijin.node.runtime import Platform, init_data_dir

    settings = _settings(data)
    genesis = init_data_dir(settings, members=members, chain_id=chain_id)
    typer.echo(f"chain {genesis.chain_id}: genesis {genesis.hash().hex()}")
    for member in genesis.members:
        typer.echo(f"  member {member.name} ({member.role}) {member.did}")
    typer.echo(f"keys in {settings.keys_dir}; operator token in {settings.data / 'operator-token'}")
    if demo:
        from zhijin.node.demo import seed_demo

        with Platform(settings) as platform:
            summary = seed_demo(platform)
        typer.echo(
            f"demo data: {len(summary.users)} users, {len(summary.payments.accounts)} accounts, "
            f"{len(summary.payments.transfers)} transfers, {len(summary.documents)} documents"
        )


@chain_app.command("status")
def chain_status(data: DataOption = DEFAULT_DATA) -> None:
    """The chain head and the latest signed tree head."""
    store, genesis, _ = _store(data)
    height = store.head_height()
    if height is None:
        _fail("the chain has no blocks yet: start the node once (zhijin serve)")
    block = store.get_block(height)
    _print_json(
        {
            "chain_id": genesis.chain_id,
            "height": height,
            "block_hash": block.block_hash.hex(),
            "header": block.header_json(),
            "tree_head": store.tree_head(),
        }
    )


@chain_app.command("block")
def chain_block(height: int, data: DataOption = DEFAULT_DATA) -> None:
    """One block: header, signatures, tx hashes."""
    store, _, _ = _store(data)
    block = store.get_block(height)
    if block is None:
        _fail(f"no block at height {height}")
    _print_json(
        {
            "height": height,
            "hash": block.block_hash.hex(),
            "header": block.header_json(),
            "signatures": block.signatures,
            "txs": [t.tx_hash.hex() for t in store.txs_at(height)],
        }
    )


@chain_app.command("tx")
def chain_tx(tx_hash: str, data: DataOption = DEFAULT_DATA) -> None:
    """One committed transaction and its result."""
    from zhijin.chain.codec import decode

    store, _, _ = _store(data)
    try:
        stored = store.get_tx(bytes.fromhex(tx_hash))
    except ValueError:
        stored = None
    if stored is None:
        _fail(f"no committed tx {tx_hash}")
    _print_json(
        {
            "tx_hash": tx_hash,
            "height": stored.height,
            "position": stored.position,
            "envelope": stored.envelope(),
            "result": decode(stored.result),
        }
    )


@chain_app.command("verify")
def chain_verify(data: DataOption = DEFAULT_DATA) -> None:
    """Re-derive every hash, root and signature from genesis; exit 1 at the first bad height."""
    from zhijin.chain.verify import verify_chain
    from zhijin.node.modules import default_registry

    store, genesis, _ = _store(data)

    def progress(height: int) -> None:
        typer.echo(f"  verified through height {height}", err=True)

    report = verify_chain(store, genesis, default_registry(), progress=progress)
    _print_json(report.to_json())
    if not report.ok:
        typer.echo(f"FAILED at height {report.bad_height}: {report.reason}", err=True)
        raise typer.Exit(1)
    typer.echo(f"chain sound: {report.blocks} blocks, {report.txs} txs", err=True)


@proof_app.command("inclusion")
def proof_inclusion(
    tx_hash: str,
    size: Annotated[int | None, typer.Option(help="tree size (default: latest)")] = None,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Inclusion proof of a tx in the log tree, in the wire format."""
    from zhijin.chain.merkle import LogTree, inclusion_to_json, leaf_hash

    store, _, _ = _store(data)
    try:
        digest = bytes.fromhex(tx_hash)
        stored = store.get_tx(digest)
    except ValueError:
        stored = None
    if stored is None:
        _fail(f"no committed tx {tx_hash}")
    header = store.get_block(stored.height).header_json()
    index = header["log_size"] - header["tx_count"] + stored.position
    current = store.get_block(store.head_height()).header_json()["log_size"]
    tree_size = current if size is None else size
    if not index < tree_size <= current:
        _fail(f"--size must be in {index + 1}..{current}")
    tree = LogTree(store, current)
    _print_json(
        inclusion_to_json(
            leaf_index=index,
            tree_size=tree_size,
            leaf_hash=leaf_hash(digest),
            root=tree.root(tree_size),
            proof=tree.inclusion_proof(index, tree_size),
        )
    )


@proof_app.command("consistency")
def proof_consistency(
    size_from: Annotated[int, typer.Option("--from", min=1)],
    size_to: Annotated[int, typer.Option("--to", min=1)],
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Consistency proof between two log tree sizes, in the wire format."""
    from zhijin.chain.merkle import LogTree, consistency_to_json

    store, _, _ = _store(data)
    current = store.get_block(store.head_height()).header_json()["log_size"]
    if not size_from <= size_to <= current:
        _fail(f"need 1 <= --from <= --to <= {current}")
    tree = LogTree(store, current)
    _print_json(
        consistency_to_json(
            size1=size_from,
            size2=size_to,
            root1=tree.root(size_from),
            root2=tree.root(size_to),
            proof=tree.consistency_proof(size_from, size_to),
        )
    )


@app.command("reindex")
def reindex(data: DataOption = DEFAULT_DATA) -> None:
    """Drop every query table and rebuild it by replaying the chain's blocks (on a cluster
    peer's data directory: its final blocks only, as the running peer projects them)."""
    from zhijin.chain.genesis import Genesis
    from zhijin.node.runtime import Platform

    settings = _settings(data)
    if settings.genesis_path.exists() and Genesis.load(settings.genesis_path).ordering == (
        "jetstream"
    ):
        from zhijin.node.cluster import reindex_peer

        applied, final = reindex_peer(data)
        typer.echo(f"reindexed: {applied} block applications, up to final block {final}")
        return
    platform = Platform(settings)
    try:
        blocks = platform.projections.reindex()
    finally:
        platform.stop()
    typer.echo(f"reindexed: {blocks} block applications")


@projections_app.command("verify")
def projections_verify(data: DataOption = DEFAULT_DATA) -> None:
    """Recompute every projected row from the chain's state at the projection's height and
    name each one that differs (domain, table, key, field, expected, found); exits 1 if any
    does.  Reads the databases directly, so it runs beside a running node."""
    from zhijin.chain.store import make_engine
    from zhijin.node.modules import default_projection_verifiers
    from zhijin.platform.projection_verify import verify_projections

    try:
        store, _genesis, settings = _store(data)
    except ZhijinError as exc:
        _fail(exc.message)
        return
    engine = make_engine(settings.platform_database_url_resolved())
    try:
        report = verify_projections(store, engine, default_projection_verifiers())
    finally:
        engine.dispose()
        store.close()
    _print_json(report.to_json())
    if not report.ok:
        _fail(f"{report.mismatches_total} projected values differ from the chain")


# -- serve and bench --------------------------------------------------------------------------


@app.command("serve")
def serve(
    data: DataOption = DEFAULT_DATA,
    host: Annotated[str, typer.Option(envvar="ZHIJIN_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="ZHIJIN_PORT", min=1, max=65535)] = 8000,
    cluster: Annotated[
        Path | None, typer.Option(help="cluster config: run as a JetStream-ordered peer")
    ] = None,
) -> None:
    """Run the node and the HTTP API (OpenAPI at /docs)."""

    if cluster is not None:
        from zhijin.node.cluster import serve_peer

        serve_peer(cluster)
        return

    from zhijin.node.app import create_app
    from zhijin.node.app import serve as serve_app

    settings = _settings(data, host=host, port=port)
    if not settings.genesis_path.exists():
        _fail(f"no genesis in {data}: run `zhijin chain init --data {data}` first")
    server_file = settings.data / "server.json"
    write_private(server_file, json.dumps({"url": f"http://{host}:{port}", "pid": os.getpid()}))
    try:
        serve_app(create_app(settings), host=host, port=port, log_level="info")
    finally:
        server_file.unlink(missing_ok=True)


@bench_app.command("chain")
def bench_chain(
    txs: Annotated[
        int, typer.Option(min=100, max=2_000_000, help="transactions per case")
    ] = 20_000,
    database_url: Annotated[str | None, typer.Option(help="default: SQLite in a temp dir")] = None,
) -> None:
    """Signed notary txs through the node to durable commit; one JSON line per case."""
    from zhijin.node.bench import run_chain_bench as run

    run(txs=txs, database_url=database_url)


def main() -> None:
    logging.basicConfig(level=os.environ.get("ZHIJIN_LOG", "WARNING"), stream=sys.stderr)
    try:
        app()
    except ZhijinError as exc:
        typer.echo(f"error [{exc.code}]: {exc.message}", err=True)
        sys.exit(2)
