"""The cycle report as one self-contained HTML page (great-tables tables, inline SVG charts).

Office machines may be offline, so the page carries its own CSS and draws its charts inline: no
fonts, scripts, images or links are fetched. Text from data is escaped by great-tables or `escape()`.
The output depends only on the report, so the same data always gives the same bytes.
"""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

import pandas as pd
from great_tables import GT

from tasks.report.charts import completeness_by_level_svg, reach_by_ward_svg
from tasks.report.model import Column, CycleReport, Table
from tasks.report.section_1_header import (
    DOC_NUMBER,
    MOTTO,
    NATION,
    OFFICE,
    OFFICE_PARENT,
    TITLE,
    administrative_date,
)
from tasks.report.wording import (
    MET_TEXT,
    fmt_change,
    fmt_date,
    fmt_datetime,
    fmt_int,
    fmt_measure,
    fmt_pct,
    fmt_small_count,
    verdict,
)

FONTS = ["Times New Roman", "Times", "serif"]
# Longer appendix lists (a city's per-school table) are left to the workbook, so the page stays small.
HTML_LIST_ROWS = 1000
XLSX_FILE = "tong-hop.xlsx"
MET_STYLE = {True: ("#d7f0dc", "#1b5e20"), False: ("#f9d6d5", "#8b1a1a")}
MET_CLASS = {True: "gec-met", False: "gec-unmet"}
NUMERIC_KINDS = {"int", "pct", "measure", "change", "small_count", "datetime", "date"}
# great-tables writes one <style> per table; a web-font import there would reach the network.
_EXTERNAL_CSS = re.compile(r"@import\s+url\([^)]*\)\s*;?|<link\b[^>]*>", re.IGNORECASE)

PAGE_CSS = """
html { background: #f3f3f0; }
body { margin: 0; color: #1a1a1a; font-family: 'Times New Roman', Times, serif; font-size: 15px;
  line-height: 1.4; }
.page { max-width: 1120px; margin: 0 auto; padding: 28px 40px 48px; background: #ffffff; }
.admin { width: 100%; border-collapse: collapse; margin-bottom: 18px; }
.admin td { vertical-align: top; text-align: center; padding: 0; width: 50%; font-size: 15px; }
.admin .rule { display: block; width: 38%; margin: 3px auto 6px; border-top: 1px solid #1a1a1a; }
.admin .motto { display: inline-block; }
.admin .place { font-style: italic; }
h1 { font-size: 19px; text-align: center; margin: 22px 0 4px; }
.cycle, .asof { text-align: center; margin: 2px 0; }
.cycle { font-weight: bold; }
.asof { font-style: italic; }
h2 { font-size: 17px; margin: 30px 0 8px; padding-bottom: 4px; border-bottom: 2px solid #1f3b63;
  color: #1f3b63; }
p.lead { margin: 6px 0 10px; text-align: justify; }
.table-block { margin: 10px 0 18px; }
.chart-block { margin: 8px 0 22px; text-align: center; }
td.gt_right, td.gt_center { white-space: nowrap; }
.chart { max-width: 100%; height: auto; }
.empty { font-style: italic; color: #555555; }
.closing { width: 100%; border-collapse: collapse; margin-top: 36px; }
.closing td { vertical-align: top; padding: 0; width: 50%; }
.closing .sign { text-align: center; font-weight: bold; }
.recipients { font-size: 13px; }
.generated { margin-top: 28px; font-size: 12px; color: #555555; font-style: italic; }
p.see-appendix { margin: 4px 0 14px; font-style: italic; }
table.list { width: 100%; border-collapse: collapse; font-size: 13px; border-top: 2px solid #1f3b63; }
table.list caption { text-align: left; font-weight: bold; font-size: 15px; padding: 4px 0 6px; }
table.list th { background: #eef2f7; text-align: left; vertical-align: bottom; padding: 4px;
  border-bottom: 2px solid #d3d3d3; }
table.list td { padding: 3px 4px; vertical-align: top; border-bottom: 1px solid #e5e5e5; }
table.list tfoot td { border: none; font-size: 12px; padding-top: 6px; }
p.list-title { font-weight: bold; font-size: 15px; margin: 4px 0; }
.appendices h2 { text-align: center; border-bottom: none; }
@media print {
  html { background: #ffffff; }
  .page { max-width: none; padding: 0; }
  h2 { break-after: avoid; }
  .table-block, .chart-block { break-inside: avoid; }
  /* Long lists: each appendix on its own pages, header row repeated, no row split across pages. */
  .appendix { break-before: page; }
  .appendix .table-block { break-inside: auto; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; }
}
@page { size: A4; margin: 20mm 15mm 20mm 25mm; }
"""
# A cell whose text carries a verdict class is painted whole where the browser knows `:has()`
# (Chromium 105+, Firefox 121+, Safari 15.4+); older browsers still colour the text.
VERDICT_CSS = "".join(
    f"td:has(> .{MET_CLASS[judged]}) {{ background-color: {fill}; color: {ink}; }}\n"
    f".{MET_CLASS[judged]} {{ color: {ink}; }}\n"
    for judged, (fill, ink) in MET_STYLE.items()
)


