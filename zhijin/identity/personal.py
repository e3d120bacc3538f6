"""Personal data, KYC and verifiable credentials, on top of the identity service.

Access to someone's personal data takes one of three roads, and every read is audited:

1. the data subject reads their own record (an `own` grant);
2. staff of a member read it for a purpose the subject consented to on chain (`consent`
   contract): no live consent for that member, data category and purpose, no read;
3. a role with an `all` grant (regulator, admin) reads it with a written justification.

KYC: the subject's data and documents go into the vault; a salted commitment goes on chain
(through the notary contract); an officer of the bank reviews the case and, on approval, the
bank issues a KYC credential (eddsa-jcs-2022) that carries the commitment, never the data.
Any member verifies it against the chain (issuer key, issuer's status list) without seeing
the documents.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from zhijin.chain.codec import canonical
from zhijin.chain.contract import MEMBER_PREFIX, StateReader
from zhijin.chain.crypto import KeyPair, verify
from zhijin.chain.errors import InvariantViolation
from zhijin.identity import limits
from zhijin.identity.contracts import consent_allows, issuer_member
from zhijin.identity.did import Resolver, registry_record
from zhijin.identity.errors import CredentialInvalid
from zhijin.identity.kyc import (
    BUSINESS_SCHEMA,
    KYC_DOCUMENT_SCHEMA,
    PERSON_SCHEMA,
    KycDocument,
    commitment,
    new_salt,
    validate_cn_mobile,
    validate_fields,
    validate_person_name,
    validate_resident_id,
    validate_uscc,
)
from zhijin.identity.rbac import Permission, Principal, Resource, Role, Scope, permissions_of
from zhijin.identity.service import IdentityService
from zhijin.identity.tables import credentials
from zhijin.identity.vc import (
    StatusEntry,
    VerifiedCredential,
    issue_credential,
    verify_credential,
)
from zhijin.platform import limits as platform_limits
from zhijin.platform.errors import Conflict, Forbidden, InvalidInput
from zhijin.platform.vault import Sensitivity, text_value

__all__ = [
    "FIELD_CATEGORIES",
    "KYC_STATUSES",
    "ChainWriter",
    "IssuingMember",
    "KycListener",
    "PersonalDataService",
    "did_link_message",
]

log = logging.getLogger("zhijin.identity")

KYC_STATUSES = ("pending", "approved", "rejected")

# The consent data category each person field belongs to.
FIELD_CATEGORIES = {
    "name": "identity",
    "resident_id": "identity",
    "birth_date": "identity",
    "mobile": "contact",
    "kyc_level": "identity",
}  # commitment_salt is absent on purpose: it never leaves the service
KYC_CREDENTIAL_VALIDITY_MS = 365 * 24 * 3600 * 1000
DEFAULT_TRUSTED_KYC_ROLES = frozenset({"bank"})
KYC_CONTEXT = "https://zhijin.dev/ns/kyc/v1"


class ChainWriter(Protocol):
    """What this service needs from the chain: sign as the member and submit (MemberGateway)."""

    def submit(self, contract: str, method: str, args: dict[str, Any]) -> dict[str, Any]: ...


class KycListener(Protocol):
    """Told when a KYC case is approved (payments opens the accounts its policy gives a
    verified customer).  The composition root subscribes it; identity knows no listener."""

    def kyc_approved(self, *, user_id: str, member_did: str, reviewer_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class IssuingMember:
    """The member this node signs credentials as, and its revocation list.

    By default the issuer is the member's did:key.  A member that registered
    did:zhijin:<its key> issues under that DID instead (`registered_key_id` names its current
    key, e.g. "key-2" after a rotation), so rotating its signing key leaves old credentials
    verifiable.
    """

    key: KeyPair
    list_id: str
    list_size: int = limits.STATUS_LIST_SIZE_MIN
    registered_did: str | None = None
    registered_key_id: str | None = None

    @property
    def did(self) -> str:
        return self.registered_did or self.key.did

    @property
    def verification_method(self) -> str:
        if self.registered_did is not None:
            return f"{self.registered_did}#{self.registered_key_id}"
        return f"{self.key.did}#{self.key.did.removeprefix('did:key:')}"

    def status_args(self) -> dict[str, Any]:
        return {} if self.registered_did is None else {"issuer": self.registered_did}


def _company_name(value: str) -> str:
    name = value.strip()
    if not 0 < len(name) <= limits.COMPANY_NAME_CHARS_MAX:
        raise InvalidInput(
            "invalid_company_name",
            f"a company name is 1 to {limits.COMPANY_NAME_CHARS_MAX} characters",
        )
    return name


def did_link_message(user_id: str, did: str) -> bytes:
    """What a user signs with their DID's key to link it to their account."""
    return canonical({"purpose": "zhijin/link-did/v1", "user_id": user_id, "did": did})


