"""The identity HTTP API under `/api/v1/identity` (docs/identity.md lists every route).

Routes are thin: they parse, call one service method, and shape the answer.  Every
authentication endpoint takes a token from the per-address `auth-ip` bucket on top of the
service's own limits (login per address and per account, registration, MFA per user); a
refusal is a 429 problem+json with `Retry-After`.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from zhijin.identity import api_models, limits, ratelimit, totp
from zhijin.identity.anchoring import anchored_heads, audit_verify_json, confirmed_heads
from zhijin.identity.chainops import IdentityChain
from zhijin.identity.expected import IdentityHost
from zhijin.identity.kyc import KycDocument
from zhijin.identity.personal import PersonalDataService
from zhijin.identity.rbac import Permission, Principal, Resource, Role
from zhijin.identity.service import IdentityService, RequestSource
from zhijin.identity.web import (
    CurrentUser,
    EnrollingUser,
    IdentityDep,
    RequestSourceDep,
    clear_session_cookies,
    set_session_cookies,
)
from zhijin.platform import limits as platform_limits
from zhijin.platform.errors import InvalidInput
from zhijin.platform.http_edge import EdgeRoute, body_limit
from zhijin.platform.params import Cursor

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/identity", tags=["identity"], route_class=EdgeRoute)

Limit = Annotated[int, Query(ge=1, le=limits.PAGE_ROWS_MAX)]


def _auth_rate_limit(request: Request, source: RequestSourceDep) -> None:
    identity: IdentityService = request.app.state.identity
    ratelimit.check(identity.rate_limits, source.ip, ratelimit.AUTH_PER_IP, now_ms=identity.clock())


AuthRateLimit = Depends(_auth_rate_limit)


def _personal(request: Request) -> PersonalDataService:
    personal: PersonalDataService = request.app.state.platform.personal
    return personal


def _chain(request: Request) -> IdentityChain:
    chain: IdentityChain = request.app.state.platform.identity_chain
    return chain


def _member_did(request: Request) -> str:
    did: str = request.app.state.platform.node.key.did
    return did


PersonalDep = Annotated[PersonalDataService, Depends(_personal)]
ChainDep = Annotated[IdentityChain, Depends(_chain)]
MemberDid = Annotated[str, Depends(_member_did)]


def _user_json(identity: IdentityService, principal: Principal) -> dict[str, Any]:
    user = identity.store.user_by_id(principal.user_id)
    if user is None:
        raise InvalidInput("unknown_user", "no such user")
    return {
        "user_id": user.id,
        "login": user.login,
        "kind": user.kind,
        "roles": sorted(str(r) for r in principal.roles),
        "did": user.did,
        "member_did": user.member_did,
        "totp_enabled": user.totp_enabled,
        "enrolment_required": identity.enrolment_required(user=user, mfa_at_ms=principal.mfa_at_ms),
        "via": principal.via,
        "auth_at_ms": principal.auth_at_ms,
        "mfa_at_ms": principal.mfa_at_ms,
    }


# -- schemas --------------------------------------------------------------------------------
class _Strict(BaseModel):
    # An unknown field is a client's mistake (a misspelt `totp_code` would otherwise be
    # dropped and the login fail for the wrong reason): refuse it, as payments does.
    model_config = ConfigDict(extra="forbid")


class RegisterIn(_Strict):
    login: str = Field(max_length=limits.LOGIN_CHARS_MAX * 2)
    password: str = Field(max_length=limits.PASSWORD_CHARS_MAX * 4)
    kind: str = Field(default="individual", pattern="^(individual|sme_owner)$")


class LoginIn(_Strict):
    login: str = Field(max_length=limits.LOGIN_CHARS_MAX * 2)
    password: str = Field(max_length=limits.PASSWORD_CHARS_MAX * 4)
    totp_code: str | None = Field(default=None, max_length=16)
    recovery_code: str | None = Field(default=None, max_length=64)


class TokenIn(_Strict):
    name: str = Field(min_length=1, max_length=limits.API_TOKEN_NAME_CHARS_MAX)


class CodeIn(_Strict):
    code: str = Field(max_length=16)


class ReauthIn(_Strict):
    password: str | None = Field(default=None, max_length=limits.PASSWORD_CHARS_MAX * 4)
    totp_code: str | None = Field(default=None, max_length=16)


class StepUpIn(_Strict):
    totp_code: str = Field(max_length=16)


class StaffIn(_Strict):
    login: str = Field(max_length=limits.LOGIN_CHARS_MAX * 2)
    password: str = Field(max_length=limits.PASSWORD_CHARS_MAX * 4)
    roles: list[Role] = Field(min_length=1, max_length=len(Role))
    member_did: str | None = Field(default=None, max_length=limits.DID_CHARS_MAX)


class RoleIn(_Strict):
    role: Role


class PersonIn(_Strict):
    name: str = Field(max_length=limits.PERSON_NAME_CHARS_MAX * 2)
    resident_id: str = Field(max_length=32)
    mobile: str = Field(max_length=32)


class PersonalReadIn(_Strict):
    fields: list[str] = Field(min_length=1, max_length=8)
    purpose: str = Field(max_length=limits.CONSENT_NAME_CHARS_MAX)
    justification: str | None = Field(default=None, max_length=limits.JUSTIFICATION_CHARS_MAX)


class BusinessIn(_Strict):
    company_name: str = Field(max_length=limits.COMPANY_NAME_CHARS_MAX)
    uscc: str = Field(max_length=32)


class DocumentIn(_Strict):
    kind: str = Field(pattern="^[a-z][a-z0-9_]{0,39}$")
    media_type: str = Field(pattern="^[a-z]+/[a-z0-9.+-]{1,60}$")
    content_base64: str = Field(max_length=limits.KYC_REQUEST_BYTES_MAX)


class KycIn(_Strict):
    member_did: str | None = Field(default=None, max_length=limits.DID_CHARS_MAX)
    documents: list[DocumentIn] = Field(min_length=1, max_length=limits.KYC_DOCUMENTS_MAX)
    business: BusinessIn | None = None


class ReviewIn(_Strict):
    approve: bool
    # Why (kept in the audit entry); a rejection needs one.
    reason: str | None = Field(default=None, max_length=limits.KYC_REVIEW_REASON_CHARS_MAX)


class IssueIn(_Strict):
    subject_user_id: str = Field(max_length=40)


class CredentialIn(_Strict):
    credential: dict[str, Any]


class RevokeIn(_Strict):
    reason: str = Field(min_length=1, max_length=platform_limits.AUDIT_TEXT_CHARS_MAX)


class RotateIn(_Strict):
    compromised: bool = False


class ConsentIn(_Strict):
    grantee: str = Field(max_length=limits.DID_CHARS_MAX)
    category: str = Field(max_length=limits.CONSENT_NAME_CHARS_MAX)
    purpose: str = Field(max_length=limits.CONSENT_NAME_CHARS_MAX)
    until_ms: int | None = Field(default=None, ge=0)


# -- registration, login, sessions ------------------------------------------------------------
@router.post(
    "/register",
    status_code=201,
    dependencies=[AuthRateLimit],
    response_model=api_models.RegisteredOut,
)
def register(body: RegisterIn, identity: IdentityDep, source: RequestSourceDep) -> dict[str, Any]:
    user = identity.register(
        login=body.login, password=body.password, kind=body.kind, source=source
    )
    return {"user_id": user.id, "login": user.login, "kind": user.kind, "did": user.did}


@router.post("/login", dependencies=[AuthRateLimit], response_model=api_models.LoginOut)
def login(
    body: LoginIn,
    request: Request,
    response: Response,
    identity: IdentityDep,
    source: RequestSourceDep,
) -> dict[str, Any]:
    """Password (+ TOTP or a recovery code when enrolled) -> the session cookie.  Every
    failure is the same 401 `invalid_credentials` after the same Argon2 work.  A staff member
    without an authenticator gets a session that may only enrol one
    (`user.enrolment_required`: go to POST /totp/enrol, then /totp/confirm)."""
    device_id = source.device_id or secrets.token_urlsafe(24)
    issued = identity.login(
        login=body.login,
        password=body.password,
        totp_code=body.totp_code,
        recovery_code=body.recovery_code,
        source=RequestSource(ip=source.ip, device_id=device_id, location=source.location),
    )
    set_session_cookies(
        request, response, issued, device_id=None if source.device_id else device_id
    )
    return {
        "user": _user_json(identity, issued.principal),
        "csrf_token": issued.csrf_token,
        "expires_ms": issued.expires_ms,
        "risk": None if issued.login_decision is None else issued.login_decision.to_json(),
    }


@router.post("/logout", status_code=204, dependencies=[AuthRateLimit])
def logout(request: Request, user: EnrollingUser, identity: IdentityDep) -> Response:
    identity.logout(principal=user)
    response = Response(status_code=204)
    clear_session_cookies(request, response)
    return response


@router.post(
    "/sessions/revoke-others",
    dependencies=[AuthRateLimit],
    response_model=api_models.RevokedSessionsOut,
)
def revoke_other_sessions(user: CurrentUser, identity: IdentityDep) -> dict[str, int]:
    return {"revoked": identity.revoke_other_sessions(principal=user)}


@router.get("/me", response_model=api_models.UserView)
def me(user: EnrollingUser, identity: IdentityDep) -> dict[str, Any]:
    return _user_json(identity, user)


# -- API tokens -----------------------------------------------------------------------------
@router.post(
    "/tokens",
    status_code=201,
    dependencies=[AuthRateLimit],
    response_model=api_models.TokenCreatedOut,
)
def create_token(body: TokenIn, user: CurrentUser, identity: IdentityDep) -> dict[str, Any]:
    """A bearer token for an API client (shown once).  Needs a recent password check."""
    issued = identity.create_api_token(principal=user, name=body.name)
    return {
        "token": issued.token,
        "id": issued.session_id,
        "name": body.name,
        "expires_ms": issued.expires_ms,
    }


@router.get("/tokens", response_model=api_models.TokenPageOut)
def list_tokens(
    user: CurrentUser,
    identity: IdentityDep,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = limits.PAGE_ROWS_DEFAULT,
) -> dict[str, Any]:
    rows = identity.list_api_tokens(principal=user, after_id=after, limit=limit)
    now = identity.clock()
    items = [
        {
            "id": r.id,
            "name": r.name,
            "created_ms": r.created_ms,
            "last_seen_ms": r.last_seen_ms,
            "expires_ms": r.expires_ms,
            "revoked_ms": r.revoked_ms,
            "live": r.live(now),
        }
        for r in rows
    ]
    return {"items": items, "next": items[-1]["id"] if len(items) == limit else None}


@router.delete("/tokens/{token_id}", status_code=204, dependencies=[AuthRateLimit])
def revoke_token(token_id: str, user: CurrentUser, identity: IdentityDep) -> Response:
    identity.revoke_api_token(principal=user, token_id=token_id)
    return Response(status_code=204)


# -- TOTP, re-authentication, step-up ---------------------------------------------------------
@router.post(
    "/totp/enrol", dependencies=[AuthRateLimit], response_model=api_models.TotpEnrolmentOut
)
def totp_enrol(user: EnrollingUser, identity: IdentityDep) -> dict[str, str]:
    enrolment = identity.begin_totp_enrolment(principal=user)
    return {
        "uri": enrolment.uri,
        "secret": totp.secret_text(enrolment.secret),
        "qr_svg": enrolment.qr_svg_data_uri,
        "qr_png": enrolment.qr_png_data_uri,
    }


@router.post(
    "/totp/confirm", dependencies=[AuthRateLimit], response_model=api_models.RecoveryCodesOut
)
def totp_confirm(body: CodeIn, user: EnrollingUser, identity: IdentityDep) -> dict[str, Any]:
    codes = identity.confirm_totp_enrolment(principal=user, code=body.code)
    return {"recovery_codes": list(codes)}


@router.post(
    "/totp/recovery-codes", dependencies=[AuthRateLimit], response_model=api_models.RecoveryCodesOut
)
def recovery_codes(user: CurrentUser, identity: IdentityDep) -> dict[str, Any]:
    return {"recovery_codes": list(identity.regenerate_recovery_codes(principal=user))}


@router.post(
    "/reauthenticate", dependencies=[AuthRateLimit], response_model=api_models.FreshAuthOut
)
def reauthenticate(body: ReauthIn, user: CurrentUser, identity: IdentityDep) -> dict[str, Any]:
    fresh = identity.reauthenticate(
        principal=user, password=body.password, totp_code=body.totp_code
    )
    return {"auth_at_ms": fresh.auth_at_ms, "mfa_at_ms": fresh.mfa_at_ms}


@router.post("/step-up", dependencies=[AuthRateLimit], response_model=api_models.FreshMfaOut)
def step_up(body: StepUpIn, user: CurrentUser, identity: IdentityDep) -> dict[str, Any]:
    fresh = identity.step_up(principal=user, totp_code=body.totp_code)
    return {"mfa_at_ms": fresh.mfa_at_ms}


@router.post(
    "/keys/export",
    dependencies=[AuthRateLimit],
    response_model=api_models.ExportedKeysOut,
    response_model_exclude_unset=True,
)
def export_keys(user: CurrentUser, identity: IdentityDep, response: Response) -> dict[str, Any]:
    """The caller's custodial private keys (session only, fresh authenticator code; audited)."""
    response.headers["Cache-Control"] = "no-store"
    return identity.export_user_keys(principal=user)


