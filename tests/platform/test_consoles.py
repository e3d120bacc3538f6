"""The staff consoles without a browser: each role's navigation is exactly its console and the
others answer the translated 403; the main action of each console changes what the API then
reports (a KYC case reviewed, an account opened only by a second officer, a role granted, a
policy saved); refusals: the wrong role, four-eyes self-approval, a grant the separation of
duties forbids, bad filter values, a missing justification; long checks run as jobs."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.platform.users import create_staff, identity_of, me, register_and_login
from zhijin.identity.rbac import Role
from zhijin.identity.stepup import DEFAULT_POLICY, parse_policy
from zhijin.node.app import create_app
from zhijin.node.runtime import init_data_dir
from zhijin.node.settings import Settings
from zhijin.payments.policy_preview import PastPayment, preview

ID = "/api/v1/identity"
RESIDENT_ID = "11010119950307123X"
DOCUMENT = {
    "kind": "id_card_front",
    "media_type": "image/png",
    "content_base64": base64.b64encode(b"\x89PNG demo").decode(),
}
EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN"}

# Each staff role's console: the /staff/... entries of its navigation, exactly.
CONSOLES = {
    Role.BANK_OFFICER: {"/staff/account-requests", "/staff/accounts", "/staff/loans"},
    Role.COMPLIANCE_OFFICER: {
        "/staff/kyc",
        "/staff/personal-data",
        "/staff/audit",
        "/staff/policy",
    },
    Role.AUDITOR: {"/staff/audit", "/staff/ledger", "/staff/chain"},
    Role.ADMIN: {"/staff/people", "/staff/policy"},
}
ALL_CONSOLE_PAGES = set().union(*CONSOLES.values())


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("consoles")
    settings = Settings(
        data=data, block_interval_ms=5, password_hashing="test", audit_anchor_interval_s=0
    )
    init_data_dir(settings, members=1)
    with TestClient(create_app(settings), base_url="https://testserver") as test_client:
        yield test_client


@pytest.fixture(scope="module")
def staff(client: TestClient) -> dict[Role, dict[str, str]]:
    return {role: create_staff(client, roles={role}) for role in CONSOLES}


def _nav(html: str) -> set[str]:
    primary = re.search(r'<nav class="primary".*?</nav>', html, re.S)
    assert primary is not None
    return set(re.findall(r'href="(/staff/[^"]*)"', primary.group(0)))


def _kyc_customer(client: TestClient) -> tuple[dict[str, str], str]:
    customer = register_and_login(client)
    person = {"name": "何欣", "resident_id": RESIDENT_ID, "mobile": "13800138000"}
    assert client.put(f"{ID}/personal-data", json=person, headers=customer).status_code == 204
    submitted = client.post(f"{ID}/kyc", json={"documents": [DOCUMENT]}, headers=customer)
    assert submitted.status_code == 201, submitted.text
    return customer, me(client, customer)["user_id"]


def _kyc_status(client: TestClient, customer: dict[str, str]) -> str:
    status: str = client.get(f"{ID}/kyc", headers=customer).json()["status"]
    return status


# -- who sees which console --------------------------------------------------------------------


@pytest.mark.parametrize("role", list(CONSOLES))
def test_each_role_sees_exactly_its_console_and_is_refused_the_others(
    client: TestClient, staff: dict[Role, dict[str, str]], role: Role
) -> None:
    headers = staff[role]
    home = client.get("/staff", headers={**headers, **ZH})
    assert home.status_code == 200
    assert _nav(home.text) == CONSOLES[role]
    for path in sorted(ALL_CONSOLE_PAGES - CONSOLES[role]):
        refused = client.get(path, headers={**headers, **EN})
        assert refused.status_code == 403, path
        assert "<h1>Not allowed</h1>" in refused.text
    for path in sorted(CONSOLES[role]):
        assert client.get(path, headers={**headers, **EN}).status_code == 200, path


def test_a_customer_sees_no_staff_navigation_and_no_console(client: TestClient) -> None:
    customer = register_and_login(client)
    money = client.get("/money", headers=customer)
    assert money.status_code == 200 and _nav(money.text) == set()
    for path in sorted(ALL_CONSOLE_PAGES):
        assert client.get(path, headers=customer).status_code == 403, path


def test_the_auditor_pages_are_marked_read_only(
    client: TestClient, staff: dict[Role, dict[str, str]]
) -> None:
    for path in ("/staff/audit", "/staff/ledger", "/staff/chain"):
        page = client.get(path, headers={**staff[Role.AUDITOR], **ZH})
        assert 'id="read-only"' in page.text and "只读" in page.text, path
    compliance = client.get("/staff/audit", headers=staff[Role.COMPLIANCE_OFFICER])
    assert 'id="read-only"' not in compliance.text
    assert 'id="audit-verify-start"' not in compliance.text  # no audit_log.verify grant


# -- KYC review ---------------------------------------------------------------------------------


def test_kyc_review_needs_a_reason_to_reject_and_then_decides(
    client: TestClient, staff: dict[Role, dict[str, str]]
) -> None:
    compliance = staff[Role.COMPLIANCE_OFFICER]
    customer, user_id = _kyc_customer(client)
    queue = client.get("/staff/kyc", headers=compliance)
    assert f'id="kyc-{user_id}"' in queue.text
    refused = client.post(
        f"/staff/kyc/{user_id}/review", data={"decision": "reject"}, headers={**compliance, **EN}
    )
    assert refused.status_code == 200 and 'role="alert"' in refused.text
    assert _kyc_status(client, customer) == "pending"
    rejected = client.post(
        f"/staff/kyc/{user_id}/review",
        data={"decision": "reject", "reason": "the photo is unreadable"},
        headers={**compliance, **ZH},
    )
    assert "已拒绝" in rejected.text
    assert _kyc_status(client, customer) == "rejected"
    entry = [
        e
        for e in identity_of(client).audit.search(action="kyc.review")
        if e.target.endswith(user_id)
    ]
    assert entry[-1].reason == "the photo is unreadable" and entry[-1].outcome == "rejected"
    bad = client.get("/staff/kyc", params={"status": "everything"}, headers={**compliance, **EN})
    assert bad.status_code == 422 and 'id="kyc-error"' in bad.text


def test_an_officer_cannot_review_kyc(
    client: TestClient, staff: dict[Role, dict[str, str]]
) -> None:
    _customer, user_id = _kyc_customer(client)
    answer = client.post(
        f"/staff/kyc/{user_id}/review",
        data={"decision": "approve"},
        headers=staff[Role.BANK_OFFICER],
    )
    assert answer.status_code == 403


# -- four eyes on opening -----------------------------------------------------------------------


def test_the_kyc_reviewer_cannot_open_the_account_a_second_officer_does(
    client: TestClient, staff: dict[Role, dict[str, str]]
) -> None:
    # One person who both reviews KYC and opens accounts (the two roles may meet): the page
    # says why they may not open this customer's account, and a forced click is refused.
    both = create_staff(client, roles={Role.BANK_OFFICER, Role.COMPLIANCE_OFFICER})
    customer, user_id = _kyc_customer(client)
    reviewed = client.post(
        f"/staff/kyc/{user_id}/review", data={"decision": "approve"}, headers=both
    )
    assert reviewed.status_code == 200
    asked = client.post(
        "/api/v1/account-requests",
        json={"id": "usd-1", "currency": "USD", "purpose": "savings"},
        headers=customer,
    )
    assert asked.status_code == 200, asked.text
    row = f'id="request-{user_id}-usd-1"'
    mine = client.get("/staff/account-requests", headers={**both, **ZH})
    part = mine.text[mine.text.index(row) :].split("</tr>", 1)[0]
    assert 'data-blocker="sod_self_approval"' in part and "open-account" not in part
    assert "另一位" in part
    forced = client.post(f"/staff/account-requests/{user_id}/usd-1/approve", headers={**both, **EN})
    assert 'role="alert"' in forced.text
    status = client.get(f"/api/v1/account-requests/{user_id}/usd-1", headers=customer).json()
    assert status["status"] == "pending" and status["account_id"] is None

    officer = staff[Role.BANK_OFFICER]
    theirs = client.get("/staff/account-requests", headers=officer)
    assert "open-account" in theirs.text.split(row, 1)[1].split("</tr>", 1)[0]
    opened = client.post(f"/staff/account-requests/{user_id}/usd-1/approve", headers=officer)
    assert opened.status_code == 200 and "request-status" in opened.text
    status = client.get(f"/api/v1/account-requests/{user_id}/usd-1", headers=customer).json()
    assert status["status"] == "opened"
    account = client.get(f"/api/v1/accounts/{status['account_id']}", headers=customer)
    assert account.status_code == 200 and account.json()["currency"] == "USD"


def test_an_officer_freezes_and_unfreezes_an_account(
    client: TestClient, staff: dict[Role, dict[str, str]]
) -> None:
    officer = staff[Role.BANK_OFFICER]
    page = client.get("/staff/accounts", headers=officer)
    match = re.search(r'id="account-([^"]+)".*?class="freeze"', page.text, re.S)
    assert match is not None, "an open account of the member is offered a freeze"
    account_id = match.group(1)
    frozen = client.post(
        f"/staff/accounts/{account_id}/status", data={"status": "frozen"}, headers=officer
    )
    assert "unfreeze" in frozen.text
    assert (
        client.get(f"/api/v1/accounts/{account_id}", headers=officer).json()["status"] == "frozen"
    )
    opened = client.post(
        f"/staff/accounts/{account_id}/status", data={"status": "open"}, headers=officer
    )
    assert 'class="freeze"' in opened.text
    assert client.get(f"/api/v1/accounts/{account_id}", headers=officer).json()["status"] == "open"
    closing = client.post(
        f"/staff/accounts/{account_id}/status", data={"status": "closed"}, headers=officer
    )
    assert closing.status_code == 422  # closing is not a console action
    auditor = client.post(
        f"/staff/accounts/{account_id}/status",
        data={"status": "frozen"},
        headers=staff[Role.AUDITOR],
    )
    assert auditor.status_code == 403


# -- the audit log ------------------------------------------------------------------------------


def test_audit_filters_refuse_bad_values_field_by_field(
    client: TestClient, staff: dict[Role, dict[str, str]]
) -> None:
    auditor = {**staff[Role.AUDITOR], **EN}
    bad_date = client.get("/staff/audit", params={"from": "2026-13-40"}, headers=auditor)
    assert bad_date.status_code == 422 and 'id="from-error"' in bad_date.text
    backwards = client.get(
        "/staff/audit", params={"from": "2026-12-02", "to": "2026-12-01"}, headers=auditor
    )
    assert backwards.status_code == 422 and 'id="to-error"' in backwards.text
    assert 'id="audit-entries"' not in backwards.text
    control = client.get("/staff/audit", params={"actor": "user:\x07"}, headers=auditor)
    assert control.status_code == 422 and 'id="actor-error"' in control.text
    huge = client.get("/staff/audit", params={"after": str(2**70)}, headers=auditor)
    assert huge.status_code == 422
    csv_refused = client.get("/staff/audit.csv", params={"to": "yesterday"}, headers=auditor)
    assert csv_refused.status_code == 422


def test_audit_outcomes_read_as_words_beside_their_codes(
    client: TestClient, staff: dict[Role, dict[str, str]]
) -> None:
    audit = identity_of(client).audit
    now = int(time.time() * 1000)
    for outcome in ("ok", "step_up_required", "zz_not_a_code"):
        audit.append(
            actor="user:u_outcomes", action="test.outcome", target="t", outcome=outcome, at_ms=now
        )
    auditor = staff[Role.AUDITOR]
    cells = {}
    for language, headers in (("zh", ZH), ("en", EN)):
        page = client.get(
            "/staff/audit", params={"action": "test.outcome"}, headers={**auditor, **headers}
        )
        assert page.status_code == 200
        cells[language] = re.findall(
            r'<td data-label="[^"]*">([^<]*)<code class="mono outcome-code">([a-z_]+)</code></td>',
            page.text,
        )
    # newest first or oldest first, each outcome's word sits beside its stable code
    assert sorted(cells["zh"], key=lambda cell: cell[1]) == [
        ("成功 ", "ok"),
        ("被拒绝： ", "step_up_required"),
        ("", "zz_not_a_code"),
    ]
    assert sorted(cells["en"], key=lambda cell: cell[1]) == [
        ("OK ", "ok"),
        ("Refused: ", "step_up_required"),
        ("", "zz_not_a_code"),
    ]


def test_audit_filters_select_and_the_csv_holds_what_they_select(
    client: TestClient, staff: dict[Role, dict[str, str]]
) -> None:
    auditor = staff[Role.AUDITOR]
    page = client.get("/staff/audit", params={"action": "role.*"}, headers=auditor)
    assert page.status_code == 200
    actions = set(re.findall(r'data-label="[^"]*" class="mono">(role\.[a-z_]+)</td>', page.text))
    assert actions and actions <= {"role.assign", "role.revoke"}
    exported = client.get("/staff/audit.csv", params={"action": "role.assign"}, headers=auditor)
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert rows and {row["action"] for row in rows} == {"role.assign"}
    expected = [e for e in identity_of(client).audit.search(action="role.assign", limit=1000)]
    assert [int(r["seq"]) for r in rows] == [e.seq for e in expected]
    future = client.get("/staff/audit", params={"from": "2999-01-01"}, headers=auditor)
    assert 'id="audit-empty"' in future.text
    assert identity_of(client).audit.search(action="audit_log.export")  # the export is audited


def _finish(client: TestClient, html: str, headers: dict[str, str]) -> str:
    """Poll a job's part as htmx would until it stops polling; its last answer."""
    for _ in range(400):
        found = re.search(r'hx-get="(/staff/jobs/job_[0-9a-f]+)"', html)
        if found is None:
            return html
        html = client.get(found.group(1), headers=headers).text
        time.sleep(0.05)
    raise AssertionError("the job never finished")


