"""The identity domain's three chain contracts: `did` registry, `consent`, `status_list`.

All three refuse *vouched* transactions for their writes (a member signing on someone's
behalf): a key rotation, a consent or a revocation must carry the signature of the party whose
right it is, or any member could rotate a user's key or consent to its own access.

`did` - state `did/doc/<did>`:
    register {controller?}            the sender's key becomes key-1 of did:zhijin:<its multikey>
    rotate_key {did, public_key_multibase, compromised?}   controller only
    deactivate {did}                  controller only
    resolve {did}   (read-only, for ctx.call)
  A self-controlled DID (no controller given) is controlled by whichever key is current, so
  after a rotation the old key loses control.  Key windows are block times: key-n is valid in
  [valid_from_ms, valid_until_ms).

`consent` - state `consent/grant/<h>` and `consent/by_subject/<subject>/<h>`, h = SHA-256 of
  the canonical [subject, grantee, category, purpose]:
    grant {grantee, category, purpose, until_ms, subject?}   subject (or its controller) only
    revoke {grantee, category, purpose, subject?}            subject's controller or the grantee
    check {subject, grantee, category, purpose}   (read-only) true iff granted, unrevoked, unexpired
  The grantee must be a consortium member.

`status_list` - W3C Bitstring Status List semantics on chain.  State
  `status_list/list/<issuer>/<list_id>` and one key per set bit
  `status_list/bit/<issuer>/<list_id>/<index, 8 digits>`:
    create {list_id, purpose, size, issuer?}   members only; purpose revocation | suspension
    revoke {list_id, index, issuer?}           sets the bit (idempotent)
    unrevoke {list_id, index, issuer?}         clears it: suspension lists only (a revocation
                                               is final)
    status {issuer, list_id, index}            (read-only)
  The issuer is the sender's did:key, or a did:zhijin the sender controls whose first key is a
  member's: a member that issues under a registered DID can rotate its signing key and still
  revoke, and its old credentials still verify.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from typing import Any

from zhijin.chain.codec import canonical, sha256
from zhijin.chain.contract import Context, Contract, StateReader
from zhijin.chain.crypto import BadKey, public_key_from_did
from zhijin.chain.errors import ContractError
from zhijin.identity import limits
from zhijin.identity.did import (
    DID_ZHIJIN_PREFIX,
    multikey_from_public_key,
    registered_did_for,
    registry_key,
)

__all__ = [
    "CONSENT_CONTRACT",
    "DATA_CATEGORIES",
    "DID_CONTRACT",
    "IDENTITY_CONTRACTS",
    "PURPOSES",
    "STATUS_LIST_CONTRACT",
    "consent_allows",
    "issuer_member",
    "status_bit",
    "status_list_record",
]

# What a consent can cover and what for: closed lists, so a consent means the same thing to
# every member and a typo cannot create a category nobody checks.
DATA_CATEGORIES = frozenset(
    {"kyc_credential", "identity", "contact", "financial", "credit_report", "transactions"}
)
PURPOSES = frozenset(
    {
        "kyc_verification",
        "credit_assessment",
        "account_opening",
        "loan_servicing",
        "insurance_underwriting",
    }
)
_LIST_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_PURPOSES_STATUS = frozenset({"revocation", "suspension"})


def _args(
    args: dict[str, Any], required: AbstractSet[str], optional: AbstractSet[str] = frozenset()
) -> None:
    keys = set(args)
    if not required <= keys or not keys <= required | optional:
        raise ContractError(
            "invalid_args", f"args are {sorted(required)} and optionally {sorted(optional)}"
        )


def _no_vouching(ctx: Context) -> None:
    if ctx.tx.vouched:
        raise ContractError("signature_required", "this change must be signed by its own party")


def _str(args: dict[str, Any], name: str, max_chars: int = limits.DID_CHARS_MAX) -> str:
    value = args[name]
    if not isinstance(value, str) or not 0 < len(value) <= max_chars:
        raise ContractError("invalid_args", f"{name} is a string of 1 to {max_chars} characters")
    return value


def _did_key(value: str, name: str) -> str:
    try:
        public_key_from_did(value)
    except BadKey as exc:
        raise ContractError("invalid_args", f"{name} must be an Ed25519 did:key") from exc
    return value


# -- did registry ------------------------------------------------------------------------------
def _did_record(ctx: Context, did: str) -> dict[str, Any]:
    record = ctx.get(registry_key(did))
    if record is None:
        raise ContractError("unknown_did", f"{did} is not registered")
    return dict(record)


def _controller_of(record: dict[str, Any]) -> str:
    if record["controller"] is not None:
        return str(record["controller"])
    current = record["keys"][-1]["public_key_multibase"]
    return "did:key:" + current


def did_register(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    _args(args, set(), {"controller"})
    _no_vouching(ctx)
    sender = _did_key(ctx.tx.sender, "sender")
    controller = args.get("controller")
    if controller is not None:
        controller = _did_key(_str(args, "controller"), "controller")
    public_key = public_key_from_did(sender)
    did = registered_did_for(public_key)
    existing = ctx.get(registry_key(did))
    if existing is not None:
        return {"created": False, "did": did, "record": existing}
    record = {
        "did": did,
        "controller": controller,
        "keys": [
            {
                "id": "key-1",
                "public_key_multibase": multikey_from_public_key(public_key),
                "valid_from_ms": ctx.block.time_ms,
                "valid_until_ms": None,
                "compromised": False,
            }
        ],
        "created_ms": ctx.block.time_ms,
        "updated_ms": ctx.block.time_ms,
        "deactivated_ms": None,
        "version": 1,
    }
    ctx.put(registry_key(did), record)
    ctx.emit("registered", did=did, controller=_controller_of(record))
    return {"created": True, "did": did, "record": record}


def _changeable(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    _no_vouching(ctx)
    did = _str(args, "did")
    record = _did_record(ctx, did)
    if record["deactivated_ms"] is not None:
        raise ContractError("did_deactivated", f"{did} is deactivated")
    if ctx.tx.sender != _controller_of(record):
        raise ContractError("not_controller", "only the DID's controller may change it")
    return record


def did_rotate_key(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    _args(args, {"did", "public_key_multibase"}, {"compromised"})
    record = _changeable(ctx, args)
    multikey = _str(args, "public_key_multibase")
    compromised = args.get("compromised", False)
    if type(compromised) is not bool:
        raise ContractError("invalid_args", "compromised is a boolean")
    try:
        public_key_from_did("did:key:" + multikey)
    except BadKey as exc:
        raise ContractError(
            "invalid_key", "public_key_multibase must be an Ed25519 Multikey"
        ) from exc
    keys = [dict(k) for k in record["keys"]]
    if any(k["public_key_multibase"] == multikey for k in keys):
        raise ContractError("key_reused", "a DID never returns to a key it has used")
    if len(keys) >= limits.DID_KEYS_MAX:
        raise ContractError("too_many_keys", f"a DID has at most {limits.DID_KEYS_MAX} keys")
    now = ctx.block.time_ms
    keys[-1]["valid_until_ms"] = now
    keys[-1]["compromised"] = compromised
    keys.append(
        {
            "id": f"key-{len(keys) + 1}",
            "public_key_multibase": multikey,
            "valid_from_ms": now,
            "valid_until_ms": None,
            "compromised": False,
        }
    )
    record.update(keys=keys, updated_ms=now, version=record["version"] + 1)
    ctx.put(registry_key(record["did"]), record)
    ctx.emit("key_rotated", did=record["did"], key_id=keys[-1]["id"], compromised=compromised)
    return {"did": record["did"], "key_id": keys[-1]["id"]}


def did_deactivate(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    _args(args, {"did"})
    record = _changeable(ctx, args)
    now = ctx.block.time_ms
    keys = [dict(k) for k in record["keys"]]
    keys[-1]["valid_until_ms"] = now
    record.update(keys=keys, deactivated_ms=now, updated_ms=now, version=record["version"] + 1)
    ctx.put(registry_key(record["did"]), record)
    ctx.emit("deactivated", did=record["did"])
    return {"did": record["did"], "deactivated_ms": now}


def did_resolve(ctx: Context, args: dict[str, Any]) -> dict[str, Any] | None:
    _args(args, {"did"})
    record = ctx.get(registry_key(_str(args, "did")))
    return None if record is None else dict(record)


DID_CONTRACT = Contract(
    name="did",
    version="1",
    methods={
        "register": did_register,
        "rotate_key": did_rotate_key,
        "deactivate": did_deactivate,
        "resolve": did_resolve,
    },
    readonly_methods=frozenset({"resolve"}),
)


# -- consent -----------------------------------------------------------------------------------
def consent_hash(subject: str, grantee: str, category: str, purpose: str) -> str:
    return sha256(canonical([subject, grantee, category, purpose])).hex()


def _subject_controlled_by(ctx: Context, subject: str, sender: str) -> bool:
    """The sender speaks for `subject`: it is the subject's did:key, or its DID's controller."""
    if subject == sender:
        return True
    if not subject.startswith(DID_ZHIJIN_PREFIX):
        return False
    record = ctx.call("did", "resolve", {"did": subject})
    return (
        record is not None and record["deactivated_ms"] is None and _controller_of(record) == sender
    )


def _consent_args(ctx: Context, args: dict[str, Any]) -> tuple[str, str, str, str]:
    subject = _str(args, "subject") if "subject" in args else ctx.tx.sender
    grantee = _did_key(_str(args, "grantee"), "grantee")
    category = _str(args, "category", limits.CONSENT_NAME_CHARS_MAX)
    purpose = _str(args, "purpose", limits.CONSENT_NAME_CHARS_MAX)
    if category not in DATA_CATEGORIES:
        raise ContractError("unknown_category", f"category is one of {sorted(DATA_CATEGORIES)}")
    if purpose not in PURPOSES:
        raise ContractError("unknown_purpose", f"purpose is one of {sorted(PURPOSES)}")
    return subject, grantee, category, purpose


def consent_grant(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    _args(args, {"grantee", "category", "purpose", "until_ms"}, {"subject"})
    _no_vouching(ctx)
    subject, grantee, category, purpose = _consent_args(ctx, args)
    if not _subject_controlled_by(ctx, subject, ctx.tx.sender):
        raise ContractError("not_subject", "only the data subject may grant consent")
    if ctx.member(grantee) is None:
        raise ContractError("grantee_not_member", "consent is granted to consortium members")
    until_ms = args["until_ms"]
    now = ctx.block.time_ms
    if type(until_ms) is not int or not now < until_ms <= now + limits.CONSENT_DURATION_MS_MAX:
        raise ContractError(
            "invalid_until", "until_ms is a block time in the future, at most 5 years"
        )
    digest = consent_hash(subject, grantee, category, purpose)
    record = {
        "subject": subject,
        "grantee": grantee,
        "category": category,
        "purpose": purpose,
        "granted_ms": now,
        "until_ms": until_ms,
        "revoked_ms": None,
        "tx_hash": ctx.tx.tx_hash,
    }
    ctx.put(f"consent/grant/{digest}", record)
    ctx.put(f"consent/by_subject/{subject}/{digest}", True)
    ctx.emit(
        "granted",
        subject=subject,
        grantee=grantee,
        category=category,
        purpose=purpose,
        until_ms=until_ms,
    )
    return {"consent": digest}


def consent_revoke(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    _args(args, {"grantee", "category", "purpose"}, {"subject"})
    _no_vouching(ctx)
    subject, grantee, category, purpose = _consent_args(ctx, args)
    sender = ctx.tx.sender
    if sender != grantee and not _subject_controlled_by(ctx, subject, sender):
        raise ContractError("not_subject", "only the data subject or the grantee may revoke")
    digest = consent_hash(subject, grantee, category, purpose)
    record = ctx.get(f"consent/grant/{digest}")
    if record is None:
        raise ContractError("unknown_consent", "no such consent")
    if record["revoked_ms"] is not None:
        return {"consent": digest, "revoked_ms": record["revoked_ms"]}  # revoked already: ok
    record = {**record, "revoked_ms": ctx.block.time_ms}
    ctx.put(f"consent/grant/{digest}", record)
    ctx.emit("revoked", subject=subject, grantee=grantee, category=category, purpose=purpose)
    return {"consent": digest, "revoked_ms": ctx.block.time_ms}


def consent_allows(
    state: StateReader | Context,
    *,
    subject: str,
    grantee: str,
    category: str,
    purpose: str,
    at_ms: int,
) -> bool:
    """Off chain and on: is there a live consent for exactly this grantee, category and purpose?"""
    record = state.get(f"consent/grant/{consent_hash(subject, grantee, category, purpose)}")
    return (
        record is not None
        and record["revoked_ms"] is None
        and record["granted_ms"] <= at_ms < record["until_ms"]
    )


def consent_check(ctx: Context, args: dict[str, Any]) -> bool:
    _args(args, {"subject", "grantee", "category", "purpose"})
    return consent_allows(
        ctx,
        subject=_str(args, "subject"),
        grantee=_str(args, "grantee"),
        category=_str(args, "category", limits.CONSENT_NAME_CHARS_MAX),
        purpose=_str(args, "purpose", limits.CONSENT_NAME_CHARS_MAX),
        at_ms=ctx.block.time_ms,
    )


CONSENT_CONTRACT = Contract(
    name="consent",
    version="1",
    methods={"grant": consent_grant, "revoke": consent_revoke, "check": consent_check},
    readonly_methods=frozenset({"check"}),
)


# -- status list -------------------------------------------------------------------------------
def _list_key(issuer: str, list_id: str) -> str:
    return f"status_list/list/{issuer}/{list_id}"


def _bit_key(issuer: str, list_id: str, index: int) -> str:
    return f"status_list/bit/{issuer}/{list_id}/{index:08d}"


def status_list_record(
    state: StateReader | Context, issuer: str, list_id: str
) -> dict[str, Any] | None:
    record = state.get(_list_key(issuer, list_id))
    return None if record is None else dict(record)


def status_bit(state: StateReader | Context, issuer: str, list_id: str, index: int) -> bool:
    return state.get(_bit_key(issuer, list_id, index)) is not None


def _list_id(args: dict[str, Any]) -> str:
    list_id = args["list_id"]
    if not isinstance(list_id, str) or not _LIST_ID.match(list_id):
        raise ContractError("invalid_args", "list_id is 1 to 64 of [a-z0-9_-]")
    return list_id


def issuer_member(issuer: str) -> str:
    """The member key an issuer DID stands for: a did:key itself, or the first key of a
    did:zhijin (its identifier *is* that key, and only that key could register it)."""
    if issuer.startswith(DID_ZHIJIN_PREFIX):
        return "did:key:" + issuer[len(DID_ZHIJIN_PREFIX) :]
    return issuer


def status_create(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    _args(args, {"list_id", "purpose", "size"}, {"issuer"})
    _no_vouching(ctx)
    issuer = _str(args, "issuer") if "issuer" in args else ctx.tx.sender
    if not _subject_controlled_by(ctx, issuer, ctx.tx.sender):
        raise ContractError("not_controller", "only the issuer (or its DID's controller) may")
    if ctx.member(issuer_member(issuer)) is None:
        raise ContractError("not_member", "status lists belong to consortium members")
    list_id = _list_id(args)
    purpose, size = args["purpose"], args["size"]
    if purpose not in _PURPOSES_STATUS:
        raise ContractError("invalid_args", "purpose is revocation or suspension")
    if (
        type(size) is not int
        or not limits.STATUS_LIST_SIZE_MIN <= size <= limits.STATUS_LIST_SIZE_MAX
    ):
        raise ContractError(
            "invalid_args",
            f"size is {limits.STATUS_LIST_SIZE_MIN} to {limits.STATUS_LIST_SIZE_MAX}",
        )
    if ctx.get(_list_key(issuer, list_id)) is not None:
        raise ContractError("list_exists", "this issuer already has a list with that id")
    record = {
        "issuer": issuer,
        "list_id": list_id,
        "purpose": purpose,
        "size": size,
        "created_ms": ctx.block.time_ms,
    }
    ctx.put(_list_key(issuer, list_id), record)
    ctx.emit("created", issuer=issuer, list_id=list_id, purpose=purpose, size=size)
    return record


def _bit_args(ctx: Context, args: dict[str, Any]) -> tuple[dict[str, Any], int]:
    _args(args, {"list_id", "index"}, {"issuer"})
    _no_vouching(ctx)
    list_id = _list_id(args)
    issuer = _str(args, "issuer") if "issuer" in args else ctx.tx.sender
    record = ctx.get(_list_key(issuer, list_id))
    if record is None:
        raise ContractError("unknown_list", "the issuer has no status list with that id")
    # The issuer's DID controller of today, so a rotated issuer key can still revoke.
    if not _subject_controlled_by(ctx, issuer, ctx.tx.sender):
        raise ContractError("not_controller", "only the issuer (or its DID's controller) may")
    index = args["index"]
    if type(index) is not int or not 0 <= index < record["size"]:
        raise ContractError("invalid_index", "index is within the list's size")
    return dict(record), index


def status_revoke(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    record, index = _bit_args(ctx, args)
    key = _bit_key(record["issuer"], record["list_id"], index)
    if ctx.get(key) is None:
        ctx.put(key, {"set_ms": ctx.block.time_ms})
        ctx.emit("set", issuer=record["issuer"], list_id=record["list_id"], index=index)
    return {"index": index, "set": True}


def status_unrevoke(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    record, index = _bit_args(ctx, args)
    if record["purpose"] == "revocation":
        raise ContractError("status_irreversible", "a revocation is final; use a suspension list")
    key = _bit_key(record["issuer"], record["list_id"], index)
    if ctx.get(key) is not None:
        ctx.delete(key)
        ctx.emit("cleared", issuer=record["issuer"], list_id=record["list_id"], index=index)
    return {"index": index, "set": False}


def status_query(ctx: Context, args: dict[str, Any]) -> bool:
    _args(args, {"issuer", "list_id", "index"})
    index = args["index"]
    if type(index) is not int or index < 0:
        raise ContractError("invalid_index", "index is a non-negative integer")
    return status_bit(ctx, _str(args, "issuer"), _list_id(args), index)


STATUS_LIST_CONTRACT = Contract(
    name="status_list",
    version="1",
    methods={
        "create": status_create,
        "revoke": status_revoke,
        "unrevoke": status_unrevoke,
        "status": status_query,
    },
    readonly_methods=frozenset({"status"}),
)

# For the platform's contract registry (zhijin/node/modules.py), in this order.
IDENTITY_CONTRACTS = (DID_CONTRACT, CONSENT_CONTRACT, STATUS_LIST_CONTRACT)
