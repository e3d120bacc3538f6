"""What the identity API returns: one output model per answer, so the OpenAPI is a contract.

The routes build plain dicts; these describe them field for field.  Three answers are W3C
JSON-LD documents (a verifiable credential, a DID document, exported Multikey entries) whose
members are the standard's, not ours: they declare the members we issue, in the order we issue
them, and allow others (`extra="allow"`), so a document's bytes are never reshaped by this model.
The step-up policy is the stored policy document (docs/identity.md): its rules' conditions are a
small expression tree, kept as JSON here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AuditPageOut",
    "AuditVerifyOut",
    "ConsentGrantedOut",
    "ConsentPageOut",
    "ConsentRevokedOut",
    "CredentialOut",
    "CredentialVerifiedOut",
    "DidDeactivatedOut",
    "DidInfoOut",
    "DidRegisteredOut",
    "DidRotatedOut",
    "ExportedKeysOut",
    "FreshAuthOut",
    "FreshMfaOut",
    "KycCasePageOut",
    "KycCaseView",
    "KycReviewedOut",
    "KycStatusOut",
    "KycSubmittedOut",
    "LoginOut",
    "PersonalDataOut",
    "PolicyOut",
    "PolicyVersionOut",
    "RecoveryCodesOut",
    "RegisteredOut",
    "RevokedSessionsOut",
    "StaffCreatedOut",
    "TokenCreatedOut",
    "TokenPageOut",
    "TotpEnrolmentOut",
    "UserView",
]


class _JsonLd(BaseModel):
    """A W3C document: the members we issue are declared; any other is kept as it is."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


# -- registration, login, sessions ----------------------------------------------------------------


class RegisteredOut(BaseModel):
    user_id: str
    login: str
    kind: str
    did: str | None


class UserView(BaseModel):
    user_id: str
    login: str
    kind: str
    roles: list[str]
    did: str | None
    member_did: str | None = Field(description="staff: the member they work for")
    totp_enabled: bool
    enrolment_required: bool = Field(
        description="staff without an authenticator: this session may only enrol one"
    )
    via: str = Field(description="session or api_token")
    auth_at_ms: int
    mfa_at_ms: int | None


class RiskView(BaseModel):
    outcome: str = Field(description="allow, step_up or deny")
    reasons: list[str]
    policy_version: str


class LoginOut(BaseModel):
    user: UserView
    csrf_token: str
    expires_ms: int
    risk: RiskView | None = Field(description="the login risk decision, when one was made")


class RevokedSessionsOut(BaseModel):
    revoked: int


class TokenCreatedOut(BaseModel):
    token: str = Field(description="shown once")
    id: str
    name: str
    expires_ms: int


class TokenView(BaseModel):
    id: str
    name: str
    created_ms: int
    last_seen_ms: int | None
    expires_ms: int
    revoked_ms: int | None
    live: bool


class TokenPageOut(BaseModel):
    items: list[TokenView]
    next: str | None = Field(description="the next page's `after`")


# -- TOTP, re-authentication, step-up ---------------------------------------------------------------


class TotpEnrolmentOut(BaseModel):
    uri: str = Field(description="otpauth:// URI")
    secret: str = Field(description="the same secret as base32 text, to type into an app")
    qr_svg: str = Field(description="data: URI")
    qr_png: str = Field(description="data: URI")


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str] = Field(description="shown once")


class FreshAuthOut(BaseModel):
    auth_at_ms: int
    mfa_at_ms: int | None


class FreshMfaOut(BaseModel):
    mfa_at_ms: int


class ExportedKeyView(_JsonLd):
    """A Multikey verification method with its secret (W3C Controlled Identifiers); member
    names are the standard's camelCase."""

    id: str
    type: str
    controller: str
    publicKeyMultibase: str
    secretKeyMultibase: str | None = None
    privateKeyJwk: dict[str, str] | None = None


class ExportedKeysOut(BaseModel):
    did: str
    keys: list[ExportedKeyView]


# -- staff, policy ----------------------------------------------------------------------------------


class StaffCreatedOut(BaseModel):
    user_id: str
    login: str
    roles: list[str]


class PolicyReferenceView(BaseModel):
    currency: str
    exponent: int
    rates: dict[str, str] = Field(description="currency -> reference units per unit, decimal")


class PolicyRuleView(BaseModel):
    id: str
    actions: list[str]
    when: dict[str, Any] = Field(description="a condition: field/op/value, or any/all of them")
    outcome: str
    reason: str | dict[str, str] = Field(
        description="one sentence for every language, or one per locale (zh_CN, en)"
    )


