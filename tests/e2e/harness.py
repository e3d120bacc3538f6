"""The browser-test harness every page author uses (docs/web.md, "Testing a page").

    def test_my_page(browser: Browser, server: E2EServer, variant: Variant) -> None:
        with visit(browser, server, variant) as page:       # fails on any console error
            sign_in(page, *server.customer("amy"))           # or CSP violation at the end
            page.goto("/my-page")
            expect(page.locator("h1")).to_have_text(...)
            assert_accessible(page)                          # axe-core: no serious/critical
            screenshot(page, "my-page", variant)             # test-artifacts/my-page-zh-desktop.png

- one server per test module (`server`, module-scoped) and one browser (`browser`);
- `variant` is a (locale, viewport) pair: desktop 1280x900, phone 390x844, zh_CN and en;
- every page's context blocks the network beyond loopback (the app must work offline) and
  reports Content-Security-Policy violations and page errors as failures.
"""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyotp
import pytest
from playwright.sync_api import Browser, Page, Route, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.platform.live_server import LiveServer
from zhijin.identity import totp
from zhijin.identity.rbac import Principal, Role
from zhijin.identity.service import RequestSource

__all__ = [
    "ARTIFACTS",
    "PASSWORD",
    "PHONE",
    "VARIANTS",
    "E2EServer",
    "Variant",
    "assert_accessible",
    "assert_fits_the_screen",
    "chromium_path",
    "screenshot",
    "sign_in",
    "visit",
]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "correct horse battery staple"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
ACCEPT_LANGUAGE = {"zh_CN": "zh-CN", "en": "en-GB"}
BLOCKING_IMPACTS = frozenset({"serious", "critical"})
# Reported by init script (Playwright injects it outside the page's CSP): a violation the
# browser only dispatches as an event, never as a console message, still fails the test.
_CSP_WATCH = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI}`);
});
"""


@dataclass(frozen=True, slots=True)
class Variant:
    locale: str  # "zh_CN" | "en"
    viewport: str  # "desktop" | "phone"

    @property
    def id(self) -> str:
        return f"{'zh' if self.locale == 'zh_CN' else 'en'}-{self.viewport}"

    @property
    def size(self) -> dict[str, int]:
        return PHONE if self.viewport == "phone" else DESKTOP


VARIANTS = [
    pytest.param(Variant("zh_CN", "desktop"), id="zh-desktop"),
    pytest.param(Variant("en", "phone"), id="en-phone"),
    pytest.param(Variant("zh_CN", "phone"), id="zh-phone"),
    pytest.param(Variant("en", "desktop"), id="en-desktop"),
]
# Two variants that together cover both languages and both viewports, for longer journeys.
PAIRED_VARIANTS = VARIANTS[:2]


def chromium_path() -> str:
    found = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(found).exists(), "Chromium is missing: `make test` installs it (apt)"
    return found


class E2EServer(LiveServer):
    """The app on loopback (one member: the pages do not depend on how many), with the operator's API client and helpers that
    make users and money without going through the pages under test."""

    def __init__(self, data: Path) -> None:
        super().__init__(data, members=1)
        self.operator = httpx.Client(
            base_url=self.base,
            headers={"Authorization": f"Bearer {self.operator_token}"},
            timeout=30,
        )
        self.authenticators: dict[str, pyotp.TOTP] = {}
        self._steps_used: dict[str, int] = {}

    def op(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.operator.request(method, "/api/v1" + path, json=body)
        assert response.status_code in (200, 201), response.text
        data: dict[str, Any] = response.json()
        return data

    def customer(self, prefix: str = "customer") -> tuple[str, str, str]:
        """A registered customer (through the service, from an address of its own so the
        per-address registration limit is not spent): (login, password, did)."""
        login = f"{prefix}-{secrets.token_hex(4)}@example.com"
        source = RequestSource(ip=f"10.9.{secrets.randbelow(250)}.{secrets.randbelow(250)}")
        user = self.platform.identity.register(
            login=login, password=PASSWORD, kind="individual", source=source
        )
        assert user.did is not None
        return login, PASSWORD, user.did

    def staff(self, role: Role, *more: Role) -> tuple[str, str]:
        """A staff login of this node's member with `role` (and `more`), enrolled in an
        authenticator (staff sign in with one): (login, password)."""
        identity = self.platform.identity
        member = self.platform.node.key.did
        admin = identity.bootstrap_admin(
            login=f"admin-{secrets.token_hex(4)}", password=PASSWORD, member_did=member
        )
        principal = Principal(user_id=admin.id, roles=frozenset({Role.ADMIN}), member_did=member)
        login = admin.login
        if role is not Role.ADMIN or more:
            login = f"{role.value}-{secrets.token_hex(4)}"
            identity.create_staff(
                principal=principal,
                login=login,
                password=PASSWORD,
                roles=frozenset({role, *more}),
                member_did=member,
            )
        # Enrol an authenticator now, with the previous step's code, so that the sign-in's
        # current code is a later step (a code is never used twice).
        session = identity.login(login=login, password=PASSWORD, source=RequestSource(ip="e2e"))
        enrolment = identity.begin_totp_enrolment(principal=session.principal)
        authenticator = pyotp.TOTP(totp.secret_text(enrolment.secret))
        previous = identity.clock() // 1000 - 30
        identity.confirm_totp_enrolment(
            principal=session.principal, code=authenticator.at(previous)
        )
        self.authenticators[login] = authenticator
        return login, PASSWORD

    def code(self, login: str) -> str:
        """A code of a staff login's authenticator (enrolled by `staff`) that the server has not
        seen yet: a second sign-in inside the same 30 s step waits for the next step, since the
        server refuses a code used once (replay)."""
        authenticator = self.authenticators[login]
        step = int(time.time()) // authenticator.interval
        if step <= self._steps_used.get(login, -1):
            step = self._steps_used[login] + 1
            time.sleep(max(step * authenticator.interval - time.time(), 0) + 0.05)
        self._steps_used[login] = step
        return authenticator.at(step * authenticator.interval)

    def open_and_fund(self, owner_did: str, *, amount_minor: int, tag: str) -> str:
        """A CNY account of `owner_did` holding `amount_minor`, paid in from the bank's
        settlement account; a merchant account `shop-<tag>` to pay.  Returns the account id."""
        member = self.platform.node.key.did
        bank, account, shop = f"bank-{tag}", f"cust-{tag}", f"shop-{tag}"
        for account_id, owner, kind in (
            (bank, member, "settlement"),
            (account, owner_did, "customer"),
            (shop, member, "merchant"),
        ):
            self.op(
                "POST",
                "/accounts",
                {"id": account_id, "owner": owner, "currency": "CNY", "kind": kind},
            )
        self.op(
            "POST",
            "/transfers",
            {
                "id": f"fund-{tag}",
                "debit_account_id": bank,
                "credit_account_id": account,
                "amount": amount_minor,
                "currency": "CNY",
                "reference": "opening deposit",
            },
        )
        self.platform.projections.wait_for(self.platform.node.head.height, timeout_s=10)
        return account

    def balance(self, account_id: str) -> int:
        return int(self.op("GET", f"/accounts/{account_id}")["balance_posted"])

    def stop(self) -> None:
        self.operator.close()
        super().stop()


def _local_only(base: str) -> Any:
    host = urlsplit(base).hostname

    def route(route: Route) -> None:
        if urlsplit(route.request.url).hostname in (host, "localhost"):
            route.continue_()
        else:
            route.abort()  # the app must never need the internet (CDNs, fonts, telemetry)

    return route


@contextmanager
def visit(
    browser: Browser, server: E2EServer, variant: Variant, *, refused: tuple[int, ...] = ()
) -> Iterator[Page]:
    """A fresh browser context (no cookies) in `variant`'s language and viewport; at the
    end, any console error, page error or CSP violation fails the test.  A test that opens a
    page it expects refused names the status in `refused` (the browser logs the load)."""
    context = browser.new_context(
        base_url=server.base,
        viewport=variant.size,
        locale=ACCEPT_LANGUAGE[variant.locale].replace("_", "-"),
        extra_http_headers={"Accept-Language": ACCEPT_LANGUAGE[variant.locale]},
        is_mobile=variant.viewport == "phone",
        has_touch=variant.viewport == "phone",
    )
    context.add_init_script(script=_CSP_WATCH)
    context.route("**/*", _local_only(server.base))
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield page
        expected = tuple(f"status of {status} " for status in refused)
        unexpected = [e for e in errors if not (expected and any(x in e for x in expected))]
        assert unexpected == [], unexpected
    finally:
        context.close()


def sign_in(page: Page, login: str, password: str, code: str | None = None, *_: str) -> None:
    """Through the sign-in page, as a person would: the password, then (staff, or a user with
    an authenticator) the code the page asks for."""
    page.goto("/signin")
    form = page.locator("#signin-form")
    form.locator("input[name=login]").fill(login)
    form.locator("input[name=password]").fill(password)
    form.locator("button[type=submit]").click()
    if code is not None:
        form.locator("input[name=code]").wait_for()
        settled(page)  # the code step was swapped in: submit it once htmx will send it
        form.locator("input[name=password]").fill(password)
        form.locator("input[name=code]").fill(code)
        form.locator("button[type=submit]").click()
    try:
        page.wait_for_url(lambda url: "/signin" not in url, wait_until="domcontentloaded")
    except PlaywrightTimeout as timeout:  # say what the page says, not only "timeout"
        shown = page.inner_text("main")
        raise AssertionError(f"sign-in of {login} stayed on the page: {shown}") from timeout


@cache
def _axe_source() -> str:
    assert AXE.is_file(), f"{AXE} is missing: run `make assets` (npm ci)"
    return AXE.read_text("utf-8")


def assert_accessible(page: Page) -> None:
    """axe-core over the page as shown (WCAG 2.x A and AA rules): no serious or critical
    violation.  The script is evaluated through the DevTools protocol, outside the page's CSP."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(_axe_source())
    result = page.evaluate(
        """async () => {
          const r = await window.axe.run(document, {
            runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
            resultTypes: ["violations"],
          });
          return r.violations.map((v) => ({id: v.id, impact: v.impact,
            nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" "))}));
        }"""
    )
    blocking = [v for v in result if v["impact"] in BLOCKING_IMPACTS]
    assert blocking == [], f"{page.url}: {blocking}"


def screenshot(page: Page, journey: str, variant: Variant) -> Path:
    """The page as it looks now, for a person to look at: test-artifacts/<journey>-<variant>.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{journey}-{variant.id}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def settled(page: Page) -> None:
    """htmx has finished its swap and processed the new content: a form swapped in is clicked
    only once htmx will send it (with the CSRF header), not as a plain browser post."""
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"
    )


def assert_fits_the_screen(page: Page) -> None:
    """Nothing runs off the side of the viewport (a phone must never scroll sideways)."""
    # After a form's redirect the new document may be measured before its stylesheet applies.
    page.wait_for_load_state("load")
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    if overflow > 0:  # name the widest culprits, so that a failure says what to fix
        culprits = page.evaluate(_WIDER_THAN_THE_SCREEN)
        raise AssertionError(f"{page.url}: {overflow}px wider than the screen: {culprits}")


_WIDER_THAN_THE_SCREEN = """() => {
  const width = document.documentElement.clientWidth;
  const found = [];
  for (const node of document.querySelectorAll("body *")) {
    const box = node.getBoundingClientRect();
    if (box.right > width + 1 && ![...node.children].some(c => c.getBoundingClientRect().right > width + 1)) {
      found.push(`${node.tagName.toLowerCase()}${node.id ? "#" + node.id : ""}.${node.className} ` +
                 `right=${Math.round(box.right)} text=${(node.textContent || "").slice(0, 60)}`);
    }
  }
  return found.slice(0, 5);
}"""


def expect_lang(page: Page, locale: str) -> None:
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN" if locale == "zh_CN" else "en")
