"""Offline verification of a notary receipt: every field it shows is proven, or it fails.

From the genesis file down, the proofs cover: the membership history (replayed, see
zhijin/notary/replay.py), the block header (signed by the members in force), the tree head
(signed, committing to that header), the tx hash (in the header's tx root and in the global
log tree), the tx result (in the header's results root), the tx body (it hashes to the proven
tx hash) and the envelope's signer.  The receipt's `record` is then held field by field against
the record the proven result says the contract wrote, and that record against the body and the
header (hash, title and expiry from the args, owner = sender, height and block time).

The checks run in that order, outermost first, and each names the parts of the receipt it
judges (`fields`, dotted paths).  A receipt changed in one place therefore fails first at the
check that judges that place: `ReceiptReport.failure` gives its stable `code` and `fields`, and
the CLI and the API say so.  `ReceiptReport.record` is the proven record, the only one to show.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from zhijin.chain.block import BlockHeader, TreeHead, valid_signatures
from zhijin.chain.codec import canonical, sha256
from zhijin.chain.crypto import BadKey, public_key_from_did, verify
from zhijin.chain.errors import ZhijinError
from zhijin.chain.genesis import Genesis
from zhijin.chain.membership import MemberSet
from zhijin.chain.merkle import leaf_hash
from zhijin.notary.replay import (
    HistoryRefused,
    block_signed,
    genesis_member_set,
    inclusion_ok,
    replay_membership,
    signatures_from_json,
    strict_header,
)

__all__ = ["RECEIPT_VERSIONS_READ", "ReceiptCheck", "ReceiptReport", "verify_receipt"]

RECEIPT_VERSIONS_READ = (1, 2)  # version 1: no membership history, genesis members judge
_COMMON_KEYS = frozenset(
    {
        "version",
        "chain_id",
        "record",
        "tx",
        "block",
        "tx_proof",
        "result_proof",
        "log_proof",
        "tree_head",
    }
)
RECEIPT_KEYS = {1: _COMMON_KEYS, 2: _COMMON_KEYS | {"membership"}}
_VERSIONED_KEYS = frozenset({"membership"})
_TX_KEYS = frozenset({"hash", "envelope", "batch_hash", "result"})
_ENVELOPE_KEYS = frozenset({"body", "signer", "signature"})
_HEX_DIGITS = frozenset("0123456789abcdef")
FIELD_MISMATCH = "receipt_field_mismatch"
SIGNATURE_FIELDS = ("tx.envelope.signer", "tx.envelope.signature", "tx.batch_hash")


@dataclass(frozen=True, slots=True)
class ReceiptCheck:
    """One link of the proof.  `code` is stable (what its failure means); `fields` are the
    receipt paths it judges: when it fails, one of them is not what the chain committed."""

    name: str
    ok: bool
    detail: str = ""
    code: str = ""
    fields: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "detail": self.detail,
            "code": self.code,
            "fields": list(self.fields),
        }


@dataclass(slots=True)
class ReceiptReport:
    checks: list[ReceiptCheck] = field(default_factory=list)
    proven_record: dict[str, Any] | None = None  # what the proven result says was recorded

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def failure(self) -> ReceiptCheck | None:
        """The first check that failed: checks run outermost first, so this is the one that
        judges what was changed (later ones may fail only because of it)."""
        return next((check for check in self.checks if not check.ok), None)

    @property
    def record(self) -> dict[str, Any] | None:
        """The anchored record, only when every check passed: nothing unproven is shown."""
        return self.proven_record if self.ok else None

    def add(
        self, name: str, ok: bool, detail: str = "", *, code: str, fields: tuple[str, ...]
    ) -> bool:
        self.checks.append(ReceiptCheck(name, ok, detail, code, fields))
        return ok

    def to_json(self) -> dict[str, Any]:
        failure = self.failure
        return {
            "ok": self.ok,
            "checks": [check.to_json() for check in self.checks],
            "failure": None if failure is None else failure.to_json(),
            "record": self.record,
        }


def verify_receipt(
    receipt: Any,
    genesis: Genesis,
    *,
    document: bytes | None = None,
    document_sha256: str | None = None,
) -> ReceiptReport:
    """Check a receipt offline; the report names each check, and a failure what it judged.

    `document` (the file) or `document_sha256` (its digest) adds the check that the receipt
    anchors that document."""
    report = ReceiptReport()
    if document is not None:
        document_sha256 = sha256(document).hex()
    try:
        _verify(receipt, genesis, document_sha256, report)
    except (KeyError, TypeError, ValueError, AttributeError, ZhijinError) as exc:
        # The shape check should have caught it; never let a receipt crash the verifier.
        report.add(
            "receipt is well-formed",
            False,
            f"{type(exc).__name__}: {exc}",
            code="receipt_malformed",
            fields=("receipt",),
        )
    return report


def _verify(
    receipt: Any, genesis: Genesis, document_sha256: str | None, report: ReceiptReport
) -> None:
    if not _check_version(receipt, report) or not _check_shape(receipt, report):
        return  # nothing below can be read safely
    report.add(
        "chain id matches genesis",
        receipt["chain_id"] == genesis.chain_id,
        receipt["chain_id"],
        code="chain_id_mismatch",
        fields=("chain_id",),
    )
    header = strict_header(receipt["block"]["header"])
    members = _check_membership(receipt, genesis, header.height, report)
    _check_block(receipt, genesis, members, header, report)
    _check_tree_head(receipt, genesis, members, header, report)
    _check_proofs(receipt, header, report)
    tx = receipt["tx"]
    body = tx["envelope"]["body"]
    body_bytes = _check_body(tx, report)
    _check_tx_signature(tx, body_bytes, members, report)
    _check_anchor(receipt, header, report)
    if document_sha256 is not None:
        anchored = body["args"].get("hash")
        report.add(
            "file hash matches the anchored hash",
            document_sha256 == anchored,
            document_sha256,
            code="document_mismatch",
            fields=("document",),
        )


def _check_version(receipt: Any, report: ReceiptReport) -> bool:
    """A known version, and none of the keys another version has: a version 2 receipt
    relabelled 1 would otherwise skip its membership history."""
    if not isinstance(receipt, Mapping) or "version" not in receipt:
        return report.add(
            "receipt is well-formed",
            False,
            "a receipt is a JSON object with a version",
            code="receipt_malformed",
            fields=("version",),
        )
    version = receipt["version"]
    if type(version) is not int or version not in RECEIPT_VERSIONS_READ:
        return report.add(
            "receipt version",
            False,
            f"{version!r:.40}: this verifier reads versions {RECEIPT_VERSIONS_READ}",
            code="receipt_version_unknown",
            fields=("version",),
        )
    wrong = RECEIPT_KEYS[version] ^ receipt.keys()
    # A key that only some versions have says the version was changed (or that key added).
    versioned = sorted(str(key) for key in wrong & _VERSIONED_KEYS)
    return report.add(
        "receipt version",
        not versioned,
        f"version {version}" + (f" does not have {', '.join(versioned)}" if versioned else ""),
        code="receipt_version_mismatch" if versioned else "receipt_version_unknown",
        fields=("version", *versioned),
    )


def _check_shape(receipt: Mapping[str, Any], report: ReceiptReport) -> bool:
    """The parts read below have their wire types; a failure names the exact path."""
    wrong = sorted(str(key) for key in RECEIPT_KEYS[receipt["version"]] ^ receipt.keys())
    problem = (wrong[0], "a top-level key missing or unknown") if wrong else None
    problem = problem or _shape_problem(receipt)
    return report.add(
        "receipt is well-formed",
        problem is None,
        "" if problem is None else problem[1],
        code="receipt_malformed",
        fields=("receipt",) if problem is None else (problem[0],),
    )


def _shape_problem(receipt: Mapping[str, Any]) -> tuple[str, str] | None:
    if not isinstance(receipt["chain_id"], str):
        return "chain_id", "a string"
    if not isinstance(receipt["record"], dict):
        return "record", "an object"
    tx = receipt["tx"]
    if not isinstance(tx, dict) or tx.keys() != _TX_KEYS:
        return "tx", f"an object with exactly {sorted(_TX_KEYS)}"
    envelope = tx["envelope"]
    if not isinstance(envelope, dict) or envelope.keys() != _ENVELOPE_KEYS:
        return "tx.envelope", f"an object with exactly {sorted(_ENVELOPE_KEYS)}"
    body = envelope["body"]
    if not isinstance(body, dict) or not isinstance(body.get("args"), dict):
        return "tx.envelope.body", "an object whose args are an object"
    if not isinstance(envelope["signer"], str):
        return "tx.envelope.signer", "a did:key string"
    for path, value, size in (
        ("tx.hash", tx["hash"], 32),
        ("tx.envelope.signature", envelope["signature"], 64),
        ("tx.batch_hash", "0" * 64 if tx["batch_hash"] is None else tx["batch_hash"], 32),
    ):
        if not _is_hex(value, size):
            return path, f"{size * 2} lowercase hex digits"
    if not isinstance(tx["result"], dict):
        return "tx.result", "an object"
    return _block_shape_problem(receipt)


def _block_shape_problem(receipt: Mapping[str, Any]) -> tuple[str, str] | None:
    block = receipt["block"]
    if not isinstance(block, dict) or block.keys() != {"header", "signatures"}:
        return "block", "an object with exactly header and signatures"
    for path, read in (
        ("block.header", lambda: strict_header(block["header"])),
        ("block.signatures", lambda: signatures_from_json(block["signatures"])),
        ("tree_head", lambda: _strict_tree_head("", receipt["tree_head"])),
    ):
        try:
            read()
        except (KeyError, TypeError, ValueError, AttributeError, ZhijinError) as exc:
            return path, f"not in its wire form: {exc}"
    return None


def _is_hex(value: Any, size_bytes: int) -> bool:
    return isinstance(value, str) and len(value) == size_bytes * 2 and set(value) <= _HEX_DIGITS


def _strict_tree_head(chain_id: str, data: Any) -> TreeHead:
    signatures_from_json(data["signatures"])  # bounded, each in its wire form
    head = TreeHead.from_json(chain_id, data)
    if canonical(data) != canonical(head.to_json()):
        raise ValueError("the tree head is not in its canonical wire form")
    return head


def _check_membership(
    receipt: Mapping[str, Any], genesis: Genesis, height: int, report: ReceiptReport
) -> MemberSet:
    """Who judges the block.  On failure the genesis set judges it, so the block check that
    follows cannot pass on a half-replayed history."""
    name = "membership history replays from genesis"
    fields = ("membership",)
    if receipt["version"] < 2:  # version 1 receipts carry no history: genesis judges
        members = genesis_member_set(genesis)
        report.add(
            name, True, "version 1: the genesis members", code="membership_unproven", fields=fields
        )
        return members
    history = receipt["membership"]
    try:
        replayed = replay_membership(history, genesis, height)
    except HistoryRefused as exc:
        report.add(name, False, str(exc), code="membership_unproven", fields=fields)
        return genesis_member_set(genesis)
    changes = sum(len(entry["txs"]) for entry in history)
    detail = (
        f"{changes} change(s) in {len(history)} block(s); {len(replayed.members)} members, "
        f"quorum weight {replayed.quorum_weight}"
    )
    report.add(name, True, detail, code="membership_unproven", fields=fields)
    return replayed


def _check_block(
    receipt: Mapping[str, Any],
    genesis: Genesis,
    members: MemberSet,
    header: BlockHeader,
    report: ReceiptReport,
) -> None:
    signatures = signatures_from_json(receipt["block"]["signatures"])
    enough, detail = block_signed(header, signatures, members, genesis)
    report.add(
        "block signed by consortium members",
        enough,
        detail,
        code="block_not_signed",
        fields=("block",),
    )
    report.add(
        "block is on this chain",
        header.chain_id == genesis.chain_id,
        header.chain_id,
        code="block_other_chain",
        fields=("block.header.chain_id",),
    )


def _check_tree_head(
    receipt: Mapping[str, Any],
    genesis: Genesis,
    members: MemberSet,
    header: BlockHeader,
    report: ReceiptReport,
) -> None:
    head = _strict_tree_head(genesis.chain_id, receipt["tree_head"])
    weight, problems = valid_signatures(head.signed_bytes(), head.signatures, members.weights)
    # As in `chain verify`: in cluster mode a tree head may be unsigned (a peer signs only
    # while it is a member); everything it states is committed to by the quorum-signed header.
    unsigned_ok = genesis.ordering == "jetstream" and not head.signatures
    report.add(
        "tree head signed by a member",
        (weight > 0 or unsigned_ok) and not problems,
        "; ".join(problems) or ("unsigned (cluster mode)" if unsigned_ok else ""),
        code="tree_head_not_signed",
        fields=("tree_head",),
    )
    report.add(
        "tree head commits to this block",
        head.block_hash == header.hash()
        and head.height == header.height
        and head.root == header.log_root
        and head.tree_size == header.log_size,
        code="tree_head_not_this_block",
        fields=("tree_head",),
    )


def _check_proofs(receipt: Mapping[str, Any], header: BlockHeader, report: ReceiptReport) -> None:
    """The tx hash in the tx root and the log tree, its result in the results root."""
    tx = receipt["tx"]
    leaf = leaf_hash(bytes.fromhex(tx["hash"]))
    tx_proof, result_proof, log_proof = (
        receipt["tx_proof"],
        receipt["result_proof"],
        receipt["log_proof"],
    )
    in_block = inclusion_ok(tx_proof, leaf, header.tx_root) and (
        tx_proof["tree_size"] == header.tx_count
    )
    report.add(
        "tx is in the block's tx root",
        in_block,
        code="tx_not_in_block",
        fields=("tx.hash", "tx_proof"),
    )
    if not in_block:
        return  # its position is unproven, so the proofs that rely on it prove nothing
    position = tx_proof["leaf_index"]
    result = tx["result"]
    report.add(
        "result is in the block's results root",
        inclusion_ok(result_proof, leaf_hash(sha256(canonical(result))), header.results_root)
        # One result leaf per tx and one for the end-block events, in block order.
        and result_proof["leaf_index"] == position
        and result_proof["tree_size"] == header.tx_count + 1
        and result.get("tx_hash") == tx["hash"],
        code="result_not_in_block",
        fields=("tx.result", "result_proof"),
    )
    # The block's txs are the last tx_count leaves of the log tree as of that block.
    log_index = header.log_size - header.tx_count + position
    report.add(
        "tx is in the global log tree",
        inclusion_ok(log_proof, leaf, header.log_root)
        and log_proof["leaf_index"] == log_index
        and log_proof["tree_size"] == header.log_size,
        f"leaf {log_index} of {header.log_size}",
        code="tx_not_in_log",
        fields=("log_proof",),
    )


def _check_body(tx: Mapping[str, Any], report: ReceiptReport) -> bytes | None:
    """The body's canonical bytes if they hash to the (proven) tx hash."""
    try:
        body_bytes: bytes | None = canonical(tx["envelope"]["body"])
    except ZhijinError:  # a float or another value no tx body can hold
        body_bytes = None
    matches = body_bytes is not None and sha256(body_bytes).hex() == tx["hash"]
    report.add(
        "tx hash is SHA-256 of the canonical body",
        matches,
        code="tx_body_mismatch",
        fields=("tx.envelope.body",),
    )
    return body_bytes if matches else None


