"""A local Gemini Live emulator: a TLS WebSocket server that speaks the real wire protocol.

It answers turns with synthetic speech, transcripts and a `report_user_emotion` call,
hands out resumption handles and injects faults on request. Replies are synthetic and
labelled so wherever they are shown.
"""
