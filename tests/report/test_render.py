"""The rendered report: HTML parsed back, workbooks read back, privacy scans, Chromium rendering."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import openpyxl
import pytest
from bs4 import BeautifulSoup
from python_calamine import CalamineWorkbook

from config.settings import PROJECT_ROOT
from tasks.report import render_html as render_html_module
from tasks.report.build import build_report
from tasks.report.render_html import render_html
from tasks.report.render_xlsx import render_restricted_xlsx, render_xlsx, sheet_names
from tests.support import rollup_data as fx

SCREENSHOTS = PROJECT_ROOT / "outputs" / "report-screenshots"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


# Independent Vietnamese formatters: the fixture's figures are chosen away from rounding ties.
def vi_int(number: int) -> str:
    return f"{number:,}".replace(",", ".")


def vi_pct(fraction: float) -> str:
    return f"{fraction * 100:.1f}".replace(".", ",") + "%"


def reach(codes: set[str] | None, groups: tuple[str, ...], field: int = 4, of: int = 2) -> float:
    rows = [r for r in fx.REACH if r[1] in groups and (codes is None or r[0] in codes)]
    return sum(r[field] for r in rows) / sum(r[of] for r in rows)


@pytest.fixture(scope="module")
def report():
    return build_report(fx.make_cycle_data())


@pytest.fixture(scope="module")
def html(report) -> str:
    return render_html(report)


@pytest.fixture(scope="module")
def soup(html) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


@pytest.fixture(scope="module")
def xlsx(report) -> bytes:
    return render_xlsx(report)


@pytest.fixture(scope="module")
def restricted(report) -> bytes:
    return render_restricted_xlsx(report)


def html_rows(soup: BeautifulSoup, table_id: str) -> list[dict[str, object]]:
    """Return a great-tables table's body rows as {column label: <td>}."""
    block = soup.find(id=table_id)
    assert block is not None, f"no table {table_id}"
    table = block.find("table")
    labels = [th.get_text(" ", strip=True) for th in table.select("thead tr.gt_col_headings th")]
    return [dict(zip(labels, tr.find_all("td"), strict=True)) for tr in table.select("tbody tr")]


def html_row(soup: BeautifulSoup, table_id: str, label: str, value: str) -> dict[str, str]:
    matches = [row for row in html_rows(soup, table_id) if row[label].get_text(strip=True) == value]
    assert len(matches) == 1, f"{table_id}: {label}={value!r} matched {len(matches)} rows"
    return {key: cell.get_text(" ", strip=True) for key, cell in matches[0].items()} | {
        f"{key}@verdict": verdict_class(cell) for key, cell in matches[0].items()
    }


def verdict_class(cell) -> str:
    """Return the met/not-met class the page's CSS paints a cell by, or "" for an uncoloured cell."""
    marked = cell.find("span", class_=["gec-met", "gec-unmet"])
    return " ".join(marked["class"]) if marked else ""


def visible_text(soup: BeautifulSoup) -> str:
    copy = BeautifulSoup(str(soup), "html.parser")
    for style in copy.find_all("style"):
        style.decompose()
    return copy.get_text(" ")


def sheet_rows(data: bytes, name: str) -> list[list[object]]:
    book = CalamineWorkbook.from_filelike(io.BytesIO(data))
    return book.get_sheet_by_name(name).to_python()


def xlsx_row(data: bytes, sheet: str, first: str) -> dict[str, object]:
    """Return the row of a report sheet whose first cell is `first`, keyed by the header labels."""
    rows = sheet_rows(data, sheet)
    header = rows[3]
    matches = [row for row in rows[4:] if row[0] == first]
    assert len(matches) == 1, f"{sheet}: {first!r} matched {len(matches)} rows"
    return dict(zip(header, matches[0], strict=True))


# -------------------------------------------------------------------------------- HTML


