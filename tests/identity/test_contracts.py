"""The did, consent and status_list contracts: authorisation, validation, and random operation
sequences checked against a model (hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.identity.helpers import Chain, Clock
from zhijin.chain.crypto import KeyPair
from zhijin.identity.contracts import consent_allows, status_bit
from zhijin.identity.did import multikey_from_public_key, registry_record

HOUR_MS = 3_600_000
USERS = [KeyPair.from_seed(bytes([10 + i]) * 32) for i in range(3)]


def failed(outcome: Any, code: str) -> None:
    assert not outcome.ok and outcome.code == code, (outcome.code, outcome.message)


# -- did ------------------------------------------------------------------------------------------
def test_register_is_idempotent_and_self_certifying(chain: Chain) -> None:
    user = USERS[0]
    first = chain.ok(user.did, "did", "register", {})
    again = chain.ok(user.did, "did", "register", {})
    assert first["created"] and not again["created"] and first["did"] == again["did"]
    record = registry_record(chain.state, first["did"])
    assert record is not None and record["keys"][0][
        "public_key_multibase"
    ] == multikey_from_public_key(user.public_key)
    failed(chain.run("not-a-did", "did", "register", {}), "invalid_args")
    failed(chain.run(user.did, "did", "register", {}, vouched=True), "signature_required")
    failed(chain.run(user.did, "did", "register", {"controller": "x", "extra": 1}), "invalid_args")


def test_only_the_controller_changes_a_did(chain: Chain, member_keys: dict[str, KeyPair]) -> None:
    user, stranger = USERS[0], USERS[1]
    did = chain.ok(user.did, "did", "register", {})["did"]
    new = multikey_from_public_key(KeyPair.generate().public_key)
    failed(
        chain.run(stranger.did, "did", "rotate_key", {"did": did, "public_key_multibase": new}),
        "not_controller",
    )
    failed(chain.run(stranger.did, "did", "deactivate", {"did": did}), "not_controller")
    # A member vouching for the user cannot rotate the user's key either.
    failed(
        chain.run(
            user.did, "did", "rotate_key", {"did": did, "public_key_multibase": new}, vouched=True
        ),
        "signature_required",
    )
    failed(
        chain.run(
            user.did,
            "did",
            "rotate_key",
            {"did": did, "public_key_multibase": multikey_from_public_key(user.public_key)},
        ),
        "key_reused",
    )
    failed(
        chain.run(user.did, "did", "rotate_key", {"did": did, "public_key_multibase": "z6MkBAD"}),
        "invalid_key",
    )
    # An explicit controller (a cold key) keeps control across rotations.
    cold = member_keys["enterprise1"]
    staff = USERS[2]
    staff_did = chain.ok(staff.did, "did", "register", {"controller": cold.did})["did"]
    failed(
        chain.run(staff.did, "did", "rotate_key", {"did": staff_did, "public_key_multibase": new}),
        "not_controller",
    )
    chain.ok(cold.did, "did", "rotate_key", {"did": staff_did, "public_key_multibase": new})
    chain.ok(cold.did, "did", "deactivate", {"did": staff_did})
    failed(chain.run(cold.did, "did", "deactivate", {"did": staff_did}), "did_deactivated")


def test_resolve_is_read_only(chain: Chain) -> None:
    failed(chain.run(USERS[0].did, "did", "resolve", {"did": "did:zhijin:x"}), "unknown_method")


# -- consent --------------------------------------------------------------------------------------
def grant(chain: Chain, clock: Clock, user: KeyPair, grantee: str, **kwargs: Any) -> Any:
    args = {
        "grantee": grantee,
        "category": "identity",
        "purpose": "credit_assessment",
        "until_ms": clock() + 24 * HOUR_MS,
        **kwargs,
    }
    return chain.run(user.did, "consent", "grant", args)


def allows(
    chain: Chain,
    clock: Clock,
    subject: str,
    grantee: str,
    category: str = "identity",
    purpose: str = "credit_assessment",
) -> bool:
    return consent_allows(
        chain.state,
        subject=subject,
        grantee=grantee,
        category=category,
        purpose=purpose,
        at_ms=clock(),
    )


def test_consent_grant_check_expire_revoke(
    chain: Chain, clock: Clock, member_keys: dict[str, KeyPair]
) -> None:
    user, bank = USERS[0], member_keys["bank1"]
    assert grant(chain, clock, user, bank.did).ok
    assert allows(chain, clock, user.did, bank.did)
    # Exactly that purpose and category, exactly that member.
    assert not allows(chain, clock, user.did, bank.did, purpose="insurance_underwriting")
    assert not allows(chain, clock, user.did, bank.did, category="financial")
    assert not allows(chain, clock, user.did, member_keys["bank2"].did)
    # The on-chain check agrees.
    check = chain.run(
        bank.did,
        "consent",
        "check",
        {
            "subject": user.did,
            "grantee": bank.did,
            "category": "identity",
            "purpose": "credit_assessment",
        },
    )
    failed(check, "unknown_method")  # read-only: only through ctx.call, never a tx
    clock.advance(24 * HOUR_MS)
    assert not allows(chain, clock, user.did, bank.did)  # expired
    assert grant(chain, clock, user, bank.did).ok  # granted again
    assert allows(chain, clock, user.did, bank.did)
    chain.ok(
        user.did,
        "consent",
        "revoke",
        {"grantee": bank.did, "category": "identity", "purpose": "credit_assessment"},
    )
    assert not allows(chain, clock, user.did, bank.did)
    # Revoking twice is fine; the grantee may also give a consent up.
    chain.ok(
        user.did,
        "consent",
        "revoke",
        {"grantee": bank.did, "category": "identity", "purpose": "credit_assessment"},
    )
    assert grant(chain, clock, user, bank.did).ok
    chain.ok(
        bank.did,
        "consent",
        "revoke",
        {
            "subject": user.did,
            "grantee": bank.did,
            "category": "identity",
            "purpose": "credit_assessment",
        },
    )
    assert not allows(chain, clock, user.did, bank.did)


def test_consent_refusals(chain: Chain, clock: Clock, member_keys: dict[str, KeyPair]) -> None:
    user, bank = USERS[0], member_keys["bank1"]
    failed(grant(chain, clock, user, USERS[1].did), "grantee_not_member")
    failed(grant(chain, clock, user, bank.did, category="everything"), "unknown_category")
    failed(grant(chain, clock, user, bank.did, purpose="marketing"), "unknown_purpose")
    failed(grant(chain, clock, user, bank.did, until_ms=clock()), "invalid_until")
    failed(
        grant(chain, clock, user, bank.did, until_ms=clock() + 6 * 365 * 24 * HOUR_MS),
        "invalid_until",
    )
    # Nobody grants for someone else: not another user, not the bank for itself, not vouched.
    failed(grant(chain, clock, USERS[1], bank.did, subject=user.did), "not_subject")
    failed(
        chain.run(
            bank.did,
            "consent",
            "grant",
            {
                "subject": user.did,
                "grantee": bank.did,
                "category": "identity",
                "purpose": "credit_assessment",
                "until_ms": clock() + HOUR_MS,
            },
        ),
        "not_subject",
    )
    failed(
        chain.run(
            user.did,
            "consent",
            "grant",
            {
                "grantee": bank.did,
                "category": "identity",
                "purpose": "credit_assessment",
                "until_ms": clock() + HOUR_MS,
            },
            vouched=True,
        ),
        "signature_required",
    )
    failed(
        chain.run(
            user.did,
            "consent",
            "revoke",
            {"grantee": bank.did, "category": "identity", "purpose": "credit_assessment"},
        ),
        "unknown_consent",
    )


def test_consent_for_a_registered_did_follows_its_controller(
    chain: Chain, clock: Clock, member_keys: dict[str, KeyPair]
) -> None:
    user, bank = USERS[0], member_keys["bank1"]
    did = chain.ok(user.did, "did", "register", {})["did"]
    assert grant(chain, clock, user, bank.did, subject=did).ok
    assert allows(chain, clock, did, bank.did)
    new = KeyPair.generate()
    chain.ok(
        user.did,
        "did",
        "rotate_key",
        {"did": did, "public_key_multibase": multikey_from_public_key(new.public_key)},
    )
    failed(
        grant(chain, clock, user, bank.did, subject=did, purpose="loan_servicing"), "not_subject"
    )
    assert grant(chain, clock, new, bank.did, subject=did, purpose="loan_servicing").ok


# -- random operation sequences against a model ---------------------------------------------------
OPS = st.lists(
    st.tuples(
        st.sampled_from(["grant", "revoke", "advance", "set", "clear"]),
        st.integers(0, 2),  # user
        st.sampled_from(["identity", "contact"]),
        st.integers(1, 48),  # hours
        st.integers(0, 3),  # status index
    ),
    max_size=30,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS)
def test_property_consent_and_status_match_a_model(
    ops: list[tuple[str, int, str, int, int]], member_keys: dict[str, KeyPair]
) -> None:
    clock = Clock()
    chain = Chain(clock, member_keys)
    bank = member_keys["bank1"]
    chain.ok(
        bank.did,
        "status_list",
        "create",
        {"list_id": "s", "purpose": "suspension", "size": 131_072},
    )
    consents: dict[
        tuple[int, str], tuple[int, int | None]
    ] = {}  # (user, category) -> (until, revoked)
    bits: set[int] = set()
    for op, user_index, category, hours, index in ops:
        user = USERS[user_index]
        args = {"grantee": bank.did, "category": category, "purpose": "credit_assessment"}
        if op == "grant":
            outcome = chain.run(
                user.did, "consent", "grant", {**args, "until_ms": clock() + hours * HOUR_MS}
            )
            assert outcome.ok
            consents[(user_index, category)] = (clock() + hours * HOUR_MS, None)
        elif op == "revoke":
            outcome = chain.run(user.did, "consent", "revoke", args)
            assert outcome.ok == ((user_index, category) in consents)
            if outcome.ok and consents[(user_index, category)][1] is None:
                consents[(user_index, category)] = (consents[(user_index, category)][0], clock())
        elif op == "advance":
            clock.advance(hours * HOUR_MS)
        elif op == "set":
            chain.ok(bank.did, "status_list", "revoke", {"list_id": "s", "index": index})
            bits.add(index)
        else:
            chain.ok(bank.did, "status_list", "unrevoke", {"list_id": "s", "index": index})
            bits.discard(index)
        # Invariants after every operation.
        for u in range(3):
            for c in ("identity", "contact"):
                model = consents.get((u, c))
                expected = model is not None and model[1] is None and clock() < model[0]
                assert allows(chain, clock, USERS[u].did, bank.did, category=c) == expected
        assert {i for i in range(4) if status_bit(chain.state, bank.did, "s", i)} == bits
