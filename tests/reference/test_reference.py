"""Reference data: the shipped files, the calendar rules, and the loader's line-accurate errors."""

from __future__ import annotations

import csv
import datetime as dt
import re
import shutil
import subprocess
import sys
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from schemas.contract import AUDIENCE_GROUPS
from schemas.reference import (
    Cycle,
    CycleCalendar,
    Reference,
    ReferenceDataError,
    load_reference,
)

ROOT = Path(__file__).resolve().parents[2]
REFERENCE_DIR = ROOT / "reference"
LOCAL = dt.timezone(dt.timedelta(hours=7))  # Asia/Ho_Chi_Minh has had no DST since 1975


@pytest.fixture(scope="module")
def reference() -> Reference:
    return load_reference(REFERENCE_DIR)


@pytest.fixture()
def ref_dir(tmp_path: Path) -> Path:
    """A writable copy of the shipped reference files."""
    target = tmp_path / "reference"
    shutil.copytree(REFERENCE_DIR, target)
    return target


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _replace(path: Path, old: str, new: str, *, occurrence: int = 1, marker: str | None = None) -> int:
    """Replace the n-th `old` with `new` and return the 1-based line of `marker` (default: `new`)."""
    text = path.read_text(encoding="utf-8")
    index = -1
    for _ in range(occurrence):
        index = text.index(old, index + 1)
    text = text[:index] + new + text[index + len(old):]
    path.write_text(text, encoding="utf-8")
    return _line_of(text, index + (new.index(marker) if marker else 0))


def _edit_school(directory: Path, row_code: str, **changes: str) -> int:
    """Change columns of one registry row and return its physical line."""
    path = directory / "schools.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    index = next(i for i, row in enumerate(rows) if row and row[0] == row_code)
    for column, value in changes.items():
        rows[index][header.index(column)] = value
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return index + 1  # no multi-line fields in the shipped file, so record index = line index


def _errors(directory: Path) -> list[str]:
    with pytest.raises(ReferenceDataError) as caught:
        load_reference(directory)
    assert str(caught.value) == "\n".join(caught.value.errors)
    return list(caught.value.errors)


def _assert_error(directory: Path, file: str, line: int, phrase: str) -> None:
    errors = _errors(directory)
    pattern = re.compile(rf"{re.escape(file)} line {line}: .*{re.escape(phrase)}")
    assert any(pattern.search(error) for error in errors), errors


# --------------------------------------------------------------------------------------------------
# Shipped files


def test_registry_has_the_promised_shape(reference: Reference) -> None:
    schools = list(reference.schools.values())
    assert 140 <= len(schools) <= 160
    levels = Counter(school.level for school in schools)
    assert set(levels) == {"mam_non", "tieu_hoc", "thcs", "lien_cap", "khac"}
    assert 0.50 <= levels["mam_non"] / len(schools) <= 0.60
    assert 0.20 <= levels["tieu_hoc"] / len(schools) <= 0.30
    assert 0.10 <= levels["thcs"] / len(schools) <= 0.20
    assert {school.ward for school in schools} == {f"Phường {n}" for n in range(1, 17)}
    assert {school.ownership for school in schools} == {"cong_lap", "ngoai_cong_lap"}
    preschools = [school for school in schools if school.level == "mam_non"]
    assert sum(school.ownership == "ngoai_cong_lap" for school in preschools) >= len(preschools) / 3
    assert 2 <= sum(not school.active for school in schools) <= 3
    assert len({school.name for school in schools}) == len(schools)


def test_registry_codes_names_and_emails_are_clean(reference: Reference) -> None:
    prefixes = {"mam_non": "MN", "tieu_hoc": "TH", "thcs": "THCS", "lien_cap": "LC", "khac": "K"}
    for code, school in reference.schools.items():
        assert code == school.code
        assert re.fullmatch(prefixes[school.level] + r"\d+", code), code
        assert school.name.startswith(("Trường", "Trung tâm")), school.name
        assert 1 <= len(school.emails) <= 2
        assert all(email.isascii() and email.endswith(".test") for email in school.emails)


def test_registry_file_is_utf8_nfc_without_bom() -> None:
    data = (REFERENCE_DIR / "schools.csv").read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8")
    assert text == unicodedata.normalize("NFC", text)
    assert "Trường Mầm non" in text


