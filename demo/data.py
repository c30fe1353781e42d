"""Synthetic school submissions for one cycle, with the mistakes clerks make, and the truth about them.

`generate_demo_data` writes what the drop folder would hold after a submission window: most schools
send a clean, plausible workbook on time; some send late; about a tenth send nothing; about a fifth
make mistakes (each injected so that it raises exactly the rule codes listed for it), some of them
sending a corrected file later; a few do harmless things the parser must accept silently; a few send
.xls or .ods. Each file's modification time is its received time (the folder intake reads it).

The truth file (`<out>.truth.json`, beside the folder it describes, never inside it: the drop folder
holds only what schools sent, so `collect` never stores it) records, per file, the claimed school,
received time, every rule code the file must raise (database-dependent `late`, `total_jump` and
`unregistered_sender` excluded), whether it is late and its submission state, and per expected school
its completeness state (SPEC §4).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from schemas.contract import (
    AUDIENCE_GROUPS,
    CHECKLIST,
    CHECKLIST_ITEMS,
    DATA_SHEETS,
    INCIDENT_CATEGORIES,
    INSTRUCTIONS_SHEET_NAME,
    PRESCHOOL_ONLY_ITEM,
    RULES,
    Severity,
)
from tasks.template.build import LIST_SHEET_NAME, SubmissionValues, template_file_name, template_grid
from tasks.template.writer import CellValue, Style, WorkbookGrid, write_workbook

if TYPE_CHECKING:
    from schemas.reference import Cycle, Reference, School

TRUTH_FILE = "truth.json"  # the name tests and the demo give the truth file where they keep it
TRUTH_SUFFIX = ".truth.json"
# A file name must fit the file system (255 bytes on Linux, and Vietnamese letters take 2–3 bytes each)
# and avoid characters Windows, macOS or a shell would refuse or misread.
MAX_NAME_BYTES = 180
_UNSAFE_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')
PRESCHOOL = "mam_non"
MISSING_SHARE = 0.10
MISTAKE_SHARE = 0.20
LATE_SHARE = 0.07
HARMLESS_SHARE = 0.10
OTHER_FORMAT_SHARE = 0.07  # .xls and .ods, together
# Database-dependent rules a single file cannot be judged on; truth.json leaves them out.
EXCLUDED_RULES = frozenset({"late", "total_jump", "unregistered_sender"})


# --------------------------------------------------------------------------------------------------
# Plausible values


FAMILY_NAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Võ", "Phan", "Trương", "Đặng", "Bùi", "Đỗ",
                "Hồ", "Ngô", "Dương", "Lý", "Đinh", "Lâm", "Mai")
# (middle names, given names) by sex; school staff who report are mostly women.
PERSON_NAMES = (
    (("Thị", "Thị", "Ngọc", "Thanh", "Thu", "Kim", "Mỹ", "Bích"),
     ("Lan", "Hương", "Hạnh", "Trang", "Thảo", "Hà", "Mai", "Phương", "Ngân", "Yến", "Oanh", "Nhung",
      "Hiền", "Loan", "Vân", "Thư")),
    (("Văn", "Minh", "Hoàng", "Quốc", "Thanh", "Đức"),
     ("Tuấn", "Dũng", "Hùng", "Bình", "Khoa", "Phong", "Hải", "Long")),
)
POSITIONS = ("Hiệu trưởng", "Phó Hiệu trưởng", "Phó Hiệu trưởng", "Phó Hiệu trưởng", "Giáo viên",
             "Văn thư", "Nhân viên y tế")
PHONE_PREFIXES = ("90", "91", "93", "94", "97", "98", "70", "76", "77", "78", "79", "83", "84", "85",
                  "86", "88", "89", "32", "33", "35", "36", "37", "38", "39")
DOCUMENTS = (
    "Luật Trẻ em 2016",
    "Luật Trẻ em 2016; Luật Bình đẳng giới 2006",
    "Luật Phòng, chống bạo lực gia đình 2022",
    "Luật Bình đẳng giới 2006",
    "",
    "",
)
EVIDENCE = ("Kế hoạch số {n}/KH-{abbr} ngày {d}", "Biên bản họp ngày {d}", "Sổ theo dõi năm học",
            "Quyết định số {n}/QĐ-{abbr} ngày {d}", "Bảng niêm yết tại cổng trường")

# Per activity type: sample contents, who takes part, months it is held (None: any month).
ACTIVITY_PLANS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[int, ...] | None]] = {
    "tuyen_truyen": (
        ("Tuyên truyền Luật Trẻ em và Luật Bình đẳng giới cho cán bộ, giáo viên, nhân viên trong buổi "
         "họp hội đồng sư phạm",
         "Lồng ghép tuyên truyền phòng, chống bạo lực gia đình, bạo lực trên cơ sở giới trong buổi họp "
         "cha mẹ học sinh",
         "Tuyên truyền quyền và bổn phận của trẻ em qua bảng tin và trang thông tin điện tử của trường"),
        ("staff", "parents"), None),
    "tap_huan": (
        ("Tập huấn kỹ năng phát hiện, phòng ngừa và xử lý tình huống xâm hại trẻ em cho giáo viên",
         "Bồi dưỡng chuyên đề lồng ghép giới trong hoạt động giáo dục cho giáo viên",
         "Tập huấn sơ cấp cứu, phòng ngừa tai nạn thương tích cho cán bộ, giáo viên, nhân viên"),
        ("staff",), None),
    "thang_hd_tre_em": (
        ("Hưởng ứng Tháng hành động vì trẻ em: treo băng rôn, tổ chức sân chơi an toàn cho trẻ",
         "Tổ chức các hoạt động hưởng ứng Tháng hành động vì trẻ em, tặng quà trẻ có hoàn cảnh khó khăn"),
        ("staff", "students"), (6,)),
    "trung_thu": (
        ("Tổ chức vui Tết Trung thu cho trẻ, tặng lồng đèn và quà cho trẻ có hoàn cảnh khó khăn",),
        ("staff", "students", "parents"), (9,)),
    "dien_dan_tre_em": (
        ("Diễn đàn trẻ em cấp trường: học sinh nêu ý kiến về trường học an toàn, thân thiện",
         "Tổ chức diễn đàn để học sinh đề xuất ý kiến về phòng, chống bạo lực học đường"),
        ("staff", "students"), None),
    "phong_chong_tntt": (
        ("Tuyên truyền phòng, chống đuối nước và tai nạn thương tích cho cha mẹ qua nhóm Zalo lớp",
         "Rà soát cơ sở vật chất, đồ chơi ngoài trời, phòng ngừa tai nạn thương tích cho trẻ",
         "Dạy kỹ năng an toàn khi đi bơi, khi tham gia giao thông cho học sinh"),
        ("staff", "students"), None),
    "phong_chong_bao_luc": (
        ("Chuyên đề phòng, chống bạo lực, xâm hại trẻ em cho cha mẹ học sinh",
         "Sinh hoạt dưới cờ với chủ đề phòng, chống bạo lực học đường",
         "Giáo dục kỹ năng tự bảo vệ bản thân, phòng tránh xâm hại cho học sinh"),
        ("staff", "students", "parents"), None),
    "suc_khoe_tam_than": (
        ("Tư vấn tâm lý học đường, chăm sóc sức khỏe tâm thần cho học sinh",
         "Chuyên đề nhận biết dấu hiệu căng thẳng, trầm cảm ở trẻ cho giáo viên và cha mẹ"),
        ("staff", "students", "parents"), None),
    "khac": (
        ("Phối hợp Ủy ban nhân dân phường rà soát, cập nhật thông tin trẻ em có hoàn cảnh đặc biệt",
         "Thăm hỏi, tặng quà trẻ em có hoàn cảnh khó khăn nhân dịp đầu năm"),
        ("staff",), None),
}
PARTICIPANT_FIELDS = {"staff": "staff_female", "students": "students_female", "parents": "parents_female"}

# Sizes by school level: (managers, teachers, staff, students) ranges; female shares by group.
SIZES: dict[str, tuple[tuple[int, int], ...]] = {
    "mam_non": ((2, 4), (10, 36), (4, 14), (150, 600)),
    "tieu_hoc": ((3, 5), (30, 70), (5, 15), (700, 2000)),
    "thcs": ((3, 4), (40, 85), (6, 15), (800, 2200)),
    "lien_cap": ((4, 6), (40, 95), (10, 24), (600, 1900)),
    "khac": ((2, 4), (8, 30), (4, 10), (100, 450)),
}
FEMALE_SHARES: dict[str, dict[str, tuple[float, float]]] = {
    "mam_non": {"quan_ly": (0.9, 1.0), "giao_vien": (0.95, 1.0), "nhan_vien": (0.5, 0.8)},
    "tieu_hoc": {"quan_ly": (0.5, 0.9), "giao_vien": (0.78, 0.92), "nhan_vien": (0.5, 0.8)},
    "thcs": {"quan_ly": (0.4, 0.8), "giao_vien": (0.62, 0.8), "nhan_vien": (0.5, 0.8)},
}
COMMON_SHARES = {"hoc_sinh": (0.46, 0.51), "phu_huynh": (0.55, 0.75), "cong_tac_vien": (0.6, 0.9)}


def _person(rng: random.Random) -> str:
    middle, given = PERSON_NAMES[0] if rng.random() < 0.8 else PERSON_NAMES[1]
    return f"{rng.choice(FAMILY_NAMES)} {rng.choice(middle)} {rng.choice(given)}"


def _phone(rng: random.Random) -> str:
    digits = f"0{rng.choice(PHONE_PREFIXES)}{rng.randrange(10**7):07d}"
    return f"{digits[:4]} {digits[4:7]} {digits[7:]}"


def _abbreviation(school: School) -> str:
    return {"mam_non": "MN", "tieu_hoc": "TH", "thcs": "THCS"}.get(school.level, "TR")


def _share_count(rng: random.Random, total: int, low: float, high: float) -> int:
    return max(0, min(total, round(total * rng.uniform(low, high))))


def _reach_row(rng: random.Random, code: str, total: int, female_share: tuple[float, float]) -> dict:
    """Return one audience row: reach strictly between 0% and 100%, female reach consistent."""
    female = _share_count(rng, total, *female_share)
    reached = min(total - 1, max(1, round(total * rng.uniform(0.40, 0.95))))
    reached_female = round(reached * female / total * rng.uniform(0.92, 1.06))
    reached_female = max(0, min(reached_female, reached, female))
    return {"group": code, "total": total, "female": female, "reached": reached,
            "reached_female": reached_female}


def _reach_rows(school: School, seed: int, cycle: Cycle) -> list[dict]:
    # Sizes are the school's own (stable across cycles, so consecutive reports stay within ±30%);
    # each cycle moves them a little.
    base = random.Random(f"{seed}:size:{school.code}")
    jitter = random.Random(f"{seed}:jitter:{cycle.id}:{school.code}")
    ranges = SIZES.get(school.level, SIZES["khac"])
    managers, teachers, staff, students = (base.randint(*span) for span in ranges)
    parents = round(students * base.uniform(0.85, 1.25))
    helpers = base.randint(2, 8)

    def moved(value: int, small: bool = False) -> int:
        return max(2, value if small else round(value * jitter.uniform(0.95, 1.05)))

    shares = {**FEMALE_SHARES.get(school.level, FEMALE_SHARES["tieu_hoc"]), **COMMON_SHARES}
    totals = {
        "quan_ly": moved(managers, small=True),
        "giao_vien": moved(teachers),
        "nhan_vien": moved(staff),
        "hoc_sinh": moved(students),
        "phu_huynh": moved(parents),
        "cong_tac_vien": moved(helpers, small=True),
    }
    return [_reach_row(jitter, code, totals[code], shares[code]) for code in AUDIENCE_GROUPS.codes]


def _activity_dates(
    rng: random.Random, cycle: Cycle, months: tuple[int, ...] | None
) -> tuple[dt.date, dt.date]:
    days = [
        cycle.period_start + dt.timedelta(days=offset)
        for offset in range((cycle.period_end - cycle.period_start).days - 2)
    ]
    if months:
        days = [day for day in days if day.month in months] or days
    start = rng.choice(days)
    end = min(cycle.period_end, start + dt.timedelta(days=rng.choice((0, 0, 0, 1, 2))))
    return start, end


def _activity(rng: random.Random, school: School, cycle: Cycle, kind: str, reach: dict[str, dict]) -> dict:
    contents, who, months = ACTIVITY_PLANS[kind]
    start, end = _activity_dates(rng, cycle, months)
    row: dict[str, CellValue] = {
        "start_date": start,
        "end_date": end if rng.random() < 0.8 else None,
        "activity_type": kind,
        "content": rng.choice(contents),
        "documents": rng.choice(DOCUMENTS) or None,
        "format": rng.choices(("truc_tiep", "truc_tuyen", "ket_hop"), weights=(7, 2, 1))[0],
    }
    staff_total = sum(reach[g]["total"] for g in ("quan_ly", "giao_vien", "nhan_vien"))
    staff_female = sum(reach[g]["female"] for g in ("quan_ly", "giao_vien", "nhan_vien"))
    pools = {
        "staff": (staff_total, staff_female),
        "students": (reach["hoc_sinh"]["total"], reach["hoc_sinh"]["female"]),
        "parents": (reach["phu_huynh"]["total"], reach["phu_huynh"]["female"]),
    }
    for group, female_key in PARTICIPANT_FIELDS.items():
        if group in who:
            total, female = pools[group]
            count = max(1, round(total * rng.uniform(0.15, 0.9)))
            row[group] = count
            row[female_key] = min(count, round(count * female / max(total, 1)))
        elif rng.random() < 0.5:
            # Clerks leave the other groups blank or type 0; both mean nobody.
            row[group], row[female_key] = 0, 0
    return row


def _activities(rng: random.Random, school: School, cycle: Cycle, reach: dict[str, dict]) -> list[dict]:
    kinds = [
        kind for kind, (_, _, months) in ACTIVITY_PLANS.items()
        if months is None or any(cycle.period_start.month <= m <= cycle.period_end.month for m in months)
    ]
    if school.level == PRESCHOOL:
        kinds = [kind for kind in kinds if kind != "dien_dan_tre_em"]
    chosen = [_activity(rng, school, cycle, kind, reach) for kind in rng.sample(kinds, rng.randint(2, 6))]
    chosen.sort(key=lambda row: row["start_date"])
    for number, row in enumerate(chosen, start=1):
        row["seq"] = number
    return chosen


def _checklist(rng: random.Random, school: School, cycle: Cycle) -> list[dict]:
    rows = []
    for code in CHECKLIST_ITEMS.codes:
        no_chance = 0.4 if code == "ban_giao_he" and cycle.period_end.month < 6 else 0.07
        answer: CellValue = rng.random() >= no_chance
        if code == PRESCHOOL_ONLY_ITEM and school.level != PRESCHOOL and rng.random() < 0.3:
            answer = None  # may be blank outside preschools
        evidence = None
        if answer is True and rng.random() < 0.35:
            day = cycle.period_start - dt.timedelta(days=rng.randint(20, 120))
            evidence = rng.choice(EVIDENCE).format(
                n=rng.randint(5, 120), abbr=_abbreviation(school), d=f"{day.day}/{day.month}/{day.year}"
            )
        rows.append({"item": code, "answer": answer, "evidence": evidence})
    return rows


def _incidents(rng: random.Random, school: School) -> list[dict]:
    chances = {"tai_nan_thuong_tich": 0.25, "bao_luc_hoc_duong": 0.0 if school.level == PRESCHOOL else 0.12}
    blank_zero = rng.random() < 0.3
    rows = []
    for code in INCIDENT_CATEGORIES.codes:
        if rng.random() < chances.get(code, 0.03):
            cases = rng.choice((1, 1, 1, 2))
            children = cases + (1 if rng.random() < 0.2 else 0)
            rows.append({
                "category": code, "cases": cases, "children": children,
                "children_female": rng.randint(0, children),
                "reported": rng.randint(0, cases), "supported": rng.randint(0, cases),
            })
        elif blank_zero:
            rows.append({"category": code})  # blank incident counts mean 0
        else:
            rows.append({"category": code, "cases": 0, "children": 0, "children_female": 0,
                         "reported": 0, "supported": 0})
    return rows


def school_values(
    school: School, cycle: Cycle, seed: int = 2023, *, report_date: dt.date | None = None
) -> SubmissionValues:
    """Return clean, plausible values a school's clerk would type for a cycle (deterministic)."""
    rng = random.Random(f"{seed}:values:{cycle.id}:{school.code}")
    reach_rows = _reach_rows(school, seed, cycle)
    reach = {row["group"]: row for row in reach_rows}
    child_staff = rng.randint(1, 4)
    general: dict[str, CellValue] = {
        "reporter": _person(rng),
        "position": rng.choice(POSITIONS),
        "phone": _phone(rng),
        "email": school.emails[0] if school.emails else None,
        "report_date": report_date or cycle.period_end + dt.timedelta(days=2),
        "child_protection_staff": child_staff,
        "trained_staff": child_staff if rng.random() < 0.6 else rng.randint(0, child_staff),
    }
    return SubmissionValues(
        general=general,
        rows={
            "reach": reach_rows,
            "activities": _activities(rng, school, cycle, reach),
            "checklist": _checklist(rng, school, cycle),
            "incidents": _incidents(rng, school),
        },
    )


