"""Credit through the API on one node: the registry with maker-checker, policies, a decision
traced from the API to its anchored record and back through replay, idempotent retries, bad
applicants, a tampered model file, a replay that differs, the customer's own score, consent,
and the refusals (401, 403 with codes)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from tests.credit.conftest import Node
from tests.credit.helpers import APPLICANT, POLICY, policy
from tests.platform.users import create_staff, me, register_and_login
from zhijin.chain.codec import canonical, sha256
from zhijin.credit import service
from zhijin.credit.expected import AccountFacts, CreditPorts
from zhijin.credit.records import keys
from zhijin.credit.tables import decisions_table
from zhijin.identity.rbac import Role

API = "/api/v1/credit"


@pytest.fixture(scope="module")
def staff(node: Node) -> dict[str, dict[str, str]]:
    return {
        "maker": create_staff(node.client, roles={Role.RISK_ANALYST}),
        "checker": create_staff(node.client, roles={Role.RISK_ANALYST}),
        "compliance": create_staff(node.client, roles={Role.COMPLIANCE_OFFICER}),
        "officer": create_staff(node.client, roles={Role.BANK_OFFICER}),
        "auditor": create_staff(node.client, roles={Role.AUDITOR}),
    }


@pytest.fixture(scope="module")
def model(node: Node, staff: dict[str, dict[str, str]], model_file: Path) -> str:
    """Registered by the maker; the maker's own approval is refused; the checker approves."""
    body = model_file.read_bytes()
    registered = node.client.post(f"{API}/models", content=body, headers=staff["maker"])
    assert registered.status_code == 200, registered.text
    view = registered.json()["model"]
    assert view["status"] == "registered"
    assert view["trainer"] == me(node.client, staff["maker"])["user_id"]
    sha = str(view["sha256"])
    assert sha == sha256(body).hex()
    own = node.post(f"{API}/models/{sha}/approve", headers=staff["maker"])
    assert (own.status_code, own.json()["code"]) == (403, "sod_self_approval")
    undecided = node.post(f"{API}/decisions", _decide("d-early"), headers=staff["officer"])
    assert (undecided.status_code, undecided.json()["code"]) == (409, "no_approved_model")
    approved = node.post(f"{API}/models/{sha}/approve", headers=staff["checker"])
    assert approved.status_code == 200, approved.text
    assert approved.json()["model"]["status"] == "approved"
    saved = node.post(f"{API}/policies/retail", {"version": 1, "rules": POLICY},
                      headers=staff["maker"])  # fmt: skip
    assert saved.status_code == 200, saved.text
    return sha


def _decide(decision_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "decision_id": decision_id,
        "policy_id": "retail",
        "applicant": {**APPLICANT, **changes},
    }


