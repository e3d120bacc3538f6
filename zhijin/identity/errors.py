"""Identity errors: each has a stable `code` the API maps one to one to a problem+json response.
The generic ones every domain raises (`Forbidden`, `InvalidInput`, `Conflict`, the vault's
`DecryptionFailed`) are the platform's (zhijin/platform/errors.py).

Authentication failures deliberately share one code and one message whatever went wrong
(unknown login, wrong password, wrong TOTP), so a response never tells an attacker which part
of a guess was right.  Lockouts and rate limits also look the same for known and unknown logins.
"""

from __future__ import annotations

from zhijin.chain.errors import ZhijinError

__all__ = [
    "AuthenticationFailed",
    "CredentialInvalid",
    "CsrfFailed",
    "EnrolmentRequired",
    "LockedOut",
    "MfaRequired",
    "RateLimited",
    "ReauthenticationRequired",
    "SessionInvalid",
    "StepUpRequired",
]

GENERIC_LOGIN_FAILURE = "the login name, password or code is not correct"


class AuthenticationFailed(ZhijinError):
    code = "invalid_credentials"
    http_status = 401

    def __init__(self) -> None:
        super().__init__(message=GENERIC_LOGIN_FAILURE)


class LockedOut(ZhijinError):
    """Too many failures for this login name; `retry_after_ms` says when to try again."""

    code = "temporarily_locked"
    http_status = 429


class RateLimited(ZhijinError):
    code = "rate_limited"
    http_status = 429


class MfaRequired(ZhijinError):
    """The password was right and the account has TOTP: send the code too."""

    code = "mfa_required"
    http_status = 401


class SessionInvalid(ZhijinError):
    """Unknown, expired, revoked or malformed session or token.  One code for all of them."""

    code = "session_invalid"
    http_status = 401


class CsrfFailed(ZhijinError):
    code = "csrf_failed"
    http_status = 403


class ReauthenticationRequired(ZhijinError):
    code = "reauthentication_required"
    http_status = 401


class StepUpRequired(ZhijinError):
    """The step-up policy asks for a fresh TOTP before this action; `reasons` says why."""

    code = "step_up_required"
    http_status = 401


class EnrolmentRequired(ZhijinError):
    """A staff member signed in without an authenticator app: until they enrol one, their
    session may only enrol (POST /identity/totp/enrol and /confirm), read /me and sign out."""

    code = "staff_mfa_enrolment_required"
    http_status = 403


class CredentialInvalid(ZhijinError):
    """A verifiable credential or proof failed a check; the code names which one."""

    code = "credential_invalid"
    http_status = 422