# --------------------------------------------------------------------------------------------------
# Mistakes and harmless quirks. Each mutates a draft and names the rule codes it must raise.


@dataclass
class _Draft:
    school: School
    cycle: Cycle
    values: SubmissionValues
    rng: random.Random
    typo_code: str  # a code this school's clerk might mistype, unknown to the registry
    edits: list[Callable[[WorkbookGrid], None]] = field(default_factory=list)
    known_school: bool = True

    def row(self, sheet: str, code: str) -> dict:
        field_key = {"reach": "group", "checklist": "item", "incidents": "category"}[sheet]
        return next(r for r in self.values.rows[sheet] if r.get(field_key) == code)

    @property
    def activities(self) -> list[dict]:
        return self.values.rows["activities"]


@dataclass(frozen=True)
class _Quirk:
    name: str
    rules: frozenset[str]
    apply: Callable[[_Draft], None]
    eligible: Callable[[School], bool] = lambda school: True


def _female_gt_total(draft: _Draft) -> None:
    if draft.rng.random() < 0.5:
        row = draft.row("reach", "giao_vien")
        # Raising female keeps reached_female <= female true: only female_gt_total breaks.
        row["female"] = row["total"] + draft.rng.randint(1, 3)
    else:
        row = draft.activities[0]
        row["staff"] = row.get("staff") or 12
        row["staff_female"] = row["staff"] + draft.rng.randint(1, 5)


