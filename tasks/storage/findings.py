"""Findings as stored: confidential values removed, and the message that explains a decision."""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from schemas.contract import RULES, SHEETS
from schemas.findings import REDACTED, Finding, make_finding
from tasks.storage.states import Decision


def _message_pattern(template: str, value: str) -> re.Pattern[str] | None:
    """Return a regex matching a rule message, with each `{value}` as its own group `v0`, `v1`…

    The other fields match anything, so a row number equal to the value is never mistaken for it.
    """
    parts: list[str] = []
    seen = 0
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return None
    for literal, name, _spec, _conversion in parsed:
        parts.append(re.escape(literal))
        if name is None:
            continue
        if name == "value":
            parts.append(f"(?P<v{seen}>{re.escape(value)})")
            seen += 1
        else:
            parts.append("(?:.*?)")
    return re.compile("".join(parts), re.S) if seen else None


def redact(finding: Finding) -> Finding:
    """Return a confidential finding without its value: value None, the value masked in the message."""
    if not finding.confidential or finding.value is None:
        return finding
    message = finding.message
    pattern = _message_pattern(RULES[finding.rule].message, finding.value)
    found = pattern.fullmatch(message) if pattern else None
    if found:
        for group in sorted(found.groupdict(), key=lambda name: found.start(name), reverse=True):
            message = message[: found.start(group)] + REDACTED + message[found.end(group) :]
    elif finding.value in message:
        # The wording changed shape: re-make it from the contract without the value.
        sheet_key = next((key for key, sheet in SHEETS.items() if sheet.name == finding.sheet), None)
        message = make_finding(
            finding.rule, sheet_key, finding.row, column_label=finding.column, value=None
        ).message
    return replace(finding, value=None, message=message)


def finding_rows(submission_id: int, decision_id: int, findings: Iterable[Finding]) -> list[dict[str, Any]]:
    """Return the findings table rows of one decision, confidential values removed."""
    rows = []
    for item in findings:
        stored = redact(item)
        rows.append(
            {
                "submission_id": submission_id,
                "decision_id": decision_id,
                "severity": str(stored.severity),
                "rule": stored.rule,
                "sheet": stored.sheet,
                "row": stored.row,
                "column": stored.column,
                "value": stored.value,
                "message": stored.message,
                "confidential": stored.confidential,
            }
        )
    return rows


def first_message(findings: Sequence[Finding], decision: Decision) -> str | None:
    """Return the public message explaining a decision: the first error, or why it is held."""
    if decision is Decision.REJECTED:
        chosen = next((item for item in findings if item.is_error), None)
    elif decision is Decision.HELD:
        chosen = next((item for item in findings if item.rule == "unregistered_sender"), None)
    else:
        return None
    return redact(chosen).message if chosen else None