def test_the_auditor_verifies_the_audit_log_and_the_chain_as_jobs(
    client: TestClient, staff: dict[Role, dict[str, str]]
) -> None:
    auditor = {**staff[Role.AUDITOR], **EN}
    started = client.post("/staff/audit/verify", headers=auditor)
    assert started.status_code == 200 and "<progress" in started.text
    done = _finish(client, started.text, auditor)
    assert 'id="audit-verify-result"' in done and "notice ok" in done
    chain = _finish(client, client.post("/staff/chain/verify", headers=auditor).text, auditor)
    assert 'id="chain-verify-result"' in chain and "notice ok" in chain
    job = re.search(
        r"/staff/jobs/(job_[0-9a-f]+)", client.post("/staff/chain/verify", headers=auditor).text
    )
    assert job is not None
    other = client.get(f"/staff/jobs/{job.group(1)}", headers=staff[Role.ADMIN])
    assert other.status_code == 404  # a job is its starter's
    compliance = client.post("/staff/audit/verify", headers=staff[Role.COMPLIANCE_OFFICER])
    assert compliance.status_code == 403


def test_the_trial_balance_page_and_csv_agree(
    client: TestClient, staff: dict[Role, dict[str, str]]
) -> None:
    auditor = staff[Role.AUDITOR]
    page = client.get("/staff/ledger", headers={**auditor, **ZH})
    assert page.status_code == 200 and 'id="ledger-state"' in page.text
    exported = client.get("/staff/ledger.csv", headers=auditor)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert rows and all(row["balanced"] == "true" for row in rows)
    for row in rows:
        assert row["debits_posted"] == row["credits_posted"]
        assert f'data-currency="{row["currency"]}"' in page.text
    chain = _finish(client, client.post("/staff/ledger/verify", headers=auditor).text, auditor)
    assert 'id="ledger-verify-result"' in chain and "notice ok" in chain
    assert client.get("/staff/ledger.csv", headers=staff[Role.BANK_OFFICER]).status_code == 403


