"""SPEC §5.8: change against the previous cycle (report section 7)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from tasks.report.cycle_data import CycleData, sorted_schools, with_counts
from tasks.report.indicators import is_reach, reach_sums
from tasks.report.model import Column, Section, Table
from tasks.report.section_2_status import completeness_counts
from tasks.report.wording import is_missing

if TYPE_CHECKING:
    from schemas.reference import Indicator

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
        if is_reach(indicator):
            rate = reach_sums(reach, indicator.groups).iloc[0]["rate"]
            figures.append((f"{indicator.code}: tỷ lệ được truyền thông", "%", rate))
    figures += [
        ("Tổng số đối tượng (các nhóm)", "", int(reach["total"].sum())),
        ("Tổng số được truyền thông", "", int(reach["reached"].sum())),
        ("Số hoạt động", "", len(activities)),
        ("Tổng lượt tham dự hoạt động", "", int(activities[["staff", "students", "parents"]].sum().sum())),
    ]
    return figures


def build_change_section(
    data: CycleData, schools: pd.DataFrame, reach: pd.DataFrame, activities: pd.DataFrame
) -> Section:
    title = "SO SÁNH VỚI KỲ TRƯỚC"
    if data.previous is None:
        return Section(7, title, (), ("Không có số liệu kỳ trước để so sánh.",))
    previous = data.previous
    before = _cycle_figures(
        sorted_schools(previous.schools),
        with_counts(previous.reach, "reach"),
        with_counts(previous.activities, "activities"),
        data.indicators,
    )
    now = _cycle_figures(schools, reach, activities, data.indicators)
    rows = []
    for (label, unit, old), (_, _, new) in zip(before, now, strict=True):
        change = None if is_missing(old) or is_missing(new) else float(new) - float(old)  # type: ignore[arg-type]
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
