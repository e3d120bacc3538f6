"""The identity domain's tables (SQLAlchemy Core), all prefixed `identity_`.

Secrets never sit here in the clear: passwords are Argon2id hashes, session and API tokens
and recovery codes are SHA-256 hashes, TOTP secrets and personal data are vault ciphertexts
(the vault's and the audit log's own tables are the platform's: vault.py, audit.py there).
"""

from __future__ import annotations

import logging

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError

from zhijin.identity.confusables import skeleton_digest
from zhijin.platform.audit import create_audit_tables
from zhijin.platform.vault import create_vault_tables

log = logging.getLogger("zhijin.identity")

__all__ = ["METADATA", "create_tables"]

METADATA = MetaData()
LOGIN_SKELETON_INDEX = "ux_identity_users_login_skeleton"

users = Table(
    "identity_users",
    METADATA,
    Column("id", String(40), primary_key=True),
    Column("login", String(128), nullable=False, unique=True),  # normalised (NFKC, casefold)
    # SHA-256 of the login's UTS #39 skeleton (confusables.py), unique so that two look-alike
    # names registering at the same moment cannot both win; a digest, because a skeleton can be
    # seven times its login (Hangul syllables decompose) and an index key has a size limit.
    # NULL only on a row that already looked like an older one when the column was added.
    Column("login_skeleton_sha256", String(64)),
    Column("kind", String(20), nullable=False),  # individual | sme_owner | institution_staff
    Column("member_did", String(128)),  # the institution of a staff member
    Column("did", String(128)),  # the user's own DID, once they have one
    Column("status", String(16), nullable=False),  # active | disabled
    Column("password_hash", String(200), nullable=False),
    Column("totp_enabled", Boolean, nullable=False, default=False),
    Column("totp_last_step", BigInteger),  # replay protection: the last time step accepted
    Column("created_ms", BigInteger, nullable=False),
    Column("last_login_ms", BigInteger),
    Column("last_lat_e6", Integer),
    Column("last_lon_e6", Integer),
    Index(LOGIN_SKELETON_INDEX, "login_skeleton_sha256", unique=True),
    # Payments names an account's owner (a DID) for confirmation of payee and statements.
    Index("ix_identity_users_did", "did"),
)

user_roles = Table(
    "identity_user_roles",
    METADATA,
    Column("user_id", String(40), primary_key=True),
    Column("role", String(32), primary_key=True),
    Column("granted_by", String(40), nullable=False),
    Column("granted_ms", BigInteger, nullable=False),
)

