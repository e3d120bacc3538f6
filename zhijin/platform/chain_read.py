"""Who reads what of the chain: the one read policy every route that returns chain data uses.

A consortium chain is not a public chain.  Headers, hashes, signatures, proofs and signed tree
heads are public: they let anyone check the chain's integrity without learning its business.
Transaction bodies (sender, accounts, amounts, references, titles) and results are for the
consortium: this node's member (its operator token), the member's staff whose roles grant
`transaction.read` beyond their own (bank officers, analysts, compliance officers), auditors
and the regulator.  A signed-in end user sees the bodies of their own transactions: those
they sent (sender = their DID) and those that name one of their accounts (each domain says
whom its transactions name, see `PartyFinder`).  Anyone else gets the public part, marked
`"visibility": "redacted"`.

Staff of another member are read as anyone: they act through their own member's node.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol

from fastapi import Depends, Request

from zhijin.chain.codec import decode
from zhijin.chain.errors import ZhijinError
from zhijin.chain.store import ChainStore, StoredTx

__all__ = [
    "ANYONE",
    "MEMBERS",
    "REDACTED_DETAIL",
    "BodyRestricted",
    "ChainReader",
    "ChainReaderDep",
    "PartyFinder",
    "ReadPolicy",
    "Visibility",
    "chain_reader",
]

Visibility = Literal["full", "redacted"]
PartyFinder = Callable[[ChainStore, Mapping[str, Any]], frozenset[str]]
"""The DIDs a tx body names besides its sender (payments: the owners of its accounts)."""

REDACTED_DETAIL = (
    "transaction bodies and results are for consortium members, auditors, the regulator and "
    "the customers they belong to; sign in to see your own"
)


Audit = Callable[[str, str], None]
"""Records that staff read a body: (resource kind, resource id) into the access audit log."""


@dataclass(frozen=True, slots=True)
class ChainReader:
    """What one caller may read: every body (`members`), or only those naming `did`.  A staff
    reader carries `audit`, so each body they read is in the access audit log, as every
    privileged read is; the member's own operator token reads unrecorded, like its CLI."""

    members: bool = False
    did: str | None = None  # a signed-in end user's DID
    finders: Sequence[PartyFinder] = field(default=(), compare=False, repr=False)
    audit: Audit | None = field(default=None, compare=False, repr=False)

    def record_staff_read(self, kind: str, resource_id: str) -> None:
        """Write a staff reader's read of (kind, id) to the access audit log."""
        if self.audit is not None:
            self.audit(kind, resource_id)

    def may_read_sent_by(self, sender: str, *, kind: str, id: str | None) -> bool:
        """Whether this caller may read what `sender` wrote on chain (without other parties);
        a staff read of it is recorded as (kind, id), or not at all when `id` is None (the
        caller records one entry for many, as a listing does)."""
        if self.members:
            if id is not None:
                self.record_staff_read(kind, id)
            return True
        return self.did is not None and sender == self.did

    def may_read(self, store: ChainStore, tx: StoredTx) -> bool:
        """Whether this caller may see the body and result of `tx`."""
        if self.may_read_sent_by(tx.sender, kind="chain_tx", id=tx.tx_hash.hex()):
            return True
        if self.did is None:
            return False
        body = decode(tx.body)
        return any(self.did in find(store, body) for find in self.finders)

    def require_sent_by(self, sender: str, *, kind: str, id: str | None) -> None:
        """Refuse with 403 `chain_body_restricted` unless `may_read_sent_by` allows it."""
        if not self.may_read_sent_by(sender, kind=kind, id=id):
            raise BodyRestricted(message=REDACTED_DETAIL)


class BodyRestricted(ZhijinError):
    code = "chain_body_restricted"
    http_status = 403


ANYONE = ChainReader()
MEMBERS = ChainReader(members=True)


class ReadPolicy(Protocol):
    """Who the caller of a request is, as a `ChainReader`: the plumbing names this port and
    the composition root installs identity's (`identity.guard.ReadPolicy`, with every module's
    party finders) on the app's state, so this module needs no domain."""

    def reader(self, request: Request) -> ChainReader: ...


def chain_reader(request: Request) -> ChainReader:
    """FastAPI dependency: the operator's bearer token reads as the member, else the caller
    (`ReadPolicy`, on the app's state as `read_policy`)."""
    policy: ReadPolicy = request.app.state.read_policy
    return policy.reader(request)


ChainReaderDep = Annotated[ChainReader, Depends(chain_reader)]
