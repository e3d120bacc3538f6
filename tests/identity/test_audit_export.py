"""`IdentityService.export_audit_log`, the audit CSV's source: the reader's right to the
member's log is checked (a refusal recorded), the export itself is recorded with its filters
before a page is read, and the pages hold every selected entry once, in order, up to the cap."""

from __future__ import annotations

import pytest

from zhijin.identity import limits
from zhijin.identity.rbac import Principal, Role
from zhijin.identity.service import IdentityService
from zhijin.platform.errors import Forbidden

M1 = "did:key:z6MkBankOne"
M2 = "did:key:z6MkBankTwo"
COMPLIANCE_M1 = Principal(
    user_id="u-comp-1", roles=frozenset({Role.COMPLIANCE_OFFICER}), member_did=M1
)
COMPLIANCE_M2 = Principal(
    user_id="u-comp-2", roles=frozenset({Role.COMPLIANCE_OFFICER}), member_did=M2
)
CUSTOMER = Principal(user_id="u-cust", roles=frozenset({Role.CUSTOMER}))


def _fill(service: IdentityService, count: int) -> None:
    for n in range(count):
        service.record(
            actor=f"user:u-{n % 3}",
            action="role.assign" if n % 2 else "auth.login",
            target=f"user:t-{n}",
            outcome="ok",
        )


def _exported(service: IdentityService, principal: Principal, **kwargs: object) -> list[int]:
    pages = service.export_audit_log(principal=principal, member_did=M1, **kwargs)  # type: ignore[arg-type]
    return [entry.seq for page in pages for entry in page]


def test_the_export_is_recorded_with_its_filters_before_any_page_is_read(
    service: IdentityService,
) -> None:
    _fill(service, 4)
    pages = service.export_audit_log(
        principal=COMPLIANCE_M1, member_did=M1, action="role.assign", from_ms=0
    )
    recorded = service.audit.search(action="audit_log.export")
    assert [(e.actor, e.target, e.outcome) for e in recorded] == [
        ("user:u-comp-1", "audit_log", "ok")
    ]
    assert dict(recorded[0].details) == {"filters": {"action": "role.assign", "from_ms": 0}}
    entries = [entry for page in pages for entry in page]
    assert entries and {e.action for e in entries} == {"role.assign"}


def test_a_reader_outside_the_member_or_without_the_permission_is_refused_and_recorded(
    service: IdentityService,
) -> None:
    _fill(service, 2)
    for principal in (COMPLIANCE_M2, CUSTOMER):
        with pytest.raises(Forbidden):
            service.export_audit_log(principal=principal, member_did=M1)
        refusals = service.audit.search(actor=f"user:{principal.user_id}")
        assert [e.action for e in refusals] == ["audit_log.read"]
        assert refusals[0].outcome != "ok"
    assert not service.audit.search(action="audit_log.export")


def test_pages_hold_every_entry_once_in_order_up_to_the_cap(
    service: IdentityService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "AUDIT_EXPORT_PAGE_ROWS", 3)
    _fill(service, 10)
    pages = list(service.export_audit_log(principal=COMPLIANCE_M1, member_did=M1))
    # The 10, then the member-scoped grant and the export itself, recorded before reading: a
    # full last page ends with an empty read, which yields nothing.
    everything = [e.seq for e in service.audit.search(limit=100)]
    assert len(everything) == 12 and [len(page) for page in pages] == [3, 3, 3, 3]
    assert [e.seq for page in pages for e in page] == everything
    capped = _exported(service, COMPLIANCE_M1, rows_max=7)
    assert capped == everything[:7]
    assert _exported(service, COMPLIANCE_M1, actor="user:u-1", rows_max=2) == [
        e.seq for e in service.audit.search(actor="user:u-1", limit=2)
    ]
