"""Distribution of the final report (issue 14 item 4): recipients.yaml, once per version, real SMTP.

The report files are the real ones write_report_files makes; the mail goes through the outbox to an
aiosmtpd server on loopback, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine

from config.settings import PROJECT_ROOT
from schemas.recipients import Recipient, load_recipients
from schemas.reference import ReferenceDataError
from tasks.mail.distribution import DISTRIBUTION_NAME, distribute_report, report_version
from tasks.mail.outbox import flush_outbox
from tasks.report.files import ReportFiles, write_report_files
from tests.report.test_report_flow import reference, stored  # noqa: F401  (fixtures: stored submissions)
from tests.support import rollup_data as fx
from tests.support.mailservers import SmtpServer

RECIPIENTS = """\
recipients:
  - name: Ủy ban nhân dân Quận 8
    address: ubnd@q8.test
    files: [html, docx]
  - name: Sở Giáo dục và Đào tạo
    address: sogddt@hcm.test
    files: [html, xlsx]
  - name: Lãnh đạo Phòng
    address: lanhdao@pgd.q8.test
    files: [xlsx, restricted]
    restricted: true
"""


@pytest.fixture
def report_files(tmp_path: Path) -> tuple[ReportFiles, fx.CycleData]:
    data = fx.make_cycle_data()
    files = write_report_files(data, tmp_path / "outputs")
    # bao-cao.docx is built by the Word renderer; a stand-in file lets the html+docx recipient be checked.
    (files.directory / "bao-cao.docx").write_bytes(b"PK\x03\x04 bao cao")
    return files, data


def _recipients(tmp_path: Path, text: str = RECIPIENTS) -> tuple[Recipient, ...]:
    folder = tmp_path / "reference"
    folder.mkdir(exist_ok=True)
    (folder / "recipients.yaml").write_text(text, encoding="utf-8")
    return load_recipients(folder)


def _by_recipient(server: SmtpServer) -> dict[str, list[str]]:
    sent: dict[str, list[str]] = {}
    for captured in server.messages:
        names = sorted(part.get_filename() for part in captured.message.iter_attachments())
        sent.setdefault(captured.message["To"], []).append(",".join(names))
    return sent


def test_shipped_recipients_file_loads_and_only_cleared_ones_get_the_incident_file() -> None:
    recipients = load_recipients(PROJECT_ROOT / "reference")
    assert recipients and all(r.name and "@" in r.address for r in recipients)
    assert all(r.restricted for r in recipients if "restricted" in r.files)


def test_recipients_file_mistakes_are_listed_with_lines(tmp_path: Path) -> None:
    bad = """\
recipients:
  - name: Phòng LĐ-TB&XH
    address: not-an-address
    files: [html, restricted, pdf]
  - name: Trùng
    address: UBND@q8.test
    files: [html]
  - name: UBND
    address: ubnd@q8.test
    files: [html]
