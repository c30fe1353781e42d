"""`bao-cao.docx`: the cycle report as the official document the specialist edits and signs (SPEC §5).

Built from the same `CycleReport` as the HTML and Excel files, so its figures are theirs: the NĐ 30/2020
header, the title, the results section by section with the computed figures in sentences and the short
tables, a general assessment, directions and recommendations with highlighted fields
("[Chuyên viên nhập: …]") for the specialist's words, the signature block, "Nơi nhận", then the long
per-school lists as numbered appendices (Phụ lục) on landscape pages. The per-school incident table of
the report model is never read here: only the public, suppressed district table.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from docx.document import Document as DocxDocument
from docx.enum.section import WD_ORIENT, WD_SECTION
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Mm, Pt
from docx.table import _Cell
from docx.text.paragraph import Paragraph

from tasks.report.docx_template import (
    CAPTION_STYLE,
    FIELD_STYLE,
    TABLE_HEAD_STYLE,
    TABLE_STYLE,
    normalised_zip,
    open_template,
    set_core_properties,
)
from tasks.report.model import CycleReport, Section, Table
from tasks.report.render_html import MET_STYLE, appendix_numbers, display_frame, verdict_cells
from tasks.report.section_1_header import MOTTO, NATION, OFFICE, OFFICE_PARENT, TITLE, administrative_date
from tasks.report.wording import MET_TEXT, fmt_date, fmt_datetime, fmt_int, fmt_pct, verdict

DOCX_NAME = "bao-cao.docx"
PDF_NAME = "bao-cao.pdf"
DOC_SYMBOL = "BC-GDĐT"
SIGNER_TITLE = "KT. TRƯỞNG PHÒNG"
SIGNER_ROLE = "PHÓ TRƯỞNG PHÒNG"
RECIPIENTS = ("UBND Quận 8", "Sở GD&ĐT TP.HCM", "Phòng LĐ-TB&XH Quận 8", "Lưu: VT")
ROMAN = ("I", "II", "III", "IV", "V")
BLANK_NUMBER = "\u00a0" * 8


def document_number(number: str) -> str:
    """Return "Số: 125/BC-GDĐT" (a full "125/BC-GDĐT" kept as typed; empty: a blank to write in)."""
    number = number.strip()
    if "/" in number:
        return f"Số: {number}"
    return f"Số: {number or BLANK_NUMBER}/{DOC_SYMBOL}"


def field(paragraph: Paragraph, prompt: str) -> None:
    """Append a highlighted field the specialist replaces: "[Chuyên viên nhập: …]"."""
    paragraph.add_run(f"[Chuyên viên nhập: {prompt}]", style=FIELD_STYLE)


def _plain(document: DocxDocument, text: str = "", *, align: WD_ALIGN_PARAGRAPH | None = None,
           bold: bool = False, italic: bool = False, indent: bool = True) -> Paragraph:
    paragraph = document.add_paragraph()
    if text:
        run = paragraph.add_run(text)
        run.bold, run.italic = bold or None, italic or None
    if align is not None:
        paragraph.alignment = align
    if not indent:
        paragraph.paragraph_format.first_line_indent = Cm(0)
    return paragraph


def _cell_line(cell: _Cell, text: str, *, bold: bool = False, italic: bool = False, size: int = 13,
               first: bool = False) -> Paragraph:
    paragraph = cell.paragraphs[0] if first else cell.add_paragraph()
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    paragraph.paragraph_format.first_line_indent = Cm(0)
    paragraph.paragraph_format.space_before = Pt(0)
    paragraph.paragraph_format.space_after = Pt(0)
    if text:
        run = paragraph.add_run(text)
        run.bold, run.italic = bold or None, italic or None
        run.font.size = Pt(size)
    return paragraph


def _short_rule(cell: _Cell, indent_cm: float) -> None:
    """Draw the short line the decree puts under the office name and under the motto."""
    paragraph = _cell_line(cell, "")
    paragraph.paragraph_format.left_indent = Cm(indent_cm)
    paragraph.paragraph_format.right_indent = Cm(indent_cm)
    paragraph.paragraph_format.line_spacing = Pt(2)
    borders = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    for key, value in (("w:val", "single"), ("w:sz", "6"), ("w:space", "1"), ("w:color", "000000")):
        bottom.set(qn(key), value)
    borders.append(bottom)
    paragraph._p.get_or_add_pPr().append(borders)


def _header(document: DocxDocument, report: CycleReport, number: str) -> None:
    table = document.add_table(rows=1, cols=2)
    table.autofit = False
    left, right = table.rows[0].cells
    left.width, right.width = Mm(68), Mm(97)
    _cell_line(left, OFFICE_PARENT, first=True)
    _cell_line(left, OFFICE, bold=True)
    _short_rule(left, 2.0)
    _cell_line(left, document_number(number))
    _cell_line(right, NATION, bold=True, first=True)
    _cell_line(right, MOTTO, bold=True, size=14)
    _short_rule(right, 2.6)
    _cell_line(right, administrative_date(report.as_of), italic=True, size=14)
    document.add_paragraph()
    document.add_paragraph(TITLE, style="Title")
    period = f"{fmt_date(report.period_start)} – {fmt_date(report.period_end)}"
    _plain(document, f"Kỳ báo cáo: {report.cycle_label} ({period})", align=WD_ALIGN_PARAGRAPH.CENTER,
           bold=True, indent=False)
    _plain(document, f"Số liệu tính đến {fmt_datetime(report.as_of)}", align=WD_ALIGN_PARAGRAPH.CENTER,
           italic=True, indent=False)


def _shade(cell: _Cell, fill: str) -> None:
    shading = OxmlElement("w:shd")
    shading.set(qn("w:val"), "clear")
    shading.set(qn("w:color"), "auto")
    shading.set(qn("w:fill"), fill.lstrip("#"))
    cell._tc.get_or_add_tcPr().append(shading)


def column_widths(table: Table, available_mm: float) -> list[float]:
    """Share the text width between the columns in proportion to their Excel widths (in mm)."""
    # A floor keeps short codes and numbers on one line; a cap keeps long names from taking the page.
    weights = [min(max(float(column.width or 14), 12.0), 40.0) for column in table.columns]
    return [available_mm * weight / sum(weights) for weight in weights]


def add_table(document: DocxDocument, table: Table, *, caption: bool = True) -> None:
    """Add one report table: title, bordered grid, header row repeated on every page, verdicts shaded."""
    if caption:
        document.add_paragraph(table.title, style=CAPTION_STYLE)
    shown = display_frame(table)
    verdicts = verdict_cells(table)
    grid = document.add_table(rows=1 + len(shown), cols=len(table.columns))
    grid.style = document.styles["Table Grid"]
    grid.alignment = WD_TABLE_ALIGNMENT.CENTER
    grid.autofit = False
    page = document.sections[-1]
    available = (page.page_width - page.left_margin - page.right_margin) / Mm(1)
    widths = [Mm(width) for width in column_widths(table, available)]
    for column, width in zip(grid.columns, widths, strict=True):
        column.width = width
    head = grid.rows[0]
    # Wide tables step down a point so a column of figures keeps its numbers on one line.
    size = Pt(10) if len(table.columns) > 8 else None
    head._tr.get_or_add_trPr().append(OxmlElement("w:tblHeader"))
    for cell, column, width in zip(head.cells, table.columns, widths, strict=True):
        cell.width = width
        cell.paragraphs[0].style = document.styles[TABLE_HEAD_STYLE]
        cell.paragraphs[0].add_run(column.label).font.size = size
    numeric = {"int", "pct", "measure", "change", "small_count", "met"}
    for r, values in enumerate(shown.itertuples(index=False), start=1):
        for c, (cell, column) in enumerate(zip(grid.rows[r].cells, table.columns, strict=True)):
            cell.width = widths[c]
            paragraph = cell.paragraphs[0]
            paragraph.style = document.styles[TABLE_STYLE]
            if column.kind in numeric:
                paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
            paragraph.add_run(str(values[c])).font.size = size
            judged = verdicts.get(column.key, [None] * len(shown))[r - 1]
            if judged is not None:
                _shade(cell, MET_STYLE[judged][0])
    if len(shown) == 0:
        _plain(document, "Không có.", italic=True)
    if table.note:
        note = _plain(document, table.note, italic=True)
        note.runs[0].font.size = Pt(11)


def _figure_sentences(section: Section) -> list[str]:
    """Return sentences that put a section's table figures into words (activities by type and month)."""
    sentences: list[str] = []
    for table in section.tables:
        frame = table.frame
        if table.id == "bang-3-1":
            held = frame[frame["activities"] > 0]
            sentences += [
                f"{row.label}: {fmt_int(row.activities)} hoạt động tại {fmt_int(row.schools)} trường, "
                f"{fmt_int(row.participants)} lượt người tham dự."
                for row in held.itertuples()
            ]
        elif table.id == "bang-3-3":
            sentences += [
                f"{row.label}: {fmt_int(row.schools)} trường tổ chức ({fmt_pct(row.share)} số trường đã nộp)."
                for row in frame.itertuples()
            ]
        elif table.id == "bang-3-2":
            sentences += [
                f"{row.label}: {fmt_int(row.total)} lượt tham dự, trong đó nữ {fmt_int(row.female)} "
                f"({fmt_pct(row.female_share)})."
                for row in frame.itertuples()
            ]
    return sentences


