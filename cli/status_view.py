"""`gec status` for people: Vietnamese for the office (default), English codes with `--lang en`.

`--json` never goes through here: scripts read the codes of SPEC §7, whatever the language.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from config.settings import TIMEZONE
from schemas.messages import COMPLETENESS_LABELS, STATE_LABELS, UNKNOWN_SCHOOL
from schemas.text import printable

LANGUAGES = ("vi", "en")
ATTENTION_STATES = ("rejected", "held")

WORDS: dict[str, dict[str, str]] = {
    "vi": {
        "title": "Kỳ báo cáo {cycle}: tình hình nộp báo cáo",
        "state": "Tình trạng",
        "schools": "Số trường",
        "total": "Tổng cộng",
        "attention": "Báo cáo cần xử lý",
        "id": "ID",
        "school": "Trường",
        "file": "Tệp",
        "errors": "Số lỗi",
        "received": "Nhận lúc",
        "none": "Không có báo cáo nào cần xử lý.",
        "review": "Xem xét: gec review ID --accept|--reject --note \"…\"",
    },
    "en": {
        "title": "Cycle {cycle}: completeness",
        "state": "state",
        "schools": "schools",
        "total": "total",
        "attention": "Submissions needing attention",
        "id": "id",
        "school": "school",
        "file": "file",
        "errors": "errors",
        "received": "received",
        "none": "No submission needs attention.",
        "review": "Review: gec review ID --accept|--reject --note \"…\"",
    },
}


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _when(iso: str | None, lang: str) -> str:
    if not iso:
        return ""
    moment = dt.datetime.fromisoformat(iso).astimezone(TIMEZONE)
    return moment.strftime("%d/%m/%Y %H:%M" if lang == "vi" else "%Y-%m-%d %H:%M")


def print_status(console: Console, result: dict[str, Any], lang: str = "vi") -> None:
    """Print the cycle's completeness totals and the submissions that need the operator."""
    words = WORDS[lang]
    vi = lang == "vi"
    totals = Table(words["state"], words["schools"], title=_nfc(words["title"].format(cycle=result["cycle"])))
    for state, count in result["totals"].items():
        totals.add_row(_nfc(COMPLETENESS_LABELS.get(state, state)) if vi else state, str(count))
    totals.add_row(words["total"], str(sum(result["totals"].values())), style="bold")
    console.print(totals)

    names = {school["code"]: school["name"] for school in result["schools"]}
    problems = [item for item in result["submissions"] if item["state"] in ATTENTION_STATES]
    if not problems:
        console.print(_nfc(words["none"]))
        return
    listing = Table(words["id"], words["school"], words["file"], words["state"], words["errors"],
                    words["received"], title=_nfc(words["attention"]))
    for item in problems:
        errors = str(sum(finding["severity"] == "error" for finding in item["findings"]))
        code = item["school_code"]
        if vi:
            school = f"{code} - {names[code]}" if code in names else (code or UNKNOWN_SCHOOL)
            state = STATE_LABELS.get(item["state"], item["state"])
        else:
            school, state = code or "?", item["state"]
        # A file name is a stranger's text: no escape sequence or rich markup reaches the terminal.
        listing.add_row(str(item["id"]), _nfc(school), escape(printable(_nfc(item["file"]))), _nfc(state),
                        errors, _when(item["received_at"], lang))
    console.print(listing)
    if any(item["state"] == "held" for item in problems):
        console.print(_nfc(words["review"]))
