"""The daily/weekly report on paper: HTML with its charts as embedded PNG images, and PDF
through Qt's own QTextDocument and QPdfWriter (no browser). Both read without the app.

The charts are drawn with QPainter into images, so a QGuiApplication is all they need
(`emodesk report` makes an offscreen one): the daily emotion mix as stacked bars, and
the mean arousal and valence per day of the acoustic estimate (the model gives neither).
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import (
    QBuffer,
    QByteArray,
    QIODevice,
    QMarginsF,
    QPointF,
    QRectF,
    QSizeF,
    Qt,
    QUrl,
)
from PySide6.QtGui import (
    QColor,
    QFont,
    QImage,
    QPageLayout,
    QPageSize,
    QPainter,
    QPainterPath,
    QPdfWriter,
    QPen,
    QTextDocument,
)

from emodesk.core.export import write_bytes_atomic, write_text_atomic
from emodesk.core.history import (
    EMOTIONS,
    DayStats,
    ReadingPoint,
    Report,
    SessionDigest,
    build_report,
    daily_stats,
    day_bounds,
    local_day,
)
from emodesk.core.profiles import PROFILES
from emodesk.ui import theme

CHART_SIZE = (900, 300)
SESSION_ROWS = 8  # more sessions than this: a row per day, so a week fits one page
_INK = QColor("#2a2f37")
_GRID = QColor("#d5d9df")
AROUSAL_COLOUR = "#e07a2e"
VALENCE_COLOUR = "#2e8b57"


def _day_label(stats: DayStats, count: int) -> str:
    return f"{stats.day:%a %d}" if count <= 10 else f"{stats.day:%d/%m}"


def _frame(painter: QPainter, width: int, height: int, title: str) -> QRectF:
    painter.fillRect(0, 0, width, height, QColor("white"))
    painter.setPen(_INK)
    font = QFont(painter.font())
    font.setPixelSize(16)
    font.setBold(True)
    painter.setFont(font)
    painter.drawText(QRectF(12, 6, width - 24, 24), Qt.AlignmentFlag.AlignLeft, title)
    font.setBold(False)
    font.setPixelSize(12)
    painter.setFont(font)
    return QRectF(56, 40, width - 56 - 130, height - 40 - 34)


def _x_labels(painter: QPainter, area: QRectF, days: Sequence[DayStats]) -> None:
    n = len(days)
    step = max(1, n // 12)
    slot = area.width() / max(1, n)
    painter.setPen(_INK)
    for i, stats in enumerate(days):
        if i % step:
            continue
        rect = QRectF(area.left() + i * slot - 20, area.bottom() + 4, slot + 40, 18)
        painter.drawText(rect, Qt.AlignmentFlag.AlignHCenter, _day_label(stats, n))


def _legend(painter: QPainter, area: QRectF, items: Sequence[tuple[str, str]]) -> None:
    y = area.top()
    for label, colour in items:
        painter.fillRect(QRectF(area.right() + 16, y + 3, 12, 12), QColor(colour))
        painter.setPen(_INK)
        painter.drawText(QPointF(area.right() + 34, y + 14), label)
        y += 20


def mix_chart(days: Sequence[DayStats], size: tuple[int, int] = CHART_SIZE) -> QImage:
    """Each day's readings as a 100% stacked bar by emotion; a day without readings
    shows a thin grey line."""
    width, height = size
    image = QImage(width, height, QImage.Format.Format_RGB32)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    area = _frame(painter, width, height, "Emotion mix per day (share of estimates)")
    painter.setPen(QPen(_GRID))
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = area.bottom() - frac * area.height()
        painter.setPen(QPen(_GRID))
        painter.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
        painter.setPen(_INK)
        painter.drawText(QRectF(4, y - 8, 46, 16), Qt.AlignmentFlag.AlignRight, f"{frac:.0%}")
    slot = area.width() / max(1, len(days))
    bar = slot * 0.7
    for i, stats in enumerate(days):
        x = area.left() + i * slot + (slot - bar) / 2
        if not stats.readings:
            painter.fillRect(QRectF(x, area.bottom() - 2, bar, 2), _GRID)
            continue
        y = area.bottom()
        for emotion in EMOTIONS:
            h = stats.share(emotion) * area.height()
            if h > 0:
                painter.fillRect(QRectF(x, y - h, bar, h), QColor(theme.emotion_colour(emotion)))
                y -= h
    _x_labels(painter, area, days)
    _legend(painter, area, [(e, theme.emotion_colour(e)) for e in EMOTIONS])
    painter.end()
    return image


def affect_chart(days: Sequence[DayStats], size: tuple[int, int] = CHART_SIZE) -> QImage:
    """Mean arousal and valence per day (acoustic source), -1 to 1; days without values
    break the line."""
    width, height = size
    image = QImage(width, height, QImage.Format.Format_RGB32)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    area = _frame(painter, width, height, "Mean arousal and valence per day (voice estimate)")
    for value in (-1.0, -0.5, 0.0, 0.5, 1.0):
        y = area.center().y() - value * area.height() / 2
        painter.setPen(QPen(_GRID, 2 if value == 0 else 1))
        painter.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
        painter.setPen(_INK)
        painter.drawText(QRectF(4, y - 8, 46, 16), Qt.AlignmentFlag.AlignRight, f"{value:+.1f}")
    slot = area.width() / max(1, len(days))
    for values, colour in (
        ([d.arousal.get("acoustic") for d in days], AROUSAL_COLOUR),
        ([d.valence.get("acoustic") for d in days], VALENCE_COLOUR),
    ):
        pen = QPen(QColor(colour), 2.5)
        painter.setPen(pen)
        path = QPainterPath()
        drawing = False
        for i, mean in enumerate(values):
            if mean is None:
                drawing = False
                continue
            point = QPointF(
                area.left() + (i + 0.5) * slot, area.center().y() - mean * area.height() / 2
            )
            if drawing:
                path.lineTo(point)
            else:
                path.moveTo(point)
                drawing = True
            painter.setBrush(QColor(colour))
            painter.drawEllipse(point, 3.5, 3.5)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(path)
    _x_labels(painter, area, days)
    _legend(painter, area, [("arousal", AROUSAL_COLOUR), ("valence", VALENCE_COLOUR)])
    painter.end()
    return image


def _png(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")  # type: ignore[call-overload]  # the stub says bytes; str works
    buffer.close()
    return bytes(data.data())


def _minutes(value: float) -> str:
    return f"{value:.0f} min" if value >= 1 else f"{value * 60:.0f} s"


_TABLE = "<table class='sessions' cellspacing='0' cellpadding='3' width='100%'>"


def _sessions_table(report: Report) -> str:
    e = html.escape
    rows = []
    for s in report.sessions:
        profile = PROFILES[s.profile].title if s.profile in PROFILES else s.profile
        rows.append(
            "<tr>"
            f"<td width='16%'>{s.started_utc.astimezone():%d %b %H:%M}</td>"
            f"<td width='18%'>{e(profile)}</td>"
            f"<td align='right'>{_minutes(s.duration_s / 60)}</td>"
            f"<td align='right'>{s.turns}</td>"
            f"<td>{e(s.mix_text()) or '—'}</td>"
            f"<td>{e(s.last_trend.replace('_', ' ')) or '—'}</td>"
            f"<td align='right'>{s.escalations or ''}</td>"
            "</tr>"
        )
    if not rows:
        return "<p>No sessions.</p>"
    return (
        _TABLE + "<tr><th align='left'>Started</th><th align='left'>Profile</th><th>Length</th>"
        "<th>Turns</th><th align='left'>Emotion mix</th><th align='left'>Ended with trend</th>"
        "<th>Escalations</th></tr>" + "".join(rows) + "</table>"
    )


def _days_table(report: Report) -> str:
    """A row per day (a week or more holds too many sessions for one page)."""
    escalations: dict[date, int] = {}
    negative_ends: dict[date, int] = {}
    for s in report.sessions:
        day = local_day(s.started_utc)
        escalations[day] = escalations.get(day, 0) + s.escalations
        if s.last_trend == "persistent_negative":
            negative_ends[day] = negative_ends.get(day, 0) + 1
    rows = []
    for d in report.days:
        ranked = sorted(((n, k) for k, n in d.mix.items() if n), reverse=True)
        mix = " · ".join(f"{k} {n / d.readings:.0%}" for n, k in ranked)
        rows.append(
            "<tr>"
            f"<td width='16%'>{d.day:%a %d %b}</td>"
            f"<td align='right'>{d.sessions or ''}</td>"
            f"<td align='right'>{_minutes(d.minutes) if d.sessions else ''}</td>"
            f"<td>{html.escape(mix) or '—'}</td>"
            f"<td align='right'>{negative_ends.get(d.day, '') or ''}</td>"
            f"<td align='right'>{escalations.get(d.day, 0) or ''}</td>"
            "</tr>"
        )
    return (
        _TABLE + "<tr><th align='left'>Day</th><th>Sessions</th><th>Length</th>"
        "<th align='left'>Emotion mix</th><th>Ended persistent negative</th>"
        "<th>Escalations</th></tr>" + "".join(rows) + "</table>"
    )


def report_html(report: Report, images: dict[str, str]) -> str:
    """The report as one HTML page; `images` maps "mix" and "affect" to each chart's
    src (a data: URI for the file, a resource name for QTextDocument)."""
    e = html.escape
    total = report.readings
    mix = ", ".join(
        f"{emotion} {count / total:.0%}" for emotion, count in report.mix.items() if count
    )
    notes = "".join(f"<li>{e(note)}</li>" for note in report.notes)
    if len(report.sessions) > SESSION_ROWS:
        heading, table = "Days", _days_table(report)
    else:
        heading, table = "Sessions", _sessions_table(report)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(report.title)}</title>
<style>
body {{ font-family: 'DejaVu Sans', sans-serif; color: #2a2f37; max-width: 960px;
       margin: 24px auto; font-size: 10pt; }}
h1 {{ font-size: 16pt; margin-bottom: 2px; }}
p.disclaimer {{ border: 1px solid #e0a100; background: #fff6e0; padding: 6px; }}
table.sessions {{ font-size: 8pt; }}
table.sessions th {{ border-bottom: 1px solid #9aa5b1; }}
table.sessions td {{ border-bottom: 1px solid #e5e8ec; }}
</style></head><body>
<h1>{e(report.title)}</h1>
<p style="color: #6b7280; font-size: 8pt">Made by EmoDesk on this computer from its local
history. Transcripts are not included.</p>
<p class="disclaimer"><b>Not a diagnosis.</b> {e(report.disclaimer)}</p>
<p><b>{len(report.sessions)}</b> session(s), <b>{_minutes(report.minutes)}</b> of conversation,
<b>{total}</b> emotion estimate(s){": " + e(mix) if mix else ""}.<br>
Trend over the period: {e(report.trend)}.<br>
Escalations: {report.escalations}.</p>
<h2 style="font-size: 12pt">Notes</h2><ul>{notes}</ul>
<p><img src="{images["mix"]}" width="560" alt="Emotion mix per day"></p>
<p><img src="{images["affect"]}" width="560" alt="Mean arousal and valence per day"></p>
<h2 style="font-size: 12pt">{heading}</h2>
{table}
</body></html>
"""


