"""An early repayment is money out of the borrower's account, so it meets identity's step-up
policy as a payment does: above the policy's threshold (here: more than ¥1,000.00 to a payee the
account never paid before this sign-in, the loan's own account `lnp-<id>`) it answers 401
`step_up_required` and moves nothing until a fresh code; a small one goes through; a full one is
judged (and counted) at its payoff; a retry of a repayment made asks nothing; the operator is
never asked.  The loan page shows the prompt said from its causes, then repays after the code,
or sets an authenticator up in place for a borrower without one and repays."""

from __future__ import annotations

import re
from typing import Any

import pyotp
import pytest

from tests.lending.conftest import API, Borrower, Node, application, new_borrower
from tests.platform.users import identity_of, me
from zhijin.identity.store import hash_token
from zhijin.lending import limits, records, service
from zhijin.payments import limits as payments_limits
from zhijin.payments.records import Account
from zhijin.payments.records import keys as payments_keys

ZH_HTMX = {"Accept-Language": "zh-CN", "HX-Request": "true"}


def _disbursed(node: Node, loan_id: str, borrower: Borrower) -> dict[str, Any]:
    body = application(
        loan_id, decision_id=borrower.decision_id, repayment_account_id=borrower.account
    )
    applied = node.post(f"{API}/applications", body, headers=borrower.headers)
    assert applied.status_code == 200, applied.text
    assert node.post(f"{API}/loans/{loan_id}/disburse").status_code == 200
    return service.get_loan(node.platform, loan_id=loan_id)


def _balance(node: Node, account_id: str) -> int:
    """The account's posted balance in the committed chain state (payments' query tables may
    lag a block behind the loan's)."""
    store = node.platform.node.store
    with store.read() as conn:
        data = store.state_get(conn, payments_keys.account(account_id))
    assert data is not None, account_id
    account = Account.from_json(data)
    return account.credits_posted - account.debits_posted