def test_page_is_vietnamese_with_administrative_header(soup):
    assert soup.html["lang"] == "vi"
    header = soup.find("header")
    bold = [b.get_text(strip=True) for b in header.find_all("strong")]
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in bold
    assert "Độc lập - Tự do - Hạnh phúc" in bold
    assert "PHÒNG GIÁO DỤC VÀ ĐÀO TẠO" in bold
    assert "ỦY BAN NHÂN DÂN QUẬN 8" in header.get_text()
    place = header.find(class_="place")
    assert place.get_text() == "Quận 8, ngày 10 tháng 05 năm 2023"
    assert "font-style: italic" in soup.find("style").get_text().split(".admin .place")[1].split("}")[0]
    assert header.find("h1").get_text() == (
        "BÁO CÁO TỔNG HỢP KẾT QUẢ THỰC HIỆN CÔNG TÁC BÌNH ĐẲNG GIỚI VÀ TRẺ EM"
    )
    assert "6 tháng đầu năm 2023" in header.find(class_="cycle").get_text()
    assert header.find(class_="asof").get_text() == "Số liệu tính đến 09:30 10/05/2023"
    assert "Times New Roman" in soup.find("style").get_text()


def test_seven_sections_follow_the_header(soup):
    headings = [h.get_text() for h in soup.find_all("h2")]
    assert headings == [
        "1. TÌNH HÌNH NỘP BÁO CÁO",
        "2. KẾT QUẢ THỰC HIỆN CÁC CHỈ TIÊU",
        "3. CÁC HOẠT ĐỘNG ĐÃ TỔ CHỨC",
        "4. KẾT QUẢ TỰ ĐÁNH GIÁ",
        "5. TÌNH HÌNH VỤ VIỆC LIÊN QUAN ĐẾN TRẺ EM",
        "6. CHẤT LƯỢNG SỐ LIỆU",
        "7. SO SÁNH VỚI KỲ TRƯỚC",
        "PHỤ LỤC 1",
        "PHỤ LỤC 2",
        "PHỤ LỤC 3",
        "PHỤ LỤC 4",
    ]


def test_long_lists_are_appendices_after_the_signature(soup):
    """The per-school lists leave the body for numbered appendices, each starting a printed page."""
    closing = soup.find(class_="closing")
    appendices = soup.find(class_="appendices")
    assert closing is not None and appendices is not None
    assert appendices in closing.find_all_next(class_="appendices")
    listed = {"bang-1-4": 1, "bang-1-5": 2, "bang-2-5": 3, "bang-4-2": 4}
    for table_id, number in listed.items():
        appendix = soup.find(id=f"phu-luc-{number}")
        assert appendix.find(id=table_id) is not None
        assert all(body.find(id=table_id) is None for body in soup.select('section[id^="muc-"]'))
        pointers = [
            p for p in soup.find_all("p", class_="see-appendix") if f"Phụ lục {number}." in p.get_text()
        ]
        assert len(pointers) == 1 and pointers[0].find_parent("section")["id"].startswith("muc-")
    css = soup.find("style").get_text()
    print_css = css.split("@media print")[1]
    assert ".appendix { break-before: page; }" in print_css
    assert "thead { display: table-header-group; }" in print_css


def test_html_completeness_figures(soup):
    expected = sum(r[5] != "exempt" for r in fx.SCHOOLS)
    on_time = sum(r[5] == "on_time" for r in fx.SCHOOLS)
    row = html_row(soup, "bang-1-1", "Phạm vi", "Toàn quận")
    assert row["Số trường phải nộp"] == vi_int(expected)
    assert row["Đã nộp hợp lệ"] == "3"
    assert row["Tỷ lệ đã nộp"] == "50,0%"
    assert row["Đúng hạn"] == vi_int(on_time)
    assert row["Tỷ lệ đúng hạn"] == vi_pct(on_time / expected) == "33,3%"
    assert (row["Trễ hạn"], row["Chưa nộp"], row["Miễn báo cáo"]) == ("1", "1", "1")
    level = html_row(soup, "bang-1-2", "Cấp học", "Mầm non")
    assert (level["Số trường phải nộp"], level["Tỷ lệ đã nộp"]) == ("3", "66,7%")
    ward = html_row(soup, "bang-1-3", "Phường", "Phường 10")
    assert (ward["Chưa nộp"], ward["Chờ xem xét"]) == ("1", "1")
    missing = html_row(soup, "bang-1-4", "Mã trường", "MN03")
    assert missing["Tình trạng"] == "Chưa nộp"
    late = html_row(soup, "bang-1-5", "Mã trường", "MN02")
    assert late["Thời điểm nhận"] == "14:05 07/05/2023"


