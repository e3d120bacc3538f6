"""The `zhijin` command: the chain, projections, serve and bench commands here, and each
domain's command groups from its manifest (zhijin/node/modules.py).

Exit status: 0 done; 1 a check failed or the command could not run; 2 refused (the stable code
is printed, nothing changed); 3 committed but not yet visible in the query tables (the tx
stands: its hash and height are printed as JSON, and a later read, or the same command
again, which is idempotent, finds it)."""

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
from zhijin.platform.cli_options import DEFAULT_DATA, DataOption
from zhijin.platform.i18n import cli_text as _cli_text
from zhijin.platform.projections import CommittedNotYetVisible

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from zhijin.chain.store import ChainStore
    from zhijin.platform.host import Host
    from zhijin.platform.settings import CoreSettings

app = typer.Typer(help=_cli_text("cli.help.zhijin"), no_args_is_help=True)
chain_app = typer.Typer(help=_cli_text("cli.help.zhijin.chain"), no_args_is_help=True)
proof_app = typer.Typer(help=_cli_text("cli.help.zhijin.proof"), no_args_is_help=True)
bench_app = typer.Typer(help=_cli_text("cli.help.zhijin.bench"), no_args_is_help=True)
projections_app = typer.Typer(help=_cli_text("cli.help.zhijin.projections"), no_args_is_help=True)
app.add_typer(chain_app, name="chain")
chain_app.add_typer(proof_app, name="proof")
app.add_typer(bench_app, name="bench")
app.add_typer(projections_app, name="projections")
app.add_typer(cluster_app, name="cluster")
for _name, _group in cli_groups():
    app.add_typer(_group, name=_name)


def _open_host(settings: CoreSettings) -> Host:
    from zhijin.node.runtime import Platform

    return Platform(settings)


def _anchor_reader(store: ChainStore, engine: Engine) -> Any:
    from zhijin.notary import NotaryService

    return NotaryService(store=store, engine=engine)  # read-only: no gateway


@app.callback()
def _wire(ctx: typer.Context) -> None:
    # Domain commands open a host, read the modules' vault schemas and the ports they declare
    # of other domains, through the root.
    from zhijin.node.modules import vault_schemas
    from zhijin.platform.host import CliRoot

    ctx.obj = CliRoot(
        settings=_settings,
        open_host=_open_host,
        vault_schemas=vault_schemas,
        anchor_reader=_anchor_reader,
    )


def _settings(data: Path, **overrides: Any) -> CoreSettings:
    """The node's settings (core and every module's section, from ZHIJIN_*) for `data`."""
    from zhijin.node.settings import Settings

    return Settings(data=data, **overrides)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _error_text(exc: ZhijinError) -> str:
    """A refusal as people read it: the code's problem template in the terminal's language."""
    from zhijin.platform.i18n import environment_locale
    from zhijin.platform.problems import problem_detail

    return problem_detail(environment_locale(os.environ), exc.code, exc.details, exc.message)


def _fail(message: str, code: int = 1) -> None:
    typer.echo(_cli_text("cli.error", message=message), err=True)
    raise typer.Exit(code)


def _store(data: Path) -> Any:
    from zhijin.chain.store import ChainStore
    from zhijin.node.runtime import load_genesis

    settings = _settings(data)
    genesis = load_genesis(settings)
    return ChainStore(settings.chain_database_url()), genesis, settings


# -- chain ------------------------------------------------------------------------------------


@chain_app.command("init", help=_cli_text("cli.help.zhijin.chain.init"))
def chain_init(
    data: DataOption = DEFAULT_DATA,
    members: Annotated[
        int, typer.Option(min=1, max=64, help=_cli_text("cli.help.zhijin.chain_init.members"))
    ] = 4,
    chain_id: Annotated[
        str, typer.Option(help=_cli_text("cli.help.zhijin.chain_init.chain_id"))
    ] = "zhijin-local",
    demo: Annotated[bool, typer.Option(help=_cli_text("cli.help.zhijin.chain_init.demo"))] = False,
) -> None:
    """Create genesis and member keys (mode 0600) in a new data directory."""
    from zhijin.chain.node import now_ms
    from zhijin.node.runtime import Platform, init_data_dir
    from zhijin.platform.demo_clock import DAY_MS, DEMO_HISTORY_DAYS

    settings = _settings(data)
    # The demo chain begins its story in the past, so that its loans have months of history.
    started = now_ms() - DEMO_HISTORY_DAYS * DAY_MS if demo else None
    genesis = init_data_dir(settings, members=members, chain_id=chain_id, time_ms=started)
    typer.echo(
        _cli_text("cli.chain_created", chain_id=genesis.chain_id, genesis_hash=genesis.hash().hex())
    )
    for member in genesis.members:
        typer.echo(_cli_text("cli.member", name=member.name, role=member.role, did=member.did))
    token_path = settings.data / "operator-token"
    typer.echo(_cli_text("cli.keys_written", keys_dir=settings.keys_dir, token_path=token_path))
    if demo:
        from zhijin.node.demo import seed_demo

        with Platform(settings) as platform:
            summary = seed_demo(platform, story_start_ms=genesis.time_ms)
        typer.echo(
            _cli_text(
                "cli.demo_loaded",
                users=len(summary.users),
                accounts=len(summary.payments.accounts),
                transfers=len(summary.payments.transfers),
                documents=len(summary.documents),
            )
        )


