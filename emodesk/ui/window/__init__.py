"""The main window's parts, one concern each; `emodesk.ui.main_window.MainWindow` wires
them together and to the controller.

- `toolbar`: the toolbar's controls (connect, voices, profile, consent, settings).
- `export`: the export menu, its file dialog, the session report and their message box.
- `consent_flow`: asking for, saving, passing on and forgetting consent to emotion
  estimates.
- `notices`: how each `NoticeKind` shows (banner or status message), as a table.
- `status`: the status bar's standing parts: the state (with the reconnect countdown),
  the offline-demo label, the last turn's latency and the model.
- `tasks`: runs the window's intent coroutines and says when one fails.
- `dialogs`: one dialog of each kind at a time, opened without a nested event loop.
"""
