"""A small hand-made cycle whose every figure a test can recompute by hand.

Seven schools cover every completeness state; three have accepted data. School names and activity
contents carry injection texts so the renderers' escaping is exercised by every test that uses them.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from config.settings import TIMEZONE
from schemas.reference import Cycle, Indicator
from tasks.report.cycle_data import COLUMNS, CycleData, PreviousCycle, empty_frame

SCRIPT = "<script>alert(1)</script>"
HYPERLINK = '=HYPERLINK("http://x","y")'
CMD = "+cmd|' /C calc'!A0"
INJECTIONS = (SCRIPT, HYPERLINK, CMD)

CYCLE = Cycle("2023-H1", dt.date(2023, 1, 1), dt.date(2023, 4, 30), dt.date(2023, 5, 5))
PREVIOUS_ID = "2022-H2"
AS_OF = dt.datetime(2023, 5, 10, 9, 30, tzinfo=TIMEZONE)


def at(day: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    """Return a May 2023 moment in Ho Chi Minh City time."""
    return dt.datetime(2023, 5, day, hour, minute, tzinfo=TIMEZONE)


CT1 = Indicator(
    "CT1",
    "Cán bộ, giáo viên, phụ huynh và học sinh được truyền thông",
    "Kế hoạch",
    None,
    "%",
    50.0,
    ("quan_ly", "giao_vien", "nhan_vien", "hoc_sinh", "phu_huynh"),
    False,
    ">=",
)
CT2 = Indicator(
    "CT2",
    "Cán bộ, cộng tác viên và người lao động được truyền thông",
    "Kế hoạch",
    None,
    "%",
    50.0,
    ("quan_ly", "giao_vien", "nhan_vien", "cong_tac_vien"),
    False,
    ">=",
)
MANUAL_SET = Indicator("BDG1", "Chỉ tiêu BĐG số 1", "QĐ 3640", None, "%", 60.0, (), True, ">=")
MANUAL_BLANK = Indicator("TE1", "Chỉ tiêu trẻ em số 1", "QĐ 4063", None, "", None, (), True, ">=")
INDICATORS = (CT1, CT2, MANUAL_SET, MANUAL_BLANK)
MANUAL_VALUES = {"BDG1": 72.5}

# code, name, level, ward, ownership, state, received_at, submission_id
SCHOOLS = [
    ("MN01", "Trường Mầm non Hoa Sen", "mam_non", "Phường 1", "cong_lap", "on_time", at(3), 1),
    ("MN02", SCRIPT, "mam_non", "Phường 2", "ngoai_cong_lap", "late", at(7, 14, 5), 2),
    ("MN03", HYPERLINK, "mam_non", "Phường 10", "cong_lap", "missing", None, None),
    ("TH01", "Trường Tiểu học Kim Đồng", "tieu_hoc", "Phường 1", "cong_lap", "on_time", at(4), 4),
    ("TH02", CMD, "tieu_hoc", "Phường 2", "cong_lap", "received_invalid", None, None),
    ("CS01", "Trường THCS Lê Lai", "thcs", "Phường 10", "cong_lap", "held", None, None),
    ("CS02", "Trường THCS Bình Đông", "thcs", "Phường 1", "cong_lap", "exempt", None, None),
]

# id, school_code, state, received_at, error_count, warning_count
SUBMISSIONS = [
    (1, "MN01", "accepted", at(3), 0, 0),
    (2, "MN02", "accepted", at(7, 14, 5), 0, 1),
    (3, "TH01", "superseded", at(1), 0, 0),
    (4, "TH01", "accepted", at(4), 0, 0),
    (5, "TH02", "rejected", at(4, 16), 3, 0),
    (6, "CS01", "held", at(5, 9), 0, 1),
    (7, None, "rejected", at(5, 11), 1, 0),
]
FINDINGS = [
    (5, "error", "not_integer"),
    (5, "error", "not_integer"),
    (5, "error", "female_gt_total"),
    (7, "error", "unknown_school"),
    (2, "warning", "late"),
    (6, "warning", "unregistered_sender"),
]

# school_code, group, total, female, reached, reached_female
REACH = [
    ("MN01", "quan_ly", 3, 3, 3, 3),
    ("MN01", "giao_vien", 20, 20, 15, 15),
    ("MN01", "nhan_vien", 10, 6, 4, 2),
    ("MN01", "hoc_sinh", 200, 95, 120, 60),
    ("MN01", "phu_huynh", 180, 120, 90, 70),
    ("MN01", "cong_tac_vien", 4, 3, 1, 1),
    ("MN02", "quan_ly", 2, 2, 1, 1),
    ("MN02", "giao_vien", 12, 12, 5, 5),
    ("MN02", "nhan_vien", 6, 4, 2, 1),
    ("MN02", "hoc_sinh", 90, 44, 30, 15),
    ("MN02", "phu_huynh", 85, 60, 20, 14),
    ("MN02", "cong_tac_vien", 0, 0, 0, 0),
    ("TH01", "quan_ly", 4, 2, 4, 2),
    ("TH01", "giao_vien", 45, 38, 30, 25),
    ("TH01", "nhan_vien", 9, 5, 3, 2),
    ("TH01", "hoc_sinh", 1100, 540, 650, 330),
    ("TH01", "phu_huynh", 1050, 700, 400, 280),
    ("TH01", "cong_tac_vien", 2, 2, 2, 2),
]

# school_code, activity_type, start, end, format, content, staff, staff_f, students, students_f,
# parents, parents_f
ACTIVITIES = [
    (
        "MN01",
        "thang_hd_tre_em",
        dt.date(2023, 6, 1),
        dt.date(2023, 6, 30),
        "truc_tiep",
        SCRIPT,
        30,
        28,
        180,
        90,
        60,
        45,
    ),
    (
        "MN01",
        "tuyen_truyen",
        dt.date(2023, 3, 8),
        None,
        "truc_tiep",
        "Tuyên truyền Luật Trẻ em",
        25,
        24,
        0,
        0,
        40,
        30,
    ),
    ("MN02", "thang_hd_tre_em", dt.date(2023, 6, 2), None, "ket_hop", HYPERLINK, 14, 14, 80, 41, 20, 15),
    (
        "MN02",
        "thang_hd_bdg",
        dt.date(2023, 11, 20),
        None,
        "truc_tuyen",
        "Bình đẳng giới",
        10,
        9,
        0,
        0,
        15,
        10,
    ),
    ("TH01", "tap_huan", dt.date(2023, 4, 12), dt.date(2023, 4, 13), "truc_tiep", CMD, 50, 41, 0, 0, 0, 0),
]

# school_code, item, answer: MN02 says Không to tong_dai_111, TH01 Không to ban_giao_he and leaves
# the preschool-only item blank.
_ITEMS = (
    "ke_hoach_don_vi",
    "long_ghep_gioi",
    "so_theo_doi_tre_em",
    "du_lieu_tre_em",
    "tong_dai_111",
    "tu_kiem_tra_an_toan",
    "ban_giao_he",
    "tham_gia_le_phat_dong",
    "can_bo_phu_trach",
)
_NO = {("MN02", "tong_dai_111"), ("TH01", "ban_giao_he")}
CHECKLIST = [
    (code, item, None if (code, item) == ("TH01", "tu_kiem_tra_an_toan") else (code, item) not in _NO)
    for code in ("MN01", "MN02", "TH01")
    for item in _ITEMS
]

# school_code, category, cases, children, children_female, reported, supported.
# bao_luc totals 3 cases over two schools (public "<5"). MN02's drowning figures are distinctive
# numbers found nowhere else in the data, so a scan of the public files can prove they never leak;
# the public duoi_nuoc totals are MN02 + TH01 = 66, 72, 39, 63, 57.
INCIDENTS = [
    ("MN01", "bao_luc", 2, 2, 1, 2, 2),
    ("TH01", "bao_luc", 1, 1, 0, 1, 1),
    ("MN02", "duoi_nuoc", 61, 67, 37, 58, 53),
    ("TH01", "duoi_nuoc", 5, 5, 2, 5, 4),
    ("TH01", "tai_nan_thuong_tich", 0, 0, 0, 0, 0),
]
DISTINCTIVE_PER_SCHOOL = (61, 67, 37, 58, 53)

# school_code, child_protection_staff, trained_staff
GENERAL = [("MN01", 2, 1), ("MN02", 1, 1), ("TH01", 3, 2)]

# The previous cycle: fewer schools received, smaller reach.
PREVIOUS_SCHOOLS = [
    ("MN01", "Trường Mầm non Hoa Sen", "mam_non", "Phường 1", "cong_lap", "on_time", None, 101),
    ("MN02", SCRIPT, "mam_non", "Phường 2", "ngoai_cong_lap", "missing", None, None),
    ("TH01", "Trường Tiểu học Kim Đồng", "tieu_hoc", "Phường 1", "cong_lap", "late", None, 102),
    ("TH02", CMD, "tieu_hoc", "Phường 2", "cong_lap", "missing", None, None),
]
PREVIOUS_REACH = [
    ("MN01", "quan_ly", 3, 3, 1, 1),
    ("MN01", "giao_vien", 20, 20, 5, 5),
    ("MN01", "hoc_sinh", 190, 90, 50, 25),
    ("MN01", "phu_huynh", 170, 110, 30, 20),
    ("TH01", "giao_vien", 44, 37, 10, 8),
    ("TH01", "hoc_sinh", 1080, 530, 300, 150),
    ("TH01", "cong_tac_vien", 2, 2, 0, 0),
]
PREVIOUS_ACTIVITIES = [
    (
        "MN01",
        "trung_thu",
        dt.date(2022, 9, 10),
        None,
        "truc_tiep",
        "Vui Tết Trung thu",
        20,
        19,
        150,
        70,
        50,
        35,
    ),
]


def _frame(name: str, rows: list[tuple[object, ...]], columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    columns = columns or COLUMNS[name]
    return pd.DataFrame(rows, columns=list(columns)) if rows else pd.DataFrame(columns=list(columns))


def schools_frame(rows: list[tuple[object, ...]]) -> pd.DataFrame:
    """Return a schools frame from (code, name, level, ward, ownership, state, received_at, id) rows."""
    frame = pd.DataFrame(
        rows, columns=["code", "name", "level", "ward", "ownership", "state", "received_at", "submission_id"]
    )
    frame["on_time"] = frame["state"] == "on_time"
    frame["received_at"] = pd.to_datetime(frame["received_at"])
    frame["submission_id"] = frame["submission_id"].astype("Int64")
    return frame[list(COLUMNS["schools"])]


def submissions_frame() -> pd.DataFrame:
    """Return the submissions frame, with a made-up sha256 per file."""
    frame = pd.DataFrame(
        SUBMISSIONS, columns=["id", "school_code", "state", "received_at", "error_count", "warning_count"]
    )
    frame["sha256"] = [f"{i:064x}" for i in frame["id"]]
    frame["received_at"] = pd.to_datetime(frame["received_at"])
    return frame[list(COLUMNS["submissions"])]


def make_cycle_data(*, previous: bool = True, **overrides: object) -> CycleData:
    """Return the hand-made cycle; keyword arguments replace any CycleData field."""
    fields: dict[str, object] = {
        "cycle": CYCLE,
        "as_of": AS_OF,
        "indicators": INDICATORS,
        "manual_values": dict(MANUAL_VALUES),
        "schools": schools_frame(SCHOOLS),
        "submissions": submissions_frame(),
        "findings": _frame("findings", FINDINGS),
        "reach": _frame("reach", REACH),
        "activities": _frame("activities", ACTIVITIES),
        "checklist": _frame("checklist", CHECKLIST),
        "incidents": _frame("incidents", INCIDENTS),
        # As if the incident cutoff had passed with the same rows current (see section_6_incidents).
        "published_incidents": _frame("incidents", INCIDENTS),
        "incidents_cutoff": AS_OF - dt.timedelta(days=1),
        "general": _frame("general", GENERAL),
        "previous_cycle_id": PREVIOUS_ID if previous else None,
        "previous": PreviousCycle(
            PREVIOUS_ID,
            schools_frame(PREVIOUS_SCHOOLS),
            _frame("reach", PREVIOUS_REACH),
            _frame("activities", PREVIOUS_ACTIVITIES),
        )
        if previous
        else None,
    }
    fields.update(overrides)
    return CycleData(**fields)  # type: ignore[arg-type]


def make_empty_cycle_data() -> CycleData:
    """The same cycle with nothing received: every frame empty."""
    return CycleData(cycle=CYCLE, as_of=AS_OF, indicators=INDICATORS,
                     **{name: empty_frame(name) for name in COLUMNS})
