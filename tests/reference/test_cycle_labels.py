"""Only cycles in the calendar are valid; semester and whole-year wording is not guessed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from schemas.contract import is_ambiguous_cycle, resolve_cycle
from schemas.reference import ReferenceDataError, load_reference
from tasks.check.validate import resolve_identity, validate_workbook
from tests.check.test_validate import clean_workbook

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("label", "cycle_id"),
    [
        ("2023-H1", "2023-H1"),
        (" 2023 h2 ", "2023-H2"),
        ("H1/2023", "2023-H1"),
        ("h2-2023", "2023-H2"),
        ("6 tháng đầu năm 2023", "2023-H1"),
        ("06 THÁNG CUỐI NĂM 2023", "2023-H2"),
        ("Sáu tháng đầu năm 2024", "2024-H1"),
    ],
)
def test_half_year_labels_resolve(label: str, cycle_id: str) -> None:
    assert resolve_cycle(label) == cycle_id
    assert not is_ambiguous_cycle(label)


@pytest.mark.parametrize(
    "label",
    ["Học kỳ 1 năm 2023", "HK1 2023-2024", "HK 2 năm học 2023-2024", "Học kỳ II năm 2023", "Năm 2023",
     "Năm học 2023-2024", "nam 2023"],
)
def test_semester_and_year_wording_is_ambiguous(label: str) -> None:
    assert resolve_cycle(label) is None
    assert is_ambiguous_cycle(label)


def _calendar_dir(tmp_path: Path, valid_years: str | None, extra: str = "") -> Path:
    target = tmp_path / "reference"
    shutil.copytree(ROOT / "reference", target)
    path = target / "cycles.yaml"
    text = path.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("valid_years")]
    if valid_years is not None:
        lines.insert(1, f"valid_years: {valid_years}")
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return target


def test_only_cycles_in_the_calendar_are_valid(tmp_path: Path) -> None:
    listed_2021 = "  - id: 2021-H2\n    period_start: 2021-05-01\n    period_end: 2021-10-31\n" \
                  "    deadline: 2021-11-05\n"
    calendar = load_reference(_calendar_dir(tmp_path, "[2023, 2030]", listed_2021)).calendar
    assert calendar.valid_years == (2023, 2030)
    assert calendar.get("2022-H1") is None  # a typo for 2023: not filed under 2022
    assert calendar.get("2031-H1") is None
    assert calendar.get("2030-H2") is not None and calendar.get("2023-H1") is not None
    assert calendar.get("2021-H2") is not None  # listed: valid whatever the range


def test_without_a_range_every_year_follows_the_default_rule(tmp_path: Path) -> None:
    calendar = load_reference(_calendar_dir(tmp_path, None)).calendar
    assert calendar.valid_years is None
    assert calendar.get("1999-H1") is not None


@pytest.mark.parametrize("bad", ["2023", "[2030, 2023]", "[2023]", "[a, b]", "[2023, 2030, 2031]"])
def test_a_malformed_range_names_its_line(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ReferenceDataError, match=r"cycles.yaml line 2: valid_years must be"):
        load_reference(_calendar_dir(tmp_path, bad))


@pytest.mark.parametrize("label", ["2022-H1", "Học kỳ 1 năm 2023", "Năm 2023", "2031-H2"])
def test_workbook_naming_a_cycle_outside_the_calendar_is_unknown_cycle(tmp_path: Path, label: str) -> None:
    reference = load_reference(_calendar_dir(tmp_path, "[2023, 2030]"))
    parsed = clean_workbook(cycle=label)
    findings = [f for f in validate_workbook(parsed, reference) if f.rule == "unknown_cycle"]
    assert len(findings) == 1
    # The message asks for the half-year, as the school sees it.
    assert "2023-H1 (6 tháng đầu năm) hoặc 2023-H2 (6 tháng cuối năm)" in findings[0].message
    assert resolve_identity(parsed, reference)[1] is None


def test_workbook_naming_a_valid_cycle_passes_identity(tmp_path: Path) -> None:
    reference = load_reference(_calendar_dir(tmp_path, "[2023, 2030]"))
    parsed = clean_workbook(cycle="6 tháng cuối năm 2023")
    assert resolve_identity(parsed, reference) == ("MN001", "2023-H2")
    assert not [f for f in validate_workbook(parsed, reference) if f.rule == "unknown_cycle"]
