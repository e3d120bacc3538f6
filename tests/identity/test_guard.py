"""The request guard (identity/guard.py) as a domain's routes use it: who is calling, RBAC with
scope, the listing filter, step-up of money outflows with their reservation, the audit trail,
and the chain read policy it gives the plumbing.  A small app of its own, so each rule is shown
without the payments ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from tests.identity.helpers import START_MS
from zhijin.chain.files import write_private
from zhijin.identity import (
    Caller,
    CallerDep,
    Guard,
    GuardDep,
    IdentityService,
    Outflow,
    Permission,
    ReadPolicy,
    RequestSource,
    Role,
    totp,
)
from zhijin.node.settings import Settings
from zhijin.platform.audit import audit_log
from zhijin.platform.data_dir import OPERATOR_TOKEN_FILE
from zhijin.platform.errors import Forbidden
from zhijin.platform.problems import install_problem_handlers

PASSWORD = "correct horse battery staple"
MEMBER = "did:key:z6MkGuardMember"
OTHER_MEMBER = "did:key:z6MkGuardOther"
OPERATOR_TOKEN = "operator-secret-token-for-the-guard-tests"
# 10:00 in Beijing: the policy's night rule stays out of what these tests judge.
DAYTIME_MS = START_MS + 11 * 3600 * 1000
FLOOR_REF_MINOR = 100_000  # 1,000.00 CNY, as payments' STEP_UP_FROM_MINOR
ACTION = "payment.transfer"


class Refused(Exception):
    """The ledger's definite no, in this test's little domain."""


def _app(guard: Guard, paid: set[tuple[str, str]]) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.guard = guard
    app.state.identity = guard.identity

    @app.get("/whoami")
    def whoami(caller: CallerDep) -> dict[str, Any]:
        return {"sender": caller.sender, "actor": caller.actor, "operator": caller.is_operator}

    @app.post("/accounts/{account_id}/debit")
    def debit(
        account_id: str, owner: str, custodian: str, caller: CallerDep, guard: GuardDep
    ) -> dict[str, Any]:
        grant = guard.authorize_owned(
            caller,
            permission=Permission.PAYMENT_TRANSFER,
            kind="account",
            id=account_id,
            owner=owner,
            member_did=custodian,
        )
        return {"scope": None if grant is None else str(grant.scope)}

    @app.get("/accounts")
    def accounts(caller: CallerDep, guard: GuardDep) -> dict[str, Any]:
        scope = guard.list_scope(caller, permission=Permission.ACCOUNT_READ)
        return {"owner": scope.owner, "member_did": scope.member_did}

    @app.post("/books")
    def books(caller: CallerDep, guard: GuardDep) -> dict[str, Any]:
        guard.require_member_side(caller)
        return {"ok": True}

    @app.post("/outflows")
    def outflows(
        amount: int, payee: str, caller: CallerDep, guard: GuardDep, refuse: bool = False
    ) -> dict[str, Any]:
        outflow = Outflow(
            key=f"test:{payee}:{amount}",
            debit_owner=caller.sender or MEMBER,
            debit_account_id="acct-1",
            payee=payee,
            currency="CNY",
            exponent=2,
            amount_minor=amount,
        )
        reservation = guard.put_to_policy(
            caller,
            action=ACTION,
            outflows=[outflow, None],
            has_paid=lambda debit, credit, _before_ms: (debit, credit) in paid,
            floor_ref_minor=FLOOR_REF_MINOR,
        )
        with guard.releasing(reservation, refusals=(Refused,)):
            if refuse:
                raise Refused
        return {"reserved": reservation is not None}

    @app.exception_handler(Refused)
    def _refused(_request: Request, _exc: Refused) -> JSONResponse:
        return JSONResponse({"code": "refused"}, status_code=422)

    @app.get("/reader")
    def reader(request: Request) -> dict[str, Any]:
        found = ReadPolicy(guard).reader(request)
        return {"members": found.members, "did": found.did}

    return app


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    write_private(tmp_path / OPERATOR_TOKEN_FILE, OPERATOR_TOKEN + "\n")
    return Settings(data=tmp_path)


@pytest.fixture
def paid() -> set[tuple[str, str]]:
    return set()


@pytest.fixture
def guard(service: IdentityService, settings: Settings) -> Guard:
    return Guard(identity=service, settings=settings, member_did=MEMBER, clock=lambda: DAYTIME_MS)


@pytest.fixture
def client(guard: Guard, paid: set[tuple[str, str]]) -> TestClient:
    return TestClient(_app(guard, paid), client=("203.0.113.7", 50000))


SOURCE = RequestSource(ip="203.0.113.7")


def _token(service: IdentityService, login: str) -> dict[str, str]:
    session = service.login(login=login, password=PASSWORD, source=SOURCE)
    principal = session.principal
    if principal.member_did is not None:  # staff sign in with an authenticator: enrol one
        enrolment = service.begin_totp_enrolment(principal=principal)
        code = pyotp.TOTP(totp.secret_text(enrolment.secret)).at(service.clock() // 1000)
        service.confirm_totp_enrolment(principal=principal, code=code)
        principal = service.authenticate(token=session.token)
    issued = service.create_api_token(principal=principal, name="guard tests")
    return {"Authorization": f"Bearer {issued.token}"}


def customer(service: IdentityService, login: str = "alice@example.com") -> dict[str, str]:
    service.register(login=login, password=PASSWORD, kind="individual", source=SOURCE)
    return _token(service, login)


def staff(service: IdentityService, role: Role, member: str = MEMBER) -> dict[str, str]:
    login = f"{role}-{member[-5:]}".lower()
    service.store.create_user(
        login=login,
        kind="institution_staff",
        password_hash=service.hasher.hash(PASSWORD),
        roles=frozenset({role}),
        granted_by="bootstrap",
        now_ms=service.clock(),
        member_did=member,
    )
    return _token(service, login)


def _did(client: TestClient, headers: dict[str, str]) -> str:
    sender: str = client.get("/whoami", headers=headers).json()["sender"]
    return sender


def _audited(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.action, audit_log.c.target, audit_log.c.outcome).order_by(
                audit_log.c.seq
            )
        ).all()
    return [(r.action, r.target, r.outcome) for r in rows]


# -- who is calling ------------------------------------------------------------------------------


def test_the_operator_token_acts_as_the_member(client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    assert client.get("/whoami", headers=headers).json() == {
        "sender": None,
        "actor": "operator",
        "operator": True,
    }
    # The operator is never put to the step-up policy, and may do what the member may.
    assert client.post("/outflows?amount=90000000&payee=x", headers=headers).json() == {
        "reserved": False
    }
    assert client.post("/books", headers=headers).status_code == 200


def test_a_customer_is_their_own_did_and_staff_act_through_the_member(
    client: TestClient, service: IdentityService
) -> None:
    alice = customer(service)
    answer = client.get("/whoami", headers=alice).json()
    assert answer["sender"].startswith("did:key:") and answer["actor"].startswith("user:")
    officer = staff(service, Role.BANK_OFFICER)
    assert client.get("/whoami", headers=officer).json()["sender"] is None


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer zjt_forged-token"},
        {"Authorization": "Bearer operator-secret-token-for-the-guard-testz"},
        {"Authorization": "Basic abc"},
    ],
)
def test_no_or_forged_credentials_are_401(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/whoami", headers=headers)
    assert response.status_code == 401 and response.json()["code"] == "session_invalid"


def test_staff_of_another_member_are_refused(client: TestClient, service: IdentityService) -> None:
    outsider = staff(service, Role.BANK_OFFICER, member=OTHER_MEMBER)
    response = client.get("/whoami", headers=outsider)
    assert response.status_code == 403 and response.json()["code"] == "other_member"


# -- may they ------------------------------------------------------------------------------------


def test_scope_own_is_the_callers_did_and_refusals_are_audited(
    client: TestClient, service: IdentityService, engine: Engine
) -> None:
    alice = customer(service)
    bob = customer(service, "bob@example.com")
    did = _did(client, alice)
    mine = client.post(f"/accounts/a1/debit?owner={did}&custodian={MEMBER}", headers=alice)
    assert mine.status_code == 200 and mine.json() == {"scope": "own"}
    theirs = client.post(f"/accounts/a1/debit?owner={did}&custodian={MEMBER}", headers=bob)
    assert theirs.status_code == 403 and theirs.json()["code"] == "out_of_scope"
    assert ("payment.transfer", "account:a1", "out_of_scope") in _audited(engine)


def test_member_scope_stops_at_the_members_resources(
    client: TestClient, service: IdentityService, engine: Engine
) -> None:
    officer = staff(service, Role.BANK_OFFICER)
    # A bank officer has no payment.transfer grant at all: refused before any scope.
    refused = client.post(f"/accounts/a2/debit?owner=x&custodian={MEMBER}", headers=officer)
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    assert ("payment.transfer", "account:a2", "permission_denied") in _audited(engine)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.BANK_OFFICER, {"owner": None, "member_did": MEMBER}),
        (Role.AUDITOR, {"owner": None, "member_did": None}),
    ],
)
def test_a_listing_is_filtered_by_the_widest_grant(
    client: TestClient, service: IdentityService, role: Role, expected: dict[str, Any]
) -> None:
    assert client.get("/accounts", headers=staff(service, role)).json() == expected


def test_a_customer_lists_their_own_and_an_admin_nothing(
    client: TestClient, service: IdentityService
) -> None:
    alice = customer(service)
    assert client.get("/accounts", headers=alice).json() == {
        "owner": _did(client, alice),
        "member_did": None,
    }
    refused = client.get("/accounts", headers=staff(service, Role.ADMIN))
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"


def test_books_are_for_the_member_side(client: TestClient, service: IdentityService) -> None:
    refused = client.post("/books", headers=customer(service))
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    assert client.post("/books", headers=staff(service, Role.BANK_OFFICER)).status_code == 200


def test_may_answers_without_raising(guard: Guard, service: IdentityService) -> None:
    service.register(login="carol@example.com", password=PASSWORD, kind="individual", source=SOURCE)
    principal = service.login(login="carol@example.com", password=PASSWORD, source=SOURCE).principal
    caller = Caller(sender="did:key:z6MkCarol", principal=principal)
    own = guard.owned(caller, kind="account", id="c1", owner="did:key:z6MkCarol", member_did=None)
    other = guard.owned(caller, kind="account", id="c2", owner="did:key:z6MkDan", member_did=None)
    assert own.owner_id == principal.user_id and other.owner_id is None
    assert guard.may(caller, permission=Permission.ACCOUNT_READ, resource=own)
    assert not guard.may(caller, permission=Permission.ACCOUNT_READ, resource=other)
    with pytest.raises(Forbidden):
        guard.authorize(caller, permission=Permission.ACCOUNT_READ, resource=other)


# -- must they step up ---------------------------------------------------------------------------


def test_below_the_floor_is_admitted_and_counted(
    client: TestClient, service: IdentityService
) -> None:
    alice = customer(service)
    answer = client.post("/outflows?amount=99999&payee=acct-new", headers=alice)
    assert answer.status_code == 200 and answer.json() == {"reserved": True}
    user_id = client.get("/whoami", headers=alice).json()["actor"].removeprefix("user:")
    moved = service.counters.amount_moved(user_id=user_id, payee=None, now_ms=service.clock())
    assert [(m.currency, m.amount_minor) for m in moved] == [("CNY", 99_999)]


def test_a_new_payee_above_the_floor_steps_up_and_is_audited(
    client: TestClient, service: IdentityService, engine: Engine, paid: set[tuple[str, str]]
) -> None:
    alice = customer(service)
    stepped = client.post("/outflows?amount=200000&payee=acct-new", headers=alice)
    assert stepped.status_code == 401 and stepped.json()["code"] == "step_up_required"
    assert any("new_payee" in reason for reason in stepped.json()["reasons"])
    assert (f"stepup.{ACTION}", "step_up_required") in [(a, o) for a, _t, o in _audited(engine)]
    # The same amount to a payee paid before this sign-in is let through.
    paid.add(("acct-1", "acct-known"))
    assert client.post("/outflows?amount=200000&payee=acct-known", headers=alice).status_code == 200


def test_a_definite_refusal_gives_the_reservation_back(
    client: TestClient, service: IdentityService
) -> None:
    alice = customer(service)
    user_id = client.get("/whoami", headers=alice).json()["actor"].removeprefix("user:")
    refused = client.post("/outflows?amount=50000&payee=acct-x&refuse=true", headers=alice)
    assert refused.status_code == 422
    assert service.counters.amount_moved(user_id=user_id, payee=None, now_ms=service.clock()) == ()


# -- who reads a tx body -------------------------------------------------------------------------


def test_the_read_policy_reads_operator_staff_customer_and_anyone(
    client: TestClient, service: IdentityService
) -> None:
    assert client.get("/reader").json() == {"members": False, "did": None}
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    assert client.get("/reader", headers=operator).json() == {"members": True, "did": None}
    officer = staff(service, Role.BANK_OFFICER)
    assert client.get("/reader", headers=officer).json() == {"members": True, "did": None}
    outsider = staff(service, Role.BANK_OFFICER, member=OTHER_MEMBER)
    assert client.get("/reader", headers=outsider).json() == {"members": False, "did": None}
    alice = customer(service)
    assert client.get("/reader", headers=alice).json() == {
        "members": False,
        "did": _did(client, alice),
    }
    # A bad bearer token is refused, not read as anyone's.
    forged = client.get("/reader", headers={"Authorization": "Bearer zjt_forged"})
    assert forged.status_code == 401
