"""`gec registry import`: the office's own school list, Vietnamese headers and values, into schools.csv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from schemas.reference import load_reference
from tasks.operator.registry_import import RegistryImportError, diff_registry, read_school_list

ROOT = Path(__file__).resolve().parents[2]
GEC = str(Path(sys.executable).with_name("gec"))

REGISTRY = """\
code,name,level,ownership,ward,emails,active,opened,closed,exempt_cycles
0790001,Trường Mầm non 1/6,mam_non,cong_lap,Phường 5,mn16@truong.q8.test,true,,,2023-H1
79000701,Trường Mầm non Rạng Đông,mam_non,cong_lap,Phường 4,mn701@truong.q8.test,true,,,
MN-09,Trường Mầm non Sẽ Đóng,mam_non,ngoai_cong_lap,Phường 9,mn09@truong.q8.test,true,,,
"""

# The office's list: a title, a blank line, then headers in its own order and spelling.
OFFICE_ROWS = [
    ["DANH SÁCH CƠ SỞ GIÁO DỤC QUẬN 8", None, None, None, None, None, None],
    [None] * 7,
    ["STT", "PHUONG/XA", "ten truong", "Mã trường", "Loại  hình", "Cấp học", "E-mail"],
    [1, "Phường 4", "Trường Mầm non Rạng Đông", 79000701.0, "Công lập", "Mầm non", "mn701@truong.q8.test"],
    [2, "P.5", "Trường Mầm non 1/6", 790001.0, "Công lập", "Mầm non", "mn16@truong.q8.test"],
    [3, "Phường 6", "Trường Tiểu học Lê Lợi", "th-02", "Tư thục", "Tiểu học",
     "th02@truong.q8.test; hieutruong@truong.q8.test"],
    [4, "Phường 7", "Trường THCS Bình Đông", "THCS_03", "Ngoài công lập", "Trung học cơ sở", ""],
]


def _xlsx(path: Path, rows: list[list[object]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


@pytest.fixture()
def ref_dir(tmp_path: Path) -> Path:
    target = tmp_path / "reference"
    shutil.copytree(ROOT / "reference", target)
    (target / "schools.csv").write_text(REGISTRY, encoding="utf-8")
    return target


def _gec(*args: str, ref_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GEC_REFERENCE_DIR": str(ref_dir)}
    return subprocess.run([GEC, *args], capture_output=True, text=True, timeout=120, env=env,
                          cwd=ref_dir.parent)


def test_office_list_is_mapped_to_registry_codes(tmp_path: Path, ref_dir: Path) -> None:
    current = load_reference(ref_dir)
    imported = read_school_list(_xlsx(tmp_path / "ds.xlsx", OFFICE_ROWS), current)
    assert imported.problems == ()
    assert imported.ignored_columns == ("STT",)
    schools = imported.schools
    assert sorted(schools) == ["0790001", "79000701", "TH-02", "THCS_03"]
    assert (schools["TH-02"].level, schools["TH-02"].ownership, schools["TH-02"].ward) == (
        "tieu_hoc", "ngoai_cong_lap", "Phường 6")
    assert schools["TH-02"].emails == ("th02@truong.q8.test", "hieutruong@truong.q8.test")
    assert schools["THCS_03"].level == "thcs" and schools["THCS_03"].emails == ()
    # The number cell lost the leading zero; the registry's code is kept, and so is its exemption.
    assert schools["0790001"].ward == "Phường 5" and schools["0790001"].exempt_cycles == {"2023-H1"}

    diff = diff_registry(current.schools, schools)
    assert [s.code for s in diff.added] == ["TH-02", "THCS_03"]
    assert [s.code for s in diff.removed] == ["MN-09"]
    assert diff.changed == ()


def test_csv_list_and_changed_values(tmp_path: Path, ref_dir: Path) -> None:
    path = tmp_path / "ds.csv"
    path.write_text("Tên trường,Mã trường,Cấp học,Loại hình,Phường/Xã,Email,Trạng thái\n"
                    "Trường Mầm non Rạng Đông mới,79000701,Mầm non,Tư thục,Phường 4,mn701@truong.q8.test,"
                    "Ngừng hoạt động\n", encoding="utf-8")
    current = load_reference(ref_dir)
    imported = read_school_list(path, current)
    diff = diff_registry(current.schools, imported.schools)
    assert diff.changed == (("79000701", {
        "name": ("Trường Mầm non Rạng Đông", "Trường Mầm non Rạng Đông mới"),
        "ownership": ("cong_lap", "ngoai_cong_lap"),
        "active": ("true", "false"),
    }),)


def test_bad_rows_name_the_row_the_office_sees(tmp_path: Path, ref_dir: Path) -> None:
    rows = [*OFFICE_ROWS, [5, "Phường 30", "Trường Đại học", "DH/1", "Công lập", "Đại học", ""]]
    imported = read_school_list(_xlsx(tmp_path / "ds.xlsx", rows), load_reference(ref_dir))
    assert any(p.startswith("row 8: code 'DH/1'") for p in imported.problems), imported.problems
    assert any(p.startswith("row 8: level 'Đại học'") for p in imported.problems)
    assert any(p.startswith("row 8: ward 'Phường 30'") for p in imported.problems)


def test_a_list_without_the_code_column_is_refused(tmp_path: Path) -> None:
    rows = [[cell for index, cell in enumerate(row) if index != 3] for row in OFFICE_ROWS]
    with pytest.raises(RegistryImportError, match="Mã trường"):
        read_school_list(_xlsx(tmp_path / "ds.xlsx", rows))


def test_gec_registry_import_writes_only_with_apply(tmp_path: Path, ref_dir: Path) -> None:
    source = _xlsx(tmp_path / "ds.xlsx", OFFICE_ROWS)
    before = (ref_dir / "schools.csv").read_bytes()

    shown = _gec("registry", "import", str(source), ref_dir=ref_dir)
    assert shown.returncode == 0, shown.stderr
    assert "+ TH-02  Trường Tiểu học Lê Lợi" in shown.stdout
    assert "- MN-09  Trường Mầm non Sẽ Đóng" in shown.stdout
    assert "2 to add, 1 to remove, 0 to change, 2 unchanged" in shown.stdout
    assert (ref_dir / "schools.csv").read_bytes() == before

    applied = _gec("registry", "import", str(source), "--apply", ref_dir=ref_dir)
    assert applied.returncode == 0, applied.stderr
    loaded = load_reference(ref_dir)
    assert sorted(loaded.schools) == ["0790001", "79000701", "TH-02", "THCS_03"]
    assert loaded.schools["0790001"].exempt_cycles == {"2023-H1"}

    again = _gec("registry", "import", str(source), ref_dir=ref_dir)
    assert "0 to add, 0 to remove, 0 to change, 4 unchanged" in again.stdout


def test_gec_registry_import_with_bad_rows_writes_nothing(tmp_path: Path, ref_dir: Path) -> None:
    rows = [*OFFICE_ROWS, [5, "Phường 3", "Trường X", "X1", "Công lập", "Đại học", ""]]
    before = (ref_dir / "schools.csv").read_bytes()
    result = _gec("registry", "import", str(_xlsx(tmp_path / "ds.xlsx", rows)), "--apply", ref_dir=ref_dir)
    assert result.returncode == 2
    assert "ds.xlsx row 8: level 'Đại học'" in result.stderr
    assert (ref_dir / "schools.csv").read_bytes() == before