# -- personal data -------------------------------------------------------------------------------


def test_personal_data_is_read_with_a_justification_masked_then_revealed(
    client: TestClient, staff: dict[Role, dict[str, str]]
) -> None:
    compliance = {**staff[Role.COMPLIANCE_OFFICER], **EN}
    customer, user_id = _kyc_customer(client)
    form = {"user_id": user_id, "fields": ["name", "mobile"], "purpose": "kyc_verification"}
    short = client.post(
        "/staff/personal-data/read", data={**form, "justification": "because"}, headers=compliance
    )
    assert short.status_code == 422 and 'id="justification-error"' in short.text
    unlisted = client.post(
        "/staff/personal-data/read",
        data={**form, "purpose": "curiosity", "justification": "x" * 20},
        headers=compliance,
    )
    assert unlisted.status_code == 422 and 'id="purpose-error"' in unlisted.text
    reason = "AML alert 2026-0412 on incoming transfers"
    refused = client.post(
        "/staff/personal-data/read", data={**form, "justification": reason}, headers=compliance
    )
    assert 'id="personal-error"' in refused.text  # no consent for this purpose yet
    member = client.app.state.platform.node.key.did  # type: ignore[attr-defined]
    for category in ("identity", "contact"):
        consent = {"grantee": member, "category": category, "purpose": "kyc_verification"}
        assert client.post(f"{ID}/consents", json=consent, headers=customer).status_code == 201
    read = client.post(
        "/staff/personal-data/read", data={**form, "justification": reason}, headers=compliance
    )
    assert read.status_code == 200
    assert '<summary class="masked">何*</summary>' in read.text
    assert '<span class="revealed mono">何欣</span>' in read.text
    entries = identity_of(client).audit.search(action="personal_data.read")
    mine = [e for e in entries if e.target == f"person:{user_id}" and e.outcome == "ok"]
    assert mine and mine[-1].reason == reason
    officer = client.post(
        "/staff/personal-data/read",
        data={**form, "justification": reason},
        headers=staff[Role.BANK_OFFICER],
    )
    assert officer.status_code == 403


