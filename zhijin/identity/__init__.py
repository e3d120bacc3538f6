"""Identity: users, passwords, TOTP MFA, RBAC with separation of duties, step-up authorisation,
DIDs and verifiable credentials, KYC, consent, the personal-data vault and the access audit log.

The public surface other domains and the API layer use is re-exported here; the modules
behind it are private to the domain (docs/identity.md describes each).
"""

from zhijin.identity.audit import AuditHead, AuditLog, AuditReport
from zhijin.identity.contracts import IDENTITY_CONTRACTS, consent_allows
from zhijin.identity.counters import PaymentCounters
from zhijin.identity.errors import (
    AuthenticationFailed,
    CredentialInvalid,
    CsrfFailed,
    DecryptionFailed,
    Forbidden,
    LockedOut,
    MfaRequired,
    RateLimited,
    ReauthenticationRequired,
    SessionInvalid,
    StepUpRequired,
)
from zhijin.identity.passwords import PRODUCTION_PARAMS, Argon2Params, PasswordHasher
from zhijin.identity.personal import IssuingMember, PersonalDataService
from zhijin.identity.rbac import Grant, Permission, Principal, Resource, Role, Scope, require
from zhijin.identity.service import SAFE_METHODS, IdentityService, IssuedSession, RequestSource
from zhijin.identity.stepup import Decision, GeoPoint, MovedAmount, RiskContext
from zhijin.identity.tables import create_tables
from zhijin.identity.vault import Sensitivity, Vault, VaultKeys

__all__ = [
    "IDENTITY_CONTRACTS",
    "PRODUCTION_PARAMS",
    "SAFE_METHODS",
    "Argon2Params",
    "AuditHead",
    "AuditLog",
    "AuditReport",
    "AuthenticationFailed",
    "CredentialInvalid",
    "CsrfFailed",
    "Decision",
    "DecryptionFailed",
    "Forbidden",
    "GeoPoint",
    "Grant",
    "IdentityService",
    "IssuedSession",
    "IssuingMember",
    "LockedOut",
    "MfaRequired",
    "MovedAmount",
    "PasswordHasher",
    "PaymentCounters",
    "Permission",
    "PersonalDataService",
    "Principal",
    "RateLimited",
    "ReauthenticationRequired",
    "RequestSource",
    "Resource",
    "RiskContext",
    "Role",
    "Scope",
    "Sensitivity",
    "SessionInvalid",
    "StepUpRequired",
    "Vault",
    "VaultKeys",
    "consent_allows",
    "create_tables",
    "require",
]