def test_registry_matches_its_generator(tmp_path: Path) -> None:
    out = tmp_path / "schools.csv"
    script = ROOT / "scripts" / "make_demo_registry.py"
    subprocess.run([sys.executable, str(script), "--out", str(out)], check=True, capture_output=True)
    assert out.read_bytes() == (REFERENCE_DIR / "schools.csv").read_bytes()


def test_registry_dates_and_exemptions(reference: Reference) -> None:
    opened = [school for school in reference.schools.values() if school.opened]
    closed = [school for school in reference.schools.values() if school.closed]
    exempt = [school for school in reference.schools.values() if school.exempt_cycles]
    assert [school.opened for school in opened] == [dt.date(2023, 8, 15)]
    assert len(closed) == 1 and closed[0].closed is not None
    assert [school.exempt_cycles for school in exempt] == [frozenset({"2023-H1"})]
    assert all(school.active for school in (*opened, *closed, *exempt))


def test_expected_schools_differ_by_the_opened_and_closed_school(reference: Reference) -> None:
    first = {school.code for school in reference.expected_schools("2023-H1")}
    second = {school.code for school in reference.expected_schools("2023-H2")}
    opened = next(s.code for s in reference.schools.values() if s.opened)
    closed = next(s.code for s in reference.schools.values() if s.closed)
    assert first - second == {closed}
    assert second - first == {opened}
    inactive = {code for code, school in reference.schools.items() if not school.active}
    assert not inactive & (first | second)
    assert len(first) == len(reference.schools) - len(inactive) - 1


def test_exempt_schools_are_expected_and_flagged(reference: Reference) -> None:
    school = next(s for s in reference.schools.values() if s.exempt_cycles)
    assert school in reference.expected_schools("2023-H1")
    assert reference.is_exempt(school, "2023-H1")
    assert not reference.is_exempt(school, "2023-H2")
    assert not reference.is_exempt(school, "nonsense")


def test_expected_schools_rejects_a_malformed_cycle(reference: Reference) -> None:
    with pytest.raises(ValueError, match="2023-H3"):
        reference.expected_schools("2023-H3")


def test_school_lookup_is_tolerant(reference: Reference) -> None:
    school = reference.schools["MN001"]
    assert reference.school(" mn 001\u200b") is school
    assert reference.school("MN001") is school
    assert reference.school("MN999") is None
    assert reference.school(None) is None


def test_school_lookup_by_email(reference: Reference) -> None:
    school = next(s for s in reference.schools.values() if len(s.emails) == 2)
    second = school.emails[1]
    assert reference.schools_for_email(second.upper()) == [school]
    assert reference.schools_for_email(f"Văn thư <{second}>") == [school]
    assert reference.schools_for_email("stranger@example.test") == []


def test_shared_address_maps_to_every_school(ref_dir: Path) -> None:
    _edit_school(ref_dir, "MN002", emails="chung@truong.q8.test")
    _edit_school(ref_dir, "MN001", emails="mn001@truong.q8.test;Chung@Truong.Q8.test")
    loaded = load_reference(ref_dir)
    assert [s.code for s in loaded.schools_for_email("CHUNG@truong.q8.test")] == ["MN001", "MN002"]


def test_calendar_lists_2023(reference: Reference) -> None:
    first = reference.calendar.get("2023-H1")
    second = reference.calendar.get("2023-H2")
    assert first == Cycle("2023-H1", dt.date(2023, 1, 1), dt.date(2023, 4, 30), dt.date(2023, 5, 5))
    assert second == Cycle("2023-H2", dt.date(2023, 5, 1), dt.date(2023, 10, 31), dt.date(2023, 11, 5))
    assert first.label_vi == "6 tháng đầu năm 2023"
    assert second.label_vi == "6 tháng cuối năm 2023"
    assert first.deadline_end == dt.datetime(2023, 5, 6, tzinfo=LOCAL)
    assert first.deadline_end.utcoffset() == dt.timedelta(hours=7)
    assert [cycle.id for cycle in reference.calendar.listed] == ["2023-H1", "2023-H2"]


def test_calendar_default_rule_for_an_unlisted_year(reference: Reference) -> None:
    first = reference.calendar.get("2029-H1")
    second = reference.calendar.get("2029-H2")
    assert first is not None and second is not None
    assert (first.period_start, first.period_end, first.deadline) == (
        dt.date(2029, 1, 1), dt.date(2029, 4, 30), dt.date(2029, 5, 5))
    assert (second.period_start, second.period_end, second.deadline) == (
        dt.date(2029, 5, 1), dt.date(2029, 10, 31), dt.date(2029, 11, 5))
    assert second.deadline_end == dt.datetime(2029, 11, 6, tzinfo=LOCAL)
    assert second.label_vi == "6 tháng cuối năm 2029"