def _reached_gt_total(draft: _Draft) -> None:
    # A group under 10 people: reach above 100% there cannot also count as an extreme reach.
    row = draft.row("reach", "quan_ly")
    row["reached"] = row["total"] + draft.rng.randint(1, 3)


def _reached_female_gt_reached(draft: _Draft) -> None:
    row = draft.row("reach", "phu_huynh")
    total = row["total"]
    row["reached"] = round(total * 0.45)
    row["female"] = max(row["female"], row["reached"] + 3)
    row["reached_female"] = row["reached"] + 1


def _reached_female_gt_female(draft: _Draft) -> None:
    row = draft.row("reach", "hoc_sinh")
    total = row["total"]
    row["female"] = round(total * 0.48)
    row["reached"] = round(total * 0.85)
    row["reached_female"] = row["female"] + draft.rng.randint(1, 5)


def _trained_gt_staff(draft: _Draft) -> None:
    general = draft.values.general
    general["trained_staff"] = int(general["child_protection_staff"]) + draft.rng.randint(1, 3)


def _not_integer(draft: _Draft) -> None:
    variant = draft.rng.randrange(3)
    if variant == 0:
        row = draft.activities[0]
        row["staff"], row["staff_female"] = "mười", None  # typed in words
    elif variant == 1:
        row = draft.activities[-1]
        row["parents"] = row.get("parents") or 30
        row["parents_female"] = -3
    else:
        draft.row("reach", "cong_tac_vien")["total"] = "khoảng 5"