# -- staff and roles ----------------------------------------------------------------------------
@router.post("/staff", status_code=201, response_model=api_models.StaffCreatedOut)
def create_staff(
    body: StaffIn, user: CurrentUser, identity: IdentityDep, member: MemberDid
) -> dict[str, Any]:
    created = identity.create_staff(
        principal=user,
        login=body.login,
        password=body.password,
        roles=frozenset(body.roles),
        member_did=body.member_did or member,
    )
    return {"user_id": created.id, "login": created.login, "roles": sorted(body.roles)}


@router.post("/users/{user_id}/roles", status_code=204)
def grant_role(user_id: str, body: RoleIn, user: CurrentUser, identity: IdentityDep) -> Response:
    identity.grant_role(principal=user, user_id=user_id, role=body.role)
    return Response(status_code=204)


@router.delete("/users/{user_id}/roles/{role}", status_code=204)
def revoke_role(user_id: str, role: Role, user: CurrentUser, identity: IdentityDep) -> Response:
    identity.revoke_role(principal=user, user_id=user_id, role=role)
    return Response(status_code=204)


# -- step-up policy ---------------------------------------------------------------------------
@router.get("/policy", response_model=api_models.PolicyOut)
def get_policy(user: CurrentUser, identity: IdentityDep) -> dict[str, Any]:
    return identity.policy_body(principal=user)


