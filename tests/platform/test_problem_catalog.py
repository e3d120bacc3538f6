"""Every problem code the code base can raise has a template in every locale, and API problems
answer in the request's language (zhijin/platform/problems.py, zhijin/platform/catalogs.py)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from zhijin.node.app import create_app
from zhijin.node.runtime import init_data_dir
from zhijin.node.settings import Settings
from zhijin.platform import i18n
from zhijin.platform.catalogs import PACKAGE_DIR, CodeScan, extract_messages, scan_codes
from zhijin.platform.problems import (
    VALIDATION_MESSAGES,
    VALIDATION_PREFIX,
    problem_detail,
    template_params,
)

from .users import fresh_login

REPO = PACKAGE_DIR.parent


@pytest.fixture(scope="module")
def scan() -> CodeScan:
    return scan_codes()


def test_the_scan_finds_each_kind_of_raise_site(scan: CodeScan) -> None:
    """The walk below can only fail if the scan is not blind: one code of each kind of site."""
    for code in (
        "invalid_credentials",  # an error class's `code = ...`
        "permission_denied",  # a literal code passed to an error class
        "exceeds_credits",  # a member of payments' Code enum
        "unknown_contract",  # a failed tx's outcome (TxOutcome(code=...))
        "transfer_id_taken",  # a module constant (service.TRANSFER_ID_TAKEN)
        "body_too_large",  # Starlette's own HTTP errors (_HTTP_CODES)
        "invalid_request",  # an edge problem (EdgeProblem(422, "invalid_request", ...))
        "revoked",  # identity's credential status
    ):
        assert code in scan.sites, code
    assert "ok" not in scan.sites
    assert len(scan.sites) > 300


def test_the_scan_sees_a_new_code_and_the_details_it_carries(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "errors.py").write_text(
        "class ZhijinError(Exception):\n    code = 'error'\n"
        "class Refused(ZhijinError):\n    code = 'refused'\n"
        "LIMIT_CODE = 'over_limit'\n"
    )
    (package / "service.py").write_text(
        "def go(n):\n"
        "    if n > 1:\n        raise Refused('too_big', 'big', size=n, limit=1)\n"
        "    if n > 0:\n        raise Refused('too_big', 'big', size=n)\n"
        "    raise Refused(LIMIT_CODE, 'over')\n"
        "def later(code):\n    raise Refused(code, 'passed through')\n"
    )
    found = scan_codes(package)
    assert set(found.sites) == {"error", "refused", "too_big", "over_limit"}
    # A template may name only what every raise of its code passes.
    assert found.params_carried("too_big") == frozenset({"size"})
    assert found.params_carried("refused") is None
    assert found.passthrough == ["pkg/service.py:8"]


def _sample(name: str) -> object:
    """A value of the kind a detail of this name holds, so the real renderer runs."""
    if name.endswith(("_ms", "_minor", "_s")) or name in {"height", "size", "limit"}:
        return 1_500
    if name in {"reasons", "errors", "projections"}:
        return ["rule: a reason"]
    return "sample"


@pytest.mark.parametrize("locale", i18n.LOCALES)
def test_every_code_has_a_template_that_names_only_what_its_raises_pass(
    scan: CodeScan, locale: str
) -> None:
    missing = [code for code in scan.sites if not i18n.has_message(locale, f"problem.{code}")]
    assert not missing, f"{locale}: no problem template for {sorted(missing)} (docs/i18n.md)"
    for code in scan.sites:
        carried = scan.params_carried(code) or frozenset()
        details = {name: _sample(name) for name in carried}
        # Strict mode (tests/conftest.py): a name the template uses and the raise lacks raises.
        detail = problem_detail(locale, code, details, diagnostic="unused")
        assert detail and "{" not in detail, (code, detail)


def test_templates_get_money_retry_and_reasons_in_the_locale() -> None:
    details: dict[str, Any] = {
        "available_minor": 3_674_737,
        "currency": "CNY",
        "retry_after_ms": 1_001,
        "reasons": ["new_payee: payments above 1,000.00 CNY to a new payee"],
    }
    zh = template_params("zh_CN", details)
    assert zh["available"] == "¥36,747.37" and zh["retry_after_s"] == 2
    assert zh["reasons"] == "payments above 1,000.00 CNY to a new payee"
    assert template_params("en", details)["available"] == "CN¥36,747.37"
    localized = {**details, "reasons_by_locale": {"zh_CN": ["甲", "乙"], "en": ["a", "b"]}}
    assert template_params("zh_CN", localized)["reasons"] == "甲；乙"
    assert template_params("en", localized)["reasons"] == "a; b"


def test_a_template_naming_a_detail_the_raise_lacks_fails_in_strict_mode() -> None:
    with pytest.raises(KeyError, match="retry_after_s"):
        problem_detail("en", "rate_limited", {}, diagnostic="too many")
    i18n.set_strict(False)
    try:
        assert problem_detail("en", "rate_limited", {}, diagnostic="too many") == "too many"
        assert problem_detail("en", "no_such_code", {}, diagnostic="raw") == "raw"
    finally:
        i18n.set_strict(True)
    with pytest.raises(i18n.MissingTranslation):
        problem_detail("zh_CN", "no_such_code", {}, diagnostic="raw")


def test_the_catalogs_hold_exactly_what_make_catalogs_extracts() -> None:
    """A new gettext call, N_ mark or problem code without `make catalogs` fails here, and so
    does a catalog entry nothing in the code uses any more."""
    with (REPO / "babel-messages.cfg").open(encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config)
    assert method_map == [("**.py", "zhijin.platform.catalogs.extract_messages")]
    keywords = {"gettext": (2,), "N_": None, "_cli_text": None}  # as the Makefile's -k
    extracted = {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            PACKAGE_DIR, [("**.py", extract_messages)], options_map, keywords
        )
    }
    with i18n.catalog_path("zh_CN", "messages").open("rb") as source:
        in_catalog = {m.id for m in read_po(source) if m.id}
    assert extracted - in_catalog == set(), "run `make catalogs` and translate the new entries"
    assert in_catalog - extracted == set(), "run `make catalogs`: these are used no more"


def test_validation_types_are_marked_for_extraction() -> None:
    tree = ast.parse((PACKAGE_DIR / "platform" / "problems.py").read_text(encoding="utf-8"))
    assert any(isinstance(node, ast.Tuple) for node in ast.walk(tree))
    for msgid in VALIDATION_MESSAGES:
        assert msgid.startswith(VALIDATION_PREFIX)
        for locale in i18n.LOCALES:
            assert i18n.has_message(locale, msgid), (locale, msgid)


# -- the API answers in the request's language ----------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("i18n-api")
    settings = Settings(data=data, block_interval_ms=5, password_hashing="test")
    init_data_dir(settings, members=1)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def _login_failure(client: TestClient, **headers: str) -> dict[str, Any]:
    answer = client.post(
        "/api/v1/identity/login",
        json={"login": fresh_login("nobody"), "password": "wrong password 123"},
        headers=headers,
    )
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = answer.json()
    assert body["code"] == "invalid_credentials"
    return body


def test_a_problem_speaks_chinese_by_default_and_english_when_asked(client: TestClient) -> None:
    assert _login_failure(client)["detail"] == "登录名、密码或验证码不正确。"
    assert _login_failure(client, **{"Accept-Language": "zh-CN,zh;q=0.9"})["detail"] == (
        "登录名、密码或验证码不正确。"
    )
    english = _login_failure(client, **{"Accept-Language": "en-US,en;q=0.9"})
    assert english["detail"] == "The login name, password or code is not correct."
    cookie = {"Cookie": f"{i18n.LANG_COOKIE}=en", "Accept-Language": "zh-CN"}
    assert _login_failure(client, **cookie)["detail"].startswith("The login name")


def test_schema_errors_are_translated_per_field(client: TestClient) -> None:
    for language, sentence, field_message in (
        ("zh-CN", "请求不符合格式要求。", "必填项"),
        ("en", "The request does not match its schema.", "Field required"),
    ):
        answer = client.post(
            "/api/v1/identity/login",
            json={"login": "someone"},
            headers={"Accept-Language": language},
        )
        assert answer.status_code == 422, answer.text
        body = answer.json()
        assert body["code"] == "invalid_request" and body["detail"] == sentence
        (error,) = body["errors"]
        assert error == {"loc": ["body", "password"], "msg": field_message, "type": "missing"}
        assert body["diagnostic"] == "the request does not match its schema"


def test_starlette_errors_are_translated_too(client: TestClient) -> None:
    answer = client.get("/api/v1/no/such/route", headers={"Accept-Language": "en"})
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found" and answer.json()["detail"] == "Not found."
    assert client.get("/api/v1/no/such/route").json()["detail"] == "未找到。"
