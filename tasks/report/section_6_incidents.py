"""SPEC §5.6: incidents: suppressed public totals; per-school counts only in the restricted tables.

Shown as the report's section 5.
"""

from __future__ import annotations

import pandas as pd

from schemas.contract import INCIDENT_CATEGORIES
from tasks.report.cycle_data import text_column
from tasks.report.model import Column, Section, Table
from tasks.report.wording import SUPPRESSED

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


def build_incidents_section(incidents: pd.DataFrame) -> Section:
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


def build_restricted_tables(incidents: pd.DataFrame, schools: pd.DataFrame) -> tuple[Table, Table]:
    frame = incidents[incidents[list(INCIDENT_COUNTS)].sum(axis=1) > 0].copy()
    frame = frame.merge(
        schools[["code", "name", "ward"]].rename(columns={"code": "school_code"}),
        on="school_code",
        how="left",
    )
    for column in ("name", "ward"):
        frame[column] = text_column(frame[column])
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