@chain_app.command("status", help=_cli_text("cli.help.zhijin.chain.status"))
def chain_status(data: DataOption = DEFAULT_DATA) -> None:
    """The chain head and the latest signed tree head."""
    store, genesis, _ = _store(data)
    height = store.head_height()
    if height is None:
        _fail(_cli_text("cli.no_blocks"))
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


@chain_app.command("block", help=_cli_text("cli.help.zhijin.chain.block"))
def chain_block(height: int, data: DataOption = DEFAULT_DATA) -> None:
    """One block: header, signatures, tx hashes."""
    store, _, _ = _store(data)
    block = store.get_block(height)
    if block is None:
        _fail(_cli_text("cli.no_block", height=height))
    _print_json(
        {
            "height": height,
            "hash": block.block_hash.hex(),
            "header": block.header_json(),
            "signatures": block.signatures,
            "txs": [t.tx_hash.hex() for t in store.txs_at(height)],
        }
    )


@chain_app.command("tx", help=_cli_text("cli.help.zhijin.chain.tx"))
def chain_tx(tx_hash: str, data: DataOption = DEFAULT_DATA) -> None:
    """One committed transaction and its result."""
    from zhijin.chain.codec import decode

    store, _, _ = _store(data)
    try:
        stored = store.get_tx(bytes.fromhex(tx_hash))
    except ValueError:
        stored = None
    if stored is None:
        _fail(_cli_text("cli.no_tx", tx_hash=tx_hash))
    _print_json(
        {
            "tx_hash": tx_hash,
            "height": stored.height,
            "position": stored.position,
            "envelope": stored.envelope(),
            "result": decode(stored.result),
        }
    )


@chain_app.command("verify", help=_cli_text("cli.help.zhijin.chain.verify"))
def chain_verify(data: DataOption = DEFAULT_DATA) -> None:
    """Re-derive every hash, root and signature from genesis; exit 1 at the first bad height."""
    from zhijin.chain.verify import verify_chain
    from zhijin.node.modules import default_registry

    store, genesis, _ = _store(data)

    def progress(height: int) -> None:
        typer.echo(_cli_text("cli.verified_through", height=height), err=True)

    report = verify_chain(store, genesis, default_registry(), progress=progress)
    _print_json(report.to_json())
    if not report.ok:
        typer.echo(
            _cli_text("cli.verify_failed", height=report.bad_height, reason=report.reason), err=True
        )
        raise typer.Exit(1)
    typer.echo(_cli_text("cli.chain_sound", blocks=report.blocks, txs=report.txs), err=True)


