"""The Word report's base styles: page, fonts, headings, table text and the specialist's marked fields.

`reference/templates/bao-cao.docx` holds them so the office can restyle the report in Word (change a
style, save the file) without touching code; `python -m tasks.report.docx_template` (re)writes it from
the defaults below. Without the file, the renderer builds the same styles in memory.

Defaults follow NĐ 30/2020 (Phụ lục I): A4, Times New Roman 14 for the body, margins top and bottom
20 mm, left 30 mm, right 15 mm.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

from docx import Document
from docx.document import Document as DocxDocument
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_COLOR_INDEX
from docx.oxml.ns import qn
from docx.shared import Cm, Mm, Pt, RGBColor
from docx.styles.style import BaseStyle

from config.settings import PROJECT_ROOT

TEMPLATE_PATH = PROJECT_ROOT / "reference" / "templates" / "bao-cao.docx"
FONT = "Times New Roman"
BODY_SIZE = Pt(14)
FIELD_STYLE = "GEC Field"
TABLE_STYLE = "GEC Table Text"
TABLE_HEAD_STYLE = "GEC Table Head"
CAPTION_STYLE = "GEC Table Title"
# A fixed moment for the template's own properties: the file is the same bytes on every machine.
TEMPLATE_MOMENT = dt.datetime(2024, 1, 1)


def _font(style: BaseStyle, size: Pt, *, bold: bool | None = None, italic: bool | None = None) -> None:
    font = style.font  # type: ignore[attr-defined]
    font.name = FONT
    font.size = size
    font.bold = bold
    font.italic = italic
    font.color.rgb = RGBColor(0, 0, 0)
    # Vietnamese text is "complex script"/East Asian to some Word versions: name the font for all.
    fonts = style.element.get_or_add_rPr().get_or_add_rFonts()
    for attribute in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(attribute), FONT)
    for theme in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        fonts.attrib.pop(qn(theme), None)


def _paragraph_style(document: DocxDocument, name: str, size: Pt, **font: bool) -> BaseStyle:
    styles = document.styles
    known = [s.name for s in styles]
    style = styles[name] if name in known else styles.add_style(name, WD_STYLE_TYPE.PARAGRAPH)
    style.base_style = styles["Normal"]  # type: ignore[attr-defined]
    _font(style, size, **font)
    format_ = style.paragraph_format  # type: ignore[attr-defined]
    format_.first_line_indent = Cm(0)
    format_.space_before = Pt(0)
    format_.space_after = Pt(0)
    format_.line_spacing = 1.0
    return style


def apply_base_styles(document: DocxDocument) -> None:
    """Set the page, the body font and the report's named styles on a document."""
    for section in document.sections:
        section.page_width, section.page_height = Mm(210), Mm(297)
        section.top_margin, section.bottom_margin = Mm(20), Mm(20)
        section.left_margin, section.right_margin = Mm(30), Mm(15)
    styles = document.styles
    normal = styles["Normal"]
    _font(normal, BODY_SIZE)
    body = normal.paragraph_format  # type: ignore[attr-defined]
    body.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
    body.first_line_indent = Cm(1)
    body.space_before = Pt(3)
    body.space_after = Pt(3)
    body.line_spacing = 1.1
    for level, size in ((1, Pt(14)), (2, Pt(14))):
        heading = styles[f"Heading {level}"]
        _font(heading, size, bold=True)
        heading.paragraph_format.first_line_indent = Cm(1) if level == 2 else Cm(0)  # type: ignore[attr-defined]
        heading.paragraph_format.space_before = Pt(6)  # type: ignore[attr-defined]
        heading.paragraph_format.space_after = Pt(3)  # type: ignore[attr-defined]
        heading.paragraph_format.keep_with_next = True  # type: ignore[attr-defined]
    title = styles["Title"]
    _font(title, Pt(14), bold=True)
    title.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER  # type: ignore[attr-defined]
    title.paragraph_format.space_after = Pt(0)  # type: ignore[attr-defined]
    # The default Title draws a rule under itself; the decree's title has none.
    ppr = title.element.pPr
    if ppr is not None:
        for border in ppr.findall(qn("w:pBdr")):
            ppr.remove(border)
    _paragraph_style(document, TABLE_STYLE, Pt(11))
    _paragraph_style(document, TABLE_HEAD_STYLE, Pt(11), bold=True).paragraph_format.alignment = (  # type: ignore[attr-defined]
        WD_ALIGN_PARAGRAPH.CENTER
    )
    caption = _paragraph_style(document, CAPTION_STYLE, Pt(13), bold=True)
    caption.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER  # type: ignore[attr-defined]
    caption.paragraph_format.space_before = Pt(6)  # type: ignore[attr-defined]
    caption.paragraph_format.keep_with_next = True  # type: ignore[attr-defined]
    if FIELD_STYLE not in [s.name for s in styles]:
        styles.add_style(FIELD_STYLE, WD_STYLE_TYPE.CHARACTER)
    field = styles[FIELD_STYLE]
    field.font.italic = True  # type: ignore[attr-defined]
    field.font.highlight_color = WD_COLOR_INDEX.YELLOW  # type: ignore[attr-defined]


def set_core_properties(document: DocxDocument, title: str, moment: dt.datetime) -> None:
    """Fix every dated or personal core property so the same input gives the same bytes."""
    props = document.core_properties
    naive = moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment
    props.author = "Phòng Giáo dục và Đào tạo Quận 8"
    props.last_modified_by = "Phòng Giáo dục và Đào tạo Quận 8"
    props.title = title
    props.comments = ""
    props.revision = 1
    props.created = naive
    props.modified = naive
    props.last_printed = naive


def normalised_zip(data: bytes) -> bytes:
    """Re-pack a .docx deterministically: [Content_Types].xml first, then sorted names, fixed times."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        names = sorted(source.namelist(), key=lambda name: (name != "[Content_Types].xml", name))
        for name in names:
            fixed = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            target.writestr(fixed, source.read(name))
    return out.getvalue()


def build_template() -> bytes:
    """Return the template file: the base styles over python-docx's default document, with an empty body."""
    document = Document()
    apply_base_styles(document)
    body = document.element.body
    for child in list(body):
        if child.tag != qn("w:sectPr"):
            body.remove(child)
    set_core_properties(document, "Báo cáo", TEMPLATE_MOMENT)
    buffer = io.BytesIO()
    document.save(buffer)
    return normalised_zip(buffer.getvalue())


def open_template(path: Path | None = None) -> DocxDocument:
    """Open the office's template (default: reference/templates/bao-cao.docx, else the built-in styles)."""
    chosen = path or TEMPLATE_PATH
    content = chosen.read_bytes() if chosen.is_file() else build_template()
    document = Document(io.BytesIO(content))
    body = document.element.body
    for child in list(body):
        if child.tag != qn("w:sectPr"):
            body.remove(child)
    return document


if __name__ == "__main__":
    TEMPLATE_PATH.parent.mkdir(parents=True, exist_ok=True)
    TEMPLATE_PATH.write_bytes(build_template())
    print(TEMPLATE_PATH)
