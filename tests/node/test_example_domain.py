"""The template of docs/adding-a-domain.md, proven: the guestbook (tests/node/example_domain)
joins a node by one line in MODULES and nothing else, and every part the template names works
through the root: its contract in genesis, its route (with its body limit and response model),
its projection, its invariant and its projection verifier (`zhijin projections verify`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, update
from typer.testing import CliRunner

from tests.node import example_domain
from tests.node.example_domain import invariants, limits
from tests.node.example_domain.codes import MESSAGES, SIGN_PRECEDENCE, Code, GuestbookError
from tests.node.example_domain.contract import GUESTBOOK_CONTRACT
from tests.node.example_domain.projection import entries_table
from tests.node.example_domain.records import Entry, keys
from tests.node.example_domain.requests import parse_sign
from tests.payments.helpers import BANK, Call, Chain
from tests.platform.users import create_staff, me, register_and_login
from zhijin.chain.codec import canonical, decode
from zhijin.chain.memory import MemoryState
from zhijin.chain.store import ChainStore
from zhijin.cli import app as cli_app
from zhijin.identity import Role
from zhijin.node import modules
from zhijin.node.app import create_app
from zhijin.node.runtime import Platform, init_data_dir
from zhijin.node.settings import Settings
from zhijin.platform.projection_verify import Mismatch, verify_projections

GUESTBOOK = example_domain.MODULE
ENTRIES = "/api/v1/guestbook/entries"


@pytest.fixture
def with_guestbook(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one line a new domain adds to zhijin/node/modules.py."""
    monkeypatch.setattr(modules, "MODULES", (*modules.MODULES, GUESTBOOK))


@dataclass(frozen=True, slots=True)
class Node:
    platform: Platform
    client: TestClient
    token: str


@pytest.fixture
def node(with_guestbook: None, tmp_path: Path) -> Iterator[Node]:
    settings = Settings(
        data=tmp_path,
        block_interval_ms=5,
        password_hashing="test",
        projector="thread",  # a projector process would import the MODULES without the line
        audit_anchor_interval_s=0,
    )
    genesis = init_data_dir(settings, members=1)
    assert genesis.contracts["guestbook"] == "1"  # in force from genesis on a new chain
    token = (tmp_path / "operator-token").read_text().strip()
    with Platform(settings) as platform, TestClient(create_app(platform=platform)) as client:
        yield Node(platform, client, token)


def _sign(node: Node, body: Any) -> Any:
    return node.client.post(ENTRIES, json=body, headers={"Authorization": f"Bearer {node.token}"})


@dataclass(frozen=True, slots=True)
class _Committed:
    """Committed chain state as a StateReader."""

    store: ChainStore
    conn: Connection

    def get(self, key: str) -> Any | None:
        return self.store.state_get(self.conn, key)

    def scan(self, prefix: str, start_after: str, limit: int) -> list[tuple[str, Any]]:
        return self.store.state_scan(self.conn, prefix, start_after, limit)


def test_the_route_writes_through_the_contract_and_reads_the_projection(node: Node) -> None:
    first = _sign(node, {"id": "e-1", "message": "你好，智金"})
    assert first.status_code == 200, first.text
    entry = first.json()["entry"]
    assert first.json()["exists"] is False
    assert entry["author"] == node.platform.node.key.did and entry["message"] == "你好，智金"
    again = _sign(node, {"id": "e-1", "message": "你好，智金"})
    assert again.json() == {"entry": entry, "exists": True}
    listed = node.client.get(ENTRIES).json()
    assert listed == {"entries": [entry], "next_before_height": None}


def test_refusals_carry_stable_codes(node: Node) -> None:
    assert _sign(node, {"id": "e-1", "message": "first"}).status_code == 200
    taken = _sign(node, {"id": "e-1", "message": "second"})
    assert taken.status_code == 409
    assert taken.json()["code"] == "exists_with_different_fields"
    assert [e["message"] for e in node.client.get(ENTRIES).json()["entries"]] == ["first"]
    too_long = _sign(node, {"id": "e-2", "message": "x" * (limits.MESSAGE_CHARS_MAX + 1)})
    assert too_long.status_code == 422 and too_long.json()["code"] == "invalid_request"
    huge = _sign(node, {"id": "e-3", "message": "x" * limits.SIGN_BODY_BYTES_MAX})
    assert huge.status_code == 413 and huge.json()["code"] == "body_too_large"
    anonymous = node.client.post(ENTRIES, json={"id": "e-4", "message": "hi"})
    assert anonymous.status_code == 401


def test_the_guard_lets_a_customer_sign_as_themselves_and_refuses_staff(node: Node) -> None:
    customer = register_and_login(node.client)
    signed = node.client.post(ENTRIES, json={"id": "c-1", "message": "我来过"}, headers=customer)
    assert signed.status_code == 200, signed.text
    assert signed.json()["entry"]["author"] == me(node.client, customer)["did"]
    # Staff have no `profile.update`: the member's name is not theirs to sign in (audited).
    officer = create_staff(node.client, roles={Role.BANK_OFFICER})
    refused = node.client.post(ENTRIES, json={"id": "s-1", "message": "hi"}, headers=officer)
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    audit = node.platform.audit.entries(limit=1_000)
    assert any(
        e.target == "guestbook_entry:s-1" and e.outcome == "permission_denied" for e in audit
    )
    assert [e["id"] for e in node.client.get(ENTRIES).json()["entries"]] == ["c-1"]