@proof_app.command("inclusion", help=_cli_text("cli.help.zhijin.proof.inclusion"))
def proof_inclusion(
    tx_hash: str,
    size: Annotated[
        int | None, typer.Option(help=_cli_text("cli.help.zhijin.proof_inclusion.size"))
    ] = None,
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
        _fail(_cli_text("cli.no_tx", tx_hash=tx_hash))
    header = store.get_block(stored.height).header_json()
    index = header["log_size"] - header["tx_count"] + stored.position
    current = store.get_block(store.head_height()).header_json()["log_size"]
    tree_size = current if size is None else size
    if not index < tree_size <= current:
        _fail(_cli_text("cli.size_range", low=index + 1, high=current))
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


@proof_app.command("consistency", help=_cli_text("cli.help.zhijin.proof.consistency"))
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
        _fail(_cli_text("cli.proof_range", current=current))
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


@app.command("reindex", help=_cli_text("cli.help.zhijin.reindex"))
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
        typer.echo(_cli_text("cli.reindexed_peer", applied=applied, final=final))
        return
    platform = Platform(settings)
    try:
        blocks = platform.projections.reindex()
    finally:
        platform.stop()
    typer.echo(_cli_text("cli.reindexed", blocks=blocks))


@projections_app.command("verify", help=_cli_text("cli.help.zhijin.projections.verify"))
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
        _fail(_error_text(exc))
        return
    engine = make_engine(settings.platform_database_url_resolved())
    try:
        report = verify_projections(store, engine, default_projection_verifiers())
    finally:
        engine.dispose()
        store.close()
    _print_json(report.to_json())
    if not report.ok:
        _fail(_cli_text("cli.projections_differ", count=report.mismatches_total))


# -- serve and bench --------------------------------------------------------------------------


@app.command("serve", help=_cli_text("cli.help.zhijin.serve"))
def serve(
    data: DataOption = DEFAULT_DATA,
    host: Annotated[str, typer.Option(envvar="ZHIJIN_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="ZHIJIN_PORT", min=1, max=65535)] = 8000,
    cluster: Annotated[
        Path | None, typer.Option(help=_cli_text("cli.help.zhijin.serve.cluster"))
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
        _fail(_cli_text("cli.no_genesis", data=data))
    server_file = settings.data / "server.json"
    write_private(server_file, json.dumps({"url": f"http://{host}:{port}", "pid": os.getpid()}))
    try:
        serve_app(create_app(settings), host=host, port=port, log_level="info")
    finally:
        server_file.unlink(missing_ok=True)


@bench_app.command("chain", help=_cli_text("cli.help.zhijin.bench.chain"))
def bench_chain(
    txs: Annotated[
        int, typer.Option(min=100, max=2_000_000, help=_cli_text("cli.help.zhijin.bench_chain.txs"))
    ] = 20_000,
    database_url: Annotated[
        str | None, typer.Option(help=_cli_text("cli.help.zhijin.bench_chain.database_url"))
    ] = None,
) -> None:
    """Signed notary txs through the node to durable commit; one JSON line per case."""
    from zhijin.node.bench import run_chain_bench as run

    run(txs=txs, database_url=database_url)


EXIT_REFUSED = 2
EXIT_COMMITTED_NOT_YET_VISIBLE = 3


def _typer_words() -> dict[str, str]:
    """typer's own words around our help (its panel titles and markers, `typer.rich_utils`),
    in the terminal's language as ours are.  Literal braces are typer's format fields."""
    return {
        "ARGUMENTS_PANEL_TITLE": _cli_text("cli.typer.arguments"),
        "OPTIONS_PANEL_TITLE": _cli_text("cli.typer.options"),
        "COMMANDS_PANEL_TITLE": _cli_text("cli.typer.commands"),
        "ERRORS_PANEL_TITLE": _cli_text("cli.typer.error"),
        "ABORTED_TEXT": _cli_text("cli.typer.aborted"),
        "RICH_HELP": _cli_text("cli.typer.try_help"),
        "DEFAULT_STRING": _cli_text("cli.typer.default"),
        "ENVVAR_STRING": _cli_text("cli.typer.envvar"),
        "REQUIRED_LONG_STRING": _cli_text("cli.typer.required"),
        "DEPRECATED_STRING": _cli_text("cli.typer.deprecated"),
    }


def localised_command() -> Any:
    """The `zhijin` command tree with typer's words localised too: the panel titles, and the
    help of the options typer adds (`--help` on every command, the shell-completion pair on
    the root).  Click's own usage line and parse errors stay English (docs/i18n.md)."""
    from typer import rich_utils
    from typer.core import TyperOption
    from typer.main import get_command

    for name, text in _typer_words().items():
        setattr(rich_utils, name, text)
    root = get_command(app)
    added = {
        "install_completion": _cli_text("cli.typer.install_completion"),
        "show_completion": _cli_text("cli.typer.show_completion"),
    }
    help_text = _cli_text("cli.typer.help")
    pending = [root]
    while pending:  # a few dozen commands, in groups at most two deep
        command = pending.pop()
        help_option = command.get_help_option(typer.Context(command))
        if help_option is not None:
            help_option.help = help_text
        for param in command.params:
            if param.name in added and isinstance(param, TyperOption):
                param.help = added[param.name]
        pending.extend(getattr(command, "commands", {}).values())
    return root


def main() -> None:
    logging.basicConfig(level=os.environ.get("ZHIJIN_LOG", "WARNING"), stream=sys.stderr)
    try:
        localised_command()()
    except CommittedNotYetVisible as exc:
        # Not an error: the write is on chain.  Say so where a script reads (stdout, JSON) and
        # what to do where a person reads (stderr), with a status of its own.
        _print_json({"committed": True, "visible": False, "code": exc.code, **exc.details})
        typer.echo(
            _cli_text(
                "cli.committed_not_visible",
                height=exc.details["height"],
                tx_hash=exc.details["tx_hash"],
                seconds=exc.details["retry_after_s"],
            ),
            err=True,
        )
        sys.exit(EXIT_COMMITTED_NOT_YET_VISIBLE)
    except ZhijinError as exc:
        detail = _error_text(exc)
        typer.echo(_cli_text("cli.refused", code=exc.code, detail=detail), err=True)
        if exc.message != detail:  # the code's own sentence often names the path or the value
            typer.echo(_cli_text("cli.diagnostic", diagnostic=exc.message), err=True)
        sys.exit(EXIT_REFUSED)
