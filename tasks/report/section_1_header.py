"""SPEC §5.1: the header in the national administrative style (printed unnumbered above section 1)."""

from __future__ import annotations

import datetime as dt

from tasks.report.wording import local_time

OFFICE_PARENT = "ỦY BAN NHÂN DÂN QUẬN 8"
OFFICE = "PHÒNG GIÁO DỤC VÀ ĐÀO TẠO"
NATION = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập - Tự do - Hạnh phúc"
PLACE = "Quận 8"
DOC_NUMBER = "Số:\u00a0\u00a0\u00a0\u00a0\u00a0\u00a0\u00a0\u00a0/BC-GDĐT"  # the office writes the number in
TITLE = "BÁO CÁO TỔNG HỢP KẾT QUẢ THỰC HIỆN CÔNG TÁC BÌNH ĐẲNG GIỚI VÀ TRẺ EM"

def administrative_date(moment: dt.datetime) -> str:
    """Return the dated line under the motto: "Quận 8, ngày 06 tháng 05 năm 2023"."""
    day = local_time(moment)
    return f"{PLACE}, ngày {day:%d} tháng {day:%m} năm {day:%Y}"
