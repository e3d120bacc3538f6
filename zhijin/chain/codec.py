"""Canonical JSON (RFC 8785 / JCS) restricted to the wire format's value domain.

Objects, arrays, strings, booleans, null and integers in the signed 64-bit range.  A float
anywhere is rejected, as are integers outside that range, non-string keys and lone surrogates.

Encoding validates the value in one pass, then uses the standard library's encoder, whose
string escaping (with `ensure_ascii=False`) is ECMAScript's.  JCS sorts object keys by UTF-16
code units: for ASCII keys that is Python's order, so `sort_keys` does it; when a key is not
ASCII the objects are re-ordered by their keys' UTF-16 encoding first.  Tests check both paths
against the `rfc8785` reference implementation.

One deliberate difference from JCS: integers beyond +-2**53 are written as their exact decimal
digits.  JCS would print them as the nearest IEEE double, losing the value; the wire format
carries exact 64-bit integers instead (amounts in minor units must never round).
"""

from __future__ import annotations

import hashlib
import json
import json.scanner
import re
from collections.abc import Callable
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

from zhijin.chain.errors import EncodingError

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
DEPTH_MAX = 32

__all__ = [
    "DEPTH_MAX",
    "INT_MAX",
    "INT_MIN",
    "canonical",
    "canonical_trusted",
    "decode",
    "decode_trusted",
    "json_string_text",
    "refuse_lone_surrogates",
    "sha256",
    "unique_keys",
    "utf8",
    "validate_value",
]