# -- staff and roles -----------------------------------------------------------------------------


def _row(html: str, user_login: str) -> str:
    start = html.index(f'id="staff-{user_login}"')
    return html[start:].split("</tr>", 1)[0]


def test_the_admin_grants_only_what_policy_allows_and_each_change_is_audited(
    client: TestClient, staff: dict[Role, dict[str, str]]
) -> None:
    admin = {**staff[Role.ADMIN], **EN}
    officer = create_staff(client, roles={Role.BANK_OFFICER})
    officer_me = me(client, officer)
    page = client.get("/staff/people", headers=admin)
    row = _row(page.text, officer_me["login"])
    offered = set(re.findall(r'<option value="([a-z_]+)"', row))
    # The auditor, the regulator and the admin never meet a business role in one person.
    assert "compliance_officer" in offered and "risk_analyst" in offered
    assert not offered & {"auditor", "regulator", "admin", "bank_officer"}
    granted = client.post(
        f"/staff/people/{officer_me['user_id']}/roles",
        data={"role": "compliance_officer"},
        headers=admin,
    )
    assert 'id="staff-done"' in granted.text
    held = identity_of(client).store.roles_of(officer_me["user_id"])
    assert held == {Role.BANK_OFFICER, Role.COMPLIANCE_OFFICER}
    forced = client.post(
        f"/staff/people/{officer_me['user_id']}/roles", data={"role": "auditor"}, headers=admin
    )
    assert 'id="staff-error"' in forced.text
    assert identity_of(client).store.roles_of(officer_me["user_id"]) == held
    revoked = client.post(
        f"/staff/people/{officer_me['user_id']}/roles/compliance_officer/revoke", headers=admin
    )
    assert 'id="staff-done"' in revoked.text
    assert identity_of(client).store.roles_of(officer_me["user_id"]) == {Role.BANK_OFFICER}
    log = identity_of(client).audit.search(actor=f"user:{me(client, staff[Role.ADMIN])['user_id']}")
    outcomes = [(e.action, e.outcome) for e in log if e.target == f"user:{officer_me['user_id']}"]
    assert ("role.assign", "ok") in outcomes and ("role.revoke", "ok") in outcomes
    assert ("role.assign", "sod_role_conflict") in outcomes
    own = _row(page.text, me(client, staff[Role.ADMIN])["login"])
    assert "<option" not in own and "/revoke" not in own  # nobody administers themselves
    # A stale or forged form naming one's own role is refused in the console, the role kept.
    admin_id = me(client, staff[Role.ADMIN])["user_id"]
    own_revoke = client.post(f"/staff/people/{admin_id}/roles/admin/revoke", headers=admin)
    assert 'id="staff-error"' in own_revoke.text and 'id="staff-done"' not in own_revoke.text
    assert Role.ADMIN in identity_of(client).store.roles_of(admin_id)


