"""The tables intake and the operator write (SPEC §8), and the clock decisions are stamped with."""

from __future__ import annotations

import datetime as dt

from db import models

RECEIVED_FILES = models.ReceivedFile.__table__
RECEIPTS = models.FileReceipt.__table__
SUBMISSIONS = models.Submission.__table__
DECISIONS = models.Decision.__table__
FINDINGS = models.Finding.__table__
CYCLES = models.Cycle.__table__
SCHOOLS = models.School.__table__
# Normalised sheet tables by contract sheet key; incident counts live in their own table (SPEC §8).
SHEET_TABLES = {
    "general": models.GeneralInfo.__table__,
    "reach": models.ReachRow.__table__,
    "activities": models.Activity.__table__,
    "checklist": models.ChecklistAnswer.__table__,
    "incidents": models.IncidentCount.__table__,
}


def now() -> dt.datetime:
    """Return the current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)