def _not_allowed(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# The standard library's C encoder, built once and called directly: `JSONEncoder.encode` would
# build a new one (and a circular-reference table) on every call.  Values reach it validated
# (bounded depth, so no cycles) or, in `canonical_trusted`, produced by code that validated them.
_c_sorted = c_make_encoder(
    None, _not_allowed, encode_basestring, None, ":", ",", True, False, False
)
_c_unsorted = c_make_encoder(
    None, _not_allowed, encode_basestring, None, ":", ",", False, False, False
)


def _dumps(value: Any) -> str:
    return "".join(_c_sorted(value, 0))


def _dumps_unsorted(value: Any) -> str:
    return "".join(_c_unsorted(value, 0))


def validate_value(value: Any, depth: int = 0) -> bool:
    """Raise EncodingError unless `value` is in the domain; return True if all keys are ASCII.

    Scalars inside a container are checked inline (one call per container, not per value);
    near the depth bound the plain recursive rules apply, so errors are exactly theirs.
    """
    kind = type(value)
    if kind is dict:
        if depth >= DEPTH_MAX:
            return _validate_recursive(value, depth)
        ascii_keys = True
        for key, item in value.items():
            if type(key) is not str:
                raise EncodingError("bad_key", "object keys must be strings")
            if not key.isascii():
                ascii_keys = False
            item_kind = type(item)
            if item_kind is str or item is None or item_kind is bool:
                continue
            if item_kind is int:
                if not INT_MIN <= item <= INT_MAX:
                    raise _out_of_range()
                continue
            if not validate_value(item, depth + 1):
                ascii_keys = False
        return ascii_keys
    if kind is list or kind is tuple:
        if depth >= DEPTH_MAX:
            return _validate_recursive(value, depth)
        ascii_keys = True
        for item in value:
            item_kind = type(item)
            if item_kind is str or item is None or item_kind is bool:
                continue
            if item_kind is int:
                if not INT_MIN <= item <= INT_MAX:
                    raise _out_of_range()
                continue
            if not validate_value(item, depth + 1):
                ascii_keys = False
        return ascii_keys
    return _validate_recursive(value, depth)


def _out_of_range() -> EncodingError:
    return EncodingError("integer_out_of_range", "integers must fit in a signed 64-bit range")


def _validate_recursive(value: Any, depth: int = 0) -> bool:
    """The domain's rules, one value per call: the reference that `validate_value` speeds up."""
    if depth > DEPTH_MAX:
        raise EncodingError("too_deep", f"nesting deeper than {DEPTH_MAX}")
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return True
    if kind is int:
        if not INT_MIN <= value <= INT_MAX:
            raise _out_of_range()
        return True
    if kind is float:
        raise EncodingError("float_not_allowed", "floats are not allowed; use integers or strings")
    ascii_keys = True
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise EncodingError("bad_key", "object keys must be strings")
            ascii_keys = ascii_keys and key.isascii()
            ascii_keys = _validate_recursive(item, depth + 1) and ascii_keys
        return ascii_keys
    if kind is list or kind is tuple:
        for item in value:
            ascii_keys = _validate_recursive(item, depth + 1) and ascii_keys
        return ascii_keys
    raise EncodingError("bad_type", f"type {kind.__name__} is not allowed in canonical JSON")


def _bad_string() -> EncodingError:
    return EncodingError("bad_string", "strings must be valid Unicode (no lone surrogates)")


def canonical(value: Any) -> bytes:
    """The RFC 8785 encoding of `value` as UTF-8 bytes."""
    ascii_keys = validate_value(value)
    try:
        if ascii_keys:
            return _dumps(value).encode("utf-8")
        return _dumps_unsorted(_utf16_ordered(value)).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _bad_string() from exc


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _utf16_ordered(value: Any) -> Any:
    """A copy of `value` whose objects list their keys in UTF-16 code-unit order."""
    if isinstance(value, dict):
        return {k: _utf16_ordered(value[k]) for k in sorted(value, key=_utf16_key)}
    if isinstance(value, list | tuple):
        return [_utf16_ordered(item) for item in value]
    return value


def canonical_trusted(value: Any) -> bytes:
    """`canonical` for values already validated (contract writes, results, events).

    Skips the validation pass: if the fast encoding is pure ASCII, every key was ASCII and the
    bytes are canonical; otherwise the full path decides.  Used on the commit path, where each
    value would otherwise be validated twice.
    """
    try:
        encoded = _dumps(value).encode("utf-8")
    except UnicodeEncodeError as exc:
        # `decode` refuses lone surrogates, so this is a caller that skipped it: the same code.
        raise _bad_string() from exc
    return encoded if encoded.isascii() else canonical(value)


def utf8(text: str) -> bytes:
    """Canonical JSON text (built by a record type itself) as UTF-8 bytes.

    A lone surrogate is refused exactly as `canonical` refuses it.
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _bad_string() from exc


# One string as canonical JSON text: quoted, with ECMAScript escaping (the C function).
json_string_text: Callable[[str], str] = encode_basestring


def _no_float(text: str) -> Any:
    raise EncodingError("float_not_allowed", "floats are not allowed; use integers or strings")


def _no_constant(text: str) -> Any:
    raise EncodingError("malformed_json", f"{text} is not JSON")


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An `object_pairs_hook` that refuses an object with the same key twice: parsers disagree
    on which one wins, so a signer and a verifier could read different values."""
    result = dict(pairs)
    if len(result) != len(pairs):
        raise EncodingError("duplicate_key", "an object has the same key twice")
    return result


_decoder = json.JSONDecoder(
    parse_float=_no_float, parse_constant=_no_constant, object_pairs_hook=unique_keys
)

# Valid UTF-8 cannot hold a surrogate, so a decoded string can hold one only from a `\uD8xx`
# .. `\uDFxx` escape; text without one needs no further look.  (A match may be a well-formed
# pair, or an escaped backslash before "ud8..": the exact check below decides.)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def refuse_lone_surrogates(value: Any) -> None:
    """Raise EncodingError `bad_string` if a string or key of `value` (parsed JSON) holds a
    lone surrogate: it has no UTF-8 encoding, so it could never be hashed, stored or sent."""
    try:
        _dumps_unsorted(value).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _bad_string() from exc


def decode(data: bytes | str) -> Any:
    """Parse JSON into the canonical domain; reject floats, duplicate keys, bad UTF-8 and lone
    surrogates (escaped as `\\ud800`)."""
    from_bytes = isinstance(data, bytes | bytearray)
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
        value = _decoder.decode(text)
    except EncodingError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise EncodingError("malformed_json", f"not valid JSON: {exc}") from exc
    validate_value(value)
    # A str argument may hold a surrogate itself, not only as an escape.
    if not from_bytes or _SURROGATE_ESCAPE.search(text):
        refuse_lone_surrogates(value)
    return value


# The standard library's C scanner with default settings, called directly: `json.loads(bytes)`
# would detect the encoding and run two regular expressions around the same scan.  No Python
# hook runs inside it, so sharing one across threads is safe (as `json.loads` itself does).
_plain_scan = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def decode_trusted(data: bytes) -> Any:
    """Parse bytes this node (or a block it verified) encoded canonically, without re-checking.

    For state values, stored tx bodies and results only: they were in the canonical domain when
    written (`canonical` validated them, admission and `chain verify` check bodies strictly),
    so the strict decoder's duplicate-key, float and range checks could never fire on them.
    Untrusted input (envelopes, files, peers) goes through `decode`.
    """
    try:
        text = data.decode("utf-8")
        value, end = _plain_scan(text, 0)
    except (StopIteration, ValueError) as exc:  # ValueError covers bad JSON and bad UTF-8
        raise EncodingError("malformed_json", "stored value is not JSON") from exc
    if end != len(text):
        raise EncodingError("malformed_json", "stored value has trailing data")
    return value


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
