"""`zhijin lending ...`: publish the LPR, create and approve products (maker-checker: two
officers), apply, work the queue, disburse, repay early, show a loan, its schedule and history,
a borrower's loans, the book by bucket, and run one collections pass of the keeper.

Commands open the data directory's node (stop a server holding it first, or use the HTTP API
with the operator token).  Officers are named by their staff user ids (`--officer`), exactly
as the API records the signed-in user.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from zhijin.platform.i18n import cli_text as _cli_text

__all__ = ["lending_app"]

lending_app = typer.Typer(help=_cli_text("cli.help.lending"), no_args_is_help=True)

DataOption = Annotated[
    Path,
    typer.Option(
        "--data",
        envvar="ZHIJIN_DATA",
        help=_cli_text("cli.help.zhijin.data_option"),
        show_default=True,
    ),
]
DEFAULT_DATA = Path("./var")
OfficerOption = Annotated[
    str, typer.Option("--officer", help=_cli_text("cli.help.lending.officer_option"))
]


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _fail(message: str, code: int = 1) -> None:
    typer.echo(_cli_text("cli.error", message=message), err=True)
    raise typer.Exit(code)


@contextmanager
def _host(ctx: typer.Context, data: Path) -> Iterator[tuple[Any, Any]]:
    """The data directory's node and a member gateway over it; an error names what failed,
    in English and Chinese."""
    from zhijin.chain.errors import ZhijinError
    from zhijin.lending.codes import MESSAGES, Code
    from zhijin.platform.data_dir import DataDirError
    from zhijin.platform.gateway import MemberGateway
    from zhijin.platform.host import cli_root

    try:
        root = cli_root(ctx)
        platform = root.open_host(root.settings(data))
    except DataDirError as exc:
        _fail(f"{exc.message} (a running server: use its API with the operator token)")
    with platform:
        try:
            yield platform, MemberGateway(platform.node)
        except ZhijinError as exc:
            zh = MESSAGES[Code(exc.code)][0] if exc.code in set(Code) else ""
            _fail(f"{exc.code}: {exc.message}" + (f" / {zh}" if zh else ""))


@lending_app.command("set-lpr", help=_cli_text("cli.help.lending.set_lpr"))
def set_lpr(
    ctx: typer.Context,
    tenor: Annotated[str, typer.Option(help=_cli_text("cli.help.lending.set_lpr.tenor"))],
    rate_bps: Annotated[int, typer.Option(help=_cli_text("cli.help.lending.set_lpr.rate_bps"))],
    effective_day: Annotated[
        str, typer.Option(help=_cli_text("cli.help.lending.set_lpr.effective_day"))
    ],
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Publish an LPR quote on chain."""
    from zhijin.lending import service

    with _host(ctx, data) as (platform, gateway):
        _print_json(
            service.set_lpr(
                platform, gateway, tenor=tenor, rate_bps=rate_bps, effective_day=effective_day
            )
        )


@lending_app.command("create-product", help=_cli_text("cli.help.lending.create_product"))
def create_product(
    ctx: typer.Context,
    terms_file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help=_cli_text("cli.help.lending.create_product.terms_file"),
        ),
    ],
    officer: OfficerOption,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Create a product from a JSON file of its terms (see docs/lending.md)."""
    from pydantic import ValidationError

    from zhijin.lending import service
    from zhijin.lending.schemas import ProductIn

    try:
        terms = ProductIn.model_validate_json(terms_file.read_text(encoding="utf-8"))
    except ValidationError as exc:
        for error in exc.errors():
            typer.echo(f"  {'.'.join(map(str, error['loc']))}: {error['msg']}", err=True)
        _fail(
            "product_invalid: the product's shape or values are invalid / 贷款产品的结构或取值无效"
        )
    with _host(ctx, data) as (platform, gateway):
        _print_json(
            service.create_product(
                platform, gateway, terms=terms.model_dump(mode="json"), officer=officer
            )
        )


@lending_app.command("approve-product", help=_cli_text("cli.help.lending.approve_product"))
def approve_product(
    ctx: typer.Context, product_id: str, officer: OfficerOption, data: DataOption = DEFAULT_DATA
) -> None:
    """Approve a product (a second officer, never its creator)."""
    from zhijin.lending import service

    with _host(ctx, data) as (platform, gateway):
        _print_json(
            service.approve_product(platform, gateway, product_id=product_id, officer=officer)
        )


@lending_app.command("products", help=_cli_text("cli.help.lending.products"))
def products(ctx: typer.Context, data: DataOption = DEFAULT_DATA) -> None:
    """This member's products."""
    from zhijin.lending import service

    with _host(ctx, data) as (platform, _gateway):
        _print_json(service.list_products(platform, member=platform.node.key.did))


