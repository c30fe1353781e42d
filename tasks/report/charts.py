"""Inline SVG charts for the cycle report: plain strings, no scripts, fonts or external references.

Every label that comes from data is escaped; every chart carries a <title> and a <desc> that says in
words what the bars show, for screen readers and for anyone who cannot see the colours.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import pandas as pd

from schemas.states import CHARTED_SCHOOL_STATES as STACKED_STATES
from tasks.report.wording import STATE_LABELS, fmt_int, fmt_pct

FONT = "'Times New Roman', Times, serif"
SERIES_COLOURS = ("#1f5fa8", "#1b8a6b", "#7b4fa0", "#b8860b")
TARGET_COLOUR = "#c62828"
STATE_COLOURS = {
    "on_time": "#2e7d32",
    "late": "#f2a900",
    "received_invalid": "#8e44ad",
    "held": "#5c8dd6",
    "missing": "#c62828",
}
# Order of the stacked segments: from done to not started.


def _text(
    x: float,
    y: float,
    body: str,
    *,
    size: int = 12,
    anchor: str = "start",
    weight: str = "normal",
    fill: str = "#222",
    halo: bool = False,
) -> str:
    # A white halo keeps a value label legible where it crosses the dashed target line.
    outline = ' stroke="#ffffff" stroke-width="3" paint-order="stroke"' if halo else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'font-weight="{weight}" fill="{fill}"{outline}>{escape(body)}</text>'
    )


def _svg(chart_id: str, width: int, height: int, title: str, desc: str, body: Sequence[str]) -> str:
    return "\n".join(
        (
            f'<svg id="{chart_id}" class="chart" role="img" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'aria-labelledby="{chart_id}-title {chart_id}-desc" font-family="{FONT}">',
            f'<title id="{chart_id}-title">{escape(title)}</title>',
            f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
            *body,
            "</svg>",
        )
    )


def _legend(x: float, y: float, items: Sequence[tuple[str, str]], *, dashed: str | None = None) -> list[str]:
    parts: list[str] = []
    for colour, label in items:
        parts.append(f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{colour}"/>')
        parts.append(_text(x + 17, y, label))
        x += 24 + 7.2 * len(label)
    if dashed:
        parts.append(
            f'<line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x + 22:.1f}" y2="{y - 4:.1f}" '
            f'stroke="{TARGET_COLOUR}" stroke-width="2" stroke-dasharray="5 3"/>'
        )
        parts.append(_text(x + 27, y, dashed))
    return parts


def reach_by_ward_svg(
    frame: pd.DataFrame, codes: Sequence[str], target: float | None, chart_id: str = "bieu-do-2"
) -> str:
    """Draw each ward's reach rate per indicator as horizontal bars against the target line."""
    title = "Biểu đồ 2. Tỷ lệ được truyền thông theo phường so với mục tiêu"
    left, right, top, plot_width = 110, 70, 70, 560
    bar, gap = 13, 12
    row_height = max(1, len(codes)) * bar + gap
    height = top + len(frame) * row_height + 40
    width = left + plot_width + right
    body: list[str] = [_text(width / 2, 22, title, size=15, anchor="middle", weight="bold")]
    target_label = f"Mục tiêu {fmt_pct(target, 0)}" if target is not None else None
    body += _legend(
        left, 48, [(SERIES_COLOURS[i % 4], code) for i, code in enumerate(codes)], dashed=target_label
    )
    bottom = top + len(frame) * row_height
    for tick in range(0, 101, 25):
        x = left + plot_width * tick / 100
        body.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{bottom}" stroke="#dddddd"/>')
        body.append(_text(x, bottom + 16, f"{tick}%", size=11, anchor="middle", fill="#555"))
    described: list[str] = []
    labels: list[str] = []  # drawn last, above the target line
    for row_index, row in enumerate(frame.itertuples(index=False)):
        ward = str(row.ward)
        y = top + row_index * row_height
        body.append(_text(left - 8, y + row_height / 2, ward, anchor="end"))
        values = []
        for i, code in enumerate(codes):
            rate = getattr(row, f"{code}_rate")
            bar_y = y + gap / 2 + i * bar
            if rate is None or pd.isna(rate):
                body.append(
                    _text(left + 4, bar_y + bar - 3, f"{code}: chưa có số liệu", size=10, fill="#777")
                )
                values.append(f"{code} chưa có số liệu")
                continue
            bar_width = plot_width * min(max(float(rate), 0.0), 1.0)
            body.append(
                f'<rect x="{left}" y="{bar_y:.1f}" width="{bar_width:.1f}" height="{bar - 2}" '
                f'fill="{SERIES_COLOURS[i % 4]}"/>'
            )
            labels.append(_text(left + bar_width + 4, bar_y + bar - 3, fmt_pct(rate), size=10, halo=True))
            values.append(f"{code} {fmt_pct(rate)}")
        described.append(f"{ward}: {', '.join(values)}")
    if target is not None:
        x = left + plot_width * min(max(target, 0.0), 1.0)
        body.append(
            f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{bottom + 2}" stroke="{TARGET_COLOUR}" '
            f'stroke-width="2" stroke-dasharray="5 3"/>'
        )
    body += labels
    desc = (
        f"Tỷ lệ được truyền thông của {', '.join(codes)} theo từng phường"
        + (f"; đường đứt nét là mục tiêu {fmt_pct(target, 0)}" if target is not None else "")
        + ". "
        + "; ".join(described)
        + "."
    )
    return _svg(chart_id, width, height, title, desc, body)


