"""The credit contract's stored records and its state key layout (every key under `credit/`).

On chain: the model registry (a model's SHA-256, who trained and approved it), the policies
(one record per version), the anchors of decisions (the decision record's hash, the model and
the policy version, never the applicant's data or score) and repayment facts.  Personal data
stays off chain: an anchor names no applicant, and a repayment names only the subject's DID.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from zhijin.chain.codec import canonical

__all__ = ["DecisionAnchor", "ModelRecord", "ModelStatus", "PolicyRecord", "Repayment", "keys"]


class keys:  # lower case: a namespace of key builders, read as `keys.model(sha)`
    MODEL = "credit/model/"
    POLICY = "credit/policy/"
    POLICY_HEAD = "credit/policy_head/"
    DECISION = "credit/decision/"
    REPAYMENT = "credit/repayment/"

    @staticmethod
    def model(sha256: str) -> str:
        return keys.MODEL + sha256

    @staticmethod
    def policy(policy_id: str, version: int) -> str:
        # Zero-padded so that a scan lists versions in order.
        return f"{keys.POLICY}{policy_id}/{version:07d}"

    @staticmethod
    def policy_head(policy_id: str) -> str:
        return keys.POLICY_HEAD + policy_id

    @staticmethod
    def decision(decision_id: str) -> str:
        return keys.DECISION + decision_id

    @staticmethod
    def repayment(repayment_id: str) -> str:
        return keys.REPAYMENT + repayment_id


class ModelStatus:
    REGISTERED = "registered"  # waiting for a second officer
    APPROVED = "approved"  # may decide
    RETIRED = "retired"  # may no longer decide; its past decisions stay provable


@dataclass(frozen=True, slots=True)
class ModelRecord:
    sha256: str  # of the model file's bytes: the model's identity
    name: str
    version: str
    card_sha256: str  # of the model card's canonical JSON
    member: str  # the member whose officers trained and approved it
    trainer: str  # the officer (staff user id) who trained and registered it
    status: str
    approver: str | None
    registered_height: int
    registered_ms: int
    approved_height: int | None
    approved_ms: int | None
    retired_height: int | None
    retired_ms: int | None
    tx_hash: str  # of the registration

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "name": self.name,
            "version": self.version,
            "card_sha256": self.card_sha256,
            "member": self.member,
            "trainer": self.trainer,
            "status": self.status,
            "approver": self.approver,
            "registered_height": self.registered_height,
            "registered_ms": self.registered_ms,
            "approved_height": self.approved_height,
            "approved_ms": self.approved_ms,
            "retired_height": self.retired_height,
            "retired_ms": self.retired_ms,
            "tx_hash": self.tx_hash,
        }

    def canonical(self) -> bytes:
        return canonical(self.to_json())  # validated: no hand-written encoding to vouch for

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    policy_id: str
    version: int
    member: str  # only this member adds versions
    officer: str  # who saved this version
    rules: dict[str, Any]  # the policy as `policy.parse_policy` accepted it
    saved_height: int
    saved_ms: int
    tx_hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "policy_id": self.policy_id,
            "version": self.version,
            "member": self.member,
            "officer": self.officer,
            "rules": self.rules,
            "saved_height": self.saved_height,
            "saved_ms": self.saved_ms,
            "tx_hash": self.tx_hash,
        }

    def canonical(self) -> bytes:
        return canonical(self.to_json())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class DecisionAnchor:
    decision_id: str
    record_sha256: str  # SHA-256 of the off-chain decision record's canonical JSON
    model_sha256: str
    policy_id: str
    policy_version: int
    member: str
    height: int
    time_ms: int
    tx_hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "record_sha256": self.record_sha256,
            "model_sha256": self.model_sha256,
            "policy_id": self.policy_id,
            "policy_version": self.policy_version,
            "member": self.member,
            "height": self.height,
            "time_ms": self.time_ms,
            "tx_hash": self.tx_hash,
        }

    def canonical(self) -> bytes:
        return canonical(self.to_json())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Repayment:
    id: str
    subject: str  # the borrower's DID
    member: str  # the lender that recorded it
    due_at_ms: int
    paid_at_ms: int | None  # None: not paid (late once the grace has passed)
    height: int
    tx_hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "subject": self.subject,
            "member": self.member,
            "due_at_ms": self.due_at_ms,
            "paid_at_ms": self.paid_at_ms,
            "height": self.height,
            "tx_hash": self.tx_hash,
        }

    def canonical(self) -> bytes:
        return canonical(self.to_json())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(**data)
