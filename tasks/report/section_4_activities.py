"""SPEC §5.4: activities by type, participants by group and sex, Months of Action (report section 3)."""

from __future__ import annotations

import pandas as pd

from schemas.contract import ACTIVITY_TYPES
from tasks.report.indicators import ratio
from tasks.report.model import Column, Section, Table
from tasks.report.wording import MONTHS_OF_ACTION, PARTICIPANT_GROUPS, fmt_int


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
                "female_share": ratio(female, total),
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
            "female_share": ratio(female, total),
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


def build_activities_section(activities: pd.DataFrame, reporting: int) -> Section:
    by_type = activities_by_type(activities)
    months = by_type[by_type["activity_type"].isin(MONTHS_OF_ACTION)].copy()
    months["share"] = [ratio(n, reporting) for n in months["schools"]]
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
