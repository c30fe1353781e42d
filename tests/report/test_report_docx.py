"""bao-cao.docx: the NĐ 30/2020 document the specialist edits and signs, opened with python-docx."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import docx
import pytest
from docx.document import Document as DocxDocument
from docx.shared import Pt
from docx.table import Table as DocxTable

import tests.support.rollup_data as fx
from tasks.report.build import build_report
from tasks.report.docx_render import RECIPIENTS, convert_to_pdf, render_docx
from tasks.report.docx_template import FIELD_STYLE, build_template
from tasks.report.model import CycleReport
from tasks.report.render_html import appendix_numbers, display_frame
from tasks.report.wording import fmt_int, fmt_pct


@pytest.fixture(scope="module")
def report() -> CycleReport:
    return build_report(fx.make_cycle_data())


@pytest.fixture(scope="module")
def content(report: CycleReport) -> bytes:
    return render_docx(report, "125")


@pytest.fixture(scope="module")
def document(content: bytes) -> DocxDocument:
    return docx.Document(io.BytesIO(content))


def _texts(document: DocxDocument) -> list[str]:
    return [p.text for p in document.paragraphs]


def _rows(table: DocxTable) -> list[list[str]]:
    return [[cell.text for cell in row.cells] for row in table.rows]


def test_header_has_the_issuing_body_nation_number_place_and_date(document: DocxDocument) -> None:
    left, right = document.tables[0].rows[0].cells
    assert [p.text for p in left.paragraphs if p.text] == [
        "ỦY BAN NHÂN DÂN QUẬN 8", "PHÒNG GIÁO DỤC VÀ ĐÀO TẠO", "Số: 125/BC-GDĐT"]
    assert [p.text for p in right.paragraphs if p.text] == [
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc",
        "Quận 8, ngày 10 tháng 05 năm 2023"]
    assert "BÁO CÁO TỔNG HỢP KẾT QUẢ THỰC HIỆN CÔNG TÁC BÌNH ĐẲNG GIỚI VÀ TRẺ EM" in _texts(document)


def test_number_is_left_blank_without_one(report: CycleReport) -> None:
    blank = docx.Document(io.BytesIO(render_docx(report, "")))
    number = [p.text for p in blank.tables[0].rows[0].cells[0].paragraphs if p.text][-1]
    assert number.startswith("Số: ") and number.endswith("/BC-GDĐT")
    assert not any(ch.isdigit() for ch in number)


def test_page_font_and_margins_follow_the_decree(document: DocxDocument) -> None:
    body = document.sections[0]
    # Word stores twentieths of a point: compare in whole millimetres.
    assert (round(body.page_width.mm), round(body.page_height.mm)) == (210, 297)
    assert 20 <= round(body.top_margin.mm) <= 25 and 20 <= round(body.bottom_margin.mm) <= 25
    assert 30 <= round(body.left_margin.mm) <= 35 and 15 <= round(body.right_margin.mm) <= 20
    normal = document.styles["Normal"].font
    assert normal.name == "Times New Roman" and Pt(13) <= normal.size <= Pt(14)


def test_figures_in_sentences_are_the_report_models(document: DocxDocument, report: CycleReport) -> None:
    text = "\n".join(_texts(document))
    district = report.table("bang-2-1").frame.set_index("code")
    for code in ("CT1", "CT2"):
        value, target = district.loc[code, "value"], district.loc[code, "target"]
        assert f"{code}: {fmt_pct(value)} (mục tiêu {fmt_pct(target)})" in text
    activities = report.table("bang-3-1").frame
    assert (f"Các trường đã báo cáo {fmt_int(int(activities['activities'].sum()))} hoạt động với "
            f"{fmt_int(int(activities['participants'].sum()))} lượt người tham dự.") in text
    for row in activities[activities["activities"] > 0].itertuples():
        assert f"{row.label}: {fmt_int(row.activities)} hoạt động tại {fmt_int(row.schools)} trường" in text


def test_body_tables_show_the_models_cells(document: DocxDocument, report: CycleReport) -> None:
    shown = display_frame(report.table("bang-2-1"))
    grids = [t for t in document.tables if t.rows[0].cells[0].text == "Mã" and "Chỉ tiêu" in _rows(t)[0]]
    assert len(grids) == 1
    assert _rows(grids[0])[1:] == shown.astype(str).values.tolist()


def test_long_lists_are_numbered_appendices_after_the_signature(
    document: DocxDocument, report: CycleReport
) -> None:
    texts = _texts(document)
    numbers = appendix_numbers(report)
    assert numbers  # the demo has per-school lists
    headings = [t for t in texts if t.startswith("PHỤ LỤC ")]
    assert headings == [f"PHỤ LỤC {n}" for n in sorted(numbers.values())]
    for table_id, number in numbers.items():
        assert f"{report.table(table_id).title}: xem Phụ lục {number}." in texts
    assert texts.index("PHỤ LỤC 1") > texts.index("IV. KIẾN NGHỊ, ĐỀ XUẤT")
    per_school = report.table("bang-2-5")
    appendix = next(t for t in document.tables if _rows(t)[0][0] == "Mã trường" and len(t.rows) - 1 ==
                    len(per_school.frame) and _rows(t)[0][-1] == per_school.columns[-1].label)
    assert [row[0] for row in _rows(appendix)[1:]] == per_school.frame["school_code"].tolist()
    assert round(document.sections[-1].page_width.mm) == 297  # landscape: wide lists fit one page


def test_signature_recipients_and_marked_fields(document: DocxDocument) -> None:
    closing = next(t for t in document.tables if t.rows[0].cells[0].text.startswith("Nơi nhận"))
    recipients, signature = closing.rows[0].cells
    assert [p.text for p in recipients.paragraphs] == [
        "Nơi nhận:", "- UBND Quận 8;", "- Sở GD&ĐT TP.HCM;", "- Phòng LĐ-TB&XH Quận 8;", "- Lưu: VT."]
    assert len(RECIPIENTS) == 4
    assert [p.text for p in signature.paragraphs if p.text][:2] == ["KT. TRƯỞNG PHÒNG", "PHÓ TRƯỞNG PHÒNG"]
    texts = _texts(document)
    assert texts.index("II. ĐÁNH GIÁ CHUNG") < texts.index("1. Ưu điểm")
    for heading in ("1. Ưu điểm", "2. Hạn chế", "3. Nguyên nhân",
                    "III. PHƯƠNG HƯỚNG, NHIỆM VỤ THỜI GIAN TỚI", "IV. KIẾN NGHỊ, ĐỀ XUẤT"):
        following = texts[texts.index(heading) + 1: texts.index(heading) + 3]
        assert any(t.startswith("[Chuyên viên nhập:") for t in following), heading
    fields = [r for p in document.paragraphs for r in p.runs if r.text.startswith("[Chuyên viên nhập:")]
    assert fields and all(r.style.name == FIELD_STYLE for r in fields)
    assert document.styles[FIELD_STYLE].font.highlight_color is not None


def test_no_per_school_incident_figures(document: DocxDocument, report: CycleReport) -> None:
    restricted_heads = [c.label for c in report.restricted_incidents.columns]
    assert all(_rows(t)[0] != restricted_heads for t in document.tables)
    public = display_frame(report.table("bang-5-1")).astype(str).values.tolist()
    incident_grid = next(t for t in document.tables if _rows(t)[1:] == public)
    assert incident_grid is not None
    assert report.restricted_incidents.title not in "\n".join(_texts(document))


def test_same_report_gives_the_same_bytes_dated_by_as_of(content: bytes, report: CycleReport) -> None:
    assert render_docx(build_report(fx.make_cycle_data()), "125") == content
    props = docx.Document(io.BytesIO(content)).core_properties
    assert props.created == report.as_of
    assert props.modified == props.created


def test_office_restyles_through_the_template(report: CycleReport, tmp_path: Path) -> None:
    styled = docx.Document(io.BytesIO(build_template()))
    styled.styles["Normal"].font.size = Pt(13)
    styled.styles["Heading 1"].font.underline = True
    path = tmp_path / "bao-cao.docx"
    styled.save(str(path))
    restyled = docx.Document(io.BytesIO(render_docx(report, "125", template=path)))
    assert restyled.styles["Normal"].font.size == Pt(13)
    assert restyled.styles["Heading 1"].font.underline is True
    assert "I. KẾT QUẢ THỰC HIỆN" in _texts(restyled)


def test_committed_template_opens_with_the_report_styles() -> None:
    from tasks.report.docx_template import TEMPLATE_PATH

    template = docx.Document(str(TEMPLATE_PATH))
    names = {style.name for style in template.styles}
    assert {FIELD_STYLE, "GEC Table Text", "GEC Table Title", "Heading 1"} <= names
    assert template.paragraphs == [] or all(not p.text for p in template.paragraphs)


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice not installed")
def test_pdf_made_with_libreoffice(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "bao-cao.docx"
    path.write_bytes(content)
    pdf = convert_to_pdf(path)
    assert pdf == tmp_path / "bao-cao.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
