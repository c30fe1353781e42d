"""Files only the service can read (issue 11 #6): another OS user cannot read the database or archive.

The drill runs the real `gec` in a subprocess started with the common umask 022, then tries to read
what it wrote as the `nobody` user. The folder above it is world-traversable on purpose, so only the
modes `gec` chose stand between `nobody` and the files (a control file proves `nobody` gets that far).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.private_files import FILE_MODE, FOLDER_MODE, private_file, private_folder, tighten
from config.settings import PROJECT_ROOT
from demo.data import school_values
from schemas.reference import load_reference
from tasks.template.build import build_template

GEC = str(Path(sys.executable).with_name("gec"))
RUNUSER = shutil.which("runuser")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _nobody_reads(path: Path) -> bool:
    """Return whether the `nobody` user can read the file."""
    assert RUNUSER is not None
    done = subprocess.run([RUNUSER, "-u", "nobody", "--", "cat", str(path)], capture_output=True, timeout=30)
    return done.returncode == 0


@pytest.fixture
def open_base() -> Iterator[Path]:
    """Yield a folder every user may traverse (mkdtemp makes 0700, which would hide everything)."""
    base = Path(tempfile.mkdtemp(prefix="gec-private-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_private_helpers_create_and_tighten(tmp_path: Path) -> None:
    folder = private_folder(tmp_path / "a" / "b")
    assert _mode(folder) == FOLDER_MODE == 0o700
    file = private_file(folder / "x.bin")
    assert _mode(file) == FILE_MODE == 0o600
    file.write_bytes(b"kept")
    private_file(file)  # never truncates what is there
    assert file.read_bytes() == b"kept"

    loose = tmp_path / "loose"
    (loose / "sub").mkdir(parents=True)
    (loose / "sub" / "f.txt").write_text("x")
    for path in (loose, loose / "sub"):
        path.chmod(0o755)
    (loose / "sub" / "f.txt").chmod(0o644)
    (loose / "link").symlink_to("/etc/hostname")
    changed = tighten([loose, tmp_path / "absent"])
    assert set(changed) == {loose, loose / "sub", loose / "sub" / "f.txt"}
    assert _mode(loose) == _mode(loose / "sub") == 0o700 and _mode(loose / "sub" / "f.txt") == 0o600
    assert _mode(Path("/etc/hostname")) != 0o600  # a link is not followed out of the tree


@pytest.mark.skipif(os.geteuid() != 0 or RUNUSER is None, reason="needs root and runuser to act as nobody")
def test_gec_init_and_collect_leave_nothing_another_user_can_read(open_base: Path) -> None:
    data = open_base / "data"
    inbox, archive, outputs = data / "inbox", data / "archive", open_base / "outputs"
    database = data / "gec.sqlite3"
    env = {
        **os.environ,
        "GEC_DATABASE_URL": f"sqlite:///{database}",
        "GEC_DATA_DIR": str(data),
        "GEC_INBOX_DIR": str(inbox),
        "GEC_ARCHIVE_DIR": str(archive),
        "GEC_OUTPUT_DIR": str(outputs),
        "PREFECT_HOME": str(open_base / "prefect"),
    }
    # What an older install left world-readable: an archived file and a restricted report.
    old_archive = archive / "2022-H2" / "accepted"
    old_archive.mkdir(parents=True)
    inbox.mkdir()
    (old_archive / "1-old.xlsx").write_bytes(b"old workbook")
    restricted = outputs / "2022-H2" / "2023-05-06" / "restricted"
    restricted.mkdir(parents=True)
    (restricted / "vu-viec.xlsx").write_bytes(b"incident counts")
    for path in (data, inbox, archive, archive / "2022-H2", old_archive, outputs, restricted):
        path.chmod(0o755)
    (old_archive / "1-old.xlsx").chmod(0o644)
    (restricted / "vu-viec.xlsx").chmod(0o644)
    control = open_base / "control.txt"
    control.write_text("readable by anyone")
    control.chmod(0o644)
    assert _nobody_reads(control)  # so a refusal below is the modes' doing, not the folder's
    assert _nobody_reads(old_archive / "1-old.xlsx")

    def gec(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([GEC, *args], capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT,
                              env=env, umask=0o022)

    initialised = gec("init")
    assert initialised.returncode == 0, initialised.stderr[-2000:]
    reference = load_reference(PROJECT_ROOT / "reference")
    school = next(iter(reference.schools.values()))
    cycle = reference.calendar.get("2023-H1")
    assert cycle is not None
    workbook = inbox / "bao-cao.xlsx"
    workbook.write_bytes(build_template(school, cycle, school_values(school, cycle, 3)))
    workbook.chmod(0o644)  # as a clerk's copy lands
    collected = gec("collect", "--source", "folder")
    assert collected.returncode == 0, collected.stderr[-3000:]
    assert not workbook.exists()

    assert _mode(database) == 0o600
    archived = [path for path in archive.rglob("*") if path.is_file()]
    assert len(archived) == 2
    folders = [archive, *(path for path in archive.rglob("*") if path.is_dir())]
    assert {_mode(folder) for folder in folders} == {0o700}
    assert {_mode(folder) for folder in (data, inbox, restricted)} == {0o700}
    assert _mode(restricted / "vu-viec.xlsx") == 0o600
    for secret in (database, *archived, restricted / "vu-viec.xlsx"):
        assert not _nobody_reads(secret), secret
