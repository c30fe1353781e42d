"""The annual view (SPEC §5): a year's two half-year reports side by side and the change against last year.

Each half is the ordinary cycle report (`build_report` over `load_cycle_data`, as of the same moment),
so every figure here is one the cycle reports print. The main tables are put side by side (one column
per half for each measure); the headline figures of each half are compared with the same half of the
previous year. The result is a `CycleReport`, so the HTML, Excel and Word writers draw it unchanged.

Decisions: the annual view has no per-school lists and no incident table (the cycle reports carry them);
a half of the previous year with no valid report counts as "no data", not as zeros.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from tasks.report.model import Column, CycleReport, Section, Table

HALVES = ("H1", "H2")
HALF_LABELS = {"H1": "6 tháng đầu năm", "H2": "6 tháng cuối năm"}
HALF_SHORT = {"H1": "6 tháng đầu", "H2": "6 tháng cuối"}


@dataclass(frozen=True)
class SideBySide:
    """A cycle table shown for both halves: the row keys once, then each measure for H1 and H2."""

    table_id: str
    keys: tuple[str, ...]
    values: tuple[str, ...] | None = None  # None: every shown column that is not a key


SIDE_BY_SIDE: tuple[tuple[str, tuple[SideBySide, ...]], ...] = (
    ("TÌNH HÌNH NỘP BÁO CÁO", (
        SideBySide(
            "bang-1-1", ("label",), ("expected", "received", "received_rate", "on_time", "late", "missing")
        ),
        SideBySide("bang-1-2", ("label",), ("expected", "received", "received_rate", "missing")),
    )),
    ("KẾT QUẢ THỰC HIỆN CÁC CHỈ TIÊU", (
        SideBySide("bang-2-1", ("code", "name", "unit"), ("target", "value", "met")),
        SideBySide("bang-2-2", ("label",), ("total", "reached", "rate")),
        SideBySide("bang-2-3", ("label",)),
    )),
    ("CÁC HOẠT ĐỘNG ĐÃ TỔ CHỨC", (
        SideBySide("bang-3-1", ("label",), ("activities", "schools", "participants")),
        SideBySide("bang-3-2", ("label",), ("total", "female", "female_share")),
        SideBySide("bang-3-3", ("label",), ("schools", "share")),
    )),
    ("KẾT QUẢ TỰ ĐÁNH GIÁ", (SideBySide("bang-4-1", ("full_label",), ("answered", "yes", "yes_share")),)),
)


def _renumbered(title: str, section: int, index: int, year: int) -> str:
    name = title.split(". ", 1)[-1]
    return f"Bảng {section}.{index}. {name} – năm {year}"


def side_by_side(
    spec: SideBySide, halves: dict[str, CycleReport], section: int, index: int, year: int
) -> Table:
    """Return the two halves' versions of one table merged on its row keys, measures interleaved."""
    source = {half: report.table(spec.table_id) for half, report in halves.items()}
    first = source[HALVES[0]]
    by_key = {column.key: column for column in first.columns}
    values = spec.values or tuple(c.key for c in first.columns if c.key not in spec.keys)
    needed = set(values) | {by_key[v].met_key for v in values if by_key[v].met_key}
    merged: pd.DataFrame | None = None
    for half in HALVES:
        frame = source[half].frame[[*spec.keys, *sorted(k for k in needed if k)]].copy()
        frame = frame.rename(columns={key: f"{key}__{half}" for key in needed if key})
        merged = frame if merged is None else merged.merge(frame, on=list(spec.keys), how="outer", sort=False)
    assert merged is not None
    # Rows in the cycle reports' order (H1's, then rows only H2 has): an outer merge sorts them by text.
    order: dict[tuple[object, ...], int] = {}
    for half in HALVES:
        for row in source[half].frame[list(spec.keys)].itertuples(index=False, name=None):
            order.setdefault(tuple(row), len(order))
    rank = [order[tuple(row)] for row in merged[list(spec.keys)].itertuples(index=False, name=None)]
    merged = merged.assign(_order=rank).sort_values("_order", kind="stable").drop(columns="_order")
    columns = [by_key[key] for key in spec.keys if key in by_key]
    for key in values:
        column = by_key[key]
        for half in HALVES:
            columns.append(Column(
                f"{key}__{half}", f"{column.label} ({HALF_SHORT[half]})", column.kind,
                met_key=f"{column.met_key}__{half}" if column.met_key else None,
                unit_key=column.unit_key, empty=column.empty, width=column.width,
            ))
    return Table(
        f"nam-{spec.table_id}", _renumbered(first.title, section, index, year), first.sheet, tuple(columns),
        merged.reset_index(drop=True), note=first.note,
    )


