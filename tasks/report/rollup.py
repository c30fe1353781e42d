"""The cycle report (SPEC §5) as pure computations: plain data in, presentation-neutral tables out.

`CycleData` is what the database loader hands over; `build_report` turns it into a `CycleReport`
whose sections hold `Table`s (a frame of raw values plus Vietnamese column labels and kinds). The
HTML and Excel writers only format and lay out those tables, so both show the same figures.

Decisions the office should know about:
- A school is *expected* unless it is `exempt`; exempt schools are counted apart and never enter a
  rate's denominator. The completeness states partition the expected schools, so every completeness
  rate is a share of one whole and cannot exceed 100%.
- *Received* means a valid (accepted) report is in, on time or late. A school whose files were all
  rejected (`received_invalid`) or are waiting for review (`held`) is not yet received; both are
  listed with the missing schools so the specialist can chase them.
- Reach indicators (CT1, CT2, any catalog entry with `groups`) are Σreached / Σtotal over those
  audience groups of the schools' current accepted submissions (a ratio of sums, not a mean of rates).
- Public incident counts from 1 to 4 are shown as "<5"; there is no total row, so a suppressed cell
  cannot be recovered by subtraction. Per-school incident counts exist only in the restricted table.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from config.settings import TIMEZONE
from schemas.contract import (
    ACTIVITY_TYPES,
    AUDIENCE_GROUPS,
    CHECKLIST_ITEMS,
    INCIDENT_CATEGORIES,
    RULES,
    SCHOOL_LEVELS,
)

if TYPE_CHECKING:
    from schemas.reference import Cycle, Indicator

# --------------------------------------------------------------------------------------------------
# Input

SCHOOL_STATES = ("on_time", "late", "received_invalid", "held", "missing", "exempt")
SUBMISSION_STATES = ("accepted", "rejected", "held", "superseded")

COLUMNS: dict[str, tuple[str, ...]] = {
    "schools": (
        "code",
        "name",
        "level",
        "ward",
        "ownership",
        "state",
        "on_time",
        "received_at",
        "submission_id",
    ),
    "submissions": (
        "id",
        "school_code",
        "state",
        "received_at",
        "sha256",
        "error_count",
        "warning_count",
    ),
    "findings": ("submission_id", "severity", "rule"),
    "reach": ("school_code", "group", "total", "female", "reached", "reached_female"),
    "activities": (
        "school_code",
        "activity_type",
        "start_date",
        "end_date",
        "format",
        "content",
        "staff",
        "staff_female",
        "students",
        "students_female",
        "parents",
        "parents_female",
    ),
    "checklist": ("school_code", "item", "answer"),
    "incidents": (
        "school_code",
        "category",
        "cases",
        "children",
        "children_female",
        "reported",
        "supported",
    ),
    "general": ("school_code", "child_protection_staff", "trained_staff"),
}
PREVIOUS_FRAMES = ("schools", "reach", "activities")

# Count columns: blank means 0 (SPEC §3 for activities and incidents; reach counts are required).
_COUNTS: dict[str, tuple[str, ...]] = {
    "reach": ("total", "female", "reached", "reached_female"),
    "activities": ("staff", "staff_female", "students", "students_female", "parents", "parents_female"),
    "incidents": ("cases", "children", "children_female", "reported", "supported"),
    "general": ("child_protection_staff", "trained_staff"),
    "submissions": ("error_count", "warning_count"),
}


def empty_frame(name: str) -> pd.DataFrame:
    """Return an empty frame with the columns `CycleData` expects for `name`."""
    return pd.DataFrame({column: pd.Series(dtype=object) for column in COLUMNS[name]})


def _check_columns(name: str, frame: pd.DataFrame) -> None:
    missing = [column for column in COLUMNS[name] if column not in frame.columns]
    if missing:
        raise ValueError(f"{name} frame lacks columns {missing}")


@dataclass(frozen=True, eq=False)
class PreviousCycle:
    """The previous cycle's schools, reach and activities frames (same columns as in `CycleData`)."""

    cycle_id: str
    schools: pd.DataFrame
    reach: pd.DataFrame
    activities: pd.DataFrame

    def __post_init__(self) -> None:
        for name in PREVIOUS_FRAMES:
            _check_columns(name, getattr(self, name))


@dataclass(frozen=True, eq=False)
class CycleData:
    """Everything one cycle's report is computed from; frames hold only current accepted data.

    Columns (COLUMNS) and the dtypes expected; extra columns are ignored, count columns are coerced
    (blank → 0) and text columns may be `object` or `str`:
    - schools: code, name, level (SCHOOL_LEVELS code), ward, ownership: str; state: one of
      SCHOOL_STATES; on_time: bool; received_at: tz-aware datetime64 or NaT; submission_id: Int64.
    - submissions: id: int; school_code: str or None; state: one of SUBMISSION_STATES;
      received_at: tz-aware datetime64; sha256: str; error_count, warning_count: int.
    - findings: submission_id: int; severity: "error" | "warning"; rule: RULES code.
    - reach: school_code, group (AUDIENCE_GROUPS code): str; total, female, reached, reached_female: int.
    - activities: school_code, activity_type, format, content: str; start_date, end_date: date or
      None; staff, staff_female, students, students_female, parents, parents_female: int.
    - checklist: school_code, item (CHECKLIST_ITEMS code): str; answer: bool or None.
    - incidents: school_code, category (INCIDENT_CATEGORIES code): str; cases, children,
      children_female, reported, supported: int.
    - general: school_code: str; child_protection_staff, trained_staff: int.
    `manual_values` are in the catalog's unit (a "%" indicator's 72.5 means 72.5%) and override
    `Indicator.value`; an indicator with neither shows "Chưa nhập".
    """

    cycle: Cycle
    as_of: dt.datetime
    indicators: tuple[Indicator, ...]
    schools: pd.DataFrame
    submissions: pd.DataFrame
    findings: pd.DataFrame
    reach: pd.DataFrame
    activities: pd.DataFrame
    checklist: pd.DataFrame
    incidents: pd.DataFrame
    general: pd.DataFrame
    manual_values: Mapping[str, float] = field(default_factory=dict)
    previous_cycle_id: str | None = None
    previous: PreviousCycle | None = None

    def __post_init__(self) -> None:
        if self.as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")
        for name in COLUMNS:
            _check_columns(name, getattr(self, name))
        unknown = set(self.schools["state"].dropna()) - set(SCHOOL_STATES)
        if unknown:
            raise ValueError(f"unknown school states {sorted(unknown)}")


# --------------------------------------------------------------------------------------------------
# Output: tables that know their Vietnamese labels but not how they are drawn

ColumnKind = Literal["text", "int", "pct", "date", "datetime", "met", "small_count", "measure", "change"]


