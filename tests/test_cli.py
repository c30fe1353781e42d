"""The `gec` command line as an office user runs it: real processes, real files, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from config.settings import PROJECT_ROOT

GEC = str(Path(sys.executable).with_name("gec"))


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GEC, *args], capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
    )


def test_demo_data_validated_by_gec_validate_matches_its_truth_file(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    made = run("demo-data", "--cycle", "2023-H1", "--out", str(out), "--seed", "11")
    assert made.returncode == 0, made.stderr
    truth = json.loads((tmp_path / "demo.truth.json").read_text(encoding="utf-8"))  # beside the folder
    files = sorted(str(out / entry["file"]) for entry in truth["files"])

    checked = run("validate", "--json", *files)
    assert checked.returncode == 0, checked.stderr  # rejected workbooks are data, not a failure
    found = {Path(item["file"]).name: sorted({f["rule"] for f in item["findings"]})
             for item in json.loads(checked.stdout)}
    expected = {entry["file"]: entry["expect_rules"] for entry in truth["files"]}
    assert found == expected
    # Each finding names where to look, as the school sees it.
    sample = next(item for item in json.loads(checked.stdout) if item["findings"])
    assert {"severity", "rule", "sheet", "row", "column", "message"} <= set(sample["findings"][0])


def test_template_for_one_school_and_usage_errors(tmp_path: Path) -> None:
    made = run("template", "--cycle", "2023-H1", "--school", "MN001", "--out", str(tmp_path))
    assert made.returncode == 0, made.stderr
    written = list(tmp_path.glob("*.xlsx"))
    assert len(written) == 1 and written[0].stat().st_size > 5000

    assert run("template", "--cycle", "2023-H1", "--out", str(tmp_path)).returncode == 2  # no school
    assert run("template", "--cycle", "2023-H9", "--all", "--out", str(tmp_path)).returncode == 2
    assert run("status", "--cycle", "nonsense").returncode == 2


def test_database_fault_exits_1_naming_the_database(tmp_path: Path) -> None:
    # Nothing listens on this loopback port: the command must fail cleanly with exit code 1.
    env = {"GEC_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:9/gec_nowhere"}
    result = run("status", "--cycle", "2023-H1", env=env)
    assert result.returncode == 1
    assert "127.0.0.1:9/gec_nowhere" in result.stderr
    assert "Traceback" not in result.stderr


def test_collect_then_status_json_agrees_with_the_demo_truth(tmp_path: Path) -> None:
    env = {
        "GEC_DATABASE_URL": f"sqlite:///{tmp_path / 'gec.sqlite3'}",
        "GEC_ARCHIVE_DIR": str(tmp_path / "archive"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
    }
    inbox = tmp_path / "inbox"
    assert run("demo-data", "--cycle", "2023-H1", "--out", str(inbox), "--seed", "5").returncode == 0
    truth = json.loads((tmp_path / "inbox.truth.json").read_text(encoding="utf-8"))  # not in the inbox

    collected = run("collect", "--source", "folder", "--inbox", str(inbox), env=env)
    assert collected.returncode == 0, collected.stderr[-3000:]
    assert not any(inbox.iterdir())  # everything archived after the commit

    status = run("status", "--cycle", "2023-H1", "--json", env=env)
    assert status.returncode == 0, status.stderr
    result = json.loads(status.stdout)
    schools = {entry["code"]: (entry["state"], entry["on_time"]) for entry in result["schools"]}
    assert schools == {entry["code"]: (entry["expect_state"], entry["expect_on_time"])
                       for entry in truth["schools"]}
    states = {entry["file"]: entry["state"] for entry in result["submissions"]}
    assert states == {entry["file"]: entry["expect_state"] for entry in truth["files"]}


def test_validate_masks_incident_values_in_value_and_message(tmp_path: Path) -> None:
    import copy

    from config.settings import get_settings
    from demo.data import school_values
    from schemas.reference import load_reference
    from tasks.template.build import template_grid
    from tasks.template.writer import write_workbook

    reference = load_reference(get_settings().reference_dir)
    school, cycle = reference.schools["MN001"], reference.calendar.get("2023-H1")
    assert cycle is not None
    found = copy.deepcopy(school_values(school, cycle, 11))
    row = next(item for item in found.rows["incidents"] if item["category"] == "bao_luc")
    # Primes that no row number, column or date of the workbook shows.
    row.update(cases=4099, children=4093, children_female=4111, reported=4127, supported=1)
    path = tmp_path / "vu-viec.xlsx"
    path.write_bytes(write_workbook(template_grid(school, cycle, found), "xlsx"))

    checked = run("validate", "--json", str(path))
    assert checked.returncode == 0, checked.stderr
    [item] = json.loads(checked.stdout)
    incident = [f for f in item["findings"] if f["sheet"] == "Vụ việc"]
    assert {f["rule"] for f in incident} == {"female_gt_total", "reported_gt_cases"}
    assert all(f["value"] == "***" and "***" in f["message"] for f in incident)
    table = run("validate", str(path))
    for shown in (checked.stdout, table.stdout):
        assert all(number not in shown for number in ("4099", "4093", "4111", "4127"))
