"""Each cycle keeps the registry as it stood for it; the reference files have a fingerprint; manual
indicator values are per cycle (issue 12, item 3)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from db import models
from db.engine import make_engine
from db.setup import alembic_config, init_database, snapshot_drift, sync_cycle, upgrade_database
from schemas.reference import fingerprint, load_reference

ROOT = Path(__file__).resolve().parents[2]
GEC = str(Path(sys.executable).with_name("gec"))

REGISTRY = """\
code,name,level,ownership,ward,emails,active
79000701,Trường Mầm non Rạng Đông,mam_non,cong_lap,Phường 4,mn701@truong.q8.test,true
0790001,Trường Mầm non 1/6,mam_non,cong_lap,Phường 5,mn16@truong.q8.test,true
MN-01,Trường Tiểu học Lê Lợi,tieu_hoc,cong_lap,Phường 6,th01@truong.q8.test,true
"""
# Later edits: MN-01 closes, 79000701 is renamed and moves ward, a new school opens.
EDITED = """\
code,name,level,ownership,ward,emails,active
79000701,Trường Mầm non Rạng Đông Mới,mam_non,cong_lap,Phường 7,mn701@truong.q8.test,true
0790001,Trường Mầm non 1/6,mam_non,cong_lap,Phường 5,mn16@truong.q8.test,true
MN-01,Trường Tiểu học Lê Lợi,tieu_hoc,cong_lap,Phường 6,th01@truong.q8.test,false
TH_02,Trường Tiểu học Mới,tieu_hoc,ngoai_cong_lap,Phường 8,th02@truong.q8.test,true
"""


def _reference_dir(tmp_path: Path, registry: str = REGISTRY) -> Path:
    target = tmp_path / "reference"
    if not target.exists():
        shutil.copytree(ROOT / "reference", target)
    (target / "schools.csv").write_text(registry, encoding="utf-8")
    return target


def _entries(url: str, cycle_id: str) -> dict[str, tuple[bool, str, str]]:
    with Session(make_engine(url)) as session:
        query = select(models.RegistryEntry).where(models.RegistryEntry.cycle_id == cycle_id)
        return {e.school_code: (e.expected, e.name, e.ward) for e in session.scalars(query)}


def test_a_started_cycle_keeps_its_snapshot_after_registry_edits(database_url: str, tmp_path: Path) -> None:
    ref = _reference_dir(tmp_path)
    init_database(database_url, load_reference(ref))
    before = _entries(database_url, "2023-H1")
    assert before == {
        "0790001": (True, "Trường Mầm non 1/6", "Phường 5"),
        "79000701": (True, "Trường Mầm non Rạng Đông", "Phường 4"),
        "MN-01": (True, "Trường Tiểu học Lê Lợi", "Phường 6"),
    }
    edited = load_reference(_reference_dir(tmp_path, EDITED))
    init_database(database_url, edited)  # what every `gec init` and collect does
    assert _entries(database_url, "2023-H1") == before
    # The schools table holds the file as it is now; the snapshot how it stood for the cycle.
    with Session(make_engine(database_url)) as session:
        assert session.get(models.School, "MN-01").active is False
        assert session.get(models.School, "79000701").name == "Trường Mầm non Rạng Đông Mới"
        drift = snapshot_drift(session, edited, "2023-H1")
    assert drift == {
        "79000701": {"name": ("Trường Mầm non Rạng Đông", "Trường Mầm non Rạng Đông Mới"),
                     "ward": ("Phường 4", "Phường 7")},
        "MN-01": {"expected": (True, False)},
        "TH_02": {"expected": (None, True), "exempt": (None, False), "name": (None, "Trường Tiểu học Mới"),
                  "level": (None, "tieu_hoc"), "ownership": (None, "ngoai_cong_lap"),
                  "ward": (None, "Phường 8")},
    }

    with Session(make_engine(database_url)) as session, session.begin():
        sync_cycle(session, edited, "2023-H1", refresh=True)
    after = _entries(database_url, "2023-H1")
    assert after["MN-01"] == (False, "Trường Tiểu học Lê Lợi", "Phường 6")  # kept, no longer expected
    assert after["79000701"] == (True, "Trường Mầm non Rạng Đông Mới", "Phường 7")
    assert after["TH_02"] == (True, "Trường Tiểu học Mới", "Phường 8")


def test_a_cycle_not_started_follows_the_file(database_url: str, tmp_path: Path) -> None:
    upgrade_database(database_url)
    engine = make_engine(database_url)
    early = dt.date(2029, 12, 1)
    with Session(engine) as session, session.begin():
        sync_cycle(session, load_reference(_reference_dir(tmp_path)), "2030-H1", today=early)
    edited = load_reference(_reference_dir(tmp_path, EDITED))
    with Session(engine) as session, session.begin():
        sync_cycle(session, edited, "2030-H1", today=early)
    assert _entries(database_url, "2030-H1")["MN-01"][0] is False
    assert "TH_02" in _entries(database_url, "2030-H1")
    # From its first day on, the snapshot is fixed.
    with Session(engine) as session, session.begin():
        sync_cycle(session, load_reference(_reference_dir(tmp_path)), "2030-H1", today=dt.date(2030, 1, 1))
    assert _entries(database_url, "2030-H1")["MN-01"][0] is False


def test_status_of_a_past_cycle_still_expects_a_school_closed_later(configured_database: str,
                                                                    tmp_path: Path) -> None:
    from tasks.operator.status import cycle_status

    init_database(configured_database, load_reference(_reference_dir(tmp_path)))
    edited = load_reference(_reference_dir(tmp_path, EDITED))
    init_database(configured_database, edited)
    result = cycle_status(make_engine(configured_database), edited, "2023-H1")
    assert sorted(item["code"] for item in result["schools"]) == ["0790001", "79000701", "MN-01"]


def test_migration_fills_the_snapshot_of_existing_rows(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "0002")
    engine = make_engine(database_url)
    moment = dt.datetime(2023, 5, 5, 17, 0)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO schools (code, name, level, ownership, ward, emails, active, "
                          "updated_at) VALUES ('MN-01', 'Trường Mầm non A', 'mam_non', 'cong_lap', "
                          "'Phường 4', '', true, :t)"), {"t": moment})
        conn.execute(text("INSERT INTO cycles (id, period_start, period_end, deadline, deadline_end, listed, "
                          "updated_at) VALUES ('2023-H1', :s, :e, :d, :t, true, :t)"),
                     {"s": dt.date(2023, 1, 1), "e": dt.date(2023, 4, 30), "d": dt.date(2023, 5, 5),
                      "t": moment})
        conn.execute(text("INSERT INTO registry_entries (cycle_id, school_code, expected, exempt) "
                          "VALUES ('2023-H1', 'MN-01', true, false)"))
    upgrade_database(database_url)
    with Session(engine) as session:
        entry = session.get(models.RegistryEntry, ("2023-H1", "MN-01"))
        assert entry is not None
        assert (entry.name, entry.level, entry.ownership, entry.ward) == (
            "Trường Mầm non A", "mam_non", "cong_lap", "Phường 4")
        assert entry.recorded_at == moment.replace(tzinfo=dt.UTC)
    command.downgrade(alembic_config(database_url), "0002")  # and back, without losing the rows
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM registry_entries")).scalar() == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_gec_registry_snapshot_shows_then_refreshes(database_url: str, tmp_path: Path) -> None:
    ref = _reference_dir(tmp_path)
    env = {**os.environ, "GEC_REFERENCE_DIR": str(ref), "GEC_DATABASE_URL": database_url}

    def gec(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([GEC, *args], capture_output=True, text=True, env=env, timeout=120,
                              cwd=tmp_path)

    assert gec("init").returncode == 0
    _reference_dir(tmp_path, EDITED)
    assert gec("init").returncode == 0
    shown = gec("registry", "snapshot", "--cycle", "2023-H1")
    assert shown.returncode == 0, shown.stderr
    assert "MN-01  expected: True -> False" in shown.stdout
    assert "3 school(s) differ; the 2023-H1 snapshot is unchanged" in shown.stdout
    assert _entries(database_url, "2023-H1")["MN-01"][0] is True

    refreshed = gec("registry", "snapshot", "--cycle", "2023-H1", "--refresh")
    assert refreshed.returncode == 0, refreshed.stderr
    assert "Retook the 2023-H1 snapshot: 3 school(s) changed" in refreshed.stdout
    assert _entries(database_url, "2023-H1")["MN-01"][0] is False
    assert "matches the registry file" in gec("registry", "snapshot", "--cycle", "2023-H1").stdout
    assert gec("registry", "snapshot", "--cycle", "2019-H1").returncode == 2  # outside the calendar


def test_fingerprint_names_every_reference_file(tmp_path: Path) -> None:
    ref = _reference_dir(tmp_path)
    reference = load_reference(ref)
    prints = reference.fingerprint()
    assert set(prints) == {"schools.csv", "cycles.yaml", "indicators.yaml"}
    assert prints["schools.csv"] == hashlib.sha256(REGISTRY.encode("utf-8")).hexdigest()
    _reference_dir(tmp_path, EDITED)
    after = fingerprint(ref)
    assert after["schools.csv"] != prints["schools.csv"]
    assert after["cycles.yaml"] == prints["cycles.yaml"]


def test_manual_values_are_per_cycle(tmp_path: Path) -> None:
    ref = _reference_dir(tmp_path)
    path = ref / "indicators.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "    values: {}", "    values: {2023-H1: 12, 2023-h2: 15.5, 2024-H1: null}", 1), encoding="utf-8")
    indicator = load_reference(ref).indicator("BDG1")
    assert indicator is not None
    assert indicator.value_for("2023-H1") == 12.0
    assert indicator.value_for("2023-H2") == 15.5  # the H2 figure does not touch H1's
    assert indicator.value_for("2024-H1") is None and indicator.value_for("2022-H2") is None
    assert indicator.value is None


def test_legacy_single_value_still_reads_for_every_cycle(tmp_path: Path) -> None:
    ref = _reference_dir(tmp_path)
    path = ref / "indicators.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("    values: {}", "    value: 7", 1),
                    encoding="utf-8")
    indicator = load_reference(ref).indicator("BDG1")
    assert indicator is not None and indicator.value == 7.0
    assert indicator.value_for("2023-H1") == indicator.value_for("2023-H2") == 7.0


def test_a_past_report_rebuilt_after_registry_edits_is_byte_identical(database_url: str,
                                                                    tmp_path: Path) -> None:
    """Issue 12 item 3: a school renamed, moved or closed later leaves a past cycle's report unchanged;
    only the manifest's record of the reference files says the inputs changed."""
    from tasks.report.files import write_report_files
    from tasks.report.inputs import load_cycle_data

    as_of = dt.datetime(2023, 6, 1, 8, 0, tzinfo=dt.UTC)
    init_database(database_url, load_reference(_reference_dir(tmp_path)))

    def build(reference_dir: Path, out: Path) -> dict[str, bytes]:
        reference = load_reference(reference_dir)
        init_database(database_url, reference)  # what every `gec init`, collect and report run does
        data = load_cycle_data(make_engine(database_url), reference, "2023-H1", as_of)
        files = write_report_files(data, out)
        return {path.name: path.read_bytes() for path in files.paths()}

    before = build(_reference_dir(tmp_path), tmp_path / "before")
    after = build(_reference_dir(tmp_path, EDITED), tmp_path / "after")
    assert "Trường Mầm non Rạng Đông".encode() in before["tong-hop.html"]
    assert "Trường Tiểu học Mới".encode() not in after["tong-hop.html"]  # opened after the snapshot
    for name in ("tong-hop.html", "tong-hop.xlsx", "vu-viec.xlsx", "bao-cao.docx"):
        assert before[name] == after[name], name
    manifest_before, manifest_after = before["manifest.json"].decode(), after["manifest.json"].decode()
    assert hashlib.sha256(REGISTRY.encode()).hexdigest() in manifest_before
    assert hashlib.sha256(EDITED.encode()).hexdigest() in manifest_after