@dataclass(frozen=True)
class Column:
    """One report column: frame key, Vietnamese label, and how its raw values are shown."""

    key: str
    label: str
    kind: ColumnKind = "text"
    # A "met" column whose verdict colours this one (green met, red not met).
    met_key: str | None = None
    # For "measure" and "change": the column holding each row's unit ("%" means a 0–1 fraction).
    unit_key: str | None = None
    empty: str = "—"
    width: int | None = None


@dataclass(frozen=True, eq=False)
class Table:
    """A titled frame of raw values with the columns to show, in order."""

    id: str
    title: str
    sheet: str
    columns: tuple[Column, ...]
    frame: pd.DataFrame
    note: str = ""

    def __post_init__(self) -> None:
        if len(self.sheet) > 31 or re.search(r"[\[\]:*?/\\]", self.sheet):
            raise ValueError(f"bad Excel sheet name {self.sheet!r}")
        missing = [c.key for c in self.columns if c.key not in self.frame.columns]
        if missing:
            raise ValueError(f"table {self.id} lacks columns {missing}")


@dataclass(frozen=True, eq=False)
class Section:
    """One numbered report section: heading, lead paragraphs, tables."""

    number: int
    title: str
    tables: tuple[Table, ...]
    paragraphs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class CycleReport:
    """The computed report: header facts, the seven sections after the header, chart data."""

    cycle_id: str
    cycle_label: str
    period_start: dt.date
    period_end: dt.date
    deadline: dt.date
    as_of: dt.datetime
    previous_cycle_id: str | None
    sections: tuple[Section, ...]
    # Chart data: ward, then one fraction column per reach indicator; and per-level state counts.
    reach_by_ward: pd.DataFrame
    reach_chart_codes: tuple[str, ...]
    reach_chart_target: float | None
    completeness_by_level: pd.DataFrame
    # Per-school incident counts: only render_restricted_xlsx may read this.
    restricted_incidents: Table
    restricted_totals: Table

    def table(self, table_id: str) -> Table:
        """Return the table with this id."""
        for section in self.sections:
            for table in section.tables:
                if table.id == table_id:
                    return table
        raise KeyError(table_id)


# --------------------------------------------------------------------------------------------------
# Vietnamese labels and display formats (shared by the HTML page and the SVG charts)

OFFICE_PARENT = "ỦY BAN NHÂN DÂN QUẬN 8"
OFFICE = "PHÒNG GIÁO DỤC VÀ ĐÀO TẠO"
NATION = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập - Tự do - Hạnh phúc"
PLACE = "Quận 8"
DOC_NUMBER = "Số:\u00a0\u00a0\u00a0\u00a0\u00a0\u00a0\u00a0\u00a0/BC-GDĐT"  # the office writes the number in
TITLE = "BÁO CÁO TỔNG HỢP KẾT QUẢ THỰC HIỆN CÔNG TÁC BÌNH ĐẲNG GIỚI VÀ TRẺ EM"

STATE_LABELS = {
    "on_time": "Đúng hạn",
    "late": "Trễ hạn",
    "received_invalid": "Đã gửi, chưa hợp lệ",
    "held": "Chờ xem xét",
    "missing": "Chưa nộp",
    "exempt": "Miễn báo cáo",
}
SUBMISSION_STATE_LABELS = {
    "accepted": "Hợp lệ",
    "rejected": "Không hợp lệ (trả lại)",
    "held": "Chờ xem xét (địa chỉ gửi chưa đăng ký)",
    "superseded": "Đã được thay thế bằng bản mới hơn",
}
SEVERITY_LABELS = {"error": "Lỗi", "warning": "Cảnh báo"}
MET_TEXT = {True: "Đạt", False: "Chưa đạt"}
NOT_ENTERED = "Chưa nhập"
SUPPRESSED = "<5"
PARTICIPANT_GROUPS = (
    ("staff", "Cán bộ, giáo viên, nhân viên"),
    ("students", AUDIENCE_GROUPS.label("hoc_sinh")),
    ("parents", AUDIENCE_GROUPS.label("phu_huynh")),
)
MONTHS_OF_ACTION = ("thang_hd_tre_em", "thang_hd_bdg")
TOP_RULES = 10


def _missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _group_digits(text: str) -> str:
    # Python groups with "," and marks decimals with "."; Vietnamese does the reverse.
    return text.replace(",", "\0").replace(".", ",").replace("\0", ".")


def fmt_int(value: object, empty: str = "—") -> str:
    """Format a count the Vietnamese way: 1.234."""
    if _missing(value):
        return empty
    return _group_digits(f"{round(float(value)):,d}")  # type: ignore[arg-type]


def _round_half_up(value: float, digits: int) -> Decimal:
    # repr(round(...)) strips binary noise first, so 52.35 rounds to 52.4 as a reader expects.
    return Decimal(repr(round(value, 9))).quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP)


def fmt_number(value: object, digits: int = 1, empty: str = "—") -> str:
    """Format a decimal number the Vietnamese way (1.234,5), dropping a zero fraction."""
    if _missing(value):
        return empty
    number = float(value)  # type: ignore[arg-type]
    if number == int(number):
        return fmt_int(number)
    return _group_digits(f"{_round_half_up(number, digits):,.{digits}f}")


def fmt_pct(value: object, digits: int = 1, empty: str = "—") -> str:
    """Format a 0–1 fraction as a Vietnamese percentage: 52,3%."""
    if _missing(value):
        return empty
    return _group_digits(f"{_round_half_up(float(value) * 100, digits):,.{digits}f}") + "%"  # type: ignore[arg-type]


def fmt_date(value: object, empty: str = "—") -> str:
    """Format a date as dd/mm/yyyy."""
    if _missing(value):
        return empty
    if isinstance(value, dt.datetime):
        value = local_time(value)
    return f"{value:%d/%m/%Y}"


def fmt_datetime(value: object, empty: str = "—") -> str:
    """Format a moment in Asia/Ho_Chi_Minh as hh:mm dd/mm/yyyy."""
    if _missing(value):
        return empty
    return f"{local_time(value):%H:%M %d/%m/%Y}"  # type: ignore[arg-type]


def fmt_change(value: object, unit: str, empty: str = "—") -> str:
    """Format a difference with its sign: +12, -3, +3,2 điểm %."""
    if _missing(value):
        return empty
    number = float(value)  # type: ignore[arg-type]
    sign = "+" if number > 0 else ("-" if number < 0 else "")
    if unit == "%":
        return f"{sign}{fmt_number(abs(number) * 100, 1)} điểm %"
    return f"{sign}{fmt_number(abs(number))}"


def fmt_measure(value: object, unit: str, empty: str = "—") -> str:
    """Format a value in its unit: "%" values (0–1 fractions) as percentages, others as numbers."""
    if _missing(value):
        return empty
    if unit == "%":
        return fmt_pct(value)
    return fmt_number(value, 2)


