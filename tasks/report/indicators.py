"""Indicator evaluation: catalog units, targets, reach sums; the verdict is `schemas.indicators.meets`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from schemas.indicators import meets
from tasks.report.wording import is_missing

if TYPE_CHECKING:
    from schemas.reference import Indicator

__all__ = [
    "direction_of", "indicator_fraction", "is_reach", "meets", "ratio", "reach_sums", "target_of", "unit_of",
]


def ratio(numerator: float, denominator: float) -> float | None:
    """Return numerator / denominator, or None for a zero denominator."""
    return None if not denominator else float(numerator) / float(denominator)


def indicator_fraction(indicator: Indicator, value: float | None) -> float | None:
    """Return a catalog figure as the report holds it: "%" values (written 50) as fractions (0.5)."""
    if is_missing(value):
        return None
    number = float(value)  # type: ignore[arg-type]
    # The catalog writes percentages in points (target: 50); the report computes fractions.
    return number / 100 if unit_of(indicator) == "%" else number


def unit_of(indicator: Indicator) -> str:
    """Return the indicator's unit, with every spelling of a percentage as "%"."""
    unit = str(getattr(indicator, "unit", "") or "").strip()
    return "%" if unit in ("%", "percent", "phần trăm", "tỷ lệ", "tỷ lệ %") else unit


def target_of(indicator: Indicator) -> float | None:
    """Return the target as the report holds it (a fraction for "%")."""
    return indicator_fraction(indicator, getattr(indicator, "target", None))


def direction_of(indicator: Indicator) -> str:
    """Return the direction the target is met in (">=" unless the catalog says otherwise)."""
    return str(getattr(indicator, "direction", ">=") or ">=")


def is_reach(indicator: Indicator) -> bool:
    """Return whether the indicator is computed from reach rows (not entered by the office)."""
    return not getattr(indicator, "manual", False) and bool(getattr(indicator, "groups", ()))


def reach_sums(reach: pd.DataFrame, groups: Iterable[str], by: Sequence[str] = ()) -> pd.DataFrame:
    """Return Σtotal, Σfemale, Σreached, Σreached_female and the rates over `groups`, grouped by `by`."""
    chosen = reach[reach["group"].isin(tuple(groups))]
    sums = ["total", "female", "reached", "reached_female"]
    if by:
        frame = chosen.groupby(list(by), sort=False)[sums].sum().reset_index()
        schools = chosen.groupby(list(by), sort=False)["school_code"].nunique().rename("schools")
        frame = frame.merge(schools.reset_index(), on=list(by), how="left")
    else:
        frame = pd.DataFrame([{**chosen[sums].sum().to_dict(), "schools": chosen["school_code"].nunique()}])
    frame[sums] = frame[sums].astype("int64")
    frame["rate"] = [ratio(r, t) for r, t in zip(frame["reached"], frame["total"], strict=True)]
    frame["female_share_reached"] = [
        ratio(f, r) for f, r in zip(frame["reached_female"], frame["reached"], strict=True)
    ]
    frame["female_share_total"] = [ratio(f, t) for f, t in zip(frame["female"], frame["total"], strict=True)]
    frame["female_rate"] = [
        ratio(rf, f) for rf, f in zip(frame["reached_female"], frame["female"], strict=True)
    ]
    return frame

