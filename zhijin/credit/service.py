"""Off-chain credit functions: keyword-only, shared by the API, the CLI, the demo and the bench.

Writes go through the member gateway (the node's member signs) and wait for credit's query
tables (`await_visible`: the API's 202 when they are late); reads come from those tables and
from credit's own off-chain tables (decision records, behavioural score history).

A decision: validate the applicant (`parse_applicant`, every wrong field named), complete it
with what the platform knows of a customer (repayments, tenure, inflows; another member's data
only with the customer's consent on chain), score it with this member's approved model whose
file still has its registered hash, apply the policy's latest version, store the record (the
applicant's fields sealed in the vault), and anchor the record's hash on chain.  A retry of the
same decision id with the same request answers the stored decision (`exists: true`) and
finishes its anchoring if an earlier attempt could not; another request under the same id is
refused (`exists_with_different_fields`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from zhijin.chain.codec import canonical, sha256
from zhijin.chain.errors import ContractError, NotFound, ZhijinError
from zhijin.credit import limits, projection, tables
from zhijin.credit.applicant import parse_applicant
from zhijin.credit.artifact import LoadedModel
from zhijin.credit.behaviour import BehaviourFacts, Contribution, behaviour_score, changes
from zhijin.credit.codes import Code, CreditError
from zhijin.credit.contract import CONTRACT_NAME
from zhijin.credit.decision import (
    OTHER_DATA_NONE,
    OTHER_DATA_NOT_USED,
    OTHER_DATA_USED,
    DecisionInputs,
    decide,
    record_sha256,
)
from zhijin.credit.expected import CONSENT_CATEGORY, CONSENT_PURPOSE, AccountFacts, CreditHost
from zhijin.credit.flows import CreditFlowsProjection
from zhijin.credit.policy import Policy, parse_policy
from zhijin.credit.records import ModelStatus
from zhijin.credit.registry import ModelStore
from zhijin.platform.gateway import MemberGateway
from zhijin.platform.projections import await_visible

__all__ = [
    "DecisionConflict",
    "NoApprovedModel",
    "approve_model",
    "behaviour",
    "behaviour_history",
    "decide_for",
    "get_decision",
    "get_model",
    "get_policy",
    "list_decisions",
    "list_models",
    "model_store",
    "record_repayment",
    "register_model",
    "replay",
    "retire_model",
    "save_policy",
]

log = logging.getLogger("zhijin.credit")

DAY_MS = 24 * 3600 * 1000
MONTH_MS = 30 * DAY_MS
PLATFORM_FACT_FIELDS = ("on_time_repayments", "late_repayments", "months_on_platform")


class DecisionConflict(ZhijinError):
    code = "exists_with_different_fields"
    http_status = 409


class NoApprovedModel(ZhijinError):
    code = "no_approved_model"
    http_status = 409


class PolicyNotFound(NotFound):
    code = "policy_not_found"


class DecisionNotFound(NotFound):
    code = "decision_not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


# -- the node's model store ---------------------------------------------------------------------
_stores: dict[Path, ModelStore] = {}  # by data directory: one store per node's files
_stores_lock = threading.Lock()
_policies: dict[tuple[str, int, str], Policy] = {}  # (policy id, version, member): immutable
POLICIES_CACHED_MAX = 256


def model_store(host: CreditHost) -> ModelStore:
    """The host's model files and scorers (one store per data directory, built on first use)."""
    data_dir = Path(host.settings.data).resolve()
    with _stores_lock:
        store = _stores.get(data_dir)
        if store is None:
            store = _stores[data_dir] = ModelStore(data_dir)
        return store


def _member(host: CreditHost) -> str:
    return host.node.key.did


def _submit(
    host: CreditHost, gateway: MemberGateway, method: str, args: dict[str, Any]
) -> dict[str, Any]:
    result = gateway.submit(CONTRACT_NAME, method, args)
    if result["status"] != "ok":
        code, message = result["code"], result.get("message") or ""
        if code in set(Code):
            raise CreditError(Code(code), message)
        raise ContractError(code, message)  # the runtime's own (contract_not_active, ...)
    await_visible(host.projections, result, projection=projection.CreditProjection.name)
    value: dict[str, Any] = result["return"]
    return {**value, "height": result["height"], "tx_hash": result["tx_hash"]}