class PolicyOut(BaseModel):
    version: str
    fresh_mfa_ms: int
    utc_offset_minutes: int
    reference: PolicyReferenceView
    rules: list[PolicyRuleView]


class PolicyVersionOut(BaseModel):
    version: str


# -- personal data and KYC --------------------------------------------------------------------------


class PersonalDataOut(BaseModel):
    """The fields asked for, decrypted (only those)."""

    name: str | None = None
    resident_id: str | None = None
    birth_date: str | None = None
    mobile: str | None = None
    kyc_level: str | None = None


class KycSubmittedOut(BaseModel):
    commitment: str = Field(description="the salted commitment anchored on chain")
    status: str
    uscc: str | None = Field(description="the business's unified social credit code, if given")


class KycReviewedOut(BaseModel):
    status: str


class KycCaseView(BaseModel):
    user_id: str
    status: str = Field(description="pending, approved or rejected")
    member_did: str = Field(description="the member (bank) doing the KYC")
    commitment: str = Field(description="the salted commitment anchored on chain")
    submitted_ms: int
    reviewed_by: str | None = Field(description="the reviewing officer's user id")
    reviewed_ms: int | None
    cursor: str = Field(description="pass as `after` for the next page")


class KycStatusOut(BaseModel):
    status: str = Field(description="none (nothing submitted), pending, approved or rejected")
    personal_data_saved: bool = Field(description="PUT /personal-data was done")
    user_id: str | None = None
    member_did: str | None = None
    commitment: str | None = None
    submitted_ms: int | None = None
    reviewed_by: str | None = None
    reviewed_ms: int | None = None
    cursor: str | None = None


class KycCasePageOut(BaseModel):
    items: list[KycCaseView]
    next: str | None = Field(description="the `after` of the next page, null on the last")


# -- credentials ------------------------------------------------------------------------------------


class CredentialOut(_JsonLd):
    """A W3C Verifiable Credential (Data Model 2.0) with its Data Integrity proof; member
    names are the standard's camelCase."""

    context: list[str] = Field(alias="@context")
    id: str | None = None
    type: list[str]
    issuer: str
    validFrom: str | None = None
    credentialSubject: dict[str, Any]
    validUntil: str | None = None
    credentialStatus: dict[str, Any] | None = None
    proof: dict[str, Any]


class CredentialVerifiedOut(BaseModel):
    valid: bool
    issuer: str
    types: list[str]
    subject: dict[str, Any]
    verification_method: str


# -- DIDs and consents ------------------------------------------------------------------------------


class DidInfoOut(BaseModel):
    did: str = Field(description="the user's did:key")
    document: dict[str, Any] = Field(description="its W3C DID document")
    registered_did: str | None = Field(description="the user's did:zhijin, once registered")
    registered: dict[str, Any] | None = Field(description="the registry record on chain")


class DidRegisteredOut(BaseModel):
    did: str
    created: bool
    height: int


class DidRotatedOut(BaseModel):
    did: str
    key_id: str
    height: int


class DidDeactivatedOut(BaseModel):
    did: str
    deactivated_ms: int
    height: int


class ConsentView(BaseModel):
    consent: str = Field(description="the consent's hash")
    category: str
    granted_ms: int
    grantee: str
    purpose: str
    revoked_ms: int | None
    subject: str
    tx_hash: str
    until_ms: int


class ConsentPageOut(BaseModel):
    items: list[ConsentView]
    next: str | None = Field(description="the next page's `after`")


class ConsentGrantedOut(BaseModel):
    consent: str
    height: int


class ConsentRevokedOut(BaseModel):
    consent: str
    revoked_ms: int
    height: int


# -- audit log --------------------------------------------------------------------------------------


class AuditEntryView(BaseModel):
    seq: int
    at_ms: int
    actor: str
    action: str
    target: str
    outcome: str
    reason: str | None
    details: dict[str, Any] = Field(description="ids and flags of the action, never personal data")
    entry_hash: str


class AuditPageOut(BaseModel):
    items: list[AuditEntryView]
    next: int | None = Field(description="the next page's `after_seq`")


class AuditVerifyOut(BaseModel):
    ok: bool
    entries_checked: int
    first_bad_seq: int | None
    problem: str | None
    suspect_from_seq: int | None
    suspect_to_seq: int | None
    anchored_size: int
    unanchored_entries: int
    unanchored_note: str | None
    anchors_checked: int
    anchors_not_on_chain: list[int]
