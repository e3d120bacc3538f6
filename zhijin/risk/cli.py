"""`zhijin risk ...`: the shipped rules and tier policy, and a rule file's save-time check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from zhijin.platform.i18n import cli_text as _cli_text

__all__ = ["risk_app"]

risk_app = typer.Typer(help=_cli_text("cli.help.risk"), no_args_is_help=True)


@risk_app.command("rules", help=_cli_text("cli.help.risk.rules"))
def rules() -> None:
    """Print the rules the release ships (seeded as version 1 on a new node) as JSON."""
    from zhijin.risk.rules import default_rules

    bodies = [rule.model_dump(mode="json") for rule in default_rules()]
    typer.echo(json.dumps(bodies, indent=2, ensure_ascii=False))


@risk_app.command("tiers", help=_cli_text("cli.help.risk.tiers"))
def tiers() -> None:
    """Print the tier policy in force (thresholds, fail-open/closed limit) as JSON."""
    from zhijin.risk.rules import default_policy

    typer.echo(json.dumps(default_policy().model_dump(mode="json"), indent=2, ensure_ascii=False))


@risk_app.command("check", help=_cli_text("cli.help.risk.check"))
def check_file(
    path: Annotated[Path, typer.Argument(help=_cli_text("cli.help.risk.check.path"))],
) -> None:
    """Check a rule as saving it would: the expression parses and type-checks against the
    feature names, and its test cases give the answers they state."""
    from zhijin.chain.errors import ZhijinError
    from zhijin.risk.rules import RuleBody, check_rule

    try:
        compiled = check_rule(RuleBody.model_validate_json(path.read_bytes()), 0)
    except ZhijinError as error:
        typer.echo(_cli_text("cli.error", message=f"{error.code}: {error.message}"), err=True)
        raise typer.Exit(1) from None
    except ValueError as error:
        typer.echo(_cli_text("cli.error", message=str(error)), err=True)
        raise typer.Exit(1) from None
    names = ", ".join(sorted(compiled.expression.names))
    typer.echo(_cli_text("cli.risk.rule_ok", rule=compiled.body.id, names=names))


@risk_app.command("evaluate", help=_cli_text("cli.help.risk.evaluate"))
def evaluate(
    seed: Annotated[int, typer.Option(help=_cli_text("cli.help.risk.evaluate.seed"))] = 20_261_203,
    days: Annotated[
        int, typer.Option(min=6, max=365, help=_cli_text("cli.help.risk.evaluate.days"))
    ] = 60,
    customers: Annotated[
        int, typer.Option(min=20, max=100_000, help=_cli_text("cli.help.risk.evaluate.customers"))
    ] = 400,
) -> None:
    """Simulate payments with fraud scenarios and print the time-split evaluation: rules alone
    against rules + models (ROC-AUC, average precision, recall at 1% FPR)."""
    from zhijin.risk.evaluation import evaluate as run
    from zhijin.risk.evaluation import markdown
    from zhijin.risk.simulate import SimulationParams

    typer.echo(markdown(run(SimulationParams(seed=seed, days=days, customers=customers))))
