"""The cycle report's computations, checked against figures recomputed by hand from the fixture rows."""

from __future__ import annotations

import datetime as dt
import itertools

import pandas as pd
import pytest

from schemas.contract import RULES
from tasks.report.build import build_report
from tasks.report.cycle_data import SCHOOL_STATES
from tasks.report.indicators import meets
from tasks.report.section_2_status import completeness_counts
from tasks.report.section_6_incidents import suppress
from tasks.report.wording import (
    SUPPRESSED,
    fmt_change,
    fmt_date,
    fmt_datetime,
    fmt_int,
    fmt_pct,
    ward_sort_key,
)
from tests.support import rollup_data as fx


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator


def reach_ratio(
    codes: set[str] | None, groups: tuple[str, ...], *, field: str = "reached", of: str = "total"
) -> float:
    """Σfield / Σof over the fixture's reach rows of these schools and groups (None = every school)."""
    index = {"total": 2, "female": 3, "reached": 4, "reached_female": 5}
    rows = [r for r in fx.REACH if r[1] in groups and (codes is None or r[0] in codes)]
    return sum(r[index[field]] for r in rows) / sum(r[index[of]] for r in rows)


@pytest.fixture(scope="module")
def report():
    return build_report(fx.make_cycle_data())


def row_of(frame: pd.DataFrame, key: str, value: object) -> pd.Series:
    matches = frame[frame[key] == value]
    assert len(matches) == 1, f"{key}={value!r}: {len(matches)} rows"
    return matches.iloc[0]


# -------------------------------------------------------------------------------- formats


def test_vietnamese_formats():
    assert fmt_int(1234) == "1.234"
    assert fmt_int(1234567) == "1.234.567"
    assert fmt_int(0) == "0"
    assert fmt_int(None) == "—"
    assert fmt_pct(0.523) == "52,3%"
    assert fmt_pct(1) == "100,0%"
    assert fmt_pct(0.5235) == "52,4%"  # half up, as people round
    assert fmt_pct(12.345) == "1.234,5%"
    assert fmt_date(dt.date(2023, 5, 5)) == "05/05/2023"
    # A UTC moment is shown in Ho Chi Minh City time.
    assert fmt_datetime(dt.datetime(2023, 5, 5, 2, 30, tzinfo=dt.UTC)) == "09:30 05/05/2023"
    assert fmt_change(0.0321, "%") == "+3,2 điểm %"
    assert fmt_change(-12, "") == "-12"


def test_wards_sort_naturally():
    wards = ["Phường 10", "Phường 2", "Phường 1", "Phường 16"]
    assert sorted(wards, key=ward_sort_key) == ["Phường 1", "Phường 2", "Phường 10", "Phường 16"]


def test_meets_follows_direction():
    assert meets(0.5, 0.5, ">=") is True
    assert meets(0.49, 0.5, ">=") is False
    assert meets(0.04, 0.045, "<=") is True
    assert meets(None, 0.5) is None
    assert meets(0.5, None) is None


# -------------------------------------------------------------------------------- input


def test_cycle_data_rejects_missing_columns_and_naive_as_of():
    with pytest.raises(ValueError, match="reach"):
        fx.make_cycle_data(reach=pd.DataFrame({"school_code": []}))
    with pytest.raises(ValueError, match="timezone"):
        fx.make_cycle_data(as_of=dt.datetime(2023, 5, 10))
    bad = fx.schools_frame(fx.SCHOOLS)
    bad.loc[0, "state"] = "submitted"
    with pytest.raises(ValueError, match="submitted"):
        fx.make_cycle_data(schools=bad)


def test_empty_cycle_builds():
    data = fx.make_empty_cycle_data()
    report = build_report(data)
    summary = report.table("bang-1-1").frame.iloc[0]
    assert summary["expected"] == 0 and summary["received_rate"] is None
    assert report.table("bang-2-1").frame.set_index("code").loc["CT1", "value"] is None


# -------------------------------------------------------------------------------- section 1