def _check_tx_signature(
    tx: Mapping[str, Any], body_bytes: bytes | None, members: MemberSet, report: ReceiptReport
) -> None:
    """The signer is the sender or a member vouching for it (the node's admission rule), and
    its signature verifies.  A batch signature covers every body of the batch, which the
    receipt does not carry (they are other parties' txs): for a batched tx the signer must be
    a member and the block's signers, who admitted the batch, vouch for the signature."""
    envelope = tx["envelope"]
    signer = envelope["signer"]
    sender = envelope["body"].get("sender")
    name = "tx signature"
    if tx["batch_hash"] is not None:
        batched = members.is_member(signer)
        detail = (
            f"{signer}: in a member batch, signature not checked offline (the batch is not in"
            " the receipt); the block's signers admitted it"
        )
        if not batched:
            detail = f"{signer} is not a member, and only members sign batches"
        report.add(name, batched, detail, code="tx_signature_invalid", fields=SIGNATURE_FIELDS)
        return
    try:
        public_key = public_key_from_did(signer)
    except BadKey as exc:
        report.add(name, False, exc.message, code="tx_signature_invalid", fields=SIGNATURE_FIELDS)
        return
    authorised = signer == sender or members.is_member(signer)
    signature = bytes.fromhex(envelope["signature"])
    good = body_bytes is not None and verify(public_key, body_bytes, signature)
    detail = signer if authorised else f"{signer} is neither the sender nor a member"
    report.add(
        name, good and authorised, detail, code="tx_signature_invalid", fields=SIGNATURE_FIELDS
    )


