"""Each member's monitoring rules on chain: propose a version, have a second officer decide it,
read the versions and the rules in force (contract.py holds them, the monitor's
`aml_rule_sets` table shows them).

An approved version judges the member's customers from the block after its approval; a member
that never approved one is judged by the default file (`rules/pboc-2016-3.json`).  Alerts
record the version that raised them.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import select

from zhijin.aml.codes import AmlError, Code
from zhijin.aml.contract import CONTRACT_NAME, RuleSetStatus
from zhijin.aml.expected import AmlHost
from zhijin.aml.monitor import AmlProjection, rule_sets_table
from zhijin.aml.rules import RuleSet, default_rules, parse_rules
from zhijin.platform.gateway import MemberGateway
from zhijin.platform.projections import await_visible

__all__ = ["decide", "in_force", "list_versions", "propose"]

log = logging.getLogger("zhijin.aml")


def _submit(host: AmlHost, gateway: MemberGateway, method: str, args: dict[str, Any]) -> Any:
    result = gateway.submit(CONTRACT_NAME, method, args)
    if result["status"] != "ok":
        raise AmlError(Code(result["code"]), result.get("message") or result["code"])
    await_visible(host.projections, result, projection=AmlProjection.name)
    log.info("aml %s %s at height %s", method, args.get("version"), result["height"])
    return {**result["return"], "height": result["height"], "tx_hash": result["tx_hash"]}


def propose(
    host: AmlHost,
    gateway: MemberGateway,
    *,
    version: str,
    rules: RuleSet,
    officer: str,
    reason: str,
) -> dict[str, Any]:
    """Propose `rules` as the member's `version` (its own `version` field is set to it)."""
    body = rules.model_copy(update={"version": version}).model_dump(mode="json")
    args = {"version": version, "rules": body, "officer": officer, "reason": reason}
    return dict(_submit(host, gateway, "propose_rules", args))


def decide(
    host: AmlHost,
    gateway: MemberGateway,
    *,
    version: str,
    officer: str,
    approve: bool,
    reason: str,
) -> dict[str, Any]:
    args = {"version": version, "officer": officer, "approve": approve, "reason": reason}
    return dict(_submit(host, gateway, "decide_rules", args))


def _view(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    data["rules"] = json.loads(data["rules"])
    return data


def list_versions(host: AmlHost, *, member: str, limit: int = 50) -> list[dict[str, Any]]:
    """The member's versions, the newest proposal first."""
    t = rule_sets_table
    with host.platform_engine.connect() as conn:
        rows = conn.execute(
            select(t)
            .where(t.c.member == member)
            .order_by(t.c.proposed_height.desc(), t.c.version)
            .limit(limit)
        ).all()
    return [_view(row) for row in rows]


def get_version(host: AmlHost, *, member: str, version: str) -> dict[str, Any]:
    t = rule_sets_table
    with host.platform_engine.connect() as conn:
        row = conn.execute(select(t).where(t.c.member == member, t.c.version == version)).first()
    if row is None:
        raise AmlError(Code.RULE_SET_NOT_FOUND, f"no version {version} of this member's rules")
    return _view(row)


def in_force(host: AmlHost, *, member: str) -> tuple[RuleSet, dict[str, Any] | None]:
    """The rules judging the member's customers in the next block, and their version's row
    (None: the default file)."""
    t = rule_sets_table
    with host.platform_engine.connect() as conn:
        row = conn.execute(
            select(t)
            .where(t.c.member == member, t.c.status == RuleSetStatus.APPROVED)
            .order_by(t.c.from_height.desc())
            .limit(1)
        ).first()
    if row is None:
        return default_rules(), None
    view = _view(row)
    return parse_rules(view["rules"]), view