def test_completeness_counts_and_rates(report):
    states = [row[5] for row in fx.SCHOOLS]
    expected = sum(state != "exempt" for state in states)
    on_time, late = states.count("on_time"), states.count("late")
    summary = report.table("bang-1-1").frame.iloc[0]
    assert summary["expected"] == expected == 6
    assert summary["received"] == on_time + late == 3
    assert (summary["on_time"], summary["late"], summary["missing"]) == (2, 1, 1)
    assert (summary["received_invalid"], summary["held"], summary["exempt"]) == (1, 1, 1)
    assert summary["received_rate"] == pytest.approx(ratio(on_time + late, expected))
    assert summary["on_time_rate"] == pytest.approx(ratio(on_time, expected))
    assert summary["missing_rate"] == pytest.approx(ratio(1, expected))


def test_completeness_by_level_and_ward(report):
    by_level = report.table("bang-1-2").frame
    preschool = row_of(by_level, "label", "Mầm non")
    assert (preschool["expected"], preschool["on_time"], preschool["late"], preschool["missing"]) == (
        3,
        1,
        1,
        1,
    )
    secondary = row_of(by_level, "label", "Trung học cơ sở")
    # CS02 is exempt: counted apart, not expected.
    assert (secondary["expected"], secondary["held"], secondary["exempt"]) == (1, 1, 1)
    assert list(by_level["label"]) == ["Mầm non", "Tiểu học", "Trung học cơ sở"]
    by_ward = report.table("bang-1-3").frame
    assert list(by_ward["label"]) == ["Phường 1", "Phường 2", "Phường 10"]
    ward1 = row_of(by_ward, "label", "Phường 1")
    assert (ward1["expected"], ward1["received"], ward1["received_rate"]) == (2, 2, 1.0)


def test_completeness_rates_never_exceed_one():
    for states in itertools.product(SCHOOL_STATES, repeat=3):
        counts = completeness_counts(pd.DataFrame({"state": list(states)}))
        for key in ("received_rate", "on_time_rate", "late_rate", "missing_rate"):
            assert counts[key] is None or 0 <= counts[key] <= 1, states
        assert counts["expected"] == sum(state != "exempt" for state in states)
        if counts["expected"]:
            parts = ("on_time", "late", "received_invalid", "held", "missing")
            assert sum(counts[part] for part in parts) == counts["expected"]


def test_missing_and_late_lists(report):
    not_received = report.table("bang-1-4").frame
    assert set(not_received["code"]) == {"MN03", "TH02", "CS01"}
    assert row_of(not_received, "code", "MN03")["state_label"] == "Chưa nộp"
    assert row_of(not_received, "code", "TH02")["state_label"] == "Đã gửi, chưa hợp lệ"
    assert row_of(not_received, "code", "CS01")["state_label"] == "Chờ xem xét"
    late = report.table("bang-1-5").frame
    assert list(late["code"]) == ["MN02"]
    assert fmt_datetime(late.iloc[0]["received_at"]) == "14:05 07/05/2023"


# -------------------------------------------------------------------------------- section 2


def test_district_indicators(report):
    district = report.table("bang-2-1").frame.set_index("code")
    ct1 = reach_ratio(None, fx.CT1.groups)
    ct2 = reach_ratio(None, fx.CT2.groups)
    assert district.loc["CT1", "value"] == pytest.approx(ct1)
    assert district.loc["CT2", "value"] == pytest.approx(ct2)
    assert ct1 < 0.5 < ct2  # the fixture makes CT1 miss and CT2 meet the 50% target
    assert district.loc["CT1", "met"] is False
    assert district.loc["CT2", "met"] is True
    assert district.loc["CT1", "target"] == pytest.approx(0.5)
    assert district.loc["CT1", "female_share_reached"] == pytest.approx(
        reach_ratio(None, fx.CT1.groups, field="reached_female", of="reached")
    )
    assert district.loc["CT1", "female_share_total"] == pytest.approx(
        reach_ratio(None, fx.CT1.groups, field="female", of="total")
    )
    assert district.loc["CT1", "total"] == sum(r[2] for r in fx.REACH if r[1] in fx.CT1.groups)