sessions = Table(
    "identity_sessions",
    METADATA,
    Column("id", String(64), primary_key=True),  # SHA-256 of the token: the token is not stored
    Column("user_id", String(40), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # session | token
    Column("name", String(64)),  # an API token's label
    Column("created_ms", BigInteger, nullable=False),
    Column("last_seen_ms", BigInteger, nullable=False),
    Column("idle_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),  # absolute expiry
    Column("revoked_ms", BigInteger),
    Column("csrf_hash", String(64)),  # SHA-256 of the CSRF token bound to this session
    Column("auth_at_ms", BigInteger, nullable=False),
    Column("mfa_at_ms", BigInteger),
    Column("device_hash", String(64)),
)

login_failures = Table(
    "identity_login_failures",
    METADATA,
    # Keyed by a hash of the login name as typed (normalised), not by user id, so unknown
    # names lock out exactly like real ones.
    Column("login_key", String(64), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("lockouts", Integer, nullable=False),
    Column("locked_until_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

rate_buckets = Table(
    "identity_rate_buckets",
    METADATA,
    Column("key", String(200), primary_key=True),
    Column("tokens_milli", BigInteger, nullable=False),  # thousandths of a token: integers only
    Column("updated_ms", BigInteger, nullable=False),
)

recovery_codes = Table(
    "identity_recovery_codes",
    METADATA,
    Column("user_id", String(40), primary_key=True),
    Column("code_hash", String(64), primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("used_ms", BigInteger),
)

devices = Table(
    "identity_devices",
    METADATA,
    Column("user_id", String(40), primary_key=True),
    Column("device_hash", String(64), primary_key=True),
    Column("first_seen_ms", BigInteger, nullable=False),
    Column("last_seen_ms", BigInteger, nullable=False),
    # The device id sealed under the index secret (Vault.seal_indexed), so that rotating the
    # secret can recompute device_hash.  NULL on rows older than this column.
    Column("device_sealed", Text),
)

step_up_policies = Table(
    "identity_step_up_policies",
    METADATA,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("version", String(64), nullable=False, unique=True),
    Column("body", Text, nullable=False),  # canonical JSON
    Column("created_by", String(40), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

# What each user moved, one row per payment put to the step-up policy (counters.py): the
# sliding-window sums behind the cumulative step-up facts and risk control's velocity features.
payment_movements = Table(
    "identity_payment_movements",
    METADATA,
    # BIGINT on PostgreSQL; SQLite autoincrements only an INTEGER primary key (the rowid).
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("user_id", String(40), nullable=False),
    Column("request_key", String(80), nullable=False),  # "transfer:<id>" or "fx:<id>"
    Column("payee", String(64), nullable=False),  # the credit account
    Column("currency", String(3), nullable=False),
    Column("exponent", Integer, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    # A retry of the same request is one row, however often it is asked.
    UniqueConstraint("user_id", "request_key", "payee", "currency", "amount_minor"),
    Index("ix_identity_payment_movements_user", "user_id", "at_ms"),
    Index("ix_identity_payment_movements_payee", "user_id", "payee", "at_ms"),
)

# One row per user: bumping it is the lock that serialises that user's reservations (a row lock
# on PostgreSQL, the write lock on SQLite), so two concurrent payments are judged one after the
# other, each seeing the other's amount.
payment_counter_locks = Table(
    "identity_payment_counter_locks",
    METADATA,
    Column("user_id", String(40), primary_key=True),
    Column("reservations", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

kyc_cases = Table(
    "identity_kyc_cases",
    METADATA,
    Column("user_id", String(40), primary_key=True),
    Column("status", String(16), nullable=False),  # pending | approved | rejected
    Column("commitment", String(64), nullable=False),  # what goes on chain
    Column("member_did", String(128), nullable=False),  # the institution doing the KYC
    Column("submitted_ms", BigInteger, nullable=False),
    Column("reviewed_by", String(40)),
    Column("reviewed_ms", BigInteger),
)

credentials = Table(
    "identity_credentials",
    METADATA,
    Column("id", String(80), primary_key=True),  # the credential's id (urn:uuid:...)
    Column("subject_user_id", String(40), nullable=False, index=True),
    Column("issuer", String(128), nullable=False),
    Column("list_id", String(64), nullable=False),
    Column("status_index", Integer, nullable=False),
    Column("issued_by", String(40), nullable=False),
    Column("issued_ms", BigInteger, nullable=False),
    Column("revoked_ms", BigInteger),
    # Two credentials sharing a status bit would be revoked together.
    UniqueConstraint("issuer", "list_id", "status_index"),
)


def _add_column(engine: Engine, table: Table, column: str, ddl_type: str) -> None:
    if column in {c["name"] for c in inspect(engine).get_columns(table.name)}:
        return
    try:
        with engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column} {ddl_type}"))
    except DBAPIError:
        # Another process starting at the same moment may have added it first.
        if column not in {c["name"] for c in inspect(engine).get_columns(table.name)}:
            raise


def _add_missing_columns(engine: Engine) -> None:
    """Columns added after a table first shipped: create_all makes new tables only."""
    _add_column(engine, devices, "device_sealed", "TEXT")
    _add_column(engine, users, "login_skeleton_sha256", "VARCHAR(64)")
    _backfill_login_skeletons(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                f"CREATE UNIQUE INDEX IF NOT EXISTS {LOGIN_SKELETON_INDEX} ON {users.name} (login_skeleton_sha256)"
            )
        )


def _backfill_login_skeletons(engine: Engine) -> None:
    """Skeletons for users created before the column, oldest first.  A user whose login looks
    like an older one keeps NULL (the older one holds the skeleton) and the operator is told,
    since one of the two may be posing as the other.  The unique index is created after this,
    so the check is done here; the order is fixed, so two processes migrating at once write
    the same values."""
    with engine.connect() as conn:
        taken = set(
            conn.execute(
                select(users.c.login_skeleton_sha256).where(
                    users.c.login_skeleton_sha256.is_not(None)
                )
            ).scalars()
        )
        rows = conn.execute(
            select(users.c.id, users.c.login)
            .where(users.c.login_skeleton_sha256.is_(None))
            .order_by(users.c.created_ms, users.c.id)
        ).all()
    for row in rows:
        skeleton = skeleton_digest(row.login)
        if skeleton in taken:
            log.warning(
                "user %s has a login that looks like an older user's (same UTS #39 skeleton); "
                "review both accounts",
                row.id,
            )
            continue
        taken.add(skeleton)
        with engine.begin() as conn:
            conn.execute(
                update(users).where(users.c.id == row.id).values(login_skeleton_sha256=skeleton)
            )


def create_tables(engine: Engine) -> None:
    """Create the identity tables, and the platform's field vault and access audit log that
    identity writes to (idempotent)."""
    create_vault_tables(engine)
    create_audit_tables(engine)
    METADATA.create_all(engine)
    _add_missing_columns(engine)