def _missing_value(draft: _Draft) -> None:
    if draft.rng.random() < 0.5:
        draft.row("checklist", "long_ghep_gioi")["answer"] = None
    else:
        draft.row("reach", "cong_tac_vien")["reached_female"] = None


def _bad_activity_type(draft: _Draft) -> None:
    draft.activities[-1]["activity_type"] = "Sinh hoạt dưới cờ"


def _bad_format(draft: _Draft) -> None:
    draft.activities[0]["format"] = "Tại hội trường"


def _missing_start_date(draft: _Draft) -> None:
    row = draft.activities[-1]
    row["start_date"], row["end_date"] = None, None


def _missing_content(draft: _Draft) -> None:
    row = draft.activities[0]
    row["content"] = None
    row["documents"] = row.get("documents") or "Luật Trẻ em 2016"


LONG_CONTENT = (
    "Thực hiện kế hoạch của Phòng Giáo dục và Đào tạo về công tác bình đẳng giới và trẻ em, nhà trường "
    "đã tổ chức buổi sinh hoạt chuyên đề cho toàn thể cán bộ, giáo viên, nhân viên. Nội dung gồm: phổ "
    "biến các văn bản pháp luật về quyền trẻ em và bình đẳng giới; hướng dẫn nhận biết các dấu hiệu trẻ "
    "bị bạo lực, xâm hại; quy trình tiếp nhận, xử lý và báo cáo khi phát hiện vụ việc; giới thiệu Tổng "
    "đài 111. Sau buổi sinh hoạt, các tổ chuyên môn thảo luận, thống nhất cách lồng ghép nội dung vào "
    "hoạt động giáo dục hằng ngày, xây dựng góc tuyên truyền tại mỗi lớp và phân công giáo viên theo dõi, "
    "hỗ trợ các trẻ có hoàn cảnh khó khăn. Ban giám hiệu sẽ kiểm tra việc thực hiện vào cuối học kỳ."
)


def _content_too_long(draft: _Draft) -> None:
    assert len(LONG_CONTENT) > 500
    draft.activities[0]["content"] = LONG_CONTENT


def _end_before_start(draft: _Draft) -> None:
    row = draft.activities[0]
    start = draft.cycle.period_start + dt.timedelta(days=draft.rng.randint(12, 40))
    row["start_date"] = start
    row["end_date"] = start - dt.timedelta(days=draft.rng.randint(1, 5))  # still inside the period


def _bad_yes_no(draft: _Draft) -> None:
    draft.row("checklist", "du_lieu_tre_em")["answer"] = "Đang thực hiện"


def _self_inspection_required(draft: _Draft) -> None:
    draft.row("checklist", PRESCHOOL_ONLY_ITEM)["answer"] = None


def _set_incident(draft: _Draft, code: str, **counts: int) -> None:
    row = draft.row("incidents", code)
    row.clear()
    row.update({"category": code, "cases": 0, "children": 0, "children_female": 0, "reported": 0,
                "supported": 0, **counts})


def _reported_gt_cases(draft: _Draft) -> None:
    _set_incident(draft, "bao_luc", cases=1, children=1, children_female=1, reported=2, supported=1)


def _supported_gt_cases(draft: _Draft) -> None:
    _set_incident(draft, "tai_nan_thuong_tich", cases=2, children=2, reported=1, supported=3)


def _children_cases_mismatch(draft: _Draft) -> None:
    _set_incident(draft, "bao_luc_hoc_duong", cases=1, children=0, reported=1, supported=1)


def _unknown_school(draft: _Draft) -> None:
    draft.values.general["school_code"] = draft.typo_code
    draft.known_school = False


def _unknown_cycle(draft: _Draft) -> None:
    draft.values.general["cycle"] = "Học kỳ II"


def _missing_sheet(draft: _Draft) -> None:
    def rename(grid: WorkbookGrid) -> None:
        grid.sheet("activities").name = "Hoạt động 6 tháng"

    draft.edits.append(rename)


def _missing_column(draft: _Draft) -> None:
    def drop(grid: WorkbookGrid) -> None:
        sheet = grid.sheet("reach")
        sheet.delete_column(sheet.field_columns["reached"])

    draft.edits.append(drop)


