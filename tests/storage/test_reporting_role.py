"""The PostgreSQL reporting role (issue 11 #6): public outputs read everything but confidential data.

Migration 0003 creates `gec_reporting`; `db.engine.reporting_engine` runs its sessions under it. Under
that role the status and sheet queries of the public report work, while incident rows, raw workbook
bytes and outbox bodies are refused by the database itself.
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib.util
from types import ModuleType
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.exc import ProgrammingError

from db import models
from db.engine import REPORTING_ROLE, make_engine, reporting_engine, reporting_session, session_scope
from db.setup import MIGRATIONS_DIR, init_database
from demo.data import school_values
from schemas.reference import Cycle, CycleCalendar, Reference, School
from tasks.intake.folder import incoming_file
from tasks.mail.outbox import outbox_rows
from tasks.operator.status import cycle_status
from tasks.template.build import build_template
from tests.support.stages import ingest

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
H1 = "2023-H1"
RECEIVED = dt.datetime(2023, 5, 2, 9, 30, tzinfo=HCM)


def _migration() -> ModuleType:
    path = MIGRATIONS_DIR / "versions" / "0003_reporting_role.py"
    spec = importlib.util.spec_from_file_location("reporting_role_migration", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _school(code: str) -> School:
    return School(code, f"Trường {code}", "tieu_hoc", "cong_lap", "Phường 4",
                  (f"{code.lower()}@truong.q8.test",), True, None, None, frozenset())


@pytest.fixture(scope="module")
def reference() -> Reference:
    schools = (_school("TH001"), _school("TH002"))
    calendar = CycleCalendar([Cycle(H1, dt.date(2023, 1, 1), dt.date(2023, 4, 30), dt.date(2023, 5, 5))])
    return Reference({school.code: school for school in schools}, calendar, ())


def _store_cycle(engine: Engine, database_url: str, reference: Reference) -> None:
    """Store one accepted and one rejected submission, and a queued reply with an attachment."""
    init_database(database_url, reference)
    cycle = reference.calendar.get(H1)
    assert cycle is not None
    files = []
    for code in ("TH001", "TH002"):
        values = copy.deepcopy(school_values(reference.schools[code], cycle, 5))
        values.rows["incidents"][0].update(cases=2, children=2, children_female=1, reported=1, supported=1)
        if code == "TH002":
            values.rows["reach"][0].update(female=values.rows["reach"][0]["total"] + 1)  # an error
        content = build_template(reference.schools[code], cycle, values)
        files.append(incoming_file(content, source="folder", original_name=f"{code}.xlsx",
                                   received_at=RECEIVED, source_ref=f"/inbox/{code}.xlsx"))
    outcomes = ingest(engine, reference, files, max_bytes=20 * 1024 * 1024)
    assert sorted(outcome.state or "" for outcome in outcomes) == ["accepted", "rejected"]
    with session_scope(engine) as session:
        session.add(models.OutboxMessage(
            kind="feedback", dedupe_key="feedback:1:1", to_address="th001@truong.q8.test",
            subject="Kết quả", body_text="Vụ việc: 2", body_html="<p>Vụ việc: 2</p>",
            attachments=[models.OutboxAttachment(filename="ban-sao.xlsx", content=b"annotated copy")],
        ))


def _refused(engine: Engine, query: str) -> str:
    with pytest.raises(ProgrammingError) as caught, engine.connect() as conn:
        conn.execute(text(query)).all()
    return str(caught.value.orig)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_reporting_role_reads_the_public_report_data_but_no_confidential_data(
    engine: Engine, database_url: str, reference: Reference
) -> None:
    _store_cycle(engine, database_url, reference)
    reporting = reporting_engine(database_url)
    assert reporting is not make_engine(database_url)
    with reporting.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar_one() == REPORTING_ROLE

    # The public report's inputs: cycle status (submissions, decisions, findings, received files'
    # names and sha256) and the public sheets, exactly as the service account sees them.
    assert cycle_status(reporting, reference, H1) == cycle_status(engine, reference, H1)
    for model in (models.ReachRow, models.Activity, models.ChecklistAnswer, models.GeneralInfo,
                  models.Submission, models.Finding, models.ReportRun):
        with reporting.connect() as conn:
            conn.execute(select(model.__table__)).all()
    with reporting_session(database_url) as session:
        # `content` is deferred, so loading received files as objects never asks for it.
        names = sorted(row.original_name for row in session.scalars(select(models.ReceivedFile)))
    assert names == ["TH001.xlsx", "TH002.xlsx"]
    assert [row["subject"] for row in outbox_rows(reporting)] == ["Kết quả"]

    # Confidential data: refused by the database.
    for query in (
        "SELECT cases FROM incident_counts",
        "SELECT count(*) FROM incident_counts",
        "SELECT content FROM received_files",
        "SELECT body_text FROM outbox",
        "SELECT body_html FROM outbox",
        "SELECT content FROM outbox_attachments",
    ):
        assert "permission denied" in _refused(reporting, query), query
    # Read-only: it cannot change what it reports on.
    with pytest.raises(ProgrammingError, match="permission denied"), reporting.begin() as conn:
        conn.execute(insert(models.Cycle.__table__).values(
            id="2099-H1", period_start=dt.date(2099, 1, 1), period_end=dt.date(2099, 6, 30),
            deadline=dt.date(2099, 7, 5), deadline_end=dt.datetime(2099, 7, 5, 17, tzinfo=dt.UTC),
            listed=False, updated_at=dt.datetime(2099, 1, 1, tzinfo=dt.UTC)))
    # The service account itself still reads everything.
    with engine.connect() as conn:
        assert conn.execute(text("SELECT sum(cases) FROM incident_counts")).scalar_one() == 4


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_reporting_engine_is_the_plain_engine_on_sqlite(engine: Engine, database_url: str) -> None:
    # One file, one OS user: file modes protect SQLite, and the migration does nothing there.
    assert reporting_engine(database_url) is make_engine(database_url)
    with reporting_session(database_url) as session:
        assert session.execute(text("SELECT count(*) FROM incident_counts")).scalar_one() == 0


def test_every_table_is_either_granted_or_confidential() -> None:
    # Deny by default: a new table must be granted to the role in a migration, or named confidential.
    migration = _migration()
    granted = set(migration.READABLE_TABLES) | set(migration.READABLE_COLUMNS)
    assert granted.isdisjoint(models.CONFIDENTIAL_TABLES)
    assert set(models.Base.metadata.tables) == granted | models.CONFIDENTIAL_TABLES
    for table, columns in migration.READABLE_COLUMNS.items():
        every = {column.name for column in models.Base.metadata.tables[table].columns}
        assert set(columns) < every, table
        assert {"content", "body_text", "body_html"}.isdisjoint(columns)