def _indicator_verdicts(report: CycleReport) -> tuple[list[str], list[str]]:
    """Return the district indicators met and not met, as "CT1 (85,0%)" labels."""
    try:
        district = report.table("bang-2-1").frame
    except KeyError:
        return [], []
    met, unmet = [], []
    for row in district.itertuples():
        judged = verdict(row.met)
        if judged is None:
            continue
        (met if judged else unmet).append(str(row.code))
    return met, unmet


def _results(document: DocxDocument, report: CycleReport, numbers: dict[str, int]) -> None:
    document.add_heading(f"{ROMAN[0]}. KẾT QUẢ THỰC HIỆN", level=1)
    for section in report.sections:
        document.add_heading(f"{section.number}. {section.title.capitalize()}", level=2)
        for text in (*section.paragraphs, *_figure_sentences(section)):
            _plain(document, text)
        for table in section.tables:
            if table.id in numbers:
                _plain(document, f"{table.title}: xem Phụ lục {numbers[table.id]}.", italic=True)
            else:
                add_table(document, table)
        field(_plain(document), f"nhận xét về {section.title.lower()}")


def _assessment(document: DocxDocument, report: CycleReport) -> None:
    met, unmet = _indicator_verdicts(report)
    document.add_heading(f"{ROMAN[1]}. ĐÁNH GIÁ CHUNG", level=1)
    document.add_heading("1. Ưu điểm", level=2)
    if met:
        _plain(document, f"Các chỉ tiêu {MET_TEXT[True].lower()} mục tiêu: {', '.join(met)}.")
    field(_plain(document), "những mặt làm được")
    document.add_heading("2. Hạn chế", level=2)
    if unmet:
        _plain(document, f"Các chỉ tiêu {MET_TEXT[False].lower()} mục tiêu: {', '.join(unmet)}.")
    field(_plain(document), "những hạn chế, tồn tại")
    document.add_heading("3. Nguyên nhân", level=2)
    field(_plain(document), "nguyên nhân của hạn chế")
    document.add_heading(f"{ROMAN[2]}. PHƯƠNG HƯỚNG, NHIỆM VỤ THỜI GIAN TỚI", level=1)
    field(_plain(document), "phương hướng, nhiệm vụ")
    document.add_heading(f"{ROMAN[3]}. KIẾN NGHỊ, ĐỀ XUẤT", level=1)
    field(_plain(document), "kiến nghị, đề xuất với cấp trên")


