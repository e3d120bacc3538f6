"""`zhijin pay ...`: payments from the command line, as this node's member.

The commands open the data directory's node themselves (like `zhijin notary anchor`); stop a
running server first, or use its HTTP API.  Output is JSON; a refusal prints its stable code and
exits 2.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from zhijin.payments import service
from zhijin.platform.i18n import cli_text as _cli_text

__all__ = ["pay_app"]

pay_app = typer.Typer(help=_cli_text("cli.help.pay"), no_args_is_help=True)
accounts_app = typer.Typer(help=_cli_text("cli.help.pay.accounts"), no_args_is_help=True)
fx_app = typer.Typer(help=_cli_text("cli.help.pay.fx"), no_args_is_help=True)
pay_app.add_typer(accounts_app, name="accounts")
pay_app.add_typer(fx_app, name="fx")

DataOption = Annotated[
    Path,
    typer.Option("--data", envvar="ZHIJIN_DATA", help=_cli_text("cli.help.zhijin.data_option")),
]
DEFAULT_DATA = Path("./var")


@contextmanager
def _platform(ctx: typer.Context, data: Path) -> Iterator[tuple[Any, Any]]:
    from zhijin.platform.gateway import MemberGateway
    from zhijin.platform.host import cli_root

    root = cli_root(ctx)
    with root.open_host(root.settings(data)) as platform:
        yield platform, MemberGateway(platform.node)


def _print(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _run(ctx: typer.Context, data: Path, action: Callable[[Any, Any], Any]) -> None:
    with _platform(ctx, data) as (platform, gateway):
        result = action(platform, gateway)
    if isinstance(result, bytes):
        typer.echo(result.decode("utf-8"))
    else:
        _print(result)


@accounts_app.command("open", help=_cli_text("cli.help.pay.accounts.open"))
def accounts_open(
    ctx: typer.Context,
    account_id: Annotated[
        str, typer.Argument(help=_cli_text("cli.help.pay.accounts_open.account_id"))
    ],
    owner: Annotated[str, typer.Option(help=_cli_text("cli.help.pay.accounts_open.owner"))],
    currency: Annotated[str, typer.Option(help=_cli_text("cli.help.pay.accounts_open.currency"))],
    kind: Annotated[
        str, typer.Option(help=_cli_text("cli.help.pay.accounts_open.kind"))
    ] = "customer",
    credit_limit: Annotated[int | None, typer.Option(min=0)] = None,
    reference: Annotated[str | None, typer.Option()] = None,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Open an account (idempotent by id)."""
    account: dict[str, Any] = {"id": account_id, "owner": owner, "currency": currency, "kind": kind}
    if credit_limit is not None:
        account["credit_limit"] = credit_limit
    if reference is not None:
        account["reference"] = reference
    _run(ctx, data, lambda p, g: service.open_account(p, g, account=account))


