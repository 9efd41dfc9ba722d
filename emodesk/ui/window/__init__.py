"""The main window's parts, one concern each; `emodesk.ui.main_window.MainWindow` wires
them together and to the controller.

- `toolbar`: the toolbar's controls (connect, voices, profile, consent, settings).
- `notices`: how each `NoticeKind` shows (banner or status message), as a table.
"""
