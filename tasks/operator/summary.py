"""What one collect run did (SPEC §6): counts, problems and mail not kept, safe to log and publish."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from schemas.text import markdown_text, printable
from tasks.storage.states import State
from tasks.storage.submissions import Outcome

MARKDOWN_ROWS = 50  # rejected/held submissions listed in the run's markdown summary


class Problem(BaseModel):
    """A new submission that was rejected or held; never carries a confidential value."""

    submission_id: int
    school_code: str | None
    cycle_id: str | None
    file: str
    state: str
    error_count: int
    message: str | None


class NotKept(BaseModel):
    """A mailbox attachment that was not stored, or a message with no workbook: nothing to validate,
    so no submission, but the sender was answered and the operator should see it too."""

    message: str  # the message's reference (Message-ID, else mailbox UID)
    sender: str | None
    file: str | None  # None: the message itself had no workbook
    reason: str  # a mail_extract.SkipReason code, or "no_workbook"


class Forwarded(BaseModel):
    """A person's message without a workbook (an answer to our mail, or a question) forwarded to the
    specialist and filed for review; what it says stays in the mailbox, never in an artifact."""

    message: str  # the message's reference (mailbox UID)
    sender: str | None
    received_at: dt.datetime
    reason: str  # reply | question


class CollectSummary(BaseModel):
    """What one collect run did; safe to log and publish (no incident values)."""

    files_seen: int = 0
    new_files: int = 0  # bytes stored for the first time
    duplicates: int = 0  # new arrivals of bytes stored before (same file sent again)
    already_recorded: int = 0  # arrivals an earlier (interrupted) run recorded
    submissions: int = 0  # submissions created
    # States of the submissions created: as each batch left them, then as the run left them (refresh).
    states: dict[str, int] = Field(default_factory=dict)
    submission_ids: list[int] = Field(default_factory=list)  # created, in arrival order
    archived: int = 0
    left_in_inbox: list[str] = Field(default_factory=list)
    problems: list[Problem] = Field(default_factory=list)
    not_kept: list[NotKept] = Field(default_factory=list)
    forwarded: list[Forwarded] = Field(default_factory=list)  # to the specialist, no automatic answer

    def add(self, outcomes: Sequence[Outcome], destinations: Mapping[Path, Path | None]) -> None:
        """Add one batch's outcomes and where its files were moved."""
        self.files_seen += len(outcomes)
        counts = Counter(self.states)
        for item in outcomes:
            self.new_files += item.new_file
            self.duplicates += item.new_receipt and not item.new_file and not item.created
            self.already_recorded += not item.new_receipt
            if item.created and item.state and item.submission_id is not None:
                self.submissions += 1
                self.submission_ids.append(item.submission_id)
                counts[item.state] += 1
                if item.state in (State.REJECTED.value, State.HELD.value):
                    self.problems.append(
                        Problem(
                            submission_id=item.submission_id or 0,
                            school_code=item.school_code,
                            cycle_id=item.cycle_id,
                            file=item.original_name,
                            state=item.state,
                            error_count=item.error_count,
                            message=item.message,
                        )
                    )
            moved = destinations.get(item.path) if item.path is not None else None
            if moved is not None:
                self.archived += 1
            elif item.path is not None:
                self.left_in_inbox.append(item.original_name)
        self.states = dict(sorted(counts.items()))

    def refresh(self, states: Mapping[int, str]) -> None:
        """Count the created submissions by their state now (a later batch may have superseded some)."""
        counts = Counter(states[item] for item in self.submission_ids if item in states)
        self.states = dict(sorted(counts.items()))
        for problem in self.problems:
            problem.state = states.get(problem.submission_id, problem.state)

    def one_line(self) -> str:
        """Return the run in one log line."""
        states = ", ".join(f"{state} {count}" for state, count in self.states.items()) or "none"
        return (
            f"{self.files_seen} files seen, {self.new_files} new, {self.duplicates} duplicates, "
            f"{self.already_recorded} already recorded; {self.submissions} submissions ({states}); "
            f"{self.archived} archived, {len(self.left_in_inbox)} left in the inbox"
        )

    def problem_rows(self) -> list[dict[str, Any]]:
        """Return the rejected and held submissions as table rows (kebab-case artifact friendly)."""
        # File names and messages are typed by senders: control characters never reach the UI.
        return [{key: printable(value) if isinstance(value, str) else value
                 for key, value in problem.model_dump().items()} for problem in self.problems]

    def not_kept_rows(self) -> list[dict[str, Any]]:
        """Return the mail not kept as table rows, sender-typed text without control characters."""
        return [{key: printable(value) if isinstance(value, str) else value
                 for key, value in item.model_dump().items()} for item in self.not_kept]

    def to_markdown(self) -> str:
        """Return the run as a short markdown report for the Prefect UI."""
        lines = [
            "# Collect run",
            "",
            "| files seen | new | duplicates | already recorded | submissions | archived | left in inbox |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            f"| {self.files_seen} | {self.new_files} | {self.duplicates} | {self.already_recorded} | "
            f"{self.submissions} | {self.archived} | {len(self.left_in_inbox)} |",
            "",
            "States of the new submissions: "
            + (", ".join(f"**{state}** {count}" for state, count in self.states.items()) or "none"),
        ]
        if self.problems:
            lines += ["", "| submission | school | file | state | errors | first message |",
                      "|---:|---|---|---|---:|---|"]
            for problem in self.problems[:MARKDOWN_ROWS]:
                cells = [str(problem.submission_id), problem.school_code or "?", problem.file, problem.state,
                         str(problem.error_count), problem.message or ""]
                lines.append("| " + " | ".join(markdown_text(cell) for cell in cells) + " |")
            if len(self.problems) > MARKDOWN_ROWS:
                lines.append(f"\n… and {len(self.problems) - MARKDOWN_ROWS} more (see failed-validations).")
        if self.not_kept:
            lines += ["", "Mail with nothing stored (the sender was answered):", "",
                      "| message | sender | attachment | reason |", "|---|---|---|---|"]
            for item in self.not_kept[:MARKDOWN_ROWS]:
                cells = [item.message, item.sender or "?", item.file or "(no workbook)", item.reason]
                lines.append("| " + " | ".join(markdown_text(cell) for cell in cells) + " |")
            if len(self.not_kept) > MARKDOWN_ROWS:
                lines.append(f"\n… and {len(self.not_kept) - MARKDOWN_ROWS} more (see attachments-not-kept).")
        if self.forwarded:
            lines += ["", f"Forwarded to the specialist (no automatic answer): {len(self.forwarded)}",
                      "", "| message | sender | received | why |", "|---|---|---|---|"]
            for item in self.forwarded[:MARKDOWN_ROWS]:
                cells = [item.message, item.sender or "?", item.received_at.isoformat(timespec="minutes"),
                         item.reason]
                lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
            if len(self.forwarded) > MARKDOWN_ROWS:
                lines.append(f"\n… and {len(self.forwarded) - MARKDOWN_ROWS} more.")
        return "\n".join(lines) + "\n"