def test_html_indicator_figures_and_colours(soup):
    ct1, ct2 = reach(None, fx.CT1.groups), reach(None, fx.CT2.groups)
    row = html_row(soup, "bang-2-1", "Mã", "CT1")
    assert row["Kết quả"] == vi_pct(ct1)
    assert row["Mục tiêu"] == "50,0%"
    assert row["Đánh giá"] == "Chưa đạt"
    assert row["Kết quả@verdict"] == row["Đánh giá@verdict"] == "gec-unmet"
    assert row["Mục tiêu@verdict"] == ""
    ct1_total = sum(r[2] for r in fx.REACH if r[1] in fx.CT1.groups)
    assert row["Tổng số đối tượng"] == vi_int(ct1_total) and "." in row["Tổng số đối tượng"]
    assert row["Tỷ lệ nữ trong số được truyền thông"] == vi_pct(reach(None, fx.CT1.groups, 5, 4))
    assert row["Tỷ lệ nữ trong tổng số đối tượng"] == vi_pct(reach(None, fx.CT1.groups, 3, 2))
    row = html_row(soup, "bang-2-1", "Mã", "CT2")
    assert (row["Kết quả"], row["Đánh giá"]) == (vi_pct(ct2), "Đạt")
    assert row["Kết quả@verdict"] == "gec-met"
    # An indicator not entered yet is named once in the note, not shown as a "Chưa nhập" row.
    assert "TE1" not in {row["Mã"].get_text(strip=True) for row in html_rows(soup, "bang-2-1")}
    assert "chưa đưa vào bảng: TE1" in soup.find(id="bang-2-1").get_text(" ")
    assert html_row(soup, "bang-2-1", "Mã", "BDG1")["Kết quả"] == "72,5%"
    school = html_row(soup, "bang-2-5", "Mã trường", "MN01")
    assert school["CT1: tỷ lệ"] == vi_pct(reach({"MN01"}, fx.CT1.groups))
    assert school["CT1: đánh giá"] == "Đạt"
    assert school["CT1: tỷ lệ@verdict"] == school["CT1: đánh giá@verdict"] == "gec-met"
    ward = html_row(soup, "bang-2-4", "Phường", "Phường 2")
    assert ward["CT2: tỷ lệ"] == vi_pct(reach({"MN02", "TH02"}, fx.CT2.groups)) == "40,0%"


def test_html_activities_checklist_quality(soup):
    month = html_row(soup, "bang-3-3", "Tháng hành động", "Tháng hành động vì trẻ em")
    assert month["Số trường tổ chức"] == "2"
    people = html_row(soup, "bang-3-2", "Đối tượng", "Học sinh, trẻ em")
    assert people["Tổng lượt tham dự"] == vi_int(sum(r[8] for r in fx.ACTIVITIES))
    hotline = [
        row
        for row in html_rows(soup, "bang-4-1")
        if row["Nội dung"].get_text().startswith("Niêm yết, truyền thông Tổng đài 111")
    ]
    assert hotline[0]["Tỷ lệ Có"].get_text() == "66,7%"
    errors = html_rows(soup, "bang-6-2")
    assert errors[0]["Nội dung"].get_text() == "Không phải số nguyên không âm"
    assert errors[0]["Số lần"].get_text() == "2"


def test_html_change_against_previous(soup):
    row = html_row(soup, "bang-7-1", "Nội dung", "Tổng số được truyền thông")
    before, now = sum(r[4] for r in fx.PREVIOUS_REACH), sum(r[4] for r in fx.REACH)
    assert row["Kỳ trước (2022-H2)"] == vi_int(before)
    assert row["Kỳ này (2023-H1)"] == vi_int(now)
    assert row["Thay đổi"] == "+" + vi_int(now - before)


def test_html_has_accessible_svg_charts(soup):
    charts = soup.find_all("svg")
    assert len(charts) >= 2
    titles = [svg.find("title").get_text() for svg in charts]
    assert any("theo phường" in title for title in titles)
    assert any("theo cấp học" in title for title in titles)
    for svg in charts:
        assert svg.find("desc").get_text().strip()
        assert svg["role"] == "img"
    ward_chart = next(svg for svg in charts if "theo phường" in svg.find("title").get_text())
    assert "Mục tiêu 50%" in ward_chart.get_text()
    assert vi_pct(reach({"MN02"}, fx.CT1.groups)) in ward_chart.find("desc").get_text()


