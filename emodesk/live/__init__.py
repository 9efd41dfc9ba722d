"""The Gemini Live session on google-genai, and the local Live emulator. No Qt, no PyAudio."""