def completeness_by_level_svg(frame: pd.DataFrame, chart_id: str = "bieu-do-1") -> str:
    """Draw each school level's completeness states as a 100% stacked horizontal bar."""
    title = "Biểu đồ 1. Tình hình nộp báo cáo theo cấp học"
    rows = frame[frame["expected"] > 0]
    left, right, top, plot_width, bar, gap = 140, 90, 78, 540, 26, 14
    height = top + len(rows) * (bar + gap) + 36
    width = left + plot_width + right
    body: list[str] = [_text(width / 2, 22, title, size=15, anchor="middle", weight="bold")]
    legend = [(STATE_COLOURS[state], STATE_LABELS[state]) for state in STACKED_STATES]
    body += _legend(20, 48, legend[:3])
    body += _legend(20, 66, legend[3:])
    described: list[str] = []
    for index, row in enumerate(rows.itertuples(index=False)):
        y = top + index * (bar + gap)
        expected = int(row.expected)
        body.append(_text(left - 8, y + bar / 2 + 4, str(row.label), anchor="end"))
        x = float(left)
        parts = []
        for state in STACKED_STATES:
            count = int(getattr(row, state))
            if not count:
                continue
            segment = plot_width * count / expected
            body.append(
                f'<rect x="{x:.1f}" y="{y}" width="{segment:.1f}" height="{bar}" '
                f'fill="{STATE_COLOURS[state]}" stroke="#ffffff" stroke-width="1"/>'
            )
            if segment >= 22:
                body.append(
                    _text(
                        x + segment / 2,
                        y + bar / 2 + 4,
                        fmt_int(count),
                        anchor="middle",
                        weight="bold",
                        fill="#ffffff" if state != "late" else "#222",
                    )
                )
            parts.append(f"{STATE_LABELS[state].lower()} {fmt_int(count)}")
            x += segment
        body.append(_text(left + plot_width + 6, y + bar / 2 + 4, f"{fmt_int(expected)} trường", size=11))
        described.append(f"{row.label}: {fmt_int(expected)} trường phải nộp, " + ", ".join(parts))
    desc = (
        "Số trường theo tình trạng nộp báo cáo trong từng cấp học (không tính trường được miễn). "
        + "; ".join(described)
        + "."
    )
    return _svg(chart_id, width, height, title, desc, body)
