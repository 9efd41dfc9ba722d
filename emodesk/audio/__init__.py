"""PyAudio streams on a QThread: capture, playout, devices, echo cancellation."""
