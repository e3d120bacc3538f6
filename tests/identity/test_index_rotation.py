"""The vault's index-secret rotation over identity's data: every blind index, lockout
counter and device digest recomputed, lookups kept while it runs, resumable, refusing bad
input.  Runs on SQLite and on PostgreSQL (the root conftest's `db_url`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from tests.identity.helpers import Clock
from tests.platform.test_vault import PERSON
from zhijin.identity import limits
from zhijin.identity.errors import AuthenticationFailed, LockedOut
from zhijin.identity.kyc import PERSON_SCHEMA
from zhijin.identity.passwords import PasswordHasher
from zhijin.identity.ratelimit import SqlRateLimitStore
from zhijin.identity.service import IdentityService, RequestSource
from zhijin.identity.setup import rotate_index_secret
from zhijin.identity.tables import create_tables
from zhijin.platform.errors import DecryptionFailed, InvalidInput
from zhijin.platform.vault import FieldSpec, RecordSchema, Sensitivity, Vault, VaultKeys, VaultStore

ROTATION_PASSWORD = "correct horse battery staple 42"
PEOPLE = {
    "ann": ("11010519491231002X", "+8613800138000", "device-ann"),
    "ben": ("110105194912310037", "+8613900139000", "device-ben"),
    "cat": ("11010519491231002X", "+8613700137000", "device-cat"),  # shares ann's ID number
}


@pytest.fixture
def db(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url)
    create_tables(engine)
    yield engine
    engine.dispose()


def _service(engine: Engine, keys: VaultKeys, clock: Clock, hasher: PasswordHasher) -> Any:
    return IdentityService(
        engine=engine,
        vault=Vault(keys),
        hasher=hasher,
        clock=clock,
        rate_limits=SqlRateLimitStore(engine),
    )


def _populate_people(service: IdentityService) -> dict[str, str]:
    """Users with a known device, a locked-out name, personal data; returns login -> user id."""
    ids = {}
    for login, (resident_id, mobile, device) in PEOPLE.items():
        user = service.register(
            login=login, password=ROTATION_PASSWORD, kind="individual", source=RequestSource("ip")
        )
        ids[login] = user.id
        service.login(
            login=login, password=ROTATION_PASSWORD, source=RequestSource("ip", device_id=device)
        )
        values = {**PERSON, "resident_id": resident_id, "mobile": mobile}
        service.vault_store.put(
            service.vault.seal(PERSON_SCHEMA, user.id, values), now_ms=service.clock()
        )
    for _ in range(limits.LOGIN_FAILURES_MAX):  # ben is locked out
        with pytest.raises((AuthenticationFailed, LockedOut)):
            service.login(login="ben", password="wrong password", source=RequestSource("ip"))
    with pytest.raises(AuthenticationFailed):  # a counter for a name that has no user
        service.login(login="nobody", password="wrong password", source=RequestSource("ip"))
    return ids


def _check_lookups(service: IdentityService, ids: dict[str, str]) -> None:
    """Logins, device recognition, lockout and searches by ID number and mobile all work."""
    store, vault = service.vault_store, service.vault
    assert store.find(vault, PERSON_SCHEMA, "resident_id", "11010519491231002x") == sorted(
        [ids["ann"], ids["cat"]]
    )
    assert store.find(vault, PERSON_SCHEMA, "mobile", "139 0013 9000") == [ids["ben"]]
    for login in ("ann", "cat"):
        issued = service.login(
            login=login,
            password=ROTATION_PASSWORD,
            source=RequestSource("ip", device_id=PEOPLE[login][2]),
        )
        assert issued.login_decision is not None
        assert service.device_known(
            principal=replace(issued.principal, auth_at_ms=service.clock() + 1),
            source=RequestSource("ip", device_id=PEOPLE[login][2]),
        )
    with pytest.raises(LockedOut):
        service.login(login="ben", password=ROTATION_PASSWORD, source=RequestSource("ip"))


def _digests_in_db(engine: Engine) -> set[str]:
    """Every keyed digest the database holds (login counters and buckets, devices, indexes)."""
    queries = (
        "SELECT login_key FROM identity_login_failures",
        "SELECT key FROM identity_rate_buckets",
        "SELECT device_hash FROM identity_devices",
        "SELECT device_hash FROM identity_sessions WHERE device_hash IS NOT NULL",
        "SELECT digest FROM identity_vault_index",
    )
    found: set[str] = set()
    with engine.connect() as conn:
        for query in queries:
            found |= {str(row[0]).rsplit(":", 1)[-1] for row in conn.execute(text(query))}
    return found


def _old_digests(keys: VaultKeys) -> set[str]:
    vault = Vault(keys)
    digests = {vault.keyed_digest("login", name) for name in [*PEOPLE, "nobody"]}
    digests |= {vault.keyed_digest("device", device) for _, _, device in PEOPLE.values()}
    for resident_id, mobile, _ in PEOPLE.values():
        digests.add(vault.blind_index(PERSON_SCHEMA, "resident_id", resident_id))
        digests.add(vault.blind_index(PERSON_SCHEMA, "mobile", mobile))
    return digests


class _Interrupted(Exception):
    pass


def test_index_secret_rotation_recomputes_every_digest(
    db: Engine, hasher: PasswordHasher, clock: Clock
) -> None:
    old_keys = VaultKeys.generate()
    ids = _populate_people(_service(db, old_keys, clock, hasher))
    assert _old_digests(old_keys) <= _digests_in_db(db)

    keys = old_keys.with_new_index_secret()
    clock.advance(1000)
    seen: list[tuple[str, int, int]] = []
    done = rotate_index_secret(
        db, Vault(keys), clock=clock, batch_rows=2, progress=lambda *p: seen.append(p)
    )
    assert done.stage == "done"
    assert ("vault_index", 6, 6) in seen and ("devices", 3, 3) in seen  # 3 people, 3 DID keys
    final = keys.without_previous_index_secret()
    service = _service(db, final, clock, hasher)
    _check_lookups(service, ids)
    assert not _old_digests(old_keys) & _digests_in_db(db)
    assert "previous_index_secret" not in final.to_json()
    assert old_keys.index_secret.hex() not in json.dumps(final.to_json())

    # A second rotation rotates again, from the secret the first one made.
    again = final.with_new_index_secret()
    clock.advance(1000)
    rotate_index_secret(db, Vault(again), clock=clock, batch_rows=500)
    _check_lookups(_service(db, again.without_previous_index_secret(), clock, hasher), ids)
    assert not _old_digests(final) & _digests_in_db(db)


def test_interrupted_index_rotation_keeps_lookups_and_resumes(
    db: Engine, hasher: PasswordHasher, clock: Clock
) -> None:
    old_keys = VaultKeys.generate()
    ids = _populate_people(_service(db, old_keys, clock, hasher))
    keys = old_keys.with_new_index_secret()
    clock.advance(1000)

    for stage in ("vault_index", "logins", "devices"):

        def interrupt(at: str, done: int, total: int, stage: str = stage) -> None:
            if at == stage:
                raise _Interrupted(f"stopped in {at} at {done}/{total}")

        with pytest.raises(_Interrupted):
            rotate_index_secret(db, Vault(keys), clock=clock, batch_rows=1, progress=interrupt)
        saved = VaultStore(db).index_rotation(Vault(keys).index_secret_id)
        assert saved is not None and saved.stage == stage and saved.cursor is not None
        # A node started on the half-done rotation (both secrets loaded) misses nobody.
        clock.advance(1000)
        _check_lookups(_service(db, keys, clock, hasher), ids)

    assert rotate_index_secret(db, Vault(keys), clock=clock, batch_rows=1).stage == "done"
    final = keys.without_previous_index_secret()
    _check_lookups(_service(db, final, clock, hasher), ids)
    assert not _old_digests(old_keys) & _digests_in_db(db)


def test_index_rotation_refuses_bad_input(db: Engine, clock: Clock) -> None:
    keys = VaultKeys.generate()
    with pytest.raises(InvalidInput, match="no previous index secret"):
        rotate_index_secret(db, Vault(keys), clock=clock)
    rotating = keys.with_new_index_secret()
    with pytest.raises(InvalidInput, match="unfinished"):
        rotating.with_new_index_secret()
    with pytest.raises(InvalidInput):
        VaultKeys(keys.master_keys, "k1", keys.index_secret, keys.index_secret)
    with pytest.raises(InvalidInput):
        VaultKeys(keys.master_keys, "k1", keys.index_secret, b"short")
    assert rotating.index_secret.hex() not in repr(rotating) + repr(Vault(rotating))
    assert VaultKeys.from_json(rotating.to_json()) == rotating
    # A record of a schema nobody declared, with blind indexes, stops the rotation loudly.
    stray = RecordSchema("stray", (FieldSpec("tag", Sensitivity.SENSITIVE, blind_index=True),))
    VaultStore(db).put(Vault(keys).seal(stray, "s1", {"tag": "x"}), now_ms=1)
    with pytest.raises(InvalidInput, match="stray"):
        rotate_index_secret(db, Vault(rotating), clock=clock)
    # Sealed device ids are bound to their user: one copied to another user does not open.
    vault = Vault(rotating)
    sealed = vault.seal_indexed("device", "u_1", "device-x")
    assert vault.open_indexed("device", "u_1", sealed) == "device-x"
    with pytest.raises(DecryptionFailed):
        vault.open_indexed("device", "u_2", sealed)