def _closing(document: DocxDocument) -> None:
    table = document.add_table(rows=1, cols=2)
    table.autofit = False
    left, right = table.rows[0].cells
    left.width, right.width = Mm(80), Mm(85)
    heading = left.paragraphs[0]
    run = heading.add_run("Nơi nhận:")
    run.bold, run.italic, run.font.size = True, True, Pt(12)
    for i, name in enumerate(RECIPIENTS):
        paragraph = left.add_paragraph()
        paragraph.paragraph_format.first_line_indent = Cm(0)
        paragraph.paragraph_format.space_before = paragraph.paragraph_format.space_after = Pt(0)
        paragraph.alignment = WD_ALIGN_PARAGRAPH.LEFT
        line = paragraph.add_run(f"- {name}{'.' if i == len(RECIPIENTS) - 1 else ';'}")
        line.font.size = Pt(11)
    _cell_line(right, SIGNER_TITLE, bold=True, size=14, first=True)
    _cell_line(right, SIGNER_ROLE, bold=True, size=14)
    for _ in range(4):
        _cell_line(right, "")
    field(_cell_line(right, ""), "họ và tên người ký")


def _appendices(document: DocxDocument, report: CycleReport, numbers: dict[str, int], number: str) -> None:
    tables = [table for section in report.sections for table in section.tables if table.id in numbers]
    if not tables:
        return
    section = document.add_section(WD_SECTION.NEW_PAGE)
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = Mm(297), Mm(210)
    day = administrative_date(report.as_of).split(", ", 1)[1]
    for i, table in enumerate(tables):
        heading = _plain(document, f"PHỤ LỤC {numbers[table.id]}", align=WD_ALIGN_PARAGRAPH.CENTER,
                         bold=True, indent=False)
        heading.paragraph_format.page_break_before = i > 0
        document.add_paragraph(table.title.split(". ", 1)[-1].upper(), style=CAPTION_STYLE)
        reference = document_number(number).replace("Số:", "số", 1)
        _plain(document, f"(Kèm theo Báo cáo {reference} {day} của Phòng Giáo dục và Đào tạo Quận 8)",
               align=WD_ALIGN_PARAGRAPH.CENTER, italic=True, indent=False)
        add_table(document, table, caption=False)