def _extra_column(draft: _Draft) -> None:
    count = len(draft.activities)
    notes = ["Có hình ảnh kèm theo", "Phối hợp Hội Phụ nữ phường", "", "Đã báo cáo Phòng"]

    def add(grid: WorkbookGrid) -> None:
        sheet = grid.sheet("activities")
        column = len(sheet.field_columns)
        sheet.set(sheet.header_row, column, "Ghi chú", Style.HEADER)
        sheet.widths[column] = 24
        for offset in range(count):
            note = notes[offset % len(notes)]
            sheet.set(sheet.header_row + 1 + offset, column, note or None, Style.INPUT)

    draft.edits.append(add)


def _date_outside_period(draft: _Draft) -> None:
    # An activity of the previous cycle copied into this report.
    start = draft.cycle.period_start - dt.timedelta(days=41)
    gender_month = start.month in (11, 12)  # 15 November - 15 December
    draft.activities.insert(0, {
        "seq": 0,
        "start_date": start,
        "end_date": start + dt.timedelta(days=1),
        "activity_type": "thang_hd_bdg" if gender_month else "tuyen_truyen",
        "content": "Hưởng ứng Tháng hành động vì bình đẳng giới và phòng ngừa, ứng phó với bạo lực trên "
                   "cơ sở giới" if gender_month else "Tuyên truyền Luật Bình đẳng giới cho cha mẹ học sinh",
        "format": "truc_tiep",
        "staff": 20,
        "staff_female": 17,
    })
    for number, row in enumerate(draft.activities, start=1):
        row["seq"] = number


def _reach_extreme(draft: _Draft) -> None:
    # "All pupils were reached": a group of well over 10 people at exactly 100%.
    row = draft.row("reach", "hoc_sinh")
    row["reached"], row["reached_female"] = row["total"], row["female"]


def _is_preschool(school: School) -> bool:
    return school.level == PRESCHOOL


def _rules(*codes: str) -> frozenset[str]:
    unknown = set(codes) - set(RULES)
    assert not unknown, unknown
    return frozenset(codes)


MISTAKES: tuple[_Quirk, ...] = (
    _Quirk("female_gt_total", _rules("female_gt_total"), _female_gt_total),
    _Quirk("reached_gt_total", _rules("reached_gt_total"), _reached_gt_total),
    _Quirk("not_integer", _rules("not_integer"), _not_integer),
    _Quirk("missing_value", _rules("missing_value"), _missing_value),
    _Quirk("bad_activity_type", _rules("bad_activity_type"), _bad_activity_type),
    _Quirk("self_inspection_required", _rules("self_inspection_required"), _self_inspection_required,
           _is_preschool),
    _Quirk("unknown_school", _rules("unknown_school"), _unknown_school),
    _Quirk("end_before_start", _rules("end_before_start"), _end_before_start),
    _Quirk("reached_female_gt_female", _rules("reached_female_gt_female"), _reached_female_gt_female),
    _Quirk("trained_gt_staff", _rules("trained_gt_staff"), _trained_gt_staff),
    _Quirk("missing_sheet", _rules("missing_sheet"), _missing_sheet),
    _Quirk("bad_yes_no", _rules("bad_yes_no"), _bad_yes_no),
    _Quirk("unknown_cycle", _rules("unknown_cycle"), _unknown_cycle),
    _Quirk("reported_gt_cases", _rules("reported_gt_cases"), _reported_gt_cases),
    _Quirk("children_cases_mismatch", _rules("children_cases_mismatch"), _children_cases_mismatch),
    _Quirk("missing_column", _rules("missing_column"), _missing_column),
    _Quirk("bad_format", _rules("bad_format"), _bad_format),
    _Quirk("missing_start_date", _rules("missing_start_date"), _missing_start_date),
    _Quirk("missing_content", _rules("missing_content"), _missing_content),
    _Quirk("content_too_long", _rules("content_too_long"), _content_too_long),
    _Quirk("supported_gt_cases", _rules("supported_gt_cases"), _supported_gt_cases),
    _Quirk("reached_female_gt_reached", _rules("reached_female_gt_reached"), _reached_female_gt_reached),
    # Warnings only: accepted, flagged.
    _Quirk("date_outside_period", _rules("date_outside_period"), _date_outside_period),
    _Quirk("reach_extreme", _rules("reach_extreme"), _reach_extreme),
    _Quirk("extra_column_dropped", _rules("extra_column_dropped"), _extra_column),
    # Two slips in one file.
    _Quirk("female_gt_total+missing_content", _rules("female_gt_total", "missing_content"),
           lambda d: (_female_gt_total(d), _missing_content(d))),
    _Quirk("bad_activity_type+extra_column_dropped", _rules("bad_activity_type", "extra_column_dropped"),
           lambda d: (_bad_activity_type(d), _extra_column(d))),
    _Quirk("not_integer+reach_extreme", _rules("not_integer", "reach_extreme"),
           lambda d: (_not_integer(d), _reach_extreme(d))),
)


def _thousands(draft: _Draft) -> None:
    # Counts typed as text: "1.250" with the Vietnamese thousands separator, smaller ones as "450".
    for sheet in ("reach", "activities"):
        for row in draft.values.rows[sheet]:
            for key, value in row.items():
                if isinstance(value, int) and not isinstance(value, bool) and value >= 100:
                    row[key] = f"{value:,}".replace(",", ".")


def _has_thousands(school: School) -> bool:
    return school.level != PRESCHOOL and school.level != "khac"


def _x_for_yes(draft: _Draft) -> None:
    for row in draft.values.rows["checklist"]:
        if row["answer"] is True:
            row["answer"] = "x"
        elif row["answer"] is False:
            row["answer"] = "không"


def _cycle_in_words(draft: _Draft) -> None:
    draft.values.general["cycle"] = draft.cycle.label_vi


def _nfd(draft: _Draft) -> None:
    # Saved on a Mac: every text in decomposed form, sheet names included.
    draft.edits.append(lambda grid: grid.map_text(lambda text: unicodedata.normalize("NFD", text)))


