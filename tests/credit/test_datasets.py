"""German Credit loads from its pinned file; a member's CSV is validated row by row."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from zhijin.credit import datasets
from zhijin.credit.applicant import FIELDS
from zhijin.credit.datasets import (
    GERMAN_CREDIT_CSV,
    GERMAN_CREDIT_CSV_SHA256,
    InvalidDataset,
    MissingDataset,
    fetch_german_credit,
    german_credit,
    platform_applicants,
)


def test_german_credit_has_its_thousand_applicants() -> None:
    data = german_credit()
    assert len(data.applicants) == 1_000 and data.bad_count == 300
    assert data.sha256 == GERMAN_CREDIT_CSV_SHA256
    first = data.applicants[0]
    # The UCI file's first row: A11, 6 months, A34, A43, 1169 DM, ..., 67 years, good.
    assert (first.checking_status, first.duration_months, first.amount_minor) == (
        "overdrawn",
        6,
        116_900,
    )
    assert first.credit_history == "critical_or_other_credits" and first.age_years == 67
    assert data.bad[0] is False and data.bad[1] is True


def test_a_changed_german_credit_file_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "germancredit.csv"
    copy.write_bytes(GERMAN_CREDIT_CSV.read_bytes().replace(b",67,", b",68,", 1))
    with pytest.raises(MissingDataset) as caught:
        german_credit(copy)
    assert caught.value.code == "credit_data_mismatch"
    with pytest.raises(MissingDataset) as missing:
        german_credit(tmp_path / "absent.csv")
    assert "make credit-data" in missing.value.message


def test_fetch_keeps_a_file_that_already_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "germancredit.csv"
    shutil.copy(GERMAN_CREDIT_CSV, target)

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("a matching file must not be downloaded again")

    monkeypatch.setattr(datasets.subprocess, "run", no_download)
    assert fetch_german_credit(target) == target


def write_csv(path: Path, rows: list[dict[str, object]], header: list[str] | None = None) -> Path:
    columns = header or [*(f.name for f in FIELDS), "outcome"]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: str(v).lower() if isinstance(v, bool) else v for k, v in row.items()}
            )
    return path


def member_rows(count: int = 200) -> list[dict[str, object]]:
    data = german_credit()
    rows = []
    for i, (applicant, bad) in enumerate(zip(data.applicants[:count], data.bad, strict=False)):
        row: dict[str, object] = dict(applicant.to_json())
        row["monthly_income_minor"] = 500_000 + 1_000 * i
        row["outcome"] = "bad" if bad else "good"
        rows.append(row)
    return rows


def test_a_member_csv_loads_with_its_platform_facts(tmp_path: Path) -> None:
    data = platform_applicants(write_csv(tmp_path / "member.csv", member_rows()))
    assert len(data.applicants) == 200 and data.name == "member"
    assert data.applicants[3].monthly_income_minor == 503_000
    assert data.applicants[3].on_time_repayments is None  # an empty cell is an absent fact
    assert data.bad == german_credit().bad[:200]


@pytest.mark.parametrize(
    ("field", "cell", "code"),
    [
        ("amount_minor", "1.5", "wrong_type"),
        ("amount_minor", "1e3", "wrong_type"),
        ("age_years", "300", "out_of_range"),
        ("monthly_income_minor", "-100", "out_of_range"),
        ("purpose", "yacht", "unknown_category"),
        ("telephone", "maybe", "wrong_type"),
        ("duration_months", "", "missing"),
    ],
)
def test_a_wrong_row_is_named_by_its_line(tmp_path: Path, field: str, cell: str, code: str) -> None:
    rows = member_rows()
    rows[4][field] = cell
    with pytest.raises(InvalidDataset) as caught:
        platform_applicants(write_csv(tmp_path / "member.csv", rows))
    (row,) = caught.value.details["rows"]
    assert row["line"] == 6  # the header is line 1
    assert [(e["field"], e["code"]) for e in row["errors"]] == [(field, code)]


def test_a_wrong_outcome_or_header_or_size_is_refused(tmp_path: Path) -> None:
    rows = member_rows()
    rows[0]["outcome"] = "default"
    with pytest.raises(InvalidDataset):
        platform_applicants(write_csv(tmp_path / "a.csv", rows))
    header = [f.name for f in FIELDS if f.name != "age_years"] + ["outcome", "shoe_size"]
    with pytest.raises(InvalidDataset) as caught:
        platform_applicants(write_csv(tmp_path / "b.csv", member_rows(), header))
    assert caught.value.details["missing_columns"] == ["age_years"]
    assert caught.value.details["unknown_columns"] == ["shoe_size"]
    with pytest.raises(InvalidDataset):
        platform_applicants(write_csv(tmp_path / "c.csv", member_rows(50)))
    (tmp_path / "d.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InvalidDataset):
        platform_applicants(tmp_path / "d.csv")
