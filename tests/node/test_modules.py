"""The composition root: everything a node wires is derived from the ordered MODULES tuple, so
adding a domain is one package and one line."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from fastapi import APIRouter
from typer.testing import CliRunner

from zhijin.chain.contract import Contract
from zhijin.identity.rbac import Permission
from zhijin.node import modules
from zhijin.node.app import create_app
from zhijin.node.demo import seed_demo
from zhijin.node.settings import Settings
from zhijin.platform.http_edge import EdgeRoute
from zhijin.platform.module import DomainModule, NavEntry, PermissionSpec, with_permission


def _leasing_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/leasing", route_class=EdgeRoute)

    @router.get("/products")
    def products() -> dict[str, list[str]]:
        return {"products": ["equipment-lease"]}

    return router


leasing_app = typer.Typer(no_args_is_help=True)


@leasing_app.command("products")
def _products() -> None:
    typer.echo("equipment-lease")


@leasing_app.command("version")
def _version() -> None:
    typer.echo("1")


LEASING = DomainModule(
    name="leasing",
    contracts=(Contract(name="leasing", version="1", methods={}),),
    routers=(_leasing_router,),
    cli=lambda: (("leasing", leasing_app),),
    permissions=(PermissionSpec("lease.read", {"customer": "own"}),),
    pages=(NavEntry("/leases", "page.leases", with_permission("lease.read"), order=999),),
)


@pytest.fixture
def with_leasing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(modules, "MODULES", (*modules.MODULES, LEASING))


def test_the_registry_holds_every_modules_contracts() -> None:
    versions = modules.default_registry().versions()
    declared = {c.name for module in modules.MODULES for c in module.contracts}
    assert set(versions) == declared
    assert {"governance", "notary", "payments", "did", "consent"} <= declared


def test_a_new_module_line_brings_its_contract_router_and_page(with_leasing: None) -> None:
    assert modules.default_registry().versions()["leasing"] == "1"
    assert modules.nav_entries()[-1] == LEASING.pages[0]  # order 999: last in the navigation
    assert modules.permissions()["lease.read"] == "leasing"
    assert "/api/v1/leasing/products" in create_app(Settings()).openapi()["paths"]


def test_a_module_router_outside_the_edge_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = APIRouter()
    plain.get("/api/v1/plain")(lambda: {})
    loose = DomainModule(name="loose", routers=(lambda: plain,))
    monkeypatch.setattr(modules, "MODULES", (*modules.MODULES, loose))
    with pytest.raises(TypeError, match="/api/v1/plain is not an EdgeRoute"):
        create_app(Settings())


def test_cli_groups_come_from_the_manifests() -> None:
    names = [name for name, _ in modules.cli_groups()]
    assert names == ["identity", "audit", "pay", "notary", "credit", "aml", "risk", "lending"]


def test_a_new_modules_cli_group_is_reachable(with_leasing: None) -> None:
    root = typer.Typer()
    for name, group in modules.cli_groups():
        root.add_typer(group, name=name)
    result = CliRunner().invoke(root, ["leasing", "products"])
    assert result.exit_code == 0 and result.stdout.strip() == "equipment-lease"


def test_each_declared_permission_is_one_modules() -> None:
    declared = [p.name for module in modules.MODULES for p in module.permissions]
    assert len(declared) == len(set(declared)), "a permission declared by two modules"
    # Identity's and payments' names are enum constants for their own code; a later domain
    # (credit) checks plain names its manifest declares.
    enum_owners = {"identity", "payments"}
    assert all(
        p.name in set(Permission)
        for module in modules.MODULES
        if module.name in enum_owners
        for p in module.permissions
    )


def test_the_invariant_run_covers_each_module_and_names_it() -> None:
    from tests.payments.test_invariants import sound_ledger
    from zhijin.chain.memory import MemoryState
    from zhijin.payments.records import keys

    ledger = sound_ledger().state
    assert modules.check_invariants(ledger) == []
    state = ledger.data
    state[keys.account("bob-cny")]["credits_posted"] += 1
    problems = modules.check_invariants(MemoryState(state))
    assert any(p.startswith("payments.debits_equal_credits: ") for p in problems), problems


def test_vault_schemas_hold_identity_payments_and_credit_schemas() -> None:
    from zhijin.credit.tables import APPLICANT_SCHEMA
    from zhijin.identity.setup import VAULT_SCHEMAS
    from zhijin.payments.aliases import MOBILE_SCHEMA
    from zhijin.payments.directory import IBAN_SCHEMA

    assert modules.vault_schemas() == {
        **VAULT_SCHEMAS,
        IBAN_SCHEMA.name: IBAN_SCHEMA,
        MOBILE_SCHEMA.name: MOBILE_SCHEMA,
        APPLICANT_SCHEMA.name: APPLICANT_SCHEMA,
    }


def test_demo_seeds_run_in_manifest_order_with_earlier_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    def seed(name: str, value: Any) -> Any:
        def run(_host: Any, seeded: Any) -> Any:
            calls.append((name, dict(seeded)))
            return value

        return run

    class Payments:
        accounts: tuple[str, ...] = ("a",)
        transfers: tuple[str, ...] = ()

    fake = (
        DomainModule(name="identity", demo=seed("identity", {"users": {"wang": "did:x"}})),
        DomainModule(name="payments", demo=seed("payments", Payments())),
        DomainModule(name="notary", demo=seed("notary", ("digest",))),
    )
    monkeypatch.setattr(modules, "MODULES", fake)
    monkeypatch.setattr("zhijin.node.demo.MODULES", fake)
    summary = seed_demo(object())  # type: ignore[arg-type]
    assert [name for name, _ in calls] == ["identity", "payments", "notary"]
    assert list(calls[1][1]) == ["identity"]  # payments sees identity's users
    assert summary.users == {"wang": "did:x"} and summary.documents == ("digest",)


def test_every_permission_the_code_names_is_declared_by_a_module() -> None:
    assert set(Permission) <= set(modules.permissions())


def test_a_new_modules_permission_is_in_the_matrix_the_app_installs(with_leasing: None) -> None:
    from zhijin.identity.rbac import Principal, Resource, Role, Scope, require
    from zhijin.platform.errors import Forbidden

    customer = Principal("u-1", frozenset({Role.CUSTOMER}))
    with pytest.raises(Forbidden):  # declared, but not installed until a node or app is built
        require(customer, "lease.read", resource=Resource("lease", owner_id="u-1"))
    create_app(Settings())
    grant = require(customer, "lease.read", resource=Resource("lease", owner_id="u-1"))
    assert grant.scope is Scope.OWN and grant.permission == "lease.read"


def test_the_node_settings_are_the_core_and_each_modules_section() -> None:
    from zhijin.identity.settings import IdentitySettings
    from zhijin.lending.settings import LendingSettings
    from zhijin.payments.settings import PaymentsSettings
    from zhijin.platform.settings import CoreSettings
    from zhijin.risk.settings import RiskSettings

    assert modules.settings_sections() == [
        IdentitySettings,
        PaymentsSettings,
        RiskSettings,
        LendingSettings,
    ]
    owned = [name for section in modules.settings_sections() for name in section.model_fields]
    assert set(Settings.model_fields) == set(CoreSettings.model_fields) | set(owned)
    settings = Settings(password_hashing="test", data="/tmp/x")
    section = IdentitySettings.of(settings)
    assert section is settings and section.password_hashing == "test"


def test_each_field_keeps_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from zhijin.identity.settings import IdentitySettings

    monkeypatch.setenv("ZHIJIN_PASSWORD_HASHING", "test")
    monkeypatch.setenv("ZHIJIN_AUDIT_ANCHOR_INTERVAL_S", "5")
    monkeypatch.setenv("ZHIJIN_BLOCK_INTERVAL_MS", "7")
    settings = Settings()
    assert settings.block_interval_ms == 7
    section = IdentitySettings.of(settings)
    assert (section.password_hashing, section.audit_anchor_interval_s) == ("test", 5.0)
    monkeypatch.setenv("ZHIJIN_AUDIT_ANCHOR_INTERVAL_S", "-1")  # a section's bounds still hold
    with pytest.raises(ValueError, match="audit_anchor_interval_s"):
        Settings()


def test_a_modules_section_joins_the_composed_settings_and_only_once() -> None:
    from pydantic import Field

    from zhijin.platform.settings import CoreSettings, SettingsSection, compose_settings

    class LendingSettings(SettingsSection):
        loan_term_months_max: int = Field(default=360, ge=1, le=600)

    composed = compose_settings([*modules.settings_sections(), LendingSettings])
    settings = composed(loan_term_months_max=120, password_hashing="test")
    assert LendingSettings.of(settings).loan_term_months_max == 120
    with pytest.raises(ValueError, match="loan_term_months_max"):
        composed(loan_term_months_max=0)
    # Built from settings without the section: its defaults, the environment not read again.
    assert LendingSettings.of(CoreSettings()).loan_term_months_max == 360

    class Clash(SettingsSection):
        password_hashing: str = "x"

    with pytest.raises(ValueError, match="'password_hashing' of Clash is already Identity"):
        compose_settings([*modules.settings_sections(), Clash])

    class CoreClash(SettingsSection):
        data: str = "x"

    with pytest.raises(ValueError, match="'data' of CoreClash is already core's"):
        compose_settings([CoreClash])
