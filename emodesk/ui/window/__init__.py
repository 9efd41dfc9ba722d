"""The main window's parts, one concern each; `emodesk.ui.main_window.MainWindow` wires
them together and to the controller.

- `notices`: how each `NoticeKind` shows (banner or status message), as a table.
"""