@lending_app.command("apply", help=_cli_text("cli.help.lending.apply"))
def apply(
    ctx: typer.Context,
    loan_id: str,
    product_id: Annotated[str, typer.Option()],
    borrower: Annotated[str, typer.Option(help=_cli_text("cli.help.lending.apply.borrower"))],
    amount_minor: Annotated[int, typer.Option(min=1)],
    decision_id: Annotated[str, typer.Option(help=_cli_text("cli.help.lending.apply.decision_id"))],
    monthly_income_minor: Annotated[int, typer.Option(min=1)],
    repayment_account_id: Annotated[str, typer.Option()],
    officer: OfficerOption,
    monthly_debt_minor: Annotated[int, typer.Option(min=0)] = 0,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Key an application for a customer (KYC level 0: a product needing KYC queues it)."""
    from zhijin.lending import service

    with _host(ctx, data) as (platform, gateway):
        _print_json(
            service.apply(
                platform, gateway, loan_id=loan_id, product_id=product_id, borrower=borrower,
                applied_by=officer, amount_minor=amount_minor, decision_id=decision_id,
                monthly_income_minor=monthly_income_minor, monthly_debt_minor=monthly_debt_minor,
                kyc_level=0, repayment_account_id=repayment_account_id,
            )
        )  # fmt: skip


@lending_app.command("queue", help=_cli_text("cli.help.lending.queue"))
def queue(ctx: typer.Context, data: DataOption = DEFAULT_DATA) -> None:
    """Applications waiting for an officer, with the conditions that failed."""
    from zhijin.lending import service

    with _host(ctx, data) as (platform, _gateway):
        _print_json(service.queue(platform, member=platform.node.key.did))


@lending_app.command("review", help=_cli_text("cli.help.lending.review"))
def review(
    ctx: typer.Context,
    loan_id: str,
    officer: OfficerOption,
    reason: Annotated[str, typer.Option()],
    reject: Annotated[
        bool, typer.Option("--reject", help=_cli_text("cli.help.lending.review.reject"))
    ] = False,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Approve (or --reject) a queued application, with a reason."""
    from zhijin.lending import service

    with _host(ctx, data) as (platform, gateway):
        _print_json(
            service.review(
                platform, gateway, loan_id=loan_id, officer=officer, approve=not reject,
                reason=reason,
            )
        )  # fmt: skip


@lending_app.command("disburse", help=_cli_text("cli.help.lending.disburse"))
def disburse(ctx: typer.Context, loan_id: str, data: DataOption = DEFAULT_DATA) -> None:
    """Disburse an approved loan: rate fixed, schedule written, money paid out."""
    from zhijin.lending import service

    with _host(ctx, data) as (platform, gateway):
        _print_json(service.disburse(platform, gateway, loan_id=loan_id))


@lending_app.command("repay", help=_cli_text("cli.help.lending.repay"))
def repay(
    ctx: typer.Context,
    loan_id: str,
    payment_id: Annotated[str, typer.Option()],
    amount_minor: Annotated[
        int | None, typer.Option(min=1, help=_cli_text("cli.help.lending.repay.amount_minor"))
    ] = None,
    then: Annotated[str | None, typer.Option(help=_cli_text("cli.help.lending.repay.then"))] = None,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """Repay early from the borrower's account (the member acts as its custodian)."""
    from zhijin.lending import service

    mode = "full" if amount_minor is None else "partial"
    with _host(ctx, data) as (platform, gateway):
        _print_json(
            service.repay(
                platform, gateway, loan_id=loan_id, payment_id=payment_id, mode=mode,
                amount_minor=amount_minor, then=then,
            )
        )  # fmt: skip


@lending_app.command("show", help=_cli_text("cli.help.lending.show"))
def show(ctx: typer.Context, loan_id: str, data: DataOption = DEFAULT_DATA) -> None:
    """A loan, its transitions and its payments."""
    from zhijin.lending import service

    with _host(ctx, data) as (platform, _gateway):
        _print_json(
            {
                "loan": service.get_loan(platform, loan_id=loan_id),
                **service.history(platform, loan_id=loan_id),
            }
        )


@lending_app.command("loans", help=_cli_text("cli.help.lending.loans"))
def loans(
    ctx: typer.Context,
    borrower: Annotated[
        str | None, typer.Option(help=_cli_text("cli.help.lending.loans.borrower"))
    ] = None,
    status: Annotated[str | None, typer.Option()] = None,
    data: DataOption = DEFAULT_DATA,
) -> None:
    """This member's loans (one borrower's, one status)."""
    from zhijin.lending import service

    with _host(ctx, data) as (platform, _gateway):
        _print_json(
            service.list_loans(
                platform, member=platform.node.key.did, borrower=borrower, status=status
            )
        )


@lending_app.command("book", help=_cli_text("cli.help.lending.book"))
def book(ctx: typer.Context, data: DataOption = DEFAULT_DATA) -> None:
    """The loan book by status and delinquency bucket."""
    from zhijin.lending import service

    with _host(ctx, data) as (platform, _gateway):
        _print_json(service.book(platform, member=platform.node.key.did))


@lending_app.command("collect", help=_cli_text("cli.help.lending.collect"))
def collect(ctx: typer.Context, data: DataOption = DEFAULT_DATA) -> None:
    """Run one pass of the collections keeper now (idempotent: safe beside a running one)."""
    from zhijin.lending import service

    with _host(ctx, data) as (platform, gateway):
        _print_json(service.run_keeper_pass(platform, gateway))
