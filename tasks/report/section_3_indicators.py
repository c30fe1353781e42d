"""SPEC §5.3: indicators against their targets — district, level, ward, school (report section 2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from schemas.contract import AUDIENCE_GROUPS, SCHOOL_LEVELS
from tasks.report.cycle_data import CycleData, text_column
from tasks.report.indicators import (
    direction_of,
    indicator_fraction,
    is_reach,
    meets,
    ratio,
    reach_sums,
    target_of,
    unit_of,
)
from tasks.report.model import Column, Section, Table
from tasks.report.wording import MET_TEXT, NOT_ENTERED, fmt_pct, is_missing, level_label, ward_sort_key

if TYPE_CHECKING:
    from schemas.reference import Indicator

def _with_school_keys(reach: pd.DataFrame, schools: pd.DataFrame) -> pd.DataFrame:
    keys = schools[["code", "name", "level", "ward"]].rename(columns={"code": "school_code"})
    merged = reach.merge(keys, on="school_code", how="left")
    for column in ("name", "level", "ward"):
        merged[column] = text_column(merged[column])
    return merged


def not_entered(data: CycleData) -> tuple[str, ...]:
    """Return the codes of the manual indicators with no figure for the cycle, in catalog order."""
    return tuple(
        indicator.code
        for indicator in data.indicators
        if getattr(indicator, "manual", False) and not is_reach(indicator)
        and is_missing(data.manual_values.get(indicator.code, indicator.value_for(data.cycle.id)))
    )


def district_note(data: CycleData) -> str:
    """Return the note under table 2.1: how CT1/CT2 are computed, and the indicators still to enter."""
    note = (
        "CT1, CT2: tổng số được truyền thông chia cho tổng số đối tượng của các nhóm tương ứng, cộng dồn "
        "trên báo cáo hợp lệ hiện hành của các trường."
    )
    missing = not_entered(data)
    if missing:
        note += (
            f" {NOT_ENTERED} số liệu kỳ này cho {len(missing)} chỉ tiêu do Phòng nhập nên chưa đưa vào "
            f"bảng: {', '.join(missing)}."
        )
    return note


def _indicator_rows(data: CycleData, reach: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for indicator in data.indicators:
        target = target_of(indicator)
        unit = unit_of(indicator)
        row: dict[str, Any] = {
            "code": indicator.code,
            "name": indicator.name,
            "program": str(getattr(indicator, "program", "") or ""),
            "unit": unit,
            "target": target,
            "direction": direction_of(indicator),
            "value": None,
            "met": None,
            "total": None,
            "reached": None,
            "female_share_reached": None,
            "female_share_total": None,
            "source": "",
        }
        if is_reach(indicator):
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
            entered = data.manual_values.get(indicator.code, indicator.value_for(data.cycle.id))
            if is_missing(entered):
                continue  # listed once in the table's note, not as one "Chưa nhập" row each
            row.update(value=indicator_fraction(indicator, entered), source="Phòng nhập")
        row["met"] = meets(row["value"], target, row["direction"])
        rows.append(row)
    return object_frame(
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
        rates = [None if is_missing(v) else float(v) for v in frame[f"{indicator.code}_rate"]]
        target, direction = target_of(indicator), direction_of(indicator)
        frame[f"{indicator.code}_rate"] = pd.Series(rates, index=frame.index, dtype=object)
        frame[f"{indicator.code}_met"] = pd.Series(
            [meets(v, target, direction) for v in rates], index=frame.index, dtype=object
        )
    return frame


def object_frame(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
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


def build_indicators_section(
    data: CycleData, schools: pd.DataFrame, reach: pd.DataFrame, general: pd.DataFrame
) -> tuple[Section, pd.DataFrame, tuple[str, ...], float | None]:
    keyed = _with_school_keys(reach, schools)
    reach_indicators = [ind for ind in data.indicators if is_reach(ind)]
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
                "trained_rate": ratio(trained, staff_total),
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
            note=district_note(data),
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
            appendix=True,
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
    chart_target = target_of(reach_indicators[0]) if reach_indicators else None
    return (
        Section(2, "KẾT QUẢ THỰC HIỆN CÁC CHỈ TIÊU", tables, paragraphs),
        chart,
        tuple(ind.code for ind in reach_indicators),
        chart_target,
    )