def _repay(node: Node, loan_id: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    return node.post(f"{API}/loans/{loan_id}/repayments", body, headers=headers)


def _code(node: Node, borrower: Borrower) -> str:
    """The authenticator's code of the next 30 s step (within the drift window): the current
    step's may be the one the enrolment used, which a replay check refuses."""
    assert borrower.authenticator is not None
    return borrower.authenticator.at(identity_of(node.client).clock() // 1000 + 30)


def _moved_to(node: Node, headers: dict[str, str], payee: str) -> int:
    """What the step-up counters hold of the user's last 24 h to `payee` (minor units)."""
    identity = identity_of(node.client)
    user_id = me(node.client, headers)["user_id"]
    moved = identity.counters.amount_moved(user_id=user_id, payee=payee, now_ms=identity.clock())
    return sum(m.amount_minor for m in moved)


@pytest.fixture(scope="module")
def borrowers(node: Node, world: dict[str, Any]) -> dict[str, Borrower]:
    return {name: new_borrower(node, name) for name in ("su-big", "su-small", "su-full", "su-op")}


def test_the_floor_is_payments_own() -> None:
    assert limits.STEP_UP_FROM_MINOR == payments_limits.STEP_UP_FROM_MINOR


def test_a_large_early_repayment_needs_a_fresh_code_and_moves_nothing_before(
    node: Node, borrowers: dict[str, Borrower]
) -> None:
    borrower = borrowers["su-big"]
    before = _disbursed(node, "su-1", borrower)
    funds = _balance(node, borrower.account)
    part = {"payment_id": "su-1-p", "mode": "partial", "amount_minor": 300_000, "then": "shorten"}
    asked = _repay(node, "su-1", part, borrower.headers)
    assert asked.status_code == 401, asked.text
    problem = asked.json()
    assert problem["code"] == "step_up_required"
    assert [cause["code"] for cause in problem["reason_codes"]] == ["new_payee"]
    assert any(reason.startswith("new_payee:") for reason in problem["reasons"])
    assert problem["has_authenticator"] is True
    # Nothing moved: the loan, its payments and the borrower's account are as they were.
    after = service.get_loan(node.platform, loan_id="su-1")
    assert after["principal_repaid_minor"] == before["principal_repaid_minor"] == 0
    assert after == before
    assert service.history(node.platform, loan_id="su-1")["payments"] == []
    assert _balance(node, borrower.account) == funds
    # A wrong code is refused; the right one is the fresh second factor the policy asked for.
    wrong = node.post("/api/v1/identity/step-up", {"totp_code": "000000"}, borrower.headers)
    assert wrong.status_code in (400, 401, 403, 422), wrong.text
    assert _repay(node, "su-1", part, borrower.headers).status_code == 401
    fresh = node.post("/api/v1/identity/step-up", {"totp_code": _code(node, borrower)},
                      borrower.headers)  # fmt: skip
    assert fresh.status_code == 200, fresh.text
    done = _repay(node, "su-1", part, borrower.headers)
    assert done.status_code == 200, done.text
    assert done.json()["loan"]["prepaid_principal_minor"] > 0
    assert _balance(node, borrower.account) == funds - 300_000
    assert _moved_to(node, borrower.headers, records.loan_account("su-1")) == 300_000
    # Its retry once the second factor is stale: answered as made, nothing asked, nothing moved.
    identity = identity_of(node.client)
    token = borrower.headers["Authorization"].removeprefix("Bearer ")
    identity.store.mark_session(hash_token(token), mfa_at_ms=identity.clock() - 3_600_000)
    again = _repay(node, "su-1", part, borrower.headers)
    assert again.status_code == 200 and again.json()["exists"] is True, again.text
    assert _balance(node, borrower.account) == funds - 300_000
    # Another repayment of the same size, with the second factor stale: asked again.
    other = {**part, "payment_id": "su-1-q"}
    assert _repay(node, "su-1", other, borrower.headers).json()["code"] == "step_up_required"


def test_a_small_early_repayment_goes_through_without_a_code(
    node: Node, borrowers: dict[str, Borrower]
) -> None:
    borrower = borrowers["su-small"]
    _disbursed(node, "su-2", borrower)
    funds = _balance(node, borrower.account)
    small = {"payment_id": "su-2-p", "mode": "partial", "amount_minor": 50_000, "then": "shorten"}
    done = _repay(node, "su-2", small, borrower.headers)
    assert done.status_code == 200, done.text
    assert _balance(node, borrower.account) == funds - 50_000
    assert _moved_to(node, borrower.headers, records.loan_account("su-2")) == 50_000
    # The next one takes the 24 h total to this new payee over ¥1,000.00: asked.
    more = {"payment_id": "su-2-q", "mode": "partial", "amount_minor": 60_000, "then": "shorten"}
    asked = _repay(node, "su-2", more, borrower.headers)
    assert (asked.status_code, asked.json()["code"]) == (401, "step_up_required"), asked.text
    assert _balance(node, borrower.account) == funds - 50_000


def test_a_full_repayment_is_judged_at_its_payoff(
    node: Node, borrowers: dict[str, Borrower]
) -> None:
    borrower = borrowers["su-full"]
    _disbursed(node, "su-3", borrower)
    funds = _balance(node, borrower.account)
    full = {"payment_id": "su-3-p", "mode": "full"}
    payoff = node.post(f"{API}/loans/su-3/repayments/preview", full, headers=borrower.headers)
    payoff_minor = payoff.json()["payment"]["amount_minor"]
    assert payoff_minor >= 1_200_000
    asked = _repay(node, "su-3", full, borrower.headers)
    assert asked.json()["code"] == "step_up_required", asked.text
    assert service.get_loan(node.platform, loan_id="su-3")["status"] == "current"
    fresh = node.post("/api/v1/identity/step-up", {"totp_code": _code(node, borrower)},
                      borrower.headers)  # fmt: skip
    assert fresh.status_code == 200, fresh.text
    done = _repay(node, "su-3", full, borrower.headers)
    assert done.status_code == 200, done.text
    assert done.json()["loan"]["status"] == "closed"
    assert _balance(node, borrower.account) == funds - payoff_minor
    assert _moved_to(node, borrower.headers, records.loan_account("su-3")) == payoff_minor


def test_the_operator_is_never_asked(node: Node, borrowers: dict[str, Borrower]) -> None:
    borrower = borrowers["su-op"]
    _disbursed(node, "su-4", borrower)
    part = {"payment_id": "su-4-p", "mode": "partial", "amount_minor": 300_000, "then": "shorten"}
    done = _repay(node, "su-4", part, node.operator)
    assert done.status_code == 200, done.text


# -- the loan page ---------------------------------------------------------------------------


def _post(node: Node, path: str, headers: dict[str, str], data: dict[str, str]) -> Any:
    return node.client.post(path, data=data, headers={**headers, **ZH_HTMX}, follow_redirects=False)


def _hidden(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))


def test_the_page_shows_the_prompt_and_repays_after_the_code(
    node: Node, world: dict[str, Any]
) -> None:
    borrower = new_borrower(node, "su-web")
    _disbursed(node, "su-5", borrower)
    funds = _balance(node, borrower.account)
    part = {"payment_id": "su-5-p", "mode": "partial", "amount": "3000", "then": "shorten"}
    prompt = _post(node, "/loans/su-5/repay", borrower.headers, part)
    assert prompt.status_code == 200, prompt.text
    assert 'id="stepup-causes"' in prompt.text and "新收款人且超过 ¥1,000.00" in prompt.text
    assert "提前还款 ¥3,000.00" in prompt.text  # the amount it would debit, as money
    assert 'name="code"' in prompt.text and 'id="enrol-start"' not in prompt.text
    assert 'action="/loans/su-5/repay"' in prompt.text
    assert _balance(node, borrower.account) == funds
    fields = _hidden(prompt.text)
    assert fields["payment_id"] == "su-5-p" and fields["amount"] == "3000"
    wrong = _post(node, "/loans/su-5/repay", borrower.headers, {**fields, "code": "000000"})
    assert 'id="stepup-causes"' in wrong.text and _balance(node, borrower.account) == funds
    done = _post(node, "/loans/su-5/repay", borrower.headers,
                 {**fields, "code": _code(node, borrower)})  # fmt: skip
    assert done.status_code == 204, done.text
    assert done.headers["HX-Redirect"] == "/loans/su-5?repaid=su-5-p"
    assert _balance(node, borrower.account) == funds - 300_000
    cancel = node.client.get("/loans/su-5/repay", headers=borrower.headers, follow_redirects=False)
    assert cancel.status_code == 303 and cancel.headers["Location"] == "/loans/su-5"


def test_a_borrower_without_an_authenticator_sets_one_up_in_place_and_repays(
    node: Node, world: dict[str, Any]
) -> None:
    borrower = new_borrower(node, "su-new", authenticator=False)
    bare = borrower.headers
    _disbursed(node, "su-6", borrower)
    account = borrower.account
    funds = _balance(node, account)
    part = {"payment_id": "su-6-p", "mode": "partial", "amount": "2000", "then": "reamortise"}
    prompt = _post(node, "/loans/su-6/repay", bare, part)
    assert 'id="enrol-start"' in prompt.text and 'name="code"' not in prompt.text
    assert 'action="/loans/su-6/repay/enrol"' in prompt.text
    start = _post(node, "/loans/su-6/repay/enrol", bare, _hidden(prompt.text))
    assert 'id="totp-qr"' in start.text, start.text
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', start.text)
    assert secret is not None
    fields = _hidden(start.text)
    wrong = _post(node, "/loans/su-6/repay/enrol/confirm", bare, {**fields, "code": "000000"})
    assert wrong.headers["HX-Retarget"] == "#enrol-error"
    assert _balance(node, account) == funds
    code = pyotp.TOTP(secret.group(1).replace(" ", "")).now()
    done = _post(node, "/loans/su-6/repay/enrol/confirm", bare, {**fields, "code": code})
    assert done.status_code == 200, done.text
    assert 'id="repaid"' in done.text and "提前还款已完成" in done.text
    assert 'id="repay-recovery"' in done.text and 'id="recovery-codes"' in done.text
    assert done.headers["HX-Push-Url"] == "/loans/su-6?repaid=su-6-p"
    assert _balance(node, account) == funds - 200_000
    page = node.client.get("/loans/su-6", headers={**bare, "Accept-Language": "zh-CN"})
    assert 'id="repay-recovery"' in page.text and 'data-payment="su-6-p"' in page.text
