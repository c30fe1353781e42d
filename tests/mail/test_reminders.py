"""Reminders and overdue notices (SPEC §4, §6, §7 `gec remind`) against a real SMTP server.

A small registry (five real schools, one exempt) with one accepted, one rejected and one held
submission: exactly the schools without an accepted submission are written to, once, each with its own
pre-filled template; the operator's summary lists the held file.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from config.settings import PROJECT_ROOT, get_settings
from db.setup import init_database
from demo.data import school_values
from schemas.reference import Reference, load_reference
from tasks.check.parse import parse_workbook
from tasks.intake.folder import incoming_file
from tasks.mail.outbox import outbox_rows
from tasks.mail.reminders import plan_reminders, resolve_cycle, send_reminders
from tasks.template.build import build_template
from tests.support.mailservers import SmtpServer
from tests.support.stages import ingest

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
H1 = "2023-H1"
MAX_BYTES = 20 * 1024 * 1024
OPS = "it@q8.test"
WEEK_BEFORE = dt.datetime(2023, 4, 28, 8, 0, tzinfo=HCM)
CODES = ("MN001", "MN002", "MN003", "MN004", "MN005")
EXEMPT = "MN005"
DUE = {"MN002": "received_invalid", "MN003": "held", "MN004": "missing"}


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry of five real schools (MN005 exempt for 2023-H1) beside the real calendar and catalog."""
    source = PROJECT_ROOT / "reference"
    target = tmp_path_factory.mktemp("reference")
    for name in ("cycles.yaml", "indicators.yaml"):
        shutil.copy(source / name, target / name)
    with (source / "schools.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [row for row in reader if row["code"] in CODES]
        fields = reader.fieldnames
    assert fields is not None and len(rows) == len(CODES)
    for row in rows:
        if row["code"] == EXEMPT:
            row["exempt_cycles"] = H1
    with (target / "schools.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return target


@pytest.fixture(scope="module")
def reference(reference_dir: Path) -> Reference:
    return load_reference(reference_dir)


@pytest.fixture
def db(engine: Engine, database_url: str, reference: Reference) -> Engine:
    """The five schools' database: MN001 accepted, MN002 rejected, MN003 held, MN004 nothing."""
    init_database(database_url, reference, cycle_ids=(H1,))
    cycle = reference.calendar.get(H1)
    assert cycle is not None
    files = []
    for index, (code, sender, broken) in enumerate((
        ("MN001", reference.schools["MN001"].emails[0], False),
        ("MN002", reference.schools["MN002"].emails[0], True),
        ("MN003", "ai.do@gmail.test", False),  # not registered for MN003: held
    )):
        values = copy.deepcopy(school_values(reference.schools[code], cycle, 3))
        if broken:
            row = next(row for row in values.rows["reach"] if row["group"] == "giao_vien")
            row["female"] = row["total"] + 2
        content = build_template(reference.schools[code], cycle, values)
        files.append(incoming_file(content, source="mailbox", original_name=f"{code}.xlsx",
                                   received_at=WEEK_BEFORE - dt.timedelta(days=2), source_ref=f"1:{index}:1",
                                   sender=sender))
    outcomes = ingest(engine, reference, files, max_bytes=MAX_BYTES)
    assert [outcome.state for outcome in outcomes] == ["accepted", "rejected", "held"]
    return engine


def templates_by_recipient(smtp: SmtpServer) -> dict[str, str]:
    """Return recipient -> school code of the template attached to the one message each received."""
    found = {}
    for captured in smtp.messages:
        attached = list(captured.message.iter_attachments())
        if not attached:
            continue
        [template] = attached
        parsed = parse_workbook(template.get_content(), max_bytes=MAX_BYTES)
        for address in captured.rcpt_tos:
            assert address not in found, f"two notices to {address}"
            found[address] = parsed.general_value("school_code")
    return found


def test_resolve_cycle_by_the_clock(reference: Reference) -> None:
    assert [(c.id, k) for c, k in [resolve_cycle(reference, None, "auto", WEEK_BEFORE)]] == [(H1, "reminder")]
    last_minute = dt.datetime(2023, 5, 5, 23, 59, tzinfo=HCM)
    assert resolve_cycle(reference, H1, "auto", last_minute)[1] == "reminder"  # the deadline is inclusive
    after = dt.datetime(2023, 5, 6, 9, 0, tzinfo=HCM)
    assert resolve_cycle(reference, H1, "auto", after)[1] == "overdue"
    cycle, kind = resolve_cycle(reference, None, "overdue", after)
    assert (cycle.id, kind) == (H1, "overdue")  # the cycle whose deadline just passed
    assert resolve_cycle(reference, None, "reminder", after)[0].id == "2023-H2"
    with pytest.raises(ValueError, match="kind"):
        resolve_cycle(reference, H1, "spam", after)
    with pytest.raises(ValueError, match="malformed"):
        resolve_cycle(reference, "2023-H3", "auto", after)


def test_plan_lists_exactly_the_schools_without_an_accepted_submission(
    db: Engine, reference: Reference
) -> None:
    plan = plan_reminders(db, reference, H1, "auto", WEEK_BEFORE)
    assert plan.kind == "reminder"
    assert {item.code: item.state for item in plan.schools} == DUE
    assert [item.school_code for item in plan.held] == ["MN003"]
    assert {item.code: item.emails for item in plan.schools} == {
        code: reference.schools[code].emails for code in DUE}


def test_each_school_gets_one_notice_with_its_own_template(
    db: Engine, reference: Reference, smtp_server: SmtpServer
) -> None:
    run = send_reminders(db, reference, smtp_server.smtp_config(), cycle_id=H1, kind="reminder",
                         ops_email=OPS, now=WEEK_BEFORE)
    assert run.flush is not None and len(run.flush.sent) == 4 and run.flush.remaining == 0

    expected = {address: code for code in DUE for address in reference.schools[code].emails}
    assert templates_by_recipient(smtp_server) == expected
    summary = next(c.message for c in smtp_server.messages if OPS in c.rcpt_tos)
    text = " ".join(summary.get_body(("plain",)).get_content().split())  # phone-width lines joined
    assert all(code in text for code in DUE) and "MN001" not in text
    assert "MN003.xlsx" in text and "ai.do@gmail.test" in text  # the held file waits for a review
    held = next(c.message for c in smtp_server.messages if reference.schools["MN003"].emails[0] in c.rcpt_tos)
    assert "địa chỉ đã đăng ký" in " ".join(held.get_body(("plain",)).get_content().split())

    again = send_reminders(db, reference, smtp_server.smtp_config(), cycle_id=H1, kind="reminder",
                           ops_email=OPS, now=WEEK_BEFORE + dt.timedelta(hours=1))
    assert again.queued == [] and again.plan.already == frozenset(DUE)
    assert len(smtp_server.messages) == 4

    overdue = send_reminders(db, reference, smtp_server.smtp_config(), cycle_id=H1, kind="auto",
                             now=dt.datetime(2023, 5, 6, 9, 0, tzinfo=HCM))
    assert overdue.plan.kind == "overdue" and len(overdue.queued) == 3
    assert all("Quá hạn" in c.message["Subject"] for c in smtp_server.messages[4:])


def test_dry_run_sends_nothing(db: Engine, reference: Reference, smtp_server: SmtpServer) -> None:
    run = send_reminders(db, reference, smtp_server.smtp_config(), cycle_id=H1, dry_run=True, ops_email=OPS,
                         now=WEEK_BEFORE)
    assert {item.code for item in run.plan.schools} == set(DUE)
    assert run.queued == [] and outbox_rows(db) == [] and smtp_server.messages == []


def test_smtp_down_keeps_notices_queued_and_sends_them_once_later(
    db: Engine, reference: Reference, smtp_server: SmtpServer
) -> None:
    with smtp_server.stopped():
        down = send_reminders(db, reference, smtp_server.smtp_config(timeout=2), cycle_id=H1, kind="reminder",
                              now=WEEK_BEFORE)
    assert down.flush is not None and down.flush.unavailable and down.flush.remaining == 3
    later = send_reminders(db, reference, smtp_server.smtp_config(), cycle_id=H1, kind="reminder",
                           now=WEEK_BEFORE + dt.timedelta(days=1))
    assert later.queued == [] and later.flush is not None and len(later.flush.sent) == 3
    assert Counter(a for c in smtp_server.messages for a in c.rcpt_tos) == Counter(
        address for code in DUE for address in reference.schools[code].emails)


# --------------------------------------------------------------------------------------------------
# `gec remind`


@pytest.fixture
def cli_env(db: Engine, configured_database: str, reference_dir: Path, smtp_server: SmtpServer,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GEC_REFERENCE_DIR", str(reference_dir))
    monkeypatch.setenv("GEC_OPS_EMAIL", OPS)
    for key, value in smtp_server.env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_gec_remind_dry_run_lists_exactly_the_schools(
    cli_env: None, smtp_server: SmtpServer, db: Engine
) -> None:
    from cli.main import app

    result = CliRunner().invoke(app, ["remind", "--cycle", H1, "--dry-run"])

    assert result.exit_code == 0, result.output
    listed = {line.split("\t")[0]: line.split("\t")[1] for line in result.output.splitlines() if "\t" in line}
    assert listed == DUE
    assert "dry run, nothing sent" in result.output
    assert smtp_server.messages == [] and outbox_rows(db) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_gec_remind_sends_each_school_its_template_once(
    prefect_harness: str, cli_env: None, smtp_server: SmtpServer, reference: Reference
) -> None:
    from cli.main import app

    result = CliRunner().invoke(app, ["remind", "--cycle", H1])
    assert result.exit_code == 0, result.output
    assert "(4 queued, 4 sent)" in result.output  # three schools and the operator's summary

    expected = {address: code for code in DUE for address in reference.schools[code].emails}
    assert templates_by_recipient(smtp_server) == expected
    assert sum(OPS in c.rcpt_tos for c in smtp_server.messages) == 1
    assert all("Quá hạn" in c.message["Subject"] for c in smtp_server.messages if OPS not in c.rcpt_tos)

    again = CliRunner().invoke(app, ["remind", "--cycle", H1])
    assert again.exit_code == 0 and "(already sent)" in again.output and "0 queued" in again.output
    assert len(smtp_server.messages) == len(expected) + 1
