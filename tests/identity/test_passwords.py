"""Argon2id hashing, the dummy hash for unknown users, and the password policy."""

from __future__ import annotations

import pytest

from zhijin.identity.passwords import (
    PRODUCTION_PARAMS,
    TEST_PARAMS,
    Argon2Params,
    PasswordHasher,
    check_password_policy,
)
from zhijin.platform.errors import InvalidInput

GOOD = "correct horse battery staple"


def test_hash_and_verify(hasher: PasswordHasher) -> None:
    stored = hasher.hash(GOOD)
    assert stored.startswith("$argon2id$") and GOOD not in stored
    assert hasher.verify(stored, GOOD)
    assert not hasher.verify(stored, GOOD + "!")
    assert not hasher.verify("not a hash", GOOD)


def test_unicode_is_normalised(hasher: PasswordHasher) -> None:
    # "ﬁ" (U+FB01) and full-width letters fold to the same NFKC password.
    assert hasher.verify(hasher.hash("ﬁne password 123"), "fine password 123")
    assert hasher.verify(hasher.hash("ＡＢＣ password 123"), "ABC password 123")


def test_dummy_verify_never_matches(hasher: PasswordHasher) -> None:
    assert not hasher.verify(None, "zhijin dummy password, never matches")
    assert not hasher.verify(None, GOOD)


def test_overlong_password_is_refused_but_costs_the_same(hasher: PasswordHasher) -> None:
    stored = hasher.hash(GOOD)
    assert not hasher.verify(stored, GOOD + "x" * 1000)
    with pytest.raises(InvalidInput):
        hasher.hash("x" * 257)


def test_rehash_when_parameters_change() -> None:
    cheap = PasswordHasher(TEST_PARAMS)
    stronger = PasswordHasher(Argon2Params(time_cost=2, memory_kib=16, parallelism=1))
    stored = cheap.hash(GOOD)
    assert not cheap.needs_rehash(stored)
    assert stronger.needs_rehash(stored)
    assert stronger.verify(stored, GOOD)  # old hashes keep working until rehashed


def test_production_parameters_are_rfc9106_second_option() -> None:
    assert (
        PRODUCTION_PARAMS.time_cost,
        PRODUCTION_PARAMS.memory_kib,
        PRODUCTION_PARAMS.parallelism,
    ) == (3, 65536, 4)
    assert PRODUCTION_PARAMS.salt_bytes == 16 and PRODUCTION_PARAMS.hash_bytes == 32


@pytest.mark.parametrize(
    "password",
    [
        "short",
        "password1234",
        "aaaaaaaaaaaaaaaa",
        "abababababababab",
        "my alice password!",
        "x" * 257,
        "WoAiNi1314520",
    ],
)
def test_weak_passwords_are_refused(password: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_password_policy(password, login="alice")
    assert caught.value.code == "weak_password"


def test_good_passwords_pass() -> None:
    check_password_policy(GOOD, login="alice")
    check_password_policy("长城万里长城永不倒一二三四", login="alice")


def test_repr_shows_no_secret(hasher: PasswordHasher) -> None:
    assert "dummy" not in repr(hasher) and "$argon2" not in repr(hasher)
