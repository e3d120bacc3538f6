"""The identity service: registration, login, sessions and API tokens, TOTP, re-authentication,
step-up, role administration, and the audited authorisation (`authorize`) that the request
guard every other domain calls is built on (guard.py).

The API (api.py) reaches it as one object on `app.state`, through dependencies like these:

    def current_user(request) -> Principal:
        return service.authenticate(token=<cookie or bearer>, csrf_token=<X-CSRF-Token header>,
                                    unsafe_method=request.method not in SAFE_METHODS)
    CurrentUser = Annotated[Principal, Depends(current_user)]
    service.authorize(principal=user, permission="credit.decide", resource=...)
    service.check_action(principal=user, context=RiskContext(...))   # step-up

Every method is keyword-only and takes the time from the injected clock, never the wall clock
directly, so tests can move time.  Secrets (passwords, tokens, codes) never reach a log, an
audit entry or an exception message.
"""

from __future__ import annotations

import hmac
import logging
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy import Engine

from zhijin.chain.crypto import KeyPair
from zhijin.chain.errors import NotFound, invariant
from zhijin.identity import limits, ratelimit, totp
from zhijin.identity.counters import PaymentCounters
from zhijin.identity.errors import (
    AuthenticationFailed,
    CsrfFailed,
    EnrolmentRequired,
    LockedOut,
    MfaRequired,
    ReauthenticationRequired,
    SessionInvalid,
    StepUpRequired,
)
from zhijin.identity.geoip import GeoLocator
from zhijin.identity.keys import UserKeys, export_entries, load_user_keys, save_user_keys
from zhijin.identity.kyc import MFA_SCHEMA
from zhijin.identity.passwords import PasswordHasher, check_password_policy
from zhijin.identity.rbac import (
    INCOMPATIBLE_ROLES,
    STAFF_ROLES,
    Grant,
    Permission,
    Principal,
    Resource,
    Role,
    Scope,
    require,
    require_permission,
)
from zhijin.identity.stepup import (
    DEFAULT_POLICY,
    DEFAULT_STEP_UP_POLICY,
    Decision,
    GeoPoint,
    Outcome,
    RiskContext,
    StepUpPolicy,
    enforce,
    evaluate,
    load_stored_policy,
    parse_policy,
)
from zhijin.identity.store import IdentityStore, SessionRow, UserRow, hash_token, new_token
from zhijin.platform.audit import AuditEntry, AuditLog
from zhijin.platform.errors import Forbidden, InvalidInput
from zhijin.platform.i18n import LOCALES, gettext
from zhijin.platform.vault import Vault, VaultStore

__all__ = [
    "SAFE_METHODS",
    "IdentityService",
    "IssuedSession",
    "RequestSource",
    "normalize_login",
    "wall_clock_ms",
]

log = logging.getLogger("zhijin.identity")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_PREFIX = "zjs_"
API_TOKEN_PREFIX = "zjt_"
CSRF_PREFIX = "zjc_"
# Where a user without an authenticator starts enrolling one (the identity API's route).
TOTP_ENROL_PATH = "/api/v1/identity/totp/enrol"
_SELF_SERVICE_KINDS = {"individual": Role.CUSTOMER, "sme_owner": Role.SME_OWNER}
_STAFF_KIND = "institution_staff"


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def normalize_login(login: str) -> str:
    """NFKC + casefold + trim: "Alice@Example.com " and "alice@example.com" are one login."""
    return unicodedata.normalize("NFKC", login).strip().casefold()


@dataclass(frozen=True, slots=True)
class RequestSource:
    """Where a request came from, as the HTTP layer saw it."""

    ip: str
    device_id: str | None = None  # a long-lived random device cookie, or an app install id
    location: GeoPoint | None = None  # from IP geolocation or the app, when known


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """A new session or API token.  The secrets are shown once; only their hashes are kept."""

    token: str
    csrf_token: str | None
    session_id: str
    principal: Principal
    expires_ms: int
    login_decision: Decision | None = None

    def __repr__(self) -> str:
        return f"IssuedSession(session_id={self.session_id[:12]!r}..., user={self.principal.user_id!r})"