@pytest.mark.parametrize("bad", ["2031-H3", "31-H1", "2031H1", "2031-H1x", "", None, 2031])
def test_calendar_rejects_malformed_ids(reference: Reference, bad: object) -> None:
    assert reference.calendar.get(bad) is None  # type: ignore[arg-type]


def test_calendar_previous() -> None:
    calendar = CycleCalendar()
    assert calendar.previous("2023-H1") == "2022-H2"
    assert calendar.previous("2023-H2") == "2023-H1"
    with pytest.raises(ValueError):
        calendar.previous("2023")


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (dt.datetime(2023, 1, 1, 0, 0), "2023-H1"),
        (dt.datetime(2023, 5, 5, 23, 59), "2023-H1"),
        (dt.datetime(2023, 5, 5, 23, 59, 59, 999999, tzinfo=LOCAL), "2023-H1"),
        (dt.datetime(2023, 5, 6, 0, 0), "2023-H2"),
        (dt.datetime(2023, 5, 6, 0, 0, tzinfo=LOCAL), "2023-H2"),
        # 16:59 UTC is 23:59 in Hồ Chí Minh City, 17:00 UTC already the next day there.
        (dt.datetime(2023, 5, 5, 16, 59, tzinfo=dt.UTC), "2023-H1"),
        (dt.datetime(2023, 5, 5, 17, 0, tzinfo=dt.UTC), "2023-H2"),
        (dt.datetime(2023, 11, 5, 23, 59), "2023-H2"),
        (dt.datetime(2023, 11, 6, 0, 0), "2024-H1"),
        (dt.datetime(2022, 12, 31, 23, 0), "2023-H1"),
        (dt.datetime(2022, 11, 5, 12, 0), "2022-H2"),
    ],
)
def test_open_at_around_deadlines(reference: Reference, moment: dt.datetime, expected: str) -> None:
    assert reference.calendar.open_at(moment).id == expected


def test_listed_cycle_overrides_the_rule(ref_dir: Path) -> None:
    (ref_dir / "cycles.yaml").write_text(
        (ref_dir / "cycles.yaml").read_text(encoding="utf-8")
        + "  - id: 2024-H1\n    period_start: 2024-01-01\n    period_end: 2024-04-30\n"
        "    deadline: 2024-05-10\n",
        encoding="utf-8",
    )
    calendar = load_reference(ref_dir).calendar
    cycle = calendar.get("2024-H1")
    assert cycle is not None and cycle.deadline == dt.date(2024, 5, 10)
    assert calendar.open_at(dt.datetime(2024, 5, 8, 9, 0)).id == "2024-H1"
    assert calendar.open_at(dt.datetime(2025, 5, 8, 9, 0)).id == "2025-H2"


def test_indicator_catalog(reference: Reference) -> None:
    by_code = {indicator.code: indicator for indicator in reference.indicators}
    ct1, ct2 = by_code["CT1"], by_code["CT2"]
    assert ct1.groups == ("quan_ly", "giao_vien", "nhan_vien", "hoc_sinh", "phu_huynh")
    assert ct2.groups == ("quan_ly", "giao_vien", "nhan_vien", "cong_tac_vien")
    for indicator in (ct1, ct2):
        assert (indicator.unit, indicator.target, indicator.direction) == ("%", 50, ">=")
        assert not indicator.manual
        assert indicator.program == "Kế hoạch BĐG-TE ngành giáo dục Quận 8 năm 2023"
        assert "được truyền thông nâng cao nhận thức về bảo vệ, chăm sóc trẻ em" in indicator.name
        assert set(indicator.groups) <= set(AUDIENCE_GROUPS.codes)
    manual = [indicator for indicator in reference.indicators if indicator.manual]
    assert sum("3640/QĐ-UBND" in indicator.program for indicator in manual) == 8
    assert sum("4063/QĐ-UBND" in indicator.program for indicator in manual) == 9
    assert len(manual) == 17
    for indicator in manual:
        assert indicator.target is None and indicator.value is None and indicator.goal is None
        assert indicator.groups == ()
        assert "(Phòng nhập theo QĐ " in indicator.name
        assert unicodedata.is_normalized("NFC", indicator.name)
    assert ct1.is_met(50.0) is True and ct1.is_met(49.9) is False and manual[0].is_met(1.0) is None


