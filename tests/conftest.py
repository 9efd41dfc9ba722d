"""Shared test set-up: Qt runs offscreen unless a test starts its own X server."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Keep tests away from the user's real keyring, settings and data.
os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