class IdentityService:
    def __init__(
        self,
        *,
        engine: Engine,
        vault: Vault,
        hasher: PasswordHasher,
        clock: Callable[[], int] = wall_clock_ms,
        rate_limits: ratelimit.RateLimitStore | None = None,
        totp_config: totp.TotpConfig = totp.DEFAULT_CONFIG,
        locator: GeoLocator | None = None,
    ) -> None:
        self.store = IdentityStore(engine)
        # What each user moved, for the step-up policy's cumulative facts (counters.py).
        self.counters = PaymentCounters(engine)
        self.locator = locator  # where a client address is (ZHIJIN_GEOIP_DB), when configured
        self.vault = vault
        self.vault_store = VaultStore(engine)
        self.audit = AuditLog(engine)
        self.hasher = hasher
        self.clock = clock
        self.rate_limits = rate_limits or ratelimit.SqlRateLimitStore(engine)
        self.totp_config = totp_config

    # -- helpers ------------------------------------------------------------------------------
    def _login_key(self, login: str) -> str:
        # Keyed, so the lockout table and audit entries do not reveal login names (often phone
        # numbers, which an unkeyed hash would give away to enumeration).  While the index
        # secret rotates, a counter still under the previous digest is moved first, so no
        # lockout is missed.
        current, *previous = self.vault.keyed_digests("login", login)
        for old in previous:
            self.store.move_login_key(old, current, now_ms=self.clock())
        return current

    def record(self, *, actor: str, action: str, target: str, outcome: str, **extra: Any) -> None:
        """Append one entry to the access audit log at the service's clock: who (`actor`, a
        `user:<id>`), did what (`action`, a permission or an event name) to what (`target`),
        with which `outcome` (`ok`, a refusal's code); `reason` and the other keywords are
        its details (ids and figures, never personal data). Identity's services (personal
        data, chain operations) record through it; an entry is never edited."""
        reason = extra.pop("reason", None)
        self.audit.append(
            actor=actor,
            action=action,
            target=target,
            outcome=outcome,
            at_ms=self.clock(),
            reason=reason,
            details=extra,
        )

    def _principal(self, user: UserRow, row: SessionRow) -> Principal:
        return Principal(
            user_id=user.id,
            roles=self.store.roles_of(user.id),
            member_did=user.member_did,
            session_id=row.id,
            auth_at_ms=row.auth_at_ms,
            mfa_at_ms=row.mfa_at_ms,
            via="session" if row.kind == "session" else "token",
        )

    def current_policy(self) -> StepUpPolicy:
        body = self.store.latest_policy()
        return DEFAULT_STEP_UP_POLICY if body is None else load_stored_policy(body)

    # -- registration -------------------------------------------------------------------------
    def register(self, *, login: str, password: str, kind: str, source: RequestSource) -> UserRow:
        """Self-registration of an individual or a small-business owner."""
        now = self.clock()
        ratelimit.check(self.rate_limits, source.ip, ratelimit.REGISTER_PER_IP, now_ms=now)
        if kind not in _SELF_SERVICE_KINDS:
            raise InvalidInput("invalid_kind", "self-registration is for individual or sme_owner")
        name = self._valid_login(login)
        check_password_policy(password, login=name)
        user = self.store.create_user(
            login=name,
            kind=kind,
            password_hash=self.hasher.hash(password),
            roles=frozenset({_SELF_SERVICE_KINDS[kind]}),
            granted_by="self-registration",
            now_ms=now,
        )
        did = self._create_user_did(user.id)
        self.record(
            actor=f"user:{user.id}",
            action="user.register",
            target=f"user:{user.id}",
            outcome="ok",
            kind=kind,
            did=did,
        )
        registered = self.store.user_by_id(user.id)
        invariant(registered is not None, "a user just created is readable")
        assert registered is not None  # for mypy: invariant() raised otherwise
        return registered

    # -- the user's DID -----------------------------------------------------------------------
    def _create_user_did(self, user_id: str) -> str:
        """A fresh did:key for an end user, its seed sealed in the vault (see keys.py)."""
        key = KeyPair.generate()
        save_user_keys(
            self.vault, self.vault_store, user_id, UserKeys(did_key=key), now_ms=self.clock()
        )
        self.store.update_user(user_id, did=key.did)
        return key.did

    def user_did(self, *, principal: Principal) -> str:
        """The DID that owns this end user's accounts (created now for accounts made before
        DIDs were given at registration).  Staff act for their member and have none."""
        user = self._user(principal)
        if user.did is not None:
            return user.did
        if user.kind not in _SELF_SERVICE_KINDS:
            raise Forbidden("no_user_did", "staff accounts act for their member and own no DID")
        return self._create_user_did(user.id)

    def user_keys(self, *, user_id: str) -> UserKeys:
        """The user's custodial keys (for signing their own DID and consent transactions)."""
        keys = load_user_keys(self.vault, self.vault_store, user_id)
        if keys is None:
            raise InvalidInput("no_user_key", "this account holds no custodial key")
        return keys

    def export_user_keys(self, *, principal: Principal) -> dict[str, Any]:
        """The user's custodial private keys, to hold them in a wallet of their own.

        Only from a browser session (never with an API token, which a script or a leaked
        configuration file may hold), by an end user with an authenticator app, within
        KEY_EXPORT_FRESH_MFA_MS of a code (`step_up`).  Every export and refusal is audited.
        The platform keeps its copy: custody is shared from then on, and a user who wants sole
        control registers a did:zhijin and rotates it.
        """
        user = self._user(principal)
        target = f"user:{user.id}"
        try:
            if principal.via != "session":
                raise Forbidden("session_required", "keys are exported from a signed-in session")
            if user.kind not in _SELF_SERVICE_KINDS:
                raise Forbidden("no_user_did", "staff accounts act for their member and own no key")
            if not user.totp_enabled:
                raise StepUpRequired("mfa_enrolment_required", "set up an authenticator app first")
            mfa_at = principal.mfa_at_ms
            if mfa_at is None or not 0 <= self.clock() - mfa_at <= limits.KEY_EXPORT_FRESH_MFA_MS:
                raise StepUpRequired(
                    message="confirm the export with a fresh authenticator code",
                    reasons=["key_export: exporting private keys needs a fresh second factor"],
                    reasons_by_locale={
                        locale: [gettext(locale, "stepup.reason.key_export")] for locale in LOCALES
                    },
                )
        except (Forbidden, StepUpRequired) as exc:
            self.record(actor=target, action="identity.key.export", target=target, outcome=exc.code)
            raise
        keys = self.user_keys(user_id=user.id)
        entries = export_entries(keys)
        self.record(
            actor=target,
            action="identity.key.export",
            target=target,
            outcome="ok",
            keys=[entry["id"] for entry in entries],
        )
        return {"did": keys.did_key.did, "keys": entries}

    def save_user_keys(self, *, user_id: str, keys: UserKeys) -> None:
        save_user_keys(self.vault, self.vault_store, user_id, keys, now_ms=self.clock())

    @staticmethod
    def _valid_login(login: str) -> str:
        name = normalize_login(login)
        if not limits.LOGIN_CHARS_MIN <= len(name) <= limits.LOGIN_CHARS_MAX or any(
            unicodedata.category(ch).startswith("C") or ch.isspace() for ch in name
        ):
            raise InvalidInput(
                "invalid_login", "a login name is 3 to 128 printable characters, no spaces"
            )
        return name

    def bootstrap_admin(self, *, login: str, password: str, member_did: str) -> UserRow:
        """The first administrator, created by the operator's CLI (no principal exists yet)."""
        name = self._valid_login(login)
        check_password_policy(password, login=name)
        user = self.store.create_user(
            login=name,
            kind=_STAFF_KIND,
            password_hash=self.hasher.hash(password),
            roles=frozenset({Role.ADMIN}),
            granted_by="operator-cli",
            now_ms=self.clock(),
            member_did=member_did,
        )
        self.record(
            actor="operator",
            action="user.create_admin",
            target=f"user:{user.id}",
            outcome="ok",
        )
        return user

    def create_staff(
        self,
        *,
        principal: Principal,
        login: str,
        password: str,
        roles: frozenset[Role],
        member_did: str,
    ) -> UserRow:
        """An administrator creates an institution staff account with its roles."""
        self.authorize(
            principal=principal, permission=Permission.USER_MANAGE, resource=Resource("user")
        )
        _check_role_set(roles, staff=True)
        name = self._valid_login(login)
        check_password_policy(password, login=name)
        user = self.store.create_user(
            login=name,
            kind=_STAFF_KIND,
            password_hash=self.hasher.hash(password),
            roles=frozenset(),
            granted_by=principal.user_id,
            now_ms=self.clock(),
            member_did=member_did,
        )
        for role in sorted(roles):
            self.grant_role(principal=principal, user_id=user.id, role=role)
        return user

    def list_staff(
        self, *, principal: Principal, after_login: str | None, limit: int
    ) -> list[tuple[UserRow, frozenset[Role]]]:
        """The institution's staff accounts with their roles (`user.read`; an `all` grant
        sees every member's staff, a `member` grant its own member's), in login order."""
        grant = self.authorize(principal=principal, permission=Permission.USER_READ)
        member = None if grant.scope is Scope.ALL else principal.member_did
        if member is None and grant.scope is not Scope.ALL:
            raise Forbidden("out_of_scope", "the staff list is for staff of a member")
        return self.store.staff_users(
            member_did=member,
            after_login=after_login,
            limit=max(1, min(limit, limits.PAGE_ROWS_MAX)),
        )

    def grantable_roles(self, *, roles: frozenset[Role]) -> tuple[Role, ...]:
        """The roles a staff account holding `roles` may still be given: the separation of
        duties (INCOMPATIBLE_ROLES) decides, as `grant_role` does, so a page offers only these."""
        offered = []
        for role in sorted(STAFF_ROLES):
            if role in roles:
                continue
            try:
                _check_role_set(roles | {role}, staff=True)
            except Forbidden:
                continue
            offered.append(role)
        return tuple(offered)

    def grant_role(self, *, principal: Principal, user_id: str, role: Role) -> None:
        self.authorize_permission(
            principal=principal, permission=Permission.ROLE_ASSIGN, target=f"user:{user_id}"
        )
        target = self.store.user_by_id(user_id)
        if target is None:
            raise InvalidInput("unknown_user", "no such user")
        self.authorize(
            principal=principal,
            permission=Permission.ROLE_ASSIGN,
            resource=Resource("user", id=user_id, subject_id=user_id),
        )
        roles = self.store.roles_of(user_id) | {role}
        try:
            _check_role_set(roles, staff=target.kind == _STAFF_KIND)
        except Forbidden as exc:
            self.record(
                actor=f"user:{principal.user_id}",
                action="role.assign",
                target=f"user:{user_id}",
                outcome=exc.code,
                role=str(role),
            )
            raise
        self.store.grant_role(user_id, role, granted_by=principal.user_id, now_ms=self.clock())
        self.record(
            actor=f"user:{principal.user_id}",
            action="role.assign",
            target=f"user:{user_id}",
            outcome="ok",
            role=str(role),
        )

    def revoke_role(self, *, principal: Principal, user_id: str, role: Role) -> None:
        self.authorize(
            principal=principal,
            permission=Permission.ROLE_ASSIGN,
            resource=Resource("user", id=user_id, subject_id=user_id),
        )
        self.store.revoke_role(user_id, role)
        # A role change takes effect at once: the user's sessions carry no cached roles, but
        # revoke them anyway so a removed officer's open browser tab is gone too.
        self.store.revoke_user_sessions(user_id, now_ms=self.clock())
        self.record(
            actor=f"user:{principal.user_id}",
            action="role.revoke",
            target=f"user:{user_id}",
            outcome="ok",
            role=str(role),
        )

    # -- login --------------------------------------------------------------------------------
    def login(
        self,
        *,
        login: str,
        password: str,
        source: RequestSource,
        totp_code: str | None = None,
        recovery_code: str | None = None,
    ) -> IssuedSession:
        """Password (+ TOTP or a recovery code when enrolled) -> a browser session.

        Unknown login, wrong password, disabled account and wrong code all raise the same
        AuthenticationFailed after the same Argon2 work.  Failures count per login name; at
        `LOGIN_FAILURES_MAX` the name is locked for `LOCKOUT_MS` (doubling each time).
        """
        now = self.clock()
        name = normalize_login(login)
        login_key = self._login_key(name)
        ratelimit.check(self.rate_limits, source.ip, ratelimit.LOGIN_PER_IP, now_ms=now)
        ratelimit.check(self.rate_limits, login_key, ratelimit.LOGIN_PER_ACCOUNT, now_ms=now)
        locked_until = self.store.locked_until(login_key)
        if now < locked_until:
            self.record(
                actor="anonymous",
                action="auth.login",
                target=f"login:{login_key[:16]}",
                outcome="locked",
                ip=source.ip,
            )
            raise LockedOut(
                message="too many failed attempts; try again later",
                retry_after_ms=locked_until - now,
            )
        user = self.store.user_by_login(name)
        usable = user if user is not None and user.status == "active" else None
        password_ok = self.hasher.verify(None if usable is None else usable.password_hash, password)
        if usable is None or not password_ok:
            self._fail(login_key, user, source, "bad_password")
        if usable.totp_enabled:
            self._second_factor(usable, login_key, source, totp_code, recovery_code)
        decision = self._login_risk(usable, source, now)
        self.store.clear_failures(login_key)
        if self.hasher.needs_rehash(usable.password_hash):
            self.store.update_user(usable.id, password_hash=self.hasher.hash(password))
        mfa_at = now if usable.totp_enabled else None
        enrolment_only = _is_staff(usable, self.store.roles_of(usable.id)) and not (
            usable.totp_enabled
        )
        issued = self._issue(
            usable,
            kind="session",
            source=source,
            auth_at_ms=now,
            mfa_at_ms=mfa_at,
            decision=decision,
        )
        self.record(
            actor=f"user:{usable.id}",
            action="auth.login",
            target=f"user:{usable.id}",
            outcome="ok",
            ip=source.ip,
            mfa=mfa_at is not None,
            enrolment_only=enrolment_only,
            risk=decision.to_json(),
        )
        return issued

    def _fail(
        self, login_key: str, user: UserRow | None, source: RequestSource, why: str
    ) -> NoReturn:
        locked_until = self.store.record_failure(login_key, now_ms=self.clock())
        actor = "anonymous" if user is None else f"user:{user.id}"
        self.record(
            actor=actor,
            action="auth.login",
            target=f"login:{login_key[:16]}",
            outcome="failed",
            reason=why,
            ip=source.ip,
            locked=locked_until > self.clock(),
        )
        raise AuthenticationFailed()

    def _second_factor(
        self,
        user: UserRow,
        login_key: str,
        source: RequestSource,
        totp_code: str | None,
        recovery_code: str | None,
    ) -> None:
        if totp_code is None and recovery_code is None:
            raise MfaRequired(message="enter the code from your authenticator app")
        if totp_code is not None:
            if not self._consume_totp(user, totp_code):
                self._fail(login_key, user, source, "bad_totp")
            return
        code_hash = totp.hash_recovery_code(recovery_code or "")
        if not self.store.use_recovery_code(user.id, code_hash, now_ms=self.clock()):
            self._fail(login_key, user, source, "bad_recovery_code")
        self.record(
            actor=f"user:{user.id}",
            action="auth.recovery_code_used",
            target=f"user:{user.id}",
            outcome="ok",
            left=self.store.recovery_codes_left(user.id),
        )

    def _consume_totp(self, user: UserRow, code: str) -> bool:
        secret = self._mfa_secret(user.id, "totp_secret")
        if secret is None:
            return False
        step = totp.match_step(
            secret,
            code,
            now_s=self.clock() // 1000,
            last_used_step=user.totp_last_step,
            config=self.totp_config,
        )
        # The conditional update is the replay check that holds under concurrency: of two
        # requests with the same code, only one moves totp_last_step forward.
        return step is not None and self.store.consume_totp_step(user.id, step)

    @staticmethod
    def _last_location(user: UserRow) -> GeoPoint | None:
        if user.last_lat_e6 is None or user.last_lon_e6 is None:
            return None
        return GeoPoint(user.last_lat_e6, user.last_lon_e6)

    def last_login(self, *, principal: Principal) -> tuple[GeoPoint | None, int | None]:
        """Where and when the user last signed in (for another action's travel checks)."""
        user = self._user(principal)
        return self._last_location(user), user.last_login_ms

    def _login_risk(self, user: UserRow, source: RequestSource, now: int) -> Decision:
        last = self._last_location(user)
        device_known = (
            None
            if source.device_id is None
            else self.store.device_known(user.id, self._device_hash(source.device_id))
        )
        context = RiskContext(
            action="login",
            now_ms=now,
            device_known=device_known,
            location=source.location,
            last_location=last,
            last_login_ms=user.last_login_ms,
        )
        decision = evaluate(self.current_policy(), context)
        if decision.outcome is Outcome.DENY:
            self.record(
                actor=f"user:{user.id}",
                action="auth.login",
                target=f"user:{user.id}",
                outcome="denied_by_policy",
                ip=source.ip,
                risk=decision.to_json(),
            )
            enforce(decision, mfa_at_ms=None, now_ms=now)
        # A step-up at login is met by the TOTP every enrolled user gives anyway.  A user without
        # TOTP still gets in, with a session that has no second factor: any later action the
        # policy steps up will ask for one, which needs enrolment first.
        return decision

    def _device_hash(self, device_id: str) -> str:
        current, *previous = self.vault.keyed_digests("device", device_id)
        for old in previous:  # mid-rotation: see _login_key
            self.store.move_device_hash(old, current)
        return current

    def _issue(
        self,
        user: UserRow,
        *,
        kind: str,
        source: RequestSource | None,
        auth_at_ms: int,
        mfa_at_ms: int | None,
        decision: Decision | None = None,
        name: str | None = None,
    ) -> IssuedSession:
        now = self.clock()
        browser = kind == "session"
        token = new_token(SESSION_PREFIX if browser else API_TOKEN_PREFIX)
        csrf = new_token(CSRF_PREFIX, limits.CSRF_TOKEN_BYTES) if browser else None
        device_hash = (
            None
            if source is None or source.device_id is None
            else self._device_hash(source.device_id)
        )
        row = SessionRow(
            id=hash_token(token),
            user_id=user.id,
            kind=kind,
            name=name,
            created_ms=now,
            last_seen_ms=now,
            idle_ms=limits.SESSION_IDLE_MS if browser else limits.API_TOKEN_IDLE_MS,
            expires_ms=now
            + (limits.SESSION_ABSOLUTE_MS if browser else limits.API_TOKEN_ABSOLUTE_MS),
            revoked_ms=None,
            csrf_hash=None if csrf is None else hash_token(csrf),
            auth_at_ms=auth_at_ms,
            mfa_at_ms=mfa_at_ms,
            device_hash=device_hash,
        )
        self.store.insert_session(row)
        if browser and source is not None:
            if device_hash is not None and source.device_id is not None:
                # Sealed beside its digest so an index-secret rotation can recompute it.
                sealed = self.vault.seal_indexed("device", user.id, source.device_id)
                self.store.remember_device(user.id, device_hash, now_ms=now, device_sealed=sealed)
            location = source.location
            self.store.record_login(
                user.id,
                now_ms=now,
                lat_e6=None if location is None else location.lat_e6,
                lon_e6=None if location is None else location.lon_e6,
            )
        return IssuedSession(
            token, csrf, row.id, self._principal(user, row), row.expires_ms, decision
        )

    # -- sessions and tokens -------------------------------------------------------------------
    def authenticate(
        self,
        *,
        token: str,
        csrf_token: str | None = None,
        unsafe_method: bool = False,
        enrolment_only_ok: bool = False,
    ) -> Principal:
        """The `current_user` of every route: a live session or API token -> Principal.

        Browser sessions must present their CSRF token on unsafe methods (the cookie is sent by
        the browser automatically; the token only by our own pages).  Bearer tokens are not
        sent automatically, so they need none.

        Staff act for their institution, so every staff session must carry a second factor:
        one without (a staff member who has not enrolled an authenticator yet) is refused with
        `staff_mfa_enrolment_required`, except on the few routes that pass
        `enrolment_only_ok` (enrol, confirm, who am I, sign out).
        """
        prefix = token[:4]
        if prefix not in (SESSION_PREFIX, API_TOKEN_PREFIX) or len(token) > 128:
            log.warning("refused a malformed session token")
            raise SessionInvalid(message="sign in again")
        row = self.store.session(hash_token(token))
        if row is None:
            log.warning("refused an unknown session token")
            raise SessionInvalid(message="sign in again")
        now = self.clock()
        expected_kind = "session" if prefix == SESSION_PREFIX else "token"
        user = self.store.user_by_id(row.user_id)
        if (
            row.kind != expected_kind
            or not row.live(now)
            or user is None
            or user.status != "active"
        ):
            why = "revoked" if row.revoked_ms is not None else "expired"
            self.record(
                actor=f"user:{row.user_id}",
                action="auth.session",
                target=f"session:{row.id[:16]}",
                outcome="refused",
                reason=why,
            )
            raise SessionInvalid(message="sign in again")
        if row.kind == "session" and unsafe_method:
            given = hash_token(csrf_token) if csrf_token else ""
            if row.csrf_hash is None or not hmac.compare_digest(given, row.csrf_hash):
                self.record(
                    actor=f"user:{row.user_id}",
                    action="auth.csrf",
                    target=f"session:{row.id[:16]}",
                    outcome="refused",
                )
                raise CsrfFailed(message="missing or wrong CSRF token")
        principal = self._principal(user, row)
        if not enrolment_only_ok and _needs_enrolment(user, principal.roles, row.mfa_at_ms):
            self.record(
                actor=f"user:{row.user_id}",
                action="auth.session",
                target=f"session:{row.id[:16]}",
                outcome="refused",
                reason="staff_mfa_enrolment_required",
            )
            raise EnrolmentRequired(
                message="staff sign in with an authenticator app: set one up first"
            )
        if now - row.last_seen_ms >= limits.SESSION_TOUCH_INTERVAL_MS:
            self.store.touch_session(row.id, now_ms=now)
        return principal

    def enrolment_required(self, *, user: UserRow, mfa_at_ms: int | None) -> bool:
        """Whether a session of `user` may only enrol: staff with no authenticator, or a staff
        session that never gave a second factor (a token made before the rule)."""
        return _needs_enrolment(user, self.store.roles_of(user.id), mfa_at_ms)

    def session_live(self, *, principal: Principal) -> bool:
        """Whether the principal's session or token still stands, without counting as activity
        (for a long-lived stream, which must not keep an idle session alive)."""
        if principal.session_id is None:
            return True  # not from a session (the operator)
        row = self.store.session(principal.session_id)
        user = self.store.user_by_id(principal.user_id)
        return (
            row is not None
            and row.live(self.clock())
            and user is not None
            and user.status == "active"
        )

    def logout(self, *, principal: Principal) -> None:
        if principal.session_id is not None:
            self.store.revoke_session(principal.session_id, now_ms=self.clock())
        self.record(
            actor=f"user:{principal.user_id}",
            action="auth.logout",
            target=f"user:{principal.user_id}",
            outcome="ok",
        )

    def revoke_other_sessions(self, *, principal: Principal) -> int:
        """ "Sign out everywhere else" (also revokes API tokens)."""
        count = self.store.revoke_user_sessions(
            principal.user_id, now_ms=self.clock(), keep=principal.session_id
        )
        self.record(
            actor=f"user:{principal.user_id}",
            action="auth.revoke_sessions",
            target=f"user:{principal.user_id}",
            outcome="ok",
            count=count,
        )
        return count

    def list_sessions(self, *, principal: Principal) -> list[SessionRow]:
        """The user's live browser sessions, newest first: the security page's "sessions and
        devices" (each signed out on its own with `revoke_session`)."""
        now = self.clock()
        rows = self.store.user_sessions(principal.user_id, limit=limits.SESSIONS_PER_USER_MAX)
        return [row for row in rows if row.live(now)]

    def revoke_session(self, *, principal: Principal, session_id: str) -> None:
        """Sign out one of the user's own sessions (their current one is `logout`)."""
        if session_id == principal.session_id:
            raise InvalidInput("current_session", "sign out of this session with sign-out")
        if not self.store.revoke_user_session(principal.user_id, session_id, now_ms=self.clock()):
            raise NotFound("unknown_session", "no such live session")
        self.record(
            actor=f"user:{principal.user_id}",
            action="auth.revoke_session",
            target=f"session:{session_id[:16]}",
            outcome="ok",
        )

    def change_password(
        self, *, principal: Principal, current_password: str, new_password: str
    ) -> int:
        """Replace the password after checking the current one (a wrong one counts towards
        the lockout, as at sign-in); every other session and API token is signed out, since
        whoever knew the old password may hold one.  Returns how many were signed out."""
        user = self._user(principal)
        self.reauthenticate(principal=principal, password=current_password)
        check_password_policy(new_password, login=user.login)
        if self.hasher.verify(user.password_hash, new_password):
            raise InvalidInput("password_unchanged", "the new password is the current one")
        self.store.update_user(user.id, password_hash=self.hasher.hash(new_password))
        count = self.store.revoke_user_sessions(
            user.id, now_ms=self.clock(), keep=principal.session_id
        )
        self.record(
            actor=f"user:{user.id}",
            action="auth.password_change",
            target=f"user:{user.id}",
            outcome="ok",
            signed_out=count,
        )
        return count

    def create_api_token(self, *, principal: Principal, name: str) -> IssuedSession:
        """A bearer token for an API client.  Needs a recent password (or TOTP) check."""
        self.require_recent_auth(principal=principal)
        if not 0 < len(name) <= limits.API_TOKEN_NAME_CHARS_MAX:
            raise InvalidInput("invalid_name", "a token name is 1 to 64 characters")
        user = self._user(principal)
        issued = self._issue(
            user,
            kind="token",
            source=None,
            auth_at_ms=principal.auth_at_ms,
            mfa_at_ms=principal.mfa_at_ms,
            name=name,
        )
        self.record(
            actor=f"user:{user.id}",
            action="auth.api_token",
            target=f"session:{issued.session_id[:16]}",
            outcome="ok",
            name=name,
        )
        return issued

    def list_api_tokens(
        self, *, principal: Principal, after_id: str | None = None, limit: int = 50
    ) -> list[SessionRow]:
        limit = max(1, min(limit, limits.PAGE_ROWS_MAX))
        return self.store.api_tokens(principal.user_id, after_id=after_id, limit=limit)

    def revoke_api_token(self, *, principal: Principal, token_id: str) -> None:
        if not self.store.revoke_user_token(principal.user_id, token_id, now_ms=self.clock()):
            raise NotFound("unknown_token", "no such live API token")
        self.record(
            actor=f"user:{principal.user_id}",
            action="auth.api_token_revoke",
            target=f"session:{token_id[:16]}",
            outcome="ok",
        )

    def device_known(self, *, principal: Principal, source: RequestSource) -> bool | None:
        """Whether the request comes from a device this user had signed in from before the
        current sign-in (None: the request carries no device cookie, e.g. an API client).
        A device first seen at this session's own login is new: the step-up policy's
        `new_device` rule then asks for a fresh second factor for risky actions.  An API
        token is its client's registered device: it was issued after a fresh password check."""
        if principal.via == "token":
            return True
        if source.device_id is None:
            return None
        first_seen_ms = self.store.device_first_seen(
            principal.user_id, self._device_hash(source.device_id)
        )
        return first_seen_ms is not None and first_seen_ms < principal.auth_at_ms

    def _user(self, principal: Principal) -> UserRow:
        user = self.store.user_by_id(principal.user_id)
        if user is None or user.status != "active":
            raise SessionInvalid(message="sign in again")
        return user

    # -- re-authentication and step-up ---------------------------------------------------------
    def require_recent_auth(self, *, principal: Principal) -> None:
        now = self.clock()
        recent = max(principal.auth_at_ms, principal.mfa_at_ms or 0)
        if now - recent > limits.REAUTH_MAX_AGE_MS:
            raise ReauthenticationRequired(message="confirm your password or code to continue")

    def reauthenticate(
        self, *, principal: Principal, password: str | None = None, totp_code: str | None = None
    ) -> Principal:
        """Confirm the user is still at the keyboard; failures count towards the lockout."""
        user = self._user(principal)
        now = self.clock()
        ratelimit.check(self.rate_limits, user.id, ratelimit.MFA_PER_USER, now_ms=now)
        login_key = self._login_key(user.login)
        if now < self.store.locked_until(login_key):
            raise LockedOut(message="too many failed attempts; try again later")
        if password is not None:
            if not self.hasher.verify(user.password_hash, password):
                self._fail(login_key, user, RequestSource(ip="session"), "bad_password_reauth")
            auth_at, mfa_at = now, principal.mfa_at_ms
        elif totp_code is not None and user.totp_enabled:
            if not self._consume_totp(user, totp_code):
                self._fail(login_key, user, RequestSource(ip="session"), "bad_totp_reauth")
            auth_at, mfa_at = principal.auth_at_ms, now
        else:
            raise InvalidInput("missing_factor", "give the password or an authenticator code")
        if principal.session_id is not None:
            self.store.mark_session(principal.session_id, auth_at_ms=auth_at, mfa_at_ms=mfa_at)
        self.record(
            actor=f"user:{user.id}",
            action="auth.reauthenticate",
            target=f"user:{user.id}",
            outcome="ok",
            factor="password" if password is not None else "totp",
        )
        return Principal(
            user_id=principal.user_id,
            roles=principal.roles,
            member_did=principal.member_did,
            session_id=principal.session_id,
            auth_at_ms=auth_at,
            mfa_at_ms=mfa_at,
            via=principal.via,
        )

    def step_up(self, *, principal: Principal, totp_code: str) -> Principal:
        """A fresh TOTP for a risky action (what a StepUpRequired response asks for)."""
        if not self._user(principal).totp_enabled:
            raise StepUpRequired("mfa_enrolment_required", "set up an authenticator app first")
        return self.reauthenticate(principal=principal, totp_code=totp_code)

    def check_action(
        self,
        *,
        principal: Principal,
        context: RiskContext,
        policy: StepUpPolicy | None = None,
    ) -> Decision:
        """Evaluate the step-up policy for a risky action and enforce it (raises if refused).
        `policy`: the current one, when the caller has already read it."""
        decision = evaluate(policy or self.current_policy(), context)
        return self.enforce_decision(principal=principal, decision=decision, action=context.action)

    def enforce_decision(
        self, *, principal: Principal, decision: Decision, action: str, now_ms: int | None = None
    ) -> Decision:
        """`check_action` for a decision already taken (several contexts: `evaluate_all`), as
        of `now_ms` (the clock's now by default: pass the time the caller judged it at)."""
        now = self.clock() if now_ms is None else now_ms
        try:
            enforce(decision, mfa_at_ms=principal.mfa_at_ms, now_ms=now)
        except (Forbidden, StepUpRequired) as exc:
            if isinstance(exc, StepUpRequired):
                # A user without an authenticator cannot give a code: the page offers guided
                # enrolment (`enrol_path`) instead of asking for one.
                enrolled = self._user(principal).totp_enabled
                exc.details["has_authenticator"] = enrolled
                if not enrolled:
                    exc.details["enrol_path"] = TOTP_ENROL_PATH
            self.record(
                actor=f"user:{principal.user_id}",
                action=f"stepup.{action}",
                target=f"user:{principal.user_id}",
                outcome=exc.code,
                risk=decision.to_json(),
            )
            raise
        if decision.outcome is not Outcome.ALLOW:
            self.record(
                actor=f"user:{principal.user_id}",
                action=f"stepup.{action}",
                target=f"user:{principal.user_id}",
                outcome="ok",
                risk=decision.to_json(),
            )
        return decision

    def policy_body(self, *, principal: Principal) -> dict[str, Any]:
        """The current step-up policy as stored (the default one until a first update)."""
        self.authorize(principal=principal, permission=Permission.POLICY_READ)
        body = self.store.latest_policy()
        return dict(DEFAULT_POLICY) if body is None else body

    def set_policy(self, *, principal: Principal, body: Mapping[str, Any]) -> StepUpPolicy:
        self.authorize(principal=principal, permission=Permission.POLICY_UPDATE)
        self.require_recent_auth(principal=principal)
        policy = parse_policy(body)
        self.store.add_policy(
            version=policy.version,
            body=dict(body),
            created_by=principal.user_id,
            now_ms=self.clock(),
        )
        self.record(
            actor=f"user:{principal.user_id}",
            action="policy.update",
            target=f"policy:{policy.version}",
            outcome="ok",
        )
        return policy

    # -- TOTP enrolment and recovery codes -----------------------------------------------------
    def _mfa_secret(self, user_id: str, name: str) -> bytes | None:
        record = self.vault_store.get(MFA_SCHEMA.name, user_id)
        if record is None:
            return None
        value = self.vault.open(MFA_SCHEMA, record, [name]).get(name)
        return value if isinstance(value, bytes) else None

    def _put_mfa(self, user_id: str, **values: bytes | None) -> None:
        record = self.vault_store.get(MFA_SCHEMA.name, user_id)
        current: dict[str, str | bytes] = {}
        if record is not None:
            current.update(self.vault.open(MFA_SCHEMA, record, [f.name for f in MFA_SCHEMA.fields]))
        for name, value in values.items():
            if value is None:
                current.pop(name, None)
            else:
                current[name] = value
        self.vault_store.put(self.vault.seal(MFA_SCHEMA, user_id, current), now_ms=self.clock())

    def begin_totp_enrolment(self, *, principal: Principal) -> totp.Enrolment:
        self.require_recent_auth(principal=principal)
        user = self._user(principal)
        if user.totp_enabled:
            raise InvalidInput("totp_already_enabled", "an authenticator app is already set up")
        enrolment = totp.start_enrolment(account_name=user.login)
        self._put_mfa(user.id, totp_pending_secret=enrolment.secret)
        return enrolment

    def confirm_totp_enrolment(self, *, principal: Principal, code: str) -> tuple[str, ...]:
        """Check the first code, switch TOTP on, and return fresh recovery codes (shown once)."""
        user = self._user(principal)
        now = self.clock()
        ratelimit.check(self.rate_limits, user.id, ratelimit.MFA_PER_USER, now_ms=now)
        pending = self._mfa_secret(user.id, "totp_pending_secret")
        step = (
            None
            if pending is None
            else totp.match_step(
                pending, code, now_s=now // 1000, last_used_step=None, config=self.totp_config
            )
        )
        if pending is None or step is None:
            self.record(
                actor=f"user:{user.id}",
                action="mfa.enrol",
                target=f"user:{user.id}",
                outcome="bad_code",
            )
            raise InvalidInput("invalid_code", "the code does not match; check the app's clock")
        self._put_mfa(user.id, totp_secret=pending, totp_pending_secret=None)
        self.store.update_user(user.id, totp_enabled=True, totp_last_step=step)
        codes = self._new_recovery_codes(user.id)
        if principal.session_id is not None:
            self.store.mark_session(principal.session_id, mfa_at_ms=now)
        self.record(
            actor=f"user:{user.id}", action="mfa.enrol", target=f"user:{user.id}", outcome="ok"
        )
        return codes

    def _new_recovery_codes(self, user_id: str) -> tuple[str, ...]:
        codes = totp.generate_recovery_codes()
        self.store.replace_recovery_codes(
            user_id, [totp.hash_recovery_code(c) for c in codes], now_ms=self.clock()
        )
        return codes

    def regenerate_recovery_codes(self, *, principal: Principal) -> tuple[str, ...]:
        self.require_recent_auth(principal=principal)
        codes = self._new_recovery_codes(principal.user_id)
        self.record(
            actor=f"user:{principal.user_id}",
            action="mfa.recovery_codes",
            target=f"user:{principal.user_id}",
            outcome="ok",
        )
        return codes

    # -- authorisation guard -------------------------------------------------------------------
    def authorize_permission(self, *, principal: Principal, permission: str, target: str) -> None:
        """`rbac.require_permission` (the role-only rules) with refusals audited: call it
        before any lookup whose outcome (found or not) would otherwise reach the caller."""
        try:
            require_permission(principal, permission)
        except Forbidden as exc:
            self.record(
                actor=f"user:{principal.user_id}",
                action=str(permission),
                target=target,
                outcome=exc.code,
            )
            raise

    def authorize(
        self,
        *,
        principal: Principal,
        permission: str,
        resource: Resource | None = None,
        justification: str | None = None,
    ) -> Grant:
        """`rbac.require` plus the audit trail: refusals and privileged grants are recorded."""
        target = "-" if resource is None else f"{resource.kind}:{resource.id or '-'}"
        try:
            grant = require(principal, permission, resource=resource, justification=justification)
        except Forbidden as exc:
            self.record(
                actor=f"user:{principal.user_id}",
                action=str(permission),
                target=target,
                outcome=exc.code,
                reason=justification,
            )
            raise
        if grant.privileged:
            self.record(
                actor=f"user:{principal.user_id}",
                action=str(permission),
                target=target,
                outcome="granted",
                reason=grant.justification,
                role=str(grant.role),
                scope=str(grant.scope),
            )
        return grant

    def export_audit_log(
        self,
        *,
        principal: Principal,
        member_did: str,
        actor: str | None = None,
        action: str | None = None,
        from_ms: int | None = None,
        to_ms: int | None = None,
        rows_max: int = limits.AUDIT_EXPORT_ROWS_MAX,
    ) -> Iterator[list[AuditEntry]]:
        """Every entry of the member's log the filters select (as `AuditLog.search` reads
        them), in pages for a download that never holds the log in memory, at most `rows_max`
        (a longer period is several exports).  The reader's right to the log is checked and
        the export itself recorded (it is a privileged read) before the first page is read."""
        self.authorize(
            principal=principal,
            permission=Permission.AUDIT_LOG_READ,
            resource=Resource("audit_log", member_did=member_did),
        )
        filters = {"actor": actor, "action": action, "from_ms": from_ms, "to_ms": to_ms}
        chosen = {name: value for name, value in filters.items() if value is not None}
        self.record(
            actor=f"user:{principal.user_id}",
            action="audit_log.export",
            target="audit_log",
            outcome="ok",
            filters=chosen,
        )
        return self._audit_pages(chosen, min(rows_max, limits.AUDIT_EXPORT_ROWS_MAX))

    def _audit_pages(self, filters: dict[str, Any], rows_max: int) -> Iterator[list[AuditEntry]]:
        after, sent = 0, 0
        while sent < rows_max:
            size = min(limits.AUDIT_EXPORT_PAGE_ROWS, rows_max - sent)
            page = self.audit.search(after_seq=after, limit=size, **filters)
            if page:
                yield page
            if len(page) < size:
                return
            after, sent = page[-1].seq, sent + len(page)


def _is_staff(user: UserRow, roles: frozenset[Role]) -> bool:
    # The kind says it for every account made by create_staff or bootstrap_admin; the roles
    # too, so that a staff role on any account (a grant _check_role_set should have refused)
    # still asks for the second factor.
    return user.kind == _STAFF_KIND or bool(roles & STAFF_ROLES)


def _needs_enrolment(user: UserRow, roles: frozenset[Role], mfa_at_ms: int | None) -> bool:
    return _is_staff(user, roles) and (not user.totp_enabled or mfa_at_ms is None)


def _check_role_set(roles: frozenset[Role], *, staff: bool) -> None:
    end_user = {Role.CUSTOMER, Role.SME_OWNER}
    if staff and roles & end_user:
        raise Forbidden("sod_role_conflict", "staff accounts do not hold customer roles")
    if not staff and roles - end_user:
        raise Forbidden("sod_role_conflict", "customer accounts do not hold staff roles")
    for pair in INCOMPATIBLE_ROLES:
        if pair <= roles:
            raise Forbidden(
                "sod_role_conflict", f"the roles {', '.join(sorted(pair))} may not be held together"
            )
