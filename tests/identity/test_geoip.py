"""IP geolocation from a MaxMind-format City database, and the step-up rules it feeds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from tests.platform.users import new_password
from zhijin.identity.geoip import GeoipError, GeoLocator
from zhijin.identity.stepup import GeoPoint
from zhijin.node.app import create_app
from zhijin.node.runtime import init_data_dir
from zhijin.node.settings import Settings

# Public addresses: only looked up in the file below, never sent anything.
BEIJING_IP, NEW_YORK_IP, COARSE_IP, ABSENT_IP = "1.2.3.4", "8.8.8.8", "9.9.9.9", "4.4.4.4"


def _write(path: Path, database_type: str, records: dict[str, dict[str, Any]]) -> Path:
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type=database_type)
    for network, record in records.items():
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path


def _city(latitude: float, longitude: float, accuracy_km: int) -> dict[str, Any]:
    return {
        "city": {"names": {"en": "somewhere"}},
        "location": {
            "latitude": latitude,
            "longitude": longitude,
            "accuracy_radius": accuracy_km,
        },
    }


@pytest.fixture
def city_db(tmp_path: Path) -> Path:
    return _write(
        tmp_path / "city.mmdb",
        "GeoLite2-City",
        {
            "1.2.3.0/24": _city(39.9042, 116.4074, 20),  # Beijing
            "8.8.8.0/24": _city(40.7128, -74.0060, 20),  # New York
            "9.9.9.0/24": _city(35.0, 105.0, 1000),  # a country's centroid
        },
    )


def test_addresses_are_located_to_micro_degrees_when_precise_enough(city_db: Path) -> None:
    locator = GeoLocator(city_db)
    try:
        assert locator.locate(BEIJING_IP) == GeoPoint(39_904_200, 116_407_400)
        assert locator.locate("::ffff:" + BEIJING_IP) == GeoPoint(39_904_200, 116_407_400)
        assert locator.locate(NEW_YORK_IP) == GeoPoint(40_712_800, -74_006_000)
        assert locator.locate(COARSE_IP) is None  # 1,000 km accuracy: not a location
        assert locator.locate(ABSENT_IP) is None
        for not_global in ("10.0.0.1", "127.0.0.1", "::1", "203.0.113.9", "testclient", ""):
            assert locator.locate(not_global) is None, not_global
    finally:
        locator.close()


def test_only_a_readable_city_database_is_accepted(tmp_path: Path) -> None:
    country = _write(tmp_path / "country.mmdb", "GeoLite2-Country", {"1.2.3.0/24": {}})
    garbage = tmp_path / "garbage.mmdb"
    garbage.write_bytes(b"not a database" * 100)
    for path, says in (
        (country, "need a City database"),
        (garbage, "cannot read"),
        (tmp_path / "missing.mmdb", "cannot read"),
    ):
        with pytest.raises(GeoipError) as refused:
            GeoLocator(path)
        assert refused.value.code == "geoip_database_invalid"
        assert says in refused.value.message


@pytest.fixture
def app_with_geoip(tmp_path: Path, city_db: Path) -> Iterator[Any]:
    settings = Settings(data=tmp_path / "var", password_hashing="test", geoip_db=city_db)
    init_data_dir(settings, members=1)
    app = create_app(settings)
    with TestClient(app, base_url="https://testserver", client=(BEIJING_IP, 50_000)) as client:
        yield app, client


def test_a_login_from_the_other_side_of_the_world_a_minute_later_is_refused(
    app_with_geoip: Any,
) -> None:
    app, beijing = app_with_geoip
    login, password = f"traveller-{time.monotonic_ns()}", new_password()
    registered = beijing.post(
        "/api/v1/identity/register",
        json={"login": login, "password": password, "kind": "individual"},
    )
    assert registered.status_code == 201, registered.text
    first = beijing.post("/api/v1/identity/login", json={"login": login, "password": password})
    assert first.status_code == 200, first.text
    user = app.state.identity.store.user_by_login(login)
    assert (user.last_lat_e6, user.last_lon_e6) == (39_904_200, 116_407_400)
    # The same app, reached from New York (the lifespan already runs under the first client).
    new_york = TestClient(app, base_url="https://testserver", client=(NEW_YORK_IP, 50_000))
    refused = new_york.post("/api/v1/identity/login", json={"login": login, "password": password})
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "denied_by_policy"
    assert any(r.startswith("impossible_travel") for r in refused.json()["reasons"])
    # From an address the database places nowhere, the location rules stay silent.
    elsewhere = TestClient(app, base_url="https://testserver", client=(ABSENT_IP, 50_000))
    allowed = elsewhere.post("/api/v1/identity/login", json={"login": login, "password": password})
    assert allowed.status_code == 200, allowed.text


def test_a_payment_from_the_other_side_of_the_world_after_sign_in_is_refused(
    app_with_geoip: Any, tmp_path: Path
) -> None:
    from tests.platform.users import CSRF_HEADER

    app, beijing = app_with_geoip
    login, password = f"payer-{time.monotonic_ns()}", new_password()
    assert beijing.post(
        "/api/v1/identity/register",
        json={"login": login, "password": password, "kind": "individual"},
    ).is_success
    session = beijing.post("/api/v1/identity/login", json={"login": login, "password": password})
    assert session.status_code == 200, session.text
    did = session.json()["user"]["did"]
    operator = {"Authorization": "Bearer " + (tmp_path / "var/operator-token").read_text().strip()}
    member = app.state.platform.node.key.did
    for body in (
        {"id": "bank", "owner": member, "currency": "CNY", "kind": "settlement"},
        {"id": "mine", "owner": did, "currency": "CNY", "kind": "customer"},
        {"id": "shop", "owner": member, "currency": "CNY", "kind": "merchant"},
    ):
        assert beijing.post("/api/v1/accounts", json=body, headers=operator).is_success
    fund = {"id": "f", "debit_account_id": "bank", "credit_account_id": "mine", "amount": 10**7}
    assert beijing.post("/api/v1/transfers", json={**fund, "currency": "CNY"}, headers=operator)
    pay = {"debit_account_id": "mine", "credit_account_id": "shop", "currency": "CNY"}
    cookie = "; ".join(f"{k}={v}" for k, v in beijing.cookies.items())
    headers = {CSRF_HEADER: session.json()["csrf_token"], "Cookie": cookie}
    # Paying the shop from where she signed in is fine (after a first small payment to it).
    first = beijing.post(
        "/api/v1/transfers", json={**pay, "id": "p-1", "amount": 500}, headers=headers
    )
    assert first.status_code == 200, first.text
    # The same session, a minute later, from New York: refused, whatever the amount rules say.
    new_york = TestClient(app, base_url="https://testserver", client=(NEW_YORK_IP, 50_000))
    stolen = new_york.post(
        "/api/v1/transfers", json={**pay, "id": "p-2", "amount": 200_000}, headers=headers
    )
    assert stolen.status_code == 403, stolen.text
    assert any(r.startswith("impossible_travel") for r in stolen.json()["reasons"])
    balance = beijing.get("/api/v1/accounts/mine", headers=operator).json()["balance_posted"]
    assert balance == 10**7 - 500