def test_nfd_registry_is_normalised(ref_dir: Path) -> None:
    path = ref_dir / "schools.csv"
    nfd = unicodedata.normalize("NFD", path.read_text(encoding="utf-8"))
    assert nfd != path.read_text(encoding="utf-8")
    path.write_text(nfd, encoding="utf-8")
    assert load_reference(ref_dir).schools == load_reference(REFERENCE_DIR).schools


# --------------------------------------------------------------------------------------------------
# Mistakes in schools.csv


@pytest.mark.parametrize(
    ("code", "changes", "phrase"),
    [
        ("MN010", {"level": "mamnon"}, "level 'mamnon' is not one of mam_non, tieu_hoc, thcs"),
        ("MN004", {"ownership": "tu_thuc"}, "ownership 'tu_thuc' is not one of cong_lap, ngoai_cong_lap"),
        ("MN001", {"ward": "Phường 17"}, "ward 'Phường 17' is not one of Phường 1"),
        ("MN001", {"ward": "Quận 8"}, "ward 'Quận 8'"),
        ("MN001", {"emails": "mn001(at)truong.q8.test"}, "e-mail 'mn001(at)truong.q8.test'"),
        ("MN001", {"emails": "mn001@truong.q8.test; a@b"}, "e-mail 'a@b'"),
        ("MN001", {"opened": "15/08/2023"}, "opened '15/08/2023' is not a date written YYYY-MM-DD"),
        ("MN001", {"closed": "2023-02-30"}, "closed '2023-02-30'"),
        ("MN001", {"opened": "2023-09-01", "closed": "2023-06-30"}, "opened 2023-09-01 is after closed"),
        ("TH031", {"exempt_cycles": "2023-H3"}, "exempt cycle '2023-H3'"),
        ("TH031", {"exempt_cycles": "2023-H1;HK1"}, "exempt cycle 'HK1'"),
        ("MN001", {"active": "maybe"}, "active 'maybe' is not true or false"),
        ("MN001", {"active": ""}, "active ''"),
        ("MN003", {"code": "MN/003"}, "code 'MN/003' must be 1–20 letters, digits, '-', '_' or '.'"),
        ("MN003", {"code": "-MN003"}, "code '-MN003' must be"),
        ("MN003", {"code": "A" * 21}, "code '" + "A" * 21 + "' must be"),
        ("MN003", {"code": "MN001"}, "code 'MN001' is already used on line 2"),
        ("MN003", {"code": " mn 001"}, "code 'MN001' is already used on line 2"),
        ("MN005", {"name": "  "}, "name is empty"),
    ],
)
def test_registry_mistakes_name_their_line(ref_dir: Path, code: str, changes: dict[str, str],
                                           phrase: str) -> None:
    line = _edit_school(ref_dir, code, **changes)
    _assert_error(ref_dir, "schools.csv", line, phrase)


def test_registry_tolerates_harmless_variants(ref_dir: Path) -> None:
    _edit_school(ref_dir, "MN001", ward=" phuong 04 ", active="TRUE", emails=" mn001@truong.q8.test ; ")
    _edit_school(ref_dir, "MN002", active="Không")
    loaded = load_reference(ref_dir)
    assert loaded.schools["MN001"].ward == "Phường 4"
    assert loaded.schools["MN001"].emails == ("mn001@truong.q8.test",)
    assert loaded.schools["MN002"].active is False


def test_registry_row_with_wrong_field_count(ref_dir: Path) -> None:
    path = ref_dir / "schools.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[9] = lines[9].rstrip("\n") + ",extra\n"
    path.write_text("".join(lines), encoding="utf-8")
    _assert_error(ref_dir, "schools.csv", 10, "11 fields where the header has 10")


def test_registry_header_mistakes(ref_dir: Path) -> None:
    _replace(ref_dir / "schools.csv", "ownership", "owner")
    _replace(ref_dir / "schools.csv", "exempt_cycles", "level")
    errors = _errors(ref_dir)
    assert any("schools.csv line 1: missing column(s) ownership" in error for error in errors), errors
    assert any("schools.csv line 1: repeated column(s) level" in error for error in errors), errors


