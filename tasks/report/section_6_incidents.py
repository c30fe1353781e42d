"""SPEC §5.6: incidents: suppressed public totals; per-school counts only in the restricted tables.

Shown as the report's section 5.

Disclosure control (SPEC §5.6, issue 11 item 5): two public reports of a cycle built at different
`as_of` moments must not differ by exactly one school's counts, as they would if each report summed
whatever had arrived by its own moment. Public incident totals are therefore published once per cycle,
frozen: they are computed only from the submissions current at the *incident cutoff*, the end of the
deadline day plus INCIDENT_GRACE (a week for late and corrected files). A report built before the
cutoff shows no incident figures, only when they will be published; every report built after it shows
the same frozen totals, whatever arrives later (later files reach the restricted file only). So the
difference of any two public outputs of a cycle is either nothing or everything, never one school.
Counts 1–4 are still shown as "<5" and there is still no total row. Rebuilds for the same `as_of`
stay byte-identical: the cutoff depends only on the calendar.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from schemas.contract import INCIDENT_CATEGORIES
from tasks.report.cycle_data import text_column
from tasks.report.model import Column, Section, Table
from tasks.report.wording import SUPPRESSED, fmt_datetime

INCIDENT_GRACE = dt.timedelta(days=7)

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


def incident_cutoff(deadline_end: dt.datetime) -> dt.datetime:
    """Return the moment a cycle's public incident totals are frozen at: deadline end plus the grace."""
    return deadline_end + INCIDENT_GRACE


def _unpublished() -> pd.DataFrame:
    frame = public_incidents(pd.DataFrame(columns=["school_code", "category", *INCIDENT_COUNTS]))
    for key in INCIDENT_COUNTS:
        frame[key] = pd.Series([None] * len(frame), dtype=object)
    return frame


def build_incidents_section(published: pd.DataFrame | None, cutoff: dt.datetime | None) -> Section:
    """Build the public incident table: frozen, suppressed totals once the cutoff has passed, else none."""
    method = (
        'Số từ 1 đến 4 được ghi "<5" để bảo vệ trẻ em; không có dòng tổng cộng. Số liệu vụ việc chỉ '
        "công bố một lần cho mỗi kỳ, tính trên các báo cáo nhận đến {cutoff} (hết hạn nộp cộng 7 ngày) "
        "và giữ nguyên trong mọi bản báo cáo lập sau thời điểm đó, để không thể so sánh hai bản báo cáo "
        "mà suy ra số liệu của một trường; số liệu theo trường chỉ có trong tệp hạn chế gửi riêng lãnh "
        "đạo Phòng."
    )
    when = fmt_datetime(cutoff) if cutoff is not None else "thời điểm chốt số liệu"
    paragraphs: tuple[str, ...] = ()
    if published is None:
        frame = _unpublished()
        paragraphs = (
            f"Số liệu vụ việc của kỳ này chưa công bố: sẽ có trong báo cáo lập sau {when}.",
        )
    else:
        frame = public_incidents(published)
    table = Table(
        "bang-5-1",
        "Bảng 5.1. Vụ việc theo loại (toàn quận)",
        "5.1 Vụ việc toàn quận",
        (Column("label", "Loại vụ việc", width=28), *_INCIDENT_COLUMNS),
        frame,
        note=method.format(cutoff=when),
    )
    return Section(5, "TÌNH HÌNH VỤ VIỆC LIÊN QUAN ĐẾN TRẺ EM", (table,), paragraphs)


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
