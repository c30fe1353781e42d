"""Acceptance (issue 12): a registry of only the SPEC's seven columns, with all-digit and hyphenated
codes, goes through `gec init`, `collect`, `status` and `report` unchanged."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import openpyxl

ROOT = Path(__file__).resolve().parents[2]
GEC = str(Path(sys.executable).with_name("gec"))

REGISTRY = """\
code,name,level,ownership,ward,emails,active
79000701,Trường Mầm non Rạng Đông,mam_non,cong_lap,Phường 4,mn701@truong.q8.test,true
0790001,Trường Mầm non 1/6,mam_non,cong_lap,Phường 5,mn16@truong.q8.test,true
0790002,Trường Mầm non Sao Mai,mam_non,ngoai_cong_lap,Phường 1,mn02@truong.q8.test,true
MN-01,Trường Mầm non Họa Mi,mam_non,ngoai_cong_lap,Phường 9,mn01@truong.q8.test,true
MN-02,Trường Mầm non Vàng Anh,mam_non,cong_lap,Phường 10,mn02b@truong.q8.test,true
TH_02,Trường Tiểu học Lê Lợi,tieu_hoc,cong_lap,Phường 6,th02@truong.q8.test,true
TH.03,Trường Tiểu học Bình Đông,tieu_hoc,cong_lap,Phường 11,th03@truong.q8.test,true
THCS-9,Trường THCS Phan Đăng Lưu,thcs,cong_lap,Phường 7,thcs9@truong.q8.test,true
LC-1,Trường Liên cấp Quận 8,lien_cap,ngoai_cong_lap,Phường 8,lc1@truong.q8.test,true
K-1,Trung tâm Giáo dục Quận 8,khac,cong_lap,Phường 12,k1@truong.q8.test,false
"""


def _code_as_number(path: Path, code: str) -> None:
    """Rewrite a workbook's `Mã trường` as a number cell, as a clerk's Excel does to digit codes."""
    stat = path.stat()
    book = openpyxl.load_workbook(path)
    sheet = book["Thông tin chung"]
    cells = [cell for row in sheet.iter_rows() for cell in row if cell.value == code]
    assert cells, f"{code} not found in {path.name}"
    for cell in cells:
        cell.value = int(code)
    book.save(path)
    os.utime(path, (stat.st_atime, stat.st_mtime))  # the received time stays


def test_seven_column_registry_through_init_collect_status_report(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    shutil.copytree(ROOT / "reference", reference)
    (reference / "schools.csv").write_text(REGISTRY, encoding="utf-8")
    env = {
        **os.environ,
        "GEC_REFERENCE_DIR": str(reference),
        "GEC_DATABASE_URL": f"sqlite:///{tmp_path / 'gec.sqlite3'}",
        "GEC_ARCHIVE_DIR": str(tmp_path / "archive"),
        "GEC_OUTPUT_DIR": str(tmp_path / "outputs"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
    }

    def gec(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([GEC, *args], capture_output=True, text=True, env=env, timeout=600,
                              cwd=tmp_path)
        assert done.returncode == 0, f"gec {' '.join(args)}:\n{done.stderr[-3000:]}"
        return done

    assert "(10 schools, 2 listed cycles)" in " ".join(gec("init").stdout.split())  # rich wraps lines

    inbox = tmp_path / "inbox"
    gec("demo-data", "--cycle", "2023-H1", "--out", str(inbox), "--seed", "3")
    truth = json.loads((tmp_path / "inbox.truth.json").read_text(encoding="utf-8"))
    assert not (inbox / "truth.json").exists()
    # An accepted file of an all-digit code, its `Mã trường` turned into a number (losing a leading zero).
    numeric = next(item for item in truth["files"] if (item["school_code"] or "").isdigit()
                   and item["file"].endswith(".xlsx") and item["expect_state"] == "accepted")
    _code_as_number(inbox / numeric["file"], numeric["school_code"])

    gec("collect", "--source", "folder", "--inbox", str(inbox))
    assert not any(inbox.iterdir())

    result = json.loads(gec("status", "--cycle", "2023-H1", "--json").stdout)
    schools = {entry["code"]: entry["state"] for entry in result["schools"]}
    assert set(schools) == {"79000701", "0790001", "0790002", "MN-01", "MN-02", "TH_02", "TH.03", "THCS-9",
                            "LC-1"}  # K-1 is inactive
    assert schools == {entry["code"]: entry["expect_state"] for entry in truth["schools"]}
    submissions = {entry["file"]: entry for entry in result["submissions"]}
    assert submissions[numeric["file"]]["school_code"] == numeric["school_code"]
    assert submissions[numeric["file"]]["state"] == numeric["expect_state"]

    paths = gec("report", "--cycle", "2023-H1", "--as-of", "2023-05-06T08:00:00+07:00").stdout.split()
    html = next(Path(path) for path in paths if path.endswith(".html"))
    page = html.read_text(encoding="utf-8")
    for name in ("Trường Mầm non 1/6", "Trường Tiểu học Lê Lợi", "Trường THCS Phan Đăng Lưu"):
        assert name in page
    assert any(path.endswith(".xlsx") for path in paths)
