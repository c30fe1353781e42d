"""The database schema (SPEC §4, §5, §8): SQLAlchemy 2.0 typed ORM, one module, English column keys.

Sheet tables use the contract's field keys (`schemas/contract.py`) as column names, so a parsed
table's columns map onto them one to one. Every timestamp is timezone-aware: stored in UTC and read
back as an aware UTC datetime on both PostgreSQL and SQLite.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from schemas import states as schema_states

# Stable constraint names, so Alembic can alter and drop them on every backend (SQLite included).
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Coded values for the CHECK constraints; the states come from schemas/states.py (SPEC §4).
SOURCES = ("folder", "mailbox")
DECISIONS = schema_states.DECISIONS
STATES = schema_states.SUBMISSION_STATES
CYCLE_SOURCES = ("workbook", "arrival")
DECISION_REASONS = ("validation", "review", "revalidate", "supersede")
SEVERITIES = ("error", "warning")


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


def utcnow() -> dt.datetime:
    """Return the current time as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware timestamp stored in UTC: TIMESTAMPTZ on PostgreSQL, UTC text on SQLite.

    SQLite has no time zone type, so values are normalised to UTC before binding (which also keeps
    its text comparisons in `WHERE received_at <= :as_of` correct) and get UTC attached on the way out.
    Naive datetimes are refused: a naive time in this app is always a bug.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON}


# --------------------------------------------------------------------------------------------------
# Reference data: the school registry and the cycle calendar, loaded by `db.setup.init_database`.


class School(Base):
    """A school of the registry (`reference/schools.csv`), as last loaded."""

    __tablename__ = "schools"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(String(16))
    ownership: Mapped[str] = mapped_column(String(16))
    ward: Mapped[str] = mapped_column(String(64))
    emails: Mapped[str] = mapped_column(Text, default="")  # registered senders, ";"-separated
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    opened: Mapped[dt.date | None] = mapped_column(Date)
    closed: Mapped[dt.date | None] = mapped_column(Date)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def email_list(self) -> tuple[str, ...]:
        """Return the registered sender addresses."""
        return tuple(item for item in (part.strip() for part in self.emails.split(";")) if item)


class Cycle(Base):
    """A reporting cycle (`2023-H1`): listed in `reference/cycles.yaml` or made by the default rule."""

    __tablename__ = "cycles"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    deadline: Mapped[dt.date] = mapped_column(Date)  # inclusive, as the office announces it
    # The instant the deadline passes, as the reference computes it (end of day, Asia/Ho_Chi_Minh).
    deadline_end: Mapped[dt.datetime]
    listed: Mapped[bool] = mapped_column(Boolean, default=False)  # True when cycles.yaml names it
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    registry_entries: Mapped[list[RegistryEntry]] = relationship(
        back_populates="cycle", passive_deletes=True
    )


class RegistryEntry(Base):
    """The registry as it stood for one cycle: whether a school was expected to report, or exempt,
    and its name, level, ownership and ward then.

    Completeness (SPEC §4) and a rebuilt report read these rows, so schools opened, closed, renamed or
    set inactive later and per-cycle exemptions keep their meaning after the registry file changes.
    A cycle's rows are taken once (`db.setup.sync_cycle`) and changed only by `gec registry snapshot
    --refresh` (until the cycle's period starts they follow the file).
    """

    __tablename__ = "registry_entries"

    cycle_id: Mapped[str] = mapped_column(ForeignKey("cycles.id", ondelete="CASCADE"), primary_key=True)
    school_code: Mapped[str] = mapped_column(ForeignKey("schools.code"), primary_key=True)
    expected: Mapped[bool] = mapped_column(Boolean)
    exempt: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(String(16))
    ownership: Mapped[str] = mapped_column(String(16))
    ward: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)  # when these values were copied

    cycle: Mapped[Cycle] = relationship(back_populates="registry_entries")
    school: Mapped[School] = relationship()


# --------------------------------------------------------------------------------------------------
# Intake: raw files, every arrival of them, and the submissions made from them.