@router.put("/policy", response_model=api_models.PolicyVersionOut)
def set_policy(body: dict[str, Any], user: CurrentUser, identity: IdentityDep) -> dict[str, str]:
    """A new policy version (append-only; needs policy.update and a recent re-auth)."""
    policy = identity.set_policy(principal=user, body=body)
    return {"version": policy.version}


# -- personal data and KYC ----------------------------------------------------------------------
@router.put("/personal-data", status_code=204)
def save_personal_data(body: PersonIn, user: CurrentUser, personal: PersonalDep) -> Response:
    personal.save_person(
        principal=user, name=body.name, resident_id=body.resident_id, mobile=body.mobile
    )
    return Response(status_code=204)


@router.get(
    "/users/{user_id}/personal-data",
    response_model=api_models.PersonalDataOut,
    response_model_exclude_unset=True,
)
def read_personal_data(
    user_id: str,
    user: CurrentUser,
    personal: PersonalDep,
    fields: Annotated[list[str], Query(min_length=1, max_length=8)],
    purpose: Annotated[str, Query(max_length=limits.CONSENT_NAME_CHARS_MAX)],
    justification: Annotated[str | None, Query(include_in_schema=False)] = None,
) -> dict[str, str]:
    """Decrypt fields of a person record: own data, or member staff with the subject's on-chain
    consent for the purpose.  A read that needs a justification is a POST to `.../read`.
    Every read is audited."""
    if justification is not None:
        # A URL lands in access logs and proxies' logs; the reason for reading someone's data
        # is itself sensitive, so it travels only in a request body.
        raise InvalidInput(
            "justification_in_query",
            "send the justification in the JSON body of POST .../personal-data/read",
        )
    return personal.read_person(
        principal=user, subject_user_id=user_id, fields=fields, purpose=purpose
    )