def headline_figures(report: CycleReport) -> list[tuple[str, str, float | None]]:
    """Return a half's headline figures (label, unit, value): submissions, indicators, activities."""
    status = report.table("bang-1-1").frame.iloc[0]
    figures: list[tuple[str, str, float | None]] = [
        ("Số trường phải nộp", "", status["expected"]),
        ("Số trường đã nộp hợp lệ", "", status["received"]),
        ("Tỷ lệ trường đã nộp", "%", status["received_rate"]),
    ]
    for row in report.table("bang-2-1").frame.itertuples():
        figures.append((f"{row.code}: {row.name}", str(row.unit), None if pd.isna(row.value) else row.value))
    activities = report.table("bang-3-1").frame
    figures += [
        ("Số hoạt động", "", int(activities["activities"].sum())),
        ("Tổng lượt tham dự hoạt động", "", int(activities["participants"].sum())),
    ]
    return figures


def _has_data(report: CycleReport | None) -> bool:
    return report is not None and int(report.table("bang-1-1").frame.iloc[0]["received"]) > 0


def change_table(
    year: int, halves: dict[str, CycleReport], previous: dict[str, CycleReport | None], section: int
) -> Table | None:
    """Return each half's headline figures against the same half of the previous year (None: no data)."""
    if not any(_has_data(previous.get(half)) for half in HALVES):
        return None
    rows: dict[str, dict[str, object]] = {}
    for half in HALVES:
        now = headline_figures(halves[half])
        before_report = previous.get(half)
        before = {label: value for label, _, value in headline_figures(before_report)} if (
            before_report is not None and _has_data(before_report)) else {}
        for label, unit, value in now:
            row = rows.setdefault(label, {"label": label, "unit": unit})
            old = before.get(label)
            row[f"previous__{half}"] = old
            row[f"current__{half}"] = value
            missing = old is None or value is None or pd.isna(old) or pd.isna(value)
            row[f"change__{half}"] = None if missing else float(value) - float(old)  # type: ignore[arg-type]
    columns = [Column("label", "Nội dung", width=40)]
    for half in HALVES:
        short = HALF_SHORT[half]
        columns += [
            Column(f"previous__{half}", f"{short} năm {year - 1}", "measure", unit_key="unit", width=14),
            Column(f"current__{half}", f"{short} năm {year}", "measure", unit_key="unit", width=14),
            Column(f"change__{half}", f"Thay đổi ({short})", "change", unit_key="unit", width=14),
        ]
    return Table(
        "nam-so-sanh", f"Bảng {section}.1. So sánh với năm {year - 1}", f"{section}.1 So sánh năm trước",
        tuple(columns), pd.DataFrame(list(rows.values())),
        note="Mỗi nửa năm so với cùng kỳ năm trước; kỳ năm trước không có báo cáo hợp lệ để trống.",
    )


def _empty_table(table_id: str) -> Table:
    return Table(table_id, "", table_id, (), pd.DataFrame())


def build_annual_report(
    year: int, halves: dict[str, CycleReport], previous: dict[str, CycleReport | None], as_of: dt.datetime
) -> CycleReport:
    """Compute the annual view of `year` from its two half-year reports and last year's."""
    sections = []
    for number, (title, specs) in enumerate(SIDE_BY_SIDE, start=1):
        # "bang-2-1" comes from the cycle report's section 2: its lead sentences are repeated per half.
        cycle_section = int(specs[0].table_id.split("-")[1])
        paragraphs = tuple(
            f"{HALF_LABELS[half]}: {text}"
            for half in HALVES
            for section in halves[half].sections if section.number == cycle_section
            for text in section.paragraphs
        )
        tables = tuple(side_by_side(spec, halves, number, index, year) for index, spec in enumerate(specs, 1))
        sections.append(Section(number, title, tables, paragraphs))
    number = len(sections) + 1
    change = change_table(year, halves, previous, number)
    sections.append(Section(
        number, f"SO SÁNH VỚI NĂM {year - 1}", (change,) if change else (),
        () if change else (f"Không có số liệu năm {year - 1} để so sánh.",),
    ))
    first, last = halves[HALVES[0]], halves[HALVES[-1]]
    return CycleReport(
        cycle_id=str(year),
        cycle_label=f"Năm {year}",
        period_start=first.period_start,
        period_end=last.period_end,
        deadline=last.deadline,
        as_of=as_of,
        previous_cycle_id=str(year - 1),
        sections=tuple(sections),
        # The charts are the cycle reports'; the annual view draws none.
        reach_by_ward=pd.DataFrame(columns=["ward"]),
        reach_chart_codes=(),
        reach_chart_target=None,
        completeness_by_level=last.completeness_by_level.iloc[0:0],
        restricted_incidents=_empty_table("none"),
        restricted_totals=_empty_table("none-totals"),
    )
