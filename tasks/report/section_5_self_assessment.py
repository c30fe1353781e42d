"""SPEC §5.5: self-assessment — share of Có per item, schools answering Không (report section 4)."""

from __future__ import annotations

import pandas as pd

from schemas.contract import CHECKLIST_ITEMS
from tasks.report.cycle_data import text_column
from tasks.report.indicators import ratio
from tasks.report.model import Column, Section, Table


def checklist_shares(checklist: pd.DataFrame) -> pd.DataFrame:
    """Return per item the schools answering, answering Có, answering Không and the share of Có."""
    rows = []
    for choice in CHECKLIST_ITEMS.choices:
        answers = checklist.loc[checklist["item"] == choice.code, "answer"]
        answered = answers[answers.notna()].map(bool)
        yes = int(answered.sum())
        rows.append(
            {
                "item": choice.code,
                "label": choice.short_label or choice.label,
                "full_label": choice.label,
                "answered": len(answered),
                "yes": yes,
                "no": len(answered) - yes,
                "yes_share": ratio(yes, len(answered)),
            }
        )
    return pd.DataFrame(rows)


def build_self_assessment_section(checklist: pd.DataFrame, schools: pd.DataFrame) -> Section:
    answered = checklist[checklist["answer"].notna()]
    answered_no = answered.loc[[not bool(answer) for answer in answered["answer"]]]
    answered_no = answered_no.merge(
        schools[["code", "name", "ward"]].rename(columns={"code": "school_code"}),
        on="school_code",
        how="left",
    )
    order = {code: i for i, code in enumerate(CHECKLIST_ITEMS.codes)}
    answered_no["_item"] = answered_no["item"].map(lambda code: order.get(code, len(order)))
    answered_no = answered_no.sort_values(["_item", "school_code"], kind="stable").drop(columns="_item")
    answered_no["label"] = answered_no["item"].map(
        lambda code: next((c.short_label or c.label for c in CHECKLIST_ITEMS.choices if c.code == code), code)
    )
    for column in ("name", "ward"):
        answered_no[column] = text_column(answered_no[column])
    tables = (
        Table(
            "bang-4-1",
            "Bảng 4.1. Kết quả tự đánh giá",
            "4.1 Tự đánh giá",
            (
                Column("full_label", "Nội dung", width=70),
                Column("answered", "Số trường trả lời", "int"),
                Column("yes", "Có", "int"),
                Column("no", "Không", "int"),
                Column("yes_share", "Tỷ lệ Có", "pct"),
            ),
            checklist_shares(checklist),
        ),
        Table(
            "bang-4-2",
            "Bảng 4.2. Danh sách trường trả lời Không",
            "4.2 Trường trả lời Không",
            (
                Column("label", "Nội dung", width=26),
                Column("school_code", "Mã trường", width=12),
                Column("name", "Tên trường", width=40),
                Column("ward", "Phường", width=12),
            ),
            answered_no.reset_index(drop=True),
            appendix=True,
        ),
    )
    return Section(4, "KẾT QUẢ TỰ ĐÁNH GIÁ", tables)