def test_a_decision_traced_from_the_api_to_its_anchor_and_back_through_replay(
    node: Node, staff: dict[str, dict[str, str]], model: str
) -> None:
    answer = node.post(f"{API}/decisions", _decide("d-trace"), headers=staff["officer"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    record = body["decision"]
    assert record["model_sha256"] == model and record["policy_version"] == 1
    assert record["outcome"] in ("approve", "refer", "decline")
    assert 0 < len(record["reasons"]) <= 4
    assert all(reason["text_zh"] and reason["text_en"] for reason in record["reasons"])
    # The record's hash is what the chain holds, in the block the answer names.
    assert body["record_sha256"] == sha256(canonical(record)).hex()
    anchored = node.platform.node.state_get(keys.decision("d-trace"))
    assert anchored["record_sha256"] == body["record_sha256"]
    assert anchored["height"] == body["anchor"]["height"]
    assert anchored["tx_hash"] == body["anchor"]["tx_hash"]
    replay = node.post(f"{API}/decisions/d-trace/replay", headers=staff["officer"])
    assert replay.status_code == 200, replay.text
    report = replay.json()
    assert report["same"] is True and report["differences"] == []
    assert report["replayed_sha256"] == report["anchored_sha256"] == body["record_sha256"]
    # The retry answers the stored decision; the same id for another applicant is refused.
    again = node.post(f"{API}/decisions", _decide("d-trace"), headers=staff["officer"])
    assert again.status_code == 200 and again.json()["exists"] is True
    assert again.json()["decision"] == record
    other = node.post(
        f"{API}/decisions", _decide("d-trace", age_years=55), headers=staff["officer"]
    )
    assert (other.status_code, other.json()["code"]) == (409, "exists_with_different_fields")


def test_bad_applicants_are_refused_naming_every_field(
    node: Node, staff: dict[str, dict[str, str]], model: str
) -> None:
    fields = dict(APPLICANT)
    del fields["checking_status"]
    fields |= {
        "age_years": 300,
        "monthly_income_minor": -5,
        "duration_months": "12",
        "purpose": "yacht",
        "amount_minor": 3000.5,
        "telephone": 1,
    }
    answer = node.post(
        f"{API}/decisions",
        {"decision_id": "d-bad", "policy_id": "retail", "applicant": fields},
        headers=staff["officer"],
    )
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == "invalid_applicant"
    found = {error["field"]: error["code"] for error in problem["errors"]}
    assert found == {
        "checking_status": "missing",
        "age_years": "out_of_range",
        "monthly_income_minor": "out_of_range",
        "duration_months": "wrong_type",
        "purpose": "unknown_category",
        "amount_minor": "wrong_type",
        "telephone": "wrong_type",
    }
    assert all(error["message_zh"] and error["message_en"] for error in problem["errors"])
    assert node.get(f"{API}/decisions/d-bad", headers=staff["officer"]).status_code == 404


def test_a_tampered_model_file_is_refused_naming_the_model(
    node: Node, staff: dict[str, dict[str, str]], model: str
) -> None:
    path = service.model_store(node.platform).path(model)
    original = path.read_bytes()
    path.write_bytes(original.replace(b'"format"', b'"format" ', 1))
    try:
        answer = node.post(f"{API}/decisions", _decide("d-tampered"), headers=staff["officer"])
        assert (answer.status_code, answer.json()["code"]) == (409, "model_hash_mismatch")
        assert model in answer.json()["diagnostic"]
        assert answer.json()["expected_sha256"] == model
        shown = node.get(f"{API}/models/{model}", headers=staff["officer"]).json()
        assert shown["file_problem"] == "model_hash_mismatch" and shown["card"] is None
    finally:
        path.write_bytes(original)
    assert (
        node.post(f"{API}/decisions", _decide("d-tampered"), headers=staff["officer"]).status_code
        == 200
    )


def test_a_replay_that_differs_is_reported(
    node: Node, staff: dict[str, dict[str, str]], model: str
) -> None:
    made = node.post(f"{API}/decisions", _decide("d-differ"), headers=staff["officer"]).json()
    record = dict(made["decision"])
    record["points"] += 1
    with node.platform.platform_engine.begin() as conn:
        conn.execute(
            update(decisions_table)
            .where(decisions_table.c.decision_id == "d-differ")
            .values(record=canonical(record).decode())
        )
    report = node.post(f"{API}/decisions/d-differ/replay", headers=staff["officer"]).json()
    assert report["same"] is False
    assert report["differences"] == [
        {"field": "points", "recorded": record["points"], "replayed": record["points"] - 1}
    ]
    assert report["recomputed_sha256"] != report["anchored_sha256"] == made["record_sha256"]


def test_a_contradictory_policy_is_refused_when_saved(
    node: Node, staff: dict[str, dict[str, str]], model: str
) -> None:
    bad = policy(decline={"points_below": 700, "pd_ppm_from": 450_000})
    answer = node.post(
        f"{API}/policies/retail", {"version": 2, "rules": bad}, headers=staff["maker"]
    )
    assert (answer.status_code, answer.json()["code"]) == (422, "policy_contradictory")
    assert "decline.points_below 700 is above approve.points_min 620" in answer.json()["diagnostic"]
    assert (
        node.get(f"{API}/policies/retail", headers=staff["maker"]).json()["policy"]["version"] == 1
    )
    retry = node.post(
        f"{API}/policies/retail", {"version": 1, "rules": POLICY}, headers=staff["maker"]
    )
    assert retry.status_code == 200 and retry.json()["exists"] is True


def test_unauthorised_and_forged_calls_are_refused_with_codes(
    node: Node, staff: dict[str, dict[str, str]], model: str, model_file: Path
) -> None:
    customer = register_and_login(node.client)
    assert node.client.post(f"{API}/decisions", json=_decide("d-x")).status_code == 401
    forged = {"Authorization": "Bearer zjt_forged-token"}
    assert node.client.get(f"{API}/models", headers=forged).status_code == 401
    upload = node.client.post(f"{API}/models", content=model_file.read_bytes(), headers=customer)
    assert (upload.status_code, upload.json()["code"]) == (403, "permission_denied")
    by_officer = node.client.post(f"{API}/models", content=b"{}", headers=staff["officer"])
    assert (by_officer.status_code, by_officer.json()["code"]) == (403, "permission_denied")
    approve = node.post(f"{API}/models/{model}/approve", headers=staff["officer"])
    assert (approve.status_code, approve.json()["code"]) == (403, "permission_denied")
    policy_change = node.post(f"{API}/policies/retail", {"version": 2, "rules": POLICY},
                              headers=staff["compliance"])  # fmt: skip
    assert policy_change.json()["code"] == "permission_denied"
    assert node.get(f"{API}/decisions", headers=customer).json()["code"] == "permission_denied"
    assert node.get(f"{API}/models", headers=staff["auditor"]).status_code == 200
    decide = node.post(f"{API}/decisions", _decide("d-x"), headers=staff["auditor"])
    assert (decide.status_code, decide.json()["code"]) == (403, "permission_denied")
    too_big = node.post(f"{API}/decisions", _decide("d-x", purpose="x" * 20_000))
    assert (too_big.status_code, too_big.json()["code"]) == (413, "body_too_large")


def test_two_approvals_race_one_wins(
    node: Node, staff: dict[str, dict[str, str]], model_file: Path
) -> None:
    # Another file (one more space in the JSON: the same model, another hash) to race on.
    data = model_file.read_bytes().replace(b'"format"', b'"format" ', 1)
    registered = node.client.post(f"{API}/models", content=data, headers=staff["maker"])
    assert registered.status_code == 200, registered.text
    sha = registered.json()["model"]["sha256"]
    checkers = [create_staff(node.client, roles={Role.COMPLIANCE_OFFICER}) for _ in range(2)]
    answers: list[Any] = []

    def approve(headers: dict[str, str]) -> None:
        answers.append(node.post(f"{API}/models/{sha}/approve", headers=headers))

    threads = [threading.Thread(target=approve, args=(h,)) for h in checkers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answer.status_code for answer in answers) == [200, 409]
    (lost,) = [answer.json() for answer in answers if answer.status_code == 409]
    assert lost["code"] == "model_already_approved"
    retired = node.post(f"{API}/models/{sha}/retire", headers=staff["checker"])
    assert retired.json()["model"]["status"] == "retired"
    pinned = node.post(f"{API}/decisions", {**_decide("d-retired"), "model_sha256": sha},
                       headers=staff["officer"])  # fmt: skip
    assert (pinned.status_code, pinned.json()["code"]) == (409, "no_approved_model")


def test_the_customers_own_score_history_and_decision(
    node: Node, staff: dict[str, dict[str, str]], model: str
) -> None:
    customer = register_and_login(node.client)
    did = me(node.client, customer)["did"]
    first = node.get(f"{API}/me/score", headers=customer).json()
    assert (first["score"], first["thin_file"], first["previous_score"]) == (500, True, None)
    paid = {"id": "r-own-1", "subject": did, "due_at_ms": 1_000, "paid_at_ms": 2_000}
    assert node.post(f"{API}/repayments", paid).status_code == 200
    moved = node.get(f"{API}/me/score", headers=customer).json()
    assert (moved["score"], moved["previous_score"]) == (510, 500)
    assert [(c["code"], c["points"]) for c in moved["changes"]] == [("on_time_repayments", 10)]
    history = node.get(f"{API}/me/score/history", headers=customer).json()["history"]
    assert [entry["score"] for entry in history] == [510, 500]
    # A customer applies for themselves only; the decision uses what the platform saw.
    other = node.post(f"{API}/decisions", {**_decide("d-me"), "subject": "did:key:z6Mkx"},
                      headers=customer)  # fmt: skip
    assert (other.status_code, other.json()["code"]) == (403, "out_of_scope")
    mine = node.post(f"{API}/decisions", _decide("d-me"), headers=customer)
    assert mine.status_code == 200, mine.text
    assert mine.json()["decision"]["subject"] == did
    assert mine.json()["decision"]["behaviour_score"] == 510
    listed = node.get(f"{API}/me/decisions", headers=customer).json()["decisions"]
    assert [d["decision"]["decision_id"] for d in listed] == ["d-me"]
    stranger = register_and_login(node.client)
    peek = node.get(f"{API}/decisions/d-me", headers=stranger)
    assert (peek.status_code, peek.json()["code"]) == (403, "out_of_scope")
    assert node.get(f"{API}/decisions/d-me", headers=customer).status_code == 200


def test_decisions_of_one_millisecond_split_by_a_page_boundary_are_each_listed_once(
    node: Node, staff: dict[str, dict[str, str]], model: str
) -> None:
    """Seven decisions in the same millisecond (one newer, one older beside them), read two
    at a time: the cursor (time, id) resumes inside the millisecond, where the time alone
    skipped the rest of it."""
    seed = node.post(f"{API}/decisions", _decide("d-ms-seed"), headers=staff["officer"])
    assert seed.status_code == 200, seed.text
    subject, at_ms = "did:key:z6MkSameMillisecond", 1_700_000_000_123
    clones = {f"d-ms-{n}": at_ms for n in (4, 0, 6, 2, 5, 1, 3)}  # out of order: ids order them
    clones |= {"d-ms-newer": at_ms + 1, "d-ms-older": at_ms - 1}
    with node.platform.platform_engine.begin() as conn:
        row = (
            conn.execute(
                select(decisions_table).where(decisions_table.c.decision_id == "d-ms-seed")
            )
            .one()
            ._asdict()
        )
        for decision_id, decided_at_ms in clones.items():
            record = {**json.loads(row["record"]), "decision_id": decision_id, "subject": subject}
            conn.execute(
                decisions_table.insert(),
                [{**row, "decision_id": decision_id, "subject": subject,
                  "record": json.dumps(record), "decided_at_ms": decided_at_ms}],
            )  # fmt: skip
    expected = ["d-ms-newer", *(f"d-ms-{n}" for n in range(7)), "d-ms-older"]

    def pages(limit: int) -> list[dict[str, Any]]:
        answers, params = [], {"subject": subject, "limit": limit}
        for _ in range(len(expected) + 2):
            page = node.get(f"{API}/decisions", params=params, headers=staff["officer"])
            assert page.status_code == 200, page.text
            answers.append(page.json())
            if answers[-1]["next_before"] is None:
                return answers
            params["before"] = answers[-1]["next_before"]
        raise AssertionError("the pages never ended")

    two_by_two = pages(2)
    listed = [d["decision"]["decision_id"] for page in two_by_two for d in page["decisions"]]
    assert listed == expected
    assert two_by_two[0]["next_before"] == f"{at_ms}:d-ms-0"
    assert two_by_two[1]["next_before"] == f"{at_ms}:d-ms-2"
    # A full last page: one empty page more, never a repeat.
    whole = pages(len(expected))
    assert [len(page["decisions"]) for page in whole] == [len(expected), 0]
    assert whole[0]["next_before"] == f"{at_ms - 1}:d-ms-older"
    for bad in (str(at_ms), "x:d-ms-1", f"{at_ms}:", "1:-bad", "1:" + "a" * 65):
        refused = node.get(f"{API}/decisions", params={"before": bad}, headers=staff["officer"])
        assert refused.status_code == 422, bad


@dataclass(frozen=True, slots=True)
class _Committed:
    """Committed chain state as a StateReader."""

    store: Any
    conn: Any

    def get(self, key: str) -> Any | None:
        return self.store.state_get(self.conn, key)

    def scan(self, prefix: str, start_after: str, limit: int) -> list[tuple[str, Any]]:
        rows: list[tuple[str, Any]] = self.store.state_scan(self.conn, prefix, start_after, limit)
        return rows


class _OtherMembersAccount:
    """Payments facts with one account held by another member (the port, as the root's
    adapter would answer for a customer who banks elsewhere too)."""

    def account_facts(self, subject: str, *, since_ms: int, until_ms: int) -> list[AccountFacts]:
        return [AccountFacts("elsewhere-1", "did:key:z6MkOtherBank", "CNY", 0, 500_000, 100_000,
                             900_000)]  # fmt: skip


def test_another_members_data_needs_the_customers_consent_on_chain(
    node: Node, staff: dict[str, dict[str, str]], model: str
) -> None:
    customer = register_and_login(node.client)
    did = me(node.client, customer)["did"]
    real = node.platform.credit_ports
    node.platform.credit_ports = CreditPorts(payments=_OtherMembersAccount(), consent=real.consent)
    try:
        without = service.behaviour(node.platform, subject=did)
        assert without["other_members_data"] == "not_used_no_consent"
        assert without["score"] == 500  # the other member's inflows were left out
        until = node.platform.node.clock() + 86_400_000
        grant = {"grantee": node.platform.node.key.did, "category": "transactions",
                 "purpose": "credit_assessment", "until_ms": until}  # fmt: skip
        granted = node.client.post("/api/v1/identity/consents", json=grant, headers=customer)
        assert granted.status_code == 201, granted.text
        consented = service.behaviour(node.platform, subject=did)
        assert consented["other_members_data"] == "used"
        assert consented["score"] > 500  # 9,000 yuan of inflows and a growing balance count
        decided = node.post(f"{API}/decisions", _decide("d-consent"), headers=customer).json()
        assert decided["decision"]["other_members_data"] == "used"
    finally:
        node.platform.credit_ports = real


def test_the_projection_verifier_names_a_tampered_row_and_the_invariants_hold(
    node: Node, model: str
) -> None:
    from zhijin.credit.projection import anchors_table, models_table, policies_table
    from zhijin.node import modules
    from zhijin.platform.projection_verify import verify_projections

    platform = node.platform
    assert platform.projections.wait_for(platform.node.head.height, timeout_s=30)
    verifiers = [v for v in modules.default_projection_verifiers() if v.domain == "credit"]
    assert verify_projections(platform.store, platform.platform_engine, verifiers).ok
    with platform.store.read() as conn:
        assert modules.check_invariants(_Committed(platform.store, conn)) == []
    cases = [
        (models_table, models_table.c.sha256 == model, {"approver": "u-forged"}, "approver"),
        (policies_table, policies_table.c.version == 1, {"officer": "u-forged"}, "officer"),
        (anchors_table, anchors_table.c.decision_id == "d-trace",
         {"record_sha256": "0" * 64}, "record_sha256"),
    ]  # fmt: skip
    for table, where, values, field in cases:
        with platform.platform_engine.begin() as conn:
            before = dict(conn.execute(table.select().where(where)).one()._mapping)
            conn.execute(table.update().where(where).values(**values))
        report = verify_projections(platform.store, platform.platform_engine, verifiers)
        assert [(m.table, m.field) for m in report.mismatches] == [(table.name, field)]
        with platform.platform_engine.begin() as conn:
            conn.execute(table.update().where(where).values(**{field: before[field]}))
    assert verify_projections(platform.store, platform.platform_engine, verifiers).ok


def test_the_roots_payments_port_reads_a_customers_money_into_the_score(node: Node) -> None:
    """The root's adapter (zhijin/node/credit_ports.py: credit's consumer of payments' events):
    inflows from others count, a move between the customer's own accounts does not."""
    customer = register_and_login(node.client)
    did = me(node.client, customer)["did"]
    member = node.platform.node.key.did
    tag = did[-8:].replace("_", "-")
    for body in (
        {"id": f"settle-{tag}", "owner": member, "currency": "CNY", "kind": "settlement"},
        {"id": f"own-a-{tag}", "owner": did, "currency": "CNY", "kind": "customer"},
        {"id": f"own-b-{tag}", "owner": did, "currency": "CNY", "kind": "customer"},
    ):
        assert node.post("/api/v1/accounts", body).status_code == 200
    for transfer_id, debit, credit, amount in (
        (f"in-{tag}", f"settle-{tag}", f"own-a-{tag}", 250_000),  # 2,500 yuan from outside
        (f"self-{tag}", f"own-a-{tag}", f"own-b-{tag}", 100_000),  # the customer's own move
    ):
        body = {"id": transfer_id, "debit_account_id": debit, "credit_account_id": credit,
                "amount": amount, "currency": "CNY"}  # fmt: skip
        assert node.post("/api/v1/transfers", body).status_code == 200
    # The port reads credit's consumer of the ledger's events: once it applied the head.
    head = node.platform.node.head.height
    assert node.platform.projections.wait_for(head, projection="credit_flows", timeout_s=10)
    facts = node.platform.credit_ports.payments.account_facts(
        did, since_ms=0, until_ms=node.platform.node.clock()
    )
    assert sorted((f.account_id, f.balance_minor_now, f.inflow_minor) for f in facts) == [
        (f"own-a-{tag}", 150_000, 250_000),
        (f"own-b-{tag}", 100_000, 0),
    ]
    score = node.get(f"{API}/me/score", headers=customer).json()
    points = {c["code"]: c["points"] for c in score["contributions"]}
    assert points["inflows_90d"] == 20 and points["balance_trend"] == 40
    assert score["other_members_data"] == "none"  # every account is this member's
