"""`gec indicators template/import`: the office fills its own indicators in Excel, checked on import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from schemas.reference import load_reference
from tasks.operator.indicators import SHEET, read_indicator_values

ROOT = Path(__file__).resolve().parents[2]
GEC = str(Path(sys.executable).with_name("gec"))
MAX_BYTES = 20 * 1024 * 1024


@pytest.fixture()
def ref_dir(tmp_path: Path) -> Path:
    target = tmp_path / "reference"
    shutil.copytree(ROOT / "reference", target)
    return target


def _gec(*args: str, ref_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GEC_REFERENCE_DIR": str(ref_dir)}
    return subprocess.run([GEC, *args], capture_output=True, text=True, timeout=120, env=env,
                          cwd=ref_dir.parent)


def _fill(path: Path, values: dict[str, object], extra: list[list[object]] = ()) -> Path:
    """Fill the template the way the specialist does in Excel: type into the value column."""
    book = openpyxl.load_workbook(path)
    sheet = book[SHEET]
    headers = [cell.value for cell in sheet[4]]
    value_column = headers.index("Giá trị kỳ này") + 1
    for row in sheet.iter_rows(min_row=5):
        if row[0].value in values:
            sheet.cell(row[0].row, value_column, values[row[0].value])
    for line in extra:
        sheet.append(line)
    book.save(path)
    return path


def test_template_lists_manual_indicators_with_validated_value_column(tmp_path: Path, ref_dir: Path) -> None:
    out = tmp_path / "chi-tieu.xlsx"
    done = _gec("indicators", "template", "--cycle", "2023-H1", "--out", str(out), ref_dir=ref_dir)
    assert done.returncode == 0, done.stderr
    sheet = openpyxl.load_workbook(out)[SHEET]
    assert [cell.value for cell in sheet[4]] == [
        "Mã", "Chỉ tiêu", "Chương trình", "Đơn vị", "Mục tiêu", "Giá trị kỳ này", "Ghi chú"]
    assert sheet["B2"].value == "2023-H1"
    codes = [row[0].value for row in sheet.iter_rows(min_row=5) if row[0].value]
    manual = [ind.code for ind in load_reference(ref_dir).indicators if ind.manual]
    assert codes == manual and "CT1" not in codes and len(codes) == 17
    validated = {str(rule.sqref) for rule in sheet.data_validations.dataValidation}
    assert {f"F{row}" for row in range(5, 5 + len(codes))} <= validated
    assert all(rule.type == "decimal" for rule in sheet.data_validations.dataValidation)


def test_import_writes_per_cycle_values_only_with_apply(tmp_path: Path, ref_dir: Path) -> None:
    out = tmp_path / "chi-tieu.xlsx"
    _gec("indicators", "template", "--cycle", "2023-H1", "--out", str(out), ref_dir=ref_dir)
    _fill(out, {"BDG1": 12, "TE1": "72,5"})
    before = (ref_dir / "indicators.yaml").read_bytes()

    shown = _gec("indicators", "import", str(out), ref_dir=ref_dir)
    assert shown.returncode == 0, shown.stderr
    assert "BDG1: (trống) → 12" in shown.stdout and "--apply" in shown.stdout
    assert (ref_dir / "indicators.yaml").read_bytes() == before

    applied = _gec("indicators", "import", str(out), "--apply", ref_dir=ref_dir)
    assert applied.returncode == 0, applied.stderr
    catalog = {ind.code: ind for ind in load_reference(ref_dir).indicators}
    assert catalog["BDG1"].value_for("2023-H1") == 12
    assert catalog["TE1"].value_for("2023-H1") == 72.5
    assert catalog["BDG1"].value_for("2023-H2") is None  # entering H1 never lends a figure to H2
    assert catalog["BDG2"].value_for("2023-H1") is None

    # A template written now carries the stored figure, and H2 values sit beside H1's.
    h2 = tmp_path / "h2.xlsx"
    _gec("indicators", "template", "--cycle", "2023-H2", "--out", str(h2), ref_dir=ref_dir)
    _fill(h2, {"BDG1": 15})
    assert _gec("indicators", "import", str(h2), "--apply", ref_dir=ref_dir).returncode == 0
    again = tmp_path / "again.xlsx"
    _gec("indicators", "template", "--cycle", "2023-H1", "--out", str(again), ref_dir=ref_dir)
    sheet = openpyxl.load_workbook(again)[SHEET]
    assert {row[0].value: row[5].value for row in sheet.iter_rows(min_row=5)}["BDG1"] == 12
    catalog = {ind.code: ind for ind in load_reference(ref_dir).indicators}
    assert catalog["BDG1"].values == {"2023-H1": 12, "2023-H2": 15}


def test_bad_rows_are_listed_one_line_each_and_nothing_is_written(tmp_path: Path, ref_dir: Path) -> None:
    out = tmp_path / "chi-tieu.xlsx"
    _gec("indicators", "template", "--cycle", "2023-H1", "--out", str(out), ref_dir=ref_dir)
    unit_percent = next(ind.code for ind in load_reference(ref_dir).indicators if ind.manual)
    # Make one manual indicator a percentage so its range is checked.
    text = (ref_dir / "indicators.yaml").read_text(encoding="utf-8")
    text = text.replace(f"  - code: {unit_percent}\n", f"  - code: {unit_percent}\n    unit: \"%\"\n", 1)
    text = text.replace("    unit: null\n", "", 1)
    (ref_dir / "indicators.yaml").write_text(text, encoding="utf-8")
    assert load_reference(ref_dir).indicators[2].unit == "%"
    before = (ref_dir / "indicators.yaml").read_bytes()
    _fill(out, {unit_percent: 130, "BDG2": "mười hai", "BDG3": -4, "BDG4": 7},
          extra=[["XYZ9", None, None, None, None, 5], ["CT1", None, None, None, None, 60]])

    done = _gec("indicators", "import", str(out), "--apply", ref_dir=ref_dir)

    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.startswith("Dòng")]
    assert len(lines) == 5, done.stderr
    assert any(f"({unit_percent})" in line and "vượt quá 100%" in line for line in lines)
    assert any("(BDG2)" in line and '"mười hai" không phải là số' in line for line in lines)
    assert any("(BDG3)" in line and "âm" in line for line in lines)
    assert any('"XYZ9" không có trong danh mục' in line and "not in the catalog" in line for line in lines)
    assert any("(CT1)" in line and "computed" in line for line in lines)
    assert "nothing written" in done.stderr
    assert (ref_dir / "indicators.yaml").read_bytes() == before


def test_import_reads_through_the_bounded_reader(tmp_path: Path, ref_dir: Path) -> None:
    bogus = tmp_path / "chi-tieu.xlsx"
    bogus.write_bytes(b"PK\x03\x04 not really a workbook")
    done = _gec("indicators", "import", str(bogus), ref_dir=ref_dir)
    assert done.returncode == 2 and "không đọc được" in done.stderr
    big = tmp_path / "big.xlsx"
    _gec("indicators", "template", "--cycle", "2023-H1", "--out", str(big), ref_dir=ref_dir)
    from tasks.operator.indicators import IndicatorImportError

    with pytest.raises(IndicatorImportError, match="too_large"):
        read_indicator_values(big.read_bytes(), load_reference(ref_dir), max_bytes=100)
