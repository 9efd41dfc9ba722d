"""Colours and the small style sheet the window shares. One place, so plots, legend and
banners agree on what "angry" or "the reply" looks like."""

from __future__ import annotations

EMOTION_COLOURS: dict[str, str] = {
    "happy": "#f2c14e",
    "sad": "#4f8fe6",
    "angry": "#e5533d",
    "anxious": "#a66ee0",
    "neutral": "#9aa5b1",
}
UNKNOWN_EMOTION_COLOUR = "#6b7280"

MIC_COLOUR = "#38bdb0"  # the user's voice
REPLY_COLOUR = "#f59e42"  # the model's voice
PLOT_BACKGROUND = "#1d2026"
PLOT_FOREGROUND = "#c9ced6"
GRID_ALPHA = 0.15
ESCALATION_COLOUR = "#ff4d4f"

BANNER_STYLES: dict[str, tuple[str, str]] = {
    # level -> (background, border)
    "error": ("#fdecea", "#e5533d"),
    "warning": ("#fff6e0", "#e0a100"),
    "info": ("#e8f1fd", "#4f8fe6"),
}

STYLE_SHEET = """
QToolBar { spacing: 4px; padding: 3px; }
QToolButton#voiceButton { padding: 3px 10px; }
QToolButton#voiceButton:checked { font-weight: 600; }
QPushButton#pushToTalk {
    font-size: 15px; font-weight: 600; min-height: 54px; border-radius: 10px;
    border: 1px solid #2b8f85; background: #38bdb0; color: white; padding: 6px 18px;
}
QPushButton#pushToTalk:pressed, QPushButton#pushToTalk[held="true"] {
    background: #1f7a70; border-color: #145f57;
}
QPushButton#pushToTalk:disabled { background: #b9c2c9; border-color: #a0a9b0; }
QLabel#sectionTitle { font-weight: 600; color: palette(window-text); }
QLabel#trendLabel { color: #c9ced6; }
QFrame#plotPanel { background: #1d2026; border-radius: 6px; }
QListView#transcript { border: none; }
QListView#transcript::item { padding: 6px 8px; margin: 2px 0; border-radius: 6px; }
"""


def emotion_colour(label: str) -> str:
    return EMOTION_COLOURS.get(label, UNKNOWN_EMOTION_COLOUR)
