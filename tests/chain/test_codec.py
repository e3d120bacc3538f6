from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from zhijin.chain import codec
from zhijin.chain.codec import DEPTH_MAX, INT_MAX, INT_MIN, canonical, decode, validate_value
from zhijin.chain.errors import EncodingError

SAFE_INT = 2**53 - 1  # the reference library (like JCS itself) stops at IEEE-double integers


def json_values(int_min: int = -SAFE_INT, int_max: int = SAFE_INT) -> st.SearchStrategy[object]:
    return st.recursive(
        st.none()
        | st.booleans()
        | st.integers(min_value=int_min, max_value=int_max)
        | st.text(st.characters(exclude_categories=("Cs",))),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.text(st.characters(exclude_categories=("Cs",)), max_size=6), children, max_size=4
            )
        ),
        max_leaves=20,
    )


@settings(max_examples=300, deadline=None)
@given(json_values())
def test_canonical_equals_the_rfc8785_reference(value: object) -> None:
    assert canonical(value) == rfc8785.dumps(value)


@settings(max_examples=200, deadline=None)
@given(json_values(INT_MIN, INT_MAX))
def test_decode_round_trips(value: object) -> None:
    assert decode(canonical(value)) == value


def test_keys_sort_by_utf16_code_units_like_jcs() -> None:
    # U+E000 sorts after a surrogate pair (U+1F600 = D83D DE00) in UTF-16 but before it in
    # code points: JCS requires the UTF-16 order.
    value = {"\ue000": 1, "\U0001f600": 2, "a": 3}
    assert canonical(value) == '{"a":3,"\U0001f600":2,"\ue000":1}'.encode()


def test_jcs_document_from_the_w3c_vectors(shared_dir) -> None:
    folder = shared_dir / "testvectors/vc-di-eddsa/TestVectors"
    unsigned = json.loads((folder / "unsigned.json").read_text())
    expected = (folder / "eddsa-jcs-2022/canonDocJCS.txt").read_text().strip()
    assert canonical(unsigned).decode() == expected


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ({"amount": 1.5}, "float_not_allowed"),
        ([1, 2, 3.0], "float_not_allowed"),
        ({"n": 2**70}, "integer_out_of_range"),
        ({"n": -(2**63) - 1}, "integer_out_of_range"),
        ({1: "x"}, "bad_key"),
        ({"b": b"bytes"}, "bad_type"),
        ({"s": "\ud800"}, "bad_string"),
    ],
)
def test_values_outside_the_domain_are_rejected(value: object, code: str) -> None:
    with pytest.raises(EncodingError) as caught:
        canonical(value)
    assert caught.value.code == code


def test_integer_limits_are_inclusive() -> None:
    assert canonical([INT_MIN, INT_MAX]) == f"[{INT_MIN},{INT_MAX}]".encode()


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ('{"a": 1.0}', "float_not_allowed"),
        ('{"a": 1e3}', "float_not_allowed"),
        ('{"a": NaN}', "malformed_json"),
        ('{"a": 1, "a": 2}', "duplicate_key"),
        ('{"a": 1', "malformed_json"),
        ('{"a": 1180591620717411303424}', "integer_out_of_range"),
        (b'{"a": "\xff"}', "malformed_json"),
        (b'{"a": "\\ud800"}', "bad_string"),
        (b'{"\\uDFFF": 1}', "bad_string"),
        (b'["\\ud83d"]', "bad_string"),
        ('{"a": "\ud800"}', "bad_string"),  # a str argument holding the surrogate itself
    ],
)
def test_decode_rejects_bad_json(text: str | bytes, code: str) -> None:
    with pytest.raises(EncodingError) as caught:
        decode(text)
    assert caught.value.code == code


def test_decode_keeps_surrogate_pairs_and_escaped_backslashes() -> None:
    assert decode(b'["\\ud83d\\ude00", "\\\\ud800"]') == ["\U0001f600", "\\ud800"]


def test_canonical_trusted_refuses_a_lone_surrogate_with_the_same_code() -> None:
    """A lone surrogate that slipped past `decode` is `bad_string`, not a UnicodeEncodeError
    (which the API would answer with a 500)."""
    with pytest.raises(EncodingError) as caught:
        codec.canonical_trusted({"s": "\ud800"})
    assert caught.value.code == "bad_string"


def test_deep_nesting_is_refused() -> None:
    value: object = 1
    for _ in range(40):
        value = [value]
    with pytest.raises(EncodingError) as caught:
        canonical(value)
    assert caught.value.code == "too_deep"


def test_large_integers_keep_every_digit() -> None:
    assert canonical({"é": 2**63 - 1, "a": -(2**62)}) == (
        '{"a":-4611686018427387904,"é":9223372036854775807}'.encode()
    )


# -- the fast validator agrees with the one-value-per-call reference -----------------------------

_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=False)
    | st.text(max_size=4),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=12,
)


def _outcome(check: Any, value: Any) -> Any:
    try:
        return check(value)
    except EncodingError as exc:
        return exc.code


@given(_values)
def test_validate_value_matches_the_reference(value: Any) -> None:
    assert _outcome(validate_value, value) == _outcome(codec._validate_recursive, value)


@pytest.mark.parametrize("depth", [DEPTH_MAX - 1, DEPTH_MAX, DEPTH_MAX + 1])
@pytest.mark.parametrize("leaf", [1, "x", None, [], {}])
def test_validate_value_depth_bound_matches_the_reference(depth: int, leaf: Any) -> None:
    for wrap in (lambda v: [v], lambda v: {"k": v}):
        value = leaf
        for _ in range(depth):
            value = wrap(value)
        assert _outcome(validate_value, value) == _outcome(codec._validate_recursive, value)


@given(json_values(INT_MIN, INT_MAX))
@settings(max_examples=200)
def test_decode_trusted_reads_back_what_canonical_wrote(value: Any) -> None:
    encoded = canonical(value)
    assert codec.decode_trusted(encoded) == decode(encoded)


@pytest.mark.parametrize("data", [b"", b"{", b'{"a":1} x', b'"a"]'])
def test_decode_trusted_refuses_what_is_not_one_json_value(data: bytes) -> None:
    with pytest.raises(EncodingError):
        codec.decode_trusted(data)
