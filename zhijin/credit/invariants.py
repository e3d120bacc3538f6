"""Credit's named invariants over a whole chain state: each a small function returning its
problems (empty when it holds), registered by name in `INVARIANTS`.  Each recomputes from the
records; none trusts a counter."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from zhijin.chain import limits as chain_limits
from zhijin.chain.contract import StateReader
from zhijin.credit.codes import CreditError
from zhijin.credit.policy import parse_policy
from zhijin.credit.records import ModelStatus, keys

__all__ = ["INVARIANTS", "check_invariants"]

PROBLEMS_MAX = 100  # a report stays readable however broken the state is


def _scan(reader: StateReader, prefix: str) -> Iterator[tuple[str, Any]]:
    """Every record under `prefix`, page by page (a bounded query per page)."""
    after = ""
    while page := reader.scan(prefix, after, chain_limits.SCAN_ROWS_MAX):
        yield from page
        after = page[-1][0]


def _model_problem(model: dict[str, Any]) -> str | None:
    status, approver = model["status"], model["approver"]
    if approver is not None and approver == model["trainer"]:
        return f"model {model['sha256']} was approved by its own trainer {approver}"
    if status == ModelStatus.REGISTERED and approver is not None:
        return f"model {model['sha256']} is only registered but names an approver"
    if status == ModelStatus.APPROVED and (approver is None or model["approved_height"] is None):
        return f"model {model['sha256']} is approved without an approver and height"
    if status == ModelStatus.RETIRED and model["retired_height"] is None:
        return f"model {model['sha256']} is retired without a height"
    if status not in (ModelStatus.REGISTERED, ModelStatus.APPROVED, ModelStatus.RETIRED):
        return f"model {model['sha256']} has unknown status {status!r}"
    return None


def models_are_maker_checked(reader: StateReader) -> list[str]:
    """No model is approved by its trainer; a status agrees with its approval fields."""
    problems = []
    for _, model in _scan(reader, keys.MODEL):
        problem = _model_problem(model)
        if problem is not None:
            problems.append(problem)
            if len(problems) >= PROBLEMS_MAX:
                break
    return problems


def _anchor_problem(reader: StateReader, anchor: dict[str, Any]) -> str | None:
    name = anchor["decision_id"]
    model = reader.get(keys.model(anchor["model_sha256"]))
    if model is None:
        return f"decision {name} names unregistered model {anchor['model_sha256']}"
    if model["member"] != anchor["member"]:
        return f"decision {name} used another member's model"
    approved = model["approved_height"]
    retired = model["retired_height"]
    if approved is None or approved > anchor["height"]:
        return f"decision {name} at height {anchor['height']} predates its model's approval"
    if retired is not None and retired < anchor["height"]:
        return f"decision {name} at height {anchor['height']} came after its model was retired"
    policy = reader.get(keys.policy(anchor["policy_id"], anchor["policy_version"]))
    if policy is None or policy["member"] != anchor["member"]:
        return f"decision {name} names a policy version this member never saved"
    return None


def decisions_used_approved_models(reader: StateReader) -> list[str]:
    """Every anchored decision used its member's model while approved, and a saved policy."""
    problems = []
    for _, anchor in _scan(reader, keys.DECISION):
        problem = _anchor_problem(reader, anchor)
        if problem is not None:
            problems.append(problem)
            if len(problems) >= PROBLEMS_MAX:
                break
    return problems


def policies_are_coherent(reader: StateReader) -> list[str]:
    """Versions of a policy run 1..head without gaps, from one member, each coherent."""
    problems: list[str] = []
    versions: dict[str, list[int]] = {}
    for _, policy in _scan(reader, keys.POLICY):
        versions.setdefault(policy["policy_id"], []).append(policy["version"])
        try:
            parse_policy(policy["rules"])
        except CreditError as error:
            problems.append(f"policy {policy['policy_id']} v{policy['version']}: {error.message}")
    for key, head in _scan(reader, keys.POLICY_HEAD):
        policy_id = key[len(keys.POLICY_HEAD) :]
        found = sorted(versions.pop(policy_id, []))
        if found != list(range(1, head["version"] + 1)):
            problems.append(f"policy {policy_id} head says v{head['version']}, chain has {found}")
    problems += [f"policy {policy_id} has versions but no head" for policy_id in versions]
    return problems[:PROBLEMS_MAX]


INVARIANTS: tuple[tuple[str, Callable[[StateReader], list[str]]], ...] = (
    ("models_are_maker_checked", models_are_maker_checked),
    ("decisions_used_approved_models", decisions_used_approved_models),
    ("policies_are_coherent", policies_are_coherent),
)


def check_invariants(reader: StateReader) -> list[str]:
    """Every broken invariant as "name: problem"."""
    return [f"{name}: {problem}" for name, check in INVARIANTS for problem in check(reader)]