def test_registry_lines_are_physical_lines(ref_dir: Path) -> None:
    # A quoted name spanning two lines shifts every later record by one physical line.
    _edit_school(ref_dir, "MN002", name="Trường Mầm non\nHai Dòng")
    line = _edit_school(ref_dir, "MN010", level="mamnon") + 1
    _assert_error(ref_dir, "schools.csv", line, "level 'mamnon'")
    assert not any("line 3:" in error for error in _errors(ref_dir))


def test_registry_not_utf8(ref_dir: Path) -> None:
    path = ref_dir / "schools.csv"
    data = path.read_bytes().split(b"\n")
    data[4] = data[4].decode("utf-8").encode("cp1258", errors="replace")
    path.write_bytes(b"\n".join(data))
    _assert_error(ref_dir, "schools.csv", 5, "not UTF-8")


def test_registry_utf8_bom_is_accepted(ref_dir: Path) -> None:
    path = ref_dir / "schools.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert "MN001" in load_reference(ref_dir).schools


def test_missing_file(ref_dir: Path) -> None:
    (ref_dir / "indicators.yaml").unlink()
    errors = _errors(ref_dir)
    assert any(error.endswith("indicators.yaml: file not found") for error in errors), errors


def test_all_mistakes_are_collected(ref_dir: Path) -> None:
    level_line = _edit_school(ref_dir, "MN010", level="mamnon")
    ward_line = _edit_school(ref_dir, "TH002", ward="Phường 0")
    cycle_line = _replace(ref_dir / "cycles.yaml", "deadline: 2023-11-05", "deadline: 2023-10-05")
    group_line = _replace(ref_dir / "indicators.yaml", "cong_tac_vien]", "cong_tac_vein]")
    errors = _errors(ref_dir)
    assert len(errors) == 4, errors
    assert f"schools.csv line {level_line}: level" in errors[0]
    assert f"schools.csv line {ward_line}: ward" in errors[1]
    assert f"cycles.yaml line {cycle_line}: cycle 2023-H2: deadline 2023-10-05" in errors[2]
    assert f"indicators.yaml line {group_line}: indicator CT2: group 'cong_tac_vein'" in errors[3]


# --------------------------------------------------------------------------------------------------
# Mistakes in cycles.yaml


@pytest.mark.parametrize(
    ("old", "new", "occurrence", "marker", "phrase"),
    [
        ("period_end: 2023-10-31", "period_end: 2023-04-30", 1, None,
         "cycle 2023-H2: period_end 2023-04-30 is before period_start 2023-05-01"),
        ("deadline: 2023-05-05", "deadline: 2023-04-05", 1, None,
         "cycle 2023-H1: deadline 2023-04-05 is before period_end 2023-04-30"),
        ("id: 2023-H2", "id: 2023-H3", 1, None, "cycle id '2023-H3' is not written like 2023-H1"),
        ("id: 2023-H2", "id: 2023-H1", 1, None, "cycle 2023-H1 is already listed on line"),
        ("deadline: 2023-05-05", "deadline: 2023-02-30", 1, None, "deadline '2023-02-30' is not a date"),
        ("deadline: 2023-05-05", "deadline: 5/5/2023", 1, None, "deadline '5/5/2023' is not a date"),
        ("timezone: Asia/Ho_Chi_Minh", "timezone: Asia/Hanoi_City", 1, None,
         "timezone 'Asia/Hanoi_City' is not a known time zone"),
        ('deadline: "05-05"', 'deadline: "13-05"', 1, None, "default_rule H1 deadline '13-05'"),
        ("deadline: 2023-05-05", "dealine: 2023-05-05", 1, None, "a cycle: unknown key 'dealine'"),
        ("deadline: 2023-05-05", "deadline: 2023-05-05\n    deadline: 2023-05-06", 1, "deadline: 2023-05-06",
         "key 'deadline' is repeated"),
        ("  - id: 2023-H2\n    period_start: 2023-05-01", "  - id: 2023-H2\n    period_start: 2023-04-15", 1,
         "period_start: 2023-04-15", "cycle 2023-H2 starts on or before the end of 2023-H1"),
    ],
)
def test_calendar_mistakes_name_their_line(ref_dir: Path, old: str, new: str, occurrence: int,
                                           marker: str | None, phrase: str) -> None:
    line = _replace(ref_dir / "cycles.yaml", old, new, occurrence=occurrence, marker=marker)
    if "already listed" in phrase or "starts on or before" in phrase:
        # Reported on the list item, which starts on the `- id:` line.
        text = (ref_dir / "cycles.yaml").read_text(encoding="utf-8")
        line = _line_of(text, text.rindex("- id:"))
    _assert_error(ref_dir, "cycles.yaml", line, phrase)


