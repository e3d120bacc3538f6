"""Lending through the API on one node, the manifest plugged in by the root: products with
maker-checker, a customer's application auto-approved and disbursed, the schedule, an early
repayment, the loan's history, the officer's queue, the keeper's pass (twice: no double
collection), and the refusals (401, 403 with codes, bad input 422)."""

from __future__ import annotations

from typing import Any

from tests.lending.conftest import API, Node, application, fresh_mfa
from tests.platform.users import register_and_login
from zhijin.lending import service
from zhijin.node import modules
from zhijin.platform.gateway import MemberGateway


def test_a_full_lifecycle_through_the_api(node: Node, world: dict[str, Any]) -> None:
    customer = world["customer"]
    applied = node.post(f"{API}/applications", application("api-1"), headers=customer)
    assert applied.status_code == 200, applied.text
    body = applied.json()
    assert body["loan"]["status"] == "approved" and body["loan"]["approval"] == "auto"
    assert body["decision_reasons"][0]["text_zh"] == "收入稳定"
    retry = node.post(f"{API}/applications", application("api-1"), headers=customer)
    assert retry.json()["exists"] is True
    # The customer may not disburse; the operator does.
    refused = node.post(f"{API}/loans/api-1/disburse", headers=customer)
    assert refused.status_code == 403
    paid_out = node.post(f"{API}/loans/api-1/disburse")
    assert paid_out.status_code == 200, paid_out.text
    assert paid_out.json()["loan"]["status"] == "current"
    plan = node.get(f"{API}/loans/api-1/schedule", headers=customer).json()
    assert len(plan["instalments"]) == 12 and plan["rate_bps"] == 460
    assert sum(i["principal_minor"] for i in plan["instalments"]) == 1_200_000
    part = {"payment_id": "pp-1", "mode": "partial", "amount_minor": 300_000, "then": "shorten"}
    fresh_mfa(node, customer)  # money out to a new payee: the step-up policy asks (test_stepup.py)
    repaid = node.post(f"{API}/loans/api-1/repayments", part, headers=customer)
    assert repaid.status_code == 200, repaid.text
    assert repaid.json()["loan"]["prepaid_principal_minor"] == 300_000
    full = node.post(f"{API}/loans/api-1/repayments", {"payment_id": "pp-2", "mode": "full"},
                     headers=customer)  # fmt: skip
    assert full.status_code == 200, full.text
    assert full.json()["loan"]["status"] == "closed"
    again = node.post(f"{API}/loans/api-1/repayments", {"payment_id": "pp-3", "mode": "full"},
                      headers=customer)  # fmt: skip
    assert (again.status_code, again.json()["code"]) == (409, "loan_closed")
    steps = node.get(f"{API}/loans/api-1/history", headers=customer).json()
    assert [s["status"] for s in steps["transitions"]] == ["approved", "current", "closed"]
    assert [p["payment_id"] for p in steps["payments"]] == ["pp-1", "pp-2"]
    mine = node.get(f"{API}/loans", headers=customer).json()["loans"]
    assert [loan["loan_id"] for loan in mine] == ["api-1"]


def test_the_queue_the_officer_and_self_approval(
    node: Node, world: dict[str, Any], staff: dict[str, dict[str, str]]
) -> None:
    big = application("api-2", amount_minor=30_000_000)
    queued = node.post(f"{API}/applications", big, headers=world["customer"])
    assert queued.status_code == 200, queued.text
    assert queued.json()["loan"]["reasons"] == ["dti_above_maximum", "amount_above_auto_limit"]
    queue = node.get(f"{API}/queue", headers=staff["checker"]).json()["loans"]
    assert "api-2" in [loan["loan_id"] for loan in queue]
    assert node.get(f"{API}/queue", headers=world["customer"]).status_code == 403
    decided = node.post(f"{API}/loans/api-2/review", {"approve": False, "reason": "收入不足"},
                        headers=staff["checker"])  # fmt: skip
    assert decided.status_code == 200, decided.text
    assert decided.json()["loan"]["status"] == "rejected"


def test_bad_input_and_strangers(node: Node, world: dict[str, Any]) -> None:
    customer = world["customer"]
    for changes in ({"amount_minor": 0}, {"amount_minor": "12"}, {"loan_id": "bad id"},
                    {"surprise": 1}):  # fmt: skip
        body = {**application("api-x"), **changes}
        answer = node.post(f"{API}/applications", body, headers=customer)
        assert answer.status_code == 422, answer.text
    other = register_and_login(node.client)
    stranger = node.get(f"{API}/loans/api-1", headers=other)
    assert stranger.status_code in (403, 404)
    assert node.client.get(f"{API}/loans").status_code == 401
    unknown = node.post(f"{API}/applications", application("api-y", decision_id="nope"),
                        headers=customer)  # fmt: skip
    assert (unknown.status_code, unknown.json()["code"]) == (404, "decision_not_found")