def test_the_admin_creates_staff_and_a_bad_role_set_is_refused(
    client: TestClient, staff: dict[Role, dict[str, str]]
) -> None:
    admin = {**staff[Role.ADMIN], **EN}
    login = f"new-officer-{time.time_ns() % 10**9}"
    created = client.post(
        "/staff/people",
        data={"login": login, "password": "a long enough password 42", "roles": ["bank_officer"]},
        headers=admin,
    )
    assert 'id="staff-done"' in created.text
    user = identity_of(client).store.user_by_login(login)
    assert user is not None and identity_of(client).store.roles_of(user.id) == {Role.BANK_OFFICER}
    conflict = client.post(
        "/staff/people",
        data={
            "login": login + "-x",
            "password": "a long enough password 42",
            "roles": ["auditor", "bank_officer"],
        },
        headers=admin,
    )
    assert 'id="staff-error"' in conflict.text
    assert f'value="{login}-x"' in conflict.text  # the refused form keeps what was typed
    assert identity_of(client).store.user_by_login(login + "-x") is None
    none = client.post(
        "/staff/people",
        data={"login": login + "-y", "password": "a long enough password 42"},
        headers=admin,
    )
    assert 'id="staff-error"' in none.text
    officer = client.post(
        "/staff/people",
        data={"login": login + "-z", "password": "a long enough password 42", "roles": ["auditor"]},
        headers=staff[Role.BANK_OFFICER],
    )
    assert officer.status_code == 403