def _images(report: Report) -> dict[str, QImage]:
    return {"mix": mix_chart(report.days), "affect": affect_chart(report.days)}


def render_html(report: Report) -> str:
    """The report as a standalone HTML file's text (charts embedded as data: URIs)."""
    uris = {
        name: "data:image/png;base64," + base64.b64encode(_png(image)).decode("ascii")
        for name, image in _images(report).items()
    }
    return report_html(report, uris)


def render_pdf(report: Report) -> bytes:
    """The report as a PDF (A4), typeset by QTextDocument and written by QPdfWriter."""
    document = QTextDocument()
    for name, image in _images(report).items():
        document.addResource(
            QTextDocument.ResourceType.ImageResource, QUrl(f"chart://{name}"), image
        )
    document.setHtml(report_html(report, {n: f"chart://{n}" for n in ("mix", "affect")}))
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setTitle(report.title)
    writer.setCreator("EmoDesk")
    writer.setResolution(96)
    writer.setPageLayout(
        QPageLayout(
            QPageSize(QPageSize.PageSizeId.A4),
            QPageLayout.Orientation.Portrait,
            QMarginsF(14, 14, 14, 14),
            QPageLayout.Unit.Millimeter,
        )
    )
    layout = writer.pageLayout()
    paint = layout.paintRectPixels(writer.resolution())
    document.setPageSize(QSizeF(paint.width(), paint.height()))
    document.print_(writer)
    del writer
    buffer.close()
    return bytes(data.data())


def write_report(report: Report, path: str | os.PathLike[str]) -> None:
    """Write `report` as HTML or PDF, by the file's suffix (atomically)."""
    suffix = Path(path).suffix.lower()
    if suffix in (".html", ".htm"):
        write_text_atomic(path, render_html(report))
    elif suffix == ".pdf":
        write_bytes_atomic(path, render_pdf(report))
    else:
        raise ValueError(f"a report is written as .html or .pdf, not {suffix or 'no suffix'!r}")


class HistoryReader(Protocol):
    """What the report reads of the history (`emodesk.store.SessionStore` has it)."""

    def session_digests(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[SessionDigest]: ...

    def reading_points(self, since: datetime, until: datetime) -> list[ReadingPoint]: ...


def gather_report(history: HistoryReader, first: date, last: date) -> Report:
    """The report for local days `first`..`last` from the history."""
    since, until = day_bounds(first, last)
    sessions = history.session_digests(since, until)
    days = daily_stats(sessions, history.reading_points(since, until), first, last)
    return build_report(sessions, days, first, last)