def display_text(column: Column, value: object, unit: str = "") -> str:
    """Return one cell as the reader sees it, in Vietnamese number and date formats."""
    match column.kind:
        case "int":
            return fmt_int(value, column.empty)
        case "pct":
            return fmt_pct(value, empty=column.empty)
        case "date":
            return fmt_date(value, column.empty)
        case "datetime":
            return fmt_datetime(value, column.empty)
        case "met":
            judged = verdict(value)
            return column.empty if judged is None else MET_TEXT[judged]
        case "small_count":
            return fmt_small_count(value)
        case "measure":
            return fmt_measure(value, unit, column.empty)
        case "change":
            return fmt_change(value, unit, column.empty)
    return column.empty if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def display_value(column: Column, row: pd.Series) -> str:
    """Return one cell of a row as the reader sees it."""
    return display_text(column, row[column.key], str(row[column.unit_key]) if column.unit_key else "")


def display_column(table: Table, column: Column) -> list[str]:
    """Return one column's cells as formatted text, top to bottom (column-wise: no per-row objects)."""
    values = table.frame[column.key].tolist()
    if column.unit_key:
        units = [str(unit) for unit in table.frame[column.unit_key].tolist()]
        return [display_text(column, value, unit) for value, unit in zip(values, units, strict=True)]
    return [display_text(column, value) for value in values]


def display_frame(table: Table) -> pd.DataFrame:
    """Return the table's shown columns as formatted text."""
    return pd.DataFrame(
        {column.key: pd.Series(display_column(table, column), dtype=object) for column in table.columns},
        columns=[column.key for column in table.columns],
        dtype=object,
    )


def verdict_cells(table: Table) -> dict[str, list[bool | None]]:
    """Return, for each column coloured by a met/not-met verdict, that verdict row by row."""
    cells: dict[str, list[bool | None]] = {}
    for met in (column for column in table.columns if column.kind == "met"):
        verdicts = [verdict(value) for value in table.frame[met.key]]
        for coloured in (met, *(c for c in table.columns if c.met_key == met.key)):
            cells[coloured.key] = verdicts
    return cells


def _verdict_html(text: str, judged: bool | None) -> str:
    """Return a cell's escaped text, marked with its verdict's class when it has one."""
    return escape(text) if judged is None else f'<span class="{MET_CLASS[judged]}">{escape(text)}</span>'


def _ready_html(value: str) -> str:
    # These cells were escaped and marked by `_verdict_html`; great-tables keeps a formatter's output.
    return value


