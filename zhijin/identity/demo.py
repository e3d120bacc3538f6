"""Demo users for `zhijin chain init --demo`: two customers, an SME owner, an administrator, a
bank officer and an auditor of this node's member.

Passwords are generated here, printed once, and written to DATA/demo-logins.txt (mode 0600);
none is in the code.  Seeding again skips logins that exist (their passwords are in the file
from the first run).
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any

from zhijin.identity.errors import Conflict
from zhijin.identity.rbac import Principal, Role
from zhijin.identity.service import RequestSource

__all__ = ["DEMO_LOGINS_FILE", "DEMO_USERS", "demo_end_users", "seed_identity_demo"]

DEMO_LOGINS_FILE = "demo-logins.txt"
# (name, login, kind or staff role)
DEMO_USERS: tuple[tuple[str, str, str], ...] = (
    ("customer_wang", "wang.xiaoming", "individual"),
    ("customer_li", "li.na", "individual"),
    ("sme_owner_zhao", "zhao.parts", "sme_owner"),
    ("admin", "demo.admin", "admin"),
    ("bank_officer", "chen.officer", "bank_officer"),
    ("auditor", "sun.auditor", "auditor"),
)
_DEMO_SOURCE = RequestSource(ip="demo-seed")
# The demo users who hold money of their own; the SME owner (last) also runs the merchant.
END_USER_KINDS = ("individual", "sme_owner")


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
            continue
        password = _password()
        try:
            if kind in ("individual", "sme_owner"):
                user = identity.register(
                    login=login, password=password, kind=kind, source=_DEMO_SOURCE
                )
            elif kind == "admin":
                user = identity.bootstrap_admin(login=login, password=password, member_did=member)
                admin = Principal(user.id, frozenset({Role.ADMIN}), member)
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
        except Conflict:
            continue  # created meanwhile by another seeder
        result[name] = user.did or member
        created.append(f"{login}\t{password}\t{kind}")
    if created:
        path = platform.settings.data / DEMO_LOGINS_FILE
        _append_private(path, created)
        sys.stdout.write(f"demo logins (also in {path}, mode 0600; shown once):\n")
        sys.stdout.write("".join(f"  {line}\n" for line in created))
    return result