# -- models -------------------------------------------------------------------------------------
def register_model(
    host: CreditHost,
    gateway: MemberGateway,
    *,
    trainer: str,
    path: Path | None = None,
    content: bytes | None = None,
) -> dict[str, Any]:
    """Put a model file into this node's store and register its hash, trained by `trainer`."""
    store = model_store(host)
    if (path is None) == (content is None):
        raise ValueError("give the model as a path or as bytes")
    sha = store.add(path) if path is not None else store.add_bytes(content or b"")
    model = store.model(sha)
    args = {
        "sha256": sha,
        "name": _chain_name(model.name),
        "version": _chain_version(model),
        "card_sha256": card_sha256(model.card),
        "trainer": trainer,
    }
    answer = _submit(host, gateway, "register_model", args)
    log.info("model %s registered by %s (exists=%s)", sha, trainer, answer["exists"])
    return answer


def card_sha256(card: Mapping[str, Any]) -> str:
    """SHA-256 of the model card as sorted, compact JSON: the card holds floats (metrics,
    parameters), so it is hashed as the file writes it, never as chain data."""
    text = json.dumps(card, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return sha256(text.encode("utf-8")).hex()


def _chain_name(name: str) -> str:
    """The card's name within the chain's alphabet for model names (a-z 0-9 _ -, 48 at most)."""
    cleaned = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_") or "model"
    return cleaned[: limits.MODEL_NAME_CHARS_MAX]


def _chain_version(model: LoadedModel) -> str:
    """When it was trained, compact ("20261202T170000Z"): the card's trained_at."""
    trained_at = str(model.card.get("trained_at") or "")
    compact = re.sub(r"[^0-9T]", "", trained_at.split("+", 1)[0])
    return (compact + "Z") if compact else model.sha256[:12]


def approve_model(
    host: CreditHost, gateway: MemberGateway, *, sha256_hex: str, approver: str
) -> dict[str, Any]:
    """A second officer approves a registered model; its file must be here and intact."""
    model_store(host).model(sha256_hex)  # refuses a missing or tampered file, naming it
    answer = _submit(host, gateway, "approve_model", {"sha256": sha256_hex, "approver": approver})
    log.info("model %s approved by %s", sha256_hex, approver)
    return answer


def retire_model(
    host: CreditHost, gateway: MemberGateway, *, sha256_hex: str, officer: str
) -> dict[str, Any]:
    return _submit(host, gateway, "retire_model", {"sha256": sha256_hex, "officer": officer})


def get_model(host: CreditHost, *, sha256_hex: str) -> dict[str, Any]:
    with host.platform_engine.connect() as conn:
        row = projection.get_model(conn, sha256_hex)
    if row is None:
        raise ModelNotFound(message=f"no model {sha256_hex} is registered")
    card = None
    path = model_store(host).path(sha256_hex)
    if path.exists():
        try:
            card = model_store(host).model(sha256_hex).card
        except ZhijinError as error:  # tampered: say so instead of showing its card
            row["file_problem"] = error.code
    return {**row, "card": card}


def list_models(
    host: CreditHost,
    *,
    member: str | None,
    status: str | None = None,
    after_sha256: str | None = None,
    limit: int = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    with host.platform_engine.connect() as conn:
        rows = projection.list_models(
            conn, member=member, status=status, after_sha256=after_sha256, limit=limit
        )
    return {"models": rows, "next_after_sha256": rows[-1]["sha256"] if len(rows) == limit else None}


def _approved_model(host: CreditHost, model_sha256: str | None) -> str:
    """The model that decides: the one named, or this member's latest approved one."""
    member = _member(host)
    table = projection.models_table
    with host.platform_engine.connect() as conn:
        query = select(table.c.sha256).where(
            (table.c.member == member) & (table.c.status == ModelStatus.APPROVED)
        )
        if model_sha256 is not None:
            query = query.where(table.c.sha256 == model_sha256)
        query = query.order_by(table.c.approved_height.desc(), table.c.sha256).limit(1)
        found = conn.execute(query).scalar()
    if found is None:
        named = f"model {model_sha256} is not" if model_sha256 else "no model of this member is"
        raise NoApprovedModel(message=f"{named} approved to decide")
    return str(found)


# -- policies -----------------------------------------------------------------------------------
def save_policy(
    host: CreditHost,
    gateway: MemberGateway,
    *,
    policy_id: str,
    version: int,
    rules: dict[str, Any],
    officer: str,
) -> dict[str, Any]:
    """Save a policy version (checked here first, so a contradiction costs no tx)."""
    parse_policy(rules)
    args = {"policy_id": policy_id, "version": version, "rules": rules, "officer": officer}
    return _submit(host, gateway, "set_policy", args)


def get_policy(host: CreditHost, *, policy_id: str, version: int | None = None) -> dict[str, Any]:
    with host.platform_engine.connect() as conn:
        row = projection.get_policy(conn, policy_id, version)
    if row is None:
        raise PolicyNotFound(message=f"no policy {policy_id} (version {version or 'latest'})")
    return row


def _policy(host: CreditHost, policy_id: str) -> tuple[int, Policy]:
    row = get_policy(host, policy_id=policy_id)
    if row["member"] != _member(host):
        raise PolicyNotFound(message=f"policy {policy_id} is another member's")
    key = (policy_id, int(row["version"]), str(row["member"]))
    policy = _policies.get(key)
    if policy is None:
        if len(_policies) >= POLICIES_CACHED_MAX:
            _policies.clear()  # versions are immutable: a miss only costs one parse
        policy = _policies[key] = parse_policy(row["rules"])
    return key[1], policy


# -- what the platform knows (behaviour, consent) ------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Known:
    facts: BehaviourFacts
    other_members_data: str
    has_history: bool


def _repayment_counts(rows: list[dict[str, Any]], now_ms: int) -> tuple[int, int]:
    on_time = late = 0
    for row in rows:  # at most BEHAVIOUR_HISTORY_MAX
        deadline = row["due_at_ms"] + limits.REPAYMENT_GRACE_MS
        paid = row["paid_at_ms"]
        if paid is not None and paid <= deadline:
            on_time += 1
        elif paid is not None or now_ms > deadline:
            late += 1
    return on_time, late


def _combine(accounts: list[AccountFacts], repayments: list[dict[str, Any]], now_ms: int) -> Any:
    on_time, late = _repayment_counts(repayments, now_ms)
    opened = min((account.opened_at_ms for account in accounts), default=now_ms)
    return BehaviourFacts(
        on_time_repayments=on_time,
        late_repayments=late,
        months_on_platform=max(0, now_ms - opened) // MONTH_MS,
        inflow_minor_90d=sum(account.inflow_minor for account in accounts),
        balance_minor_now=sum(account.balance_minor_now for account in accounts),
        balance_minor_90d_ago=sum(account.balance_minor_then for account in accounts),
    )


def _known(host: CreditHost, subject: str, now_ms: int) -> _Known:
    """The subject's facts from every source this member may use: its own, and other members'
    only when the subject consented on chain to this member reading them for credit."""
    member = _member(host)
    _caught_up(host)
    accounts = host.credit_ports.payments.account_facts(
        subject, since_ms=now_ms - limits.BEHAVIOUR_WINDOW_MS, until_ms=now_ms
    )
    accounts = [account for account in accounts if account.currency == "CNY"]
    with host.platform_engine.connect() as conn:
        repayments = projection.repayments_of(conn, subject)
    sources = {account.custodian for account in accounts} | {row["member"] for row in repayments}
    others = {source for source in sources if source is not None and source != member}
    status = OTHER_DATA_NONE
    if others:
        consented = host.credit_ports.consent.allows(
            subject=subject, grantee=member, category=CONSENT_CATEGORY, purpose=CONSENT_PURPOSE
        )
        status = OTHER_DATA_USED if consented else OTHER_DATA_NOT_USED
        if not consented:
            accounts = [a for a in accounts if a.custodian in (None, member)]
            repayments = [row for row in repayments if row["member"] == member]
    facts = _combine(accounts, repayments, now_ms)
    return _Known(facts, status, bool(accounts or repayments))


def _caught_up(host: CreditHost) -> None:
    """Let the ledger's consumer apply the blocks committed so far (a bounded wait, at once when
    it is level), so that a score or decision right after a payment sees it.  Late, the facts
    are those of the last block it applied, and the log says so."""
    height = host.node.head.height
    name = CreditFlowsProjection.name
    if not host.projections.wait_for(height, projection=name, timeout_s=limits.FLOWS_WAIT_S):
        log.warning("credit's ledger facts lag the chain head %d: scoring from older ones", height)


def behaviour(host: CreditHost, *, subject: str) -> dict[str, Any]:
    """The subject's behavioural score now; a snapshot is kept whenever it moved, with why."""
    now_ms = host.node.clock()
    return _snapshot(host, subject, _known(host, subject, now_ms), now_ms)


def _snapshot(host: CreditHost, subject: str, known: _Known, now_ms: int) -> dict[str, Any]:
    tables.ensure_tables(host.platform_engine)
    score = behaviour_score(known.facts)
    contributions = [item.to_json() for item in score.contributions]
    with host.platform_engine.begin() as conn:
        last = tables.last_behaviour(conn, subject)
        if last is not None and last["contributions"] == contributions:
            return _behaviour_out(last)
        previous = () if last is None else _contributions(last["contributions"])
        moved = [item.to_json() for item in changes(previous, score.contributions)]
        row: dict[str, Any] = {
            "subject": subject,
            "seq": 1 if last is None else last["seq"] + 1,
            "at_ms": now_ms,
            "score": score.score,
            "previous_score": None if last is None else last["score"],
            "contributions": json.dumps(contributions, ensure_ascii=False),
            "changes": json.dumps(moved, ensure_ascii=False),
            "other_members_data": known.other_members_data,
            "thin_file": not known.has_history,
        }
        tables.append_behaviour(conn, row)
    return _behaviour_out({**row, "contributions": contributions, "changes": moved})


def _contributions(items: list[dict[str, Any]]) -> tuple[Contribution, ...]:
    return tuple(Contribution(**item) for item in items)


def _behaviour_out(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "subject": row["subject"],
        "seq": row["seq"],
        "at_ms": row["at_ms"],
        "score": row["score"],
        "previous_score": row["previous_score"],
        "contributions": row["contributions"],
        "changes": row["changes"],
        "other_members_data": row["other_members_data"],
        "thin_file": row["thin_file"],
    }


def behaviour_history(
    host: CreditHost, *, subject: str, before_seq: int | None, limit: int
) -> dict[str, Any]:
    tables.ensure_tables(host.platform_engine)
    with host.platform_engine.connect() as conn:
        rows = tables.behaviour_history(conn, subject, before_seq=before_seq, limit=limit)
    return {
        "history": [_behaviour_out(row) for row in rows],
        "next_before_seq": rows[-1]["seq"] if len(rows) == limit else None,
    }


def record_repayment(
    host: CreditHost,
    gateway: MemberGateway,
    *,
    repayment_id: str,
    subject: str,
    due_at_ms: int,
    paid_at_ms: int | None,
) -> dict[str, Any]:
    args = {
        "id": repayment_id,
        "subject": subject,
        "due_at_ms": due_at_ms,
        "paid_at_ms": paid_at_ms,
    }
    return _submit(host, gateway, "record_repayment", args)


# -- decisions ----------------------------------------------------------------------------------
def _request_sha256(policy_id: str, subject: str | None, model: str | None, raw: Any) -> str:
    body = {"policy_id": policy_id, "subject": subject, "model_sha256": model, "applicant": raw}
    return sha256(canonical(body)).hex()


def _completed(raw: Mapping[str, Any], known: _Known | None) -> dict[str, Any]:
    """The applicant's fields, with the platform's own facts in place of any the caller gave:
    what the platform saw of a customer is not theirs to type in."""
    fields = dict(raw)
    if known is not None:
        facts = known.facts
        for name in PLATFORM_FACT_FIELDS:
            fields[name] = getattr(facts, name)
        fields["inflow_minor_90d"] = facts.inflow_minor_90d
    return fields


def decide_for(
    host: CreditHost,
    gateway: MemberGateway,
    *,
    decision_id: str,
    policy_id: str,
    applicant: Mapping[str, Any],
    subject: str | None,
    requested_by: str,
    model_sha256: str | None = None,
) -> dict[str, Any]:
    """Decide, store and anchor; returns the decision with its anchor (see the module doc)."""
    tables.ensure_tables(host.platform_engine)
    parse_applicant(applicant)  # first: every wrong field named, before anything is looked up
    request_sha = _request_sha256(policy_id, subject, model_sha256, dict(applicant))
    with host.platform_engine.connect() as conn:
        existing = tables.get_decision(conn, decision_id)
    if existing is not None:
        if existing["request_sha256"] != request_sha or existing["member"] != _member(host):
            raise DecisionConflict(message=f"decision {decision_id} was made for another request")
        return {**_anchored(host, gateway, existing), "exists": True}
    model = _approved_model(host, model_sha256)
    version, policy = _policy(host, policy_id)
    now_ms = host.node.clock()
    known = _known(host, subject, now_ms) if subject is not None else None
    score = None if known is None else _snapshot(host, subject or "", known, now_ms)["score"]
    fields = _completed(applicant, known)
    parsed = parse_applicant(fields)  # InvalidApplicant names every wrong field
    inputs = DecisionInputs(
        decision_id=decision_id,
        member=_member(host),
        subject=subject,
        model_sha256=model,
        policy_id=policy_id,
        policy_version=version,
        behaviour_score=score,
        other_members_data=OTHER_DATA_NONE if known is None else known.other_members_data,
        decided_at_ms=now_ms,
    )
    record = decide(model_store(host).scorer(model), policy, parsed, inputs)
    row = _store(host, record, fields, request_sha=request_sha, requested_by=requested_by)
    log.info("decision %s: %s by model %s", decision_id, record["outcome"], model)
    return {**_anchored(host, gateway, row), "exists": False}


def _store(
    host: CreditHost,
    record: dict[str, Any],
    fields: dict[str, Any],
    *,
    request_sha: str,
    requested_by: str,
) -> dict[str, Any]:
    """Keep the record and seal the applicant's fields (one platform transaction)."""
    from zhijin.platform.vault import VaultStore

    vault = host.vault
    sealed = vault.seal(
        tables.APPLICANT_SCHEMA, record["decision_id"], {"input": canonical(fields).decode()}
    )
    row = {
        "decision_id": record["decision_id"],
        "member": record["member"],
        "subject": record["subject"],
        "requested_by": requested_by,
        "request_sha256": request_sha,
        "input_sha256": record["input_sha256"],
        "model_sha256": record["model_sha256"],
        "policy_id": record["policy_id"],
        "policy_version": record["policy_version"],
        "points": record["points"],
        "pd_ppm": record["pd_ppm"],
        "outcome": record["outcome"],
        "limit_minor": record["limit_minor"],
        "price_tier": record["price_tier"],
        "record": canonical(record).decode(),
        "record_sha256": record_sha256(record),
        "decided_at_ms": record["decided_at_ms"],
        "anchor_height": None,
        "anchor_tx_hash": None,
    }
    VaultStore(host.platform_engine).put(sealed, now_ms=record["decided_at_ms"])
    with host.platform_engine.begin() as conn:
        tables.insert_decision(conn, row)
    return {**row, "record": record}


def _anchored(host: CreditHost, gateway: MemberGateway, row: dict[str, Any]) -> dict[str, Any]:
    """Anchor the record's hash (again, idempotently, if an earlier attempt did not finish)."""
    if row["anchor_height"] is None:
        record = row["record"]
        answer = _submit(
            host,
            gateway,
            "anchor_decision",
            {
                "decision_id": row["decision_id"],
                "record_sha256": row["record_sha256"],
                "model_sha256": record["model_sha256"],
                "policy_id": record["policy_id"],
                "policy_version": record["policy_version"],
            },
        )
        with host.platform_engine.begin() as conn:
            tables.mark_anchored(
                conn, row["decision_id"], height=answer["height"], tx_hash=answer["tx_hash"]
            )
        row = {**row, "anchor_height": answer["height"], "anchor_tx_hash": answer["tx_hash"]}
    return _decision_out(row)


def _decision_out(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "decision": row["record"],
        "record_sha256": row["record_sha256"],
        "requested_by": row["requested_by"],
        "anchor": {"height": row["anchor_height"], "tx_hash": row["anchor_tx_hash"]},
    }


def get_decision(host: CreditHost, *, decision_id: str) -> dict[str, Any]:
    tables.ensure_tables(host.platform_engine)
    with host.platform_engine.connect() as conn:
        row = tables.get_decision(conn, decision_id)
    if row is None:
        raise DecisionNotFound(message=f"no decision {decision_id}")
    return _decision_out(row)


def list_decisions(
    host: CreditHost,
    *,
    member: str | None,
    subject: str | None,
    before: str | None = None,
    limit: int = limits.PAGE_SIZE_DEFAULT,
    outcome: str | None = None,
) -> dict[str, Any]:
    """A page of decisions, newest first; `before` is the previous page's `next_before` (a
    `"<decided_at_ms>:<decision_id>"` cursor, so a millisecond split by a page boundary loses
    no row), `next_before` None on the last page."""
    cursor = None if before is None else tables.DecisionCursor.parse(before)
    tables.ensure_tables(host.platform_engine)
    with host.platform_engine.connect() as conn:
        rows = tables.list_decisions(
            conn, member=member, subject=subject, before=cursor, limit=limit, outcome=outcome
        )
    last = tables.DecisionCursor.of(rows[-1]) if len(rows) == limit else None
    return {
        "decisions": [_decision_out(row) for row in rows],
        "next_before": None if last is None else last.text(),
    }


def replay(host: CreditHost, *, decision_id: str) -> dict[str, Any]:
    """Re-score a stored decision from its sealed input with the model file re-hashed and the
    policy version it named, and compare field by field with the record, and the record with
    its anchor on chain.  A difference is reported (`same: false`), never hidden."""
    from zhijin.platform.vault import VaultStore

    tables.ensure_tables(host.platform_engine)
    with host.platform_engine.connect() as conn:
        row = tables.get_decision(conn, decision_id)
        anchor = projection.get_anchor(conn, decision_id)
    if row is None:
        raise DecisionNotFound(message=f"no decision {decision_id}")
    recorded = row["record"]
    sealed = VaultStore(host.platform_engine).get(tables.APPLICANT_SCHEMA.name, decision_id)
    if sealed is None:
        raise DecisionNotFound(message=f"the input of decision {decision_id} is gone")
    opened = host.vault.open(tables.APPLICANT_SCHEMA, sealed, ["input"])["input"]
    fields = json.loads(opened if isinstance(opened, str) else opened.decode())
    policy_row = get_policy(
        host, policy_id=recorded["policy_id"], version=recorded["policy_version"]
    )
    inputs = DecisionInputs(
        decision_id=decision_id,
        member=recorded["member"],
        subject=recorded["subject"],
        model_sha256=recorded["model_sha256"],
        policy_id=recorded["policy_id"],
        policy_version=recorded["policy_version"],
        behaviour_score=recorded["behaviour_score"],
        other_members_data=recorded["other_members_data"],
        decided_at_ms=recorded["decided_at_ms"],
    )
    scorer = model_store(host).verified_scorer(recorded["model_sha256"])
    replayed = decide(scorer, parse_policy(policy_row["rules"]), parse_applicant(fields), inputs)
    differences = [
        {"field": name, "recorded": recorded.get(name), "replayed": value}
        for name, value in replayed.items()
        if recorded.get(name) != value
    ]
    stored_sha = row["record_sha256"]
    anchored_sha = None if anchor is None else anchor["record_sha256"]
    report = {
        "decision_id": decision_id,
        "same": not differences and record_sha256(recorded) == stored_sha == anchored_sha,
        "differences": differences,
        "record_sha256": stored_sha,
        "recomputed_sha256": record_sha256(recorded),
        "replayed_sha256": record_sha256(replayed),
        "anchored_sha256": anchored_sha,
        "anchor": anchor,
    }
    if not report["same"]:
        log.warning("replay of decision %s differs: %s", decision_id, differences or "hashes")
    return report