def build_table(table: Table) -> GT:
    """Build the great-tables table for one report table: labels, alignment, met/not-met colours.

    Verdict colours come from a class on the cell's text (VERDICT_CSS paints the cell), not from
    `tab_style`: great-tables matches every cell against every styled cell, so per-row styles made a
    5,000-school table take seconds per column.
    """
    shown = display_frame(table)
    verdicts = verdict_cells(table)
    for key, judged in verdicts.items():
        shown[key] = [_verdict_html(text, one) for text, one in zip(shown[key], judged, strict=True)]
    gt = (
        GT(shown, id=table.id)
        .tab_header(title=table.title)
        .cols_label(cases={column.key: column.label for column in table.columns})
        .tab_options(
            table_font_names=FONTS,
            table_font_size="13px",
            table_width="100%",
            heading_align="left",
            heading_title_font_size="15px",
            column_labels_font_weight="bold",
            column_labels_background_color="#eef2f7",
            data_row_padding="4px",
            table_border_top_color="#1f3b63",
        )
    )
    for align, keys in (
        ("right", [c.key for c in table.columns if c.kind in NUMERIC_KINDS]),
        ("center", [c.key for c in table.columns if c.kind == "met"]),
        ("left", [c.key for c in table.columns if c.kind == "text"]),
    ):
        if keys:
            gt = gt.cols_align(align, columns=keys)
    if verdicts:
        gt = gt.fmt(_ready_html, columns=list(verdicts))
    if table.note:
        gt = gt.tab_source_note(table.note)
    return gt


def _table_html(table: Table) -> str:
    html = _EXTERNAL_CSS.sub("", build_table(table).as_raw_html())
    empty = '<p class="empty">Không có dữ liệu.</p>' if table.frame.empty else ""
    return f'<div class="table-block">\n{html}\n{empty}</div>'


def list_html(table: Table) -> str:
    """Render a long list as a plain table: no per-cell classes or styles, so 5,000 rows stay small.

    Alignment comes from one per-table rule on column positions; verdict colours from the same
    classes as the great-tables tables. Lists longer than HTML_LIST_ROWS are left to the workbook.
    """
    if len(table.frame) > HTML_LIST_ROWS:
        return (
            f'<div class="table-block" id="{escape(table.id)}">\n'
            f'<p class="list-title">{escape(table.title)}</p>\n'
            f'<p class="lead">Danh sách có {fmt_int(len(table.frame))} dòng, quá dài để đưa vào trang này: '
            f"xem đầy đủ trong tệp {XLSX_FILE}, trang tính “{escape(table.sheet)}”.</p>\n</div>"
        )
    verdicts = verdict_cells(table)
    cells = []
    for column in table.columns:
        texts = display_column(table, column)
        if column.key in verdicts:
            cells.append([_verdict_html(t, j) for t, j in zip(texts, verdicts[column.key], strict=True)])
        else:
            cells.append([escape(text) for text in texts])
    right = [i for i, c in enumerate(table.columns, start=1) if c.kind in NUMERIC_KINDS]
    centre = [i for i, c in enumerate(table.columns, start=1) if c.kind == "met"]
    rules = [
        ",".join(f"#{table.id} td:nth-child({i})" for i in positions) + f" {{ text-align: {align}; }}"
        for align, positions in (("right", right), ("center", centre))
        if positions
    ]
    head = "".join(f"<th>{escape(column.label)}</th>" for column in table.columns)
    body = "\n".join("<tr><td>" + "</td><td>".join(row) + "</td></tr>" for row in zip(*cells, strict=True))
    foot = (
        f'<tfoot><tr><td colspan="{len(table.columns)}">{escape(table.note)}</td></tr></tfoot>'
        if table.note
        else ""
    )
    empty = '<p class="empty">Không có dữ liệu.</p>' if table.frame.empty else ""
    style = f"<style>{' '.join(rules)}</style>\n" if rules else ""
    return (
        f'<div class="table-block" id="{escape(table.id)}">\n{style}<table class="list">'
        f"<caption>{escape(table.title)}</caption>\n"
        f'<thead><tr class="gt_col_headings">{head}</tr></thead>\n<tbody>\n{body}\n</tbody>{foot}</table>\n'
        f"{empty}</div>"
    )


