"""Identity: users, passwords, TOTP MFA, RBAC with separation of duties, step-up authorisation,
DIDs and verifiable credentials, KYC, consent, and the request guard every domain's routes use
(`Guard`, `CallerDep`, `GuardDep`: who is calling, RBAC with scope, step-up with a risk
context, every decision audited).

The public surface other domains and the API layer use is re-exported here; the modules
behind it are private to the domain (docs/identity.md describes each).  The field vault, the
access audit log and the generic errors are the platform's (zhijin/platform/vault.py, audit.py,
errors.py): every domain uses them.
"""

from zhijin.identity.contracts import IDENTITY_CONTRACTS, consent_allows
from zhijin.identity.counters import PaymentCounters, Reservation
from zhijin.identity.errors import (
    AuthenticationFailed,
    CredentialInvalid,
    CsrfFailed,
    LockedOut,
    MfaRequired,
    RateLimited,
    ReauthenticationRequired,
    SessionInvalid,
    StepUpRequired,
)
from zhijin.identity.guard import (
    Caller,
    CallerDep,
    Guard,
    GuardDep,
    ListScope,
    Outflow,
    ReadPolicy,
    get_guard,
    resolve_caller,
)
from zhijin.identity.passwords import PRODUCTION_PARAMS, Argon2Params, PasswordHasher
from zhijin.identity.personal import IssuingMember, PersonalDataService
from zhijin.identity.rbac import Grant, Permission, Principal, Resource, Role, Scope, require
from zhijin.identity.service import SAFE_METHODS, IdentityService, IssuedSession, RequestSource
from zhijin.identity.stepup import Decision, GeoPoint, MovedAmount, RiskContext
from zhijin.identity.tables import create_tables

__all__ = [
    "IDENTITY_CONTRACTS",
    "PRODUCTION_PARAMS",
    "SAFE_METHODS",
    "Argon2Params",
    "AuthenticationFailed",
    "Caller",
    "CallerDep",
    "CredentialInvalid",
    "CsrfFailed",
    "Decision",
    "GeoPoint",
    "Grant",
    "Guard",
    "GuardDep",
    "IdentityService",
    "IssuedSession",
    "IssuingMember",
    "ListScope",
    "LockedOut",
    "MfaRequired",
    "MovedAmount",
    "Outflow",
    "PasswordHasher",
    "PaymentCounters",
    "Permission",
    "PersonalDataService",
    "Principal",
    "RateLimited",
    "ReadPolicy",
    "ReauthenticationRequired",
    "RequestSource",
    "Reservation",
    "Resource",
    "RiskContext",
    "Role",
    "Scope",
    "SessionInvalid",
    "StepUpRequired",
    "consent_allows",
    "create_tables",
    "get_guard",
    "require",
    "resolve_caller",
]
