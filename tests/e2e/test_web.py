"""The web app in a real browser (Debian's Chromium driven by Playwright) against a real
server on loopback: register, sign in, see balances, pay, read the statement, sign out.

The Content-Security-Policy forbids inline script, so any page error or CSP violation shows up
as a console error, and the test fails on it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.platform.live_server import LiveServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "correct horse battery staple"


class Server(LiveServer):
    """The app served by uvicorn in a thread, on a fresh data directory of three members."""

    def __init__(self, data: Path) -> None:
        super().__init__(data, members=3)
        self.operator = httpx.Client(
            base_url=self.base,
            headers={"Authorization": f"Bearer {self.operator_token}"},
            timeout=30,
        )

    def op(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.operator.request(method, "/api/v1" + path, json=body)
        assert response.status_code in (200, 201), response.text
        data: dict[str, Any] = response.json()
        return data

    def stop(self) -> None:
        self.operator.close()
        super().stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Chromium is missing: `make test` installs it (apt)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(base_url=server.base)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda e: errors.append(str(e)))
    opened.errors = errors  # type: ignore[attr-defined]
    yield opened
    context.close()


def _console_errors(page: Page) -> list[str]:
    # A refused request (401 before sign-in, the 422 a test provokes) is logged by the browser
    # as a failed resource load; anything else (a script error, a CSP violation) is a bug.
    errors: list[str] = page.errors  # type: ignore[attr-defined]
    return [e for e in errors if "Failed to load resource" not in e]


def _register_and_sign_in(page: Page, login: str) -> None:
    page.goto("/")
    register = page.locator("#register-form")
    register.locator("input[name=login]").fill(login)
    register.locator("input[name=password]").fill(PASSWORD)
    register.locator("button").click()
    expect(page.locator("#flash")).to_contain_text("Registered")
    form = page.locator("#login-form")
    form.locator("input[name=login]").fill(login)
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("button").click()
    expect(page.locator("#view-money")).to_be_visible()
    # A new user has no accounts: the hint shows once the money view's first load is done, so a
    # test's next step (a clock jump, a click) cannot race that request.
    expect(page.locator("#accounts-empty")).to_be_visible()


def _open_and_fund(server: Server, owner_did: str, amount: int = 1_000_000) -> None:
    member = server.platform.node.key.did
    server.op(
        "POST",
        "/accounts",
        {"id": "bank-cny", "owner": member, "currency": "CNY", "kind": "settlement"},
    )
    server.op(
        "POST",
        "/accounts",
        {"id": "alice-cny", "owner": owner_did, "currency": "CNY", "kind": "customer"},
    )
    server.op(
        "POST",
        "/accounts",
        {"id": "shop-cny", "owner": member, "currency": "CNY", "kind": "merchant"},
    )
    server.op(
        "POST",
        "/transfers",
        {
            "id": "fund-alice",
            "debit_account_id": "bank-cny",
            "credit_account_id": "alice-cny",
            "amount": amount,
            "currency": "CNY",
        },
    )


def test_customer_signs_in_sees_balance_pays_and_reads_statement(
    page: Page, server: Server
) -> None:
    _register_and_sign_in(page, "alice@example.com")
    did = page.locator("#my-did").inner_text()
    assert did.startswith("did:key:z")

    _open_and_fund(server, did)
    server.platform.projections.wait_for(server.platform.node.head.height, timeout_s=10)
    page.reload()
    accounts = page.locator("#accounts")
    expect(accounts).to_contain_text("alice-cny")
    expect(accounts).to_contain_text("10,000.00 CNY")
    expect(page.locator("#stepup-form")).to_be_hidden()

    form = page.locator("#transfer-form")
    form.locator("select[name=debit]").select_option("alice-cny")
    form.locator("input[name=credit]").fill("shop-cny")
    form.locator("input[name=amount]").fill("12.34")
    form.locator("input[name=reference]").fill("coffee beans")
    form.locator("button").click()
    expect(page.locator("#flash")).to_contain_text("Paid")
    expect(accounts).to_contain_text("9,987.66 CNY")
    statement = page.locator("#statement")
    expect(statement).to_contain_text("-12.34 CNY")
    expect(statement).to_contain_text("coffee beans")
    expect(statement).to_contain_text("9,987.66 CNY")

    # The ledger agrees with the page, to the minor unit.
    account = server.op("GET", "/accounts/alice-cny")
    assert account["balance_posted"] == 998_766

    # A refused payment (more decimals than CNY has) never reaches the server.
    form.locator("input[name=amount]").fill("1.001")
    form.locator("input[name=credit]").fill("shop-cny")
    form.locator("button").click()
    expect(page.locator("#flash")).to_contain_text("at most 2 decimal places")
    assert server.op("GET", "/accounts/alice-cny")["balance_posted"] == 998_766

    page.locator("#logout").click()
    expect(page.locator("#view-signin")).to_be_visible()
    assert _console_errors(page) == []


def test_a_payment_received_shows_without_a_reload(page: Page, server: Server) -> None:
    _register_and_sign_in(page, "frank@example.com")
    did = page.locator("#my-did").inner_text()
    # The account opens and is funded while the page is open: the stream brings both.
    _open_and_fund(server, did, amount=250_000)
    accounts = page.locator("#accounts")
    expect(accounts).to_contain_text("2,500.00 CNY", timeout=10_000)
    expect(page.locator("#flash")).to_contain_text("Received 2,500.00 CNY in alice-cny")
    server.op(
        "POST",
        "/transfers",
        {
            "id": "gift-2",
            "debit_account_id": "bank-cny",
            "credit_account_id": "alice-cny",
            "amount": 1_000,
            "currency": "CNY",
            "reference": "birthday",
        },
    )
    expect(accounts).to_contain_text("2,510.00 CNY", timeout=10_000)
    expect(page.locator("#statement")).to_contain_text("birthday")
    assert _console_errors(page) == []


def test_overdraft_is_refused_and_nothing_moves(page: Page, server: Server) -> None:
    _register_and_sign_in(page, "bob@example.com")
    did = page.locator("#my-did").inner_text()
    _open_and_fund(server, did, amount=50_000)  # 500.00 CNY, below the step-up threshold
    server.platform.projections.wait_for(server.platform.node.head.height, timeout_s=10)
    page.reload()
    form = page.locator("#transfer-form")

    def pay_300() -> None:
        form.locator("select[name=debit]").select_option("alice-cny")
        form.locator("input[name=credit]").fill("shop-cny")
        form.locator("input[name=amount]").fill("300.00")
        form.locator("button").click()

    pay_300()
    expect(page.locator("#flash")).to_contain_text("Paid")
    pay_300()
    expect(page.locator("#flash p.bad")).to_contain_text("exceeds_credits")
    assert server.op("GET", "/accounts/alice-cny")["balance_posted"] == 20_000
    expect(page.locator("#accounts")).to_contain_text("200.00 CNY")


def _enrol_totp(page: Page) -> pyotp.TOTP:
    """Enrol an authenticator with the page's own session (cookie + CSRF header), as the
    Security view does, reading the secret from the otpauth URI a phone would scan."""
    csrf = next(c["value"] for c in page.context.cookies() if c["name"].endswith("zhijin_csrf"))
    headers = {"X-CSRF-Token": csrf}
    enrolment = page.request.post("/api/v1/identity/totp/enrol", headers=headers)
    assert enrolment.ok, enrolment.text()
    authenticator = pyotp.parse_uri(enrolment.json()["uri"])
    assert isinstance(authenticator, pyotp.TOTP)
    confirm = page.request.post(
        "/api/v1/identity/totp/confirm", headers=headers, data={"code": authenticator.now()}
    )
    assert confirm.ok, confirm.text()
    return authenticator


def test_large_payment_asks_for_a_fresh_code_then_pays_once(page: Page, server: Server) -> None:
    _register_and_sign_in(page, "carol@example.com")
    did = page.locator("#my-did").inner_text()
    _open_and_fund(server, did, amount=10_000_000)  # 100,000.00 CNY
    authenticator = _enrol_totp(page)
    # Enrolment counts as a fresh second factor; move the identity clock past its freshness
    # so the large payment below must ask again.
    identity = server.platform.identity
    skew_ms = identity.current_policy().fresh_mfa_ms + 60_000
    real_clock = identity.clock
    identity.clock = lambda: real_clock() + skew_ms
    server.platform.projections.wait_for(server.platform.node.head.height, timeout_s=10)
    page.reload()
    form = page.locator("#transfer-form")
    form.locator("select[name=debit]").select_option("alice-cny")
    form.locator("input[name=credit]").fill("shop-cny")
    form.locator("input[name=amount]").fill("60000.00")  # above the 50,000.00 step-up rule
    form.locator("button").click()
    step_up = page.locator("#stepup-form")
    expect(step_up).to_be_visible()
    assert server.op("GET", "/accounts/alice-cny")["balance_posted"] == 10_000_000

    step_up.locator("input[name=code]").fill(authenticator.at(identity.clock() / 1000))
    step_up.locator("button[type=submit]").click()
    expect(page.locator("#flash")).to_contain_text("Paid")
    expect(step_up).to_be_hidden()
    assert server.op("GET", "/accounts/alice-cny")["balance_posted"] == 4_000_000
    assert _console_errors(page) == []


def test_a_customer_exports_their_keys_with_a_fresh_code(page: Page, server: Server) -> None:
    import json

    from zhijin.chain.crypto import KeyPair
    from zhijin.identity.did import seed_from_private_multikey

    _register_and_sign_in(page, "erin@example.com")
    did = page.locator("#my-did").inner_text()
    authenticator = _enrol_totp(page)
    identity = server.platform.identity
    real_clock = identity.clock
    identity.clock = lambda: real_clock() + 31_000  # the next TOTP step: a new, unused code
    page.locator("nav button[data-view=security]").click()
    form = page.locator("#keys-export")
    form.locator("input[name=code]").fill("000000")
    form.locator("button").click()
    expect(page.locator("#flash p.bad")).to_be_visible()
    expect(page.locator("#keys-download")).to_be_hidden()

    form.locator("input[name=code]").fill(authenticator.at(identity.clock() / 1000))
    form.locator("button").click()
    link = page.locator("#keys-download")
    expect(link).to_be_visible()
    with page.expect_download() as download:
        link.click()
    exported = json.loads(Path(download.value.path()).read_text())
    assert exported["did"] == did
    seed = seed_from_private_multikey(exported["keys"][0]["secretKeyMultibase"])
    assert KeyPair.from_seed(seed).did == did
    assert exported["keys"][0]["secretKeyMultibase"] not in page.content()
    assert _console_errors(page) == []


def test_explorer_and_security_headers(page: Page, server: Server) -> None:
    response = page.goto("/")
    assert response is not None
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    page.locator("nav button[data-view=explorer]").click()
    expect(page.locator("#head")).to_contain_text("zhijin-local")
    expect(page.locator("#blocks tr").first).to_be_visible()
    # Signed out, the money views are not offered.
    expect(page.locator("nav button[data-view=money]")).to_be_hidden()
    assert _console_errors(page) == []


def _open_block(page: Page, height: int) -> None:
    page.locator("nav button[data-view=explorer]").click()
    page.locator("#blocks tr").filter(
        has=page.get_by_role("cell", name=str(height), exact=True)
    ).click()
    expect(page.locator("#block-txs-card")).to_be_visible()


def test_the_explorer_shows_a_body_only_to_whom_it_concerns(page: Page, server: Server) -> None:
    _register_and_sign_in(page, "erin@example.com")
    _open_and_fund(server, page.locator("#my-did").inner_text())
    paid = server.op("GET", "/transfers/fund-alice")
    stored = server.platform.store.get_tx(bytes.fromhex(paid["tx_hash"]))
    assert stored is not None
    _open_block(page, stored.height)
    # The customer's own deposit: its body is hers to read.
    expect(page.locator("#block-txs")).to_contain_text("alice-cny")
    expect(page.locator("#block-txs-note")).to_be_hidden()
    page.locator("#logout").click()
    expect(page.locator("#view-signin")).to_be_visible()
    expect(page.locator("#block-txs-card")).to_be_hidden()  # her bodies left with her
    _open_block(page, stored.height)
    # Signed out: the tx hash and the note, no body.
    expect(page.locator("#block-txs-note")).to_be_visible()
    expect(page.locator("#block-txs")).to_contain_text(paid["tx_hash"])
    expect(page.locator("#block-txs")).not_to_contain_text("alice-cny")
    expect(page.locator("#reference-warning")).to_contain_text("personal data")
    assert _console_errors(page) == []


def test_an_expired_session_returns_to_the_sign_in_form(page: Page, server: Server) -> None:
    from zhijin.identity import limits

    _register_and_sign_in(page, "dave@example.com")
    identity = server.platform.identity
    real_clock = identity.clock
    identity.clock = lambda: real_clock() + limits.SESSION_IDLE_MS + 60_000
    page.locator("nav button[data-view=security]").click()
    expect(page.locator("#view-signin")).to_be_visible()
    expect(page.locator("#flash p.bad")).to_contain_text("session_invalid")
    expect(page.locator("nav button[data-view=money]")).to_be_hidden()
    # The live stream reopens as anyone's with the stale cookie, without an error.
    page.locator("nav button[data-view=explorer]").click()
    expect(page.locator("#blocks tr").first).to_be_visible()
    assert _console_errors(page) == []


def test_assets_answer_head_and_unknown_assets_are_404(server: Server) -> None:
    for path in ("/", "/web/app.js", "/web/app.css"):
        response = httpx.head(server.base + path)
        assert response.status_code == 200, path
    missing = httpx.get(server.base + "/web/../genesis.json")
    assert missing.status_code == 404
    assert httpx.get(server.base + "/web/keys").status_code == 404
