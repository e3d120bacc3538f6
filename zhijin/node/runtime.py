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
from zhijin.credit.expected import CreditPorts
from zhijin.identity.anchoring import AuditAnchorer
from zhijin.identity.chainops import IdentityChain
from zhijin.identity.expected import AccountOpenings
from zhijin.identity.guard import Guard
from zhijin.identity.personal import PersonalDataService
from zhijin.identity.service import IdentityService
from zhijin.identity.settings import IdentitySettings, vault_key_path
from zhijin.identity.setup import (
    ChainReader,
    GatewayWriter,
    build_identity,
    create_local_vault_key,
    load_identity_keys,
)
from zhijin.lending.expected import LendingPorts
from zhijin.node.credit_ports import build_credit_ports
from zhijin.node.lending_ports import build_lending_ports
from zhijin.node.modules import (
    default_notifiers,
    default_projections,
    default_registry,
    install_permissions,
    node_services,
)
from zhijin.node.onboarding_ports import build_onboarding_ports
from zhijin.node.party_names import IdentityPartyNames, PayeeLookupBudget
from zhijin.node.risk_ports import build_risk_service
from zhijin.node.settings import CoreSettings
from zhijin.notary import NotaryService
from zhijin.platform.audit import AuditLog
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
from zhijin.platform.gc_tuning import tune_gc
from zhijin.platform.lifecycle import NodeLifecycle
from zhijin.platform.notifications import NotificationHub
from zhijin.platform.projections import ProjectionRunner
from zhijin.platform.vault import Vault, VaultKeys
from zhijin.risk.service import RiskService
from zhijin.risk.settings import RiskSettings

__all__ = [
    "OPERATOR_TOKEN_FILE",
    "DataDirError",
    "DomainServices",
    "Platform",
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
    settings: CoreSettings,
    *,
    members: int = 4,
    chain_id: str = "zhijin-local",
    time_ms: int | None = None,
) -> Genesis:
    """Create genesis and member keys in a new data directory; refuse to overwrite one.
    `time_ms` (default: now) may only lie in the past: the demo chain begins its story there."""
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
        time_ms=now_ms() if time_ms is None else min(time_ms, now_ms()),
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
    key_path = vault_key_path(settings)
    if IdentitySettings.of(settings).vault_key is None and not key_path.exists():
        create_local_vault_key(key_path)  # identity vault (local origin, 0600)
    return genesis


class DomainServices:
    """What the solo host (`Platform`) and a cluster peer (`ClusterPlatform`) build the same way
    over their node and projections: identity's services, the request guard, the field vault
    and the access audit log every domain uses, and the live notification hub.

    One wiring for both hosts (`_wire_services`): the services only need a node to read state
    from and submit to, whatever orders its blocks.  Tables are created idempotently;
    `vault_keys` come from `load_identity_keys`, which refuses weak production settings before
    any resource is taken.
    """

    settings: CoreSettings
    store: ChainStore
    node: Node
    platform_engine: Engine
    projections: ProjectionRunner
    identity: IdentityService
    personal: PersonalDataService
    identity_chain: IdentityChain
    notary_anchors: NotaryService  # identity's NotaryAnchors port (the audit log's anchors)
    audit_anchorer: AuditAnchorer  # started and stopped with the node (identity's service)
    guard: Guard
    vault: Vault
    audit: AuditLog
    party_names: IdentityPartyNames  # payments' PartyNames port (the owners' names)
    payee_lookups: PayeeLookupBudget  # payments' LookupBudget port (against enumeration)
    notifications: NotificationHub
    credit_ports: CreditPorts  # what credit needs of payments and identity (credit/expected.py)
    account_openings: AccountOpenings  # identity's port (the onboarding pages)
    lending_ports: LendingPorts  # what lending needs of credit and identity (lending/expected.py)
    risk: RiskService  # the fraud engine (zhijin/risk), a node service
    payment_screen: RiskService | None  # payments' PaymentScreen port; None when switched off

    def _wire_services(self, vault_keys: VaultKeys) -> None:
        install_permissions()  # the matrix identity checks is the one this node's modules declare
        node = self.node
        identity = build_identity(self.settings, self.platform_engine, vault_keys)
        gateway = MemberGateway(node)  # this member's key, vouching for its users
        self.identity = identity
        self.vault = identity.vault
        self.audit = identity.audit
        self.personal = PersonalDataService(
            identity=identity,
            chain_state=lambda: ChainReader(node),
            chain=GatewayWriter(gateway),
        )
        self.identity_chain = IdentityChain(
            identity=identity, personal=self.personal, node=node, gateway=gateway
        )
        self.notary_anchors = NotaryService(
            store=self.store, engine=self.platform_engine, gateway=gateway
        )
        self.audit_anchorer = AuditAnchorer(
            identity.audit,
            self.notary_anchors,
            owner=node.key.did,
            interval_s=IdentitySettings.of(self.settings).audit_anchor_interval_s,
        )
        self.guard = Guard(
            identity=identity, settings=self.settings, member_did=node.key.did, clock=node.clock
        )
        self.party_names = IdentityPartyNames(identity, node.state_get)
        self.payee_lookups = PayeeLookupBudget(identity.rate_limits, clock=node.clock)
        self.notifications = NotificationHub(
            self.store, self.projections, default_notifiers(self.platform_engine)
        )
        self.credit_ports = build_credit_ports(self)
        self.account_openings = build_onboarding_ports(self)
        self.lending_ports = build_lending_ports(self)
        self.risk = build_risk_service(self)
        screen_on = RiskSettings.of(self.settings).risk_screen == "on"
        self.payment_screen = self.risk if screen_on else None


@dataclass
class Platform(DomainServices):
    """A node and its orderer on one data directory, started and stopped together."""

    settings: CoreSettings
    registry: ContractRegistry = field(default_factory=default_registry)
    genesis: Genesis = field(init=False)
    store: ChainStore = field(init=False)
    node: Node = field(init=False)
    orderer: SoloOrderer = field(init=False)
    platform_engine: Engine = field(init=False)
    projections: ProjectionRunner = field(init=False)
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
        self.node = Node(
            store=self.store,
            genesis=self.genesis,
            registry=self.registry,
            key=key,
            pipeline=self.settings.chain_pipeline,
        )
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
            gc_mode=self.settings.gc,
        )
        self.node.add_listener(self.projections.notify)
        self._wire_services(vault_keys)
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
        tune_gc(self.settings.gc)
        log.info(
            "node started: chain %s at height %d, member %s, commit pipeline %s",
            self.genesis.chain_id,
            self.node.head.height,
            self.node.key.did,
            "on" if self.node.pipeline else "off",
        )
        return self

    def stop(self) -> None:
        self.lifecycle.stop()

    def _release(self) -> None:
        self.node.close()  # the block in flight (pipeline mode) commits first
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