def test_html_is_self_contained(soup, html):
    for tag in ("script", "link", "img", "iframe", "object", "embed", "base"):
        assert soup.find(tag) is None, tag
    for element in soup.find_all(True):
        for attribute in ("src", "href", "srcset", "xlink:href", "action"):
            assert not element.has_attr(attribute), (element.name, attribute)
    css = " ".join(style.get_text() for style in soup.find_all("style"))
    assert "@import" not in css and "url(" not in css
    assert "fonts.googleapis" not in html


def test_injection_texts_are_inert_in_html(soup):
    assert soup.find("script") is None
    text = visible_text(soup)
    for injection in fx.INJECTIONS:
        assert injection in text
    late = html_row(soup, "bang-1-5", "Mã trường", "MN02")
    assert late["Tên trường"] == fx.SCRIPT


def test_same_input_gives_identical_bytes():
    first, second = build_report(fx.make_cycle_data()), build_report(fx.make_cycle_data())
    assert render_html(first) == render_html(second)
    assert render_xlsx(first) == render_xlsx(second)
    assert render_restricted_xlsx(first) == render_restricted_xlsx(second)


def test_renders_without_previous_cycle_or_data():
    report = build_report(fx.make_cycle_data(previous=False))
    assert "Không có số liệu kỳ trước" in render_html(report)
    assert render_xlsx(report)[:2] == b"PK"
    empty = fx.make_empty_cycle_data()
    report = build_report(empty)
    assert "Không có dữ liệu." in render_html(report)
    openpyxl.load_workbook(io.BytesIO(render_xlsx(report)))
    openpyxl.load_workbook(io.BytesIO(render_restricted_xlsx(report)))


# -------------------------------------------------------------------------------- privacy


def test_no_per_school_incident_figure_in_public_html(soup):
    text = visible_text(soup)
    tokens = set(re.findall(r"(?<![\d.,])\d+(?![\d.,])", text))
    for figure in fx.DISTINCTIVE_PER_SCHOOL:
        assert str(figure) not in tokens, figure
    incidents = html_rows(soup, "bang-5-1")
    assert {row["Loại vụ việc"].get_text() for row in incidents} >= {"Bạo lực", "Đuối nước"}
    assert all(set(row) == set(incidents[0]) for row in incidents)
    assert "Mã trường" not in incidents[0]
    violence = html_row(soup, "bang-5-1", "Loại vụ việc", "Bạo lực")
    assert violence["Số vụ việc"] == "<5"  # the district total is 3
    drowning = html_row(soup, "bang-5-1", "Loại vụ việc", "Đuối nước")
    assert drowning["Số vụ việc"] == "66"


def test_no_per_school_incident_figure_in_public_xlsx(xlsx):
    book = CalamineWorkbook.from_filelike(io.BytesIO(xlsx))
    for name in book.sheet_names:
        for row in book.get_sheet_by_name(name).to_python():
            for value in row:
                if isinstance(value, int | float):
                    assert value not in fx.DISTINCTIVE_PER_SCHOOL, (name, value)
                elif isinstance(value, str):
                    tokens = re.findall(r"(?<![\d.,])\d+(?![\d.,])", value)
                    assert not set(tokens) & {str(n) for n in fx.DISTINCTIVE_PER_SCHOOL}, (name, value)
    violence = xlsx_row(xlsx, "5.1 Vụ việc toàn quận", "Bạo lực")
    assert violence["Số vụ việc"] == "<5"
    assert xlsx_row(xlsx, "5.1 Vụ việc toàn quận", "Đuối nước")["Số vụ việc"] == 66


def test_restricted_xlsx_holds_per_school_counts(restricted):
    rows = sheet_rows(restricted, "Vụ việc theo trường")
    assert "HẠN CHẾ" in rows[2][0]
    header = rows[3]
    mn02 = [dict(zip(header, row, strict=True)) for row in rows[4:] if row[0] == "MN02"]
    assert mn02[0]["Số vụ việc"] == 61 and mn02[0]["Số trẻ bị ảnh hưởng"] == 67
    totals = sheet_rows(restricted, "Tổng toàn quận")
    assert next(row for row in totals if row[0] == "Bạo lực")[1] == 3


# -------------------------------------------------------------------------------- XLSX


def test_xlsx_sheets(xlsx, report):
    book = CalamineWorkbook.from_filelike(io.BytesIO(xlsx))
    assert book.sheet_names == list(sheet_names(report))
    assert all(len(name) <= 31 for name in book.sheet_names)
    for section in range(1, 8):
        assert any(name.startswith(f"{section}.") for name in book.sheet_names)