def test_the_manifest_is_in_the_root() -> None:
    assert "lending" in [module.name for module in modules.MODULES]
    assert modules.permissions()["loan_product.approve"] == "lending"


def test_a_repayment_preview_writes_nothing_and_says_what_repay_will_do(
    node: Node, world: dict[str, Any]
) -> None:
    customer = world["customer"]
    assert (
        node.post(f"{API}/applications", application("api-pv"), headers=customer).status_code == 200
    )
    assert node.post(f"{API}/loans/api-pv/disburse").status_code == 200
    height = node.platform.node.head.height
    before = service.get_loan(node.platform, loan_id="api-pv")
    part = {"payment_id": "pv-1", "mode": "partial", "amount_minor": 200_000, "then": "reamortise"}
    preview = node.post(f"{API}/loans/api-pv/repayments/preview", part, headers=customer)
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    assert node.platform.node.head.height == height  # no tx
    assert service.get_loan(node.platform, loan_id="api-pv") == before
    assert shown["payment"]["amount_minor"] == 200_000
    assert shown["loan"]["prepaid_principal_minor"] > 0
    too_much = node.post(f"{API}/loans/api-pv/repayments/preview",
                         {**part, "amount_minor": 90_000_000}, headers=customer)  # fmt: skip
    assert (too_much.status_code, too_much.json()["code"]) == (
        409,
        "repayment_exceeds_outstanding",
    ) or too_much.json()["code"] == "repayment_exceeds_outstanding"
    stranger = register_and_login(node.client)
    refused = node.post(f"{API}/loans/api-pv/repayments/preview", part, headers=stranger)
    assert refused.status_code == 403
    fresh_mfa(node, customer)  # the step-up policy's (test_stepup.py)
    done = node.post(f"{API}/loans/api-pv/repayments", part, headers=customer).json()
    assert done["payment"]["principal_minor"] == shown["payment"]["principal_minor"]
    assert [i["total_minor"] if "total_minor" in i else i["principal_minor"]
            for i in done["loan"]["schedule"]] == [
        i["total_minor"] if "total_minor" in i else i["principal_minor"]
        for i in shown["loan"]["schedule"]
    ]  # fmt: skip
    # Closed, so the keeper's test below collects from its own loan only.
    payoff = node.post(f"{API}/loans/api-pv/repayments", {"payment_id": "pv-2", "mode": "full"},
                       headers=customer)  # fmt: skip
    assert payoff.json()["loan"]["status"] == "closed", payoff.text


def test_a_keeper_pass_reminds_then_collects_once(node: Node, world: dict[str, Any]) -> None:
    """Last in the module: it moves the node's clock (block time) forward to the due day."""
    customer = world["customer"]
    node.post(f"{API}/applications", application("api-3"), headers=customer)
    loan = node.post(f"{API}/loans/api-3/disburse").json()["loan"]
    gateway = MemberGateway(node.platform.node)
    due = loan["schedule"][0]["due_ms"]
    day_ms = 24 * 3600 * 1000
    chain_node = node.platform.node
    real_clock = chain_node.clock
    try:
        chain_node.clock = lambda: due - day_ms  # type: ignore[method-assign]
        reminded = service.run_keeper_pass(node.platform, gateway)
        assert reminded["ok"] >= 1 and reminded["collected_minor"] == 0
        chain_node.clock = lambda: due + 3_600_000  # type: ignore[method-assign]
        first = service.run_keeper_pass(node.platform, gateway)
        instalment = loan["schedule"][0]["principal_minor"] + loan["schedule"][0]["interest_minor"]
        assert first["collected_minor"] == instalment
        # A second pass reads the first one's writes: the instalment is paid, nothing to send.
        second = service.run_keeper_pass(node.platform, gateway)
        assert second["submitted"] == 0 and second["collected_minor"] == 0
        # A keeper that read before those writes were visible (a restarted or second keeper)
        # sends the same collection again the same day: the contract refuses it.
        again = gateway.submit("lending", "collect", {"loan_id": "api-3", "instalment": 1})
        assert (again["status"], again["code"]) == ("failed", "already_collected"), again
    finally:
        chain_node.clock = real_clock  # type: ignore[method-assign]
    after = service.get_loan(node.platform, loan_id="api-3")
    assert (
        after["payments"] == 1
        and after["principal_paid"][0] == loan["schedule"][0]["principal_minor"]
    )
