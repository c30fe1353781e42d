"""SPEC §5.7: data quality — submissions by state, most frequent errors (report section 6)."""

from __future__ import annotations

import pandas as pd

from schemas.contract import RULES
from tasks.report.cycle_data import SUBMISSION_STATES
from tasks.report.model import Column, Section, Table
from tasks.report.wording import SEVERITY_LABELS, SUBMISSION_STATE_LABELS, TOP_RULES


def submission_counts(submissions: pd.DataFrame) -> pd.DataFrame:
    """Return the number of submissions in each state, plus the total."""
    counts = submissions["state"].value_counts()
    rows = [
        {"state": s, "label": SUBMISSION_STATE_LABELS[s], "count": int(counts.get(s, 0))}
        for s in SUBMISSION_STATES
    ]
    rows.append({"state": "all", "label": "Tổng số tệp đã nhận", "count": len(submissions)})
    unknown = int(submissions["school_code"].isna().sum() + (submissions["school_code"] == "").sum())
    rows.append(
        {"state": "unknown_school", "label": "Trong đó: không xác định được trường", "count": unknown}
    )
    return pd.DataFrame(rows)


def frequent_rules(findings: pd.DataFrame, limit: int = TOP_RULES) -> pd.DataFrame:
    """Return the most frequent rules per severity: occurrences and submissions affected."""
    if findings.empty:
        return pd.DataFrame(columns=["severity", "severity_label", "rule", "title", "count", "submissions"])
    grouped = (
        findings.groupby(["severity", "rule"])
        .agg(count=("rule", "size"), submissions=("submission_id", "nunique"))
        .reset_index()
    )
    grouped["_severity"] = grouped["severity"].map({"error": 0, "warning": 1}).fillna(2)
    grouped = grouped.sort_values(
        ["_severity", "count", "rule"], ascending=[True, False, True], kind="stable"
    )
    grouped = grouped.groupby("severity", sort=False).head(limit).drop(columns="_severity")
    grouped["severity_label"] = grouped["severity"].map(lambda s: SEVERITY_LABELS.get(s, str(s)))
    grouped["title"] = grouped["rule"].map(lambda code: RULES[code].title if code in RULES else str(code))
    return grouped.reset_index(drop=True)


def build_quality_section(submissions: pd.DataFrame, findings: pd.DataFrame) -> Section:
    tables = (
        Table(
            "bang-6-1",
            "Bảng 6.1. Tình trạng các tệp báo cáo đã nhận",
            "6.1 Tình trạng tệp nộp",
            (
                Column("label", "Tình trạng", width=44),
                Column("count", "Số tệp", "int"),
            ),
            submission_counts(submissions),
        ),
        Table(
            "bang-6-2",
            "Bảng 6.2. Các lỗi và cảnh báo thường gặp",
            "6.2 Lỗi thường gặp",
            (
                Column("severity_label", "Mức độ", width=10),
                Column("title", "Nội dung", width=50),
                Column("rule", "Mã quy tắc", width=24),
                Column("count", "Số lần", "int"),
                Column("submissions", "Số tệp mắc", "int"),
            ),
            frequent_rules(findings),
            note=f"Tối đa {TOP_RULES} quy tắc mỗi mức độ, xếp theo số lần gặp.",
        ),
    )
    return Section(6, "CHẤT LƯỢNG SỐ LIỆU", tables)
