"""The `gec` command line as an office user runs it: real processes, real files, exit codes."""

from __future__ import annotations

import json
import os
import re
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


# --------------------------------------------------------------------------------------------------
# Layers: settings at the ground, no Prefect for the commands that need no orchestration

NO_ORCHESTRATION = """
import json, pathlib, sys
from typer.testing import CliRunner
from cli.main import app

out = sys.argv[1]
runner = CliRunner()
codes = {}
made = runner.invoke(app, ["template", "--cycle", "2023-H1", "--school", "MN001", "--out", out])
codes["template"] = made.exit_code
workbook = str(next(pathlib.Path(out).glob("*.xlsx")))
codes["validate"] = runner.invoke(app, ["validate", "--json", workbook]).exit_code
codes["status"] = runner.invoke(app, ["status", "--cycle", "2023-H1"]).exit_code
codes["status --as-of"] = runner.invoke(
    app, ["status", "--cycle", "2023-H1", "--as-of", "2023-05-20T08:00", "--json"]).exit_code
print(json.dumps({"codes": codes, "prefect": sorted(m for m in sys.modules if m.split(".")[0] == "prefect")}))
"""


def test_validate_status_and_template_never_import_prefect(tmp_path: Path) -> None:
    env = {**os.environ, "GEC_DATABASE_URL": f"sqlite:///{tmp_path / 'gec.sqlite3'}"}
    result = subprocess.run(
        [sys.executable, "-c", NO_ORCHESTRATION, str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert loaded["codes"] == {"template": 0, "validate": 0, "status": 0, "status --as-of": 0}
    assert loaded["prefect"] == []


def test_settings_package_imports_nothing_else_of_the_project() -> None:
    ours = {"cli", "config", "db", "demo", "flows", "schemas", "tasks", "reference", "bench", "scripts"}
    probe = ("import json, sys, config.settings, config.clock; "
             "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                            cwd=PROJECT_ROOT, check=True)
    assert set(json.loads(result.stdout)) & ours == {"config"}


def test_use_settings_reaches_worker_threads_and_leaves_the_environment_alone(tmp_path: Path) -> None:
    import threading

    from cli.commands_demo import demo_settings
    from config.settings import get_settings, use_settings

    before = dict(os.environ)
    normal = get_settings()
    seen: list[str] = []
    with use_settings(demo_settings(tmp_path)) as demo:
        # Prefect runs tasks in a thread pool: a thread started inside the block must see the demo's.
        worker = threading.Thread(target=lambda: seen.append(get_settings().effective_database_url))
        worker.start()
        worker.join()
        assert get_settings().inbox_dir == tmp_path / "inbox"
    assert seen == [f"sqlite:///{tmp_path / 'gec-demo.sqlite3'}"] == [demo.effective_database_url]
    assert get_settings() is normal
    assert dict(os.environ) == before


def test_as_of_is_read_in_the_office_time_zone() -> None:
    import datetime as dt

    from config.clock import resolve_as_of

    assert resolve_as_of("2023-05-20T08:00").isoformat() == "2023-05-20T08:00:00+07:00"
    assert resolve_as_of("2023-05-20T01:00+00:00") == dt.datetime(2023, 5, 20, 1, 0, tzinfo=dt.UTC)
    assert resolve_as_of(None).utcoffset() == dt.timedelta(hours=7)


# --------------------------------------------------------------------------------------------------
# Settings: every one documented in the README and the .env sample, and the sample loads


def _variables_in(text: str) -> set[str]:
    return set(re.findall(r"\b(GEC_[A-Z0-9_]*[A-Z0-9])\b", text))


def test_every_setting_is_documented_in_the_readme_and_the_env_sample() -> None:
    from config.settings import Settings

    fields = {f"GEC_{name.upper()}" for name in Settings.model_fields}
    scripts = "".join(path.read_text(encoding="utf-8") for path in (
        PROJECT_ROOT / "scripts" / "serve.sh", PROJECT_ROOT / "scripts" / "apply_automations.py"))
    wanted = fields | _variables_in(scripts)
    assert {"GEC_SMTP_FROM", "GEC_OPS_WEBHOOK_URL", "GEC_DATABASE_URL"} <= wanted
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    settings_section = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    sample = (PROJECT_ROOT / ".env.example").read_text(encoding="utf-8")
    assert wanted - _variables_in(settings_section) == set()
    assert wanted - _variables_in(sample) == set()


def test_the_env_sample_is_a_valid_settings_file() -> None:
    from config.settings import Settings

    settings = Settings(_env_file=PROJECT_ROOT / ".env.example")  # type: ignore[call-arg]
    assert settings.smtp_from == "Phòng GD&ĐT Quận 8 <baocao@example.edu.vn>"
    assert settings.effective_database_url.startswith("sqlite:///")  # empty means the default
    assert settings.max_file_mb == 20 and settings.imap_ssl == "ssl"


# --------------------------------------------------------------------------------------------------
# Faults: one clear line on stderr, exit 1 (fault) or 2 (usage), never a traceback

NOWHERE_DB = "postgresql+psycopg://postgres@127.0.0.1:9/gec_nowhere"


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    return lines[0]


def test_bad_paths_and_unreachable_servers_give_one_line(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x", encoding="utf-8")
    base = {"GEC_DATABASE_URL": f"sqlite:///{tmp_path / 'gec.sqlite3'}",
            "GEC_ARCHIVE_DIR": str(tmp_path / "a"), "GEC_OUTPUT_DIR": str(tmp_path / "out"),
            "PREFECT_HOME": str(tmp_path / "prefect")}
    port = _closed_port()
    cases: list[tuple[list[str], dict[str, str], int, str]] = [
        (["collect", "--inbox", str(tmp_path / "missing")], {}, 2, f"inbox folder {tmp_path / 'missing'}"),
        (["collect"], {"GEC_INBOX_DIR": str(tmp_path / "gone")}, 1, "GEC_INBOX_DIR"),
        (["collect", "--source", "mailbox"], {"GEC_IMAP_PORT": str(port), "GEC_IMAP_SSL": "plain"}, 1,
         f"IMAP server 127.0.0.1:{port}"),
        (["collect", "--inbox", str(inbox)], {"GEC_ARCHIVE_DIR": str(a_file / "archive")}, 1,
         "archive folder"),
        (["report", "--cycle", "2023-H1"], {"GEC_OUTPUT_DIR": str(a_file / "out")}, 1,
         f"output folder {a_file / 'out'}"),
        (["report", "--cycle", "2023-H1", "--as-of", "yesterday"], {}, 2, "not an ISO time"),
        (["status", "--cycle", "2023-H1", "--lang", "fr"], {}, 2, "--lang"),
        (["template", "--cycle", "2023-H1", "--all", "--out", str(a_file / "t")], {}, 1, str(a_file / "t")),
        (["demo-data", "--cycle", "2023-H1", "--out", str(a_file / "d")], {}, 1, str(a_file / "d")),
    ]
    for command in (["init"], ["collect", "--inbox", str(inbox)], ["report", "--cycle", "2023-H1"],
                    ["status", "--cycle", "2023-H1"], ["remind", "--cycle", "2023-H1"],
                    ["remind", "--cycle", "2023-H1", "--dry-run"], ["review", "1", "--accept"],
                    ["revalidate"]):
        cases.append((command, {"GEC_DATABASE_URL": NOWHERE_DB}, 1, "127.0.0.1:9/gec_nowhere"))
    for args, env, code, named in cases:
        result = run(*args, env={**base, **env})
        assert result.returncode == code, (args, result.stderr[-3000:])
        assert named in _one_error_line(result), (args, result.stderr)
    assert not any(inbox.iterdir()) and not (tmp_path / "prefect").exists(), "no flow ever started"


def test_every_command_works_on_a_database_never_initialised(tmp_path: Path) -> None:
    env = {"GEC_DATABASE_URL": f"sqlite:///{tmp_path / 'new' / 'gec.sqlite3'}"}
    status = run("status", "--cycle", "2023-H1", "--json", env=env)
    assert status.returncode == 0, status.stderr[-3000:]
    result = json.loads(status.stdout)
    assert result["totals"]["missing"] > 0 and result["submissions"] == []

    fresh = {"GEC_DATABASE_URL": f"sqlite:///{tmp_path / 'other' / 'gec.sqlite3'}"}
    review = run("review", "1", "--accept", env=fresh)
    assert review.returncode == 2 and "there is no submission 1" in _one_error_line(review)

    fresh = {"GEC_DATABASE_URL": f"sqlite:///{tmp_path / 'third' / 'gec.sqlite3'}"}
    revalidated = run("revalidate", env=fresh)
    assert revalidated.returncode == 0, revalidated.stderr[-3000:]
    assert json.loads(revalidated.stdout)["revalidated"] == 0


# --------------------------------------------------------------------------------------------------
# `gec status` for the office: Vietnamese by default, English on request, JSON unchanged


def test_status_speaks_vietnamese_to_the_office_and_codes_to_scripts(tmp_path: Path) -> None:
    import unicodedata

    env = {"GEC_DATABASE_URL": f"sqlite:///{tmp_path / 'gec.sqlite3'}", "COLUMNS": "200"}
    vi = run("status", "--cycle", "2023-H1", env=env)
    en = run("status", "--cycle", "2023-H1", "--lang", "en", env=env)
    plain = run("status", "--cycle", "2023-H1", "--json", env=env)
    english_json = run("status", "--cycle", "2023-H1", "--json", "--lang", "en", env=env)
    assert {vi.returncode, en.returncode, plain.returncode, english_json.returncode} == {0}

    assert "Kỳ báo cáo 2023-H1: tình hình nộp báo cáo" in vi.stdout
    assert "Chưa nộp" in vi.stdout and "Miễn báo cáo" in vi.stdout and "Tổng cộng" in vi.stdout
    assert "missing" not in vi.stdout
    assert unicodedata.normalize("NFC", vi.stdout) == vi.stdout
    assert "Cycle 2023-H1: completeness" in en.stdout and "missing" in en.stdout
    assert "Chưa nộp" not in en.stdout

    status = json.loads(plain.stdout)
    assert plain.stdout == english_json.stdout
    assert set(status) == {"cycle", "schools", "submissions", "totals"}
    assert set(status["totals"]) == {"on_time", "late", "received_invalid", "held", "missing", "exempt"}
    missing = status["totals"]["missing"]
    row = next(line for line in vi.stdout.splitlines() if "Chưa nộp" in line)
    assert str(missing) in row


def test_only_the_command_line_imports_the_command_line() -> None:
    importers = []
    for path in PROJECT_ROOT.rglob("*.py"):
        relative = path.relative_to(PROJECT_ROOT)
        if relative.parts[0] in {"cli", "tests", ".venv", ".tools", "data", "outputs"}:
            continue
        if re.search(r"^\s*(from cli[ .]|import cli\b)", path.read_text(encoding="utf-8"), re.MULTILINE):
            importers.append(str(relative))
    assert importers == []


def test_settings_source_travels_to_dask_workers_by_name() -> None:
    import pickle

    import cloudpickle

    from config.settings import get_settings

    # Dask pickles a task's function by value when it cannot by name; the settings go by name.
    def uses_settings() -> int:
        return get_settings().max_file_bytes

    assert pickle.loads(pickle.dumps(get_settings)) is get_settings
    assert cloudpickle.loads(cloudpickle.dumps(uses_settings))() == get_settings().max_file_bytes
