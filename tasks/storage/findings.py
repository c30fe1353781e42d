"""Findings as the database keeps them (SPEC §3, §8): keys and parameters, plus the public wording.

A stored finding keeps what the operator needs (sheet and column as the school sees them, the public
message) and what a reply needs to word it again (sheet and field keys, the message parameters). A
confidential value is never stored: `value` is NULL and the message is rendered without it — nothing
is removed afterwards, it is simply never rendered.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from schemas.findings import Finding
from tasks.storage.states import Decision


def _params_text(finding: Finding) -> str | None:
    params = finding.storable_params()
    return json.dumps(params, ensure_ascii=False, sort_keys=True) if params else None


def finding_rows(submission_id: int, decision_id: int, findings: Iterable[Finding]) -> list[dict[str, Any]]:
    """Return the findings table rows of one decision, confidential values never rendered."""
    return [
        {
            "submission_id": submission_id,
            "decision_id": decision_id,
            "severity": str(item.severity),
            "rule": item.rule,
            "sheet": item.sheet,
            "row": item.row,
            "column": item.column,
            "value": None if item.confidential else item.value,
            "message": item.message,
            "confidential": item.confidential,
            "sheet_key": item.sheet_key,
            "field_key": item.field_key,
            "params": _params_text(item),
        }
        for item in findings
    ]


def first_message(findings: Sequence[Finding], decision: Decision) -> str | None:
    """Return the public message explaining a decision: the first error, or why it is held."""
    if decision is Decision.REJECTED:
        chosen = next((item for item in findings if item.is_error), None)
    elif decision is Decision.HELD:
        chosen = next((item for item in findings if item.rule == "unregistered_sender"), None)
    else:
        return None
    return chosen.message if chosen else None
