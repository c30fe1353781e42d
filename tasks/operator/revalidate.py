"""Re-validation (SPEC §6): stored raw files go through the same check as new ones after a rule change.

Per batch: `load_stored` reads the stored bytes back as arrivals to read again, `check_files`
(`tasks.check.checking`, the check every source uses) parses and validates them, and
`rewrite_decisions` appends a `revalidate` decision per submission with fresh findings and sheet rows
and re-derives states. The old decisions and findings are kept; an operator's review survives: an
accepted held file stays accepted while it has no errors, a rejected one stays rejected.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.orm import Session

from config.settings import TIMEZONE, get_settings
from schemas.reference import Reference
from tasks.check.checking import Checked, check_files
from tasks.intake.folder import incoming_file
from tasks.storage.raw import RawRecord
from tasks.storage.recompute import recompute_states
from tasks.storage.rows import delete_sheet_rows
from tasks.storage.states import Decision
from tasks.storage.submissions import (
    Judged,
    insert_decisions,
    insert_results,
    judge,
    submission_values,
    write_batch,
)
from tasks.storage.tables import DECISIONS, RECEIPTS, RECEIVED_FILES, SUBMISSIONS, now


@dataclass(frozen=True)
class Targets:
    """The submissions one re-validation covers: a cycle's (or all), in arrival order."""

    cycle_id: str | None
    ids: list[int]


@dataclass(frozen=True)
class Stored:
    """A stored submission read back: its raw bytes as an arrival to read again, and what it was."""

    record: RawRecord  # source_ref "": not an arrival, nothing is recorded from it
    submission_id: int
    school_code: str | None
    cycle_id: str
    decision: str
    review: str | None  # the latest operator review's decision, if any


@dataclass
class Rewritten:
    """What one batch's rewrite did: (id, decision before, decision after), and the ids it could not write."""

    changes: list[tuple[int, str, str]] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def revalidation_targets(engine: Engine, reference: Reference, cycle_id: str | None) -> Targets:
    """Return the ids of the stored submissions of a cycle (or all); refuse a malformed cycle id."""
    query = select(SUBMISSIONS.c.id).order_by(SUBMISSIONS.c.cycle_id, SUBMISSIONS.c.received_at,
                                              SUBMISSIONS.c.id)
    if cycle_id is not None:
        cycle = reference.calendar.get(cycle_id)
        if cycle is None:
            raise ValueError(f"malformed cycle id {cycle_id!r}; expected YYYY-H1 or YYYY-H2")
        query = query.where(SUBMISSIONS.c.cycle_id == cycle.id)
        cycle_id = cycle.id
    with engine.connect() as conn:
        return Targets(cycle_id, list(conn.execute(query).scalars()))


def batches(ids: Sequence[int], size: int) -> Iterable[list[int]]:
    """Yield the ids in batches of at most `size`."""
    if size < 1:
        raise ValueError("batch_size must be at least 1")
    for start in range(0, len(ids), size):
        yield list(ids[start:start + size])


def _reviews(conn: Connection, ids: Sequence[int]) -> dict[int, str]:
    reviews: dict[int, str] = {}
    for submission_id, state in conn.execute(
        select(DECISIONS.c.submission_id, DECISIONS.c.state)
        .where(DECISIONS.c.submission_id.in_(ids), DECISIONS.c.reason == "review")
        .order_by(DECISIONS.c.id)
    ):
        reviews[submission_id] = state
    return reviews


def load_stored(engine: Engine, ids: Sequence[int]) -> list[Stored]:
    """Read submissions' raw bytes and arrival back as records for `check_files`."""
    query = (
        select(
            SUBMISSIONS.c.id, SUBMISSIONS.c.received_file_id, SUBMISSIONS.c.receipt_id,
            SUBMISSIONS.c.school_code, SUBMISSIONS.c.cycle_id, SUBMISSIONS.c.decision,
            SUBMISSIONS.c.received_at, RECEIVED_FILES.c.content,
            RECEIVED_FILES.c.original_name.label("file_name"), RECEIVED_FILES.c.source.label("file_source"),
            RECEIVED_FILES.c.sender.label("file_sender"), RECEIPTS.c.original_name.label("receipt_name"),
            RECEIPTS.c.source.label("receipt_source"), RECEIPTS.c.sender.label("receipt_sender"),
        )
        .join(RECEIVED_FILES, RECEIVED_FILES.c.id == SUBMISSIONS.c.received_file_id)
        .outerjoin(RECEIPTS, RECEIPTS.c.id == SUBMISSIONS.c.receipt_id)
        .where(SUBMISSIONS.c.id.in_(ids))
        .order_by(SUBMISSIONS.c.id)
    )
    stored = []
    with engine.connect() as conn:
        reviews = _reviews(conn, ids)
        for row in conn.execute(query):
            from_receipt = row.receipt_source is not None
            file = incoming_file(
                row.content,
                source=row.receipt_source or row.file_source,
                original_name=row.receipt_name or row.file_name,
                received_at=row.received_at.astimezone(TIMEZONE),
                source_ref="",
                sender=row.receipt_sender if from_receipt else row.file_sender,
            )
            record = RawRecord(file, row.received_file_id, row.receipt_id or 0, False, False, row.id, True)
            stored.append(Stored(record, row.id, row.school_code, row.cycle_id, row.decision,
                                 reviews.get(row.id)))
    return stored


