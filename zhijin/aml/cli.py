"""`zhijin aml ...`: the rules in force, and the evaluation on the simulator (which rewrites its
section of docs/aml.md with `--write`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from zhijin.platform.i18n import cli_text as _cli_text

__all__ = ["aml_app"]

aml_app = typer.Typer(help=_cli_text("cli.help.aml"), no_args_is_help=True)
BEGIN, END = "<!-- evaluation:begin -->", "<!-- evaluation:end -->"


@aml_app.command("rules", help=_cli_text("cli.help.aml.rules"))
def rules() -> None:
    """Print the rules in force (large-value thresholds, detector parameters) as JSON."""
    from zhijin.aml.rules import default_rules

    typer.echo(json.dumps(default_rules().model_dump(mode="json"), indent=2, ensure_ascii=False))


@aml_app.command("evaluate", help=_cli_text("cli.help.aml.evaluate"))
def evaluate(
    seed: Annotated[int, typer.Option(help=_cli_text("cli.help.aml.evaluate.seed"))] = 20_261_203,
    days: Annotated[
        int, typer.Option(min=20, max=365, help=_cli_text("cli.help.aml.evaluate.days"))
    ] = 60,
    write: Annotated[
        Path | None, typer.Option(help=_cli_text("cli.help.aml.evaluate.write"))
    ] = None,
) -> None:
    """Simulate payments with laundering typologies and print recall and precision."""
    from zhijin.aml.evaluation import evaluate as run
    from zhijin.aml.evaluation import markdown
    from zhijin.aml.simulate import SimulationParams

    table = markdown(run(SimulationParams(seed=seed, days=days)))
    typer.echo(table)
    if write is not None:
        text = write.read_text(encoding="utf-8")
        if BEGIN not in text or END not in text:
            typer.echo(_cli_text("cli.aml.no_section", path=write, begin=BEGIN, end=END), err=True)
            raise typer.Exit(1)
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        write.write_text(f"{head}{BEGIN}\n{table}{END}{tail}", encoding="utf-8")
