"""SPEC §5.2: submission status (expected, received, on time, late, missing) by level and ward.

Shown as the report's section 1 (the header, SPEC §5.1, is unnumbered).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from schemas.contract import SCHOOL_LEVELS
from tasks.report.cycle_data import SCHOOL_STATES, CycleData
from tasks.report.indicators import ratio
from tasks.report.model import Column, Section, Table
from tasks.report.wording import STATE_LABELS, fmt_date, fmt_int, fmt_pct, level_label, ward_sort_key


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
        "received_rate": ratio(received, expected),
        "on_time_rate": ratio(counts["on_time"], expected),
        "late_rate": ratio(counts["late"], expected),
        "missing_rate": ratio(counts["missing"], expected),
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


def build_status_section(data: CycleData, schools: pd.DataFrame) -> tuple[Section, pd.DataFrame]:
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
            appendix=True,
        ),
        Table(
            "bang-1-5",
            "Bảng 1.5. Danh sách trường nộp trễ hạn",
            "1.5 Trường nộp trễ",
            (*school_columns, Column("received_at", "Thời điểm nhận", "datetime", width=18)),
            late,
            appendix=True,
        ),
    )
    paragraphs = (
        f"Hạn nộp báo cáo: hết ngày {deadline}. Toàn quận có {fmt_int(district['expected'])} trường phải "
        f"nộp báo cáo; đã nhận báo cáo hợp lệ của {fmt_int(district['received'])} trường "
        f"({fmt_pct(district['received_rate'])}), trong đó {fmt_int(district['on_time'])} trường đúng hạn "
        f"và {fmt_int(district['late'])} trường trễ hạn; {fmt_int(district['missing'])} trường chưa nộp.",
    )
    return Section(1, "TÌNH HÌNH NỘP BÁO CÁO", tables, paragraphs), by_level