def fmt_small_count(value: object) -> str:
    """Format a suppressed public count: an int, or the "<5" marker already applied."""
    if isinstance(value, str):
        return value
    return fmt_int(value)


def local_time(moment: dt.datetime | pd.Timestamp) -> dt.datetime:
    """Return a moment in Asia/Ho_Chi_Minh (naive moments are taken as already local)."""
    if isinstance(moment, pd.Timestamp):
        moment = moment.to_pydatetime()
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(TIMEZONE)


def administrative_date(moment: dt.datetime) -> str:
    """Return the dated line under the motto: "Quận 8, ngày 06 tháng 05 năm 2023"."""
    day = local_time(moment)
    return f"{PLACE}, ngày {day:%d} tháng {day:%m} năm {day:%Y}"


def ward_sort_key(ward: object) -> tuple[Any, ...]:
    """Sort wards naturally: Phường 2 before Phường 10."""
    text = "" if _missing(ward) else str(ward)
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text))


def level_label(code: object) -> str:
    """Return a school level's Vietnamese label (the code itself if unknown)."""
    return SCHOOL_LEVELS.label(str(code)) if str(code) in SCHOOL_LEVELS.codes else str(code)


def meets(value: float | None, target: float | None, direction: str = ">=") -> bool | None:
    """Return whether a value meets its target in the indicator's direction; None when unknown."""
    if _missing(value) or _missing(target):
        return None
    if direction in ("<=", "<"):
        return bool(value <= target) if direction == "<=" else bool(value < target)  # type: ignore[operator]
    if direction == ">":
        return bool(value > target)  # type: ignore[operator]
    return bool(value >= target)  # type: ignore[operator]


