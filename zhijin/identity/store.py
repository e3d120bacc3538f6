"""Storage of users, roles, sessions and API tokens, lockout counters, recovery codes, known
devices, step-up policy versions and KYC cases (SQLAlchemy Core on an Engine passed in).

Lockout counters and known devices are keyed by digests under the vault's index secret; the
`move_*` methods and `rekey_*_batch` carry them to a new secret (see vault.py).

Only the service calls this module; each method is one short transaction.  State changes that
must not race (consuming a TOTP step, using a recovery code) are single conditional UPDATEs, so
two concurrent requests cannot both succeed.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from zhijin.chain.codec import canonical
from zhijin.chain.errors import InvariantViolation
from zhijin.identity import limits
from zhijin.identity.confusables import skeleton_digest
from zhijin.identity.rbac import Role
from zhijin.identity.tables import (
    devices,
    kyc_cases,
    login_failures,
    rate_buckets,
    recovery_codes,
    sessions,
    step_up_policies,
    user_roles,
    users,
)
from zhijin.platform import limits as platform_limits
from zhijin.platform.errors import Conflict

__all__ = [
    "IdentityStore",
    "SessionRow",
    "UserRow",
    "hash_token",
    "new_token",
]


def new_token(prefix: str, nbytes: int = limits.SESSION_TOKEN_BYTES) -> str:
    """A bearer secret with a type prefix (`zjs_` session, `zjt_` API token, `zjc_` CSRF): the
    prefix lets secret scanners recognise a leaked token."""
    return prefix + secrets.token_urlsafe(nbytes)


def hash_token(token: str) -> str:
    """What the database keeps instead of the token: a stolen table cannot be replayed."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class UserRow:
    id: str
    login: str
    kind: str
    member_did: str | None
    did: str | None
    status: str
    password_hash: str
    totp_enabled: bool
    totp_last_step: int | None
    created_ms: int
    last_login_ms: int | None
    last_lat_e6: int | None
    last_lon_e6: int | None

    def __repr__(self) -> str:
        return f"UserRow(id={self.id!r}, kind={self.kind!r}, status={self.status!r})"


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    user_id: str
    kind: str
    name: str | None
    created_ms: int
    last_seen_ms: int
    idle_ms: int
    expires_ms: int
    revoked_ms: int | None
    csrf_hash: str | None
    auth_at_ms: int
    mfa_at_ms: int | None
    device_hash: str | None

    def live(self, now_ms: int) -> bool:
        return (
            self.revoked_ms is None
            and now_ms < self.expires_ms
            and now_ms - self.last_seen_ms < self.idle_ms
        )


def _user(row: Any) -> UserRow:
    return UserRow(**{c: getattr(row, c) for c in UserRow.__slots__})


def _session(row: Any) -> SessionRow:
    return SessionRow(**{c: getattr(row, c) for c in SessionRow.__slots__})


class IdentityStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- users --------------------------------------------------------------------------------
    def create_user(
        self,
        *,
        login: str,
        kind: str,
        password_hash: str,
        roles: frozenset[Role],
        granted_by: str,
        now_ms: int,
        member_did: str | None = None,
    ) -> UserRow:
        user_id = "u_" + secrets.token_hex(12)
        skeleton = skeleton_digest(login)
        self._check_login_free(login, skeleton)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(users).values(
                        id=user_id,
                        login=login,
                        login_skeleton_sha256=skeleton,
                        kind=kind,
                        member_did=member_did,
                        status="active",
                        password_hash=password_hash,
                        totp_enabled=False,
                        created_ms=now_ms,
                    )
                )
                for role in sorted(roles):
                    conn.execute(
                        insert(user_roles).values(
                            user_id=user_id,
                            role=str(role),
                            granted_by=granted_by,
                            granted_ms=now_ms,
                        )
                    )
        except IntegrityError as exc:
            # Another registration won the race: say which rule it broke.
            self._check_login_free(login, skeleton)
            raise Conflict("login_taken", "this login name is not available") from exc
        user = self.user_by_id(user_id)
        if user is None:
            raise InvariantViolation("a user just inserted cannot be read back")
        return user

    def _check_login_free(self, login: str, skeleton: str) -> None:
        with self.engine.connect() as conn:
            same = (
                conn.execute(
                    select(users.c.login).where(
                        or_(users.c.login == login, users.c.login_skeleton_sha256 == skeleton)
                    )
                )
                .scalars()
                .all()
            )
        if login in same:
            raise Conflict("login_taken", "this login name is not available")
        if same:
            raise Conflict(
                "login_confusable",
                "this login name looks like one already in use (letters from another script "
                "or look-alike characters); choose another",
            )

    def user_by_login(self, login: str) -> UserRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.login == login)).one_or_none()
        return None if row is None else _user(row)

    def user_by_id(self, user_id: str) -> UserRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.id == user_id)).one_or_none()
        return None if row is None else _user(row)

    def staff_users(
        self, *, member_did: str | None, after_login: str | None, limit: int
    ) -> list[tuple[UserRow, frozenset[Role]]]:
        """Staff accounts (of one member, when given) in login order after `after_login`,
        each with its roles."""
        query = select(users).where(users.c.kind == "institution_staff")
        if member_did is not None:
            query = query.where(users.c.member_did == member_did)
        if after_login is not None:
            query = query.where(users.c.login > after_login)
        with self.engine.connect() as conn:
            rows = [_user(r) for r in conn.execute(query.order_by(users.c.login).limit(limit))]
            held: dict[str, set[Role]] = {row.id: set() for row in rows}
            if rows:
                granted = conn.execute(
                    select(user_roles.c.user_id, user_roles.c.role).where(
                        user_roles.c.user_id.in_(list(held))
                    )
                )
                for grant in granted:
                    held[grant.user_id].add(Role(grant.role))
        return [(row, frozenset(held[row.id])) for row in rows]

    def user_by_did(self, did: str) -> UserRow | None:
        """The end user whose own DID this is (a DID names at most one user)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.did == did).limit(2)).all()
        return _user(row[0]) if len(row) == 1 else None

    def update_user(self, user_id: str, **values: Any) -> None:
        allowed = {"password_hash", "status", "did", "totp_enabled", "totp_last_step"}
        if not set(values) <= allowed:
            raise ValueError(f"not updatable here: {sorted(set(values) - allowed)}")
        with self.engine.begin() as conn:
            conn.execute(update(users).where(users.c.id == user_id).values(**values))

    def record_login(
        self, user_id: str, *, now_ms: int, lat_e6: int | None, lon_e6: int | None
    ) -> None:
        values: dict[str, Any] = {"last_login_ms": now_ms}
        if lat_e6 is not None and lon_e6 is not None:
            values.update(last_lat_e6=lat_e6, last_lon_e6=lon_e6)
        with self.engine.begin() as conn:
            conn.execute(update(users).where(users.c.id == user_id).values(**values))

    def consume_totp_step(self, user_id: str, step: int) -> bool:
        """Record `step` as used iff it is later than the last used one (atomic)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(users)
                .where(
                    (users.c.id == user_id)
                    & or_(users.c.totp_last_step.is_(None), users.c.totp_last_step < step)
                )
                .values(totp_last_step=step)
            )
        return result.rowcount == 1

    # -- roles --------------------------------------------------------------------------------
    def roles_of(self, user_id: str) -> frozenset[Role]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(user_roles.c.role).where(user_roles.c.user_id == user_id)
            ).all()
        return frozenset(Role(r.role) for r in rows)

    def grant_role(self, user_id: str, role: Role, *, granted_by: str, now_ms: int) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(user_roles).values(
                        user_id=user_id, role=str(role), granted_by=granted_by, granted_ms=now_ms
                    )
                )
        except IntegrityError:
            return False  # already held: "exists" is handled like "ok"
        return True

    def revoke_role(self, user_id: str, role: Role) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                delete(user_roles).where(
                    (user_roles.c.user_id == user_id) & (user_roles.c.role == str(role))
                )
            )
        return result.rowcount == 1

    # -- sessions and tokens -------------------------------------------------------------------
    def insert_session(self, row: SessionRow) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(sessions).values(**{c: getattr(row, c) for c in SessionRow.__slots__})
            )
            # Bound the live sessions per user: revoke the oldest beyond the limit.
            live = conn.execute(
                select(sessions.c.id)
                .where((sessions.c.user_id == row.user_id) & sessions.c.revoked_ms.is_(None))
                .order_by(sessions.c.created_ms.desc(), sessions.c.id)
                .offset(limits.SESSIONS_PER_USER_MAX)
            ).all()
            if live:
                conn.execute(
                    update(sessions)
                    .where(sessions.c.id.in_([r.id for r in live]))
                    .values(revoked_ms=row.created_ms)
                )

    def session(self, session_id: str) -> SessionRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(sessions).where(sessions.c.id == session_id)).one_or_none()
        return None if row is None else _session(row)

    def touch_session(self, session_id: str, *, now_ms: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(sessions).where(sessions.c.id == session_id).values(last_seen_ms=now_ms)
            )

    def mark_session(
        self, session_id: str, *, auth_at_ms: int | None = None, mfa_at_ms: int | None = None
    ) -> None:
        values: dict[str, Any] = {}
        if auth_at_ms is not None:
            values["auth_at_ms"] = auth_at_ms
        if mfa_at_ms is not None:
            values["mfa_at_ms"] = mfa_at_ms
        if values:
            with self.engine.begin() as conn:
                conn.execute(update(sessions).where(sessions.c.id == session_id).values(**values))

    def revoke_session(self, session_id: str, *, now_ms: int) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                update(sessions)
                .where((sessions.c.id == session_id) & sessions.c.revoked_ms.is_(None))
                .values(revoked_ms=now_ms)
            )
        return result.rowcount == 1

    def revoke_user_sessions(self, user_id: str, *, now_ms: int, keep: str | None = None) -> int:
        condition = (sessions.c.user_id == user_id) & sessions.c.revoked_ms.is_(None)
        if keep is not None:
            condition = condition & (sessions.c.id != keep)
        with self.engine.begin() as conn:
            result = conn.execute(update(sessions).where(condition).values(revoked_ms=now_ms))
        return int(result.rowcount)

    def user_sessions(self, user_id: str, *, limit: int) -> list[SessionRow]:
        """The user's browser sessions not revoked, newest first (at most `limit`; a user has
        at most SESSIONS_PER_USER_MAX live ones)."""
        query = (
            select(sessions)
            .where(
                (sessions.c.user_id == user_id)
                & (sessions.c.kind == "session")
                & sessions.c.revoked_ms.is_(None)
            )
            .order_by(sessions.c.created_ms.desc(), sessions.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_session(row) for row in rows]

    def revoke_user_session(self, user_id: str, session_id: str, *, now_ms: int) -> bool:
        """Revoke one of the user's own browser sessions (another user's id matches nothing)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(sessions)
                .where(
                    (sessions.c.id == session_id)
                    & (sessions.c.user_id == user_id)
                    & (sessions.c.kind == "session")
                    & sessions.c.revoked_ms.is_(None)
                )
                .values(revoked_ms=now_ms)
            )
        return result.rowcount == 1

    def api_tokens(self, user_id: str, *, after_id: str | None, limit: int) -> list[SessionRow]:
        """A page of the user's API tokens (live or not), by id."""
        query = select(sessions).where(
            (sessions.c.user_id == user_id) & (sessions.c.kind == "token")
        )
        if after_id is not None:
            query = query.where(sessions.c.id > after_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(sessions.c.id).limit(limit)).all()
        return [_session(row) for row in rows]

    def revoke_user_token(self, user_id: str, token_id: str, *, now_ms: int) -> bool:
        """Revoke one of the user's own API tokens (another user's id matches nothing)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(sessions)
                .where(
                    (sessions.c.id == token_id)
                    & (sessions.c.user_id == user_id)
                    & (sessions.c.kind == "token")
                    & sessions.c.revoked_ms.is_(None)
                )
                .values(revoked_ms=now_ms)
            )
        return result.rowcount == 1

    # -- lockout ------------------------------------------------------------------------------
    def locked_until(self, login_key: str) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(login_failures.c.locked_until_ms).where(
                    login_failures.c.login_key == login_key
                )
            ).scalar_one_or_none()
        return int(value or 0)

    def record_failure(self, login_key: str, *, now_ms: int) -> int:
        """Count a failure; lock when the count reaches the limit.  Returns locked_until_ms."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(login_failures)
                .where(login_failures.c.login_key == login_key)
                .with_for_update()
            ).one_or_none()
            failures, lockouts = (0, 0) if row is None else (row.failures, row.lockouts)
            failures += 1
            locked_until = 0 if row is None else row.locked_until_ms
            if failures >= limits.LOGIN_FAILURES_MAX:
                # Each further lockout doubles the wait, so a slow steady guesser gains nothing.
                wait_ms = min(limits.LOCKOUT_MS * 2 ** min(lockouts, 16), limits.LOCKOUT_MS_MAX)
                locked_until, failures, lockouts = now_ms + wait_ms, 0, lockouts + 1
            values = {
                "failures": failures,
                "lockouts": lockouts,
                "locked_until_ms": locked_until,
                "updated_ms": now_ms,
            }
            if row is None:
                conn.execute(insert(login_failures).values(login_key=login_key, **values))
            else:
                conn.execute(
                    update(login_failures)
                    .where(login_failures.c.login_key == login_key)
                    .values(**values)
                )
        return locked_until

    def move_login_key(self, old: str, new: str, *, now_ms: int) -> bool:
        """Carry a lockout counter from the previous index secret's digest to the current one
        (merged with any counter already there, keeping the stricter of each); False when there
        was nothing under `old`.  Idempotent."""
        with self.engine.begin() as conn:
            return _move_login_key(conn, old, new, now_ms)

    def rekey_logins_batch(
        self,
        digests: Callable[[str], tuple[str, ...]],
        *,
        after: str | None,
        batch_rows: int,
        now_ms: int,
    ) -> str | None:
        """Move the lockout counters of a batch of users (by id, after `after`) to the current
        digest of their login; `digests(login)` gives (current, previous).  Returns the last
        user id done, None when no user is left."""
        user_ids = self._user_batch(after, batch_rows)
        if not user_ids:
            return None
        with self.engine.connect() as conn:
            logins = (
                conn.execute(select(users.c.login).where(users.c.id.in_(user_ids))).scalars().all()
            )
        with self.engine.begin() as conn:
            for login in logins:
                current, *previous = digests(login)
                for old in previous:
                    _move_login_key(conn, old, current, now_ms)
        return user_ids[-1]

    def drop_login_keys_before(self, started_ms: int) -> int:
        """Delete the lockout counters and per-account rate buckets untouched since a rotation
        started: every user's counter was moved (and so touched) by then, so what is left is
        keyed by the previous secret's digest of a name that has no user.  Returns the count."""
        with self.engine.begin() as conn:
            failures = conn.execute(
                delete(login_failures).where(login_failures.c.updated_ms < started_ms)
            ).rowcount
            buckets = conn.execute(
                delete(rate_buckets).where(
                    rate_buckets.c.key.startswith(_LOGIN_BUCKET_PREFIX)
                    & (rate_buckets.c.updated_ms < started_ms)
                )
            ).rowcount
        return int(failures) + int(buckets)

    def _user_batch(self, after: str | None, batch_rows: int) -> list[str]:
        query = select(users.c.id)
        if after is not None:
            query = query.where(users.c.id > after)
        limit = max(1, min(batch_rows, platform_limits.VAULT_ROTATE_BATCH_MAX))
        with self.engine.connect() as conn:
            return list(conn.execute(query.order_by(users.c.id).limit(limit)).scalars().all())

    def count_users(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(users)).scalar_one())

    def clear_failures(self, login_key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(login_failures).where(login_failures.c.login_key == login_key))

    # -- recovery codes -------------------------------------------------------------------------
    def replace_recovery_codes(self, user_id: str, code_hashes: list[str], *, now_ms: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
            for code_hash in code_hashes:
                conn.execute(
                    insert(recovery_codes).values(
                        user_id=user_id, code_hash=code_hash, created_ms=now_ms
                    )
                )

    def use_recovery_code(self, user_id: str, code_hash: str, *, now_ms: int) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                update(recovery_codes)
                .where(
                    and_(
                        recovery_codes.c.user_id == user_id,
                        recovery_codes.c.code_hash == code_hash,
                        recovery_codes.c.used_ms.is_(None),
                    )
                )
                .values(used_ms=now_ms)
            )
        return result.rowcount == 1

    def recovery_codes_left(self, user_id: str) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(recovery_codes)
                    .where(
                        (recovery_codes.c.user_id == user_id) & recovery_codes.c.used_ms.is_(None)
                    )
                ).scalar_one()
            )

    # -- devices ------------------------------------------------------------------------------
    def device_known(self, user_id: str, device_hash: str) -> bool:
        return self.device_first_seen(user_id, device_hash) is not None

    def device_first_seen(self, user_id: str, device_hash: str) -> int | None:
        with self.engine.connect() as conn:
            first_seen_ms: int | None = conn.execute(
                select(devices.c.first_seen_ms).where(
                    (devices.c.user_id == user_id) & (devices.c.device_hash == device_hash)
                )
            ).scalar_one_or_none()
        return first_seen_ms

    def remember_device(
        self, user_id: str, device_hash: str, *, now_ms: int, device_sealed: str | None = None
    ) -> None:
        """Record a sign-in from a device.  `device_sealed` (the id sealed under the index
        secret) is refreshed on every sign-in, which also fills it in on older rows."""
        sealed = {} if device_sealed is None else {"device_sealed": device_sealed}
        with self.engine.begin() as conn:
            updated = conn.execute(
                update(devices)
                .where((devices.c.user_id == user_id) & (devices.c.device_hash == device_hash))
                .values(last_seen_ms=now_ms, **sealed)
            ).rowcount
            if not updated:
                conn.execute(
                    insert(devices).values(
                        user_id=user_id,
                        device_hash=device_hash,
                        first_seen_ms=now_ms,
                        last_seen_ms=now_ms,
                        **sealed,
                    )
                )

    def move_device_hash(self, old: str, new: str) -> None:
        """Carry every user's device row and session mark from the previous index secret's
        digest of a device id to the current one (idempotent)."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(devices.c.user_id)
                .where(devices.c.device_hash == old)
                .limit(platform_limits.VAULT_ROTATE_BATCH_MAX)
            ).scalars()
            for user_id in rows.all():
                _move_device(conn, user_id, old, new, device_sealed=None)
                conn.execute(
                    update(sessions)
                    .where((sessions.c.user_id == user_id) & (sessions.c.device_hash == old))
                    .values(device_hash=new)
                )

    def rekey_devices_batch(
        self,
        rekey: Callable[[str, str], tuple[str, str]],
        *,
        after: str | None,
        batch_rows: int,
    ) -> str | None:
        """Recompute the device digests of a batch of users (by id, after `after`):
        `rekey(user_id, device_sealed)` opens the sealed id and gives (current digest, id
        sealed anew).  Rows without a sealed id predate it and cannot be recomputed: they are
        forgotten (the device counts as new once), and session marks no device row explains
        are cleared.  Returns the last user id done, None when no user is left."""
        user_ids = self._user_batch(after, batch_rows)
        if not user_ids:
            return None
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(devices.c.user_id, devices.c.device_hash, devices.c.device_sealed).where(
                    devices.c.user_id.in_(user_ids)
                )
            ).all()
        with self.engine.begin() as conn:
            kept: dict[str, set[str]] = {user_id: set() for user_id in user_ids}
            for row in rows:
                if row.device_sealed is None:
                    conn.execute(
                        delete(devices).where(
                            (devices.c.user_id == row.user_id)
                            & (devices.c.device_hash == row.device_hash)
                        )
                    )
                    continue
                new, sealed = rekey(row.user_id, row.device_sealed)
                _move_device(conn, row.user_id, row.device_hash, new, device_sealed=sealed)
                conn.execute(
                    update(sessions)
                    .where(
                        (sessions.c.user_id == row.user_id)
                        & (sessions.c.device_hash == row.device_hash)
                    )
                    .values(device_hash=new)
                )
                kept[row.user_id].add(new)
            for user_id, hashes in kept.items():
                conn.execute(
                    update(sessions)
                    .where(
                        (sessions.c.user_id == user_id)
                        & sessions.c.device_hash.is_not(None)
                        & sessions.c.device_hash.not_in(hashes)
                    )
                    .values(device_hash=None)
                )
        return user_ids[-1]

    def devices_of(self, user_id: str) -> list[tuple[str, str | None]]:
        """(device_hash, device_sealed) of a user's known devices (for checks and tests)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(devices.c.device_hash, devices.c.device_sealed)
                .where(devices.c.user_id == user_id)
                .order_by(devices.c.device_hash)
                .limit(platform_limits.VAULT_ROTATE_BATCH_MAX)
            ).all()
        return [(row.device_hash, row.device_sealed) for row in rows]

    # -- step-up policies -----------------------------------------------------------------------
    def add_policy(
        self, *, version: str, body: dict[str, Any], created_by: str, now_ms: int
    ) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(step_up_policies).values(
                        version=version,
                        body=canonical(body).decode("utf-8"),
                        created_by=created_by,
                        created_ms=now_ms,
                    )
                )
        except IntegrityError as exc:
            raise Conflict("policy_version_exists", f"policy version {version} exists") from exc

    def latest_policy(self) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            body = conn.execute(
                select(step_up_policies.c.body).order_by(step_up_policies.c.seq.desc()).limit(1)
            ).scalar_one_or_none()
        return None if body is None else dict(json.loads(body))

    # -- KYC cases ------------------------------------------------------------------------------
    def put_kyc_case(self, *, user_id: str, commitment: str, member_did: str, now_ms: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(kyc_cases).where(kyc_cases.c.user_id == user_id))
            conn.execute(
                insert(kyc_cases).values(
                    user_id=user_id,
                    status="pending",
                    commitment=commitment,
                    member_did=member_did,
                    submitted_ms=now_ms,
                )
            )

    def kyc_case(self, user_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(kyc_cases).where(kyc_cases.c.user_id == user_id)
            ).one_or_none()
        return None if row is None else dict(row._mapping)

    def kyc_cases(
        self,
        *,
        member_did: str | None,
        status: str | None,
        after: tuple[int, str] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Cases by (submitted_ms, user_id), after the cursor `after`, of one member and status
        when given."""
        query = select(kyc_cases)
        if member_did is not None:
            query = query.where(kyc_cases.c.member_did == member_did)
        if status is not None:
            query = query.where(kyc_cases.c.status == status)
        if after is not None:
            submitted, user_id = after
            query = query.where(
                (kyc_cases.c.submitted_ms > submitted)
                | ((kyc_cases.c.submitted_ms == submitted) & (kyc_cases.c.user_id > user_id))
            )
        query = query.order_by(kyc_cases.c.submitted_ms, kyc_cases.c.user_id).limit(limit)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def review_kyc_case(self, user_id: str, *, status: str, reviewed_by: str, now_ms: int) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                update(kyc_cases)
                .where((kyc_cases.c.user_id == user_id) & (kyc_cases.c.status == "pending"))
                .values(status=status, reviewed_by=reviewed_by, reviewed_ms=now_ms)
            )
        return result.rowcount == 1


_LOGIN_BUCKET_PREFIX = "login-account:"  # ratelimit.LOGIN_PER_ACCOUNT, keyed by login digest


def _move_login_key(conn: Connection, old: str, new: str, now_ms: int) -> bool:
    if old == new:
        return False
    row = conn.execute(
        select(login_failures).where(login_failures.c.login_key == old).with_for_update()
    ).one_or_none()
    if row is None:
        return False
    there = conn.execute(
        select(login_failures).where(login_failures.c.login_key == new).with_for_update()
    ).one_or_none()
    if there is None:
        conn.execute(
            update(login_failures)
            .where(login_failures.c.login_key == old)
            .values(login_key=new, updated_ms=now_ms)
        )
        return True
    conn.execute(
        update(login_failures)
        .where(login_failures.c.login_key == new)
        .values(
            failures=max(row.failures, there.failures),
            lockouts=max(row.lockouts, there.lockouts),
            locked_until_ms=max(row.locked_until_ms, there.locked_until_ms),
            updated_ms=now_ms,
        )
    )
    conn.execute(delete(login_failures).where(login_failures.c.login_key == old))
    return True


def _move_device(
    conn: Connection, user_id: str, old: str, new: str, *, device_sealed: str | None
) -> None:
    """Give a user's device row the digest `new` (merged with a row already under it)."""
    sealed = {} if device_sealed is None else {"device_sealed": device_sealed}
    if old == new:
        if sealed:
            conn.execute(
                update(devices)
                .where((devices.c.user_id == user_id) & (devices.c.device_hash == old))
                .values(**sealed)
            )
        return
    row = conn.execute(
        select(devices).where((devices.c.user_id == user_id) & (devices.c.device_hash == old))
    ).one_or_none()
    if row is None:
        return
    there = conn.execute(
        select(devices).where((devices.c.user_id == user_id) & (devices.c.device_hash == new))
    ).one_or_none()
    if there is None:
        conn.execute(
            update(devices)
            .where((devices.c.user_id == user_id) & (devices.c.device_hash == old))
            .values(device_hash=new, **sealed)
        )
        return
    conn.execute(
        update(devices)
        .where((devices.c.user_id == user_id) & (devices.c.device_hash == new))
        .values(
            first_seen_ms=min(row.first_seen_ms, there.first_seen_ms),
            last_seen_ms=max(row.last_seen_ms, there.last_seen_ms),
            **sealed,
        )
    )
    conn.execute(
        delete(devices).where((devices.c.user_id == user_id) & (devices.c.device_hash == old))
    )
