"""Notarise my own file and verify its receipt by upload, then check the anchoring tx's
inclusion proof in the browser (WebCrypto), with a good proof and with a tampered one, in
Chromium, in both languages and on both viewports."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.e2e.harness import (
    VARIANTS,
    E2EServer,
    Variant,
    assert_accessible,
    assert_fits_the_screen,
    screenshot,
    sign_in,
    visit,
)
from zhijin.chain.merkle import inclusion_proof_in, leaf_hash, merkle_root
from zhijin.platform.assets import shell_url

TEXT = {
    "zh_CN": {
        "notarised": "已存证",
        "valid": "回执有效",
        "invalid": "回执无效",
        "pass": "验证通过",
        "fail": "验证失败",
    },
    "en": {
        "notarised": "Notarised in block",
        "valid": "The receipt is valid",
        "invalid": "The receipt is not valid",
        "pass": "Verified",
        "fail": "Verification failed",
    },
}


def _notarise(page: Page, content: bytes, text: dict[str, str]) -> str:
    page.goto("/documents")
    form = page.locator("#anchor-form")
    form.locator("#anchor-file").set_input_files(
        {"name": "contract.pdf", "mimeType": "application/pdf", "buffer": content}
    )
    digest = hashlib.sha256(content).hexdigest()
    expect(page.locator("#anchor-hash-shown")).to_contain_text(digest)  # hashed here
    form.locator("input[name=title]").fill("lease")
    form.locator("button[type=submit]").click()
    expect(page.locator("#anchor-answer")).to_contain_text(text["notarised"])
    expect(page.locator("#anchored-hash")).to_have_text(digest)
    return digest


def _flip_a_byte(route: Route) -> None:
    """The server's inclusion proof with one hex digit changed (a sibling, else the leaf)."""
    response = route.fetch()
    proof = response.json()
    key, index = ("proof", 0) if proof["proof"] else ("leaf_hash", None)
    value = proof[key][index] if index is not None else proof[key]
    flipped = ("0" if value[0] != "0" else "1") + value[1:]
    if index is not None:
        proof[key][index] = flipped
    else:
        proof[key] = flipped
    route.fulfill(response=response, body=json.dumps(proof))


@pytest.mark.parametrize("variant", VARIANTS)
def test_notarise_verify_the_receipt_and_check_the_proof_in_the_browser(
    browser: Browser, server: E2EServer, variant: Variant, tmp_path: Path
) -> None:
    text = TEXT[variant.locale]
    login, password, did = server.customer("notary")
    content = secrets.token_bytes(2048)
    for _ in range(3):  # other leaves first, so the audit path has siblings to walk
        server.op("POST", "/notary/anchors", {"hash": secrets.token_hex(32)})
    with visit(browser, server, variant) as page:
        sign_in(page, login, password)
        digest = _notarise(page, content, text)
        record = server.platform.notary_anchors.anchor_record(digest)
        assert record is not None and record["owner"] == did  # on chain, in the user's name
        assert_accessible(page)
        assert_fits_the_screen(page)
        screenshot(page, "notarised", variant)

        with page.expect_download() as download:
            page.locator("#receipt-download").click()
        receipt = Path(download.value.path()).read_bytes()
        assert json.loads(receipt)["record"]["hash"] == digest

        verify = page.locator("#verify-form")
        verify.locator("input[name=receipt]").set_input_files(
            {"name": "r.json", "mimeType": "application/json", "buffer": receipt}
        )
        verify.locator("#verify-file").set_input_files(
            {"name": "contract.pdf", "mimeType": "application/pdf", "buffer": content}
        )
        expect(verify.locator("button[type=submit]")).to_be_enabled()
        verify.locator("button[type=submit]").click()
        expect(page.locator("#verify-answer")).to_contain_text(text["valid"])
        # Another file with this receipt: refused.
        verify.locator("#verify-file").set_input_files(
            {"name": "other.pdf", "mimeType": "application/pdf", "buffer": content + b"!"}
        )
        expect(verify.locator("button[type=submit]")).to_be_enabled()
        verify.locator("button[type=submit]").click()
        expect(page.locator("#verify-answer")).to_contain_text(text["invalid"])

        # The anchoring tx's inclusion proof, checked here, not by the server.
        tx_hash = record["tx_hash"]
        page.goto(f"/explorer/txs/{tx_hash}")
        page.locator("#verify-proof").click()
        verdict = page.locator("#proof-verdict")
        expect(verdict).to_have_attribute("data-result", "pass")
        expect(verdict).to_contain_text(text["pass"])
        # Tree head, leaf, at least one sibling combined, the root.
        assert page.locator("#proof-steps li").count() >= 4
        assert_accessible(page)
        assert_fits_the_screen(page)
        screenshot(page, "proof-pass", variant)

        page.route("**/api/v1/chain/proofs/inclusion/**", _flip_a_byte)
        page.locator("#verify-proof").click()
        expect(verdict).to_have_attribute("data-result", "fail")
        expect(verdict).to_contain_text(text["fail"])
        screenshot(page, "proof-tampered", variant)


def test_the_browsers_path_walk_agrees_with_the_chains_merkle_code(
    browser: Browser, server: E2EServer
) -> None:
    """proof.js's RFC 9162 walk, for every leaf of every tree up to 33 leaves: the root the
    chain computes from a good path, and null (or another root) from a path cut or lengthened."""
    cases = []
    for size in range(1, 34):
        leaves = [leaf_hash(bytes([size, i])) for i in range(size)]
        root = merkle_root(leaves).hex()
        for index in range(size):
            path = [p.hex() for p in inclusion_proof_in(leaves, index)]
            cases.append(
                {"i": index, "n": size, "leaf": leaves[index].hex(), "path": path, "root": root}
            )
    with visit(browser, server, Variant("en", "desktop")) as page:
        page.goto("/explorer")
        page.add_script_tag(url=shell_url("proof.js"))  # the very file the tx page loads
        results = page.evaluate(
            """async (cases) => {
              const hex = (h) => Uint8Array.from(h.match(/../g), (b) => parseInt(b, 16));
              const out = [];
              for (const c of cases) {
                const good = await rootFromPath(c.i, c.n, hex(c.leaf), c.path);
                const cut = c.path.length ? await rootFromPath(c.i, c.n, hex(c.leaf),
                  c.path.slice(1)) : null;
                const long = await rootFromPath(c.i, c.n, hex(c.leaf), [...c.path, c.leaf]);
                out.push([good && good.root === c.root, !cut || cut.root !== c.root,
                          !long || long.root !== c.root]);
              }
              return out;
            }""",
            cases,
        )
    assert len(results) == len(cases) == 33 * 34 // 2
    assert all(all(r) for r in results), [
        c for c, r in zip(cases, results, strict=True) if not all(r)
    ][:3]


def test_anyone_signed_out_is_offered_sign_in_not_the_anchor_form(
    browser: Browser, server: E2EServer
) -> None:
    with visit(browser, server, Variant("en", "phone")) as page:
        page.goto("/documents")
        expect(page.locator("#anchor-form")).to_have_count(0)
        expect(page.locator("a[href='/signin?next=/documents']")).to_be_visible()
