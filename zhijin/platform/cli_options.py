"""Options the `zhijin` command's groups share: the data directory, named once (its help in the
terminal's language, docs/i18n.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zhijin.platform.i18n import cli_text as _cli_text

__all__ = ["DEFAULT_DATA", "DataOption"]

DEFAULT_DATA = Path("./var")
DataOption = Annotated[
    Path,
    typer.Option(
        "--data",
        envvar="ZHIJIN_DATA",
        help=_cli_text("cli.help.zhijin.data_option"),
        show_default=True,
    ),
]