def test_calendar_yaml_syntax_error(ref_dir: Path) -> None:
    line = _replace(ref_dir / "cycles.yaml", "    period_end: 2023-10-31", "    period_end: [2023-10-31")
    errors = _errors(ref_dir)
    assert len(errors) == 1 and "cycles.yaml line " in errors[0] and "not valid YAML" in errors[0], errors
    reported = int(re.search(r"line (\d+)", errors[0]).group(1))  # type: ignore[union-attr]
    assert line <= reported <= line + 2


# --------------------------------------------------------------------------------------------------
# Mistakes in indicators.yaml


@pytest.mark.parametrize(
    ("old", "new", "occurrence", "marker", "phrase"),
    [
        ("cong_tac_vien]", "cong_tac_vein]", 1, None, "indicator CT2: group 'cong_tac_vein' is not one of"),
        ("[quan_ly, giao_vien", "[quan_ly, quan_ly", 1, None,
         "indicator CT1: group 'quan_ly' is listed twice"),
        ("code: BDG2", "code: BDG1", 1, None, "indicator code 'BDG1' is already used on line"),
        ("code: CT2", "code: ct-2", 1, None, "indicator code 'ct-2' must be upper-case"),
        ('direction: ">="', 'direction: "=>"', 2, None, "indicator CT2: direction '=>' is not '>=' or '<='"),
        ("target: 50", 'target: "50%"', 1, None, "indicator CT1: target '50%' is not a number"),
        ("target: null", "target: nhiều", 3, None, "indicator BDG3: target 'nhiều' is not a number"),
        ("    values: {}", "    formula: {groups: [giao_vien]}", 1, None,
         "indicator BDG1: has both a formula and manual: true"),
        ('unit: "%"', 'unit: "%"\n    value: 60', 1, "value: 60", "indicator CT1: value is only for manual"),
        ('unit: "%"', 'unit: "%"\n    values: {2023-H1: 60}', 1, "values:",
         "indicator CT1: values are only for"),
        ("    values: {}", "    values: {2023-H1: 12, 2023: 3}", 1, None, "values key '2023' is not a cycle"),
        ("    values: {}", "    values: {2023-H1: mười}", 1, None,
         "value for 2023-H1 'mười' is not a number"),
        ("    values: {}", "    value: 4\n    values: {2023-H1: 5}", 1, "value: 4",
         "has both value and values"),
        ("    values: {}", "    values: [12]", 1, None, "values must map cycle ids to numbers"),
        ("    manual: true", "    manual: có", 1, None, "indicator BDG1: manual 'có' is not true or false"),
        ("    program: Kế hoạch BĐG-TE ngành giáo dục Quận 8 năm 2023\n", "    program: \n", 2, "program",
         "indicator CT2: program is empty"),
        ("    note:", "    notes:", 1, "notes", "an indicator: unknown key 'notes'"),
        ("groups: [quan_ly, giao_vien, nhan_vien, cong_tac_vien]", "groups: []", 1, None,
         "indicator CT2: formula groups is empty"),
    ],
)
def test_indicator_mistakes_name_their_line(ref_dir: Path, old: str, new: str, occurrence: int,
                                            marker: str | None, phrase: str) -> None:
    line = _replace(ref_dir / "indicators.yaml", old, new, occurrence=occurrence, marker=marker)
    if "already used" in phrase:
        text = (ref_dir / "indicators.yaml").read_text(encoding="utf-8")
        line = _line_of(text, text.index("code: BDG1", text.index("code: BDG1") + 1))
    _assert_error(ref_dir, "indicators.yaml", line, phrase)


def test_indicator_without_formula_or_manual(ref_dir: Path) -> None:
    _replace(ref_dir / "indicators.yaml", "    manual: true", "    manual: false")
    text = (ref_dir / "indicators.yaml").read_text(encoding="utf-8")
    line = _line_of(text, text.index("- code: BDG1"))
    _assert_error(ref_dir, "indicators.yaml", line,
                  "indicator BDG1: needs a formula (groups) or manual: true")
