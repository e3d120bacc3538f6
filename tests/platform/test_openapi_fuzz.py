"""Schemathesis against the app's own OpenAPI: no request, however odd, gets a 5xx.

Every operation is called with cases generated from its schema, both fitting it (positive) and
not (negative), as three callers: anonymous, a signed-in customer (an API token) and the
node's operator (its bearer token).  Generation is derandomised and has no example database,
so a run is the same on every machine; each operation gets a bounded number of examples so
the whole test stays near a minute on two cores.  The server is a real uvicorn on loopback
(tests/platform/live_server.py), so the HTTP edge runs exactly as in production.

Every 5xx is collected (not only the first), and the test fails listing each with a curl line
to reproduce it.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup

from zhijin.identity.service import RequestSource

from .live_server import LiveServer

pytestmark = pytest.mark.slow

# Per operation, caller and mode.  About 60 operations x 3 callers x (6 + 4) examples;
# ZHIJIN_FUZZ_SCALE=10 runs ten times as many (a deeper search, by hand).
SCALE = int(os.environ.get("ZHIJIN_FUZZ_SCALE", "1"))
EXAMPLES = {GenerationMode.POSITIVE: 6 * SCALE, GenerationMode.NEGATIVE: 4 * SCALE}
# The live event stream never ends on its own: it is tested in tests/platform/test_events.py.
SKIPPED_PATHS = frozenset({"/api/v1/events"})
# Signing out would leave the customer's remaining cases anonymous (tests/identity covers it).
SIGNED_IN_SKIPPED_PATHS = frozenset({"/api/v1/identity/logout"})
CALL_TIMEOUT_S = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("fuzz"))
    try:
        yield live
    finally:
        live.stop()


def _customer_headers(server: LiveServer) -> dict[str, str]:
    identity = server.platform.identity
    source = RequestSource(ip="fuzz-customer")
    identity.register(
        login="fuzz-customer", password="Hypothesis-Kettle-4417", kind="individual", source=source
    )
    issued = identity.login(login="fuzz-customer", password="Hypothesis-Kettle-4417", source=source)
    token = identity.create_api_token(principal=issued.principal, name="fuzz")
    return {"Authorization": f"Bearer {token.token}"}


def _headers(server: LiveServer, caller: str) -> dict[str, str]:
    if caller == "operator":
        return {"Authorization": f"Bearer {server.operator_token}"}
    if caller == "customer":
        return _customer_headers(server)
    return {}


def _integer_bounds(parameters: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    """(location, name, maximum) of each bounded integer path or query parameter."""
    bounds = []
    for parameter in parameters:
        schema = parameter["schema"]
        for option in schema.get("anyOf", [schema]):
            if option.get("type") == "integer" and "maximum" in option:
                bounds.append((parameter["in"], parameter["name"], option["maximum"]))
    return bounds


def _at_bounds(
    operation: Any, case: schemathesis.Case, bounds: list[tuple[str, str, int]]
) -> Iterator[schemathesis.Case]:
    """Copies of `case` with one integer parameter at its maximum, then one past it: random
    generation seldom lands there, and past it is where a database column overflows."""
    for location, name, maximum in bounds:
        for value in (maximum, maximum + 1):
            path_parameters = dict(case.path_parameters or {})
            query = dict(case.query or {})
            (path_parameters if location == "path" else query)[name] = value
            yield operation.Case(
                path_parameters=path_parameters,
                query=query,
                headers=case.headers,
                body=case.body,
                media_type=case.media_type,
            )


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    *,
    server: LiveServer,
    headers: dict[str, str],
    statuses: Counter[str] | None = None,
    bounds: list[tuple[str, str, int]] | None = None,
) -> tuple[int, list[str]]:
    """Run one operation's examples; returns (examples sent, 5xx failures) and counts the
    answers by status class in `statuses`.  The first positive case is also sent with each
    integer parameter in `bounds` at its edge."""
    sent = 0
    failures: list[str] = []
    statuses = Counter() if statuses is None else statuses
    pending_bounds = list(bounds or [])

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES[mode],
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        send(case)
        if mode is GenerationMode.POSITIVE and pending_bounds:
            for edge in _at_bounds(operation, case, pending_bounds):
                send(edge)
            pending_bounds.clear()

    def send(case: schemathesis.Case) -> None:
        nonlocal sent
        sent += 1
        try:
            response = case.call_and_validate(
                base_url=server.base,
                headers=headers,
                checks=[not_a_server_error],
                timeout=CALL_TIMEOUT_S,
            )
        except (FailureGroup, OSError) as exc:  # a 5xx, or a dropped connection: collect it
            statuses["5xx"] += 1
            failures.append(f"{operation.label} ({mode}): {exc}")
            return
        statuses[f"{response.status_code // 100}xx"] += 1

    try:
        run()
    except Unsatisfiable:
        # Nothing can break the schema of an operation without parameters or body: its
        # negative mode has no cases, and its positive mode covers it.
        assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no positive case"
    return sent, failures


@pytest.mark.parametrize("caller", ["anonymous", "customer", "operator"])
def test_no_request_gets_a_server_error(server: LiveServer, caller: str) -> None:
    schema = schemathesis.openapi.from_url(f"{server.base}/openapi.json")
    headers = _headers(server, caller)
    started = time.monotonic()
    total = 0
    failures: list[str] = []
    statuses: Counter[str] = Counter()
    paths = schema.raw_schema["paths"]
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in SKIPPED_PATHS or (
            headers and operation.path in SIGNED_IN_SKIPPED_PATHS
        ):
            continue
        parameters = paths[operation.path][operation.method.lower()].get("parameters", [])
        for mode in EXAMPLES:
            sent, found = _fuzz(
                operation,
                mode,
                server=server,
                headers=headers,
                statuses=statuses,
                bounds=_integer_bounds(parameters),
            )
            total += sent
            failures.extend(found)
    elapsed_s = time.monotonic() - started
    answers = ", ".join(f"{name} {count}" for name, count in sorted(statuses.items()))
    print(f"schemathesis as {caller}: {total} examples in {elapsed_s:.1f} s ({answers})")
    assert total > 0
    assert failures == [], "\n\n".join(failures)


def test_the_fuzzer_sees_a_server_error(server: LiveServer) -> None:
    """The harness can fail: a case whose call answers 500 is reported, not swallowed."""
    schema = schemathesis.openapi.from_dict(
        {
            "openapi": "3.1.0",
            "info": {"title": "probe", "version": "1"},
            "paths": {"/api/v1/chain/head": {"get": {"responses": {"200": {}}}}},
        }
    )
    operation = next(iter(schema.get_all_operations())).ok()
    original = server.platform.status

    def broken() -> dict[str, Any]:
        raise RuntimeError("probe")

    server.platform.status = broken  # type: ignore[method-assign]
    try:
        sent, failures = _fuzz(operation, GenerationMode.POSITIVE, server=server, headers={})
    finally:
        server.platform.status = original  # type: ignore[method-assign]
    assert sent >= 1 and failures and "500" in failures[0]
