"""What a sender typed is shown as text wherever a person looks (issue 11 #8), and one sheet has one
meaning (#9): the Prefect markdown summary, `gec status` on a terminal, a workbook with two general sheets.
"""

from __future__ import annotations

import pytest

from schemas.contract import GENERAL, RULES, Severity
from schemas.text import markdown_text, printable
from tasks.check.parse import parse_workbook
from tasks.operator.summary import CollectSummary, NotKept, Problem
from tests.support.grid_workbooks import contract_grid, strip_diacritics, write_xlsx

MAX_BYTES = 20 * 1024 * 1024
HOSTILE_NAME = 'bao cao<img src=x onerror="alert(1)">\n# pwned [bấm](javascript:alert(1)) | x.xlsx'
TERMINAL_NAME = "bao cao\x1b[2J\x1b]0;owned\x07\x1b[31m đỏ\x9b1m\u202eslx.exe\r\nx.xlsx"


def _summary() -> CollectSummary:
    summary = CollectSummary()
    summary.problems.append(Problem(submission_id=7, school_code="MN001", cycle_id="2023-H1",
                                    file=HOSTILE_NAME, state="rejected", error_count=1,
                                    message="<script>x</script>"))
    summary.not_kept.append(NotKept(message="<m@x>", sender="a@b.test", file=TERMINAL_NAME,
                                    reason="too_large"))
    return summary


def test_the_collect_summary_markdown_shows_file_names_as_text() -> None:
    markdown = _summary().to_markdown()
    assert "<img" not in markdown and "<script>" not in markdown and "&lt;img" in markdown
    assert "](javascript" not in markdown and "\\[bấm\\]\\(javascript:alert\\(1\\)\\)" in markdown
    assert "\x1b" not in markdown and "\u202e" not in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| 7 ")]
    assert len(rows) == 1  # the newline in the name did not end the table row
    assert rows[0].count(" | ") == 5  # nor did its `|` add a cell
    assert "\n# pwned" not in markdown  # nor start a heading


def test_table_artifact_rows_carry_no_control_characters() -> None:
    summary = _summary()
    [problem] = summary.problem_rows()
    [kept] = summary.not_kept_rows()
    assert "\n" not in problem["file"] and problem["submission_id"] == 7
    assert "\x1b" not in kept["file"] and "\x07" not in kept["file"] and "đỏ" in kept["file"]


def test_printable_strips_terminal_sequences_and_keeps_vietnamese() -> None:
    assert printable(TERMINAL_NAME) == "bao cao đỏslx.exe  x.xlsx"
    assert printable("Báo cáo\tMN001.xlsx") == "Báo cáo MN001.xlsx"
    assert markdown_text("a_b*c") == "a\\_b\\*c"


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_gec_status_prints_no_escape_sequence(capsys: pytest.CaptureFixture[str], lang: str) -> None:
    from rich.console import Console

    from cli.status_view import print_status

    result = {"cycle": "2023-H1", "totals": {"received_invalid": 1}, "schools": [],
              "submissions": [
                  {"id": 3, "school_code": "MN001", "file": TERMINAL_NAME, "state": "rejected",
                   "findings": [{"severity": "error"}], "received_at": "2023-05-02T09:30:00+07:00"},
                  {"id": 4, "school_code": "MN002", "file": "[bold red]x[/].xlsx", "state": "held",
                   "findings": [], "received_at": None}]}
    print_status(Console(width=200), result, lang)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out and "\u202e" not in out
    assert "đỏ" in out and "[bold red]x[/].xlsx" in out  # shown, not obeyed


def test_two_sheets_folding_to_the_general_sheet_are_rejected() -> None:
    grid = contract_grid()
    general = [list(row) for row in grid[GENERAL.name]]
    other = [[label, "TH009" if label == GENERAL.field("school_code").label else value]
             for label, value in general]
    grid = {**grid, strip_diacritics(GENERAL.name).upper(): other}
    parsed = parse_workbook(write_xlsx(grid), max_bytes=MAX_BYTES)
    [duplicate] = [finding for finding in parsed.findings if finding.rule == "duplicate_sheet"]
    assert RULES["duplicate_sheet"].severity is Severity.ERROR and duplicate.is_error
    assert duplicate.sheet == GENERAL.name
    assert "\u201cThông tin chung\u201d và \u201cTHONG TIN CHUNG\u201d" in duplicate.message
    assert "Vui lòng xóa trang thừa" in duplicate.message


def test_one_general_sheet_is_no_duplicate() -> None:
    parsed = parse_workbook(write_xlsx(contract_grid()), max_bytes=MAX_BYTES)
    assert not [finding for finding in parsed.findings if finding.rule == "duplicate_sheet"]