"""
    with pytest.raises(ReferenceDataError) as caught:
        _recipients(tmp_path, bad)
    errors = caught.value.errors
    assert any("line 3" in e and "not an e-mail address" in e for e in errors)
    assert any("line 4" in e and "only a recipient marked 'restricted: true'" in e for e in errors)
    assert any("line 4" in e and "'pdf' is not one of" in e for e in errors)
    assert any("line 8" in e and "already listed on line 5" in e for e in errors)


def test_final_report_is_sent_once_per_version_and_incidents_only_to_the_cleared(
    engine: Engine, smtp_server: SmtpServer, report_files: tuple[ReportFiles, fx.CycleData], tmp_path: Path
) -> None:
    files, data = report_files
    recipients = _recipients(tmp_path)

    def send() -> None:
        distribute_report(engine, files.directory, files.manifest, data.cycle, data.as_of, recipients,
                          office="Phòng GD&ĐT Quận 8")
        flush_outbox(engine, smtp_server.smtp_config())

    send()
    assert _by_recipient(smtp_server) == {
        "ubnd@q8.test": ["bao-cao.docx,tong-hop.html"],
        "sogddt@hcm.test": ["tong-hop.html,tong-hop.xlsx"],
        "lanhdao@pgd.q8.test": ["tong-hop.xlsx,vu-viec.xlsx"],
    }
    cleared = next(m for m in smtp_server.messages if m.message["To"] == "lanhdao@pgd.q8.test").message
    incident = next(p for p in cleared.iter_attachments() if p.get_filename() == "vu-viec.xlsx")
    assert incident.get_content() == files.restricted.read_bytes()
    body = cleared.get_body(("plain",)).get_content()
    assert body.startswith("Kính gửi: Lãnh đạo Phòng,") and "không chuyển tiếp" in body
    assert "6 tháng đầu năm 2023" in cleared["Subject"]

    # A re-run of the same report version (same data, same as_of) sends nothing again.
    rebuilt = write_report_files(data, files.directory.parent.parent)
    assert report_version(rebuilt.manifest) == report_version(files.manifest)
    send()
    assert len(smtp_server.messages) == 3
    record = json.loads((files.directory / DISTRIBUTION_NAME).read_text(encoding="utf-8"))
    [version] = record["versions"]
    assert version == report_version(files.manifest)
    assert sorted(r["address"] for r in record["versions"][version]["recipients"]) == [
        "lanhdao@pgd.q8.test", "sogddt@hcm.test", "ubnd@q8.test"]

    # A later report (new as_of, so a new manifest) is a new version and goes out again.
    later = fx.make_cycle_data(as_of=data.as_of + dt.timedelta(hours=1))
    newer = write_report_files(later, tmp_path / "later")
    distribute_report(engine, newer.directory, newer.manifest, later.cycle, later.as_of, recipients,
                      office="Phòng GD&ĐT Quận 8")
    flush_outbox(engine, smtp_server.smtp_config())
    assert len(smtp_server.messages) == 6
    never_cleared = [m for m in smtp_server.messages if m.message["To"] != "lanhdao@pgd.q8.test"]
    assert never_cleared and all(
        "vu-viec.xlsx" not in {p.get_filename() for p in m.message.iter_attachments()} for m in never_cleared)


def test_a_recipient_not_cleared_never_gets_the_incident_file(
    engine: Engine, smtp_server: SmtpServer, report_files: tuple[ReportFiles, fx.CycleData], tmp_path: Path
) -> None:
    files, data = report_files
    # Even a Recipient built in code (not through the checked file) listing it does not get it.
    sneaky = Recipient("Báo chí", "bao@news.test", ("html", "restricted"), restricted=False)
    distribute_report(engine, files.directory, files.manifest, data.cycle, data.as_of, [sneaky],
                      office="Phòng GD&ĐT Quận 8")
    flush_outbox(engine, smtp_server.smtp_config())
    [captured] = smtp_server.messages
    assert [p.get_filename() for p in captured.message.iter_attachments()] == ["tong-hop.html"]
    assert "vu-viec" not in captured.message.get_body(("plain",)).get_content()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_gec_report_send_mails_the_final_report_once(
    engine: Engine, stored: dict[str, int], database_url: str, smtp_server: SmtpServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    ref_dir = tmp_path / "reference"
    shutil.copytree(PROJECT_ROOT / "reference", ref_dir)
    (ref_dir / "recipients.yaml").write_text(RECIPIENTS, encoding="utf-8")
    env = {**os.environ, **smtp_server.env, "GEC_DATABASE_URL": database_url,
           "GEC_REFERENCE_DIR": str(ref_dir), "GEC_OUTPUT_DIR": str(tmp_path / "outputs"),
           "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    command = [str(Path(sys.executable).with_name("gec")), "report", "--cycle", "2023-H1",
               "--as-of", "2023-05-20T08:00"]

    built = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, cwd=PROJECT_ROOT)
    assert built.returncode == 0, built.stderr[-2000:]
    assert smtp_server.messages == []  # without --send nothing leaves

    for _ in range(2):  # the second final run is the same report version: nothing is sent again
        sent = subprocess.run([*command, "--send"], env=env, capture_output=True, text=True, timeout=240,
                              cwd=PROJECT_ROOT)
        assert sent.returncode == 0, sent.stderr[-2000:]
    # `gec report` builds the Word file too, so the html+docx recipient gets both.
    assert _by_recipient(smtp_server) == {
        "ubnd@q8.test": ["bao-cao.docx,tong-hop.html"],
        "sogddt@hcm.test": ["tong-hop.html,tong-hop.xlsx"],
        "lanhdao@pgd.q8.test": ["tong-hop.xlsx,vu-viec.xlsx"],
    }
