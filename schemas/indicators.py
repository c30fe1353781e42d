"""Indicator evaluation shared by the report, the feedback e-mail and the catalog: one verdict rule."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping


def _unknown(value: object) -> bool:
    if value is None:
        return True
    try:
        return math.isnan(value)  # type: ignore[arg-type]
    except TypeError:
        return False


def meets(value: float | None, target: float | None, direction: str = ">=") -> bool | None:
    """Return whether a value meets its target in the indicator's direction; None when either is unknown."""
    if _unknown(value) or _unknown(target):
        return None
    if direction == "<=":
        return bool(value <= target)  # type: ignore[operator]
    if direction == "<":
        return bool(value < target)  # type: ignore[operator]
    if direction == ">":
        return bool(value > target)  # type: ignore[operator]
    return bool(value >= target)  # type: ignore[operator]


def reach_percent(groups: Iterable[str], reach: Mapping[str, Mapping[str, object]]) -> float | None:
    """Return Σreached / Σtotal over `groups` in percent from one school's reach rows; None without a total.

    Rows whose total or reached is not a whole number (blank, or text the school typed) are left out.
    """
    total = reached = 0
    for group in groups:
        row = reach.get(group) or {}
        if isinstance(row.get("total"), int) and isinstance(row.get("reached"), int):
            total += int(row["total"])  # type: ignore[call-overload]
            reached += int(row["reached"])  # type: ignore[call-overload]
    return 100 * reached / total if total else None
