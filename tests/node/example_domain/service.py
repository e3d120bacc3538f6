"""Off-chain guestbook functions: keyword-only, shared by the API (and a CLI, a demo)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from tests.node.example_domain import projection
from tests.node.example_domain.codes import Code, GuestbookError
from tests.node.example_domain.contract import CONTRACT_NAME
from zhijin.chain.errors import ContractError
from zhijin.platform.gateway import MemberGateway
from zhijin.platform.projections import ProjectionRunner, await_visible

__all__ = ["list_entries", "sign"]


def _refusal(code: str, message: str) -> ContractError:
    """The contract's code as the API's problem: one of ours with its status, or the runtime's
    own (`contract_not_active`, ...) as it came."""
    if code in set(Code):
        return GuestbookError.from_result(Code(code), message)
    return ContractError(code, message)


def sign(
    gateway: MemberGateway,
    projections: ProjectionRunner,
    *,
    entry_id: str,
    message: str,
    sender: str | None = None,
) -> dict[str, Any]:
    """Sign through this node's member, in its own name or vouching for `sender` (a customer's
    DID); returns {"entry", "exists"} once the entry list shows it (CommittedNotYetVisible, the
    API's 202, when the table is late)."""
    args = {"id": entry_id, "message": message}
    result = gateway.submit(CONTRACT_NAME, "sign", args, sender=sender)
    if result["status"] != "ok":
        raise _refusal(result["code"], result["message"])
    await_visible(projections, result, projection=projection.GuestbookProjection.name)
    value: dict[str, Any] = result["return"]
    return value


def list_entries(engine: Engine, *, before_height: int | None, limit: int) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = projection.list_entries(conn, before_height=before_height, limit=limit)
    return {
        "entries": rows,
        "next_before_height": rows[-1]["height"] if len(rows) == limit else None,
    }