def _header(report: CycleReport) -> str:
    period = f"{fmt_date(report.period_start)} – {fmt_date(report.period_end)}"
    return f"""<header>
<table class="admin" role="presentation"><tr>
<td>{escape(OFFICE_PARENT)}<br><strong>{escape(OFFICE)}</strong>\
<span class="rule"></span>{escape(DOC_NUMBER)}</td>
<td><strong>{escape(NATION)}</strong><br><strong class="motto">{escape(MOTTO)}</strong>\
<span class="rule"></span><span class="place">{escape(administrative_date(report.as_of))}</span></td>
</tr></table>
<h1>{escape(TITLE)}</h1>
<p class="cycle">Kỳ báo cáo: {escape(report.cycle_label)} ({escape(period)})</p>
<p class="asof">Số liệu tính đến {escape(fmt_datetime(report.as_of))}</p>
</header>"""


def _charts(report: CycleReport) -> dict[str, str]:
    """Return the charts keyed by the table they follow."""
    charts = {"bang-1-2": completeness_by_level_svg(report.completeness_by_level)}
    if report.reach_chart_codes:
        charts["bang-2-4"] = reach_by_ward_svg(
            report.reach_by_ward, report.reach_chart_codes, report.reach_chart_target
        )
    return {key: f'<figure class="chart-block">\n{svg}\n</figure>' for key, svg in charts.items()}


def _closing() -> str:
    return """<table class="closing" role="presentation"><tr>
<td class="recipients"><strong><em>Nơi nhận:</em></strong><br>- Ủy ban nhân dân Quận 8;<br>- Lưu: VT.</td>
<td class="sign">TRƯỞNG PHÒNG</td>
</tr></table>"""


def appendix_numbers(report: CycleReport) -> dict[str, int]:
    """Return the appendix (Phụ lục) number of each long list, in the order the report names them."""
    tables = [table for section in report.sections for table in section.tables if table.appendix]
    return {table.id: number for number, table in enumerate(tables, start=1)}


def _appendix_pointer(table: Table, number: int) -> str:
    # Plain text, no link: the page references nothing, not even itself (see test_html_is_self_contained).
    return f'<p class="see-appendix">{escape(table.title)}: xem Phụ lục {number}.</p>'


def _appendices(report: CycleReport, numbers: dict[str, int]) -> list[str]:
    parts = []
    for section in report.sections:
        for table in section.tables:
            if table.id in numbers:
                number = numbers[table.id]
                parts += [
                    f'<section class="appendix" id="phu-luc-{number}">',
                    f"<h2>PHỤ LỤC {number}</h2>",
                    list_html(table),
                    "</section>",
                ]
    return ['<div class="appendices">', *parts, "</div>"] if parts else []


def render_html(report: CycleReport) -> str:
    """Return the whole report as one self-contained HTML page; long lists follow as appendices."""
    charts = _charts(report)
    numbers = appendix_numbers(report)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="vi">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(TITLE.capitalize())} - {escape(report.cycle_label)}</title>",
        f"<style>{PAGE_CSS}{VERDICT_CSS}</style>",
        "</head>",
        "<body>",
        '<main class="page">',
        _header(report),
    ]
    for section in report.sections:
        parts.append(f'<section id="muc-{section.number}">')
        parts.append(f"<h2>{section.number}. {escape(section.title)}</h2>")
        parts += [f'<p class="lead">{escape(paragraph)}</p>' for paragraph in section.paragraphs]
        for table in section.tables:
            if table.id in numbers:
                parts.append(_appendix_pointer(table, numbers[table.id]))
                continue
            parts.append(_table_html(table))
            if table.id in charts:
                parts.append(charts[table.id])
        parts.append("</section>")
    parts += [
        _closing(),
        '<p class="generated">Báo cáo được tổng hợp tự động từ các báo cáo hợp lệ của các trường '
        f"nhận đến {escape(fmt_datetime(report.as_of))}.</p>",
        *_appendices(report, numbers),
        "</main>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)


def write_html(report: CycleReport, path: Path) -> Path:
    """Write the report page as UTF-8 and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8", newline="\n")
    return path
