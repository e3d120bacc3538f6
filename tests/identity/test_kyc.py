"""KYC validation, and the personal-data roads end to end: own reads, consent-gated member
reads, justified privileged reads, KYC submission, review, credential issue, verification by
another member without the documents, and revocation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from sqlalchemy import Engine, select, text
from stdnum.cn import ric

from tests.identity.helpers import Chain, Clock, MemberWriter
from zhijin.chain.crypto import KeyPair
from zhijin.identity.errors import CredentialInvalid
from zhijin.identity.kyc import (
    KycDocument,
    commitment,
    new_salt,
    validate_cn_mobile,
    validate_person_name,
    validate_resident_id,
    validate_uscc,
)
from zhijin.identity.personal import IssuingMember, PersonalDataService, did_link_message
from zhijin.identity.rbac import Principal, Role
from zhijin.identity.service import IdentityService, RequestSource
from zhijin.platform.audit import audit_log
from zhijin.platform.errors import Forbidden, InvalidInput

PASSWORD = "correct horse battery staple"
SOURCE = RequestSource(ip="203.0.113.7")
RIC = "11010519491231002X"
REASON = "regulatory inspection 2025-17, file of customer complaint"


# -- validation -----------------------------------------------------------------------------------
def test_resident_id() -> None:
    assert validate_resident_id("110105 19491231 002x") == RIC
    for bad in ("110105194912310021", "11010519491231002", "A1010519491231002X", ""):
        with pytest.raises(InvalidInput) as caught:
            validate_resident_id(bad)
        assert caught.value.code == "invalid_resident_id"
        assert not bad or bad not in caught.value.message  # the number is never echoed
    future = "11010520991231001"
    future += ric.calc_check_digit(future)
    with pytest.raises(InvalidInput):
        validate_resident_id(future, today=date(2025, 6, 1))


def test_uscc() -> None:
    assert validate_uscc("91110000600037341L") == "91110000600037341L"
    assert validate_uscc("9111 0000 6000 3734 1L") == "91110000600037341L"
    for bad in ("91110000600037341X", "9111000060003734", "I1110000600037341L"):
        with pytest.raises(InvalidInput) as caught:
            validate_uscc(bad)
        assert caught.value.code == "invalid_uscc"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "+8613800138000"),
        ("+86 138-0013-8000", "+8613800138000"),
        ("0086 19912345678", "+8619912345678"),
        ("86 14512345678", "+8614512345678"),
        ("(+86) 166 1234 5678", "+8616612345678"),
    ],
)
def test_mobile_valid(raw: str, expected: str) -> None:
    assert validate_cn_mobile(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "12345678901",
        "1380013800",
        "138001380000",
        "+85213800138000",
        "14012345678",
        "15412345678",
        "abc",
        "+1 415 555 0100",
        "19412345678",
    ],
)
def test_mobile_invalid(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_cn_mobile(raw)
    assert caught.value.code == "invalid_mobile"


def test_names() -> None:
    assert validate_person_name(" 张三 ") == "张三"
    assert validate_person_name("阿卜杜•热合曼") == "阿卜杜·热合曼"
    assert validate_person_name("Zhang  San") == "Zhang San"
    assert validate_person_name("O'Brien-Smith") == "O'Brien-Smith"
    for bad in ("", "张", "·张三", "张··三", "张三1", "<script>", "x" * 65):
        with pytest.raises(InvalidInput):
            validate_person_name(bad)


def test_commitment_is_salted() -> None:
    fields = {"resident_id": RIC}
    a, b = new_salt(), new_salt()
    assert commitment(a, fields=fields, documents=[b"doc"]) == commitment(
        a, fields=fields, documents=[b"doc"]
    )
    assert commitment(a, fields=fields, documents=[b"doc"]) != commitment(
        b, fields=fields, documents=[b"doc"]
    )
    assert commitment(a, fields=fields, documents=[b"doc"]) != commitment(
        a, fields=fields, documents=[b"other"]
    )
    with pytest.raises(InvalidInput):
        commitment(b"short", fields=fields, documents=[])


# -- end to end -----------------------------------------------------------------------------------
@dataclass
class World:
    service: IdentityService
    personal: PersonalDataService
    chain: Chain
    clock: Clock
    customer: Principal
    customer_key: KeyPair
    officer: Principal  # bank1
    compliance: Principal  # bank1
    other_officer: Principal  # bank2
    other_compliance: Principal  # bank2
    regulator: Principal
    auditor: Principal
    admin: Principal
    issuer: IssuingMember


@pytest.fixture
def world(
    service: IdentityService,
    personal: PersonalDataService,
    chain: Chain,
    clock: Clock,
    member_keys: dict[str, KeyPair],
) -> World:
    service.store.create_user(
        login="root-admin",
        kind="institution_staff",
        password_hash=service.hasher.hash(PASSWORD),
        roles=frozenset({Role.ADMIN}),
        granted_by="bootstrap",
        now_ms=clock(),
    )
    admin = service.login(login="root-admin", password=PASSWORD, source=SOURCE).principal

    def staff(login: str, role: Role, member: str) -> Principal:
        service.create_staff(
            principal=admin,
            login=login,
            password=PASSWORD,
            roles=frozenset({role}),
            member_did=member_keys[member].did,
        )
        return service.login(login=login, password=PASSWORD, source=SOURCE).principal

    service.register(login="alice", password=PASSWORD, kind="individual", source=SOURCE)
    customer = service.login(login="alice", password=PASSWORD, source=SOURCE).principal
    customer_key = KeyPair.from_seed(bytes([42]) * 32)
    personal.link_did(
        principal=customer,
        did=customer_key.did,
        signature=customer_key.sign(did_link_message(customer.user_id, customer_key.did)),
    )
    personal.save_person(principal=customer, name="张三", resident_id=RIC, mobile="13800138000")
    bank = member_keys["bank1"]
    chain.ok(
        bank.did,
        "status_list",
        "create",
        {"list_id": "kyc", "purpose": "revocation", "size": 131_072},
    )
    return World(
        service=service,
        personal=personal,
        chain=chain,
        clock=clock,
        customer=customer,
        customer_key=customer_key,
        officer=staff("officer-wang", Role.BANK_OFFICER, "bank1"),
        compliance=staff("compliance-zhao", Role.COMPLIANCE_OFFICER, "bank1"),
        other_officer=staff("officer-chen", Role.BANK_OFFICER, "bank2"),
        other_compliance=staff("compliance-sun", Role.COMPLIANCE_OFFICER, "bank2"),
        regulator=staff("regulator-he", Role.REGULATOR, "regulator1"),
        auditor=staff("auditor-ma", Role.AUDITOR, "enterprise1"),
        admin=admin,
        issuer=IssuingMember(key=bank, list_id="kyc"),
    )


def forbidden(code: str, call: object, **kwargs: object) -> None:
    with pytest.raises(Forbidden) as caught:
        call(**kwargs)  # type: ignore[operator]
    assert caught.value.code == code, caught.value


def consent(
    w: World, member: KeyPair, category: str = "identity", purpose: str = "credit_assessment"
) -> None:
    w.chain.ok(
        w.customer_key.did,
        "consent",
        "grant",
        {
            "grantee": member.did,
            "category": category,
            "purpose": purpose,
            "until_ms": w.clock() + 3_600_000,
        },
    )


def test_did_link_needs_proof_of_control(world: World) -> None:
    impostor = KeyPair.generate()
    with pytest.raises(CredentialInvalid):
        world.personal.link_did(
            principal=world.customer,
            did=world.customer_key.did,
            signature=impostor.sign(
                did_link_message(world.customer.user_id, world.customer_key.did)
            ),
        )
    with pytest.raises(CredentialInvalid):  # a signature made for another account
        world.personal.link_did(
            principal=world.customer,
            did=world.customer_key.did,
            signature=world.customer_key.sign(did_link_message("u_other", world.customer_key.did)),
        )


def test_the_subject_reads_their_own_data(world: World) -> None:
    data = world.personal.read_person(
        principal=world.customer,
        subject_user_id=world.customer.user_id,
        fields=["name", "resident_id", "mobile"],
        purpose="self_service",
    )
    assert data == {"name": "张三", "resident_id": RIC, "mobile": "+8613800138000"}


def test_member_staff_read_only_with_consent(world: World, member_keys: dict[str, KeyPair]) -> None:
    read = world.personal.read_person
    who = {"subject_user_id": world.customer.user_id, "purpose": "credit_assessment"}
    forbidden("no_consent", read, principal=world.officer, fields=["name"], **who)
    consent(world, member_keys["bank1"])
    assert read(principal=world.officer, fields=["name"], **who) == {"name": "张三"}
    # The consent covers identity, not contact details, and only this purpose and member.
    forbidden("no_consent", read, principal=world.officer, fields=["mobile"], **who)
    forbidden(
        "no_consent",
        read,
        principal=world.officer,
        fields=["name"],
        subject_user_id=world.customer.user_id,
        purpose="loan_servicing",
    )
    forbidden("no_consent", read, principal=world.other_officer, fields=["name"], **who)
    # The ID number is highly sensitive: officers never, compliance with consent.
    forbidden("permission_denied", read, principal=world.officer, fields=["resident_id"], **who)
    assert read(principal=world.compliance, fields=["resident_id"], **who) == {"resident_id": RIC}
    # Consent revoked on chain: access ends at once.
    world.chain.ok(
        world.customer_key.did,
        "consent",
        "revoke",
        {
            "grantee": member_keys["bank1"].did,
            "category": "identity",
            "purpose": "credit_assessment",
        },
    )
    forbidden("no_consent", read, principal=world.officer, fields=["name"], **who)


def test_privileged_reads_need_a_recorded_justification(world: World, engine: Engine) -> None:
    read = world.personal.read_person
    who = {"subject_user_id": world.customer.user_id, "purpose": "investigation"}
    forbidden("justification_required", read, principal=world.admin, fields=["name"], **who)
    assert read(principal=world.admin, fields=["name"], justification=REASON, **who) == {
        "name": "张三"
    }
    forbidden(
        "permission_denied",
        read,
        principal=world.admin,
        fields=["resident_id"],
        justification=REASON,
        **who,
    )
    assert read(principal=world.regulator, fields=["resident_id"], justification=REASON, **who) == {
        "resident_id": RIC
    }
    forbidden(
        "permission_denied",
        read,
        principal=world.auditor,
        fields=["name"],
        justification=REASON,
        **who,
    )
    forbidden(
        "out_of_scope",
        read,
        principal=Principal(user_id="u_x", roles=frozenset({Role.CUSTOMER})),
        fields=["name"],
        justification=REASON,
        **who,
    )
    with engine.connect() as conn:
        reads = conn.execute(
            select(audit_log.c.actor, audit_log.c.reason, audit_log.c.outcome).where(
                audit_log.c.action == "personal_data.read"
            )
        ).all()
    assert (f"user:{world.admin.user_id}", REASON, "ok") in [tuple(r) for r in reads]
    refusals = [
        r.outcome
        for r in world.service.audit.entries()
        if r.action.startswith("personal_data.read")
    ]
    assert "justification_required" in refusals and "permission_denied" in refusals
    assert world.service.audit.verify().ok


def test_search_by_id_number(world: World) -> None:
    found = world.personal.find_by_resident_id(
        principal=world.compliance, resident_id="110105 19491231 002x"
    )
    assert found == [world.customer.user_id]
    forbidden(
        "out_of_scope",
        world.personal.find_by_resident_id,
        principal=world.customer,
        resident_id=RIC,
    )
    forbidden(
        "permission_denied",
        world.personal.find_by_resident_id,
        principal=world.officer,
        resident_id=RIC,
    )
    entries = [e for e in world.service.audit.entries() if e.action == "personal_data.search"]
    assert entries and RIC not in str(entries[0].hashed_fields())


def test_kyc_credential_lifecycle(
    world: World, engine: Engine, member_keys: dict[str, KeyPair]
) -> None:
    documents = [
        KycDocument("id_card_front", "image/jpeg", b"\xff\xd8 front of the card " * 50),
        KycDocument("id_card_back", "image/jpeg", b"\xff\xd8 back " * 50),
    ]
    digest = world.personal.submit_kyc(
        principal=world.customer, member_did=member_keys["bank1"].did, documents=documents
    )
    # Only the salted commitment went on chain (through the notary).
    assert world.chain.state.get(f"notary/doc/{digest}") is not None
    chain_dump = str(world.chain.state.data)
    for secret in ("张三", RIC, "13800138000", "front of the card"):
        assert secret not in chain_dump
    with engine.connect() as conn:  # and the documents are ciphertext in the database
        db_dump = str(conn.execute(text("SELECT body FROM identity_vault_records")).all())
    assert "front of the card" not in db_dump and "张三" not in db_dump

    # Issue before approval: refused.  Review by the other bank's compliance: out of scope.
    with pytest.raises(InvalidInput):
        world.personal.issue_kyc_credential(
            principal=world.officer, subject_user_id=world.customer.user_id, issuer=world.issuer
        )
    forbidden(
        "out_of_scope",
        world.personal.review_kyc,
        principal=world.other_compliance,
        subject_user_id=world.customer.user_id,
        approve=True,
    )
    forbidden(
        "permission_denied",
        world.personal.review_kyc,
        principal=world.officer,
        subject_user_id=world.customer.user_id,
        approve=True,
    )
    assert (
        world.personal.review_kyc(
            principal=world.compliance, subject_user_id=world.customer.user_id, approve=True
        )
        == "approved"
    )
    forbidden(
        "permission_denied",
        world.personal.issue_kyc_credential,
        principal=world.compliance,
        subject_user_id=world.customer.user_id,
        issuer=world.issuer,
    )
    vc = world.personal.issue_kyc_credential(
        principal=world.officer, subject_user_id=world.customer.user_id, issuer=world.issuer
    )
    assert vc["credentialSubject"] == {
        "id": world.customer_key.did,
        "kycLevel": "verified",
        "kycCommitment": digest,
    }

    # Another member verifies it from the chain alone: no documents, no personal data.
    bank2_view = PersonalDataService(
        identity=world.service,
        chain_state=lambda: world.chain.state,
        chain=MemberWriter(world.chain, member_keys["bank2"]),
    )
    verified = bank2_view.verify_kyc_credential(vc)
    assert (
        verified.issuer == member_keys["bank1"].did and verified.subject["kycCommitment"] == digest
    )

    # An enterprise member is not a trusted KYC issuer, even with a well-formed credential.
    enterprise = IssuingMember(key=member_keys["enterprise1"], list_id="kyc")
    world.chain.ok(
        enterprise.did,
        "status_list",
        "create",
        {"list_id": "kyc", "purpose": "revocation", "size": 131_072},
    )
    from zhijin.identity.vc import StatusEntry, issue_credential

    fake = issue_credential(
        issuer_key=enterprise.key,
        issuer=enterprise.did,
        verification_method=enterprise.verification_method,
        credential_id="urn:uuid:fake",
        types=("KycCredential",),
        subject=vc["credentialSubject"],
        now_ms=world.clock(),
        status=StatusEntry(enterprise.did, "kyc", 1),
    )
    with pytest.raises(CredentialInvalid) as untrusted:
        bank2_view.verify_kyc_credential(fake)
    assert untrusted.value.code == "untrusted_issuer"

    # Revocation: another bank's officer may not; the issuing bank's officer may.
    forbidden(
        "out_of_scope",
        world.personal.revoke_credential,
        principal=world.other_officer,
        credential_id=vc["id"],
        issuer=world.issuer,
        reason="fraud suspected",
    )
    world.personal.revoke_credential(
        principal=world.officer,
        credential_id=vc["id"],
        issuer=world.issuer,
        reason="fraud suspected",
    )
    with pytest.raises(CredentialInvalid) as revoked:
        bank2_view.verify_kyc_credential(vc)
    assert revoked.value.code == "revoked"
    assert world.service.audit.verify().ok


def test_one_person_may_not_review_and_issue(world: World, member_keys: dict[str, KeyPair]) -> None:
    both = world.service.create_staff(
        principal=world.admin,
        login="dual-role",
        password=PASSWORD,
        roles=frozenset({Role.BANK_OFFICER, Role.COMPLIANCE_OFFICER}),
        member_did=member_keys["bank1"].did,
    )
    dual = world.service.login(login=both.login, password=PASSWORD, source=SOURCE).principal
    world.personal.submit_kyc(
        principal=world.customer, member_did=member_keys["bank1"].did, documents=[]
    )
    world.personal.review_kyc(principal=dual, subject_user_id=world.customer.user_id, approve=True)
    forbidden(
        "sod_self_approval",
        world.personal.issue_kyc_credential,
        principal=dual,
        subject_user_id=world.customer.user_id,
        issuer=world.issuer,
    )
    world.personal.issue_kyc_credential(
        principal=world.officer, subject_user_id=world.customer.user_id, issuer=world.issuer
    )


def test_read_person_refuses_internal_and_unknown_fields(world: World) -> None:
    for fields in (["commitment_salt"], ["favourite_colour"], []):
        with pytest.raises(InvalidInput):
            world.personal.read_person(
                principal=world.customer,
                subject_user_id=world.customer.user_id,
                fields=fields,
                purpose="self_service",
            )
    with pytest.raises(InvalidInput):
        world.personal.submit_kyc(
            principal=world.customer,
            member_did=world.issuer.did,
            documents=[KycDocument("page", "image/png", b"x")] * 11,
        )


def test_an_approval_tells_the_listeners_and_stands_when_one_fails(
    world: World, member_keys: dict[str, KeyPair]
) -> None:
    told: list[dict[str, str]] = []

    class Broken:
        def kyc_approved(self, *, user_id: str, member_did: str, reviewer_id: str) -> None:
            raise RuntimeError("the chain is down")

    class Recorder:
        def kyc_approved(self, *, user_id: str, member_did: str, reviewer_id: str) -> None:
            told.append({"user": user_id, "member": member_did, "reviewer": reviewer_id})

    recorder = Recorder()
    world.personal.add_kyc_listener(Broken())
    world.personal.add_kyc_listener(recorder)
    bank = member_keys["bank1"].did
    world.personal.submit_kyc(principal=world.customer, member_did=bank, documents=[])
    subject = world.customer.user_id
    status = world.personal.review_kyc(
        principal=world.compliance, subject_user_id=subject, approve=True
    )
    assert status == "approved"  # the broken listener did not undo it
    assert world.service.store.kyc_case(subject)["status"] == "approved"
    assert told == [{"user": subject, "member": bank, "reviewer": world.compliance.user_id}]
    # A rejection tells nobody; a removed listener hears nothing more.
    world.personal.submit_kyc(principal=world.customer, member_did=bank, documents=[])
    world.personal.review_kyc(
        principal=world.compliance,
        subject_user_id=subject,
        approve=False,
        reason="the document is unreadable",
    )
    assert len(told) == 1
    world.personal.remove_kyc_listener(recorder)
    world.personal.submit_kyc(principal=world.customer, member_did=bank, documents=[])
    world.personal.review_kyc(principal=world.compliance, subject_user_id=subject, approve=True)
    assert len(told) == 1