def test_manual_indicators(report):
    district = report.table("bang-2-1").frame.set_index("code")
    # Entered in catalog units (72.5 %) against a 60 % target.
    assert district.loc["BDG1", "value"] == pytest.approx(0.725)
    assert district.loc["BDG1", "met"] is True
    # Not entered yet: named once in the note, not a row of its own.
    assert "TE1" not in district.index
    assert report.table("bang-2-1").note.endswith("chưa đưa vào bảng: TE1.")


def test_indicators_by_level_ward_and_school(report):
    preschools = {r[0] for r in fx.SCHOOLS if r[2] == "mam_non"}
    ward1 = {r[0] for r in fx.SCHOOLS if r[3] == "Phường 1"}
    by_level = report.table("bang-2-3").frame
    assert row_of(by_level, "label", "Mầm non")["CT1_rate"] == pytest.approx(
        reach_ratio(preschools, fx.CT1.groups)
    )
    by_ward = report.table("bang-2-4").frame
    assert row_of(by_ward, "ward", "Phường 1")["CT2_rate"] == pytest.approx(reach_ratio(ward1, fx.CT2.groups))
    # A ward without data keeps its row, with no rate and no verdict.
    empty_ward = row_of(by_ward, "ward", "Phường 10")
    assert empty_ward["schools"] == 0 and empty_ward["CT1_rate"] is None and empty_ward["CT1_met"] is None
    per_school = report.table("bang-2-5").frame
    for code in ("MN01", "MN02", "TH01"):
        row = row_of(per_school, "school_code", code)
        expected = reach_ratio({code}, fx.CT1.groups)
        assert row["CT1_rate"] == pytest.approx(expected)
        assert row["CT1_met"] is (expected >= 0.5)
    assert set(per_school["school_code"]) == {"MN01", "MN02", "TH01"}


def test_reach_by_group(report):
    groups = report.table("bang-2-2").frame
    pupils = row_of(groups, "group", "hoc_sinh")
    rows = [r for r in fx.REACH if r[1] == "hoc_sinh"]
    assert pupils["total"] == sum(r[2] for r in rows)
    assert pupils["reached_female"] == sum(r[5] for r in rows)
    assert pupils["female_rate"] == pytest.approx(sum(r[5] for r in rows) / sum(r[3] for r in rows))


def test_child_protection_staff(report):
    staff = report.table("bang-2-6").frame.iloc[0]
    assert staff["staff"] == sum(r[1] for r in fx.GENERAL)
    assert staff["trained"] == sum(r[2] for r in fx.GENERAL)


# -------------------------------------------------------------------------------- section 3


def test_activities(report):
    by_type = report.table("bang-3-1").frame
    month = row_of(by_type, "activity_type", "thang_hd_tre_em")
    rows = [r for r in fx.ACTIVITIES if r[1] == "thang_hd_tre_em"]
    assert month["activities"] == len(rows) == 2
    assert month["schools"] == 2
    assert month["participants"] == sum(r[6] + r[8] + r[10] for r in rows)
    assert row_of(by_type, "activity_type", "trung_thu")["activities"] == 0
    people = report.table("bang-3-2").frame
    students = row_of(people, "group", "students")
    assert students["total"] == sum(r[8] for r in fx.ACTIVITIES)
    assert students["female"] == sum(r[9] for r in fx.ACTIVITIES)
    assert students["male"] == students["total"] - students["female"]
    total = row_of(people, "group", "all")
    assert total["total"] == sum(r[6] + r[8] + r[10] for r in fx.ACTIVITIES)
    months = report.table("bang-3-3").frame
    assert row_of(months, "activity_type", "thang_hd_tre_em")["schools"] == 2
    gender_month = row_of(months, "activity_type", "thang_hd_bdg")
    assert gender_month["schools"] == 1
    assert gender_month["share"] == pytest.approx(1 / 3)  # of the three schools with accepted reports


# -------------------------------------------------------------------------------- section 4