@router.post(
    "/users/{user_id}/personal-data/read",
    response_model=api_models.PersonalDataOut,
    response_model_exclude_unset=True,
)
def read_personal_data_justified(
    user_id: str, body: PersonalReadIn, user: CurrentUser, personal: PersonalDep
) -> dict[str, str]:
    """The same read with its fields, purpose and justification in the body (regulator and
    admin reads need the justification)."""
    return personal.read_person(
        principal=user,
        subject_user_id=user_id,
        fields=body.fields,
        purpose=body.purpose,
        justification=body.justification,
    )


def _documents(documents: list[DocumentIn]) -> list[KycDocument]:
    result = []
    for document in documents:
        try:
            content = base64.b64decode(document.content_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput("invalid_document", "content_base64 is not base64") from exc
        result.append(KycDocument(document.kind, document.media_type, content))
    return result


@router.post(
    "/kyc",
    status_code=201,
    openapi_extra=body_limit(limits.KYC_REQUEST_BYTES_MAX),
    response_model=api_models.KycSubmittedOut,
)
def submit_kyc(
    body: KycIn, user: CurrentUser, personal: PersonalDep, member: MemberDid
) -> dict[str, Any]:
    """Documents go into the vault; only a salted commitment is anchored on chain."""
    uscc = None
    if body.business is not None:
        uscc = personal.save_business(
            principal=user, company_name=body.business.company_name, uscc=body.business.uscc
        )
    digest = personal.submit_kyc(
        principal=user, member_did=body.member_did or member, documents=_documents(body.documents)
    )
    return {"commitment": digest, "status": "pending", "uscc": uscc}


@router.get("/kyc", response_model=api_models.KycStatusOut, response_model_exclude_unset=True)
def kyc_status(user: CurrentUser, personal: PersonalDep) -> dict[str, Any]:
    """The caller's own KYC case (`none` until submitted), for the onboarding journey."""
    return personal.kyc_status(principal=user)


@router.get("/kyc/cases", response_model=api_models.KycCasePageOut)
def kyc_queue(
    user: CurrentUser,
    personal: PersonalDep,
    status: Annotated[str | None, Query(pattern="^(pending|approved|rejected)$")] = "pending",
    after: Annotated[str | None, Query(max_length=limits.CURSOR_CHARS_MAX)] = None,
    limit: Limit = limits.PAGE_ROWS_DEFAULT,
) -> dict[str, Any]:
    """The reviewers' queue (`kyc.review`): cases of the reviewer's member, oldest first;
    pending by default."""
    items = personal.kyc_queue(principal=user, status=status, after=after, limit=limit)
    return {"items": items, "next": items[-1]["cursor"] if len(items) == limit else None}


@router.post("/kyc/{user_id}/review", response_model=api_models.KycReviewedOut)
def review_kyc(
    user_id: str, body: ReviewIn, user: CurrentUser, personal: PersonalDep
) -> dict[str, str]:
    return {
        "status": personal.review_kyc(
            principal=user, subject_user_id=user_id, approve=body.approve, reason=body.reason
        )
    }


# -- credentials --------------------------------------------------------------------------------
@router.post(
    "/credentials",
    status_code=201,
    response_model=api_models.CredentialOut,
    response_model_exclude_unset=True,
)
def issue_credential(body: IssueIn, user: CurrentUser, chain: ChainDep) -> dict[str, Any]:
    return chain.issue_credential(principal=user, subject_user_id=body.subject_user_id)


@router.post(
    "/credentials/verify",
    dependencies=[AuthRateLimit],
    response_model=api_models.CredentialVerifiedOut,
)
def verify_credential(body: CredentialIn, chain: ChainDep) -> dict[str, Any]:
    """Anyone may verify: proof, issuer trust, validity period and on-chain status."""
    verified = chain.verify_credential(body.credential)
    return {
        "valid": True,
        "issuer": verified.issuer,
        "types": list(verified.types),
        "subject": dict(verified.subject),
        "verification_method": verified.proof.verification_method,
    }


@router.post("/credentials/{credential_id}/revoke", status_code=204)
def revoke_credential(
    credential_id: str, body: RevokeIn, user: CurrentUser, chain: ChainDep
) -> Response:
    chain.revoke_credential(principal=user, credential_id=credential_id, reason=body.reason)
    return Response(status_code=204)


# -- DIDs and consents ----------------------------------------------------------------------
@router.get("/did", response_model=api_models.DidInfoOut)
def did_info(user: CurrentUser, chain: ChainDep) -> dict[str, Any]:
    return chain.did_info(principal=user)


@router.post("/did/register", response_model=api_models.DidRegisteredOut)
def did_register(user: CurrentUser, chain: ChainDep) -> dict[str, Any]:
    return chain.register_did(principal=user)


@router.post("/did/rotate", response_model=api_models.DidRotatedOut)
def did_rotate(body: RotateIn, user: CurrentUser, chain: ChainDep) -> dict[str, Any]:
    return chain.rotate_did(principal=user, compromised=body.compromised)


@router.post("/did/deactivate", response_model=api_models.DidDeactivatedOut)
def did_deactivate(user: CurrentUser, chain: ChainDep) -> dict[str, Any]:
    return chain.deactivate_did(principal=user)


@router.get("/consents", response_model=api_models.ConsentPageOut)
def list_consents(
    user: CurrentUser,
    chain: ChainDep,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = limits.PAGE_ROWS_DEFAULT,
) -> dict[str, Any]:
    items = chain.list_consents(principal=user, after=after, limit=limit)
    return {"items": items, "next": items[-1]["consent"] if len(items) == limit else None}


@router.post("/consents", status_code=201, response_model=api_models.ConsentGrantedOut)
def grant_consent(
    body: ConsentIn, user: CurrentUser, chain: ChainDep, identity: IdentityDep
) -> dict[str, Any]:
    until_ms = body.until_ms or identity.clock() + limits.CONSENT_DEFAULT_MS
    return chain.grant_consent(
        principal=user,
        grantee=body.grantee,
        category=body.category,
        purpose=body.purpose,
        until_ms=until_ms,
    )


@router.post("/consents/revoke", response_model=api_models.ConsentRevokedOut)
def revoke_consent(body: ConsentIn, user: CurrentUser, chain: ChainDep) -> dict[str, Any]:
    return chain.revoke_consent(
        principal=user, grantee=body.grantee, category=body.category, purpose=body.purpose
    )


# -- audit log ----------------------------------------------------------------------------------
@router.get("/audit", response_model=api_models.AuditPageOut)
def read_audit(
    user: CurrentUser,
    identity: IdentityDep,
    member: MemberDid,
    after_seq: Cursor = 0,
    limit: Limit = limits.PAGE_ROWS_DEFAULT,
) -> dict[str, Any]:
    """Audit entries for auditors, regulators and compliance officers (entries hold ids,
    never personal data)."""
    identity.authorize(
        principal=user,
        permission=Permission.AUDIT_LOG_READ,
        resource=Resource("audit_log", member_did=member),
    )
    entries = identity.audit.entries(after_seq=after_seq, limit=limit)
    items = [
        {
            "seq": e.seq,
            "at_ms": e.at_ms,
            "actor": e.actor,
            "action": e.action,
            "target": e.target,
            "outcome": e.outcome,
            "reason": e.reason,
            "details": dict(e.details),
            "entry_hash": e.entry_hash,
        }
        for e in entries
    ]
    return {"items": items, "next": items[-1]["seq"] if len(items) == limit else None}


@router.get("/audit/verify", response_model=api_models.AuditVerifyOut)
def verify_audit(request: Request, user: CurrentUser, identity: IdentityDep) -> dict[str, Any]:
    identity.authorize(principal=user, permission=Permission.AUDIT_LOG_VERIFY)
    host: IdentityHost = request.app.state.platform
    member = host.node.key.did
    notary = host.notary_anchors
    anchors, unconfirmed = confirmed_heads(
        notary, anchored_heads(notary, owner=member), owner=member
    )
    report = identity.audit.verify(anchors=anchors)
    return audit_verify_json(report, anchors, unconfirmed)