def test_xlsx_figures(xlsx):
    expected = sum(r[5] != "exempt" for r in fx.SCHOOLS)
    row = xlsx_row(xlsx, "1.1 Tổng hợp nộp báo cáo", "Toàn quận")
    assert row["Số trường phải nộp"] == expected
    assert row["Tỷ lệ đúng hạn"] == pytest.approx(2 / expected)
    row = xlsx_row(xlsx, "2.1 Chỉ tiêu toàn quận", "CT1")
    assert row["Kết quả"] == pytest.approx(reach(None, fx.CT1.groups))
    assert row["Đánh giá"] == "Chưa đạt"
    assert row["Tỷ lệ nữ trong số được truyền thông"] == pytest.approx(reach(None, fx.CT1.groups, 5, 4))
    cells = [str(cell) for row in sheet_rows(xlsx, "2.1 Chỉ tiêu toàn quận") for cell in row if cell]
    assert "TE1" not in cells and any("chưa đưa vào bảng: TE1" in cell for cell in cells)
    school = xlsx_row(xlsx, "2.5 Chỉ tiêu theo trường", "TH01")
    assert school["CT2: tỷ lệ"] == pytest.approx(reach({"TH01"}, fx.CT2.groups))
    late = xlsx_row(xlsx, "1.5 Trường nộp trễ", "MN02")
    assert late["Thời điểm nhận"].strftime("%H:%M %d/%m/%Y") == "14:05 07/05/2023"


def test_xlsx_layout_formats_and_colouring(xlsx):
    book = openpyxl.load_workbook(io.BytesIO(xlsx))
    sheet = book["2.1 Chỉ tiêu toàn quận"]
    assert sheet.freeze_panes == "A5"
    assert sheet.auto_filter.ref and sheet.auto_filter.ref.startswith("A4:")
    header = {cell.value: cell.column_letter for cell in sheet[4]}
    assert sheet[f"{header['Kết quả']}5"].number_format == "0.0%"
    assert sheet[f"{header['Tổng số đối tượng']}5"].number_format == "#,##0"
    assert sheet.column_dimensions[header["Chỉ tiêu"]].width > 40
    rules = [rule for cf in sheet.conditional_formatting for rule in cf.rules]
    formulas = " ".join(f for rule in rules for f in rule.formula)
    assert '"Đạt"' in formulas and '"Chưa đạt"' in formulas
    ranges = " ".join(str(cf.sqref) for cf in sheet.conditional_formatting)
    assert header["Kết quả"] + "5" in ranges
    ward = book["2.4 Chỉ tiêu theo phường"]
    assert ward.freeze_panes == "A5" and ward.auto_filter.ref


def test_xlsx_native_charts(xlsx):
    with zipfile.ZipFile(io.BytesIO(xlsx)) as archive:
        charts = sorted(name for name in archive.namelist() if name.startswith("xl/charts/chart"))
        assert len(charts) >= 2
        xml = " ".join(archive.read(name).decode() for name in charts)
    assert "theo phường" in xml and "theo cấp học" in xml
    assert "<c:barChart>" in xml and "<c:lineChart>" in xml


def test_xlsx_properties_use_as_of(xlsx):
    with zipfile.ZipFile(io.BytesIO(xlsx)) as archive:
        core = archive.read("docProps/core.xml").decode()
    assert "2023-05-10T02:30:00Z" in core  # 09:30 in Ho Chi Minh City


def test_injection_texts_stay_text_in_xlsx(xlsx, restricted):
    for data in (xlsx, restricted):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for name in archive.namelist():
                if name.startswith("xl/worksheets/"):
                    assert "<f>" not in archive.read(name).decode(), name
        book = openpyxl.load_workbook(io.BytesIO(data))
        found = set()
        for sheet in book.worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    if isinstance(cell.value, str) and cell.value[:1] in ("=", "+", "-", "@"):
                        assert cell.data_type == "s", (sheet.title, cell.coordinate, cell.value)
                        found.add(cell.value)
        if data is xlsx:
            assert {fx.HYPERLINK, fx.CMD} <= found
    names = [row[1] for row in sheet_rows(xlsx, "1.4 Trường chưa nộp hợp lệ")[4:7]]
    assert set(names) == {fx.HYPERLINK, fx.CMD, "Trường THCS Lê Lai"}


