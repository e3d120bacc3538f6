"""What the request plumbing and the domains use of the node host: the `Host` protocol.

The host itself (`Platform`, solo; `ClusterPlatform`, a cluster peer) lives in the composition
root, zhijin/node, which sits above every domain; code below it names this protocol instead, so
no module outside zhijin/node imports the root (`make lint` holds it).  The root's hosts
satisfy it structurally.  A domain's CLI opens a host through `CliRoot`, which the root's CLI
puts on the command's context (a command asks for it with a `typer.Context` parameter).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import typer

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from zhijin.chain.genesis import Genesis
    from zhijin.chain.node import Node
    from zhijin.chain.store import ChainStore
    from zhijin.platform.notifications import NotificationHub
    from zhijin.platform.projections import ProjectionRunner
    from zhijin.platform.settings import CoreSettings

__all__ = ["CliRoot", "Host", "cli_root"]


class Host(Protocol):
    """A running node on one data directory, with its services built once by the root."""

    settings: CoreSettings
    genesis: Genesis
    store: ChainStore
    node: Node
    platform_engine: Engine
    projections: ProjectionRunner
    notifications: NotificationHub

    def final_height(self) -> int: ...

    def status(self) -> dict[str, Any]: ...

    def __enter__(self) -> Host: ...

    def __exit__(self, *exc: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class CliRoot:
    """What the root's CLI hands its domains' commands: the node's settings for a data
    directory (every module's section, from ZHIJIN_*), how to open a host on them, every
    module's vault schemas (the identity CLI's key rotation reads them), and the notary's
    anchors over a stopped node's chain store and platform database (`audit verify` reads the
    audit log's anchored heads there: identity's `NotaryAnchors` port)."""

    settings: Callable[[Path], CoreSettings]
    open_host: Callable[[CoreSettings], Host]
    vault_schemas: Callable[[], Mapping[str, Any]]
    anchor_reader: Callable[[ChainStore, Engine], Any]


def cli_root(ctx: typer.Context) -> CliRoot:
    """The `CliRoot` the root's CLI put on the command's context (`ctx`)."""
    root = ctx.find_root().obj
    if not isinstance(root, CliRoot):
        raise RuntimeError("a domain command runs under the root CLI (zhijin.cli), which wires it")
    return root
