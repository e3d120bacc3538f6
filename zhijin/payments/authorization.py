"""Who may move money, open accounts and set prices: the payments authorisation rule.

Identities come from the transaction (`ctx.tx`): `sender` (whose request it is), `signer` (whose
key signed it), `vouched` (the signer is a member vouching for a sender who is not itself: a
gateway or a member batch), and `ctx.caller` (the contract that reached payments through
`ctx.call`, None for a direct tx).  A member "acting in its own name" is a tx whose signer is a
member and whose sender is that same member (not vouched).

An account's owner is one of:

- a DID (`did:...`): a user, or a member by its DID;
- `role:<member role>`: any member with that role, acting in its own name (`role:platform`);
- `contract:<name>`: a contract (escrow, loan books), reachable only through that contract.

Debit (move money out of an account, put a hold on it) is allowed when any of these holds:

1. contract owner: the account is `contract:<name>` and `ctx.caller == name`;
2. role owner: the account is `role:<r>` and a member with role r acts in its own name;
3. owner: the sender is the owner and either signed the tx itself, or a member whose role is in
   `VOUCHING_ROLES` (bank, platform: they run the web app and open API, where the owner
   authenticated with session, MFA and step-up) vouched for it, unless the owner is itself a
   member (a member's account answers only to its own signature);
4. custodian: the member that opened the account (its custodian), acting in its own name, with a
   role in `CUSTODIAN_ROLES` (a bank operating the customer accounts it holds, e.g. executing a
   standing order or a court order).

A contract calling payments runs "as this tx's sender", so rule 3 also lets e.g. the lending
contract debit a borrower's account in a repayment tx the borrower sent.  Contracts are
registered by the consortium in genesis; that trust is what makes this safe.

Crediting an account needs no authority.  Posting a hold needs debit authority over either its
debit account (the payer releases the money) or its credit account (the payee captures it);
voiding needs debit authority over its credit account (only the beneficiary may give a hold
up; the payer waits for the timeout).  Legs the contract books itself (fees, FX liquidity) are
authorised by the fee schedule or the quote their owner published.

Opening an account needs a member signer (vouched or not), who becomes its custodian: any
member may open accounts it owns (its DID or `role:<its role>`); a member in
`ACCOUNT_OPENING_ROLES` may also open non-platform accounts for others (customers, merchants).
Settlement, fee and fx-liquidity accounts are always owned by the member that opens them.  A
contract may open accounts owned by itself.

Freezing, unfreezing and closing an account is for its custodian acting in its own name, a
member in `REGULATOR_ROLES`, or, for a contract's account, that contract.  Fee schedules are set
by members in `FEE_SETTER_ROLES` over fee accounts they own; FX quotes by members in
`FX_PROVIDER_ROLES` over fx-liquidity accounts they own.
"""

from __future__ import annotations

from zhijin.chain.contract import Context, Member
from zhijin.payments.codes import Code
from zhijin.payments.records import PLATFORM_KINDS, Account

__all__ = [
    "ACCOUNT_OPENING_ROLES",
    "CUSTODIAN_ROLES",
    "FEE_SETTER_ROLES",
    "FX_PROVIDER_ROLES",
    "REGULATOR_ROLES",
    "VOUCHING_ROLES",
    "Actor",
]

VOUCHING_ROLES = frozenset({"bank", "platform"})
CUSTODIAN_ROLES = frozenset({"bank", "platform"})
ACCOUNT_OPENING_ROLES = frozenset({"bank", "platform"})
REGULATOR_ROLES = frozenset({"regulator"})
FEE_SETTER_ROLES = frozenset({"bank", "platform"})
FX_PROVIDER_ROLES = frozenset({"bank", "platform"})

CONTRACT_OWNER_PREFIX = "contract:"
ROLE_OWNER_PREFIX = "role:"


class Actor:
    """The tx's identities with the signer's member record looked up at most once."""

    __slots__ = ("_ctx", "_looked_up", "_member", "caller", "sender", "signer", "vouched")

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.sender = ctx.tx.sender
        self.signer = ctx.tx.signer
        self.vouched = ctx.tx.vouched
        self.caller = ctx.caller
        self._member: Member | None = None
        self._looked_up = False

    @property
    def member(self) -> Member | None:
        """The signer's member record, if the signer is a member."""
        if not self._looked_up:
            self._member = self._ctx.member(self.signer)
            self._looked_up = True
        return self._member

    @property
    def own_member(self) -> Member | None:
        """The member acting in its own name (signer is a member and the sender), if any."""
        if self.vouched or self.sender != self.signer:
            return None
        return self.member

    def owns(self, member: Member, account: Account) -> bool:
        return account.owner in (member.did, ROLE_OWNER_PREFIX + member.role)

    def may_debit(self, account: Account) -> bool:
        owner = account.owner
        if owner.startswith(CONTRACT_OWNER_PREFIX):
            return self.caller == owner[len(CONTRACT_OWNER_PREFIX) :]
        if owner.startswith(ROLE_OWNER_PREFIX):
            own = self.own_member
            return own is not None and own.role == owner[len(ROLE_OWNER_PREFIX) :]
        if self.sender == owner:
            if not self.vouched:
                return True
            voucher = self.member
            # A gateway vouches for its users; a member's own account answers only to the
            # member's own signature, never to another member claiming to speak for it.
            if (
                voucher is not None
                and voucher.role in VOUCHING_ROLES
                and self._ctx.member(owner) is None
            ):
                return True
        own = self.own_member
        return own is not None and account.custodian == own.did and own.role in CUSTODIAN_ROLES

    def may_administer(self, account: Account) -> bool:
        if account.owner.startswith(CONTRACT_OWNER_PREFIX):
            return self.caller == account.owner[len(CONTRACT_OWNER_PREFIX) :]
        own = self.own_member
        if own is None:
            return False
        return account.custodian == own.did or own.role in REGULATOR_ROLES

    def opening_refusal(self, owner: str, kind: str) -> tuple[Code | None, str | None]:
        """(refusal code or None, custodian) for opening an account of `kind` for `owner`."""
        if owner.startswith(CONTRACT_OWNER_PREFIX):
            # A contract's own account has no custodian: only the contract administers it.
            if self.caller != owner[len(CONTRACT_OWNER_PREFIX) :]:
                return Code.NOT_AUTHORIZED, None
            return None, None
        member = self.member
        if member is None:
            return Code.NOT_AUTHORIZED, None
        if owner in (member.did, ROLE_OWNER_PREFIX + member.role):
            return None, member.did
        if member.role not in ACCOUNT_OPENING_ROLES or owner.startswith(ROLE_OWNER_PREFIX):
            return Code.NOT_AUTHORIZED, None
        if kind in PLATFORM_KINDS:
            return Code.PLATFORM_ACCOUNT_OWNER_MUST_BE_MEMBER, None
        return None, member.did
