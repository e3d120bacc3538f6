"""Fixtures for the identity tests: a SQLite engine, a movable clock, cheap Argon2, a vault,
the service, and a small in-memory chain that runs the identity contracts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import StaticPool

from tests.identity.helpers import Chain, Clock, MemberWriter
from zhijin.chain.crypto import KeyPair
from zhijin.identity.passwords import TEST_PARAMS, PasswordHasher
from zhijin.identity.personal import PersonalDataService
from zhijin.identity.ratelimit import MemoryRateLimitStore
from zhijin.identity.service import IdentityService
from zhijin.identity.tables import create_tables
from zhijin.platform.vault import Vault, VaultKeys


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    create_tables(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def hasher() -> PasswordHasher:
    return PasswordHasher(TEST_PARAMS)


@pytest.fixture
def vault_keys() -> VaultKeys:
    return VaultKeys.generate()


@pytest.fixture
def vault(vault_keys: VaultKeys) -> Vault:
    return Vault(vault_keys)


@pytest.fixture
def service(engine: Engine, vault: Vault, hasher: PasswordHasher, clock: Clock) -> IdentityService:
    return IdentityService(
        engine=engine,
        vault=vault,
        hasher=hasher,
        clock=clock,
        rate_limits=MemoryRateLimitStore(),
    )


@pytest.fixture(scope="session")
def member_keys() -> dict[str, KeyPair]:
    return {
        "bank1": KeyPair.from_seed(bytes([1]) * 32),
        "bank2": KeyPair.from_seed(bytes([2]) * 32),
        "regulator1": KeyPair.from_seed(bytes([3]) * 32),
        "enterprise1": KeyPair.from_seed(bytes([4]) * 32),
    }


@pytest.fixture
def chain(clock: Clock, member_keys: dict[str, KeyPair]) -> Chain:
    return Chain(clock, member_keys)


@pytest.fixture
def personal(
    service: IdentityService, chain: Chain, member_keys: dict[str, KeyPair]
) -> PersonalDataService:
    return PersonalDataService(
        identity=service,
        chain_state=lambda: chain.state,
        chain=MemberWriter(chain, member_keys["bank1"]),
    )