def _check_anchor(receipt: Mapping[str, Any], header: BlockHeader, report: ReceiptReport) -> None:
    """What the tx did: anchored a document, succeeded, and was that document's first anchor;
    then the receipt's record, field by field, against the record the chain wrote."""
    tx = receipt["tx"]
    body, result = tx["envelope"]["body"], tx["result"]
    report.add(
        "tx anchors a document",
        body.get("contract") == "notary"
        and body.get("method") == "anchor"
        and isinstance(body["args"].get("hash"), str),
        f"{body.get('contract')}.{body.get('method')}",
        code="not_an_anchor",
        fields=("tx.envelope.body",),
    )
    report.add(
        "tx succeeded",
        result.get("status") == "ok",
        str(result.get("code") or ""),
        code="tx_failed",
        fields=("tx.result",),
    )
    recorded = _recorded(result)
    differs = _differs_from_tx(recorded, body, header, tx["hash"])
    report.add(
        "the chain's record is this tx's first anchoring",
        not differs,
        f"the recorded {', '.join(differs)} differ(s) from this tx and block" if differs else "",
        code="not_first_anchoring",
        fields=("tx",),
    )
    if differs:
        return
    report.proven_record = recorded
    _check_record_fields(receipt["record"], recorded, report)


def _recorded(result: Mapping[str, Any]) -> dict[str, Any]:
    """The record the contract wrote, from its (proven) result: `{"created": true, "record"}`.
    A repeated anchor returns `created: false` and the first record; it proves nothing new."""
    value = result.get("return")
    if not isinstance(value, dict) or value.get("created") is not True:
        return {}
    record = value.get("record")
    return dict(record) if isinstance(record, dict) else {}


