"""Every JSON operation of the API declares what it returns (STYLE.md: "every route says what it
returns"), so the OpenAPI is a contract clients can generate code from; a route that streams or
returns a file names its media type instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from zhijin.node.app import create_app
from zhijin.node.settings import Settings

SUCCESS = ("200", "201", "202")
JSON = "application/json"


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data: Path = tmp_path_factory.mktemp("openapi")
    document: dict[str, Any] = create_app(Settings(data=data)).openapi()
    return document


def _is_typed(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    """A schema that says something: a model (a $ref to an object with properties), a union
    of typed schemas, or a list of them; not {} and not a bare "object" of anything."""
    if "$ref" in schema:
        target = components[schema["$ref"].rsplit("/", 1)[-1]]
        return bool(target.get("properties")) or _is_typed(target, components)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return all(_is_typed(s, components) for s in schema[key])
    if schema.get("type") == "array":
        return _is_typed(schema.get("items", {}), components)
    return bool(schema.get("properties"))


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    ]


def _untyped(spec: dict[str, Any]) -> set[tuple[str, str]]:
    components = spec.get("components", {}).get("schemas", {})
    found = set()
    for method, path, operation in _operations(spec):
        for status in SUCCESS:
            content = operation["responses"].get(status, {}).get("content")
            if content is None:
                continue
            schema = content.get(JSON, {}).get("schema") if JSON in content else None
            if schema is not None and not _is_typed(schema, components):
                found.add((method, path))
    return found


def test_every_json_operation_declares_a_response_model(spec: dict[str, Any]) -> None:
    missing = _untyped(spec)
    assert not missing, f"routes without a response model: {sorted(missing)}"


def test_every_success_response_names_its_media_type(spec: dict[str, Any]) -> None:
    """A file or a stream (camt.053, pacs.008, server-sent events) says what it is."""
    bare = [
        (method, path, status)
        for method, path, operation in _operations(spec)
        for status in SUCCESS
        if status in operation["responses"] and not operation["responses"][status].get("content")
    ]
    assert not bare, bare
    media = {
        (method, path): set(operation["responses"]["200"]["content"])
        for method, path, operation in _operations(spec)
        if "200" in operation["responses"]
    }
    assert media[("GET", "/api/v1/accounts/{account_id}/camt053")] == {"application/xml"}
    assert media[("GET", "/api/v1/transfers/{transfer_id}/pacs008")] == {"application/xml"}
    assert media[("GET", "/api/v1/events")] == {"text/event-stream"}


def test_the_check_catches_an_untyped_route() -> None:
    """The walk itself can fail: a dict-returning route without a model is reported."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/open")
    def open_ended() -> dict[str, Any]:
        return {}

    @app.get("/nothing")
    def nothing():  # type: ignore[no-untyped-def]
        return {}

    assert _untyped(app.openapi()) == {("GET", "/open"), ("GET", "/nothing")}