def _dates_as_text(draft: _Draft) -> None:
    styles = (lambda d: d.strftime("%d/%m/%Y"), lambda d: f"{d.day}/{d.month}/{d.year}", dt.date.isoformat)
    for number, row in enumerate(draft.activities):
        for key in ("start_date", "end_date"):
            if isinstance(row.get(key), dt.date):
                row[key] = styles[number % len(styles)](row[key])
    report = draft.values.general.get("report_date")
    if isinstance(report, dt.date):
        draft.values.general["report_date"] = report.strftime("%d/%m/%Y")


def _not_preschool(school: School) -> bool:
    return school.level != PRESCHOOL


def _blank_self_inspection(draft: _Draft) -> None:
    draft.row("checklist", PRESCHOOL_ONLY_ITEM)["answer"] = None


def _hand_made(draft: _Draft) -> None:
    # Sheets copied into a new workbook: no instructions, no lists, no _meta, no drop-downs.
    def strip(grid: WorkbookGrid) -> None:
        grid.sheets = [s for s in grid.sheets if s.name not in (INSTRUCTIONS_SHEET_NAME, LIST_SHEET_NAME)]
        grid.remove("meta")
        for sheet in grid.sheets:
            sheet.validations.clear()
            sheet.protected = False

    draft.edits.append(strip)


def _old_template(draft: _Draft) -> None:
    draft.values.meta["template_version"] = "2022.2"


def _plain_labels(draft: _Draft) -> None:
    # Typed on a machine without a Vietnamese keyboard: unaccented sheet names, upper-case headers,
    # short checklist labels.
    def edit(grid: WorkbookGrid) -> None:
        for sheet in grid.sheets:
            if sheet.key in {s.key for s in DATA_SHEETS}:
                sheet.name = _unaccented(sheet.name)
            if sheet.header_row is not None:
                for (row, _column), cell in sheet.cells.items():
                    if row == sheet.header_row and isinstance(cell.value, str):
                        cell.value = cell.value.upper()
        checklist = grid.sheet(CHECKLIST.key)
        column = checklist.field_columns["item"]
        for choice in CHECKLIST_ITEMS.choices:
            checklist.set(checklist.row_index[choice.code], column, choice.short_label)

    draft.edits.append(edit)


def _unaccented(text: str) -> str:
    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))


HARMLESS: tuple[_Quirk, ...] = (
    _Quirk("thousands_separators", frozenset(), _thousands, _has_thousands),
    _Quirk("x_for_yes", frozenset(), _x_for_yes),
    _Quirk("cycle_in_words", frozenset(), _cycle_in_words),
    _Quirk("nfd_text", frozenset(), _nfd),
    _Quirk("dates_as_text", frozenset(), _dates_as_text),
    _Quirk("blank_self_inspection_outside_preschool", frozenset(), _blank_self_inspection, _not_preschool),
    _Quirk("hand_made_copy", frozenset(), _hand_made),
    _Quirk("old_template_version", frozenset(), _old_template),
    _Quirk("plain_labels", frozenset(), _plain_labels),
)


def _is_error(code: str) -> bool:
    return RULES[code].severity is Severity.ERROR


# --------------------------------------------------------------------------------------------------
# Who sends what, when


@dataclass
class _Plan:
    """One file to write: whose, when, with which quirks."""

    school: School
    received_at: dt.datetime
    quirks: tuple[_Quirk, ...] = ()
    file_format: str = "xlsx"
    revision: int = 0  # 0 first file; resubmissions count up
    name: str = ""
    expect_rules: frozenset[str] = frozenset()
    school_code: str | None = None

    @property
    def rejected(self) -> bool:
        return any(_is_error(code) for code in self.expect_rules)


class _Clock:
    """Received times inside the window (the last week of the period to the deadline) or after it."""

    def __init__(self, cycle: Cycle, rng: random.Random) -> None:
        self.rng = rng
        self.deadline_end = cycle.deadline_end
        tz = cycle.deadline_end.tzinfo
        self.opens = dt.datetime.combine(cycle.period_end - dt.timedelta(days=7), dt.time(7), tzinfo=tz)

    def _office_hours(self, moment: dt.datetime, earliest: dt.datetime, latest: dt.datetime) -> dt.datetime:
        # Clerks send between 07:00 and 22:00, but never outside [earliest, latest].
        if not 7 <= moment.hour < 22:
            moment = moment.replace(hour=self.rng.randint(7, 21))
        return max(earliest, min(moment, latest)).replace(microsecond=0)

    def on_time(self, after: dt.datetime | None = None) -> dt.datetime:
        """A moment before the deadline (after `after`); late when no time is left before it."""
        start = max(self.opens, after + dt.timedelta(hours=1)) if after else self.opens
        latest = self.deadline_end - dt.timedelta(minutes=1)
        span = (latest - start).total_seconds()
        if span < 3600:
            return self.late(after)
        # Most reports arrive in the last days before the deadline.
        offset = self.rng.triangular(0, span, span * 0.85)
        return self._office_hours(start + dt.timedelta(seconds=offset), start, latest)

    def late(self, after: dt.datetime | None = None) -> dt.datetime:
        """A moment from 08:00 the day after the deadline to ten days later (after `after`)."""
        start = max(self.deadline_end + dt.timedelta(hours=8), (after or self.opens) + dt.timedelta(hours=1))
        moment = start + dt.timedelta(seconds=self.rng.uniform(0, 10 * 86400))
        return self._office_hours(moment, start, moment + dt.timedelta(days=1))

    def before_period_end(self, period_end: dt.date) -> dt.datetime:
        """A moment both inside the period's last week and before the deadline (cycle unambiguous)."""
        end = dt.datetime.combine(period_end, dt.time(20), tzinfo=self.opens.tzinfo)
        offset = self.rng.uniform(0, (end - self.opens).total_seconds())
        return self._office_hours(self.opens + dt.timedelta(seconds=offset), self.opens, end)


def _typo_code(reference: Reference, school: School) -> str:
    """Return a code a clerk might type for this school that the registry does not know."""
    match = re.match(r"^([A-Z]+)(\d+)$", school.code)
    candidates = []
    if match:
        prefix, digits = match.groups()
        candidates += [prefix + digits[::-1], prefix + digits + "1", prefix + str(int(digits) + 500)]
    candidates += [school.code + "X", "TR" + school.code]
    return next(code for code in candidates if reference.school(code) is None and code != school.code)