@accounts_app.command("list", help=_cli_text("cli.help.pay.accounts.list"))
def accounts_list(
    ctx: typer.Context,
    owner: Annotated[str | None, typer.Option()] = None,
    currency: Annotated[str | None, typer.Option()] = None,
    after_id: Annotated[
        str | None, typer.Option(help=_cli_text("cli.help.pay.accounts_list.after_id"))
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Accounts in id order, one page."""
    _run(
        ctx,
        data,
        lambda p, _g: service.list_accounts(
            p, owner=owner, currency=currency, after_id=after_id, limit=limit
        ),
    )


@accounts_app.command("show", help=_cli_text("cli.help.pay.accounts.show"))
def accounts_show(ctx: typer.Context, account_id: str, data: DataOption = DEFAULT_DATA) -> None:
    """An account with its balances."""
    _run(ctx, data, lambda p, _g: service.get_account(p, account_id=account_id))


@accounts_app.command("statement", help=_cli_text("cli.help.pay.accounts.statement"))
def accounts_statement(
    ctx: typer.Context,
    account_id: str,
    after_entry: Annotated[
        int, typer.Option(min=0, help=_cli_text("cli.help.pay.accounts_statement.after_entry"))
    ] = 0,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Posted entries with running balances, one page."""
    _run(
        ctx,
        data,
        lambda p, _g: service.statement(
            p, account_id=account_id, after_entry=after_entry, limit=limit
        ),
    )


@accounts_app.command("status", help=_cli_text("cli.help.pay.accounts.status"))
def accounts_status(
    ctx: typer.Context,
    account_id: str,
    status: Annotated[str, typer.Argument(help=_cli_text("cli.help.pay.accounts_status.status"))],
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Freeze, unfreeze (open) or close an account."""
    _run(
        ctx,
        data,
        lambda p, g: service.set_account_status(p, g, account_id=account_id, status=status),
    )


@accounts_app.command("iban", help=_cli_text("cli.help.pay.accounts.iban"))
def accounts_iban(
    ctx: typer.Context,
    account_id: str,
    iban: Annotated[
        str | None, typer.Argument(help=_cli_text("cli.help.pay.accounts_iban.iban"))
    ] = None,
    remove: Annotated[
        bool, typer.Option("--remove", help=_cli_text("cli.help.pay.accounts_iban.remove"))
    ] = False,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Name an account by an IBAN in this node's directory (for pain.001 files), forget it
    (--remove), or show it masked (no IBAN given).  Audited as the operator."""
    if iban is not None and remove:
        raise typer.BadParameter("give an IBAN or --remove, not both")
    if remove:
        _run(
            ctx, data, lambda p, _g: service.remove_iban(p, account_id=account_id, actor="operator")
        )
    elif iban is not None:
        _run(
            ctx,
            data,
            lambda p, _g: service.register_iban(
                p, account_id=account_id, iban=iban, actor="operator"
            ),
        )
    else:
        _run(ctx, data, lambda p, _g: service.account_iban(p, account_id=account_id))


@pay_app.command("transfer", help=_cli_text("cli.help.pay.transfer"))
def transfer(
    ctx: typer.Context,
    transfer_id: Annotated[
        str, typer.Argument(help=_cli_text("cli.help.pay.transfer.transfer_id"))
    ],
    debit: Annotated[
        str | None, typer.Option("--from", help=_cli_text("cli.help.pay.transfer.debit"))
    ] = None,
    credit: Annotated[
        str | None, typer.Option("--to", help=_cli_text("cli.help.pay.transfer.credit"))
    ] = None,
    amount: Annotated[
        int | None, typer.Option(min=1, help=_cli_text("cli.help.pay.transfer.amount"))
    ] = None,
    currency: Annotated[str | None, typer.Option()] = None,
    pending: Annotated[
        bool, typer.Option("--pending", help=_cli_text("cli.help.pay.transfer.pending"))
    ] = False,
    timeout_ms: Annotated[
        int | None, typer.Option(min=1, help=_cli_text("cli.help.pay.transfer.timeout_ms"))
    ] = None,
    post: Annotated[
        str | None, typer.Option("--post", help=_cli_text("cli.help.pay.transfer.post"))
    ] = None,
    void: Annotated[
        str | None, typer.Option("--void", help=_cli_text("cli.help.pay.transfer.void"))
    ] = None,
    product: Annotated[
        str | None, typer.Option(help=_cli_text("cli.help.pay.transfer.product"))
    ] = None,
    reference: Annotated[str | None, typer.Option()] = None,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """A transfer, a hold (--pending), or a post (--post HOLD) or void (--void HOLD) of one."""
    if sum((pending, post is not None, void is not None)) > 1:
        raise typer.BadParameter("at most one of --pending, --post, --void")
    request: dict[str, Any] = {"id": transfer_id}
    for name, value in (
        ("debit_account_id", debit),
        ("credit_account_id", credit),
        ("amount", amount),
        ("currency", currency),
        ("timeout_ms", timeout_ms),
        ("product", product),
        ("reference", reference),
        ("pending_id", post or void),
    ):
        if value is not None:
            request[name] = value
    if pending:
        request["flags"] = ["pending"]
    elif post is not None:
        request["flags"] = ["post_pending_transfer"]
    elif void is not None:
        request["flags"] = ["void_pending_transfer"]
    _run(ctx, data, lambda p, g: service.transfer(p, g, request=request))


@fx_app.command("quote", help=_cli_text("cli.help.pay.fx.quote"))
def fx_quote(
    ctx: typer.Context,
    quote_id: str,
    source: Annotated[str, typer.Option(help=_cli_text("cli.help.pay.fx_quote.source"))],
    target: Annotated[str, typer.Option(help=_cli_text("cli.help.pay.fx_quote.target"))],
    rate: Annotated[str, typer.Option(help=_cli_text("cli.help.pay.fx_quote.rate"))],
    source_liquidity: Annotated[
        str, typer.Option(help=_cli_text("cli.help.pay.fx_quote.source_liquidity"))
    ],
    target_liquidity: Annotated[
        str, typer.Option(help=_cli_text("cli.help.pay.fx_quote.target_liquidity"))
    ],
    spread_bps: Annotated[int, typer.Option(min=0, max=1000)] = 0,
    ttl_s: Annotated[
        int, typer.Option(min=1, max=86_400, help=_cli_text("cli.help.pay.fx_quote.ttl_s"))
    ] = 3600,
    spread_account: Annotated[str | None, typer.Option()] = None,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Publish a firm quote as this node's member."""

    def create(platform: Any, gateway: Any) -> Any:
        quote: dict[str, Any] = {
            "id": quote_id,
            "source_currency": source,
            "target_currency": target,
            "rate": rate,
            "spread_bps": spread_bps,
            "expires_at_ms": platform.node.clock() + ttl_s * 1000,
            "source_liquidity_account_id": source_liquidity,
            "target_liquidity_account_id": target_liquidity,
        }
        if spread_account is not None:
            quote["spread_account_id"] = spread_account
        return service.create_fx_quote(platform, gateway, quote=quote)

    _run(ctx, data, create)


@fx_app.command("pay", help=_cli_text("cli.help.pay.fx.pay"))
def fx_pay(
    ctx: typer.Context,
    payment_id: str,
    quote_id: Annotated[str, typer.Option("--quote")],
    debit: Annotated[str, typer.Option("--from")],
    credit: Annotated[str, typer.Option("--to")],
    source_amount: Annotated[int | None, typer.Option(min=1)] = None,
    target_amount: Annotated[int | None, typer.Option(min=1)] = None,
    reference: Annotated[str | None, typer.Option()] = None,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Pay across currencies under a quote (give one of the amounts)."""
    payment: dict[str, Any] = {
        "id": payment_id,
        "quote_id": quote_id,
        "debit_account_id": debit,
        "credit_account_id": credit,
    }
    for name, value in (
        ("source_amount", source_amount),
        ("target_amount", target_amount),
        ("reference", reference),
    ):
        if value is not None:
            payment[name] = value
    _run(ctx, data, lambda p, g: service.pay_fx(p, g, payment=payment))


@pay_app.command("trial-balance", help=_cli_text("cli.help.pay.trial_balance"))
def trial_balance(
    ctx: typer.Context,
    chain: Annotated[
        bool, typer.Option(help=_cli_text("cli.help.pay.trial_balance.chain"))
    ] = False,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Per currency: Σ debits = Σ credits, and the query tables checked against the chain.
    Exits 1 if any currency does not balance or any projected value differs from the chain."""
    with _platform(ctx, data) as (platform, _gateway):
        result = service.trial_balance(platform, source="chain" if chain else "projection")
    _print(result)
    if not result["ok"]:
        raise typer.Exit(1)


@pay_app.command("import-pain001", help=_cli_text("cli.help.pay.import_pain001"))
def import_pain001(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    linked: Annotated[
        bool, typer.Option(help=_cli_text("cli.help.pay.import_pain001.linked"))
    ] = False,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Book a pain.001.001.09 file; every rejected transfer is named with its code."""
    xml = file.read_bytes()
    _run(ctx, data, lambda p, g: service.import_pain001(p, g, xml=xml, linked=linked))


@pay_app.command("export-pacs008", help=_cli_text("cli.help.pay.export_pacs008"))
def export_pacs008(
    ctx: typer.Context,
    transfer_id: str,
    debtor_agent_bic: Annotated[
        str, typer.Option(help=_cli_text("cli.help.pay.export_pacs008.debtor_agent_bic"))
    ],
    creditor_agent_bic: Annotated[
        str, typer.Option(help=_cli_text("cli.help.pay.export_pacs008.creditor_agent_bic"))
    ],
    data: DataOption = DEFAULT_DATA,
) -> None:
    """An FX payment as a pacs.008.001.08 message (XML on stdout)."""
    _run(
        ctx,
        data,
        lambda p, _g: service.export_pacs008(
            p,
            transfer_id=transfer_id,
            debtor_agent_bic=debtor_agent_bic,
            creditor_agent_bic=creditor_agent_bic,
        ),
    )


@pay_app.command("export-camt053", help=_cli_text("cli.help.pay.export_camt053"))
def export_camt053(
    ctx: typer.Context,
    account_id: str,
    from_ms: Annotated[
        int, typer.Option(min=0, help=_cli_text("cli.help.pay.export_camt053.from_ms"))
    ] = 0,
    to_ms: Annotated[
        int | None, typer.Option(help=_cli_text("cli.help.pay.export_camt053.to_ms"))
    ] = None,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """An account's statement as a camt.053.001.08 message (XML on stdout)."""
    _run(
        ctx,
        data,
        lambda p, _g: service.export_camt053(
            p,
            account_id=account_id,
            from_ms=from_ms,
            to_ms=to_ms if to_ms is not None else p.node.head.time_ms + 1,
        ),
    )
