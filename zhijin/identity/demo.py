"""Demo users for `zhijin chain init --demo`: two customers, an SME owner, an administrator, a
bank officer, a compliance officer and an auditor of this node's member, and one new customer
half-way through onboarding (KYC submitted, waiting for review).

Passwords are generated here, printed once, and written to DATA/demo-logins.txt (mode 0600);
none is in the code.  Every staff member signs in with an authenticator code, so the demo
enrols each one's TOTP and writes its secret (base32, as an authenticator app takes it typed
in) in the same file: one line per login, `login<TAB>password<TAB>kind<TAB>totp secret or -`.
Seeding again skips logins that exist (their passwords are in the file from the first run).
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any

from zhijin.identity import totp
from zhijin.identity.kyc import KycDocument
from zhijin.identity.rbac import Principal, Role
from zhijin.identity.service import IdentityService, RequestSource
from zhijin.platform.errors import Conflict
from zhijin.platform.i18n import cli_text as _cli_text

__all__ = [
    "DEMO_LOGINS_FILE",
    "DEMO_ONBOARDING",
    "DEMO_USERS",
    "demo_end_users",
    "demo_onboarding_user",
    "seed_identity_demo",
]

DEMO_LOGINS_FILE = "demo-logins.txt"
# (name, login, kind or staff role)
DEMO_USERS: tuple[tuple[str, str, str], ...] = (
    ("customer_wang", "wang.xiaoming", "individual"),
    ("customer_li", "li.na", "individual"),
    ("customer_liu", "liu.yang", "individual"),
    ("sme_owner_zhao", "zhao.parts", "sme_owner"),
    ("admin", "demo.admin", "admin"),
    ("bank_officer", "chen.officer", "bank_officer"),
    ("compliance", "zhou.compliance", "compliance_officer"),
    ("auditor", "sun.auditor", "auditor"),
    ("regulator", "gao.regulator", "regulator"),  # reads every member's books, every read audited
    ("customer_new", "he.xin", "onboarding"),
)
# The new customer's KYC data: a made-up person.  The resident ID number is well formed (region
# 110101 Dongcheng, Beijing; born 1995-03-07; its ISO 7064 check character) but belongs to no
# one; the phone number is in a mobile range and equally invented.
DEMO_ONBOARDING = {"name": "何欣", "resident_id": "11010119950307123X", "mobile": "13800138000"}
_DEMO_DOCUMENT = KycDocument("id_card_front", "text/plain", b"demo: no real document")
_DEMO_SOURCE = RequestSource(ip="demo-seed")
# The demo users who hold money of their own; the SME owner (last) also runs the merchant.
END_USER_KINDS = ("individual", "sme_owner")
_SELF_REGISTERED = ("individual", "sme_owner", "onboarding")


def _password() -> str:
    return secrets.token_urlsafe(15)  # 120 bits, 20 characters


def _append_private(path: Path, lines: list[str]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "a") as handle:
        handle.write("".join(line + "\n" for line in lines))


def demo_end_users(users: dict[str, str]) -> dict[str, str]:
    """The demo end users' DIDs by the family name of their login (wang, li, zhao): other
    domains name what they seed for them after it (demo-wang-cny, demo-zhaoshop-cny)."""
    return {
        login.split(".", 1)[0]: users[name]
        for name, login, kind in DEMO_USERS
        if kind in END_USER_KINDS
    }


def demo_onboarding_user(platform: Any) -> str | None:
    """The user id of the demo customer who is half-way through onboarding."""
    login = next(login for _name, login, kind in DEMO_USERS if kind == "onboarding")
    user = platform.identity.store.user_by_login(login)
    return None if user is None else str(user.id)


def _enrol_totp(identity: IdentityService, user_id: str, member: str) -> str:
    """Enrol a staff member's authenticator the way the API does (begin, then confirm with the
    current code); returns the secret as base32 text."""
    principal = Principal(
        user_id, identity.store.roles_of(user_id), member, auth_at_ms=identity.clock()
    )
    enrolment = identity.begin_totp_enrolment(principal=principal)
    step = totp.step_at(identity.clock() // 1000)
    identity.confirm_totp_enrolment(
        principal=principal, code=totp.code_for_step(enrolment.secret, step)
    )
    return totp.secret_text(enrolment.secret)


def _submit_demo_kyc(platform: Any, user_id: str) -> None:
    """The new customer's identity data and a KYC case, pending review (the compliance
    officer's queue)."""
    principal = Principal(user_id, frozenset({Role.CUSTOMER}))
    platform.personal.save_person(principal=principal, **DEMO_ONBOARDING)
    platform.personal.submit_kyc(
        principal=principal, member_did=platform.node.key.did, documents=[_DEMO_DOCUMENT]
    )


def seed_identity_demo(platform: Any) -> dict[str, str]:
    """Create the demo users; returns name -> DID (an end user's own did:key; for staff, the
    DID of the member they work for)."""
    identity = platform.identity
    member = platform.node.key.did
    result: dict[str, str] = {}
    created: list[str] = []
    admin: Principal | None = None
    for name, login, kind in DEMO_USERS:
        existing = identity.store.user_by_login(login)
        if existing is not None:
            result[name] = existing.did or existing.member_did or member
            if kind == "admin":
                admin = Principal(existing.id, identity.store.roles_of(existing.id), member)
            if kind not in _SELF_REGISTERED and not existing.totp_enabled:
                # Demo data from before staff needed a second factor: enrol it now.
                secret = _enrol_totp(identity, existing.id, member)
                created.append(f"{login}\t(unchanged)\t{kind}\t{secret}")
            continue
        password = _password()
        secret = "-"
        try:
            if kind in _SELF_REGISTERED:
                user = identity.register(
                    login=login,
                    password=password,
                    kind="individual" if kind == "onboarding" else kind,
                    source=_DEMO_SOURCE,
                )
                if kind == "onboarding":
                    _submit_demo_kyc(platform, user.id)
            elif kind == "admin":
                user = identity.bootstrap_admin(login=login, password=password, member_did=member)
                admin = Principal(user.id, frozenset({Role.ADMIN}), member)
                secret = _enrol_totp(identity, user.id, member)
            else:
                if admin is None:
                    raise Conflict("demo_admin_missing", "the demo admin is created first")
                user = identity.create_staff(
                    principal=admin,
                    login=login,
                    password=password,
                    roles=frozenset({Role(kind)}),
                    member_did=member,
                )
                secret = _enrol_totp(identity, user.id, member)
        except Conflict:
            continue  # created meanwhile by another seeder
        result[name] = user.did or member
        shown = "individual" if kind == "onboarding" else kind
        created.append(f"{login}\t{password}\t{shown}\t{secret}")
    if created:
        path = platform.settings.data / DEMO_LOGINS_FILE
        _append_private(path, created)
        sys.stdout.write(_cli_text("cli.demo.logins", path=path) + "\n")
        sys.stdout.write("".join(f"  {line}\n" for line in created))
    return result