def _with_review(entry: Judged, review: str | None) -> Judged:
    """Keep an operator's review: an accepted held file stays accepted while it has no errors."""
    if review is None or entry.decision is Decision.REJECTED:
        return entry
    if review == Decision.ACCEPTED.value:
        return Judged(entry.item, entry.findings, Decision.ACCEPTED)
    if review == Decision.REJECTED.value:
        return Judged(entry.item, entry.findings, Decision.REJECTED)  # the operator's no stands
    return entry


def _rewrite(session: Session, reference: Reference, pairs: Sequence[tuple[Stored, Checked]]
             ) -> list[tuple[int, str, str]]:
    """Record a new decision per submission with its findings and rows; return (id, before, after)."""
    conn = session.connection()
    stored = [item for item, _ in pairs]
    judged = [
        _with_review(entry, item.review)
        for entry, item in zip(judge(session, reference, [check for _, check in pairs]), stored, strict=True)
    ]
    decided_at = now()
    for entry, item in zip(judged, stored, strict=True):
        conn.execute(
            update(SUBMISSIONS)
            .where(SUBMISSIONS.c.id == item.submission_id)
            .values(**submission_values(entry, reference, decided_at), state=entry.decision.value)
        )
    ids = [item.submission_id for item in stored]
    decision_ids = insert_decisions(
        conn, [(item_id, entry.decision, "revalidate") for item_id, entry in zip(ids, judged, strict=True)],
        decided_at,
    )
    delete_sheet_rows(conn, ids)
    insert_results(conn, list(zip(ids, decision_ids, judged, strict=True)))
    touched = {(item.school_code, item.cycle_id) for item in stored}
    touched |= {(entry.item.school_code, entry.item.cycle_id) for entry in judged}
    recompute_states(conn, touched)
    return [
        (item.submission_id, item.decision, entry.decision.value)
        for item, entry in zip(stored, judged, strict=True)
    ]


def rewrite_decisions(engine: Engine, reference: Reference, stored: Sequence[Stored],
                      checked: Sequence[Checked]) -> Rewritten:
    """Record the batch's new decisions (one transaction, else one per submission)."""
    pairs = list(zip(stored, checked, strict=True))
    if not pairs:
        return Rewritten()
    done, failed = write_batch(engine, pairs, lambda session, batch: _rewrite(session, reference, batch),
                               lambda pair: f"submission {pair[0].submission_id}")
    return Rewritten([change for changes in done for change in changes],
                     [item.submission_id for item, _ in failed])


def revalidation_summary(engine: Engine, cycle_id: str | None, batches_done: Sequence[Rewritten]
                         ) -> dict[str, Any]:
    """Return counts, the submissions whose decision changed, those that failed, and the states now."""
    changes = [change for part in batches_done for change in part.changes]
    counted = select(SUBMISSIONS.c.state)
    if cycle_id is not None:
        counted = counted.where(SUBMISSIONS.c.cycle_id == cycle_id)
    with engine.connect() as conn:
        states = Counter(conn.execute(counted).scalars())
    return {
        "cycle": cycle_id,
        "revalidated": len(changes),
        "changed": [
            {"id": submission_id, "from": before, "to": after}
            for submission_id, before, after in changes
            if before != after
        ],
        "failed": [item for part in batches_done for item in part.failed],
        "states": dict(sorted(states.items())),
    }


def revalidate(
    engine: Engine,
    reference: Reference,
    cycle_id: str | None = None,
    *,
    batch_size: int = 50,
    max_bytes: int | None = None,
) -> dict[str, Any]:
    """Re-parse and re-validate stored raw files (one cycle, or all) after a rule or registry change.

    Each submission gets a new `revalidate` decision with its own findings (the old ones are kept),
    fresh sheet rows and re-derived states. Returns counts and the submissions whose decision changed.
    """
    max_bytes = max_bytes or get_settings().max_file_bytes
    targets = revalidation_targets(engine, reference, cycle_id)
    done = []
    for ids in batches(targets.ids, batch_size):
        stored = load_stored(engine, ids)
        checked = check_files([item.record for item in stored], reference, max_bytes=max_bytes)
        done.append(rewrite_decisions(engine, reference, stored, checked))
    return revalidation_summary(engine, targets.cycle_id, done)
