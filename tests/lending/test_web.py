"""Lending's pages over TestClient, on a node with the manifest plugged in by the root: the
borrower's loans, an application with its result explained, a loan's schedule and payments,
an early repayment previewed (nothing written) then confirmed, a withdrawal; the keeper's
reminder on the page and as a live notice; the officer's book, queue (reject needs a reason,
never one's own), products (maker-checker) and LPR table; and what each viewer is refused.
The browser journeys are in tests/e2e/test_lending.py."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.lending.conftest import API, Node, fresh_mfa
from tests.lending.helpers import PRODUCT
from tests.platform.users import register_and_login
from zhijin.lending import service
from zhijin.lending.notifications import LendingNotifier
from zhijin.lending.schedule import DAY_MS
from zhijin.lending.web.pages import AmountInvalid, instalment_rows, minor_of
from zhijin.platform.gateway import MemberGateway
from zhijin.platform.notifications import Audience
from zhijin.platform.projections import load_block

ZH = {"Accept-Language": "zh-CN"}
EN = {"Accept-Language": "en-GB"}
HTMX = {"HX-Request": "true"}


def _get(node: Node, path: str, headers: dict[str, str], lang: dict[str, str] = ZH) -> Any:
    return node.client.get(path, headers={**headers, **lang}, follow_redirects=False)


def _post(node: Node, path: str, headers: dict[str, str], data: dict[str, str],
          lang: dict[str, str] = ZH) -> Any:  # fmt: skip
    return node.client.post(
        path, data=data, headers={**headers, **lang, **HTMX}, follow_redirects=False
    )


def test_amounts_are_parsed_exactly_or_refused() -> None:
    assert minor_of("1,234.56", "CNY") == 123_456
    assert minor_of("¥12000", "CNY") == 1_200_000
    assert minor_of(" 0.5 ", "CNY") == 50
    for bad in ("", "abc", "-5", "0", "1.234", "1e3x", "NaN", "Infinity", "9" * 30):
        with pytest.raises(AmountInvalid):
            minor_of(bad, "CNY")


def test_each_instalment_is_paid_overdue_due_or_upcoming() -> None:
    loan = {
        "schedule": [
            {"number": n, "due_ms": n * 100, "principal_minor": 10, "interest_minor": 1}
            for n in (1, 2, 3, 4)
        ],
        "principal_paid": [10, 5, 0, 0],
        "interest_paid": [1, 1, 0, 0],
    }
    states = [row["state"] for row in instalment_rows(loan, now_ms=250)]
    assert states == ["paid", "overdue", "due", "upcoming"]
    assert instalment_rows(loan, now_ms=250)[1]["left_minor"] == 5


def _apply_form(loan_id: str, **changes: str) -> dict[str, str]:
    return {
        "loan_id": loan_id, "product_id": PRODUCT["product_id"], "decision_id": "dec-1",
        "amount": "12000.00", "monthly_income": "20000", "monthly_debt": "0",
        "repayment_account_id": "cust", **changes,
    }  # fmt: skip


def test_the_borrower_applies_sees_the_result_and_the_schedule(
    node: Node, world: dict[str, Any]
) -> None:
    customer = world["customer"]
    empty = _get(node, "/loans", customer)
    assert empty.status_code == 200, empty.text
    assert 'href="/loans/apply"' in empty.text
    form = _get(node, "/loans/apply", customer).text
    assert 'value="dec-1"' in form and f'value="{PRODUCT["product_id"]}"' in form
    assert 'value="cust"' in form
    bad = _post(node, "/loans/apply", customer, _apply_form("web-1", amount="12.345"))
    assert 'id="apply-error"' in bad.text and "金额格式不正确" in bad.text
    applied = _post(node, "/loans/apply", customer, _apply_form("web-1"))
    assert applied.status_code == 200, applied.text
    assert 'data-status="approved"' in applied.text
    assert "已自动批准" in applied.text and "¥12,000.00" in applied.text
    assert "收入稳定" in applied.text  # the decision's reasons, in the viewer's language
    assert node.post(f"{API}/loans/web-1/disburse").status_code == 200
    mine = _get(node, "/loans", customer).text
    assert 'data-loan="web-1" data-status="current"' in mine and "正常还款中" in mine
    assert re.findall(r'class="loan-status">([^<]*)<', mine) == ["正常还款中"]  # words, no code
    loan = service.get_loan(node.platform, loan_id="web-1")
    first = loan["schedule"][0]
    due = _money(first["principal_minor"] + first["interest_minor"])
    assert due in mine  # the next due amount, in yuan
    page = _get(node, "/loans/web-1", customer)
    assert page.status_code == 200, page.text
    states = re.findall(r'<tr data-number="\d+" data-state="(\w+)"', page.text)
    assert states == ["due"] + ["upcoming"] * 11
    assert "罚息 → 费用 → 利息 → 本金" in page.text.replace("\n", "").replace("  ", "")
    english = _get(node, "/loans/web-1", customer, EN).text
    assert "Current" in english and "Repayment schedule" in english


def _money(minor: int) -> str:
    return f"¥{minor // 100:,}.{minor % 100:02d}"


def test_an_early_repayment_is_previewed_then_confirmed(node: Node, world: dict[str, Any]) -> None:
    customer = world["customer"]
    before = service.get_loan(node.platform, loan_id="web-1")
    part = {"payment_id": "web-1-pp", "mode": "partial", "amount": "3000", "then": "shorten"}
    preview = _post(node, "/loans/web-1/repay/preview", customer, part)
    assert preview.status_code == 200, preview.text
    assert 'id="new-schedule"' in preview.text and 'id="repay-confirm"' in preview.text
    rows = re.findall(r'<tr data-number="\d+"', preview.text.split('id="new-schedule"')[1])
    assert 0 < len(rows) < 12  # shortened
    assert service.get_loan(node.platform, loan_id="web-1") == before  # nothing written
    too_much = _post(node, "/loans/web-1/repay/preview", customer, {**part, "amount": "99999"})
    assert 'id="repay-error"' in too_much.text
    fresh_mfa(node, customer)  # money out to a new payee: the step-up policy asks (below)
    done = _post(node, "/loans/web-1/repay", customer, part)
    assert done.status_code == 204 and done.headers["HX-Redirect"].startswith("/loans/web-1")
    after = service.get_loan(node.platform, loan_id="web-1")
    assert after["prepaid_principal_minor"] == 300_000
    assert len(after["schedule"]) == len(rows)
    page = _get(node, "/loans/web-1", customer).text
    assert 'data-payment="web-1-pp"' in page and "提前还款" in page
    again = _post(node, "/loans/web-1/repay", customer, part)  # the same id: answered, not paid
    assert again.status_code == 204
    assert service.get_loan(node.platform, loan_id="web-1")["payments"] == after["payments"]


def test_a_withdrawal_before_disbursement(node: Node, world: dict[str, Any]) -> None:
    customer = world["customer"]
    applied = _post(node, "/loans/apply", customer, _apply_form("web-2"))
    assert 'data-status="approved"' in applied.text
    page = _get(node, "/loans/web-2", customer).text
    assert 'id="withdraw"' in page and 'id="repay-form"' not in page
    gone = _post(node, "/loans/web-2/withdraw", customer, {})
    assert gone.status_code == 204
    assert service.get_loan(node.platform, loan_id="web-2")["status"] == "withdrawn"
    assert "已撤回" in _get(node, "/loans/web-2", customer).text


def test_the_officer_works_the_queue_never_their_own(
    node: Node, world: dict[str, Any], staff: dict[str, dict[str, str]]
) -> None:
    big = _post(node, "/loans/apply", world["customer"], _apply_form("web-3", amount="300000"))
    assert 'data-status="review"' in big.text
    assert "负债收入比高于上限" in big.text and "金额超过自动审批上限" in big.text
    checker = staff["checker"]
    queue = _get(node, "/staff/loans/queue", checker)
    assert queue.status_code == 200, queue.text
    assert 'id="queue-web-3"' in queue.text and 'value="reject"' in queue.text
    no_reason = _post(node, "/staff/loans/web-3/review", checker, {"decision": "reject"})
    assert "拒绝时请写明理由" in no_reason.text
    assert service.get_loan(node.platform, loan_id="web-3")["status"] == "review"
    rejected = _post(node, "/staff/loans/web-3/review", checker,
                     {"decision": "reject", "reason": "收入不足"})  # fmt: skip
    assert 'class="notice ok review-done"' in rejected.text and "已拒绝" in rejected.text
    assert service.get_loan(node.platform, loan_id="web-3")["review_reason"] == "收入不足"
    book = _get(node, "/staff/loans", checker)
    assert book.status_code == 200, book.text
    assert 'data-status="current"' in book.text and 'data-status="rejected"' in book.text


PRODUCT_FORM = {
    "product_id": "web-sme-24", "lpr_tenor": "1y", "spread_percent": "2.25",
    "term_months": "24", "method": "equal_principal", "day_count": "act_365",
    "grace_days": "3", "penalty_uplift_percent": "50", "compound": "on", "late_fee": "20",
    "min_amount": "1000", "max_amount": "300000", "auto_min_score": "650",
    "auto_max_dti_percent": "45", "auto_max_amount": "100000", "auto_min_kyc_level": "2",
    "default_after_days": "90", "income_account_id": "settle",
}  # fmt: skip


def test_products_need_a_second_officer_and_the_lpr_table(
    node: Node, world: dict[str, Any], staff: dict[str, dict[str, str]]
) -> None:
    maker, checker = staff["maker"], staff["checker"]
    form = dict(PRODUCT_FORM)
    bad = _post(node, "/staff/loans/products", maker, {**form, "spread_percent": "1.234"})
    assert 'id="product-error"' in bad.text
    made = _post(node, "/staff/loans/products", maker, form)
    assert made.status_code == 204, made.text
    product = service.get_product(node.platform, product_id="web-sme-24")
    assert (product["spread_bps"], product["auto_max_dti_bps"]) == (225, 4_500)
    assert product["status"] == "pending_approval"
    own = _get(node, "/staff/loans/products", maker).text
    row = own.split('id="product-web-sme-24"')[1].split("</tr>")[0]
    assert "approve-product" not in row and "需由另一位审批人员复核" in row
    forced = _post(node, "/staff/loans/products/web-sme-24/approve", maker, {})
    assert forced.status_code == 200 and 'role="alert"' in forced.text  # refused, said why
    assert service.get_product(node.platform, product_id="web-sme-24")["status"] != "approved"
    theirs = _get(node, "/staff/loans/products", checker).text
    assert 'hx-post="/staff/loans/products/web-sme-24/approve"' in theirs
    approved = _post(node, "/staff/loans/products/web-sme-24/approve", checker, {})
    assert "产品生效" in approved.text
    assert service.get_product(node.platform, product_id="web-sme-24")["status"] == "approved"
    lpr = _get(node, "/staff/loans/lpr", maker)
    assert lpr.status_code == 200 and 'data-tenor="1y"' in lpr.text and "3.10%" in lpr.text
    wrong = _post(node, "/staff/loans/lpr", maker,
                  {"tenor": "5y", "rate_percent": "abc", "effective_day": "2024-02-20"})  # fmt: skip
    assert 'id="lpr-error"' in wrong.text
    published = _post(node, "/staff/loans/lpr", maker,
                      {"tenor": "5y", "rate_percent": "3.95", "effective_day": "2024-02-20"})  # fmt: skip
    assert published.status_code == 204
    assert "3.95%" in _get(node, "/staff/loans/lpr", maker).text


def test_what_each_viewer_is_refused(
    node: Node, world: dict[str, Any], staff: dict[str, dict[str, str]]
) -> None:
    customer = world["customer"]
    assert _get(node, "/staff/loans", customer).status_code == 403
    assert _get(node, "/staff/loans/queue", customer).status_code == 403
    assert _get(node, "/loans", staff["checker"]).status_code == 403
    stranger = register_and_login(node.client)
    assert _get(node, "/loans/web-1", stranger).status_code == 403
    refused = _post(node, "/loans/web-1/repay/preview", stranger,
                    {"payment_id": "x-1", "mode": "full"})  # fmt: skip
    assert refused.status_code == 403
    signed_out = node.client.get("/loans", follow_redirects=False)
    assert signed_out.status_code == 303 and "/signin" in signed_out.headers["location"]
    cross_site = node.client.post(
        "/loans/web-1/repay", data={"payment_id": "x-2", "mode": "full"},
        headers={**customer, **HTMX, "Sec-Fetch-Site": "cross-site"}, follow_redirects=False,
    )  # fmt: skip
    assert cross_site.status_code == 403
    assert service.get_loan(node.platform, loan_id="web-1")["status"] == "current"
    assert _get(node, "/loans/bad%20id", customer).status_code == 422


def test_the_regulator_reads_every_members_book_and_nothing_else(
    node: Node, world: dict[str, Any]
) -> None:
    from tests.platform.users import create_staff, me
    from zhijin.identity.rbac import Role

    regulator = create_staff(node.client, roles={Role.REGULATOR})
    book = _get(node, "/staff/loans", regulator)
    assert book.status_code == 200, book.text
    assert 'id="every-member"' in book.text and node.platform.node.key.did in book.text
    member = node.platform.node.membership.latest().members[node.platform.node.key.did]
    assert member.name in book.text  # each member by its name, its DID beside it
    # The regulator's read of the book is itself in the audit log.
    reader = me(node.client, regulator)["user_id"]
    reads = [e for e in node.platform.audit.entries(limit=1_000) if e.actor == f"user:{reader}"]
    assert any(e.action == "loan.read" and e.outcome == "granted" for e in reads), reads
    assert 'href="/staff/loans/queue"' not in book.text  # no tabs to what it may not do
    assert _get(node, "/staff/loans/queue", regulator).status_code == 403
    assert _get(node, "/staff/loans/products", regulator).status_code == 403


def test_an_analyst_sees_the_products_but_creates_none(node: Node, world: dict[str, Any]) -> None:
    from tests.platform.users import create_staff
    from zhijin.identity.rbac import Role

    analyst = create_staff(node.client, roles={Role.RISK_ANALYST})
    page = _get(node, "/staff/loans/products", analyst)
    assert page.status_code == 200 and 'id="product-form"' not in page.text
    assert 'id="lpr-form"' not in _get(node, "/staff/loans/lpr", analyst).text
    forced = _post(node, "/staff/loans/products", analyst,
                   {**PRODUCT_FORM, "product_id": "analyst-1"})  # fmt: skip
    assert 'id="product-error"' in forced.text and "analyst-1" not in str(
        service.list_products(node.platform, member=None)
    )
    assert 'data-product="analyst-1"' not in _get(node, "/staff/loans/products", analyst).text


def test_the_keepers_reminder_is_on_the_page_and_a_live_notice(
    node: Node, world: dict[str, Any]
) -> None:
    """Last in the module: it moves the node's clock (block time) to the day before a due day."""
    loan = service.get_loan(node.platform, loan_id="web-1")
    item = next(i for i, paid in zip(loan["schedule"], loan["principal_paid"], strict=True)
                if paid < i["principal_minor"])  # fmt: skip
    chain_node = node.platform.node
    real_clock = chain_node.clock
    try:
        chain_node.clock = lambda: item["due_ms"] - DAY_MS  # type: ignore[method-assign]
        result = MemberGateway(chain_node).submit(
            "lending", "remind", {"loan_id": "web-1", "instalment": item["number"]}
        )
        assert result["status"] == "ok", result
        assert node.platform.projections.wait_for(result["height"], timeout_s=30)
        page = _get(node, "/loans", world["customer"]).text
        reminder = page.split('id="reminders"')[1].split("</ul>")[0]
        assert f'data-instalment="{item["number"]}"' in reminder and "web-1" in reminder
        assert "届时将自动扣款" in reminder
    finally:
        chain_node.clock = real_clock  # type: ignore[method-assign]
    block = load_block(node.platform.store, result["height"])
    assert block is not None
    notifier = LendingNotifier(node.platform.platform_engine)
    for locale, words in (("zh_CN", "到期"), ("en", "falls due")):
        audience = Audience(world["did"], locale=locale)
        notifier.prepare(audience)
        (notice,) = notifier.notices(block, audience)
        assert notice.event == "lending" and notice.data["type"] == "reminder"
        assert notice.data["instalment"] == item["number"] and words in notice.data["text"]
    assert notifier.notices(block, Audience("did:key:someone-else")) == []
    assert notifier.notices(block, Audience(None)) == []
