"""The risk service: the payment screen payments calls (`screen`, `settled`), the rulebook
under maker-checker, the review cases of held payments, the supervised model's training and
registry, and the reads the API serves.  One per node, started and stopped with it (a node
service): `start` creates the tables, seeds the shipped rules once, loads the rules and the
registered model (refusing a file whose hash differs), and rebuilds the features.

The screen never raises for a fault of its own: if the engine fails, the payment gets the
fail-open/closed answer of the tier policy (`engine.fallback`), marked degraded.  A retry of a
transfer id that was allowed or held gets the stored verdict back (the ledger then answers
`exists`), so a client's retry is neither re-scored nor counted twice.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, func, insert, or_, select, update

from zhijin.chain.codec import canonical
from zhijin.chain.errors import NotFound, ZhijinError
from zhijin.payments import PaymentFacts, ScreenTier, Verdict
from zhijin.platform.errors import Conflict, Forbidden, InvalidInput
from zhijin.platform.i18n import LOCALES, gettext
from zhijin.risk import limits
from zhijin.risk.engine import Decision, RiskEngine, Ruleset, fallback
from zhijin.risk.expected import RiskPorts
from zhijin.risk.features import Learned
from zhijin.risk.models import ModelRefused, load_supervised, train_supervised
from zhijin.risk.rules import (
    CompiledRule,
    RuleBody,
    TierPolicy,
    check_rule,
    default_policy,
    default_rules,
    rule_sha256,
)
from zhijin.risk.tables import (
    cases_table,
    decisions_table,
    ensure_tables,
    models_table,
    rules_table,
)

__all__ = ["RELEASE_ACTOR", "RiskService"]

log = logging.getLogger("zhijin.risk")

RELEASE_ACTOR = "release"  # the shipped rules: checked like any rule, approved by the release
ENGINE_ACTOR = "risk:engine"
_REUSABLE = (ScreenTier.ALLOW.value, ScreenTier.HOLD.value)
_RECENT_MAX = 10_000  # decisions kept in memory for a retry's lookup
CASE_VERDICTS = ("cleared", "confirmed_fraud")
ANCHOR_TIMEOUT_S = 30.0


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _reason(text: str) -> str:
    text = (text or "").strip()
    if not limits.REASON_CHARS_MIN <= len(text) <= limits.REASON_CHARS_MAX:
        raise InvalidInput(
            "risk_reason_invalid",
            f"a reason is {limits.REASON_CHARS_MIN}-{limits.REASON_CHARS_MAX} characters",
            chars_min=limits.REASON_CHARS_MIN,
            chars_max=limits.REASON_CHARS_MAX,
        )
    return text


@dataclass(frozen=True, slots=True)
class _Prior:
    decision_id: str
    request: tuple[str, str, int, str]
    verdict: Verdict


class RiskService:
    def __init__(self, engine: Engine, ports: RiskPorts, *, policy: TierPolicy | None = None):
        self.db = engine
        self.ports = ports
        self.policy = policy or default_policy()
        self.engine = RiskEngine(policy=self.policy, ruleset=Ruleset(()))
        self._recent: OrderedDict[str, _Prior] = OrderedDict()
        self._lock = threading.Lock()
        self.started = False

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> None:
        ensure_tables(self.db)
        self._seed_rules()
        self.reload_rules()
        self.load_model()
        self.rebuild()
        self.started = True

    def stop(self) -> int | None:
        self.started = False
        return None

    def _seed_rules(self) -> None:
        with self.db.begin() as conn:
            if conn.execute(select(func.count()).select_from(rules_table)).scalar_one():
                return
            now = self.ports.clock()
            for body in default_rules():
                check_rule(body, 1)
                conn.execute(
                    insert(rules_table).values(
                        rule_id=body.id,
                        version=1,
                        body=canonical(body.model_dump(mode="json")).decode(),
                        body_sha256=rule_sha256(body),
                        status="approved",
                        member=self.ports.member_did,
                        created_by=RELEASE_ACTOR,
                        created_ms=now,
                        decided_by=RELEASE_ACTOR,
                        decided_ms=now,
                        decision_reason="shipped with the release (data/rules-2026-12.json)",
                    )
                )

    def reload_rules(self) -> Ruleset:
        """The latest approved version of every rule, enabled ones only, checked again."""
        latest = (
            select(rules_table.c.rule_id, func.max(rules_table.c.version).label("version"))
            .where(rules_table.c.status == "approved")
            .group_by(rules_table.c.rule_id)
            .subquery()
        )
        query = select(rules_table.c.body, rules_table.c.version).join(
            latest,
            and_(
                rules_table.c.rule_id == latest.c.rule_id,
                rules_table.c.version == latest.c.version,
            ),
        )
        with self.db.connect() as conn:
            rows = conn.execute(query.order_by(rules_table.c.rule_id)).all()
        compiled: list[CompiledRule] = []
        for row in rows[: limits.RULES_ACTIVE_MAX]:
            body = RuleBody.model_validate_json(row.body)
            if body.enabled:
                compiled.append(check_rule(body, row.version))
        ruleset = Ruleset(tuple(compiled))
        self.engine.use_rules(ruleset)
        return ruleset

    def rebuild(self) -> dict[str, int]:
        """Features from the ledger's recent payments and identity's credential changes, and
        the step-up owed after recent refusals."""
        now = self.ports.clock()
        history = self.ports.payments.recent_payments(
            since_ms=now - limits.REBUILD_WINDOW_MS, limit=limits.REBUILD_PAYMENTS_MAX
        )
        learned = 0
        for payment in history:
            facts = PaymentFacts(
                transfer_id=payment.transfer_id,
                debit_account_id=payment.debit_account_id,
                credit_account_id=payment.credit_account_id,
                payer="",
                payee_owner=None,
                currency=payment.currency,
                exponent=payment.exponent,
                amount_minor=payment.amount_minor,
                at_ms=payment.at_ms,
                user_id=None,
                payee_known=None,
                device_known=None,
            )
            learned += self._learn(facts, None)
        self.catch_up_credentials()
        since = now - self.policy.step_up_after_refusal_ms
        with self.db.connect() as conn:
            rows = conn.execute(
                select(decisions_table.c.user_id, decisions_table.c.at_ms).where(
                    decisions_table.c.tier == ScreenTier.REFUSE.value,
                    decisions_table.c.at_ms >= since,
                )
            ).all()
        for row in rows:
            self.engine.refused(row.user_id, row.at_ms)
        return {"payments": learned, "refusals": len(rows)}

    def catch_up_credentials(self) -> None:
        store = self.engine.store
        for _ in range(100):  # bounded: at most 100 pages per call
            changes, cursor = self.ports.identity.credential_changes(
                after_seq=store.credential_cursor, limit=limits.CREDENTIAL_EVENTS_PAGE
            )
            for change in changes:
                store.credential_changed(change)
            moved = cursor != store.credential_cursor
            store.credential_cursor = cursor
            if not moved:
                return

    # -- the screen (payments' PaymentScreen port) ---------------------------------------------
    def screen(self, facts: PaymentFacts) -> Verdict:
        prior = self._prior(facts)
        if prior is not None:
            return prior.verdict
        try:
            self.catch_up_credentials()
            last = (
                None if facts.user_id is None else self.ports.identity.last_sign_in(facts.user_id)
            )
            decision = self.engine.decide(facts, last_sign_in=last)
        except Exception as error:  # the engine's own fault: fail open/closed by policy
            log.exception("risk engine failed; deciding by the fail-open/closed policy")
            decision = fallback(facts, self.policy, type(error).__name__)
        self.engine.store.attempt(facts.transfer_id, facts.debit_account_id, facts.at_ms)
        verdict = self._verdict(decision)
        try:
            self._record(facts, decision, verdict)
        except Exception:  # a decision that cannot be recorded is not acted on as scored
            log.exception("risk decision not recorded; deciding by the fail-open/closed policy")
            return self._verdict(fallback(facts, self.policy, "DecisionNotRecorded"))
        return verdict

    def _verdict(self, decision: Decision) -> Verdict:
        reasons_by_locale = {k: tuple(v) for k, v in decision.reasons_by_locale.items()}
        for problem in decision.degraded:
            if problem.startswith("model_"):
                note = {loc: gettext(loc, "risk.reason.rules_only") for loc in LOCALES}
                reasons_by_locale = {k: (*v, note[k]) for k, v in reasons_by_locale.items()}
        notice: dict[str, str] = {}
        if decision.tier == ScreenTier.HOLD:
            notice = {loc: gettext(loc, "notice.risk.held") for loc in LOCALES}
        return Verdict(
            decision_id="rd-" + secrets.token_hex(12),
            tier=decision.tier,
            score_bps=decision.score_bps,
            reasons=decision.reasons
            + tuple(f"degraded: {problem}" for problem in decision.degraded),
            reasons_by_locale=reasons_by_locale,
            versions=dict(decision.versions),
            degraded=decision.degraded,
            hold_timeout_ms=self.policy.hold_timeout_ms if decision.tier == ScreenTier.HOLD else 0,
            notice=notice,
        )

    @staticmethod
    def _request_of(facts: PaymentFacts) -> tuple[str, str, int, str]:
        return (facts.debit_account_id, facts.credit_account_id, facts.amount_minor, facts.currency)

    def _prior(self, facts: PaymentFacts) -> _Prior | None:
        """The stored verdict of an allowed or held attempt of the same transfer id and
        request (a client's retry); a refused one is decided again."""
        with self._lock:
            prior = self._recent.get(facts.transfer_id)
        if prior is None:
            prior = self._stored_prior(facts.transfer_id)
        if prior is None or prior.request != self._request_of(facts):
            return None
        if prior.verdict.tier.value not in _REUSABLE:
            return None
        return prior

    def _stored_prior(self, transfer_id: str) -> _Prior | None:
        table = decisions_table
        with self.db.connect() as conn:
            row = conn.execute(
                select(table)
                .where(
                    table.c.transfer_id == transfer_id,
                    table.c.tier.in_(_REUSABLE),
                    or_(table.c.outcome.is_(None), table.c.outcome != "ledger_refused"),
                )
                .order_by(table.c.at_ms.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        verdict = _verdict_from_row(dict(row._mapping))
        return _Prior(
            decision_id=row.decision_id,
            request=(row.debit_account_id, row.credit_account_id, row.amount_minor, row.currency),
            verdict=verdict,
        )

    def _record(self, facts: PaymentFacts, decision: Decision, verdict: Verdict) -> None:
        values = {
            "decision_id": verdict.decision_id,
            "transfer_id": facts.transfer_id,
            "member": self.ports.member_did,
            "payer": facts.payer,
            "user_id": facts.user_id,
            "debit_account_id": facts.debit_account_id,
            "credit_account_id": facts.credit_account_id,
            "currency": facts.currency,
            "amount_minor": facts.amount_minor,
            "tier": verdict.tier.value,
            "score_bps": verdict.score_bps,
            "reasons": _json(list(verdict.reasons)),
            "reasons_by_locale": _json({k: list(v) for k, v in verdict.reasons_by_locale.items()}),
            "versions": _json(dict(verdict.versions)),
            "degraded": _json(list(verdict.degraded)),
            "features": _json(dict(decision.features)),
            "hold_timeout_ms": verdict.hold_timeout_ms,
            "outcome": None,
            "at_ms": facts.at_ms,
        }
        with self.db.begin() as conn:
            conn.execute(insert(decisions_table).values(**values))
        prior = _Prior(verdict.decision_id, self._request_of(facts), verdict)
        with self._lock:
            self._recent[facts.transfer_id] = prior
            self._recent.move_to_end(facts.transfer_id)
            while len(self._recent) > _RECENT_MAX:
                self._recent.popitem(last=False)

    def settled(self, verdict: Verdict, facts: PaymentFacts, *, outcome: str) -> None:
        """Never raises: the ledger has answered already, and its answer stands."""
        try:
            self._settled(verdict, facts, outcome=outcome)
        except Exception:
            log.exception("risk: settling decision %s (%s) failed", verdict.decision_id, outcome)

    def under_review(self, transfer_id: str) -> bool:
        """Whether a case on the hold `transfer_id` is open (payments lets no customer post
        or void it meanwhile)."""
        with self.db.connect() as conn:
            row = conn.execute(
                select(cases_table.c.case_id).where(
                    cases_table.c.transfer_id == transfer_id, cases_table.c.status == "open"
                )
            ).first()
        return row is not None

    def _settled(self, verdict: Verdict, facts: PaymentFacts, *, outcome: str) -> None:
        table = decisions_table
        with self.db.begin() as conn:
            conn.execute(
                update(table)
                .where(table.c.decision_id == verdict.decision_id)
                .values(outcome=outcome)
            )
            features = conn.execute(
                select(table.c.features).where(table.c.decision_id == verdict.decision_id)
            ).scalar_one_or_none()
            if outcome == "held":
                self._open_case(conn, verdict, facts)
        if outcome == "ledger_refused":
            with self._lock:
                self._recent.pop(facts.transfer_id, None)
        if outcome in ("submitted", "held"):
            self._learn(facts, None if features is None else json.loads(features))
        if outcome == "refused" and verdict.tier == ScreenTier.REFUSE:
            self.engine.refused(facts.user_id, facts.at_ms)
        if verdict.tier != ScreenTier.ALLOW:
            self.ports.audit.append(
                actor=ENGINE_ACTOR,
                action="risk.decision",
                target=f"transfer:{facts.transfer_id}",
                outcome=verdict.tier.value,
                at_ms=self.ports.clock(),
                details={
                    "decision_id": verdict.decision_id,
                    "score_bps": verdict.score_bps,
                    "reasons": list(verdict.reasons),
                    "versions": dict(verdict.versions),
                    "settled": outcome,
                },
            )

    def _learn(self, facts: PaymentFacts, features: Mapping[str, Any] | None) -> int:
        engine = self.engine
        amount_ref = engine.policy.reference_rates().convert(
            facts.amount_minor, facts.currency, facts.exponent
        )
        if features is None or not features:
            features = engine.store.features(
                facts, engine.policy.feature_policy(), last_sign_in=None
            )
        learned = engine.store.learn(
            Learned(
                transfer_id=facts.transfer_id,
                debit_account_id=facts.debit_account_id,
                credit_account_id=facts.credit_account_id,
                amount_ref_minor=amount_ref,
                at_ms=facts.at_ms,
            )
        )
        if learned:
            engine.anomaly.learn(features)
        return int(learned)

    # -- cases -----------------------------------------------------------------------------------
    def _open_case(self, conn: Any, verdict: Verdict, facts: PaymentFacts) -> None:
        exists = conn.execute(
            select(cases_table.c.case_id).where(cases_table.c.decision_id == verdict.decision_id)
        ).first()
        if exists is not None:
            return
        conn.execute(
            insert(cases_table).values(
                case_id="rc-" + secrets.token_hex(10),
                decision_id=verdict.decision_id,
                transfer_id=facts.transfer_id,
                member=self.ports.member_did,
                payer=facts.payer,
                status="open",
                opened_ms=self.ports.clock(),
            )
        )

    def get_case(self, case_id: str) -> dict[str, Any]:
        with self.db.connect() as conn:
            row = conn.execute(select(cases_table).where(cases_table.c.case_id == case_id)).first()
        if row is None:
            raise NotFound("risk_case_not_found", f"no risk case {case_id}", case_id=case_id)
        return dict(row._mapping)

    def list_cases(
        self, *, member: str | None, status: str | None, limit: int, before_ms: int | None = None
    ) -> list[dict[str, Any]]:
        query = select(cases_table)
        if member is not None:
            query = query.where(cases_table.c.member == member)
        if status is not None:
            query = query.where(cases_table.c.status == status)
        if before_ms is not None:
            query = query.where(cases_table.c.opened_ms < before_ms)
        query = query.order_by(cases_table.c.opened_ms.desc(), cases_table.c.case_id).limit(limit)
        with self.db.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def resolve_case(
        self, *, case_id: str, verdict: str, actor: str, reason: str
    ) -> dict[str, Any]:
        """Clear (post the hold: the payment goes through) or confirm fraud (void the hold:
        the money stays with the payer).  A void the ledger refuses (only the payee's side may
        void) leaves the hold to expire at its timeout, and the case says so."""
        if verdict not in CASE_VERDICTS:
            raise InvalidInput("risk_case_verdict_invalid", "verdict is cleared or confirmed_fraud")
        reason = _reason(reason)
        case = self.get_case(case_id)
        if case["status"] != "open":
            raise Conflict(
                "risk_case_resolved", f"case {case_id} is {case['status']} already", case_id=case_id
            )
        resolution_id = "rr-" + case_id.removeprefix("rc-")
        note = None
        try:
            self.ports.holds.resolve(
                pending_id=case["transfer_id"],
                transfer_id=resolution_id,
                post=verdict == "cleared",
            )
        except ZhijinError as error:
            if verdict == "cleared":
                raise
            note = f"void refused ({error.code}): the hold expires at its timeout"
        now = self.ports.clock()
        with self.db.begin() as conn:
            done = conn.execute(
                update(cases_table)
                .where(cases_table.c.case_id == case_id, cases_table.c.status == "open")
                .values(
                    status=verdict,
                    resolved_by=actor,
                    resolved_ms=now,
                    reason=reason if note is None else f"{reason} [{note}]"[:500],
                    resolution_transfer_id=resolution_id if note is None else None,
                )
            ).rowcount
        if not done:
            raise Conflict("risk_case_resolved", f"case {case_id} was resolved meanwhile")
        self.ports.audit.append(
            actor=actor,
            action="risk.case.resolve",
            target=f"risk_case:{case_id}",
            outcome=verdict,
            at_ms=now,
            reason=reason,
            details={"transfer_id": case["transfer_id"], "note": note},
        )
        return self.get_case(case_id)

    # -- decisions ---------------------------------------------------------------------------
    def get_decision(self, decision_id: str) -> dict[str, Any]:
        with self.db.connect() as conn:
            row = conn.execute(
                select(decisions_table).where(decisions_table.c.decision_id == decision_id)
            ).first()
        if row is None:
            raise NotFound("risk_decision_not_found", f"no decision {decision_id}")
        return decision_view(dict(row._mapping))

    def list_decisions(
        self,
        *,
        member: str | None = None,
        payer: str | None = None,
        tier: str | None = None,
        transfer_id: str | None = None,
        before_ms: int | None = None,
        limit: int = limits.PAGE_SIZE_DEFAULT,
    ) -> list[dict[str, Any]]:
        table = decisions_table
        query = select(table)
        for column, value in (
            (table.c.member, member),
            (table.c.payer, payer),
            (table.c.tier, tier),
            (table.c.transfer_id, transfer_id),
        ):
            if value is not None:
                query = query.where(column == value)
        if before_ms is not None:
            query = query.where(table.c.at_ms < before_ms)
        query = query.order_by(table.c.at_ms.desc(), table.c.decision_id).limit(limit)
        with self.db.connect() as conn:
            return [decision_view(dict(row._mapping)) for row in conn.execute(query)]

    # -- rules (maker-checker) ---------------------------------------------------------------
    def list_rules(self, *, status: str | None = None) -> list[dict[str, Any]]:
        query = select(rules_table)
        if status is not None:
            query = query.where(rules_table.c.status == status)
        query = query.order_by(rules_table.c.rule_id, rules_table.c.version).limit(1000)
        with self.db.connect() as conn:
            return [rule_view(dict(row._mapping)) for row in conn.execute(query)]

    def get_rule_version(self, rule_id: str, version: int) -> dict[str, Any]:
        with self.db.connect() as conn:
            row = conn.execute(
                select(rules_table).where(
                    rules_table.c.rule_id == rule_id, rules_table.c.version == version
                )
            ).first()
        if row is None:
            raise NotFound("risk_rule_not_found", f"no rule {rule_id} version {version}")
        return rule_view(dict(row._mapping))

    def propose_rule(self, *, body: RuleBody, actor: str) -> dict[str, Any]:
        """Save a draft: checked now (expression and test cases), or refused with the reason."""
        check_rule(body, 0)
        now = self.ports.clock()
        with self.db.begin() as conn:
            current = conn.execute(
                select(func.max(rules_table.c.version)).where(rules_table.c.rule_id == body.id)
            ).scalar_one_or_none()
            version = (current or 0) + 1
            conn.execute(
                insert(rules_table).values(
                    rule_id=body.id,
                    version=version,
                    body=canonical(body.model_dump(mode="json")).decode(),
                    body_sha256=rule_sha256(body),
                    status="draft",
                    member=self.ports.member_did,
                    created_by=actor,
                    created_ms=now,
                )
            )
        self.ports.audit.append(
            actor=actor,
            action="risk.rule.propose",
            target=f"risk_rule:{body.id}@{version}",
            outcome="ok",
            at_ms=now,
            reason=body.rationale,
            details={"sha256": rule_sha256(body)},
        )
        return self.get_rule_version(body.id, version)

    def decide_rule(
        self, *, rule_id: str, version: int, actor: str, approve: bool, reason: str
    ) -> dict[str, Any]:
        """Approve (the rule is in force from now, its hash anchored on chain) or reject a
        draft; never the drafter's own (maker-checker)."""
        reason = _reason(reason)
        rule = self.get_rule_version(rule_id, version)
        if rule["status"] != "draft":
            raise Conflict(
                "risk_rule_not_draft",
                f"rule {rule_id}@{version} is {rule['status']}, not a draft",
                status=rule["status"],
            )
        if rule["created_by"] == actor:
            raise Forbidden(
                "risk_rule_self_approval", "a rule is approved by another analyst than its author"
            )
        if approve:  # checked again: the feature set may have changed since it was drafted
            check_rule(RuleBody.model_validate_json(_json(rule["body"])), version)
        now = self.ports.clock()
        height = None
        if approve and self.ports.anchors is not None:
            height = self.ports.anchors.anchor(
                document_hash=rule["body_sha256"],
                title=f"risk-rule:{rule_id}@{version}",
                timeout_s=ANCHOR_TIMEOUT_S,
            )
        with self.db.begin() as conn:
            done = conn.execute(
                update(rules_table)
                .where(
                    rules_table.c.rule_id == rule_id,
                    rules_table.c.version == version,
                    rules_table.c.status == "draft",
                )
                .values(
                    status="approved" if approve else "rejected",
                    decided_by=actor,
                    decided_ms=now,
                    decision_reason=reason,
                    anchor_height=height,
                )
            ).rowcount
        if not done:
            raise Conflict("risk_rule_not_draft", f"rule {rule_id}@{version} was decided meanwhile")
        self.ports.audit.append(
            actor=actor,
            action="risk.rule.approve" if approve else "risk.rule.reject",
            target=f"risk_rule:{rule_id}@{version}",
            outcome="ok",
            at_ms=now,
            reason=reason,
            details={"sha256": rule["body_sha256"], "anchor_height": height},
        )
        if approve:
            self.reload_rules()
        return self.get_rule_version(rule_id, version)

    # -- the supervised model ----------------------------------------------------------------
    def labelled(self) -> tuple[list[dict[str, Any]], list[int]]:
        """Feature rows of resolved cases and their verdicts (1 = confirmed fraud)."""
        query = (
            select(decisions_table.c.features, cases_table.c.status)
            .join(cases_table, cases_table.c.decision_id == decisions_table.c.decision_id)
            .where(cases_table.c.status.in_(CASE_VERDICTS))
            .order_by(cases_table.c.resolved_ms)
            .limit(limits.TRAIN_ROWS_MAX)
        )
        with self.db.connect() as conn:
            rows = conn.execute(query).all()
        return (
            [json.loads(row.features) for row in rows],
            [1 if row.status == "confirmed_fraud" else 0 for row in rows],
        )

    def train_model(self, *, actor: str) -> dict[str, Any]:
        rows, labels = self.labelled()
        now = self.ports.clock()
        version = f"gbm-{now}"
        file_name = f"{version}.txt"
        sha256 = train_supervised(rows, labels, self.ports.model_dir / file_name)
        with self.db.begin() as conn:
            conn.execute(
                update(models_table)
                .where(models_table.c.status == "active")
                .values(status="retired")
            )
            conn.execute(
                insert(models_table).values(
                    version=version,
                    kind="lightgbm",
                    sha256=sha256,
                    file_name=file_name,
                    labels=len(labels),
                    positives=sum(labels),
                    registered_by=actor,
                    registered_ms=now,
                    status="active",
                )
            )
        self.ports.audit.append(
            actor=actor,
            action="risk.model.register",
            target=f"risk_model:{version}",
            outcome="ok",
            at_ms=now,
            details={"sha256": sha256, "labels": len(labels), "positives": sum(labels)},
        )
        self.load_model()
        return self.model_status()

    def load_model(self) -> None:
        """The active registration's model, or rules alone (said in every decision) when its
        file is missing or its hash differs from the registration."""
        with self.db.connect() as conn:
            row = conn.execute(
                select(models_table).where(models_table.c.status == "active")
            ).first()
        if row is None:
            self.engine.use_supervised(None)
            return
        try:
            model = load_supervised(
                row.version, self.ports.model_dir / row.file_name, registered_sha256=row.sha256
            )
        except ModelRefused as refused:
            log.error("risk model refused, scoring with rules alone: %s", refused.message)
            problem = refused.details.get("problem", "model_refused")
            self.engine.use_supervised(None, [f"{problem}:{row.version}"])
            return
        self.engine.use_supervised(model)

    def model_status(self) -> dict[str, Any]:
        engine = self.engine
        with self.db.connect() as conn:
            rows = conn.execute(
                select(models_table).order_by(models_table.c.registered_ms.desc()).limit(20)
            ).all()
        return {
            "active": None if engine.supervised is None else engine.supervised.version,
            "problems": list(engine.model_problems),
            "anomaly": {"version": engine.anomaly.VERSION, "learned": engine.anomaly.learned},
            "registered": [dict(row._mapping) for row in rows],
        }

    def status(self) -> dict[str, Any]:
        engine = self.engine
        return {
            "started": self.started,
            "policy": engine.policy.version,
            "rules": engine.ruleset.label,
            "rule_versions": engine.ruleset.versions(),
            "features": engine.store.size(),
            "degraded": list(engine.model_problems),
            "models": self.model_status(),
        }


def _verdict_from_row(row: Mapping[str, Any]) -> Verdict:
    tier = ScreenTier(row["tier"])
    notice = {loc: gettext(loc, "notice.risk.held") for loc in LOCALES} if tier == "hold" else {}
    return Verdict(
        decision_id=row["decision_id"],
        tier=tier,
        score_bps=row["score_bps"],
        reasons=tuple(json.loads(row["reasons"])),
        reasons_by_locale={k: tuple(v) for k, v in json.loads(row["reasons_by_locale"]).items()},
        versions=json.loads(row["versions"]),
        degraded=tuple(json.loads(row["degraded"])),
        hold_timeout_ms=row["hold_timeout_ms"],
        notice=notice,
    )


def decision_view(row: Mapping[str, Any]) -> dict[str, Any]:
    view = dict(row)
    for key in ("reasons", "reasons_by_locale", "versions", "degraded", "features"):
        view[key] = json.loads(view[key])
    return view


def rule_view(row: Mapping[str, Any]) -> dict[str, Any]:
    view = dict(row)
    view["body"] = json.loads(view["body"])
    return view
