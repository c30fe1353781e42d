"""Vietnamese labels and display formats, shared by the HTML page, the workbooks and the SVG charts."""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd

from config.settings import TIMEZONE
from schemas.contract import AUDIENCE_GROUPS, SCHOOL_LEVELS

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


def is_missing(value: object) -> bool:
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
    if is_missing(value):
        return empty
    return _group_digits(f"{round(float(value)):,d}")  # type: ignore[arg-type]


def _round_half_up(value: float, digits: int) -> Decimal:
    # repr(round(...)) strips binary noise first, so 52.35 rounds to 52.4 as a reader expects.
    return Decimal(repr(round(value, 9))).quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP)


def fmt_number(value: object, digits: int = 1, empty: str = "—") -> str:
    """Format a decimal number the Vietnamese way (1.234,5), dropping a zero fraction."""
    if is_missing(value):
        return empty
    number = float(value)  # type: ignore[arg-type]
    if number == int(number):
        return fmt_int(number)
    return _group_digits(f"{_round_half_up(number, digits):,.{digits}f}")


def fmt_pct(value: object, digits: int = 1, empty: str = "—") -> str:
    """Format a 0–1 fraction as a Vietnamese percentage: 52,3%."""
    if is_missing(value):
        return empty
    return _group_digits(f"{_round_half_up(float(value) * 100, digits):,.{digits}f}") + "%"  # type: ignore[arg-type]


def fmt_date(value: object, empty: str = "—") -> str:
    """Format a date as dd/mm/yyyy."""
    if is_missing(value):
        return empty
    if isinstance(value, dt.datetime):
        value = local_time(value)
    return f"{value:%d/%m/%Y}"


def fmt_datetime(value: object, empty: str = "—") -> str:
    """Format a moment in Asia/Ho_Chi_Minh as hh:mm dd/mm/yyyy."""
    if is_missing(value):
        return empty
    return f"{local_time(value):%H:%M %d/%m/%Y}"  # type: ignore[arg-type]


def fmt_change(value: object, unit: str, empty: str = "—") -> str:
    """Format a difference with its sign: +12, -3, +3,2 điểm %."""
    if is_missing(value):
        return empty
    number = float(value)  # type: ignore[arg-type]
    sign = "+" if number > 0 else ("-" if number < 0 else "")
    if unit == "%":
        return f"{sign}{fmt_number(abs(number) * 100, 1)} điểm %"
    return f"{sign}{fmt_number(abs(number))}"


def fmt_measure(value: object, unit: str, empty: str = "—") -> str:
    """Format a value in its unit: "%" values (0–1 fractions) as percentages, others as numbers."""
    if is_missing(value):
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


def ward_sort_key(ward: object) -> tuple[Any, ...]:
    """Sort wards naturally: Phường 2 before Phường 10."""
    text = "" if is_missing(ward) else str(ward)
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text))


def level_label(code: object) -> str:
    """Return a school level's Vietnamese label (the code itself if unknown)."""
    return SCHOOL_LEVELS.label(str(code)) if str(code) in SCHOOL_LEVELS.codes else str(code)


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

