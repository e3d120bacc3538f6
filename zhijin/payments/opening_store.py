"""Account requests off chain: the record, its table and the store (opening.py decides).

A request is keyed by (user, request id): the id is the customer's (or derived from the
account asked for, `<kind>-<currency>`), so a retry finds the same row and another customer's
ids are none of this one's business.  Its status only moves forward, each step a conditional
update that exactly one of two racing officers wins:

    pending --approve--> approved --(account on chain)--> opened
    pending --reject---> rejected

`approved` is the claim: the deciding officer is recorded before the chain is asked, so a
crash between the two leaves a request that any approval (the same officer's retry, another
officer's click, the policy) carries on to `opened`, opening nothing twice because the account
id is fixed by the request.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

__all__ = [
    "METADATA",
    "AccountRequest",
    "AccountRequestStore",
    "RequestStatus",
    "create_tables",
]

METADATA = MetaData()


class RequestStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"  # claimed by a decision; the account is being opened on chain
    OPENED = "opened"
    REJECTED = "rejected"


account_requests = Table(
    "payments_account_requests",
    METADATA,
    Column("user_id", String(40), primary_key=True),
    Column("request_id", String(64), primary_key=True),
    Column("owner_did", String(128), nullable=False),  # the DID that will own the account
    Column("member_did", String(128), nullable=False),  # the bank asked (the custodian)
    Column("currency", String(3), nullable=False),
    Column("kind", String(16), nullable=False),  # customer | merchant
    Column("purpose", String(16), nullable=False),  # limits.ACCOUNT_REQUEST_PURPOSES
    Column("status", String(16), nullable=False),
    Column("account_id", String(64), nullable=False),  # fixed at creation: see opening.py
    Column("created_ms", BigInteger, nullable=False),
    Column("decided_by", String(80)),  # "user:<id>" or "policy"
    Column("decided_ms", BigInteger),
    Column("reason", Text),  # a rejection's reason, for the customer
    Column("opened_ms", BigInteger),
    Index("ix_payments_account_requests_queue", "member_did", "status", "created_ms"),
)


@dataclass(frozen=True, slots=True)
class AccountRequest:
    user_id: str
    request_id: str
    owner_did: str
    member_did: str
    currency: str
    kind: str
    purpose: str
    status: RequestStatus
    account_id: str
    created_ms: int
    decided_by: str | None = None
    decided_ms: int | None = None
    reason: str | None = None
    opened_ms: int | None = None

    @property
    def cursor(self) -> str:
        return f"{self.created_ms}:{self.user_id}:{self.request_id}"


def create_tables(engine: Engine) -> None:
    """Create the table (idempotent)."""
    METADATA.create_all(engine)


def _row(mapping: object) -> AccountRequest:
    values = dict(mapping._mapping)  # type: ignore[attr-defined]
    values["status"] = RequestStatus(values["status"])
    return AccountRequest(**values)


def _key(user_id: str, request_id: str) -> object:
    return (account_requests.c.user_id == user_id) & (account_requests.c.request_id == request_id)


class AccountRequestStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def insert(self, request: AccountRequest) -> bool:
        """Store a new request; False when (user, request id) exists already."""
        values = {
            "user_id": request.user_id,
            "request_id": request.request_id,
            "owner_did": request.owner_did,
            "member_did": request.member_did,
            "currency": request.currency,
            "kind": request.kind,
            "purpose": request.purpose,
            "status": str(request.status),
            "account_id": request.account_id,
            "created_ms": request.created_ms,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(account_requests).values(**values))
        except IntegrityError:
            return False
        return True

    def get(self, user_id: str, request_id: str) -> AccountRequest | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(account_requests).where(_key(user_id, request_id))  # type: ignore[arg-type]
            ).one_or_none()
        return None if row is None else _row(row)

    def count_for_user(self, user_id: str) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(account_requests)
                    .where(account_requests.c.user_id == user_id)
                ).scalar_one()
            )

    def page(
        self,
        *,
        user_id: str | None,
        member_did: str | None,
        status: RequestStatus | None,
        after: tuple[int, str, str] | None,
        limit: int,
    ) -> list[AccountRequest]:
        """Requests by (created_ms, user_id, request_id) after the cursor, filtered."""
        c = account_requests.c
        query = select(account_requests)
        if user_id is not None:
            query = query.where(c.user_id == user_id)
        if member_did is not None:
            query = query.where(c.member_did == member_did)
        if status is not None:
            query = query.where(c.status == str(status))
        if after is not None:
            created, after_user, after_request = after
            query = query.where(
                (c.created_ms > created)
                | ((c.created_ms == created) & (c.user_id > after_user))
                | (
                    (c.created_ms == created)
                    & (c.user_id == after_user)
                    & (c.request_id > after_request)
                )
            )
        query = query.order_by(c.created_ms, c.user_id, c.request_id).limit(limit)
        with self.engine.connect() as conn:
            return [_row(row) for row in conn.execute(query)]

    def _move(
        self,
        user_id: str,
        request_id: str,
        *,
        before: RequestStatus,
        after: RequestStatus,
        **values: object,
    ) -> bool:
        # The status in the WHERE clause is the race's referee: of two deciders, one updates a
        # row and the other none.
        with self.engine.begin() as conn:
            result = conn.execute(
                update(account_requests)
                .where(_key(user_id, request_id))  # type: ignore[arg-type]
                .where(account_requests.c.status == str(before))
                .values(status=str(after), **values)
            )
        return result.rowcount == 1

    def claim(self, user_id: str, request_id: str, *, decided_by: str, now_ms: int) -> bool:
        return self._move(
            user_id,
            request_id,
            before=RequestStatus.PENDING,
            after=RequestStatus.APPROVED,
            decided_by=decided_by,
            decided_ms=now_ms,
        )

    def mark_opened(self, user_id: str, request_id: str, *, now_ms: int) -> bool:
        return self._move(
            user_id,
            request_id,
            before=RequestStatus.APPROVED,
            after=RequestStatus.OPENED,
            opened_ms=now_ms,
        )

    def reject(
        self, user_id: str, request_id: str, *, decided_by: str, reason: str, now_ms: int
    ) -> bool:
        return self._move(
            user_id,
            request_id,
            before=RequestStatus.PENDING,
            after=RequestStatus.REJECTED,
            decided_by=decided_by,
            decided_ms=now_ms,
            reason=reason,
        )