def test_self_assessment(report):
    shares = report.table("bang-4-1").frame
    hotline = row_of(shares, "item", "tong_dai_111")
    assert (hotline["answered"], hotline["yes"], hotline["no"]) == (3, 2, 1)
    assert hotline["yes_share"] == pytest.approx(2 / 3)
    # A blank answer (allowed outside preschools) is not counted as answered.
    inspection = row_of(shares, "item", "tu_kiem_tra_an_toan")
    assert (inspection["answered"], inspection["yes_share"]) == (2, 1.0)
    said_no = report.table("bang-4-2").frame
    assert list(zip(said_no["item"], said_no["school_code"], strict=True)) == [
        ("tong_dai_111", "MN02"),
        ("ban_giao_he", "TH01"),
    ]


# -------------------------------------------------------------------------------- section 5


def test_suppression():
    assert [suppress(n) for n in (0, 1, 4, 5, 12)] == [0, SUPPRESSED, SUPPRESSED, 5, 12]


def test_public_incidents_are_suppressed_totals(report):
    public = report.table("bang-5-1").frame
    assert list(public.columns).count("school_code") == 0
    violence = row_of(public, "category", "bao_luc")
    assert violence["cases"] == "<5"  # 2 + 1 = 3 cases
    drowning = row_of(public, "category", "duoi_nuoc")
    rows = [r for r in fx.INCIDENTS if r[1] == "duoi_nuoc"]
    assert drowning["cases"] == sum(r[2] for r in rows) == 66
    assert drowning["children_female"] == sum(r[4] for r in rows)
    assert row_of(public, "category", "xam_hai_tinh_duc")["cases"] == 0


def test_restricted_table_holds_per_school_counts(report):
    restricted = report.restricted_incidents.frame
    mn02 = restricted[(restricted["school_code"] == "MN02") & (restricted["category"] == "duoi_nuoc")]
    assert int(mn02.iloc[0]["cases"]) == 61
    # Only rows with an incident are listed.
    assert not (
        (restricted["school_code"] == "TH01") & (restricted["category"] == "tai_nan_thuong_tich")
    ).any()


# -------------------------------------------------------------------------------- section 6


def test_data_quality(report):
    counts = report.table("bang-6-1").frame.set_index("state")["count"]
    states = [row[2] for row in fx.SUBMISSIONS]
    for state in ("accepted", "rejected", "held", "superseded"):
        assert counts[state] == states.count(state)
    assert counts["all"] == len(fx.SUBMISSIONS)
    assert counts["unknown_school"] == 1
    rules = report.table("bang-6-2").frame
    errors = rules[rules["severity"] == "error"]
    top = errors.iloc[0]
    assert top["rule"] == "not_integer"
    assert (top["count"], top["submissions"]) == (2, 1)
    assert top["title"] == RULES["not_integer"].title
    assert list(rules["severity"]) == sorted(rules["severity"], key=["error", "warning"].index)


# -------------------------------------------------------------------------------- section 7


def test_change_against_previous_cycle(report):
    change = report.table("bang-7-1").frame.set_index("label")
    previous_ct1 = sum(r[4] for r in fx.PREVIOUS_REACH if r[1] in fx.CT1.groups) / sum(
        r[2] for r in fx.PREVIOUS_REACH if r[1] in fx.CT1.groups
    )
    ct1 = change.loc["CT1: tỷ lệ được truyền thông"]
    assert ct1["previous"] == pytest.approx(previous_ct1)
    assert ct1["current"] == pytest.approx(reach_ratio(None, fx.CT1.groups))
    assert ct1["change"] == pytest.approx(ct1["current"] - previous_ct1)
    received = change.loc["Số trường đã nộp hợp lệ"]
    assert (received["previous"], received["current"], received["change"]) == (2, 3, 1)
    reached = change.loc["Tổng số được truyền thông"]
    assert reached["previous"] == sum(r[4] for r in fx.PREVIOUS_REACH)
    assert reached["current"] == sum(r[4] for r in fx.REACH)


def test_no_previous_cycle_says_so():
    report = build_report(fx.make_cycle_data(previous=False))
    change = report.sections[-1]
    assert change.tables == ()
    assert "Không có số liệu kỳ trước" in change.paragraphs[0]
    assert report.previous_cycle_id is None


def test_sheet_names_fit_excel(report):
    names = [table.sheet for section in report.sections for table in section.tables]
    assert len(names) == len(set(names))
    assert all(len(name) <= 31 for name in names)
