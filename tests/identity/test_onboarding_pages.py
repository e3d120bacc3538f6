"""The onboarding pages without a browser: sign-in leads a new customer there, each step's
per-field errors in both languages (a bad resident ID, missing fields, a forged document),
the step the page shows from what is stored, and another customer's request refused."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.platform.users import identity_of
from zhijin.identity.rbac import Principal, Role
from zhijin.identity.service import RequestSource
from zhijin.node.app import create_app
from zhijin.node.runtime import init_data_dir
from zhijin.node.settings import Settings

PASSWORD = "correct horse battery staple"
RESIDENT_ID = "11010119950307123X"  # valid check digit
BAD_RESIDENT_ID = "110101199503071230"  # wrong check digit
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
HX = {"HX-Request": "true"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("onboarding-pages")
    settings = Settings(
        data=data, block_interval_ms=5, password_hashing="test", audit_anchor_interval_s=0
    )
    init_data_dir(settings, members=1)
    with TestClient(create_app(settings), base_url="https://testserver") as test_client:
        yield test_client


def _csrf(client: TestClient) -> str:
    return next(v for k, v in client.cookies.items() if k.endswith("zhijin_csrf"))


def _new_user(client: TestClient, kind: str = "individual") -> str:
    login = f"onb-{secrets.token_hex(4)}@example.com"
    ip = f"10.7.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    identity_of(client).register(
        login=login, password=PASSWORD, kind=kind, source=RequestSource(ip=ip)
    )
    return login


def _sign_in(client: TestClient, login: str) -> str:
    client.cookies.clear()
    answer = client.post("/signin", data={"login": login, "password": PASSWORD}, headers=HX)
    assert answer.status_code == 204, answer.text
    return answer.headers["HX-Redirect"]


def _post(client: TestClient, path: str, lang: str = "zh-CN", **kwargs: object) -> object:
    headers = {**HX, "X-CSRF-Token": _csrf(client), "Accept-Language": lang}
    return client.post(path, headers=headers, **kwargs)  # type: ignore[arg-type]


def _person(client: TestClient, lang: str = "zh-CN", **fields: str) -> object:
    data = {"name": "王小明", "resident_id": RESIDENT_ID, "mobile": "13800138000", **fields}
    return _post(client, "/onboarding/person", lang, data=data)


def test_a_new_customer_is_led_to_onboarding_and_a_funded_one_is_not(client: TestClient) -> None:
    assert _sign_in(client, _new_user(client)) == "/onboarding"
    page = client.get("/onboarding", headers={"Accept-Language": "zh-CN"})
    assert page.status_code == 200
    assert 'id="person-form"' in page.text and "第一步" in page.text
    # An explicit `next` is kept: only the default home is replaced.
    client.cookies.clear()
    login = _new_user(client)
    answer = client.post(
        "/signin",
        data={"login": login, "password": PASSWORD, "next": "/security"},
        headers=HX,
    )
    assert answer.headers["HX-Redirect"] == "/security"


def test_a_bad_resident_id_and_missing_fields_are_shown_beside_each_field(
    client: TestClient,
) -> None:
    _sign_in(client, _new_user(client))
    zh = _person(client, "zh-CN", resident_id=BAD_RESIDENT_ID, mobile="")
    assert zh.status_code == 200  # type: ignore[attr-defined]
    text = zh.text  # type: ignore[attr-defined]
    assert 'id="e-resident_id"' in text and "这不是有效的居民身份证号码" in text
    assert 'id="e-mobile"' in text and "这不是有效的中国大陆手机号码" in text
    assert 'id="e-name"' not in text  # the right field has no error
    assert 'aria-invalid="true"' in text and f'value="{BAD_RESIDENT_ID}"' in text
    en = _person(client, "en", name="", resident_id="not a number")
    text = en.text  # type: ignore[attr-defined]
    assert 'id="e-name"' in text and 'id="e-resident_id"' in text
    assert "not a valid resident identity card number" in text.lower()
    assert "invalid_resident_id" not in text  # never a bare machine code
    # Nothing was stored: the page is still at step 1.
    assert 'id="person-form"' in client.get("/onboarding").text
    # A value far too long is refused at the edge, not stored.
    huge = _person(client, "en", name="王" * 300)
    assert huge.status_code == 422  # type: ignore[attr-defined]


def test_the_kyc_step_refuses_a_missing_or_forged_document(client: TestClient) -> None:
    _sign_in(client, _new_user(client))
    assert _person(client).status_code == 204  # type: ignore[attr-defined]
    assert 'id="kyc-form"' in client.get("/onboarding").text
    missing = _post(client, "/onboarding/kyc", "en", data={})
    assert 'id="e-id_document"' in missing.text  # type: ignore[attr-defined]
    assert "Choose a file" in missing.text  # type: ignore[attr-defined]
    # Says it is a PNG, is not: refused by its first bytes.
    forged = _post(
        client,
        "/onboarding/kyc",
        "zh-CN",
        files={"id_document": ("id.png", b"MZ\x90\x00 not an image", "image/png")},
    )
    assert "请上传 JPEG、PNG 图片或 PDF 文件" in forged.text  # type: ignore[attr-defined]
    assert 'id="kyc-form"' in client.get("/onboarding").text  # still at step 2
    good = _post(client, "/onboarding/kyc", files={"id_document": ("id.png", PNG, "image/png")})
    assert good.status_code == 204  # type: ignore[attr-defined]
    page = client.get("/onboarding", headers={"Accept-Language": "en"}).text
    assert 'id="account-form"' in page


def test_an_sme_owner_gives_the_company_and_a_bad_uscc_is_shown(client: TestClient) -> None:
    _sign_in(client, _new_user(client, kind="sme_owner"))
    assert _person(client).status_code == 204  # type: ignore[attr-defined]
    assert 'name="uscc"' in client.get("/onboarding").text
    bad = _post(
        client,
        "/onboarding/kyc",
        "en",
        data={"company_name": "", "uscc": "91110000XXXXXXXX"},
        files={"id_document": ("id.png", PNG, "image/png")},
    )
    text = bad.text  # type: ignore[attr-defined]
    assert 'id="e-uscc"' in text and 'id="e-company_name"' in text and 'id="e-licence"' in text
    assert "unified social credit code" in text.lower()


def test_the_account_step_then_the_status_and_another_customers_request_refused(
    client: TestClient,
) -> None:
    login = _new_user(client)
    _sign_in(client, login)
    _person(client)
    _post(client, "/onboarding/kyc", files={"id_document": ("id.png", PNG, "image/png")})
    wrong = _post(client, "/onboarding/account", "en", data={"currency": "XYZ1"})
    assert 'id="e-currency"' in wrong.text  # type: ignore[attr-defined]
    asked = _post(client, "/onboarding/account", data={"currency": "CNY", "purpose": "daily"})
    assert asked.status_code == 204  # type: ignore[attr-defined]
    status = client.get("/onboarding", headers={"Accept-Language": "zh-CN"}).text
    assert 'id="requests"' in status and "等待银行审核您的实名认证" in status
    user = identity_of(client).store.user_by_login(login)
    assert user is not None
    own = client.get(f"/onboarding/requests/{user.id}/customer-cny")
    assert own.status_code == 200 and "CNY" in own.text
    # Someone else signs in and tries the first customer's request: refused, translated.
    _sign_in(client, _new_user(client))
    other = client.get(
        f"/onboarding/requests/{user.id}/customer-cny", headers={"Accept-Language": "en"}
    )
    assert other.status_code == 403
    assert "request-facts" not in other.text  # nothing of the request is shown


def test_staff_are_never_led_to_onboarding(client: TestClient) -> None:
    identity = identity_of(client)
    member = client.app.state.platform.node.key.did  # type: ignore[attr-defined]
    admin = identity.bootstrap_admin(
        login=f"adm-{secrets.token_hex(3)}", password=PASSWORD, member_did=member
    )
    principal = Principal(admin.id, frozenset({Role.ADMIN}), member)
    from zhijin.identity.web.onboarding import needs_onboarding

    class _Req:
        app = client.app

    assert needs_onboarding(_Req(), principal) is False  # type: ignore[arg-type]
