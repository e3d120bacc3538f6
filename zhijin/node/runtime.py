"""The solo node host: a node, its orderer, its projections and every module's services on one
data directory (the data directory itself: zhijin/platform/data_dir.py)."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import Engine

from zhijin.chain.contract import ContractRegistry, Member
from zhijin.chain.crypto import KeyPair
from zhijin.chain.files import (
    make_private_dir,
    write_private,
)
from zhijin.chain.genesis import Genesis
from zhijin.chain.node import Node, now_ms
from zhijin.chain.ordering.solo import SoloOrderer
from zhijin.chain.store import ChainStore, make_engine
from zhijin.identity.anchoring import AuditAnchorer
from zhijin.identity.chainops import IdentityChain
from zhijin.identity.personal import PersonalDataService
from zhijin.identity.service import IdentityService
from zhijin.identity.setup import (
    ChainReader,
    GatewayWriter,
    build_identity,
    create_local_vault_key,
    load_identity_keys,
)
from zhijin.identity.vault import VaultKeys
from zhijin.node.modules import (
    default_notifiers,
    default_projections,
    default_registry,
    node_services,
)
from zhijin.platform.data_dir import (
    OPERATOR_TOKEN_FILE,
    DataDirError,
    check_data_dir,
    check_operator_token,
    load_genesis,
    load_node_key,
    lock_data_dir,
)
from zhijin.platform.gateway import MemberGateway
from zhijin.platform.lifecycle import NodeLifecycle
from zhijin.platform.notifications import NotificationHub
from zhijin.platform.projections import ProjectionRunner
from zhijin.platform.settings import Settings

__all__ = [
    "OPERATOR_TOKEN_FILE",
    "DataDirError",
    "IdentityServices",
    "Platform",
    "build_identity_services",
    "check_data_dir",
    "check_operator_token",
    "init_data_dir",
    "load_genesis",
    "load_node_key",
]

log = logging.getLogger("zhijin.platform")

DEMO_MEMBER_ROLES = ("bank", "bank", "insurer", "enterprise", "regulator", "fund", "auditor")
DEMO_MEMBER_NAMES = (
    "Huaxia Commercial Bank",
    "Jiangnan Rural Bank",
    "Pacific Mutual Insurance",
    "Yangtze Motors (core enterprise)",
    "Financial Regulatory Office",
    "Harbour Fund Management",
    "Independent Audit Co",
)
MEMBERS_MAX_LOCAL = 64


def init_data_dir(
    settings: Settings, *, members: int = 4, chain_id: str = "zhijin-local"
) -> Genesis:
    """Create genesis and member keys in a new data directory; refuse to overwrite one."""
    if not 1 <= members <= MEMBERS_MAX_LOCAL:
        raise DataDirError(message=f"--members must be 1..{MEMBERS_MAX_LOCAL}")
    if settings.genesis_path.exists():
        raise DataDirError(message=f"{settings.genesis_path} exists: this data directory is in use")
    make_private_dir(settings.data)
    keys = [KeyPair.generate() for _ in range(members)]
    member_records = []
    for index, key in enumerate(keys):
        role = DEMO_MEMBER_ROLES[index % len(DEMO_MEMBER_ROLES)]
        name = DEMO_MEMBER_NAMES[index] if index < len(DEMO_MEMBER_NAMES) else f"Member {index}"
        member_records.append(Member(did=key.did, name=name, role=role, weight=1))
        key.save(settings.keys_dir / f"member-{index}.key")
    genesis = Genesis(
        chain_id=chain_id,
        time_ms=now_ms(),
        members=tuple(member_records),
        quorum_weight=members * 2 // 3 + 1,
        ordering="solo",
        orderer=keys[0].did,
        contracts=default_registry().versions(),
    )
    genesis.validate()
    genesis.save(settings.genesis_path)
    token = secrets.token_urlsafe(32)
    write_private(settings.data / OPERATOR_TOKEN_FILE, token + "\n")
    if settings.vault_key is None and not settings.vault_key_path.exists():
        create_local_vault_key(settings.vault_key_path)  # identity vault (local origin, 0600)
    return genesis


@dataclass(frozen=True, slots=True)
class IdentityServices:
    """The identity services a node runs over its platform database and its chain node."""

    identity: IdentityService
    gateway: MemberGateway  # this member's key, vouching for the users it authenticated
    personal: PersonalDataService
    chain: IdentityChain
    anchorer: AuditAnchorer  # started and stopped with the node


def build_identity_services(
    settings: Settings, engine: Engine, node: Node, vault_keys: VaultKeys
) -> IdentityServices:
    """Identity, personal data, identity chain ops and audit anchoring over `node`.

    One construction path for the solo `Platform` and a cluster peer (`ClusterPlatform`): the
    services only need a node to read state from and submit to, whatever orders its blocks.
    Tables are created idempotently; `vault_keys` come from `load_identity_keys`, which
    refuses weak production settings before any resource is taken.
    """
    identity = build_identity(settings, engine, vault_keys)
    gateway = MemberGateway(node)
    personal = PersonalDataService(
        identity=identity,
        chain_state=lambda: ChainReader(node),
        chain=GatewayWriter(gateway),
    )
    chain = IdentityChain(identity=identity, personal=personal, node=node, gateway=gateway)
    anchorer = AuditAnchorer(identity.audit, gateway, interval_s=settings.audit_anchor_interval_s)
    return IdentityServices(identity, gateway, personal, chain, anchorer)


@dataclass
class Platform:
    """A node and its orderer on one data directory, started and stopped together."""

    settings: Settings
    registry: ContractRegistry = field(default_factory=default_registry)
    genesis: Genesis = field(init=False)
    store: ChainStore = field(init=False)
    node: Node = field(init=False)
    orderer: SoloOrderer = field(init=False)
    platform_engine: Engine = field(init=False)
    projections: ProjectionRunner = field(init=False)
    identity: IdentityService = field(init=False)
    personal: PersonalDataService = field(init=False)
    identity_gateway: MemberGateway = field(init=False)
    audit_anchorer: AuditAnchorer = field(init=False)
    identity_chain: IdentityChain = field(init=False)
    notifications: NotificationHub = field(init=False)
    lifecycle: NodeLifecycle = field(init=False)
    _lock_file: IO[str] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.genesis = load_genesis(self.settings)
        check_data_dir(self.settings)
        vault_keys = load_identity_keys(self.settings)  # refuses weak production settings
        # Every file is checked before the lock is taken: a refusal then leaves no lock held.
        key = load_node_key(self.settings, self.genesis)
        self._lock_file = lock_data_dir(self.settings.data)
        self.store = ChainStore(self.settings.chain_database_url())
        self.node = Node(store=self.store, genesis=self.genesis, registry=self.registry, key=key)
        self.orderer = SoloOrderer(
            self.node,
            block_txs_max=self.settings.block_txs_max,
            block_interval_ms=self.settings.block_interval_ms,
        )
        self.platform_engine = make_engine(self.settings.platform_database_url_resolved())
        self.projections = ProjectionRunner(
            self.store,
            self.platform_engine,
            default_projections(),
            factory=default_projections if self.settings.projector == "process" else None,
            wait_timeout_s=self.settings.projection_wait_s,
        )
        self.node.add_listener(self.projections.notify)
        services = build_identity_services(
            self.settings, self.platform_engine, self.node, vault_keys
        )
        self.identity = services.identity
        self.identity_gateway = services.gateway
        self.personal = services.personal
        self.identity_chain = services.chain
        self.audit_anchorer = services.anchorer
        self.notifications = NotificationHub(
            self.store, self.projections, default_notifiers(self.platform_engine)
        )
        self.lifecycle = NodeLifecycle(
            start_orderer=self.orderer.start,
            stop_orderer=self.orderer.stop,
            await_final=lambda _height: None,  # solo ordering: every committed block is final
            projections=self.projections,
            notifications=self.notifications,
            services=node_services(self),
            release=self._release,
        )

    def start(self) -> Platform:
        self.lifecycle.start()
        log.info(
            "node started: chain %s at height %d, member %s",
            self.genesis.chain_id,
            self.node.head.height,
            self.node.key.did,
        )
        return self

    def stop(self) -> None:
        self.lifecycle.stop()

    def _release(self) -> None:
        self.store.close()
        self.platform_engine.dispose()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> Platform:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def final_height(self) -> int:
        """The highest final block: with solo ordering every committed block is final."""
        return self.node.head.height

    def status(self) -> dict[str, Any]:
        head = self.node.head
        return {
            "chain_id": self.genesis.chain_id,
            "height": head.height,
            "block_hash": head.block_hash.hex(),
            "state_root": head.state_root.hex(),
            "time_ms": head.time_ms,
            "log_size": head.log_size,
            "mempool": self.node.mempool_size(),
            "member": self.node.key.did,
            "ordering": self.genesis.ordering,
        }
