"""Notary receipts verify offline with only the genesis file; any tampering fails a check."""

from __future__ import annotations

import copy
import hashlib

import pytest

from zhijin.notary.receipt import build_receipt, verify_receipt

from ..chain.helpers import ChainHarness, make_genesis, open_chain

CONTENT = b"loan agreement 2026-11, signed copy\n"
DIGEST = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture
def chain(db_url: str) -> ChainHarness:
    chain = open_chain(db_url, members=3)
    for n in range(5):  # some history before and after, so proofs are not trivial
        chain.submit(chain.envelope(chain.users[n % 3], "notary", "anchor", {"hash": f"{n:064x}"}))
    chain.commit()
    chain.run(chain.envelope(chain.users[0], "notary", "anchor", {"hash": DIGEST, "title": "loan"}))
    for n in range(5, 9):
        chain.submit(chain.envelope(chain.users[n % 3], "notary", "anchor", {"hash": f"{n:064x}"}))
        chain.commit()
    yield chain
    chain.store.close()


def failed(report) -> set[str]:
    return {c.name for c in report.checks if not c.ok}


def test_receipt_verifies_with_the_file(chain: ChainHarness) -> None:
    receipt = build_receipt(chain.store, DIGEST)
    report = verify_receipt(receipt, chain.genesis, document=CONTENT)
    assert report.ok, failed(report)
    assert receipt["record"]["title"] == "loan"
    assert receipt["log_proof"]["leaf_index"] == 5


def test_another_file_fails_only_the_file_check(chain: ChainHarness) -> None:
    report = verify_receipt(build_receipt(chain.store, DIGEST), chain.genesis, document=b"other")
    assert failed(report) == {"file hash matches the anchored hash"}


def test_receipt_from_another_consortium_fails(chain: ChainHarness) -> None:
    from zhijin.chain.crypto import KeyPair

    other = make_genesis([KeyPair.generate()])
    report = verify_receipt(build_receipt(chain.store, DIGEST), other)
    assert "block signed by consortium members" in failed(report)
    assert "tree head signed by a member" in failed(report)


def _set(receipt: dict, path: tuple, value) -> None:
    target = receipt
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value


TAMPERING = [
    (("tx", "envelope", "body", "args", "hash"), "1" * 64),
    (("tx", "envelope", "body", "args", "title"), "forged title"),
    (("tx", "envelope", "signature"), "00" * 64),
    (("tx", "result", "status"), "failed"),
    (("block", "header", "state_root"), "00" * 32),
    (("block", "header", "time_ms"), 1),
    (("block", "signatures"), []),
    (("log_proof", "leaf_index"), 4),
    (("log_proof", "proof", 0), "ab" * 32),
    (("tx_proof", "leaf_index"), 1),
    (("result_proof", "proof"), []),
    (("tree_head", "root"), "00" * 32),
    (("tree_head", "tree_size"), 1),
    (("tree_head", "signatures"), []),
]


@pytest.mark.parametrize(
    ("path", "value"), TAMPERING, ids=[".".join(map(str, p)) for p, _ in TAMPERING]
)
def test_tampered_receipt_fails(chain: ChainHarness, path: tuple, value) -> None:
    receipt = copy.deepcopy(build_receipt(chain.store, DIGEST))
    _set(receipt, path, value)
    report = verify_receipt(receipt, chain.genesis, document=CONTENT)
    assert not report.ok


def test_malformed_receipt_is_reported_not_raised(chain: ChainHarness) -> None:
    report = verify_receipt({"version": 1}, chain.genesis)
    assert not report.ok
    assert "receipt is well-formed" in failed(report)
