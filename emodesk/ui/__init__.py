"""PySide6 widgets and pyqtgraph plots. Shows state, sends intents."""
