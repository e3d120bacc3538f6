"""`zhijin notary ...`: anchor documents and verify receipts from the command line.

`anchor` opens the data directory's node itself, or, when a server holds it, anchors through the
server's API with the operator token; `verify` needs only the receipt and the genesis file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from zhijin.platform.cli_options import DEFAULT_DATA, DataOption
from zhijin.platform.i18n import cli_text as _cli_text

__all__ = ["notary_app"]

notary_app = typer.Typer(help=_cli_text("cli.help.notary"), no_args_is_help=True)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _fail(message: str, code: int = 1) -> None:
    typer.echo(_cli_text("cli.error", message=message), err=True)
    raise typer.Exit(code)


@notary_app.command("anchor", help=_cli_text("cli.help.notary.anchor"))
def notary_anchor(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    title: Annotated[str, typer.Option(help=_cli_text("cli.help.notary.notary_anchor.title"))] = "",
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Anchor FILE's SHA-256 and print the receipt (JSON)."""
    from zhijin.notary import service
    from zhijin.notary.receipt import build_receipt
    from zhijin.platform.data_dir import DataDirError
    from zhijin.platform.gateway import MemberGateway
    from zhijin.platform.host import cli_root

    settings = cli_root(ctx).settings(data)
    document_hash = service.hash_file(file)
    try:
        platform = cli_root(ctx).open_host(settings)
    except DataDirError as exc:
        if exc.code != "data_dir_in_use":
            raise
        _print_json(_anchor_over_http(settings, document_hash, title))
        return
    with platform:
        service.anchor(MemberGateway(platform.node), document_hash=document_hash, title=title)
        _print_json(build_receipt(platform.store, document_hash))


def _anchor_over_http(settings: Any, document_hash: str, title: str) -> Any:
    """A server holds the data directory: anchor through its API with the operator token."""
    import httpx

    server = json.loads((settings.data / "server.json").read_text())
    token = (settings.data / "operator-token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server["url"], timeout=60) as client:
        response = client.post(
            "/api/v1/notary/anchors", json={"hash": document_hash, "title": title}, headers=headers
        )
        if response.status_code != 200:
            _fail(f"server refused: {response.text}")
        # A receipt carries the anchoring tx whole: for members (the operator) and the owner.
        receipt = client.get(f"/api/v1/notary/anchors/{document_hash}/receipt", headers=headers)
        receipt.raise_for_status()
        return receipt.json()


@notary_app.command("verify", help=_cli_text("cli.help.notary.verify"))
def notary_verify(
    receipt: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    file: Annotated[Path | None, typer.Argument(exists=True, dir_okay=False)] = None,
    genesis: Annotated[
        Path | None, typer.Option(help=_cli_text("cli.help.notary.notary_verify.genesis"))
    ] = None,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Check RECEIPT offline against the genesis file (and FILE's hash, if given)."""
    from zhijin.chain.genesis import Genesis
    from zhijin.notary.receipt import verify_receipt

    genesis_path = genesis or data / "genesis.json"
    loaded = Genesis.load(genesis_path)
    try:
        document = json.loads(receipt.read_text())
    except ValueError as exc:
        _fail(f"{receipt} is not JSON: {exc}")
    content = file.read_bytes() if file is not None else None
    report = verify_receipt(document, loaded, document=content)
    for check in report.checks:
        mark = "ok  " if check.ok else "FAIL"
        typer.echo(f"{mark} {check.name}" + (f" ({check.detail})" if check.detail else ""))
    failure, record = report.failure, report.record
    if failure is not None:
        # The first failed check judges what was changed; later ones may fail because of it.
        _fail(f"{failure.code} at {', '.join(failure.fields)}: not what the chain committed")
    assert record is not None  # every check passed, so the record is proven
    typer.echo(_cli_text("cli.notary.receipt_verified"))
    _echo_record(record)


def _echo_record(record: dict[str, Any]) -> None:
    """The proven record (never the receipt's own copy): what the verifier vouches for."""
    from datetime import UTC, datetime, timedelta

    def block_time(ms: int) -> str:
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    expires = record.get("expires_at")
    typer.echo(_cli_text("cli.notary.record_hash", value=record["hash"]))
    typer.echo(
        _cli_text("cli.notary.record_title", value=json.dumps(record["title"], ensure_ascii=False))
    )
    typer.echo(_cli_text("cli.notary.record_owner", value=record["owner"]))
    typer.echo(
        _cli_text(
            "cli.notary.record_anchored",
            height=record["height"],
            time=block_time(record["anchored_at"]),
        )
    )
    if expires is None:
        typer.echo(_cli_text("cli.notary.record_never_expires"))
    else:
        typer.echo(_cli_text("cli.notary.record_expires", time=block_time(expires)))
    typer.echo(_cli_text("cli.notary.record_tx", value=record["tx_hash"]))