def render_docx(report: CycleReport, number: str = "", template: Path | None = None) -> bytes:
    """Return the Word report; the same report and number give the same bytes."""
    document = open_template(template)
    numbers = appendix_numbers(report)
    _header(document, report, number)
    field(_plain(document), "căn cứ (kế hoạch, văn bản chỉ đạo) và mở đầu báo cáo")
    _results(document, report, numbers)
    _assessment(document, report)
    _plain(document)
    _closing(document)
    _appendices(document, report, numbers, number)
    set_core_properties(document, f"{TITLE} – {report.cycle_label}", report.as_of)
    buffer = io.BytesIO()
    document.save(buffer)
    return normalised_zip(buffer.getvalue())


def convert_to_pdf(docx: Path, timeout: float = 180) -> Path | None:
    """Convert the Word file to PDF beside it with LibreOffice when installed; None when not possible.

    Best effort: the PDF embeds its own creation time, so it is not byte-reproducible and stays out of
    the manifest's hashes.
    """
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        return None
    with tempfile.TemporaryDirectory(prefix="gec-soffice-") as profile:
        # A private profile: a running LibreOffice or another conversion does not block this one.
        command: Sequence[str] = (
            soffice, f"-env:UserInstallation=file://{profile}", "--headless", "--norestore",
            "--convert-to", "pdf", "--outdir", str(docx.parent), str(docx),
        )
        try:
            subprocess.run(command, capture_output=True, timeout=timeout, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
    pdf = docx.with_suffix(".pdf")
    return pdf if pdf.is_file() else None
