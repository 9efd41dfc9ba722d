"""EmoDesk: a desktop voice client for Gemini Live that notices how the user sounds."""

__version__ = "0.1.0"
