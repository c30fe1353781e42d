"""The cycle report (SPEC §5) as pure computations: plain data in, presentation-neutral tables out.

`CycleData` is what the database loader hands over; `build_report` turns it into a `CycleReport`
whose sections hold `Table`s (a frame of raw values plus Vietnamese column labels and kinds). The
HTML and Excel writers only format and lay out those tables, so both show the same figures.

Decisions the office should know about:
- A school is *expected* unless it is `exempt`; exempt schools are counted apart and never enter a
  rate's denominator. The completeness states partition the expected schools, so every completeness
  rate is a share of one whole and cannot exceed 100%.
- *Received* means a valid (accepted) report is in, on time or late. A school whose files were all
  rejected (`received_invalid`) or are waiting for review (`held`) is not yet received; both are
  listed with the missing schools so the specialist can chase them.
- Reach indicators (CT1, CT2, any catalog entry with `groups`) are Σreached / Σtotal over those
  audience groups of the schools' current accepted submissions (a ratio of sums, not a mean of rates).
- Public incident counts from 1 to 4 are shown as "<5"; there is no total row, so a suppressed cell
  cannot be recovered by subtraction. Public totals are frozen once per cycle at the incident cutoff
  (deadline plus a week), so two reports cannot be subtracted to reveal one school's late file.
  Per-school incident counts exist only in the restricted table.

One module per SPEC §5 section, named by its SPEC number: `section_1_header` (the unnumbered header)
through `section_8_change`; the page numbers the sections after the header from 1, so SPEC §5.2 is
the report's section 1.
"""

from __future__ import annotations

from tasks.report.cycle_data import CycleData, sorted_schools, text_column, with_counts
from tasks.report.model import CycleReport
from tasks.report.section_2_status import build_status_section
from tasks.report.section_3_indicators import build_indicators_section
from tasks.report.section_4_activities import build_activities_section
from tasks.report.section_5_self_assessment import build_self_assessment_section
from tasks.report.section_6_incidents import build_incidents_section, build_restricted_tables
from tasks.report.section_7_quality import build_quality_section
from tasks.report.section_8_change import build_change_section


def build_report(data: CycleData) -> CycleReport:
    """Compute every section of the cycle report from the cycle's data."""
    schools = sorted_schools(data.schools)
    reach = with_counts(data.reach, "reach")
    reach["group"] = text_column(reach["group"])
    reach["school_code"] = text_column(reach["school_code"])
    activities = with_counts(data.activities, "activities")
    activities["school_code"] = text_column(activities["school_code"])
    incidents = with_counts(data.incidents, "incidents")
    incidents["school_code"] = text_column(incidents["school_code"])
    general = with_counts(data.general, "general")
    published = None
    if data.published_incidents is not None:
        published = with_counts(data.published_incidents, "incidents")
        published["school_code"] = text_column(published["school_code"])
    submissions = with_counts(data.submissions, "submissions")
    checklist = data.checklist.copy()
    checklist["school_code"] = text_column(checklist["school_code"])
    checklist["answer"] = checklist["answer"].astype(object).where(checklist["answer"].notna(), None)
    general["school_code"] = text_column(general["school_code"])

    status, completeness_level = build_status_section(data, schools)
    indicators, reach_by_ward, chart_codes, chart_target = build_indicators_section(
        data, schools, reach, general
    )
    reporting = int(schools["state"].isin(("on_time", "late")).sum())
    restricted, restricted_totals = build_restricted_tables(incidents, schools)
    return CycleReport(
        cycle_id=data.cycle.id,
        cycle_label=str(getattr(data.cycle, "label_vi", "") or data.cycle.id),
        period_start=data.cycle.period_start,
        period_end=data.cycle.period_end,
        deadline=data.cycle.deadline,
        as_of=data.as_of,
        previous_cycle_id=data.previous_cycle_id or (data.previous.cycle_id if data.previous else None),
        sections=(
            status,
            indicators,
            build_activities_section(activities, reporting),
            build_self_assessment_section(checklist, schools),
            build_incidents_section(published, data.incidents_cutoff),
            build_quality_section(submissions, data.findings),
            build_change_section(data, schools, reach, activities),
        ),
        reach_by_ward=reach_by_ward,
        reach_chart_codes=chart_codes,
        reach_chart_target=chart_target,
        completeness_by_level=completeness_level,
        restricted_incidents=restricted,
        restricted_totals=restricted_totals,
    )