def _assign(reference: Reference, cycle: Cycle, rng: random.Random) -> tuple[list[_Plan], list[School]]:
    """Decide every school's files; return the plans and the schools that send nothing."""
    expected = reference.expected_schools(cycle.id)
    reporting = [school for school in expected if not reference.is_exempt(school, cycle.id)]
    pool = list(reporting)
    rng.shuffle(pool)
    clock = _Clock(cycle, rng)
    plans: list[_Plan] = []

    def take(eligible: Callable[[School], bool] = lambda school: True) -> School | None:
        for index, school in enumerate(pool):
            if eligible(school):
                return pool.pop(index)
        return None

    count = len(reporting)
    missing = [take() for _ in range(round(count * MISSING_SHARE))]
    missing = [school for school in missing if school is not None]

    # Mistakes: every kind at least once while schools last, then again from the top, to ~20%.
    mistake_count = max(len(MISTAKES), round(count * MISTAKE_SHARE))
    kinds = [MISTAKES[i % len(MISTAKES)] for i in range(mistake_count)]
    for number, quirk in enumerate(kinds):
        school = take(quirk.eligible)
        if school is None:
            continue
        first = _Plan(school, clock.on_time(), (quirk,))
        if quirk.name == "unknown_cycle":
            # Its cycle is read from when it arrived: keep it inside the period's last week.
            first.received_at = clock.before_period_end(cycle.period_end)
        plans.append(first)
        if not any(_is_error(code) for code in quirk.rules):
            continue
        # About half the rejected schools send a corrected file, a third of those after the deadline;
        # a clerk who typed an unknown code always does (the office phones them).
        if quirk.name == "unknown_school" or number % 2 == 0:
            late = number % 6 == 4
            fixed_at = clock.late(first.received_at) if late else clock.on_time(first.received_at)
            plans.append(_Plan(school, fixed_at, (), revision=1))

    for _ in range(round(count * LATE_SHARE)):
        school = take()
        if school is not None:
            plans.append(_Plan(school, clock.late()))

    # Accepted on time, then corrected: twice before the deadline, three times after it.
    for late in (False, False, True, True, True):
        school = take()
        if school is None:
            continue
        first = _Plan(school, clock.on_time())
        plans.append(first)
        second_at = clock.late(first.received_at) if late else clock.on_time(first.received_at)
        plans.append(_Plan(school, second_at, (), revision=1))

    harmless_count = max(len(HARMLESS), round(count * HARMLESS_SHARE))
    for index in range(harmless_count):
        quirk = HARMLESS[index % len(HARMLESS)]
        school = take(quirk.eligible)
        if school is not None:
            plans.append(_Plan(school, clock.on_time(), (quirk,)))

    for school in list(pool):
        plans.append(_Plan(school, clock.on_time()))
    pool.clear()
    return plans, missing


def _choose_formats(plans: list[_Plan], rng: random.Random) -> None:
    """Write OTHER_FORMAT_SHARE of the files as .xls or .ods, at least two of each."""
    wanted = max(4, round(len(plans) * OTHER_FORMAT_SHARE))
    for number, index in enumerate(sorted(rng.sample(range(len(plans)), min(wanted, len(plans))))):
        plans[index].file_format = "ods" if number % 2 == 0 else "xls"


# --------------------------------------------------------------------------------------------------
# File names clerks give


def _short_name(school: School) -> str:
    name = school.name
    for long, short in (("Trường Mầm non ", "MN "), ("Trường Tiểu học ", "TH "), ("Trường THCS ", "THCS ")):
        if name.startswith(long):
            return short + name[len(long):]
    return name.removeprefix("Trường ")


def _file_stem(school: School, cycle: Cycle, rng: random.Random, counter: list[int]) -> str:
    year = cycle.period_start.year
    half = "đầu" if cycle.period_end.month <= 6 else "cuối"
    short = _short_name(school)
    semester = 2 if half == "đầu" else 1  # January-April falls in the school year's second semester
    patterns: list[Callable[[], str]] = [
        lambda: f"Báo cáo BĐG-TE 6T {half} năm {year} - {short}",
        lambda: f"Báo cáo BĐG-TE HK{semester} - {short}",
        lambda: f"BC BĐG và TE {short} {year}",
        lambda: f"{school.code}_baocao_BDG_TE_{cycle.id}",
        lambda: f"Mẫu báo cáo BĐG-TE {short}",
        lambda: f"bao cao bdg te {_unaccented(short).lower()}",
        lambda: f"BAO CAO BINH DANG GIOI TRE EM {_unaccented(short).upper()}",
        lambda: template_file_name(school, cycle).rsplit(".", 1)[0],
        lambda: f"Báo cáo công tác bình đẳng giới và trẻ em {cycle.label_vi} - {school.name}",
    ]
    if rng.random() < 0.07:
        counter[0] += 1
        return f"bao cao ({counter[0]})"  # saved from Zalo or the browser without renaming
    return rng.choice(patterns)()


def safe_file_stem(stem: str, limit: int = MAX_NAME_BYTES) -> str:
    """Return a file stem any file system accepts: no `/` or other reserved characters, bounded length."""
    cleaned = " ".join(_UNSAFE_NAME.sub("-", unicodedata.normalize("NFC", stem)).split()).strip(" .-")
    cleaned = cleaned or "bao cao"
    while len(cleaned.encode("utf-8")) > limit:
        cleaned = cleaned[:-1]
    return cleaned.rstrip(" .-") or "bao cao"


def _name_files(plans: list[_Plan], cycle: Cycle, rng: random.Random) -> None:
    used: set[str] = set()
    counter = [0]
    stems: dict[str, str] = {}
    for plan in sorted(plans, key=lambda p: (p.received_at, p.school.code)):
        if plan.revision and plan.school.code in stems:
            suffix = rng.choice((" (sửa)", " - đã sửa", " - bản sửa lần 2", "_sua", " (1)"))
            stem = stems[plan.school.code] + suffix
        else:
            stem = safe_file_stem(_file_stem(plan.school, cycle, rng, counter))
            stems[plan.school.code] = stem
        name = f"{stem}.{plan.file_format}"
        number = 2
        # Unique even on case-insensitive file systems.
        while name.casefold() in used:
            name = f"{stem} ({number}).{plan.file_format}"
            number += 1
        used.add(name.casefold())
        plan.name = name


