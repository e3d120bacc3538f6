"""The identity service end to end at library level: registration, login, lockout, TOTP,
sessions and tokens, CSRF, re-authentication, step-up, role administration, audit."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from tests.identity.helpers import Clock
from zhijin.identity import limits, totp
from zhijin.identity.confusables import skeleton_digest
from zhijin.identity.errors import (
    AuthenticationFailed,
    CsrfFailed,
    LockedOut,
    MfaRequired,
    RateLimited,
    ReauthenticationRequired,
    SessionInvalid,
    StepUpRequired,
)
from zhijin.identity.passwords import Argon2Params, PasswordHasher
from zhijin.identity.ratelimit import MemoryRateLimitStore
from zhijin.identity.rbac import Principal, Role
from zhijin.identity.service import IdentityService, IssuedSession, RequestSource, normalize_login
from zhijin.identity.stepup import DEFAULT_POLICY, GeoPoint, MovedAmount, RiskContext
from zhijin.identity.store import IdentityStore
from zhijin.identity.tables import LOGIN_SKELETON_INDEX, create_tables
from zhijin.platform.audit import audit_log
from zhijin.platform.errors import Conflict, Forbidden, InvalidInput
from zhijin.platform.vault import Vault

PASSWORD = "correct horse battery staple"
HOME = RequestSource(
    ip="203.0.113.7", device_id="device-alice-phone", location=GeoPoint(39_904_200, 116_407_400)
)
M1 = "did:key:z6MkBankOne"


class CountingHasher(PasswordHasher):
    """Counts Argon2 verifications, to show unknown and known logins do the same work."""

    def __init__(self, params: Argon2Params) -> None:
        super().__init__(params)
        self.verifies = 0

    def verify(self, stored_hash: str | None, password: str) -> bool:
        self.verifies += 1
        return super().verify(stored_hash, password)


def register(
    service: IdentityService, login: str = "alice@example.com", kind: str = "individual"
) -> str:
    return service.register(login=login, password=PASSWORD, kind=kind, source=HOME).id


def login(
    service: IdentityService, login: str = "alice@example.com", **kwargs: Any
) -> IssuedSession:
    kwargs.setdefault("password", PASSWORD)
    kwargs.setdefault("source", HOME)
    return service.login(login=login, **kwargs)


def audit_outcomes(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [
            (r.action, r.outcome)
            for r in conn.execute(
                select(audit_log.c.action, audit_log.c.outcome).order_by(audit_log.c.seq)
            )
        ]


def enrol_totp(
    service: IdentityService, clock: Clock, session: IssuedSession
) -> tuple[bytes, tuple[str, ...]]:
    enrolment = service.begin_totp_enrolment(principal=session.principal)
    code = totp.code_for_step(enrolment.secret, totp.step_at(clock() // 1000))
    codes = service.confirm_totp_enrolment(principal=session.principal, code=code)
    return enrolment.secret, codes


def next_code(secret: bytes, clock: Clock) -> str:
    clock.advance(totp.DEFAULT_CONFIG.step_s * 1000)  # a new time step: a code not used before
    return totp.code_for_step(secret, totp.step_at(clock() // 1000))


def bootstrap_admin(service: IdentityService) -> Principal:
    """As `zhijin identity create-admin` does: the first admin is made outside the API."""
    service.store.create_user(
        login="root-admin",
        kind="institution_staff",
        password_hash=service.hasher.hash(PASSWORD),
        roles=frozenset({Role.ADMIN}),
        granted_by="bootstrap",
        now_ms=service.clock(),
    )
    return login(service, "root-admin").principal


# -- registration and login ----------------------------------------------------------------------
def test_register_and_login(service: IdentityService, engine: Engine) -> None:
    user_id = register(service)
    session = login(service, "  Alice@Example.COM ")  # login names are normalised
    assert (
        session.token.startswith("zjs_")
        and session.csrf_token
        and session.csrf_token.startswith("zjc_")
    )
    assert session.principal.user_id == user_id and session.principal.roles == {Role.CUSTOMER}
    assert PASSWORD not in repr(session) and session.token not in repr(session)
    assert service.authenticate(token=session.token).user_id == user_id
    assert ("user.register", "ok") in audit_outcomes(engine) and (
        "auth.login",
        "ok",
    ) in audit_outcomes(engine)


def test_registration_rules(service: IdentityService) -> None:
    register(service)
    sources = (RequestSource(ip=f"198.51.100.{i}") for i in range(10))  # clear of the rate limit
    with pytest.raises(Conflict):
        service.register(
            login="ALICE@example.com", password=PASSWORD, kind="individual", source=next(sources)
        )
    with pytest.raises(InvalidInput) as staff:
        service.register(
            login="bob", password=PASSWORD, kind="institution_staff", source=next(sources)
        )
    assert staff.value.code == "invalid_kind"
    with pytest.raises(InvalidInput) as weak:
        service.register(
            login="bob", password="password1234", kind="individual", source=next(sources)
        )
    assert weak.value.code == "weak_password"
    with pytest.raises(InvalidInput):
        service.register(login="a b", password=PASSWORD, kind="individual", source=next(sources))
    assert service.register(
        login="shop-owner", password=PASSWORD, kind="sme_owner", source=next(sources)
    )


def test_wrong_password_and_unknown_user_look_the_same(
    engine: Engine, vault: Vault, clock: Clock
) -> None:
    hasher = CountingHasher(Argon2Params(time_cost=1, memory_kib=8, parallelism=1))
    service = IdentityService(
        engine=engine, vault=vault, hasher=hasher, clock=clock, rate_limits=MemoryRateLimitStore()
    )
    register(service)
    failures = []
    for name, password in (
        ("alice@example.com", "wrong password 123"),
        ("nobody@example.com", PASSWORD),
    ):
        before = hasher.verifies
        with pytest.raises(AuthenticationFailed) as caught:
            login(service, name, password=password)
        failures.append(
            (
                caught.value.code,
                caught.value.message,
                caught.value.http_status,
                hasher.verifies - before,
            )
        )
    assert failures[0] == failures[1] == ("invalid_credentials", failures[0][1], 401, 1)


def test_disabled_account_looks_like_a_wrong_password(service: IdentityService) -> None:
    user_id = register(service)
    service.store.update_user(user_id, status="disabled")
    with pytest.raises(AuthenticationFailed):
        login(service)


def test_an_unknown_login_costs_the_same_argon2_work_as_a_wrong_password(
    engine: Engine, vault: Vault, clock: Clock
) -> None:
    """No timing oracle for who has an account: an unknown login runs exactly one Argon2id
    verification with the same cost parameters as a wrong password for a real account (against
    the hasher's dummy hash).  Counted, not timed, so a busy machine cannot make it flaky."""
    hasher = PasswordHasher(Argon2Params(time_cost=1, memory_kib=4096, parallelism=1))
    service = IdentityService(
        engine=engine, vault=vault, hasher=hasher, clock=clock, rate_limits=MemoryRateLimitStore()
    )
    register(service)
    real = hasher._hasher  # the argon2-cffi hasher the service's PasswordHasher wraps
    verified: list[str] = []

    class Recording:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def verify(self, stored: str, password: str) -> bool:
            # "$argon2id$v=19$m=4096,t=1,p=1$salt$hash" -> the variant, version and costs
            verified.append("$".join(stored.split("$")[:4]))
            return bool(real.verify(stored, password))

    hasher._hasher = Recording()  # type: ignore[assignment]

    def verifications(name: str) -> list[str]:
        verified.clear()
        clock.advance(limits.LOCKOUT_MS_MAX)  # keep clear of lockouts and rate limits
        with pytest.raises(AuthenticationFailed):
            login(service, name, password="wrong password 123")
        return list(verified)

    known = verifications("alice@example.com")
    unknown = verifications("ghost@example.com")
    assert known == unknown == ["$argon2id$v=19$m=4096,t=1,p=1"]
    # An over-long password is cut to the limit and verified against the dummy too: no shortcut.
    verified.clear()
    clock.advance(limits.LOCKOUT_MS_MAX)
    with pytest.raises(AuthenticationFailed):
        login(service, "alice@example.com", password="x" * (limits.PASSWORD_CHARS_MAX + 1))
    assert verified == known


def test_lockout_after_n_failures(service: IdentityService, clock: Clock, engine: Engine) -> None:
    register(service)
    for _ in range(limits.LOGIN_FAILURES_MAX):
        with pytest.raises(AuthenticationFailed):
            login(service, password="wrong password 123")
    with pytest.raises(LockedOut) as locked:
        login(service)  # even the right password is refused while locked
    assert locked.value.details["retry_after_ms"] == limits.LOCKOUT_MS
    clock.advance(limits.LOCKOUT_MS)
    assert login(service).principal.roles == {Role.CUSTOMER}
    outcomes = audit_outcomes(engine)
    assert outcomes.count(("auth.login", "failed")) == limits.LOGIN_FAILURES_MAX
    assert ("auth.login", "locked") in outcomes


def test_lockout_doubles_and_success_resets(service: IdentityService, clock: Clock) -> None:
    register(service)
    for round_ in range(2):
        for _ in range(limits.LOGIN_FAILURES_MAX):
            with pytest.raises(AuthenticationFailed):
                login(service, password="wrong password 123")
        with pytest.raises(LockedOut) as locked:
            login(service)
        assert locked.value.details["retry_after_ms"] == limits.LOCKOUT_MS * 2**round_
        clock.advance(limits.LOCKOUT_MS * 2**round_)
    login(service)
    for _ in range(limits.LOGIN_FAILURES_MAX - 1):  # the counter was reset by the success
        with pytest.raises(AuthenticationFailed):
            login(service, password="wrong password 123")
    login(service)


def test_unknown_logins_lock_out_exactly_like_real_ones(service: IdentityService) -> None:
    register(service)
    results = []
    for name in ("alice@example.com", "ghost@example.com"):
        for _ in range(limits.LOGIN_FAILURES_MAX):
            with pytest.raises(AuthenticationFailed):
                login(service, name, password="wrong password 123")
        with pytest.raises(LockedOut) as locked:
            login(service, name)
        results.append((locked.value.code, locked.value.message, locked.value.details))
    assert results[0] == results[1]


def test_rate_limit_per_source_ip(service: IdentityService) -> None:
    for i in range(limits.RATE_LOGIN_PER_IP_CAPACITY):
        with pytest.raises(AuthenticationFailed):
            login(service, f"user{i}@example.com", password="wrong password 123")
    with pytest.raises(RateLimited):
        login(service, "someone@example.com")
    # Another address is not affected.
    with pytest.raises(AuthenticationFailed):
        login(service, "someone@example.com", source=RequestSource(ip="198.51.100.1"))


def test_rate_limit_per_account_across_addresses(service: IdentityService, clock: Clock) -> None:
    register(service)
    for i in range(limits.RATE_LOGIN_PER_ACCOUNT_CAPACITY):
        login(service, source=RequestSource(ip=f"192.0.2.{i}"))
    with pytest.raises(RateLimited):
        login(service, source=RequestSource(ip="192.0.2.200"))


def test_registration_rate_limit(service: IdentityService) -> None:
    for i in range(limits.RATE_REGISTER_PER_IP_CAPACITY):
        register(service, f"new{i}@example.com")
    with pytest.raises(RateLimited):
        register(service, "one-too-many@example.com")


# -- TOTP ---------------------------------------------------------------------------------------
def test_totp_login_replay_and_lockout(
    service: IdentityService, clock: Clock, engine: Engine
) -> None:
    register(service)
    secret, _codes = enrol_totp(service, clock, login(service))
    with pytest.raises(MfaRequired):
        login(service)
    with pytest.raises(MfaRequired):  # a wrong password never reaches the TOTP question
        login(service, password=PASSWORD)
    code = next_code(secret, clock)
    session = login(service, totp_code=code)
    assert session.principal.mfa_at_ms == clock()
    with pytest.raises(AuthenticationFailed):  # the same code again, 5 seconds later: replay
        clock.advance(5_000)
        login(service, totp_code=code)
    with pytest.raises(AuthenticationFailed):
        login(service, totp_code="000000" if code != "000000" else "111111")
    assert ("auth.login", "failed") in audit_outcomes(engine)
    login(service, totp_code=next_code(secret, clock))


def test_wrong_totp_codes_lock_the_account(service: IdentityService, clock: Clock) -> None:
    register(service)
    secret, _ = enrol_totp(service, clock, login(service))
    good = next_code(secret, clock)
    wrong = "123456" if good != "123456" else "654321"
    for _ in range(limits.LOGIN_FAILURES_MAX):
        with pytest.raises(AuthenticationFailed):
            login(service, totp_code=wrong)
    with pytest.raises(LockedOut):
        login(service, totp_code=good)


def test_recovery_codes_work_once(service: IdentityService, clock: Clock) -> None:
    register(service)
    _, codes = enrol_totp(service, clock, login(service))
    assert login(service, recovery_code=codes[0].lower()).principal.roles == {Role.CUSTOMER}
    with pytest.raises(AuthenticationFailed):
        login(service, recovery_code=codes[0])
    assert (
        service.store.recovery_codes_left(service.store.user_by_login("alice@example.com").id) == 9
    )  # type: ignore[union-attr]


def test_enrolment_needs_recent_auth_and_a_valid_first_code(
    service: IdentityService, clock: Clock
) -> None:
    register(service)
    session = login(service)
    enrolment = service.begin_totp_enrolment(principal=session.principal)
    with pytest.raises(InvalidInput):
        service.confirm_totp_enrolment(principal=session.principal, code="000000")
    assert not service.store.user_by_id(session.principal.user_id).totp_enabled  # type: ignore[union-attr]
    clock.advance(limits.REAUTH_MAX_AGE_MS + 1)
    with pytest.raises(ReauthenticationRequired):
        service.begin_totp_enrolment(principal=service.authenticate(token=session.token))
    assert enrolment.secret  # the pending secret lives only in the vault
    record = service.vault_store.get("mfa", session.principal.user_id)
    assert record is not None and enrolment.secret.hex() not in str(record.body())


# -- sessions, tokens and CSRF ------------------------------------------------------------------
def test_session_expiry_idle_and_absolute(service: IdentityService, clock: Clock) -> None:
    register(service)
    idle = login(service)
    clock.advance(limits.SESSION_IDLE_MS)
    with pytest.raises(SessionInvalid):
        service.authenticate(token=idle.token)
    active = login(service)
    for _ in range(limits.SESSION_ABSOLUTE_MS // (10 * 60_000) - 1):
        clock.advance(10 * 60_000)  # a request every 10 minutes keeps it from idling out ...
        service.authenticate(token=active.token)
    clock.advance(10 * 60_000)
    with pytest.raises(SessionInvalid):  # ... but not past its absolute lifetime
        service.authenticate(token=active.token)


@pytest.mark.parametrize("forge", ["random", "flip", "prefix", "empty", "long"])
def test_forged_tokens_are_refused(service: IdentityService, forge: str) -> None:
    register(service)
    real = login(service).token
    forged = {
        "random": "zjs_" + "A" * 43,
        "flip": real[:-1] + ("A" if real[-1] != "A" else "B"),
        "prefix": "zjt_" + real[4:],  # a session token passed off as an API token
        "empty": "",
        "long": "zjs_" + "A" * 500,
    }[forge]
    with pytest.raises(SessionInvalid):
        service.authenticate(token=forged)


def test_logout_and_revocation(service: IdentityService, engine: Engine) -> None:
    register(service)
    first, second, third = login(service), login(service), login(service)
    service.logout(principal=service.authenticate(token=first.token))
    with pytest.raises(SessionInvalid):
        service.authenticate(token=first.token)
    assert service.revoke_other_sessions(principal=service.authenticate(token=second.token)) == 1
    with pytest.raises(SessionInvalid):
        service.authenticate(token=third.token)
    service.authenticate(token=second.token)
    assert ("auth.session", "refused") in audit_outcomes(engine)


def test_sessions_per_user_are_bounded(service: IdentityService, clock: Clock) -> None:
    register(service)
    sessions = []
    for _ in range(limits.SESSIONS_PER_USER_MAX + 1):
        clock.advance(limits.RATE_LOGIN_PER_ACCOUNT_REFILL_MS)  # clear of the login rate limit
        sessions.append(login(service))
    with pytest.raises(SessionInvalid):
        service.authenticate(token=sessions[0].token)
    service.authenticate(token=sessions[-1].token)


def test_csrf(service: IdentityService) -> None:
    register(service)
    session, other = login(service), login(service)
    service.authenticate(token=session.token)  # safe methods need no CSRF token
    for bad in (None, "", "zjc_wrong", other.csrf_token):
        with pytest.raises(CsrfFailed):
            service.authenticate(token=session.token, csrf_token=bad, unsafe_method=True)
    service.authenticate(token=session.token, csrf_token=session.csrf_token, unsafe_method=True)


def test_api_tokens(service: IdentityService, clock: Clock) -> None:
    register(service)
    session = login(service)
    issued = service.create_api_token(principal=session.principal, name="accounting export")
    assert issued.token.startswith("zjt_") and issued.csrf_token is None
    api = service.authenticate(token=issued.token, unsafe_method=True)  # no CSRF for bearer
    assert api.via == "token" and api.user_id == session.principal.user_id
    clock.advance(limits.REAUTH_MAX_AGE_MS + 1)
    stale = service.authenticate(token=session.token)
    with pytest.raises(ReauthenticationRequired):
        service.create_api_token(principal=stale, name="another")
    fresh = service.reauthenticate(principal=stale, password=PASSWORD)
    service.create_api_token(principal=fresh, name="another")
    service.revoke_other_sessions(principal=fresh)
    with pytest.raises(SessionInvalid):
        service.authenticate(token=issued.token)
    # Token rows hold hashes only.
    assert (
        service.store.session(issued.session_id) is not None
        and issued.token not in issued.session_id
    )


def test_wrong_password_on_reauthentication_counts(service: IdentityService) -> None:
    register(service)
    principal = login(service).principal
    for _ in range(limits.LOGIN_FAILURES_MAX):
        with pytest.raises(AuthenticationFailed):
            service.reauthenticate(principal=principal, password="wrong password 123")
    with pytest.raises(LockedOut):
        service.reauthenticate(principal=principal, password=PASSWORD)


# -- step-up ------------------------------------------------------------------------------------
def transfer(service: IdentityService, amount_minor: int) -> RiskContext:
    moved = (MovedAmount("CNY", 2, amount_minor),)  # no history: the 24 h sums are this payment
    return RiskContext(
        action="payment.transfer",
        now_ms=service.clock(),
        amount_minor=amount_minor,
        currency="CNY",
        amount_exponent=2,
        payee_known=True,
        device_known=True,
        moved_to_payee=moved,
        moved_overall=moved,
    )


def test_step_up_for_a_large_transfer(
    service: IdentityService, clock: Clock, engine: Engine
) -> None:
    register(service)
    secret, _ = enrol_totp(service, clock, login(service))
    session = login(service, totp_code=next_code(secret, clock))
    clock.advance(10 * 60_000)  # the login's TOTP is no longer fresh
    principal = service.authenticate(token=session.token)
    service.check_action(principal=principal, context=transfer(service, 10_000))
    with pytest.raises(StepUpRequired) as caught:
        service.check_action(principal=principal, context=transfer(service, 6_000_000))
    assert any("large_transfer" in r for r in caught.value.details["reasons"])
    # The user has an authenticator: the page asks for a code, no enrolment offered.
    assert caught.value.details["has_authenticator"] is True
    assert "enrol_path" not in caught.value.details
    assert caught.value.details["reason_codes"][0]["code"] == "large_transfer"
    code = next_code(secret, clock)
    stepped = service.step_up(principal=principal, totp_code=code)
    service.check_action(principal=stepped, context=transfer(service, 6_000_000))
    with pytest.raises(AuthenticationFailed):  # the step-up code cannot be replayed
        service.step_up(principal=principal, totp_code=code)
    with pytest.raises(Forbidden) as denied:  # and no code lifts a deny
        service.check_action(principal=stepped, context=transfer(service, 500_000_000))
    assert denied.value.code == "denied_by_policy"
    outcomes = audit_outcomes(engine)
    assert ("stepup.payment.transfer", "step_up_required") in outcomes and (
        "stepup.payment.transfer",
        "denied_by_policy",
    ) in outcomes


def test_step_up_without_totp_needs_enrolment(service: IdentityService) -> None:
    register(service)
    principal = login(service).principal
    with pytest.raises(StepUpRequired) as asked:  # the answer offers enrolment, not a code
        service.check_action(principal=principal, context=transfer(service, 6_000_000))
    assert asked.value.details["has_authenticator"] is False
    assert asked.value.details["enrol_path"] == "/api/v1/identity/totp/enrol"
    with pytest.raises(StepUpRequired) as caught:
        service.step_up(principal=principal, totp_code="123456")
    assert caught.value.code == "mfa_enrolment_required"


def test_impossible_travel_login_is_refused(service: IdentityService, clock: Clock) -> None:
    register(service)
    login(service)
    clock.advance(20 * 60_000)
    shanghai = RequestSource(
        ip="198.51.100.9",
        device_id="device-alice-phone",
        location=GeoPoint(31_230_400, 121_473_700),
    )
    with pytest.raises(Forbidden) as caught:
        login(service, source=shanghai)
    assert caught.value.code == "denied_by_policy"
    clock.advance(6 * 3_600_000)
    assert login(service, source=shanghai).login_decision is not None


def test_policy_updates_are_versioned_and_guarded(service: IdentityService) -> None:
    admin = bootstrap_admin(service)
    officer = service.create_staff(
        principal=admin,
        login="compliance-zhao",
        password=PASSWORD,
        roles=frozenset({Role.COMPLIANCE_OFFICER}),
        member_did=M1,
    )
    compliance = login(service, officer.login).principal
    body = {**DEFAULT_POLICY, "version": "2025-07-01.1"}
    with pytest.raises(Forbidden) as caught:
        service.set_policy(principal=admin, body=body)
    assert caught.value.code == "permission_denied"
    assert service.set_policy(principal=compliance, body=body).version == "2025-07-01.1"
    assert service.current_policy().version == "2025-07-01.1"
    with pytest.raises(Conflict):
        service.set_policy(principal=compliance, body=body)


def test_a_policy_stored_before_the_24h_facts_is_enforced_with_them(
    service: IdentityService,
) -> None:
    """No migration: the stored body stays as written (GET /policy shows it), and the policy
    the service enforces has the 24 h facts defaulted."""
    from tests.identity.test_stepup import PRE_WINDOW_POLICY

    service.store.add_policy(
        version=PRE_WINDOW_POLICY["version"], body=PRE_WINDOW_POLICY, created_by="u", now_ms=1
    )
    policy = service.current_policy()
    assert policy.version == "2026-11-23.1+24h"
    assert "total_24h_ref_minor" in str(policy.rules[1].when)
    assert service.store.latest_policy() == PRE_WINDOW_POLICY


# -- roles --------------------------------------------------------------------------------------
def test_role_administration_and_escalation_attempts(
    service: IdentityService, engine: Engine
) -> None:
    admin = bootstrap_admin(service)
    staff = service.create_staff(
        principal=admin,
        login="officer-li",
        password=PASSWORD,
        roles=frozenset({Role.BANK_OFFICER}),
        member_did=M1,
    )
    officer_session = login(service, "officer-li")
    officer = officer_session.principal
    assert officer.roles == {Role.BANK_OFFICER} and officer.member_did == M1
    customer_id = register(service)
    customer = login(service).principal
    attempts = [
        (customer, customer_id, Role.ADMIN, "permission_denied"),  # a customer makes itself admin
        (
            officer,
            staff.id,
            Role.COMPLIANCE_OFFICER,
            "permission_denied",
        ),  # an officer promotes itself
        (admin, admin.user_id, Role.AUDITOR, "sod_self_grant"),  # the admin grants itself more
        (
            admin,
            staff.id,
            Role.AUDITOR,
            "sod_role_conflict",
        ),  # an auditor may not also be an officer
        (admin, staff.id, Role.CUSTOMER, "sod_role_conflict"),  # staff hold no customer roles
        (
            admin,
            customer_id,
            Role.BANK_OFFICER,
            "sod_role_conflict",
        ),  # customers hold no staff roles
    ]
    for actor, target, role, code in attempts:
        with pytest.raises(Forbidden) as caught:
            service.grant_role(principal=actor, user_id=target, role=role)
        assert caught.value.code == code, (actor.roles, role)
    assert service.store.roles_of(staff.id) == {Role.BANK_OFFICER}
    service.grant_role(principal=admin, user_id=staff.id, role=Role.RISK_ANALYST)
    assert service.store.roles_of(staff.id) == {Role.BANK_OFFICER, Role.RISK_ANALYST}
    service.revoke_role(principal=admin, user_id=staff.id, role=Role.RISK_ANALYST)
    with pytest.raises(SessionInvalid):  # a role change ends the user's sessions
        service.authenticate(token=officer_session.token)
    outcomes = audit_outcomes(engine)
    for code in ("permission_denied", "sod_self_grant", "sod_role_conflict"):
        assert any(o == code for _, o in outcomes), code
    assert service.audit.verify().ok


def test_create_staff_needs_an_admin(service: IdentityService) -> None:
    register(service)
    customer = login(service).principal
    with pytest.raises(Forbidden):
        service.create_staff(
            principal=customer,
            login="mallory",
            password=PASSWORD,
            roles=frozenset({Role.ADMIN}),
            member_did=M1,
        )
    admin = bootstrap_admin(service)
    with pytest.raises(Forbidden) as caught:
        service.create_staff(
            principal=admin,
            login="mallory",
            password=PASSWORD,
            roles=frozenset({Role.REGULATOR, Role.BANK_OFFICER}),
            member_did=M1,
        )
    assert caught.value.code == "sod_role_conflict"


def test_no_secret_reaches_the_audit_log(
    service: IdentityService, clock: Clock, engine: Engine
) -> None:
    register(service)
    session = login(service)
    secret, codes = enrol_totp(service, clock, session)
    token = service.create_api_token(principal=service.authenticate(token=session.token), name="t")
    with pytest.raises(AuthenticationFailed):
        login(service, password="a wrong guess 987")
    with engine.connect() as conn:
        dump = " ".join(str(tuple(r)) for r in conn.execute(select(audit_log)))
    for secret_text in (
        PASSWORD,
        "a wrong guess 987",
        session.token,
        session.csrf_token or "",
        token.token,
        codes[0],
        secret.hex(),
        "alice@example.com",
    ):
        assert secret_text not in dump


def test_a_device_is_known_only_from_the_sign_in_after_its_first(
    service: IdentityService, clock: Clock
) -> None:
    register(service)
    laptop = RequestSource(ip="198.51.100.7", device_id="laptop-cookie")
    first = login(service, source=laptop).principal
    # First seen at this very sign-in: new, so risky actions in this session step up.
    assert service.device_known(principal=first, source=laptop) is False
    clock.advance(60_000)
    second = login(service, source=laptop).principal
    assert service.device_known(principal=second, source=laptop) is True
    phone = RequestSource(ip="198.51.100.7", device_id="phone-cookie")
    assert service.device_known(principal=second, source=phone) is False
    assert service.device_known(principal=second, source=RequestSource(ip="x")) is None
    token = service.create_api_token(principal=second, name="accounting app").principal
    assert service.device_known(principal=token, source=RequestSource(ip="x")) is True


# -- look-alike logins (UTS #39 skeletons) ---------------------------------------------------
LOOK_ALIKES = (
    "wang.xiaom\u0456ng",  # Cyrillic і (U+0456)
    "wang.xiaorning",  # "rn" for "m"
    "ＷＡＮＧ.ＸＩＡＯＭＩＮＧ",  # fullwidth, upper case
    "Wang.XiaoMing",
    "ｗａｎｇ.xiaom\u0456ng",  # fullwidth and Cyrillic together
)


@pytest.mark.parametrize("look_alike", LOOK_ALIKES)
def test_a_look_alike_login_is_refused(service: IdentityService, look_alike: str) -> None:
    register(service, login="wang.xiaoming")
    with pytest.raises(Conflict) as refused:
        service.register(
            login=look_alike, password=PASSWORD, kind="individual", source=RequestSource("x")
        )
    exact = normalize_login(look_alike) == "wang.xiaoming"
    assert refused.value.code == ("login_taken" if exact else "login_confusable")
    assert service.store.user_by_login(normalize_login(look_alike)) is None or exact


def test_different_logins_are_accepted(service: IdentityService) -> None:
    register(service, login="wang.xiaoming")
    # The last: the longest login of the Hangul syllable with the longest skeleton (7 to 1).
    logins = ("wang.xiaoping", "wang.xiaoming2", "王小明", "\uaf66" * limits.LOGIN_CHARS_MAX)
    for index, login in enumerate(logins):
        service.register(
            login=login, password=PASSWORD, kind="individual", source=RequestSource(f"x{index}")
        )
        assert service.store.user_by_login(login) is not None


class _RivalFirst(IdentityStore):
    """A store where a look-alike registration commits between this one's check and insert,
    as when two requests race."""

    rival_done = False

    def _check_login_free(self, login: str, skeleton: str) -> None:
        super()._check_login_free(login, skeleton)
        if not self.rival_done:
            self.rival_done = True
            IdentityStore(self.engine).create_user(
                login="wang.xiaom\u0456ng",
                kind="individual",
                password_hash="x",
                roles=frozenset({Role.CUSTOMER}),
                granted_by="self-registration",
                now_ms=1,
            )


def test_of_two_racing_look_alikes_one_wins(engine: Engine) -> None:
    store = _RivalFirst(engine)
    with pytest.raises(Conflict) as lost:
        store.create_user(
            login="wang.xiaoming",
            kind="individual",
            password_hash="x",
            roles=frozenset({Role.CUSTOMER}),
            granted_by="self-registration",
            now_ms=2,
        )
    assert lost.value.code == "login_confusable"
    assert store.user_by_login("wang.xiaom\u0456ng") is not None
    assert store.user_by_login("wang.xiaoming") is None


def test_existing_logins_get_skeletons_and_the_older_look_alike_keeps_its(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    # A database from before the column: drop it, then add two look-alikes.
    with engine.begin() as conn:
        conn.execute(text(f"DROP INDEX {LOGIN_SKELETON_INDEX}"))
        conn.execute(text("ALTER TABLE identity_users DROP COLUMN login_skeleton_sha256"))
        for user_id, login, created in (
            ("u_new", "wang.xiaom\u0456ng", 2),
            ("u_old", "wang.xiaoming", 1),
        ):
            conn.execute(
                text(
                    "INSERT INTO identity_users (id, login, kind, status, password_hash,"
                    " totp_enabled, created_ms) VALUES (:i, :l, 'individual', 'active', 'x', 0, :c)"
                ),
                {"i": user_id, "l": login, "c": created},
            )
    with caplog.at_level("WARNING", logger="zhijin.identity"):
        create_tables(engine)
    with engine.connect() as conn:
        skeletons = dict(
            conn.execute(text("SELECT id, login_skeleton_sha256 FROM identity_users")).all()
        )
    assert skeletons == {"u_old": skeleton_digest("wang.xiaoming"), "u_new": None}
    assert "u_new" in caplog.text
    with pytest.raises(Conflict) as refused:
        IdentityStore(engine).create_user(
            login="wang.xiaorning",
            kind="individual",
            password_hash="x",
            roles=frozenset({Role.CUSTOMER}),
            granted_by="self-registration",
            now_ms=3,
        )
    assert refused.value.code == "login_confusable"