# -- the step-up policy --------------------------------------------------------------------------


def _draft(threshold_minor: int) -> dict[str, Any]:
    body = json.loads(json.dumps(DEFAULT_POLICY))
    body["version"] = f"test-{threshold_minor}"
    for rule in body["rules"]:
        if rule["id"] == "large_transfer":
            for leaf in rule["when"]["any"]:
                leaf["value"] = threshold_minor
    return body


def test_the_preview_counts_what_a_draft_would_step_up() -> None:
    day = 86_400_000
    payments = [
        PastPayment("cust-a", "shop-b", amount, "CNY", 2, 1_700_000_000_000 + n * day)
        for n, amount in enumerate((50_000, 2_000_000, 9_000_000))
    ]
    current = preview(parse_policy(DEFAULT_POLICY), payments)
    stricter = preview(parse_policy(_draft(1_000_000)), payments)
    assert (current.payments, current.stepped_up) == (3, 1)
    assert stricter.stepped_up == 2
    assert dict(stricter.rules)["large_transfer"] == 2


def test_compliance_saves_a_policy_the_admin_previews_but_cannot_save(
    client: TestClient, staff: dict[Role, dict[str, str]]
) -> None:
    admin = {**staff[Role.ADMIN], **EN}
    page = client.get("/staff/policy", headers=admin)
    assert 'id="policy-read-only"' in page.text and 'id="policy-save"' not in page.text
    text = json.dumps(_draft(10_000))
    shown = client.post("/staff/policy/preview", data={"policy": text}, headers=admin)
    assert shown.status_code == 200 and 'id="preview-summary"' in shown.text
    broken = client.post("/staff/policy/preview", data={"policy": "{not json"}, headers=admin)
    assert 'id="preview-error"' in broken.text
    refused = client.post("/staff/policy", data={"policy": text}, headers=admin)
    assert 'id="policy-error"' in refused.text
    identity = identity_of(client)
    assert identity.current_policy().version != "test-10000"

    compliance = {**staff[Role.COMPLIANCE_OFFICER], **EN}
    editor = client.get("/staff/policy", headers=compliance)
    assert 'id="policy-save"' in editor.text
    saved = client.post("/staff/policy", data={"policy": text}, headers=compliance)
    assert 'id="policy-saved"' in saved.text, saved.text
    assert identity.current_policy().version == "test-10000"
    assert client.get(f"{ID}/policy", headers=compliance).json()["version"] == "test-10000"
    invalid = client.post(
        "/staff/policy", data={"policy": json.dumps({"version": "x"})}, headers=compliance
    )
    assert 'id="policy-error"' in invalid.text
