"""Time for the whole project: moments are aware, naive input means Asia/Ho_Chi_Minh (SPEC §8)."""

from __future__ import annotations

import datetime as dt

from config.settings import TIMEZONE


def now() -> dt.datetime:
    """Return the current moment in Asia/Ho_Chi_Minh, to the whole second."""
    # Whole seconds: a report's folder name, header and manifest all show the same moment.
    return dt.datetime.now(TIMEZONE).replace(microsecond=0)


def resolve_as_of(as_of: dt.datetime | str | None) -> dt.datetime:
    """Return `as_of` as an aware datetime (naive means Asia/Ho_Chi_Minh); now when not given."""
    if as_of is None or as_of == "":
        return now()
    moment = dt.datetime.fromisoformat(as_of) if isinstance(as_of, str) else as_of
    return moment if moment.tzinfo else moment.replace(tzinfo=TIMEZONE)
