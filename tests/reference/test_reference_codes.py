"""School codes as offices really write them, and a registry of only the SPEC's seven columns."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from schemas.reference import REQUIRED_SCHOOL_COLUMNS, load_reference

ROOT = Path(__file__).resolve().parents[2]

SEVEN_COLUMNS = """\
code,name,level,ownership,ward,emails,active
79000701,Trường Mầm non Rạng Đông,mam_non,cong_lap,Phường 4,mn701@truong.q8.test,true
0790001,Trường Mầm non 1/6,mam_non,cong_lap,Phường 5,mn16@truong.q8.test,true
MN-01,"Trường Tiểu học \"\"Lê Lợi\"\"",tieu_hoc,cong_lap,Phường 6,th01@truong.q8.test,true
th_02,Trường THCS Bình Đông,thcs,ngoai_cong_lap,Phường 7,th02@truong.q8.test,true
Q8.LC.3,Trường Liên cấp Quận 8,lien_cap,ngoai_cong_lap,Phường 8,lc3@truong.q8.test,false
"""


def _reference_dir(tmp_path: Path, registry: str) -> Path:
    target = tmp_path / "reference"
    shutil.copytree(ROOT / "reference", target)
    (target / "schools.csv").write_text(registry, encoding="utf-8")
    return target


def test_seven_column_registry_loads_with_defaults(tmp_path: Path) -> None:
    reference = load_reference(_reference_dir(tmp_path, SEVEN_COLUMNS))
    assert sorted(reference.schools) == ["0790001", "79000701", "MN-01", "Q8.LC.3", "TH_02"]
    school = reference.schools["0790001"]
    assert (school.opened, school.closed, school.exempt_cycles) == (None, None, frozenset())
    assert reference.schools["MN-01"].name == 'Trường Tiểu học "Lê Lợi"'
    assert [s.code for s in reference.expected_schools("2023-H1")] == ["0790001", "79000701", "MN-01",
                                                                     "TH_02"]
    assert reference.warnings == ()


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        (79000701.0, "79000701"),  # a number cell, as openpyxl reads it
        (79000701, "79000701"),
        ("79000701.0", "79000701"),  # a number cell turned to text
        (" 7900 0701 ", "79000701"),
        ("0790001", "0790001"),
        (790001.0, "0790001"),  # the number cell lost the leading zero; one code fits
        (790001, "0790001"),
        (" mn-01\u200b", "MN-01"),
        ("Th_02", "TH_02"),
        ("q8.lc.3", "Q8.LC.3"),
    ],
)
def test_codes_match_case_space_and_number_insensitively(tmp_path: Path, typed: object, code: str) -> None:
    reference = load_reference(_reference_dir(tmp_path, SEVEN_COLUMNS))
    found = reference.school(typed)
    assert found is not None and found.code == code


@pytest.mark.parametrize("typed", ["0079000701", "MN01", "MN-1", 7900070.0, 79000701.5, True, "", None])
def test_codes_that_are_not_in_the_registry(tmp_path: Path, typed: object) -> None:
    reference = load_reference(_reference_dir(tmp_path, SEVEN_COLUMNS))
    assert reference.school(typed) is None


def test_a_number_matching_two_codes_matches_none(tmp_path: Path) -> None:
    registry = SEVEN_COLUMNS + "00790001,Trường Mầm non Hai Số Không,mam_non,cong_lap,Phường 9,,true\n"
    reference = load_reference(_reference_dir(tmp_path, registry))
    assert reference.school(790001.0) is None  # 0790001 or 00790001: never guess
    assert reference.school("00790001").code == "00790001"


def test_unknown_columns_are_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = SEVEN_COLUMNS.splitlines()
    lines[0] += ",Điện thoại hiệu trưởng,opened"
    lines[1:] = [line + ",0909 123 456," for line in lines[1:]]
    lines[2] += "2023-08-15"
    with caplog.at_level(logging.WARNING, logger="schemas.reference"):
        reference = load_reference(_reference_dir(tmp_path, "\n".join(lines) + "\n"))
    assert len(reference.warnings) == 1
    assert "ignored unknown column(s) 'điện thoại hiệu trưởng'" in reference.warnings[0]
    assert "schools.csv line 1" in reference.warnings[0]
    assert reference.warnings[0] in caplog.text
    assert str(reference.schools["0790001"].opened) == "2023-08-15"


def test_missing_required_column_is_still_an_error(tmp_path: Path) -> None:
    from schemas.reference import ReferenceDataError

    header = ",".join(column for column in REQUIRED_SCHOOL_COLUMNS if column != "emails")
    with pytest.raises(ReferenceDataError, match="missing column\\(s\\) emails"):
        load_reference(_reference_dir(tmp_path, header + "\n"))


def test_gec_init_shows_the_warning(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    registry = SEVEN_COLUMNS.replace("active\n", "active,ghi_chu\n", 1)
    registry = "\n".join(line + ("" if i == 0 else ",") for i, line in enumerate(registry.splitlines()))
    ref = _reference_dir(tmp_path, registry + "\n")
    env = {**os.environ, "GEC_REFERENCE_DIR": str(ref), "GEC_DATABASE_URL": f"sqlite:///{tmp_path}/gec.db"}
    gec = str(Path(sys.executable).with_name("gec"))
    done = subprocess.run([gec, "init"], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ignored unknown column(s) 'ghi_chu'" in done.stdout + done.stderr
    assert "(5 schools," in " ".join(done.stdout.split())  # rich wraps long lines
