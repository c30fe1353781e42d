"""LibreOffice headless and poppler for tests that print a workbook: convert to PDF, read pages back."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

# A4 in PostScript points, as pdfinfo reports page sizes.
A4_SHORT, A4_LONG = 595.3, 841.9


def require_tools(*tools: str) -> None:
    """Skip when a tool is missing on a developer machine; fail in CI (env CI set), which installs them."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if not missing:
        return
    reason = f"{', '.join(missing)} not installed (run scripts/install-system-deps.sh as root)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def to_pdf(workbook: Path, out_dir: Path) -> Path:
    """Convert a workbook to PDF with LibreOffice headless, in a private profile."""
    require_tools("soffice")
    profile = out_dir / "lo-profile"
    subprocess.run(
        ["soffice", "--headless", "--norestore", f"-env:UserInstallation={profile.as_uri()}",
         "--convert-to", "pdf", "--outdir", str(out_dir), str(workbook)],
        check=True, capture_output=True, timeout=180,
    )
    pdf = out_dir / (workbook.stem + ".pdf")
    assert pdf.exists(), f"LibreOffice wrote no PDF for {workbook.name}"
    return pdf


@dataclass(frozen=True)
class Page:
    number: int
    width: float
    height: float
    text: str


def pages(pdf: Path) -> list[Page]:
    """Return every page's size (points) and text, read with poppler's pdfinfo and pdftotext."""
    require_tools("pdfinfo", "pdftotext")
    info = subprocess.run(["pdfinfo", "-f", "1", "-l", "9999", str(pdf)],
                          check=True, capture_output=True, text=True).stdout
    sizes = re.findall(r"Page\s+(\d+) size:\s+([\d.]+) x ([\d.]+) pts", info)
    found = []
    for number, width, height in sizes:
        text = subprocess.run(["pdftotext", "-f", number, "-l", number, "-layout", str(pdf), "-"],
                              check=True, capture_output=True, text=True).stdout
        found.append(Page(int(number), float(width), float(height), text))
    return found