def _differs_from_tx(
    recorded: Mapping[str, Any], body: Mapping[str, Any], header: BlockHeader, tx_hash: str
) -> list[str]:
    """The recorded fields that are not what notary v1's `anchor` derives from the tx and the
    block.  The record is proven already (it is in the result); this holds the contract to its
    own rule, so a receipt cannot pair a record with a tx it does not come from."""
    args = body["args"]
    expected = {
        "hash": args.get("hash"),
        "title": args.get("title", ""),
        "owner": body.get("sender"),
        "anchored_at": header.time_ms,
        "height": header.height,
        "tx_hash": tx_hash,
        "expires_at": args.get("expires_at"),
    }
    if not recorded:
        return ["record"]
    wrong = sorted(expected.keys() ^ recorded.keys())
    wrong += [k for k in sorted(expected) if k in recorded and not _same(expected[k], recorded[k])]
    return wrong


def _check_record_fields(
    claimed: Mapping[str, Any], recorded: Mapping[str, Any], report: ReceiptReport
) -> None:
    """One check per recorded field: the receipt's `record` says what the chain wrote."""
    for key in sorted(recorded):
        ok = key in claimed and _same(claimed[key], recorded[key])
        shown = _shown(recorded[key])
        detail = shown if ok else f"the receipt says {_shown(claimed.get(key))}, the chain {shown}"
        report.add(
            f"record.{key} is what the chain recorded",
            ok,
            detail,
            code=FIELD_MISMATCH,
            fields=(f"record.{key}",),
        )
    extra = sorted(str(key) for key in claimed.keys() - recorded.keys())
    report.add(
        "record holds nothing the chain did not record",
        not extra,
        ", ".join(extra[:10]),
        code=FIELD_MISMATCH,
        fields=tuple(f"record.{key}" for key in extra[:10]) or ("record",),
    )


def _same(left: Any, right: Any) -> bool:
    """Equal as canonical JSON: in Python `True == 1` and `1 == 1.0`, on the wire they differ."""
    try:
        return canonical(left) == canonical(right)
    except ZhijinError:
        return False


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."