# --------------------------------------------------------------------------------------------------
# Writing


def _build(plan: _Plan, reference: Reference, cycle: Cycle, seed: int) -> bytes:
    report_day = plan.received_at.date() - dt.timedelta(days=(plan.received_at.day % 3))
    values = school_values(plan.school, cycle, seed, report_date=report_day)
    rng = random.Random(f"{seed}:quirks:{cycle.id}:{plan.school.code}:{plan.revision}")
    if plan.revision:
        # A correction also tidies a figure, so its bytes always differ from the file it replaces.
        row = next(r for r in values.rows["reach"] if r["group"] == "phu_huynh")
        step = rng.randint(1, 9)
        raised = row["reached"] + step
        row["reached"] = raised if raised < row["total"] else row["reached"] - step
        row["reached_female"] = min(row["reached"], row["female"], row["reached_female"])
    draft = _Draft(plan.school, cycle, values, rng, _typo_code(reference, plan.school))
    rules: set[str] = set()
    for quirk in plan.quirks:
        quirk.apply(draft)
        rules |= quirk.rules
    plan.expect_rules = frozenset(rules)
    plan.school_code = plan.school.code if draft.known_school else None
    grid = template_grid(plan.school, cycle, values)
    for edit in draft.edits:
        edit(grid)
    return write_workbook(grid, plan.file_format)


def _file_states(plans: list[_Plan]) -> dict[int, str]:
    """Return each plan's expected submission state: newest accepted of a school wins (SPEC §4)."""
    states: dict[int, str] = {}
    newest: dict[str, int] = {}
    for index, plan in enumerate(plans):
        if plan.rejected:
            states[index] = "rejected"
            continue
        states[index] = "accepted"
        if plan.school_code is None:
            continue
        best = newest.get(plan.school_code)
        if best is None or plans[best].received_at < plan.received_at:
            newest[plan.school_code] = index
    for index, plan in enumerate(plans):
        if states[index] == "accepted" and plan.school_code and newest[plan.school_code] != index:
            states[index] = "superseded"
    return states


def _school_states(
    reference: Reference, cycle: Cycle, plans: list[_Plan], states: dict[int, str]
) -> list[dict[str, object]]:
    out = []
    for school in reference.expected_schools(cycle.id):
        mine = [i for i, plan in enumerate(plans) if plan.school_code == school.code]
        accepted = [i for i in mine if states[i] != "rejected"]
        if reference.is_exempt(school, cycle.id):
            state, on_time = "exempt", False
        elif accepted:
            on_time = any(plans[i].received_at < cycle.deadline_end for i in accepted)
            state = "on_time" if on_time else "late"
        else:
            state, on_time = ("received_invalid" if mine else "missing"), False
        out.append({"code": school.code, "expect_state": state, "expect_on_time": on_time})
    return out


def truth_path_for(out_dir: Path) -> Path:
    """Return where the truth file of a demo folder goes: beside it, `<folder>.truth.json`."""
    out_dir = Path(out_dir).resolve()
    return out_dir.with_name(out_dir.name + TRUTH_SUFFIX)


def _clear_previous(out_dir: Path, truth: Path) -> None:
    """Remove the files an earlier run listed in its truth file, so the folder matches the new one."""
    # An older version wrote truth.json inside the folder; clear what it listed, then the file itself.
    for candidate in (truth, out_dir / TRUTH_FILE):
        if not candidate.is_file():
            continue
        try:
            listed = json.loads(candidate.read_text(encoding="utf-8")).get("files", [])
        except (ValueError, AttributeError):
            continue
        for item in listed:
            name = item.get("file") if isinstance(item, dict) else None
            if isinstance(name, str) and Path(name).name == name:
                (out_dir / name).unlink(missing_ok=True)
        if candidate.parent == out_dir:
            candidate.unlink()


def generate_demo_data(
    reference: Reference, cycle_id: str, out_dir: Path, seed: int = 2023, truth_path: Path | None = None
) -> Path:
    """Write one cycle's synthetic submissions into out_dir and the truth file beside it; return its path.

    The truth file goes to `truth_path`, by default `<out_dir>.truth.json`; never inside `out_dir`.
    """
    cycle = reference.calendar.get(cycle_id)
    if cycle is None:
        raise ValueError(f"malformed cycle id {cycle_id!r}; expected YYYY-H1 or YYYY-H2")
    out_dir = Path(out_dir).resolve()
    truth_path = Path(truth_path).resolve() if truth_path is not None else truth_path_for(out_dir)
    if truth_path.parent == out_dir:
        raise ValueError(f"the truth file {truth_path} must not be inside {out_dir}: collect would store it")
    out_dir.mkdir(parents=True, exist_ok=True)
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    _clear_previous(out_dir, truth_path)

    rng = random.Random(f"{seed}:plan:{cycle.id}")
    plans, _missing = _assign(reference, cycle, rng)
    plans.sort(key=lambda plan: (plan.received_at, plan.school.code, plan.revision))
    _choose_formats(plans, rng)
    _name_files(plans, cycle, rng)

    contents = [_build(plan, reference, cycle, seed) for plan in plans]
    states = _file_states(plans)
    files = []
    for index, (plan, data) in enumerate(zip(plans, contents, strict=True)):
        path = out_dir / plan.name
        path.write_bytes(data)
        stamp = plan.received_at.timestamp()
        os.utime(path, (stamp, stamp))
        files.append({
            "file": plan.name,
            "school_code": plan.school_code,
            "received_at": plan.received_at.isoformat(),
            "expect_rules": sorted(plan.expect_rules - EXCLUDED_RULES),
            "expect_late": plan.received_at >= cycle.deadline_end,
            "expect_state": states[index],
        })
    truth = {
        "cycle": cycle.id,
        "seed": seed,
        "files": files,
        "schools": _school_states(reference, cycle, plans, states),
    }
    truth_path.write_text(json.dumps(truth, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return truth_path
