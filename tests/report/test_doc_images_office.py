"""Pictures for docs/huong-dan-phong.md, made from the real outputs (only with GEC_WRITE_DOC_IMAGES=1).

The report page is rendered in headless Chromium, the indicators template printed by LibreOffice and
cut to a PNG by pdftoppm, as tests/template/test_template.py does for the schools' guide.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from config.settings import PROJECT_ROOT
from schemas.reference import load_reference
from tasks.operator.indicators import build_indicator_template
from tasks.report.build import build_report
from tasks.report.render_html import render_html
from tests.report.test_render import console_errors, run_chromium
from tests.support import rollup_data as fx
from tests.support.office import pages, require_tools, to_pdf

DOC_IMAGES = PROJECT_ROOT / "docs" / "img"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _asked_for() -> None:
    if os.environ.get("GEC_WRITE_DOC_IMAGES") != "1":
        pytest.skip("set GEC_WRITE_DOC_IMAGES=1 to regenerate docs/img")


def _shoot(tmp_path: Path, html: str, stem: str, height: int) -> Path:
    page = tmp_path / f"{stem}.html"
    page.write_text(html, encoding="utf-8")
    png = DOC_IMAGES / f"{stem}.png"
    shot = run_chromium(tmp_path, page.as_uri(), f"--screenshot={png}", f"--window-size=1100,{height}",
                        "--hide-scrollbars")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert console_errors(shot.stderr) == []
    assert png.read_bytes()[:8] == PNG and png.stat().st_size > 20_000
    return png


def test_write_report_images(tmp_path: Path) -> None:
    """The top of the report (header, section 1) and section 2 with the indicators table and its note."""
    DOC_IMAGES.mkdir(parents=True, exist_ok=True)
    html = render_html(build_report(fx.make_cycle_data()))
    _shoot(tmp_path, html, "phong-bao-cao-dau-trang", 1100)
    # Section 2 alone: the page keeps its styles, the other sections are dropped.
    soup = BeautifulSoup(html, "html.parser")
    indicators = soup.find(id="bang-2-1").find_parent("section")
    assert indicators is not None
    keep = {id(indicators), *(id(parent) for parent in indicators.parents)}
    for section in soup.find_all("section"):
        if id(section) not in keep and indicators not in section.parents:
            section.decompose()
    header = soup.find("header")
    if header is not None:
        header.decompose()
    _shoot(tmp_path, str(soup), "phong-bao-cao-chi-tieu", 900)


def test_write_indicator_template_image(tmp_path: Path) -> None:
    """The indicators template as printed: the specialist fills the yellow column."""
    require_tools("soffice", "pdftoppm")
    reference = load_reference(PROJECT_ROOT / "reference")
    cycle = reference.calendar.get("2023-H1")
    assert cycle is not None
    workbook = tmp_path / "chi-tieu-phong-nhap.xlsx"
    workbook.write_bytes(build_indicator_template(reference, cycle))
    pdf = to_pdf(workbook, tmp_path)
    first = pages(pdf)[0]
    assert "Giá trị kỳ này" in first.text and "BDG1" in first.text
    resolution = 90
    width, height = (round(side / 72 * resolution) for side in (first.width, first.height))
    stem = DOC_IMAGES / "phong-mau-chi-tieu"
    subprocess.run(["pdftoppm", "-png", "-r", str(resolution), "-singlefile", "-f", "1", "-l", "1",
                    "-x", "0", "-y", "0", "-W", str(width), "-H", str(round(height * 0.6)), str(pdf),
                    str(stem)], check=True, timeout=120)
    assert (DOC_IMAGES / "phong-mau-chi-tieu.png").stat().st_size > 10_000