def test_the_invariant_runs_through_the_root_and_can_fail(node: Node) -> None:
    for index in range(3):
        assert _sign(node, {"id": f"e-{index}", "message": "hi"}).status_code == 200
    store = node.platform.store
    with store.read() as conn:
        assert modules.check_invariants(_Committed(store, conn)) == []
        state = dict(store.state_scan(conn, "guestbook/", "", 100))
    state[keys.COUNT] = {"entries": 4}  # one entry more than the chain holds
    problems = modules.check_invariants(MemoryState(state))
    assert problems == ["guestbook.count_matches_entries: count says 4 entries, chain holds 3"]


def test_the_projection_verifier_names_a_tampered_row(node: Node) -> None:
    assert _sign(node, {"id": "e-1", "message": "genuine"}).status_code == 200
    platform = node.platform
    assert platform.projections.wait_for(platform.node.head.height, timeout_s=30)
    verifiers = modules.default_projection_verifiers()
    assert verify_projections(platform.store, platform.platform_engine, verifiers).ok
    with platform.platform_engine.begin() as conn:
        conn.execute(update(entries_table).values(message="forged"))
    report = verify_projections(platform.store, platform.platform_engine, verifiers)
    assert report.mismatches == (
        Mismatch("guestbook", "guestbook_entries", "e-1", "message", "genuine", "forged"),
    )
    cli = CliRunner().invoke(
        cli_app, ["projections", "verify", "--data", str(platform.settings.data)]
    )
    assert cli.exit_code == 1
    printed = json.loads(cli.stdout[: cli.stdout.rindex("}") + 1])
    assert printed["mismatches"][0]["table"] == "guestbook_entries"


def test_the_openapi_shows_its_models_and_body_limit(with_guestbook: None) -> None:
    spec = create_app(Settings()).openapi()
    post = spec["paths"][ENTRIES]["post"]
    answer = post["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/EntryOut"}
    assert post["x-max-body-bytes"] == limits.SIGN_BODY_BYTES_MAX
    assert "202" in post["responses"]  # committed, not yet in the table
    listing = spec["paths"][ENTRIES]["get"]["responses"]["200"]["content"]
    assert listing["application/json"]["schema"] == {"$ref": "#/components/schemas/EntryListOut"}
    assert set(spec["components"]["schemas"]["EntryView"]["properties"]) == {
        "id",
        "author",
        "message",
        "signed_at_ms",
        "height",
        "tx_hash",
    }


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ([], Code.ARGS_INVALID),
        ({"id": "e-1"}, Code.ARGS_INVALID),
        ({"id": "e-1", "message": "hi", "extra": 1}, Code.ARGS_INVALID),
        ({"id": "", "message": "hi"}, Code.ID_INVALID),
        ({"id": "a/b", "message": "hi"}, Code.ID_INVALID),
        ({"id": "a/b", "message": ""}, Code.ID_INVALID),  # precedence: the id first
        ({"id": "e-1", "message": ""}, Code.MESSAGE_INVALID),
        ({"id": "e-1", "message": 7}, Code.MESSAGE_INVALID),
        ({"id": "e-1", "message": "x" * (limits.MESSAGE_CHARS_MAX + 1)}, Code.MESSAGE_INVALID),
    ],
)
def test_request_parsing_refuses_in_precedence_order(args: Any, code: Code) -> None:
    with pytest.raises(GuestbookError) as refused:
        parse_sign(args)
    assert refused.value.code == code.value
    assert refused.value.message == MESSAGES[code][1]


def test_every_code_has_a_precedence_and_both_messages() -> None:
    assert set(SIGN_PRECEDENCE) == set(Code) == set(MESSAGES)
    assert all(zh and en and zh != en for zh, en in MESSAGES.values())


def test_the_manifest_is_the_only_thing_the_root_needs(with_guestbook: None) -> None:
    assert modules.default_registry().versions()["guestbook"] == "1"
    assert [p.name for p in modules.default_projections()][-1] == "guestbook"
    assert [v.domain for v in modules.default_projection_verifiers()][-1] == "guestbook"


def test_a_record_round_trips_and_encodes_canonically() -> None:
    entry = Entry("e-1", BANK.did, 'say "你好"\n\u2028', 2**63 - 1, 2**63 - 1, "ab" * 32)
    assert entry.canonical() == canonical(entry.to_json())
    assert Entry.from_json(decode(entry.canonical())) == entry


SIGNS = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", "bad/id"]), st.sampled_from(["hi", "yo", ""])),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(signs=SIGNS)
def test_random_signs_keep_the_invariants_and_answer_like_the_model(
    signs: list[tuple[str, str]],
) -> None:
    """Random sequences of good, repeated, conflicting and malformed signs, one block each: a
    refusal changes nothing, a retry answers `exists`, and every invariant holds after every
    block."""
    chain = Chain(contracts=(GUESTBOOK_CONTRACT,))
    model: dict[str, str] = {}
    for entry_id, message in signs:
        before = chain.state.data
        (outcome,) = chain.block(
            [Call("sign", {"id": entry_id, "message": message}, BANK.did, contract="guestbook")]
        )
        valid = entry_id != "bad/id" and message != ""
        if valid and model.get(entry_id, message) == message:
            assert outcome.ok and outcome.value["exists"] is (entry_id in model)
            model[entry_id] = message
        else:
            assert not outcome.ok and chain.state.data == before
        assert invariants.check_invariants(chain.state) == []
    assert (chain.state.get(keys.COUNT) or {"entries": 0})["entries"] == len(model)