def verdict(value: object) -> bool | None:
    """Return a met/not-met cell as True, False or None (NumPy booleans included)."""
    if value is None or isinstance(value, str):
        return None
    if isinstance(value, bool):
        return value
    try:
        return None if pd.isna(value) else bool(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if not denominator else float(numerator) / float(denominator)


def indicator_fraction(indicator: Indicator, value: float | None) -> float | None:
    """Return a catalog figure as the report holds it: "%" values (written 50) as fractions (0.5)."""
    if _missing(value):
        return None
    number = float(value)  # type: ignore[arg-type]
    # The catalog writes percentages in points (target: 50); the report computes fractions.
    return number / 100 if _unit(indicator) == "%" else number


def _unit(indicator: Indicator) -> str:
    unit = str(getattr(indicator, "unit", "") or "").strip()
    return "%" if unit in ("%", "percent", "phần trăm", "tỷ lệ", "tỷ lệ %") else unit


def _target(indicator: Indicator) -> float | None:
    return indicator_fraction(indicator, getattr(indicator, "target", None))


def _direction(indicator: Indicator) -> str:
    return str(getattr(indicator, "direction", ">=") or ">=")


def _is_reach(indicator: Indicator) -> bool:
    return not getattr(indicator, "manual", False) and bool(getattr(indicator, "groups", ()))


# --------------------------------------------------------------------------------------------------
# Normalising the input frames


def _counts(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    frame = frame.copy()
    for column in _COUNTS.get(name, ()):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").fillna(0).astype("int64")
    return frame


def _text(series: pd.Series) -> pd.Series:
    return series.astype(object).where(series.notna(), "").map(str)


def _schools(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for column in ("code", "name", "level", "ward", "ownership", "state"):
        frame[column] = _text(frame[column])
    return frame.sort_values("code", kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------------
# Section 1: submission status


def completeness_counts(schools: pd.DataFrame) -> dict[str, Any]:
    """Return state counts and rates for a set of schools; exempt schools are outside `expected`."""
    states = schools["state"].value_counts()
    counts = {state: int(states.get(state, 0)) for state in SCHOOL_STATES}
    expected = len(schools) - counts["exempt"]
    received = counts["on_time"] + counts["late"]
    return {
        "expected": expected,
        "received": received,
        **counts,
        "received_rate": _ratio(received, expected),
        "on_time_rate": _ratio(counts["on_time"], expected),
        "late_rate": _ratio(counts["late"], expected),
        "missing_rate": _ratio(counts["missing"], expected),
    }


def completeness_by(schools: pd.DataFrame, by: str) -> pd.DataFrame:
    """Return completeness counts and rates per level or ward, in the office's usual order."""
    rows = [{by: key, **completeness_counts(group)} for key, group in schools.groupby(by, sort=False)]
    frame = pd.DataFrame(rows, columns=[by, *_COMPLETENESS_KEYS])
    if by == "level":
        order = {code: i for i, code in enumerate(SCHOOL_LEVELS.codes)}
        frame["_order"] = frame["level"].map(lambda code: (order.get(code, len(order)), code))
        frame["label"] = frame["level"].map(level_label)
    else:
        frame["_order"] = frame[by].map(ward_sort_key)
        frame["label"] = frame[by]
    frame = frame.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)
    return frame


_COMPLETENESS_KEYS = (
    "expected",
    "received",
    *SCHOOL_STATES,
    "received_rate",
    "on_time_rate",
    "late_rate",
    "missing_rate",
)


def _completeness_columns(first: Column) -> tuple[Column, ...]:
    return (
        first,
        Column("expected", "Số trường phải nộp", "int"),
        Column("received", "Đã nộp hợp lệ", "int"),
        Column("received_rate", "Tỷ lệ đã nộp", "pct"),
        Column("on_time", "Đúng hạn", "int"),
        Column("on_time_rate", "Tỷ lệ đúng hạn", "pct"),
        Column("late", "Trễ hạn", "int"),
        Column("received_invalid", "Đã gửi, chưa hợp lệ", "int"),
        Column("held", "Chờ xem xét", "int"),
        Column("missing", "Chưa nộp", "int"),
        Column("missing_rate", "Tỷ lệ chưa nộp", "pct"),
        Column("exempt", "Miễn báo cáo", "int"),
    )


def _school_list(schools: pd.DataFrame, states: Sequence[str]) -> pd.DataFrame:
    chosen = schools[schools["state"].isin(states)].copy()
    chosen["level_label"] = chosen["level"].map(level_label)
    chosen["state_label"] = chosen["state"].map(STATE_LABELS)
    chosen["_ward"] = chosen["ward"].map(ward_sort_key)
    chosen = chosen.sort_values(["_ward", "code"], kind="stable").drop(columns="_ward")
    return chosen.reset_index(drop=True)


def _section_status(data: CycleData, schools: pd.DataFrame) -> tuple[Section, pd.DataFrame]:
    district = completeness_counts(schools)
    summary = pd.DataFrame([{"label": "Toàn quận", **district}])
    by_level = completeness_by(schools, "level")
    by_ward = completeness_by(schools, "ward")
    not_received = _school_list(schools, ("missing", "received_invalid", "held"))
    late = _school_list(schools, ("late",))
    school_columns = (
        Column("code", "Mã trường", width=12),
        Column("name", "Tên trường", width=40),
        Column("level_label", "Cấp học", width=16),
        Column("ward", "Phường", width=12),
    )
    deadline = fmt_date(data.cycle.deadline)
    tables = (
        Table(
            "bang-1-1",
            "Bảng 1.1. Tổng hợp tình hình nộp báo cáo toàn quận",
            "1.1 Tổng hợp nộp báo cáo",
            _completeness_columns(Column("label", "Phạm vi", width=18)),
            summary,
            note="Tỷ lệ tính trên số trường phải nộp; trường được miễn báo cáo không tính vào mẫu số.",
        ),
        Table(
            "bang-1-2",
            "Bảng 1.2. Tình hình nộp báo cáo theo cấp học",
            "1.2 Nộp theo cấp học",
            _completeness_columns(Column("label", "Cấp học", width=18)),
            by_level,
        ),
        Table(
            "bang-1-3",
            "Bảng 1.3. Tình hình nộp báo cáo theo phường",
            "1.3 Nộp theo phường",
            _completeness_columns(Column("label", "Phường", width=14)),
            by_ward,
        ),
        Table(
            "bang-1-4",
            "Bảng 1.4. Danh sách trường chưa có báo cáo hợp lệ",
            "1.4 Trường chưa nộp hợp lệ",
            (*school_columns, Column("state_label", "Tình trạng", width=22)),
            not_received,
        ),
        Table(
            "bang-1-5",
            "Bảng 1.5. Danh sách trường nộp trễ hạn",
            "1.5 Trường nộp trễ",
            (*school_columns, Column("received_at", "Thời điểm nhận", "datetime", width=18)),
            late,
        ),
    )
    paragraphs = (
        f"Hạn nộp báo cáo: hết ngày {deadline}. Toàn quận có {fmt_int(district['expected'])} trường phải "
        f"nộp báo cáo; đã nhận báo cáo hợp lệ của {fmt_int(district['received'])} trường "
        f"({fmt_pct(district['received_rate'])}), trong đó {fmt_int(district['on_time'])} trường đúng hạn "
        f"và {fmt_int(district['late'])} trường trễ hạn; {fmt_int(district['missing'])} trường chưa nộp.",
    )
    return Section(1, "TÌNH HÌNH NỘP BÁO CÁO", tables, paragraphs), by_level


# --------------------------------------------------------------------------------------------------
# Section 2: indicators


def reach_sums(reach: pd.DataFrame, groups: Iterable[str], by: Sequence[str] = ()) -> pd.DataFrame:
    """Return Σtotal, Σfemale, Σreached, Σreached_female and the rates over `groups`, grouped by `by`."""
    chosen = reach[reach["group"].isin(tuple(groups))]
    sums = ["total", "female", "reached", "reached_female"]
    if by:
        frame = chosen.groupby(list(by), sort=False)[sums].sum().reset_index()
        schools = chosen.groupby(list(by), sort=False)["school_code"].nunique().rename("schools")
        frame = frame.merge(schools.reset_index(), on=list(by), how="left")
    else:
        frame = pd.DataFrame([{**chosen[sums].sum().to_dict(), "schools": chosen["school_code"].nunique()}])
    frame[sums] = frame[sums].astype("int64")
    frame["rate"] = [_ratio(r, t) for r, t in zip(frame["reached"], frame["total"], strict=True)]
    frame["female_share_reached"] = [
        _ratio(f, r) for f, r in zip(frame["reached_female"], frame["reached"], strict=True)
    ]
    frame["female_share_total"] = [_ratio(f, t) for f, t in zip(frame["female"], frame["total"], strict=True)]
    frame["female_rate"] = [
        _ratio(rf, f) for rf, f in zip(frame["reached_female"], frame["female"], strict=True)
    ]
    return frame


def _with_school_keys(reach: pd.DataFrame, schools: pd.DataFrame) -> pd.DataFrame:
    keys = schools[["code", "name", "level", "ward"]].rename(columns={"code": "school_code"})
    merged = reach.merge(keys, on="school_code", how="left")
    for column in ("name", "level", "ward"):
        merged[column] = _text(merged[column])
    return merged


def _indicator_rows(data: CycleData, reach: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for indicator in data.indicators:
        target = _target(indicator)
        unit = _unit(indicator)
        row: dict[str, Any] = {
            "code": indicator.code,
            "name": indicator.name,
            "program": str(getattr(indicator, "program", "") or ""),
            "unit": unit,
            "target": target,
            "direction": _direction(indicator),
            "value": None,
            "met": None,
            "total": None,
            "reached": None,
            "female_share_reached": None,
            "female_share_total": None,
            "source": "",
        }
        if _is_reach(indicator):
            sums = reach_sums(reach, indicator.groups).iloc[0]
            row.update(
                value=sums["rate"],
                total=int(sums["total"]),
                reached=int(sums["reached"]),
                female_share_reached=sums["female_share_reached"],
                female_share_total=sums["female_share_total"],
                source="Tính từ báo cáo của trường",
            )
        elif getattr(indicator, "manual", False):
            entered = data.manual_values.get(indicator.code, getattr(indicator, "value", None))
            row.update(
                value=indicator_fraction(indicator, entered),
                source="Phòng nhập" if not _missing(entered) else NOT_ENTERED,
            )
        row["met"] = meets(row["value"], target, row["direction"])
        rows.append(row)
    return _object_frame(
        rows,
        [
            "code",
            "name",
            "program",
            "unit",
            "target",
            "direction",
            "value",
            "met",
            "total",
            "reached",
            "female_share_reached",
            "female_share_total",
            "source",
        ],
    )


def _reach_indicator_columns(
    frame: pd.DataFrame, reach_rows: Sequence[tuple[Indicator, pd.DataFrame]], keys: Sequence[str]
) -> pd.DataFrame:
    """Add `<code>_rate` and `<code>_met` columns to a frame keyed by `keys`."""
    for indicator, sums in reach_rows:
        part = sums[[*keys, "rate"]].rename(columns={"rate": f"{indicator.code}_rate"})
        # Empty frames come out of groupby with float keys; merging needs both sides alike.
        part = part.astype({key: object for key in keys})
        frame = frame.astype({key: object for key in keys}).merge(part, on=list(keys), how="left")
        rates = [None if _missing(v) else float(v) for v in frame[f"{indicator.code}_rate"]]
        target, direction = _target(indicator), _direction(indicator)
        frame[f"{indicator.code}_rate"] = pd.Series(rates, index=frame.index, dtype=object)
        frame[f"{indicator.code}_met"] = pd.Series(
            [meets(v, target, direction) for v in rates], index=frame.index, dtype=object
        )
    return frame


def _object_frame(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """Return a frame that keeps None as None (not NaN) and True/False as Python bools."""
    return pd.DataFrame(
        {key: pd.Series([row[key] for row in rows], dtype=object) for key in columns}, columns=list(columns)
    )


def _count_with_data(schools: pd.DataFrame, with_data: pd.DataFrame, by: str) -> pd.DataFrame:
    counts = with_data.groupby(by).size()
    keys = sorted(set(schools[by]))
    with_counts = [int(counts.get(key, 0)) for key in keys]
    return pd.DataFrame({by: pd.Series(keys, dtype=object), "schools": pd.Series(with_counts, dtype="int64")})


def _rate_columns(reach_indicators: Sequence[Indicator]) -> tuple[Column, ...]:
    columns: list[Column] = []
    for indicator in reach_indicators:
        code = indicator.code
        columns.append(Column(f"{code}_rate", f"{code}: tỷ lệ", "pct", met_key=f"{code}_met", width=12))
        columns.append(Column(f"{code}_met", f"{code}: đánh giá", "met", width=12))
    return tuple(columns)


def _section_indicators(
    data: CycleData, schools: pd.DataFrame, reach: pd.DataFrame, general: pd.DataFrame
) -> tuple[Section, pd.DataFrame, tuple[str, ...], float | None]:
    keyed = _with_school_keys(reach, schools)
    reach_indicators = [ind for ind in data.indicators if _is_reach(ind)]
    district = _indicator_rows(data, reach)

    groups = reach_sums(reach, AUDIENCE_GROUPS.codes, ("group",))
    groups = pd.DataFrame({"group": list(AUDIENCE_GROUPS.codes)}).merge(groups, on="group", how="inner")
    groups["label"] = groups["group"].map(AUDIENCE_GROUPS.label)

    # Every level and ward of the registry gets a row, so one without data shows as "—", not absent.
    with_data = schools[schools["code"].isin(set(reach["school_code"]))]
    by_level = _count_with_data(schools, with_data, "level")
    by_level["_order"] = by_level["level"].map(
        lambda code: (SCHOOL_LEVELS.codes.index(code) if code in SCHOOL_LEVELS.codes else 99, code)
    )
    by_level = by_level.sort_values("_order", kind="stable").drop(columns="_order")
    by_level["label"] = by_level["level"].map(level_label)
    by_ward = _count_with_data(schools, with_data, "ward")
    by_ward = by_ward.sort_values("ward", key=lambda s: s.map(ward_sort_key), kind="stable")
    per_school = with_data[["code", "name", "level", "ward"]].copy()
    per_school["level_label"] = per_school["level"].map(level_label)
    per_school = per_school.rename(columns={"code": "school_code"})
    per_school["_ward"] = per_school["ward"].map(ward_sort_key)
    per_school = per_school.sort_values(["_ward", "school_code"], kind="stable").drop(columns="_ward")

    level_sums = [(ind, reach_sums(keyed, ind.groups, ("level",))) for ind in reach_indicators]
    ward_sums = [(ind, reach_sums(keyed, ind.groups, ("ward",))) for ind in reach_indicators]
    school_sums = [(ind, reach_sums(keyed, ind.groups, ("school_code",))) for ind in reach_indicators]
    by_level = _reach_indicator_columns(by_level, level_sums, ("level",)).reset_index(drop=True)
    by_ward = _reach_indicator_columns(by_ward, ward_sums, ("ward",)).reset_index(drop=True)
    per_school = _reach_indicator_columns(per_school, school_sums, ("school_code",)).reset_index(drop=True)
    rate_columns = _rate_columns(reach_indicators)

    staff = general[general["school_code"].isin(set(schools["code"]))]
    staff_total, trained = int(staff["child_protection_staff"].sum()), int(staff["trained_staff"].sum())
    staff_frame = pd.DataFrame(
        [
            {
                "label": "Toàn quận",
                "schools": int((staff["child_protection_staff"] > 0).sum()),
                "staff": staff_total,
                "trained": trained,
                "trained_rate": _ratio(trained, staff_total),
            }
        ]
    )

    tables = (
        Table(
            "bang-2-1",
            "Bảng 2.1. Kết quả thực hiện các chỉ tiêu toàn quận",
            "2.1 Chỉ tiêu toàn quận",
            (
                Column("code", "Mã", width=8),
                Column("name", "Chỉ tiêu", width=60),
                Column("unit", "Đơn vị", width=8),
                Column("target", "Mục tiêu", "measure", unit_key="unit", width=10),
                Column(
                    "value", "Kết quả", "measure", met_key="met", unit_key="unit", empty=NOT_ENTERED, width=12
                ),
                Column("met", "Đánh giá", "met", width=11),
                Column("total", "Tổng số đối tượng", "int", width=12),
                Column("reached", "Số được truyền thông", "int", width=14),
                Column("female_share_reached", "Tỷ lệ nữ trong số được truyền thông", "pct", width=16),
                Column("female_share_total", "Tỷ lệ nữ trong tổng số đối tượng", "pct", width=16),
                Column("source", "Nguồn số liệu", width=24),
            ),
            district,
            note="CT1, CT2: tổng số được truyền thông chia cho tổng số đối tượng của các nhóm tương "
            "ứng, cộng dồn trên báo cáo hợp lệ hiện hành của các trường. Chỉ tiêu do Phòng "
            'nhập chưa có số liệu được ghi "Chưa nhập".',
        ),
        Table(
            "bang-2-2",
            "Bảng 2.2. Kết quả truyền thông theo đối tượng",
            "2.2 Truyền thông theo đối tượng",
            (
                Column("label", "Đối tượng", width=40),
                Column("total", "Tổng số", "int"),
                Column("female", "Trong đó nữ", "int"),
                Column("reached", "Số được truyền thông", "int"),
                Column("reached_female", "Trong đó nữ được truyền thông", "int"),
                Column("rate", "Tỷ lệ được truyền thông", "pct"),
                Column("female_rate", "Tỷ lệ nữ được truyền thông", "pct"),
                Column("female_share_reached", "Tỷ lệ nữ trong số được truyền thông", "pct"),
            ),
            groups,
        ),
        Table(
            "bang-2-3",
            "Bảng 2.3. Kết quả chỉ tiêu theo cấp học",
            "2.3 Chỉ tiêu theo cấp học",
            (
                Column("label", "Cấp học", width=18),
                Column("schools", "Số trường có số liệu", "int"),
                *rate_columns,
            ),
            by_level,
        ),
        Table(
            "bang-2-4",
            "Bảng 2.4. Kết quả chỉ tiêu theo phường",
            "2.4 Chỉ tiêu theo phường",
            (
                Column("ward", "Phường", width=14),
                Column("schools", "Số trường có số liệu", "int"),
                *rate_columns,
            ),
            by_ward,
        ),
        Table(
            "bang-2-5",
            "Bảng 2.5. Kết quả chỉ tiêu theo trường",
            "2.5 Chỉ tiêu theo trường",
            (
                Column("school_code", "Mã trường", width=12),
                Column("name", "Tên trường", width=40),
                Column("level_label", "Cấp học", width=16),
                Column("ward", "Phường", width=12),
                *rate_columns,
            ),
            per_school,
        ),
        Table(
            "bang-2-6",
            "Bảng 2.6. Cán bộ làm công tác bảo vệ trẻ em",
            "2.6 Cán bộ bảo vệ trẻ em",
            (
                Column("label", "Phạm vi", width=14),
                Column("schools", "Số trường có cán bộ phụ trách", "int"),
                Column("staff", "Số cán bộ làm công tác bảo vệ trẻ em", "int"),
                Column("trained", "Trong đó được tập huấn", "int"),
                Column("trained_rate", "Tỷ lệ được tập huấn", "pct"),
            ),
            staff_frame,
        ),
    )
    paragraphs = tuple(
        f"{row.code}: {fmt_pct(row.value)} (mục tiêu {fmt_pct(row.target)}) — "
        f"{MET_TEXT.get(row.met, 'chưa đủ số liệu').lower()}."
        for row in district.itertuples()
        if row.code in {ind.code for ind in reach_indicators}
    )
    chart = by_ward[["ward", *(f"{ind.code}_rate" for ind in reach_indicators)]].copy()
    chart_target = _target(reach_indicators[0]) if reach_indicators else None
    return (
        Section(2, "KẾT QUẢ THỰC HIỆN CÁC CHỈ TIÊU", tables, paragraphs),
        chart,
        tuple(ind.code for ind in reach_indicators),
        chart_target,
    )


# --------------------------------------------------------------------------------------------------
# Section 3: activities


def participants(activities: pd.DataFrame) -> pd.DataFrame:
    """Return participants by group and sex (total, female, male, female share)."""
    rows = []
    for key, label in PARTICIPANT_GROUPS:
        total, female = int(activities[key].sum()), int(activities[f"{key}_female"].sum())
        rows.append(
            {
                "group": key,
                "label": label,
                "total": total,
                "female": female,
                "male": total - female,
                "female_share": _ratio(female, total),
            }
        )
    total = sum(row["total"] for row in rows)
    female = sum(row["female"] for row in rows)
    rows.append(
        {
            "group": "all",
            "label": "Tổng cộng",
            "total": total,
            "female": female,
            "male": total - female,
            "female_share": _ratio(female, total),
        }
    )
    return pd.DataFrame(rows)


def activities_by_type(activities: pd.DataFrame) -> pd.DataFrame:
    """Return, per activity type in list order, activities held, schools holding them, participants."""
    rows = []
    for code in ACTIVITY_TYPES.codes:
        chosen = activities[activities["activity_type"] == code]
        rows.append(
            {
                "activity_type": code,
                "label": ACTIVITY_TYPES.label(code),
                "activities": len(chosen),
                "schools": chosen["school_code"].nunique(),
                "staff": int(chosen["staff"].sum()),
                "students": int(chosen["students"].sum()),
                "parents": int(chosen["parents"].sum()),
                "participants": int(chosen[["staff", "students", "parents"]].sum().sum()),
            }
        )
    return pd.DataFrame(rows)


def _section_activities(activities: pd.DataFrame, reporting: int) -> Section:
    by_type = activities_by_type(activities)
    months = by_type[by_type["activity_type"].isin(MONTHS_OF_ACTION)].copy()
    months["share"] = [_ratio(n, reporting) for n in months["schools"]]
    tables = (
        Table(
            "bang-3-1",
            "Bảng 3.1. Hoạt động theo loại",
            "3.1 Hoạt động theo loại",
            (
                Column("label", "Loại hoạt động", width=44),
                Column("activities", "Số hoạt động", "int"),
                Column("schools", "Số trường tổ chức", "int"),
                Column("staff", "CB-GV-NV tham dự", "int"),
                Column("students", "Học sinh tham dự", "int"),
                Column("parents", "Phụ huynh tham dự", "int"),
                Column("participants", "Tổng lượt tham dự", "int"),
            ),
            by_type,
        ),
        Table(
            "bang-3-2",
            "Bảng 3.2. Người tham dự theo đối tượng và giới tính",
            "3.2 Người tham dự",
            (
                Column("label", "Đối tượng", width=32),
                Column("total", "Tổng lượt tham dự", "int"),
                Column("female", "Nữ", "int"),
                Column("male", "Nam", "int"),
                Column("female_share", "Tỷ lệ nữ", "pct"),
            ),
            participants(activities),
        ),
        Table(
            "bang-3-3",
            "Bảng 3.3. Số trường tổ chức các Tháng hành động",
            "3.3 Tháng hành động",
            (
                Column("label", "Tháng hành động", width=40),
                Column("schools", "Số trường tổ chức", "int"),
                Column("share", "Tỷ lệ trên số trường đã nộp", "pct"),
                Column("activities", "Số hoạt động", "int"),
                Column("participants", "Tổng lượt tham dự", "int"),
            ),
            months.reset_index(drop=True),
        ),
    )
    paragraphs = (
        f"Các trường đã báo cáo {fmt_int(len(activities))} hoạt động với "
        f"{fmt_int(int(by_type['participants'].sum()))} lượt người tham dự.",
    )
    return Section(3, "CÁC HOẠT ĐỘNG ĐÃ TỔ CHỨC", tables, paragraphs)


# --------------------------------------------------------------------------------------------------
# Section 4: self-assessment


def checklist_shares(checklist: pd.DataFrame) -> pd.DataFrame:
    """Return per item the schools answering, answering Có, answering Không and the share of Có."""
    rows = []
    for choice in CHECKLIST_ITEMS.choices:
        answers = checklist.loc[checklist["item"] == choice.code, "answer"]
        answered = answers[answers.notna()].map(bool)
        yes = int(answered.sum())
        rows.append(
            {
                "item": choice.code,
                "label": choice.short_label or choice.label,
                "full_label": choice.label,
                "answered": len(answered),
                "yes": yes,
                "no": len(answered) - yes,
                "yes_share": _ratio(yes, len(answered)),
            }
        )
    return pd.DataFrame(rows)


def _section_checklist(checklist: pd.DataFrame, schools: pd.DataFrame) -> Section:
    answered = checklist[checklist["answer"].notna()]
    answered_no = answered.loc[[not bool(answer) for answer in answered["answer"]]]
    answered_no = answered_no.merge(
        schools[["code", "name", "ward"]].rename(columns={"code": "school_code"}),
        on="school_code",
        how="left",
    )
    order = {code: i for i, code in enumerate(CHECKLIST_ITEMS.codes)}
    answered_no["_item"] = answered_no["item"].map(lambda code: order.get(code, len(order)))
    answered_no = answered_no.sort_values(["_item", "school_code"], kind="stable").drop(columns="_item")
    answered_no["label"] = answered_no["item"].map(
        lambda code: next((c.short_label or c.label for c in CHECKLIST_ITEMS.choices if c.code == code), code)
    )
    for column in ("name", "ward"):
        answered_no[column] = _text(answered_no[column])
    tables = (
        Table(
            "bang-4-1",
            "Bảng 4.1. Kết quả tự đánh giá",
            "4.1 Tự đánh giá",
            (
                Column("full_label", "Nội dung", width=70),
                Column("answered", "Số trường trả lời", "int"),
                Column("yes", "Có", "int"),
                Column("no", "Không", "int"),
                Column("yes_share", "Tỷ lệ Có", "pct"),
            ),
            checklist_shares(checklist),
        ),
        Table(
            "bang-4-2",
            "Bảng 4.2. Danh sách trường trả lời Không",
            "4.2 Trường trả lời Không",
            (
                Column("label", "Nội dung", width=26),
                Column("school_code", "Mã trường", width=12),
                Column("name", "Tên trường", width=40),
                Column("ward", "Phường", width=12),
            ),
            answered_no.reset_index(drop=True),
        ),
    )
    return Section(4, "KẾT QUẢ TỰ ĐÁNH GIÁ", tables)


# --------------------------------------------------------------------------------------------------
# Section 5: incidents (public totals suppressed; per-school counts restricted)

INCIDENT_COUNTS = ("cases", "children", "children_female", "reported", "supported")


def suppress(value: int) -> int | str:
    """Return a public count, or "<5" for 1–4 (0 stays 0: an empty cell reveals no one)."""
    return SUPPRESSED if 1 <= int(value) <= 4 else int(value)


def incident_totals(incidents: pd.DataFrame) -> pd.DataFrame:
    """Return raw district totals per category in list order (not for publication as is)."""
    sums = incidents.groupby("category")[list(INCIDENT_COUNTS)].sum()
    rows = []
    for code in INCIDENT_CATEGORIES.codes:
        values = sums.loc[code] if code in sums.index else pd.Series(0, index=list(INCIDENT_COUNTS))
        rows.append(
            {
                "category": code,
                "label": INCIDENT_CATEGORIES.label(code),
                **{key: int(values[key]) for key in INCIDENT_COUNTS},
            }
        )
    return pd.DataFrame(rows)


def public_incidents(incidents: pd.DataFrame) -> pd.DataFrame:
    """Return district totals per category with every 1–4 count replaced by "<5"."""
    frame = incident_totals(incidents)
    for key in INCIDENT_COUNTS:
        frame[key] = frame[key].map(suppress).astype(object)
    return frame


_INCIDENT_COLUMNS = (
    Column("cases", "Số vụ việc", "small_count"),
    Column("children", "Số trẻ bị ảnh hưởng", "small_count"),
    Column("children_female", "Trong đó nữ", "small_count"),
    Column("reported", "Số vụ đã báo cáo cơ quan chức năng", "small_count", width=18),
    Column("supported", "Số vụ đã được hỗ trợ, can thiệp", "small_count", width=18),
)


def _section_incidents(incidents: pd.DataFrame) -> Section:
    table = Table(
        "bang-5-1",
        "Bảng 5.1. Vụ việc theo loại (toàn quận)",
        "5.1 Vụ việc toàn quận",
        (Column("label", "Loại vụ việc", width=28), *_INCIDENT_COLUMNS),
        public_incidents(incidents),
        note='Số từ 1 đến 4 được ghi "<5" để bảo vệ trẻ em; số liệu theo trường chỉ có trong '
        "tệp hạn chế gửi riêng lãnh đạo Phòng.",
    )
    return Section(5, "TÌNH HÌNH VỤ VIỆC LIÊN QUAN ĐẾN TRẺ EM", (table,))


def _restricted(incidents: pd.DataFrame, schools: pd.DataFrame) -> tuple[Table, Table]:
    frame = incidents[incidents[list(INCIDENT_COUNTS)].sum(axis=1) > 0].copy()
    frame = frame.merge(
        schools[["code", "name", "ward"]].rename(columns={"code": "school_code"}),
        on="school_code",
        how="left",
    )
    for column in ("name", "ward"):
        frame[column] = _text(frame[column])
    order = {code: i for i, code in enumerate(INCIDENT_CATEGORIES.codes)}
    frame["_category"] = frame["category"].map(lambda code: order.get(code, len(order)))
    frame = frame.sort_values(["school_code", "_category"], kind="stable").drop(columns="_category")
    frame["label"] = frame["category"].map(
        lambda code: INCIDENT_CATEGORIES.label(code) if code in order else str(code)
    )
    numeric = tuple(Column(c.key, c.label, "int", width=c.width) for c in _INCIDENT_COLUMNS)
    per_school = Table(
        "han-che-1",
        "Vụ việc theo trường (HẠN CHẾ - không công bố)",
        "Vụ việc theo trường",
        (
            Column("school_code", "Mã trường", width=12),
            Column("name", "Tên trường", width=40),
            Column("ward", "Phường", width=12),
            Column("label", "Loại vụ việc", width=28),
            *numeric,
        ),
        frame.reset_index(drop=True),
        note="Chỉ liệt kê các trường có vụ việc.",
    )
    totals = Table(
        "han-che-2",
        "Tổng số vụ việc toàn quận (không che số nhỏ)",
        "Tổng toàn quận",
        (Column("label", "Loại vụ việc", width=28), *numeric),
        incident_totals(incidents),
    )
    return per_school, totals


# --------------------------------------------------------------------------------------------------
# Section 6: data quality


def submission_counts(submissions: pd.DataFrame) -> pd.DataFrame:
    """Return the number of submissions in each state, plus the total."""
    counts = submissions["state"].value_counts()
    rows = [
        {"state": s, "label": SUBMISSION_STATE_LABELS[s], "count": int(counts.get(s, 0))}
        for s in SUBMISSION_STATES
    ]
    rows.append({"state": "all", "label": "Tổng số tệp đã nhận", "count": len(submissions)})
    unknown = int(submissions["school_code"].isna().sum() + (submissions["school_code"] == "").sum())
    rows.append(
        {"state": "unknown_school", "label": "Trong đó: không xác định được trường", "count": unknown}
    )
    return pd.DataFrame(rows)


def frequent_rules(findings: pd.DataFrame, limit: int = TOP_RULES) -> pd.DataFrame:
    """Return the most frequent rules per severity: occurrences and submissions affected."""
    if findings.empty:
        return pd.DataFrame(columns=["severity", "severity_label", "rule", "title", "count", "submissions"])
    grouped = (
        findings.groupby(["severity", "rule"])
        .agg(count=("rule", "size"), submissions=("submission_id", "nunique"))
        .reset_index()
    )
    grouped["_severity"] = grouped["severity"].map({"error": 0, "warning": 1}).fillna(2)
    grouped = grouped.sort_values(
        ["_severity", "count", "rule"], ascending=[True, False, True], kind="stable"
    )
    grouped = grouped.groupby("severity", sort=False).head(limit).drop(columns="_severity")
    grouped["severity_label"] = grouped["severity"].map(lambda s: SEVERITY_LABELS.get(s, str(s)))
    grouped["title"] = grouped["rule"].map(lambda code: RULES[code].title if code in RULES else str(code))
    return grouped.reset_index(drop=True)


def _section_quality(submissions: pd.DataFrame, findings: pd.DataFrame) -> Section:
    tables = (
        Table(
            "bang-6-1",
            "Bảng 6.1. Tình trạng các tệp báo cáo đã nhận",
            "6.1 Tình trạng tệp nộp",
            (
                Column("label", "Tình trạng", width=44),
                Column("count", "Số tệp", "int"),
            ),
            submission_counts(submissions),
        ),
        Table(
            "bang-6-2",
            "Bảng 6.2. Các lỗi và cảnh báo thường gặp",
            "6.2 Lỗi thường gặp",
            (
                Column("severity_label", "Mức độ", width=10),
                Column("title", "Nội dung", width=50),
                Column("rule", "Mã quy tắc", width=24),
                Column("count", "Số lần", "int"),
                Column("submissions", "Số tệp mắc", "int"),
            ),
            frequent_rules(findings),
            note=f"Tối đa {TOP_RULES} quy tắc mỗi mức độ, xếp theo số lần gặp.",
        ),
    )
    return Section(6, "CHẤT LƯỢNG SỐ LIỆU", tables)


# --------------------------------------------------------------------------------------------------
# Section 7: change against the previous cycle


def _cycle_figures(
    schools: pd.DataFrame, reach: pd.DataFrame, activities: pd.DataFrame, indicators: Sequence[Indicator]
) -> list[tuple[str, str, float | None]]:
    counts = completeness_counts(schools)
    figures: list[tuple[str, str, float | None]] = [
        ("Số trường phải nộp", "", counts["expected"]),
        ("Số trường đã nộp hợp lệ", "", counts["received"]),
        ("Số trường nộp đúng hạn", "", counts["on_time"]),
        ("Tỷ lệ trường đã nộp", "%", counts["received_rate"]),
    ]
    for indicator in indicators:
        if _is_reach(indicator):
            rate = reach_sums(reach, indicator.groups).iloc[0]["rate"]
            figures.append((f"{indicator.code}: tỷ lệ được truyền thông", "%", rate))
    figures += [
        ("Tổng số đối tượng (các nhóm)", "", int(reach["total"].sum())),
        ("Tổng số được truyền thông", "", int(reach["reached"].sum())),
        ("Số hoạt động", "", len(activities)),
        ("Tổng lượt tham dự hoạt động", "", int(activities[["staff", "students", "parents"]].sum().sum())),
    ]
    return figures


def _section_change(
    data: CycleData, schools: pd.DataFrame, reach: pd.DataFrame, activities: pd.DataFrame
) -> Section:
    title = "SO SÁNH VỚI KỲ TRƯỚC"
    if data.previous is None:
        return Section(7, title, (), ("Không có số liệu kỳ trước để so sánh.",))
    previous = data.previous
    before = _cycle_figures(
        _schools(previous.schools),
        _counts(previous.reach, "reach"),
        _counts(previous.activities, "activities"),
        data.indicators,
    )
    now = _cycle_figures(schools, reach, activities, data.indicators)
    rows = []
    for (label, unit, old), (_, _, new) in zip(before, now, strict=True):
        change = None if _missing(old) or _missing(new) else float(new) - float(old)  # type: ignore[arg-type]
        rows.append({"label": label, "unit": unit, "previous": old, "current": new, "change": change})
    table = Table(
        "bang-7-1",
        f"Bảng 7.1. So sánh với kỳ trước ({previous.cycle_id})",
        "7.1 So sánh kỳ trước",
        (
            Column("label", "Nội dung", width=40),
            Column("previous", f"Kỳ trước ({previous.cycle_id})", "measure", unit_key="unit", width=14),
            Column("current", f"Kỳ này ({data.cycle.id})", "measure", unit_key="unit", width=14),
            Column("change", "Thay đổi", "change", unit_key="unit", width=14),
        ),
        pd.DataFrame(rows),
    )
    return Section(7, title, (table,))


# --------------------------------------------------------------------------------------------------
# The whole report


def build_report(data: CycleData) -> CycleReport:
    """Compute every section of the cycle report from the cycle's data."""
    schools = _schools(data.schools)
    reach = _counts(data.reach, "reach")
    reach["group"] = _text(reach["group"])
    reach["school_code"] = _text(reach["school_code"])
    activities = _counts(data.activities, "activities")
    activities["school_code"] = _text(activities["school_code"])
    incidents = _counts(data.incidents, "incidents")
    incidents["school_code"] = _text(incidents["school_code"])
    general = _counts(data.general, "general")
    submissions = _counts(data.submissions, "submissions")
    checklist = data.checklist.copy()
    checklist["school_code"] = _text(checklist["school_code"])
    checklist["answer"] = checklist["answer"].astype(object).where(checklist["answer"].notna(), None)
    general["school_code"] = _text(general["school_code"])

    status, completeness_level = _section_status(data, schools)
    indicators, reach_by_ward, chart_codes, chart_target = _section_indicators(data, schools, reach, general)
    reporting = int(schools["state"].isin(("on_time", "late")).sum())
    restricted, restricted_totals = _restricted(incidents, schools)
    return CycleReport(
        cycle_id=data.cycle.id,
        cycle_label=str(getattr(data.cycle, "label_vi", "") or data.cycle.id),
        period_start=data.cycle.period_start,
        period_end=data.cycle.period_end,
        deadline=data.cycle.deadline,
        as_of=data.as_of,
        previous_cycle_id=data.previous_cycle_id or (data.previous.cycle_id if data.previous else None),
        sections=(
            status,
            indicators,
            _section_activities(activities, reporting),
            _section_checklist(checklist, schools),
            _section_incidents(incidents),
            _section_quality(submissions, data.findings),
            _section_change(data, schools, reach, activities),
        ),
        reach_by_ward=reach_by_ward,
        reach_chart_codes=chart_codes,
        reach_chart_target=chart_target,
        completeness_by_level=completeness_level,
        restricted_incidents=restricted,
        restricted_totals=restricted_totals,
    )
