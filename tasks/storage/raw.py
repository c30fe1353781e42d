"""The raw store (SPEC §4): every received file's bytes once per sha256, one receipt per arrival.

`store_raw` commits before anything parses the bytes, so a crash later loses no file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select

from tasks.intake.folder import IncomingFile, safe_name
from tasks.storage.tables import RECEIPTS, RECEIVED_FILES, SUBMISSIONS


@dataclass(frozen=True)
class RawRecord:
    """One arrival after the raw store: its stored file, its receipt and what is left to do with it."""

    file: IncomingFile
    received_file_id: int
    receipt_id: int
    new_file: bool  # these bytes were not stored before
    new_receipt: bool  # this arrival was not recorded before (False on a re-run after a crash)
    submission_id: int | None  # the submission already read from these bytes, if any
    to_read: bool  # parse and store it: no submission yet, and the first arrival of its bytes here


def store_raw(engine: Engine, files: Sequence[IncomingFile]) -> list[RawRecord]:
    """Record every file's bytes (once per sha256) and arrival (once per source_ref); commit; return them."""
    if not files:
        return []
    order = sorted(range(len(files)), key=lambda index: (files[index].received_at, index))
    with engine.begin() as conn:
        shas = list(dict.fromkeys(item.sha256 for item in files))
        file_ids: dict[str, int] = dict(
            conn.execute(select(RECEIVED_FILES.c.sha256, RECEIVED_FILES.c.id).where(
                RECEIVED_FILES.c.sha256.in_(shas))).all()
        )
        new_shas: dict[str, IncomingFile] = {}
        for index in order:  # the earliest arrival of new bytes describes the stored file
            item = files[index]
            if item.sha256 not in file_ids:
                new_shas.setdefault(item.sha256, item)
        if new_shas:
            rows = [
                {
                    "sha256": item.sha256,
                    "size": item.size,
                    "content": item.content,
                    "source": item.source,
                    "original_name": item.original_name,
                    "safe_name": safe_name(item.original_name),
                    "sender": item.sender,
                    "received_at": item.received_at,
                    "message_id": item.message_id,
                }
                for item in new_shas.values()
            ]
            statement = insert(RECEIVED_FILES).returning(
                RECEIVED_FILES.c.sha256, RECEIVED_FILES.c.id, sort_by_parameter_order=True
            )
            file_ids.update(conn.execute(statement, rows).all())

        refs = list(dict.fromkeys(item.source_ref for item in files))
        receipt_ids: dict[tuple[str, str], int] = {
            (source, ref): receipt_id
            for receipt_id, source, ref in conn.execute(
                select(RECEIPTS.c.id, RECEIPTS.c.source, RECEIPTS.c.source_ref).where(
                    RECEIPTS.c.source_ref.in_(refs))
            )
        }
        known_receipts = set(receipt_ids)
        new_receipts: dict[tuple[str, str], IncomingFile] = {}
        for item in files:
            key = (item.source, item.source_ref)
            if key not in receipt_ids:
                new_receipts.setdefault(key, item)
        if new_receipts:
            rows = [
                {
                    "received_file_id": file_ids[item.sha256],
                    "source": item.source,
                    "original_name": item.original_name,
                    "sender": item.sender,
                    "received_at": item.received_at,
                    "source_ref": item.source_ref,
                }
                for item in new_receipts.values()
            ]
            statement = insert(RECEIPTS).returning(
                RECEIPTS.c.id, RECEIPTS.c.source, RECEIPTS.c.source_ref, sort_by_parameter_order=True
            )
            inserted = conn.execute(statement, rows)
            receipt_ids.update(((source, ref), receipt_id) for receipt_id, source, ref in inserted)

        submitted: dict[int, int] = {
            file_id: submission_id
            for submission_id, file_id in conn.execute(
                select(SUBMISSIONS.c.id, SUBMISSIONS.c.received_file_id).where(
                    SUBMISSIONS.c.received_file_id.in_(set(file_ids.values())))
            )
        }
    reader: dict[int, int] = {}  # received_file_id -> index of the arrival to read
    for index in order:
        file_id = file_ids[files[index].sha256]
        if file_id not in submitted:
            reader.setdefault(file_id, index)
    records = []
    for index, item in enumerate(files):
        file_id = file_ids[item.sha256]
        records.append(
            RawRecord(
                file=item,
                received_file_id=file_id,
                receipt_id=receipt_ids[(item.source, item.source_ref)],
                new_file=item.sha256 in new_shas and new_shas[item.sha256] is item,
                new_receipt=(item.source, item.source_ref) not in known_receipts,
                submission_id=submitted.get(file_id),
                to_read=reader.get(file_id) == index,
            )
        )
    return records
