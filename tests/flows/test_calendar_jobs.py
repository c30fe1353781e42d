"""The daily calendar run: moving a deadline in cycles.yaml moves the reminder, report and overdue runs."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path

import pytest

import flows.remind
import flows.report
from flows import calendar as daily
from flows.calendar import DueJob, due_jobs
from schemas.reference import load_reference

ROOT = Path(__file__).resolve().parents[2]


def _reference_dir(tmp_path: Path, extra_cycles: str = "") -> Path:
    target = tmp_path / "reference"
    shutil.copytree(ROOT / "reference", target)
    path = target / "cycles.yaml"
    path.write_text(path.read_text(encoding="utf-8") + extra_cycles, encoding="utf-8")
    return target


def _jobs_in(calendar_dir: Path, year: int) -> dict[dt.date, list[DueJob]]:
    calendar = load_reference(calendar_dir).calendar
    day, found = dt.date(year, 1, 1), {}
    while day.year == year:
        if jobs := due_jobs(calendar, day):
            found[day] = jobs
        day += dt.timedelta(days=1)
    return found


def test_default_rule_deadlines(tmp_path: Path) -> None:
    assert _jobs_in(_reference_dir(tmp_path), 2027) == {
        dt.date(2027, 4, 28): [DueJob("reminder", "2027-H1")],
        dt.date(2027, 5, 6): [DueJob("report", "2027-H1"), DueJob("overdue", "2027-H1")],
        dt.date(2027, 10, 29): [DueJob("reminder", "2027-H2")],
        dt.date(2027, 11, 6): [DueJob("report", "2027-H2"), DueJob("overdue", "2027-H2")],
    }


def test_moving_a_deadline_moves_the_runs(tmp_path: Path) -> None:
    moved = ("  - id: 2027-H1\n    period_start: 2027-01-01\n    period_end: 2027-04-30\n"
             "    deadline: 2027-05-12\n")
    jobs = _jobs_in(_reference_dir(tmp_path, moved), 2027)
    assert jobs[dt.date(2027, 5, 5)] == [DueJob("reminder", "2027-H1")]
    assert jobs[dt.date(2027, 5, 13)] == [DueJob("report", "2027-H1"), DueJob("overdue", "2027-H1")]
    assert dt.date(2027, 4, 28) not in jobs and dt.date(2027, 5, 6) not in jobs
    assert jobs[dt.date(2027, 11, 6)] == [DueJob("report", "2027-H2"), DueJob("overdue", "2027-H2")]


def test_a_deadline_moved_into_the_next_year_is_still_followed(tmp_path: Path) -> None:
    moved = ("  - id: 2027-H2\n    period_start: 2027-05-01\n    period_end: 2027-12-31\n"
             "    deadline: 2028-01-05\n")
    jobs = _jobs_in(_reference_dir(tmp_path, moved), 2028)
    assert jobs[dt.date(2028, 1, 6)] == [DueJob("report", "2027-H2"), DueJob("overdue", "2027-H2")]
    assert _jobs_in(_reference_dir(tmp_path / "b", moved), 2027)[dt.date(2027, 12, 29)] == [
        DueJob("reminder", "2027-H2")]


def test_the_daily_flow_runs_what_is_due_as_subflows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, dict[str, object]]] = []
    monkeypatch.setattr(flows.report, "build_cycle_report", lambda **kw: calls.append(("report", kw)))
    monkeypatch.setattr(flows.remind, "send_reminders", lambda **kw: calls.append(("remind", kw)))
    monkeypatch.setattr(daily, "get_run_logger", lambda: logging.getLogger("test"))
    monkeypatch.setenv("GEC_REFERENCE_DIR", str(_reference_dir(tmp_path)))
    from config.settings import get_settings

    get_settings.cache_clear()
    try:
        assert daily.gec_daily.fn(today=dt.date(2027, 5, 7)) == []
        assert daily.gec_daily.fn(today=dt.date(2027, 5, 6)) == ["report 2027-H1", "overdue 2027-H1"]
    finally:
        get_settings.cache_clear()
    assert calls == [("report", {"cycle": "2027-H1", "send": True}),
                     ("remind", {"cycle": "2027-H1", "kind": "overdue", "dry_run": False})]
