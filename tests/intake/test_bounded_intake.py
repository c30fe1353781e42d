"""Bounded intake (issue 11 #7): sizes are checked before bytes are read, and a refused file is still a
recorded submission with a verdict (the school shows `received_invalid`, not `missing`).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from config.settings import get_settings
from db import models
from db.setup import init_database
from schemas.reference import Reference, load_reference
from tasks.intake.folder import read_inbox_file
from tasks.intake.sniff import stub_size
from tests.support.stages import ingest

ROOT = Path(__file__).resolve().parents[2]
MAX_BYTES = 20 * 1024 * 1024
BIG = 150 * 1024 * 1024


@pytest.fixture(scope="module")
def reference() -> Reference:
    return load_reference(get_settings().reference_dir)


def _big_file(path: Path, size: int) -> str:
    """Write a file of `size` bytes (a repeated block, not sparse); return its sha256."""
    block = hashlib.sha256(b"seed").digest() * (1024 * 1024 // 32)
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        for _ in range(size // len(block)):
            handle.write(block)
            digest.update(block)
    return digest.hexdigest()


_READER = r"""
import json, sys
from pathlib import Path
from tasks.intake.folder import read_inbox_file
file = read_inbox_file(Path(sys.argv[1]), int(sys.argv[2]))
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))
print(json.dumps({"sha256": file.sha256, "size": file.size, "stored": len(file.content), "peak_mb": peak}))
"""


def test_an_oversized_drop_folder_file_is_hashed_by_streaming_not_read(tmp_path: Path) -> None:
    path = tmp_path / "ảnh chụp 150MB.xlsx"
    sha = _big_file(path, BIG)
    done = subprocess.run([sys.executable, "-c", _READER, str(path), str(MAX_BYTES)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(done.stdout)
    assert result["sha256"] == sha and result["size"] == BIG
    assert result["stored"] < 200  # a stub, not 150 MB
    assert result["peak_mb"] < 150, result  # never held whole (reading it whole peaked at 720 MB)


def test_an_oversized_file_becomes_a_too_large_submission(
    engine: Engine, database_url: str, reference: Reference, tmp_path: Path
) -> None:
    init_database(database_url, reference)
    path = tmp_path / "MN001 báo cáo.xlsx"
    sha = _big_file(path, 24 * 1024 * 1024)
    file = read_inbox_file(path, MAX_BYTES)
    assert stub_size(file.content) == file.size == 24 * 1024 * 1024
    [outcome] = ingest(engine, reference, [file], max_bytes=MAX_BYTES)
    assert outcome.submission_id is not None and outcome.state == "rejected"
    assert outcome.message is not None and outcome.message.startswith("Tệp quá lớn")
    assert "24,0 MB, vượt giới hạn 20,0 MB" in outcome.message
    with engine.connect() as conn:
        stored = conn.execute(select(models.ReceivedFile.size, models.ReceivedFile.sha256,
                                     models.ReceivedFile.content)).one()
        rules = conn.execute(select(models.Finding.rule)
                             .where(models.Finding.submission_id == outcome.submission_id)).scalars().all()
    assert (stored.size, stored.sha256) == (24 * 1024 * 1024, sha) and len(stored.content) < 200
    assert rules == ["too_large"]
    # Read again (a later run finds it still there): the same record, no second submission.
    [again] = ingest(engine, reference, [read_inbox_file(path, MAX_BYTES)], max_bytes=MAX_BYTES)
    assert again.submission_id == outcome.submission_id and not again.created