class PersonalDataService:
    def __init__(
        self,
        *,
        identity: IdentityService,
        chain_state: Callable[[], StateReader],
        chain: ChainWriter | None = None,
        trusted_kyc_roles: frozenset[str] = DEFAULT_TRUSTED_KYC_ROLES,
    ) -> None:
        self.identity = identity
        self.chain_state = chain_state
        self.chain = chain
        self.trusted_kyc_roles = trusted_kyc_roles
        self._kyc_listeners: list[KycListener] = []

    def add_kyc_listener(self, listener: KycListener) -> None:
        self._kyc_listeners.append(listener)

    def remove_kyc_listener(self, listener: KycListener) -> None:
        if listener in self._kyc_listeners:
            self._kyc_listeners.remove(listener)

    @property
    def _clock(self) -> Callable[[], int]:
        return self.identity.clock

    def _record(self, **kwargs: Any) -> None:
        self.identity.record(**kwargs)

    # -- DIDs ---------------------------------------------------------------------------------
    def link_did(self, *, principal: Principal, did: str, signature: bytes) -> None:
        """Link a DID to the account, proven by a signature with its current key."""
        state = self.chain_state()
        if did.startswith("did:key:"):
            vm = f"{did}#{did.removeprefix('did:key:')}"
        else:
            record = registry_record(state, did)
            if record is None:
                raise CredentialInvalid("unknown_did", "the DID is not registered on chain")
            vm = f"{did}#{record['keys'][-1]['id']}"
        resolved = Resolver(state).key_for(vm, at_ms=self._clock())
        if not verify(resolved.public_key, did_link_message(principal.user_id, did), signature):
            raise CredentialInvalid(
                "bad_signature", "the signature does not prove control of the DID"
            )
        self.identity.store.update_user(principal.user_id, did=did)
        self._record(
            actor=f"user:{principal.user_id}",
            action="did.link",
            target=f"user:{principal.user_id}",
            outcome="ok",
            did=did,
        )

    # -- the person record ----------------------------------------------------------------------
    def save_person(
        self, *, principal: Principal, name: str, resident_id: str, mobile: str
    ) -> None:
        """The subject stores (or replaces) their own identity data."""
        self.identity.authorize(
            principal=principal,
            permission=Permission.PROFILE_UPDATE,
            resource=Resource("person", id=principal.user_id, owner_id=principal.user_id),
        )
        valid = validate_fields(
            {
                "name": (validate_person_name, name),
                "resident_id": (validate_resident_id, resident_id),
                "mobile": (validate_cn_mobile, mobile),
            }
        )
        number = valid["resident_id"]
        values: dict[str, str | bytes] = {
            "name": valid["name"],
            "resident_id": number,
            "mobile": valid["mobile"],
            "birth_date": f"{number[6:10]}-{number[10:12]}-{number[12:14]}",
            "commitment_salt": new_salt(),
            "kyc_level": "none",
        }
        record = self.identity.vault.seal(PERSON_SCHEMA, principal.user_id, values)
        self.identity.vault_store.put(record, now_ms=self._clock())
        self._record(
            actor=f"user:{principal.user_id}",
            action="personal_data.write",
            target=f"person:{principal.user_id}",
            outcome="ok",
        )

    def save_business(self, *, principal: Principal, company_name: str, uscc: str) -> str:
        """An SME owner records their company (name and unified social credit code, both
        public records in China); returns the normalised code."""
        self.identity.authorize(
            principal=principal,
            permission=Permission.PROFILE_UPDATE,
            resource=Resource("business", id=principal.user_id, owner_id=principal.user_id),
        )
        if Role.SME_OWNER not in principal.roles:
            raise Forbidden("permission_denied", "only SME owners record a business")
        valid = validate_fields(
            {
                "company_name": (_company_name, company_name),
                "uscc": (validate_uscc, uscc),
            }
        )
        code, name = valid["uscc"], valid["company_name"]
        record = self.identity.vault.seal(
            BUSINESS_SCHEMA,
            principal.user_id,
            {"company_name": name, "uscc": code, "owner_user_id": principal.user_id},
        )
        self.identity.vault_store.put(record, now_ms=self._clock())
        self._record(
            actor=f"user:{principal.user_id}",
            action="business.write",
            target=f"business:{principal.user_id}",
            outcome="ok",
        )
        return code

    def read_person(
        self,
        *,
        principal: Principal,
        subject_user_id: str,
        fields: Sequence[str],
        purpose: str,
        justification: str | None = None,
    ) -> dict[str, str]:
        """Decrypt the named fields of a person record, if this principal may see them now."""
        unknown = sorted(set(fields) - FIELD_CATEGORIES.keys())
        if unknown or not fields:
            raise InvalidInput("unknown_field", f"readable fields are {sorted(FIELD_CATEGORIES)}")
        specs = [PERSON_SCHEMA.spec(name) for name in fields]
        highly = any(s.sensitivity is Sensitivity.HIGHLY_SENSITIVE for s in specs)
        permission = (
            Permission.PERSONAL_DATA_READ_HIGHLY_SENSITIVE
            if highly
            else Permission.PERSONAL_DATA_READ
        )
        resource = self._person_resource(
            principal,
            subject_user_id,
            permission,
            sorted({FIELD_CATEGORIES[n] for n in fields}),
            purpose,
        )
        grant = self.identity.authorize(
            principal=principal,
            permission=permission,
            resource=resource,
            justification=justification,
        )
        record = self.identity.vault_store.get(PERSON_SCHEMA.name, subject_user_id)
        if record is None:
            raise InvalidInput("no_record", "no personal data is stored for this user")
        opened = self.identity.vault.open(PERSON_SCHEMA, record, fields)
        if any(s.sensitivity.encrypted for s in specs):
            self._record(
                actor=f"user:{principal.user_id}",
                action="personal_data.read",
                target=f"person:{subject_user_id}",
                outcome="ok",
                reason=grant.justification,
                fields=sorted(fields),
                purpose=purpose,
                via=str(grant.scope),
            )
        return {name: text_value(value) for name, value in opened.items()}

    def _person_resource(
        self,
        principal: Principal,
        subject_user_id: str,
        permission: Permission,
        categories: list[str],
        purpose: str,
    ) -> Resource:
        scopes = {scope for _role, scope in permissions_of(principal.roles).get(permission, ())}
        if (
            subject_user_id == principal.user_id
            or Scope.ALL in scopes
            or Scope.MEMBER not in scopes
        ):
            # Own data, an `all` grant (with its justification), or no usable grant: `require`
            # decides, and refuses the last with permission_denied or out_of_scope.
            return Resource("person", id=subject_user_id, owner_id=subject_user_id)
        # Member staff: the subject's consent, on chain, is what brings the record into scope.
        subject = self.identity.store.user_by_id(subject_user_id)
        state = self.chain_state()
        now = self._clock()
        allowed = (
            subject is not None
            and subject.did is not None
            and principal.member_did is not None
            and all(
                consent_allows(
                    state,
                    subject=subject.did,
                    grantee=principal.member_did,
                    category=c,
                    purpose=purpose,
                    at_ms=now,
                )
                for c in categories
            )
        )
        if not allowed:
            self._record(
                actor=f"user:{principal.user_id}",
                action=str(permission),
                target=f"person:{subject_user_id}",
                outcome="no_consent",
                purpose=purpose,
                categories=categories,
            )
            raise Forbidden("no_consent", "the data subject has not consented to this access")
        return Resource(
            "person", id=subject_user_id, owner_id=subject_user_id, member_did=principal.member_did
        )

    def find_by_resident_id(
        self, *, principal: Principal, resident_id: str, justification: str | None = None
    ) -> list[str]:
        """User ids whose resident ID number matches, by blind index.  Audited (not the value)."""
        grant = self.identity.authorize(
            principal=principal,
            permission=Permission.PERSONAL_DATA_READ_HIGHLY_SENSITIVE,
            justification=justification,
        )
        if grant.scope is Scope.OWN:
            raise Forbidden("out_of_scope", "searching by ID number is for staff")
        found = self.identity.vault_store.find(
            self.identity.vault, PERSON_SCHEMA, "resident_id", resident_id
        )
        self._record(
            actor=f"user:{principal.user_id}",
            action="personal_data.search",
            target="person:*",
            outcome="ok",
            reason=grant.justification,
            field="resident_id",
            matches=len(found),
        )
        return found

    # -- KYC ----------------------------------------------------------------------------------
    def submit_kyc(
        self, *, principal: Principal, member_did: str, documents: Sequence[KycDocument]
    ) -> str:
        """The subject submits their stored identity and documents to a bank; returns the
        commitment anchored on chain."""
        self.identity.authorize(
            principal=principal,
            permission=Permission.PROFILE_UPDATE,
            resource=Resource("kyc_case", id=principal.user_id, owner_id=principal.user_id),
        )
        if len(documents) > limits.KYC_DOCUMENTS_MAX:
            raise InvalidInput(
                "too_many_documents", f"at most {limits.KYC_DOCUMENTS_MAX} documents"
            )
        vault, store = self.identity.vault, self.identity.vault_store
        person = store.get(PERSON_SCHEMA.name, principal.user_id)
        if person is None:
            raise InvalidInput("no_record", "store your identity data first")
        opened = vault.open(
            PERSON_SCHEMA, person, ["name", "resident_id", "mobile", "commitment_salt"]
        )
        salt = opened.pop("commitment_salt")
        if not isinstance(salt, bytes):
            raise InvariantViolation("an encrypted vault field decrypts to bytes")
        now = self._clock()
        for position, document in enumerate(documents):
            if len(document.content) > platform_limits.VAULT_DOCUMENT_BYTES_MAX:
                raise InvalidInput("document_too_large", "a document is at most 16 MiB")
            sealed = vault.seal(
                KYC_DOCUMENT_SCHEMA,
                f"{principal.user_id}:{position}",
                {
                    "content": document.content,
                    "media_type": document.media_type,
                    "kind": document.kind,
                    "owner_user_id": principal.user_id,
                },
            )
            store.put(sealed, now_ms=now)
        digest = commitment(
            salt,
            fields={k: text_value(v) for k, v in opened.items()},
            documents=[d.content for d in documents],
        )
        self.identity.store.put_kyc_case(
            user_id=principal.user_id, commitment=digest, member_did=member_did, now_ms=now
        )
        if self.chain is not None:
            # Only the salted commitment leaves the vault; the notary domain anchors it.
            self.chain.submit("notary", "anchor", {"hash": digest, "title": "kyc commitment"})
        self._record(
            actor=f"user:{principal.user_id}",
            action="kyc.submit",
            target=f"kyc:{principal.user_id}",
            outcome="ok",
            member=member_did,
            documents=len(documents),
            commitment=digest,
        )
        return digest

    def review_kyc(
        self,
        *,
        principal: Principal,
        subject_user_id: str,
        approve: bool,
        reason: str | None = None,
    ) -> str:
        """A compliance officer of the bank decides a pending case ("approved"/"rejected"),
        with the reviewer's reason in the audit entry (a rejection needs one: the customer
        and a later review must learn why)."""
        reason = (reason or "").strip() or None
        if reason is not None and len(reason) > limits.KYC_REVIEW_REASON_CHARS_MAX:
            raise InvalidInput(
                "reason_too_long",
                f"at most {limits.KYC_REVIEW_REASON_CHARS_MAX} characters",
                limit=limits.KYC_REVIEW_REASON_CHARS_MAX,
            )
        if not approve and reason is None:
            raise InvalidInput("reason_required", "say why the case is rejected")
        self.identity.authorize_permission(
            principal=principal, permission=Permission.KYC_REVIEW, target=f"kyc:{subject_user_id}"
        )
        case = self.identity.store.kyc_case(subject_user_id)
        if case is None or case["status"] != "pending":
            raise InvalidInput("no_pending_case", "no pending KYC case for this user")
        self.identity.authorize(
            principal=principal,
            permission=Permission.KYC_REVIEW,
            resource=Resource(
                "kyc_case",
                id=subject_user_id,
                owner_id=subject_user_id,
                member_did=case["member_did"],
            ),
        )
        status = "approved" if approve else "rejected"
        if not self.identity.store.review_kyc_case(
            subject_user_id, status=status, reviewed_by=principal.user_id, now_ms=self._clock()
        ):
            raise Conflict("case_changed", "the case was decided meanwhile")
        self._record(
            actor=f"user:{principal.user_id}",
            action="kyc.review",
            target=f"kyc:{subject_user_id}",
            outcome=status,
            reason=reason,
        )
        if approve:
            self._tell_approved(subject_user_id, case["member_did"], principal.user_id)
        return status

    def _tell_approved(self, user_id: str, member_did: str, reviewer_id: str) -> None:
        # The approval stands whatever a listener does: a failure there (the chain is down)
        # is logged and left for the officer's queue, never turned into a failed review.
        for listener in list(self._kyc_listeners):
            try:
                listener.kyc_approved(
                    user_id=user_id, member_did=member_did, reviewer_id=reviewer_id
                )
            except Exception:
                log.exception("a KYC listener failed for user %s", user_id)

    def kyc_status(self, *, principal: Principal) -> dict[str, Any]:
        """The caller's own KYC case: "none" until they submit one."""
        self.identity.authorize(
            principal=principal,
            permission=Permission.PROFILE_UPDATE,
            resource=Resource("kyc_case", id=principal.user_id, owner_id=principal.user_id),
        )
        case = self.identity.store.kyc_case(principal.user_id)
        has_person = (
            self.identity.vault_store.get(PERSON_SCHEMA.name, principal.user_id) is not None
        )
        if case is None:
            return {"status": "none", "personal_data_saved": has_person}
        return {**_case_json(case), "personal_data_saved": has_person}

    def kyc_queue(
        self,
        *,
        principal: Principal,
        status: str | None,
        after: str | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """KYC cases for a reviewer, oldest submission first (the queue), of the reviewer's
        member unless their grant is `all`; `after` is the last item's `cursor`."""
        self.identity.authorize_permission(
            principal=principal, permission=Permission.KYC_REVIEW, target="kyc:*"
        )
        grant = self.identity.authorize(principal=principal, permission=Permission.KYC_REVIEW)
        if status is not None and status not in KYC_STATUSES:
            raise InvalidInput("invalid_status", f"status is one of {', '.join(KYC_STATUSES)}")
        member = None if grant.scope is Scope.ALL else principal.member_did
        if member is None and grant.scope is not Scope.ALL:
            raise Forbidden("out_of_scope", "the KYC queue is for staff of a member")
        rows = self.identity.store.kyc_cases(
            member_did=member,
            status=status,
            after=_parse_cursor(after),
            limit=max(1, min(limit, limits.PAGE_ROWS_MAX)),
        )
        return [_case_json(row) for row in rows]

    def issue_kyc_credential(
        self, *, principal: Principal, subject_user_id: str, issuer: IssuingMember
    ) -> dict[str, Any]:
        """A bank officer issues the credential for an approved case.  Review (compliance) and
        issuance (officer) are different roles: four eyes on every KYC credential."""
        self.identity.authorize_permission(
            principal=principal,
            permission=Permission.CREDENTIAL_ISSUE,
            target=f"kyc:{subject_user_id}",
        )
        case = self.identity.store.kyc_case(subject_user_id)
        if case is None or case["status"] != "approved":
            raise InvalidInput("case_not_approved", "the KYC case is not approved")
        self.identity.authorize(
            principal=principal,
            permission=Permission.CREDENTIAL_ISSUE,
            resource=Resource(
                "credential",
                owner_id=subject_user_id,
                member_did=case["member_did"],
                created_by=case["reviewed_by"],
            ),
        )
        if issuer_member(issuer.did) != case["member_did"]:
            raise Forbidden("out_of_scope", "the case was reviewed for another member")
        commitment_hex = case["commitment"]
        subject = self.identity.store.user_by_id(subject_user_id)
        if subject is None or subject.did is None:
            raise InvalidInput("no_did", "the subject has not linked a DID")
        credential_id = f"urn:uuid:{uuid.uuid4()}"
        now = self._clock()
        index = self._allocate_status_index(
            credential_id, subject_user_id, issuer, principal.user_id, now
        )
        credential = issue_credential(
            issuer_key=issuer.key,
            issuer=issuer.did,
            verification_method=issuer.verification_method,
            credential_id=credential_id,
            types=("KycCredential",),
            subject={"id": subject.did, "kycLevel": "verified", "kycCommitment": commitment_hex},
            now_ms=now,
            valid_until_ms=now + KYC_CREDENTIAL_VALIDITY_MS,
            status=StatusEntry(issuer=issuer.did, list_id=issuer.list_id, index=index),
            extra_contexts=(KYC_CONTEXT,),
        )
        self._record(
            actor=f"user:{principal.user_id}",
            action="credential.issue",
            target=f"credential:{credential_id}",
            outcome="ok",
            subject=subject_user_id,
        )
        return credential

    def _allocate_status_index(
        self,
        credential_id: str,
        subject_user_id: str,
        issuer: IssuingMember,
        officer: str,
        now: int,
    ) -> int:
        # A random free index, not the next one: sequential indexes would tell a verifier the
        # order (and so roughly the time) of issuance, which the status list should not leak.
        for _ in range(32):
            index = secrets.randbelow(issuer.list_size)
            try:
                with self.identity.store.engine.begin() as conn:
                    conn.execute(
                        insert(credentials).values(
                            id=credential_id,
                            subject_user_id=subject_user_id,
                            issuer=issuer.did,
                            list_id=issuer.list_id,
                            status_index=index,
                            issued_by=officer,
                            issued_ms=now,
                        )
                    )
                return index
            except IntegrityError:
                continue
        raise Conflict("status_list_full", "no free status index found; create a new list")

    def revoke_credential(
        self, *, principal: Principal, credential_id: str, issuer: IssuingMember, reason: str
    ) -> None:
        self.identity.authorize_permission(
            principal=principal,
            permission=Permission.CREDENTIAL_REVOKE,
            target=f"credential:{credential_id}",
        )
        with self.identity.store.engine.connect() as conn:
            row = conn.execute(
                select(credentials).where(credentials.c.id == credential_id)
            ).one_or_none()
        if row is None or row.issuer != issuer.did:
            raise InvalidInput("unknown_credential", "this member issued no such credential")
        self.identity.authorize(
            principal=principal,
            permission=Permission.CREDENTIAL_REVOKE,
            resource=Resource("credential", id=credential_id, member_did=row.issuer),
        )
        if self.chain is None:
            raise InvalidInput("no_chain", "revocation needs the chain")
        self.chain.submit(
            "status_list", "revoke", {"list_id": row.list_id, "index": row.status_index}
        )
        with self.identity.store.engine.begin() as conn:
            conn.execute(
                update(credentials)
                .where(credentials.c.id == credential_id)
                .values(revoked_ms=self._clock())
            )
        self._record(
            actor=f"user:{principal.user_id}",
            action="credential.revoke",
            target=f"credential:{credential_id}",
            outcome="ok",
            reason=reason,
        )

    def verify_kyc_credential(self, credential: dict[str, Any]) -> VerifiedCredential:
        """What another member runs: proof, issuer is a trusted member, unexpired, unrevoked."""
        state = self.chain_state()

        def trusted(did: str) -> bool:
            member = state.get(MEMBER_PREFIX + issuer_member(did))
            return member is not None and member.get("role") in self.trusted_kyc_roles

        verified = verify_credential(
            credential, resolver=Resolver(state), now_ms=self._clock(), trusted_issuer=trusted
        )
        if "KycCredential" not in verified.types:
            raise CredentialInvalid("bad_type", "not a KYC credential")
        return verified


def _case_json(case: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_id": case["user_id"],
        "status": case["status"],
        "member_did": case["member_did"],
        "commitment": case["commitment"],
        "submitted_ms": case["submitted_ms"],
        "reviewed_by": case["reviewed_by"],
        "reviewed_ms": case["reviewed_ms"],
        "cursor": f"{case['submitted_ms']}:{case['user_id']}",
    }


def _parse_cursor(after: str | None) -> tuple[int, str] | None:
    if after is None:
        return None
    submitted, _, user_id = after.partition(":")
    if not submitted.isdigit() or not user_id or len(after) > limits.CURSOR_CHARS_MAX:
        raise InvalidInput("invalid_cursor", "after is the `cursor` of the last item of a page")
    return int(submitted), user_id