class ReceivedFile(Base):
    """Raw bytes of a received file, stored once per sha256 before anything parses them.

    The arrival columns describe the first arrival; every arrival (repeats included) is a FileReceipt.
    """

    __tablename__ = "received_files"
    __table_args__ = (CheckConstraint(_in("source", SOURCES), name="source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(Integer)
    # Deferred: listings and status queries must not drag megabytes of workbook along.
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    source: Mapped[str] = mapped_column(String(16))
    original_name: Mapped[str] = mapped_column(Text)
    safe_name: Mapped[str] = mapped_column(Text)
    sender: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[dt.datetime]
    message_id: Mapped[str | None] = mapped_column(Text)
    stored_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    receipts: Mapped[list[FileReceipt]] = relationship(
        back_populates="received_file", order_by="FileReceipt.id", passive_deletes=True
    )


class FileReceipt(Base):
    """One arrival of a file (a mail attachment or a file in the drop folder), even of known bytes."""

    __tablename__ = "file_receipts"
    __table_args__ = (
        CheckConstraint(_in("source", SOURCES), name="source"),
        # Unique: a re-run after a crash finds the arrival it already recorded (migration 0002).
        Index("ix_file_receipts_source_ref", "source", "source_ref", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    received_file_id: Mapped[int] = mapped_column(
        ForeignKey("received_files.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(String(16))
    original_name: Mapped[str] = mapped_column(Text)
    sender: Mapped[str | None] = mapped_column(Text)  # None for the drop folder
    received_at: Mapped[dt.datetime]  # IMAP INTERNALDATE, or the file's modification time
    # Where it came from: the IMAP message-id/uid and attachment, or the inbox path.
    source_ref: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    received_file: Mapped[ReceivedFile] = relationship(back_populates="receipts")



def _children(model: str, lazy: str = "select") -> Any:
    """Return a submission's one-to-many collection, owned by it and deleted with it."""
    return relationship(
        back_populates="submission",
        order_by=f"{model}.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy=lazy,  # type: ignore[arg-type]
    )


class Submission(Base):
    """A received file read as one school's report for one cycle, with its current state.

    `decision` is what validation or review decided on its own (accepted/rejected/held); `state` adds
    supersession by a newer accepted submission of the same school and cycle (see tasks/states.py).
    """

    __tablename__ = "submissions"
    __table_args__ = (
        CheckConstraint(_in("state", STATES), name="state"),
        CheckConstraint(_in("decision", DECISIONS), name="decision"),
        CheckConstraint(_in("cycle_source", CYCLE_SOURCES), name="cycle_source"),
        # Status and rollup queries: a cycle's submissions per school and state, newest first.
        Index("ix_submissions_cycle_school_state", "cycle_id", "school_code", "state", "received_at"),
        # A school's history across cycles: the previous accepted version for `total_jump` and diffs.
        Index("ix_submissions_school_state", "school_code", "state", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # also the arrival order for ties
    # Unique: one submission per stored file, so a crash and re-run can never read it twice (0002).
    received_file_id: Mapped[int] = mapped_column(ForeignKey("received_files.id"), unique=True)
    receipt_id: Mapped[int | None] = mapped_column(ForeignKey("file_receipts.id"))  # arrival read
    school_code: Mapped[str | None] = mapped_column(ForeignKey("schools.code"))  # None if unknown
    claimed_school_code: Mapped[str | None] = mapped_column(Text)  # `Mã trường` as typed
    cycle_id: Mapped[str] = mapped_column(ForeignKey("cycles.id"))
    cycle_source: Mapped[str] = mapped_column(String(16))  # "arrival": the cycle open when it arrived
    decision: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"))
    received_at: Mapped[dt.datetime]
    decided_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    template_version: Mapped[str | None] = mapped_column(String(32))
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    warning_count: Mapped[int] = mapped_column(Integer, default=0)
    file_format: Mapped[str] = mapped_column(String(8), default="")  # "" when unreadable
    is_on_time: Mapped[bool] = mapped_column(Boolean)  # received before the cycle's deadline_end

    received_file: Mapped[ReceivedFile] = relationship()
    receipt: Mapped[FileReceipt | None] = relationship()
    school: Mapped[School | None] = relationship()
    cycle: Mapped[Cycle] = relationship()
    superseded_by: Mapped[Submission | None] = relationship(remote_side=[id])
    decisions: Mapped[list[Decision]] = _children("Decision")
    findings: Mapped[list[Finding]] = _children("Finding")
    general_info: Mapped[GeneralInfo | None] = relationship(
        back_populates="submission", cascade="all, delete-orphan", passive_deletes=True
    )
    reach_rows: Mapped[list[ReachRow]] = _children("ReachRow")
    activities: Mapped[list[Activity]] = _children("Activity")
    checklist_answers: Mapped[list[ChecklistAnswer]] = _children("ChecklistAnswer")
    # lazy="raise": confidential counts never ride along with a submission by accident; load them
    # on purpose (selectinload or a query on IncidentCount). Appending to a new submission works.
    incident_counts: Mapped[list[IncidentCount]] = _children("IncidentCount", lazy="raise")


class Decision(Base):
    """One state change of a submission; `revalidate` and `review` append, never overwrite."""

    __tablename__ = "decisions"
    __table_args__ = (
        CheckConstraint(_in("state", STATES), name="state"),
        CheckConstraint(_in("reason", DECISION_REASONS), name="reason"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str | None] = mapped_column(Text)  # operator for reviews; None for the pipeline
    contract_version: Mapped[str] = mapped_column(String(16))

    submission: Mapped[Submission] = relationship(back_populates="decisions")
    findings: Mapped[list[Finding]] = relationship(back_populates="decision", order_by="Finding.id")


class Finding(Base):
    """One validation finding, as `schemas.findings.Finding` describes it.

    For the confidential `Vụ việc` sheet `value` is NULL and `message` must be the wording without the
    value: only the school's own feedback e-mail, built in memory, may show it.
    """

    __tablename__ = "findings"
    __table_args__ = (CheckConstraint(_in("severity", SEVERITIES), name="severity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    # The decision that produced it; revalidation keeps the old findings under the old decision.
    decision_id: Mapped[int | None] = mapped_column(
        ForeignKey("decisions.id", ondelete="CASCADE"), index=True
    )
    severity: Mapped[str] = mapped_column(String(8))
    rule: Mapped[str] = mapped_column(String(48))
    sheet: Mapped[str | None] = mapped_column(Text)  # Vietnamese sheet name as the school sees it
    row: Mapped[int | None] = mapped_column(Integer)  # 1-based Excel row
    column: Mapped[str | None] = mapped_column(Text)  # Vietnamese column label
    value: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)  # the public wording (no confidential value)
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    # What a reply needs to word the finding again (`schemas.findings.render_message`): contract keys
    # and the message parameters, never a confidential cell value.
    sheet_key: Mapped[str | None] = mapped_column(String(32))
    field_key: Mapped[str | None] = mapped_column(String(48))
    params: Mapped[str | None] = mapped_column(Text)  # a JSON object; text so COPY writes it as is

    submission: Mapped[Submission] = relationship(back_populates="findings")
    decision: Mapped[Decision | None] = relationship(back_populates="findings")


# --------------------------------------------------------------------------------------------------
# Normalised sheet data, one table per sheet; columns are the contract's field keys.
# Counts are nullable so a rejected submission's readable cells can be kept for the next diff.


class GeneralInfo(Base):
    """Sheet `Thông tin chung` of one submission."""

    __tablename__ = "general_infos"

    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True
    )
    school_code: Mapped[str | None] = mapped_column(Text)  # as typed; the resolved one is on submissions
    school_name: Mapped[str | None] = mapped_column(Text)
    cycle: Mapped[str | None] = mapped_column(Text)  # as typed, e.g. "6 tháng đầu năm 2023"
    reporter: Mapped[str | None] = mapped_column(Text)
    position: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    report_date: Mapped[dt.date | None] = mapped_column(Date)
    child_protection_staff: Mapped[int | None] = mapped_column(Integer)
    trained_staff: Mapped[int | None] = mapped_column(Integer)

    submission: Mapped[Submission] = relationship(back_populates="general_info")


class ReachRow(Base):
    """One audience group of sheet `Truyền thông`."""

    __tablename__ = "reach_rows"
    __table_args__ = (UniqueConstraint("submission_id", "group"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))
    excel_row: Mapped[int | None] = mapped_column(Integer)
    group: Mapped[str] = mapped_column(String(32))  # AUDIENCE_GROUPS code
    total: Mapped[int | None] = mapped_column(Integer)
    female: Mapped[int | None] = mapped_column(Integer)
    reached: Mapped[int | None] = mapped_column(Integer)
    reached_female: Mapped[int | None] = mapped_column(Integer)

    submission: Mapped[Submission] = relationship(back_populates="reach_rows")


class Activity(Base):
    """One row of sheet `Hoạt động`; blank participant counts are stored as 0."""

    __tablename__ = "activities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    excel_row: Mapped[int | None] = mapped_column(Integer)
    seq: Mapped[int | None] = mapped_column(Integer)
    start_date: Mapped[dt.date | None] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    activity_type: Mapped[str | None] = mapped_column(String(32))  # ACTIVITY_TYPES code
    content: Mapped[str | None] = mapped_column(Text)
    documents: Mapped[str | None] = mapped_column(Text)  # ";"-separated, as typed
    format: Mapped[str | None] = mapped_column(String(16))  # ACTIVITY_FORMATS code
    staff: Mapped[int | None] = mapped_column(Integer)
    staff_female: Mapped[int | None] = mapped_column(Integer)
    students: Mapped[int | None] = mapped_column(Integer)
    students_female: Mapped[int | None] = mapped_column(Integer)
    parents: Mapped[int | None] = mapped_column(Integer)
    parents_female: Mapped[int | None] = mapped_column(Integer)

    submission: Mapped[Submission] = relationship(back_populates="activities")


class ChecklistAnswer(Base):
    """One item of sheet `Tự đánh giá`; `answer` is None when left blank (allowed outside preschools)."""

    __tablename__ = "checklist_answers"
    __table_args__ = (UniqueConstraint("submission_id", "item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))
    excel_row: Mapped[int | None] = mapped_column(Integer)
    item: Mapped[str] = mapped_column(String(32))  # CHECKLIST_ITEMS code
    answer: Mapped[bool | None] = mapped_column(Boolean)
    evidence: Mapped[str | None] = mapped_column(Text)

    submission: Mapped[Submission] = relationship(back_populates="checklist_answers")


class IncidentCount(Base):
    """One category of the CONFIDENTIAL sheet `Vụ việc`: counts only, no names, no free text.

    Kept in its own table on purpose (SPEC §8): never join it into public views, status output,
    logs, artifacts or the public rollup; only the restricted per-school file and the district
    totals (small cells suppressed) read it.
    """

    __tablename__ = "incident_counts"
    __table_args__ = (UniqueConstraint("submission_id", "category"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))
    excel_row: Mapped[int | None] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(32))  # INCIDENT_CATEGORIES code
    cases: Mapped[int | None] = mapped_column(Integer)
    children: Mapped[int | None] = mapped_column(Integer)
    children_female: Mapped[int | None] = mapped_column(Integer)
    reported: Mapped[int | None] = mapped_column(Integer)
    supported: Mapped[int | None] = mapped_column(Integer)

    submission: Mapped[Submission] = relationship(back_populates="incident_counts")


# --------------------------------------------------------------------------------------------------
# Outputs: report provenance and the mail outbox.


class ReportRun(Base):
    """One rollup build and its provenance (SPEC §5), mirrored by the `manifest.json` beside the files."""

    __tablename__ = "report_runs"
    __table_args__ = (Index("ix_report_runs_cycle_as_of", "cycle_id", "as_of"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cycle_id: Mapped[str] = mapped_column(ForeignKey("cycles.id"))
    as_of: Mapped[dt.datetime]
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]  # None while running or after a failure
    output_dir: Mapped[str | None] = mapped_column(Text)
    code_version: Mapped[str] = mapped_column(String(64))
    contract_version: Mapped[str] = mapped_column(String(16))
    manifest: Mapped[dict[str, Any] | None]
    # The exact submission versions used: [{"id": 12, "sha256": "…"}, …], sorted by id.
    submission_versions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    cycle: Mapped[Cycle] = relationship()


class OutboxMessage(Base):
    """A queued e-mail; a later run retries what could not be sent (SPEC §4)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # feedback | reminder | overdue | ops
    # Unique so the same reply (e.g. "feedback:<submission id>:<decision id>") is queued once.
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"), index=True)
    to_address: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    in_reply_to: Mapped[str | None] = mapped_column(Text)  # the school's Message-ID, to thread replies
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(index=True)  # None: still queued
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)

    attachments: Mapped[list[OutboxAttachment]] = relationship(
        back_populates="message",
        order_by="OutboxAttachment.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class OutboxAttachment(Base):
    """A file attached to a queued e-mail: its own bytes, or a stored received file by reference."""

    __tablename__ = "outbox_attachments"
    __table_args__ = (
        CheckConstraint(
            "(content IS NULL) <> (received_file_id IS NULL)", name="content_or_received_file"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    filename: Mapped[str] = mapped_column(Text)
    mime_type: Mapped[str] = mapped_column(String(128), default="application/octet-stream")
    content: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    received_file_id: Mapped[int | None] = mapped_column(ForeignKey("received_files.id"))

    message: Mapped[OutboxMessage] = relationship(back_populates="attachments")
    received_file: Mapped[ReceivedFile | None] = relationship()


# Tables that hold no confidential data; public views and exports may read only these.
CONFIDENTIAL_TABLES: frozenset[str] = frozenset({IncidentCount.__tablename__})
