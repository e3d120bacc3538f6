"""The applicant's fields: every kind of bad input is refused with its field and code."""

from __future__ import annotations

from typing import Any

import pytest

from zhijin.credit.applicant import (
    AMOUNT_MINOR_MAX,
    FIELDS,
    Applicant,
    InvalidApplicant,
    applicant_digest,
    parse_applicant,
)

GOOD: dict[str, Any] = {
    "checking_status": "below_200",
    "duration_months": 24,
    "credit_history": "existing_paid_duly",
    "purpose": "car_used",
    "amount_minor": 350_000,
    "savings": "below_100",
    "employment_length": "1_to_4_years",
    "installment_rate": 3,
    "personal_status_sex": "female_single",
    "other_debtors": "none",
    "residence_years": 2,
    "property": "car_or_other",
    "age_years": 31,
    "other_plans": "none",
    "housing": "rent",
    "existing_credits": 1,
    "job": "skilled",
    "dependants": 1,
    "telephone": False,
    "foreign_worker": False,
    "monthly_income_minor": 1_200_000,
    "monthly_debt_minor": 300_000,
}


def errors_of(raw: object) -> list[dict[str, str]]:
    with pytest.raises(InvalidApplicant) as caught:
        parse_applicant(raw)  # type: ignore[arg-type]
    assert caught.value.code == "invalid_applicant"
    errors: list[dict[str, str]] = caught.value.details["errors"]
    for error in errors:
        assert set(error) == {"field", "code", "message_zh", "message_en"}
        assert error["message_zh"] and error["message_en"]
    return errors


def codes_of(raw: object) -> dict[str, str]:
    return {error["field"]: error["code"] for error in errors_of(raw)}


def test_a_good_applicant_parses_with_its_values() -> None:
    applicant = parse_applicant(GOOD)
    assert applicant.amount_minor == 350_000
    assert applicant.personal_status_sex == "female_single"
    assert applicant.on_time_repayments is None
    assert applicant.to_json() == GOOD  # absent optional facts are left out


def test_every_field_has_both_labels_and_the_dataclass_matches() -> None:
    assert [f.name for f in FIELDS] == list(Applicant.__dataclass_fields__)
    for field in FIELDS:
        assert field.label_zh and field.label_en
        for category in field.categories:
            assert category.label_zh and category.label_en


@pytest.mark.parametrize("name", [f.name for f in FIELDS if f.required])
def test_a_missing_required_field_is_named(name: str) -> None:
    raw = {k: v for k, v in GOOD.items() if k != name}
    assert codes_of(raw) == {name: "missing"}
    assert codes_of({**GOOD, name: None}) == {name: "missing"}


def test_optional_facts_may_be_absent_or_null() -> None:
    raw = {**GOOD, "monthly_income_minor": None, "foreign_worker": None}
    del raw["personal_status_sex"]
    applicant = parse_applicant(raw)
    assert applicant.monthly_income_minor is None and applicant.personal_status_sex is None


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("age_years", 300, "out_of_range"),
        ("age_years", 17, "out_of_range"),
        ("monthly_income_minor", -1, "out_of_range"),
        ("amount_minor", 0, "out_of_range"),
        ("amount_minor", AMOUNT_MINOR_MAX + 1, "out_of_range"),
        ("amount_minor", 2**70, "out_of_range"),
        ("duration_months", 10**30, "out_of_range"),
        ("late_repayments", -5, "out_of_range"),
        ("age_years", "31", "wrong_type"),
        ("amount_minor", "350000", "wrong_type"),
        ("amount_minor", 3500.0, "wrong_type"),
        ("monthly_debt_minor", 1.5, "wrong_type"),
        ("duration_months", True, "wrong_type"),
        ("telephone", 1, "wrong_type"),
        ("telephone", "yes", "wrong_type"),
        ("purpose", "yacht", "unknown_category"),
        ("checking_status", "A11", "unknown_category"),
        ("checking_status", 1, "wrong_type"),
        ("housing", ["own"], "wrong_type"),
    ],
)
def test_a_bad_value_is_refused_with_its_code(name: str, value: object, code: str) -> None:
    assert codes_of({**GOOD, name: value}) == {name: code}


def test_money_as_a_float_says_it_must_be_fen() -> None:
    (error,) = errors_of({**GOOD, "amount_minor": 3500.5})
    assert "fen" in error["message_en"] and "分" in error["message_zh"]


def test_every_wrong_field_is_reported_at_once() -> None:
    raw = {**GOOD, "age_years": 300, "purpose": "yacht", "amount_minor": 1.5, "colour": "red"}
    del raw["job"]
    assert codes_of(raw) == {
        "age_years": "out_of_range",
        "purpose": "unknown_category",
        "amount_minor": "wrong_type",
        "job": "missing",
        "colour": "unknown_field",
    }


def test_a_flood_of_unknown_fields_gives_a_bounded_report() -> None:
    raw = {**GOOD, **{f"extra{i}": i for i in range(10_000)}}
    errors = errors_of(raw)
    assert 0 < len(errors) <= 64


@pytest.mark.parametrize("raw", [None, [], "applicant", 42])
def test_an_applicant_must_be_an_object(raw: object) -> None:
    assert codes_of(raw) == {"": "wrong_type"}


def test_the_digest_is_of_the_canonical_fields() -> None:
    digest = applicant_digest(parse_applicant(GOOD))
    assert len(digest) == 64 and int(digest, 16) >= 0
    reordered = dict(reversed(list(GOOD.items())))
    assert applicant_digest(parse_applicant(reordered)) == digest
    assert applicant_digest(parse_applicant({**GOOD, "amount_minor": 350_001})) != digest
    # An absent optional fact and a null one are the same applicant.
    assert applicant_digest(parse_applicant({**GOOD, "inflow_minor_90d": None})) == digest


def test_the_digest_is_the_sha256_of_rfc_8785_bytes_for_every_german_credit_applicant() -> None:
    """The digest skips `canonical`'s validation pass (parse_applicant did it): the bytes
    must be the validating encoder's, for every applicant of the data."""
    import hashlib

    from zhijin.chain.codec import canonical
    from zhijin.credit.datasets import german_credit

    for applicant in german_credit().applicants:
        parsed = parse_applicant(applicant.to_json())
        expected = hashlib.sha256(canonical(parsed.to_json())).hexdigest()
        assert applicant_digest(parsed) == expected