# -------------------------------------------------------------------------------- Chromium


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("Chromium is not installed: run `apt-get install -y chromium` (CI installs it).")


def run_chromium(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    profile.mkdir()
    return subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def console_errors(stderr: str) -> list[str]:
    """Return Chromium's console and uncaught-error lines (the page has no scripts, so any is wrong)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_console_check_catches_page_errors(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html lang="vi"><body><script>missing();</script></body></html>')
    result = run_chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert console_errors(result.stderr), result.stderr[-2000:]


def test_report_renders_in_headless_chromium(tmp_path, html):
    page = tmp_path / "tong-hop.html"
    page.write_text(html, encoding="utf-8")
    png = tmp_path / "report.png"
    shot = run_chromium(tmp_path, page.as_uri(), f"--screenshot={png}", "--window-size=1280,2000")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert console_errors(shot.stderr) == []
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000  # a blank page compresses to a few kB
    # Kept where a reviewer looks (outputs/ is git-ignored), like the deployment test's UI shots.
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(png, SCREENSHOTS / "tong-hop.png")
    dom = run_chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_errors(dom.stderr) == []
    loaded = BeautifulSoup(dom.stdout, "html.parser")
    assert loaded.find("h1").get_text().startswith("BÁO CÁO TỔNG HỢP")
    assert loaded.find(id="bang-2-1") is not None
    assert len(loaded.find_all("svg")) >= 2


def test_verdicts_paint_their_cells_in_chromium(tmp_path, html, soup):
    """What a reader sees: the browser paints not-met cells red and met cells green, others white."""
    # The report has no scripts; this test-only copy adds one that reads the computed colours back.
    probe = """<script>
document.body.dataset.painted = JSON.stringify([...document.querySelectorAll('#bang-2-1 tbody tr')]
  .map(tr => [...tr.querySelectorAll('td')].map(td => getComputedStyle(td).backgroundColor)));
</script>"""
    page = tmp_path / "probe.html"
    page.write_text(html.replace("</body>", probe + "</body>"), encoding="utf-8")
    dom = run_chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    painted = json.loads(BeautifulSoup(dom.stdout, "html.parser").body["data-painted"])
    rows = html_rows(soup, "bang-2-1")
    by_code = {row["Mã"].get_text(strip=True): dict(zip(row, colours, strict=True))
               for row, colours in zip(rows, painted, strict=True)}
    red, green = "rgb(249, 214, 213)", "rgb(215, 240, 220)"
    assert by_code["CT1"]["Kết quả"] == by_code["CT1"]["Đánh giá"] == red
    assert by_code["CT2"]["Kết quả"] == by_code["CT2"]["Đánh giá"] == green
    assert by_code["CT1"]["Mục tiêu"] not in (red, green)
    assert "TE1" not in by_code  # no value entered: named in the note, not a row


# -------------------------------------------------------------------------------- size at city scale


def test_long_lists_render_as_plain_rows(soup):
    """Appendix lists carry no per-cell classes or styles: a 5,000-row list stays small."""
    block = soup.find(id="bang-2-5")
    table = block.find("table")
    assert "list" in table["class"]
    cells = table.select("tbody td")
    assert cells and all(not cell.attrs for cell in cells)
    # Verdicts still colour their cells (the class sits on the text, as in the great-tables tables).
    assert table.select("tbody td > span.gec-met, tbody td > span.gec-unmet")


def test_lists_too_long_for_the_page_point_to_the_workbook(monkeypatch, report):
    """Past HTML_LIST_ROWS a list is left to the workbook; its section and appendix stay, with a pointer."""
    monkeypatch.setattr(render_html_module, "HTML_LIST_ROWS", 2)
    page = BeautifulSoup(render_html(report), "html.parser")
    headings = [h.get_text() for h in page.find_all("h2")]
    assert len(headings) == 11 and headings[-4:] == [f"PHỤ LỤC {n}" for n in range(1, 5)]
    block = page.find(id="bang-2-5")
    assert block.find("table") is None
    rows = len(report.table("bang-2-5").frame)
    assert rows > 2
    assert f"Danh sách có {rows} dòng" in block.get_text()
    assert "tong-hop.xlsx" in block.get_text() and "2.5 Chỉ tiêu theo trường" in block.get_text()
    assert len(sheet_rows(render_xlsx(report), "2.5 Chỉ tiêu theo trường")) >= rows + 4
