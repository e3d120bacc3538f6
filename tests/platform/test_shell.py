"""The web shell without a browser: audiences and navigation from permissions, the guards of
the pages (sign in first, the translated 403, CSRF on forms), safe redirects, the asset
allow-list and its failure when the packages are missing, and the "web" catalogs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from fastapi.testclient import TestClient

from tests.platform.users import create_staff, identity_of
from zhijin.identity.rbac import Permission, Role
from zhijin.identity.service import RequestSource
from zhijin.node import modules
from zhijin.node.app import create_app
from zhijin.node.runtime import init_data_dir
from zhijin.node.settings import Settings
from zhijin.platform import assets, i18n
from zhijin.platform.module import (
    ANYONE,
    SIGNED_IN,
    SIGNED_OUT,
    Audience,
    NavEntry,
    with_permission,
    with_roles,
)
from zhijin.platform.shell import ANONYMOUS, Shell, ShellViewer, local_path

PASSWORD = "correct horse battery staple"
PACKAGE = Path(__file__).resolve().parents[2] / "zhijin"
CUSTOMER = ShellViewer(
    user_id="u1",
    login="amy",
    roles=frozenset({"customer"}),
    permissions=frozenset({"account.read", "payment.transfer"}),
)
OFFICER = ShellViewer(
    user_id="u2",
    login="bo",
    roles=frozenset({"bank_officer"}),
    permissions=frozenset({"account.read", "account.open"}),
    staff=True,
)


# -- audiences and navigation ------------------------------------------------------------------


def test_each_audience_admits_exactly_its_viewers() -> None:
    assert ANYONE.admits(ANONYMOUS) and ANYONE.admits(OFFICER)
    assert SIGNED_OUT.admits(ANONYMOUS) and not SIGNED_OUT.admits(CUSTOMER)
    assert SIGNED_IN.admits(CUSTOMER) and not SIGNED_IN.admits(ANONYMOUS)
    reads = with_permission(Permission.ACCOUNT_READ)
    assert reads.admits(CUSTOMER) and reads.admits(OFFICER) and not reads.admits(ANONYMOUS)
    mine = with_roles(Role.CUSTOMER, Role.SME_OWNER)
    assert mine.admits(CUSTOMER) and not mine.admits(OFFICER) and not mine.admits(ANONYMOUS)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Audience("everyone"),
        lambda: Audience("permission"),
        lambda: Audience("roles"),
        lambda: Audience("anyone", permission="account.read"),
        lambda: NavEntry("money", "page.money", ANYONE),
        lambda: NavEntry("//evil.example", "page.money", ANYONE),
    ],
)
def test_malformed_audiences_and_entries_are_refused(build: object) -> None:
    with pytest.raises(ValueError):
        build()  # type: ignore[operator]


def test_the_navigation_follows_the_viewers_permissions() -> None:
    shell = Shell(pages=modules.nav_entries(), template_packages=modules.template_packages())
    anyone = [item["path"] for item in shell.nav(ANONYMOUS, "/explorer")]
    customer = [item["path"] for item in shell.nav(CUSTOMER, "/money/accounts/x")]
    officer = [item["path"] for item in shell.nav(OFFICER, "/staff")]
    assert "/signin" in anyone and "/money" not in anyone and "/explorer" in anyone
    assert customer[:2] == ["/money", "/pay"] and "/signin" not in customer
    assert "/staff" in officer and "/money" not in officer and "/pay" not in officer
    current = [i["path"] for i in shell.nav(CUSTOMER, "/money/accounts/x") if i["current"]]
    assert current == ["/money"]  # a page under an entry marks that entry
    assert shell.home_of(CUSTOMER) == "/money"
    assert shell.home_of(OFFICER) == "/staff"
    assert shell.home_of(ANONYMOUS) is None


def test_two_modules_declaring_one_path_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from zhijin.platform.module import DomainModule

    twin = DomainModule(name="twin", pages=(NavEntry("/money", "page.money", ANYONE),))
    monkeypatch.setattr(modules, "MODULES", (*modules.MODULES, twin))
    with pytest.raises(ValueError, match="/money"):
        modules.nav_entries()


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/money?x=1", "/money?x=1"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("money", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_only_local_paths_are_followed(target: str | None, expected: str) -> None:
    assert local_path(target) == expected


# -- the pages through the app -----------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("shell")
    settings = Settings(
        data=data, block_interval_ms=5, password_hashing="test", audit_anchor_interval_s=0
    )
    init_data_dir(settings, members=1)
    with TestClient(create_app(settings), base_url="https://testserver") as test_client:
        yield test_client


def _customer(client: TestClient) -> str:
    login = f"shell-{len(client.cookies)}-{id(client) % 997}-{_counter()}@example.com"
    identity_of(client).register(
        login=login, password=PASSWORD, kind="individual", source=RequestSource(ip="10.1.2.3")
    )
    return login


_COUNT = iter(range(1_000_000))


def _counter() -> int:
    return next(_COUNT)


def _sign_in(client: TestClient, login: str) -> None:
    answer = client.post(
        "/signin", data={"login": login, "password": PASSWORD}, headers={"HX-Request": "true"}
    )
    assert answer.status_code == 204, answer.text
    assert answer.headers["HX-Redirect"] in ("/", "/onboarding")  # no account: onboarding


def _csrf(client: TestClient) -> str:
    return next(v for k, v in client.cookies.items() if k.endswith("zhijin_csrf"))


def test_a_page_for_the_signed_in_sends_anyone_else_to_sign_in(client: TestClient) -> None:
    client.cookies.clear()
    answer = client.get("/money", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin?next=/money"
    htmx = client.get("/pay", headers={"HX-Request": "true"}, follow_redirects=False)
    assert htmx.headers["HX-Redirect"] == "/signin?next=/pay"
    assert client.get("/", follow_redirects=False).headers["location"] == "/signin"


def test_a_wrong_password_is_told_in_the_users_language(client: TestClient) -> None:
    client.cookies.clear()
    login = _customer(client)
    for lang, word in (("zh-CN", "登录"), ("en", "Sign in")):
        answer = client.post(
            "/signin",
            data={"login": login, "password": "wrong password 123"},
            headers={"HX-Request": "true", "Accept-Language": lang},
        )
        assert answer.status_code == 200
        assert 'role="alert"' in answer.text and word in answer.text
        assert "set-cookie" not in answer.headers


def test_a_staff_member_gets_the_translated_403_on_a_customers_page(client: TestClient) -> None:
    client.cookies.clear()
    headers = create_staff(client, roles={Role.AUDITOR})
    answer = client.get("/money", headers={**headers, "Accept-Language": "en"})
    assert answer.status_code == 403
    assert "<h1>Not allowed</h1>" in answer.text
    assert 'href="/money"' not in answer.text  # and the navigation does not offer it
    zh = client.get("/pay", headers={**headers, "Accept-Language": "zh-CN"})
    assert zh.status_code == 403 and "无权访问" in zh.text
    home = client.get("/staff", headers=headers)
    assert home.status_code == 200 and "审计控制台" in home.text


def test_a_form_without_the_sessions_csrf_token_changes_nothing(client: TestClient) -> None:
    client.cookies.clear()
    _sign_in(client, _customer(client))
    form = {"id": "web-csrf-1", "debit": "x", "credit": "y", "amount": "1"}
    refused = client.post("/pay", data=form, headers={"HX-Request": "true"})
    assert refused.status_code == 403
    assert 'id="problem"' in refused.text  # a part of the page saying so, not JSON
    api = client.post("/api/v1/identity/sessions/revoke-others")
    assert api.json()["code"] == "csrf_failed"  # the API keeps problem+json
    forged = client.post("/pay", data=form, headers={"X-CSRF-Token": "forged"})
    assert forged.status_code == 403
    cross = client.post(
        "/pay", data=form, headers={"X-CSRF-Token": _csrf(client), "Sec-Fetch-Site": "cross-site"}
    )
    assert cross.status_code == 403
    # With the token, the same form is judged on its merits: no account of hers is "x".
    judged = client.post("/pay", data=form, headers={"X-CSRF-Token": _csrf(client)})
    assert judged.status_code == 200 and 'id="pay-error"' in judged.text


def test_sign_out_ends_the_session(client: TestClient) -> None:
    client.cookies.clear()
    _sign_in(client, _customer(client))
    assert client.get("/money").status_code == 200
    out = client.post("/signout", headers={"X-CSRF-Token": _csrf(client), "HX-Request": "true"})
    assert out.headers["HX-Redirect"] == "/signin"
    assert client.get("/money", follow_redirects=False).status_code == 303


def test_every_page_renders_in_both_languages(client: TestClient) -> None:
    client.cookies.clear()
    for path in ("/signin", "/register", "/explorer", "/explorer/blocks/0", "/documents", "/docs"):
        for lang, html_lang in (("zh-CN", "zh-CN"), ("en", "en")):
            answer = client.get(path, headers={"Accept-Language": lang})
            assert answer.status_code == 200, (path, answer.text[:200])
            assert f'<html lang="{html_lang}"' in answer.text, path
    miss = client.get("/explorer/search", params={"q": "no-such-thing"})
    assert miss.status_code == 404 and "no-such-thing" in miss.text
    gone = client.get("/explorer/blocks/999999", headers={"Accept-Language": "en"})
    assert gone.status_code == 404 and 'id="problem"' in gone.text


def test_pages_say_how_to_install_missing_assets(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(assets.ASSETS_ENV, str(tmp_path))
    assert assets.check_assets()  # every package is missing there
    answer = client.get("/signin")
    assert answer.status_code == 503
    assert "make assets" in answer.text
    assert client.get("/api/v1/chain/head").status_code == 200  # the API does not need them


def test_the_allow_list_serves_only_listed_files_at_the_installed_version() -> None:
    url = assets.vendor_url("htmx")
    package, _, path = url.removeprefix("/static/vendor/").partition("/")
    found = assets.vendor_file(package, path)
    assert found is not None and found.is_file()
    assert assets.vendor_file(package.replace("@", "@0."), path) is None
    assert assets.vendor_file(package, "package.json") is None
    assert assets.vendor_file("left-pad@1.0.0", "index.js") is None
    shell = assets.shell_url("shell.js")
    digest = shell.split("/")[3]
    assert assets.shell_file(digest, "shell.js") is not None
    assert assets.shell_file("0" * 12, "shell.js") is None
    assert assets.shell_file(digest, "../assets.py") is None


# -- the "web" catalogs -------------------------------------------------------------------------


def _web_msgids() -> set[str]:
    """Every msgid the pages use, extracted as `make catalogs` does (babel-web.cfg)."""
    method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    keywords = {
        "_": None,
        "ngettext": (1, 2),
        "web_msgid": None,
        "web_text": (2,),
        "NavEntry": (2,),
    }
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(PACKAGE), method_map=method_map, keywords=keywords
    ):
        found.update([message] if isinstance(message, str) else [m for m in message if m])
    return found


def test_every_web_msgid_is_translated_in_every_locale() -> None:
    msgids = _web_msgids()
    assert {"page.money", "pay.paid", "shell.large_text", "staff.console_auditor"} <= msgids
    for locale in i18n.LOCALES:
        catalog = i18n.translations(locale, "web")._catalog
        missing = sorted(m for m in msgids if not catalog.get(m))
        assert missing == [], f"{locale}: {missing}"
        unused = sorted(k for k in catalog if k and k not in msgids)
        assert unused == [], f"{locale}: msgids no page uses: {unused}"


def test_the_two_catalogs_name_the_same_params() -> None:
    params = re.compile(r"\{(\w+)\}")
    zh = i18n.translations("zh_CN", "web")._catalog
    en = i18n.translations("en", "web")._catalog
    for msgid in _web_msgids():
        assert set(params.findall(zh[msgid])) == set(params.findall(en[msgid])), msgid
